"""The simulated beamline of the dummy camera: darks, flats, a needle and a sphere where geometry puts them.

Every expected position is computed here, from the geometry of the shared
conventions (rotation about the tilted axis by Rodrigues' formula), never
from the simulation's own ground-truth functions -- those are checked
against the same independent geometry.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from concert.devices.cameras.dummy import BufferedCamera, Camera, Needle, Sphere
from concert.devices.cameras.simulation import Beam, Simulation
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.devices.shutters.dummy import Shutter
from concert.exceptions import CameraError, ConcertError, LimitError, UnitError
from concert.quantities import q
from tests.conftest import TIMEOUT

PIXEL_MM = 6.5e-3  # the default pixel size
COLUMNS, ROWS = 640, 480
CENTRE = ((COLUMNS - 1) / 2, (ROWS - 1) / 2)  # (column, row) of the sensor's centre
DARK = 100.0
PHOTONS = 2000.0  # per pixel in the open beam: flux 2e6/s for the default 1 ms exposure
RADIUS_MM = 0.05  # the default needle's
MU_PER_MM = 20.0  # the default attenuation


# -- independent geometry -------------------------------------------------------------------------


def rodrigues(axis, angle):
    """The matrix turning vectors by ``angle`` (radians) about the unit vector ``axis``, right-handed."""
    x, y, z = axis
    cross = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def detector(point, theta_deg, roll_deg=0.0, pitch_deg=0.0, axis_column=CENTRE[0], shift=0.0):
    """(column, row) of a stage point (pixels, relative to the pivot) at rotation angle theta.

    The stage is first tilted (the axis's top towards +z by pitch, then towards
    +x by roll), then turned about the tilted axis; the turn is right-handed
    about -axis, so that a point at +x goes towards +z (downstream) as theta grows.
    """
    roll, pitch = math.radians(roll_deg), math.radians(pitch_deg)
    tilt_pitch = rodrigues((1, 0, 0), pitch)  # y -> (0, cos p, sin p): the top towards +z
    tilt_roll = rodrigues((0, 0, 1), -roll)  # y -> (sin r, cos r, 0): the top towards +x
    tilt = tilt_roll @ tilt_pitch
    axis = tilt @ np.array([0.0, 1.0, 0.0])
    x, y, _ = rodrigues(axis, -math.radians(theta_deg)) @ tilt @ np.asarray(point, dtype=float)
    return axis_column + shift + x, CENTRE[1] - y


def needle_top(x_mm, y_mm, theta_deg, z_mm=0.0, **tilts):
    """Where the top of a needle's image is: its round end's centre projected, plus one radius up."""
    radius = RADIUS_MM / PIXEL_MM
    column, row = detector((x_mm / PIXEL_MM, y_mm / PIXEL_MM - radius, z_mm / PIXEL_MM), theta_deg, **tilts)
    return column, row - radius


def test_the_independent_geometry_follows_the_conventions():
    # theta = 90 deg puts a point at +x downstream (+z); pitch > 0 leans the top downstream.
    point = (100.0, 0.0, 0.0)
    assert detector(point, 0) == pytest.approx((CENTRE[0] + 100, CENTRE[1]))
    assert detector(point, 180) == pytest.approx((CENTRE[0] - 100, CENTRE[1]))
    # At 90 deg the point is downstream: with pitch > 0 it goes down (a larger row).
    assert detector(point, 90, pitch_deg=10)[1] == pytest.approx(CENTRE[1] + 100 * math.sin(math.radians(10)))
    # The top of a tilted axis leans towards +x with roll > 0.
    assert detector((0.0, 100.0, 0.0), 0, roll_deg=10)[0] == pytest.approx(
        CENTRE[0] + 100 * math.sin(math.radians(10))
    )


# -- the beamline -------------------------------------------------------------------------------


class Beamline:
    """A shutter, motors and a camera imaging ``sample`` without noise (unless asked), 2000 photons."""

    def __init__(self, sample=None, **settings):
        self.shutter = Shutter()
        self.stage = RotationMotor(motion_velocity=36000 * q.deg / q.s)
        self.flat_motor = LinearMotor(motion_velocity=1000 * q.mm / q.s)
        self.focus_motor = LinearMotor(motion_velocity=1000 * q.mm / q.s)
        options = {"noise": False, "flux": PHOTONS * 1000 / q.s, **settings}
        self.camera = Camera(
            shutter=self.shutter,
            rotation_motor=self.stage,
            flat_motor=self.flat_motor,
            focus_motor=self.focus_motor,
            sample=sample,
            **options,
        )

    def frame(self, angle=None):
        if angle is not None:
            self.stage.position = angle * q.deg
        return np.asarray(self.camera.grab(TIMEOUT), dtype=float)

    def transmission(self, angle=None):
        """The frame at ``angle``, flat-corrected with a dark and a flat taken by the beamline itself."""
        projection = self.frame(angle)
        self.shutter.close().join(TIMEOUT)
        dark = self.frame()
        self.shutter.open().join(TIMEOUT)
        self.flat_motor.position = 10 * q.mm
        flat = self.frame()
        self.flat_motor.position = 0 * q.mm
        return (projection - dark) / (flat - dark)


def top_of(transmission, threshold=0.9):
    """(column, row) of a needle's top: the first row with a pixel below ``threshold`` (a simple threshold).

    The column is the centroid of the absorption in that row and the next two
    (the round end is symmetric about its centre column).
    """
    rows = np.nonzero((transmission < threshold).any(axis=1))[0]
    assert rows.size, "no needle in the frame"
    top = int(rows[0])
    band = 1 - transmission[top : top + 3]
    columns = np.arange(transmission.shape[1])
    weights = np.where(band > 1 - threshold, band, 0).sum(axis=0)
    return float((weights * columns).sum() / weights.sum()), float(top)


def centroid(transmission):
    """(column, row) of the absorption's centre of mass."""
    absorbed = 1 - transmission
    absorbed[absorbed < 0.01] = 0
    rows, columns = np.indices(absorbed.shape)
    total = absorbed.sum()
    return float((absorbed * columns).sum() / total), float((absorbed * rows).sum() / total)


def needle_column(transmission, row):
    """The needle's centre column in ``row``: the centroid of the absorption there."""
    absorbed = np.clip(1 - transmission[row], 0, None)
    absorbed[absorbed < 0.05] = 0
    return float((absorbed * np.arange(absorbed.size)).sum() / absorbed.sum())


# -- no arguments: as before -------------------------------------------------------------------


def test_a_camera_without_the_beamline_is_the_test_pattern_as_before():
    camera = Camera()
    assert camera.simulation is None
    frame = camera.grab(TIMEOUT)
    assert frame.shape == (480, 640) and frame.dtype == np.uint16
    assert float(np.mean(frame)) == pytest.approx(300, abs=1)
    assert set(frame.metadata) == {"frame", "timestamp", "exposure_time", "roi", "trigger_source"}


# -- darks, flats, projections ------------------------------------------------------------------


def test_darks_are_the_dark_level_flats_bright_projections_darker_where_the_needle_is():
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm), noise=True, seed=1)
    line.shutter.close().join(TIMEOUT)
    dark = line.frame()
    assert dark.mean() == pytest.approx(DARK, abs=0.1) and dark.std() == pytest.approx(2, rel=0.05)
    line.shutter.open().join(TIMEOUT)
    line.flat_motor.position = 10 * q.mm  # out of the beam: a flat field
    assert not line.camera.simulation.sample_in_beam
    flat = line.frame()
    assert flat.mean() == pytest.approx(DARK + PHOTONS, rel=0.01)
    line.flat_motor.position = 0 * q.mm
    projection = line.frame(0)
    column, row = needle_top(1, 0.5, 0)
    needle = (
        slice(int(row) + 10, ROWS),
        slice(int(column) - 2, int(column) + 3),
    )  # its middle, below the tip
    expected = DARK + PHOTONS * math.exp(-MU_PER_MM * 2 * RADIUS_MM)  # through its full diameter
    assert projection[needle].mean() == pytest.approx(expected, rel=0.03)
    assert (projection[needle] < flat[needle]).all()
    beside = (slice(0, ROWS), slice(0, 100))
    assert projection[beside].mean() == pytest.approx(flat[beside].mean(), rel=0.01)


def test_projections_change_with_the_angle():
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm))
    frames = [line.frame(angle) for angle in (0, 45, 90)]
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])


@pytest.mark.parametrize("angle", [0, 30, 90, 150, 200, 300])
def test_the_needle_tip_is_where_the_geometry_puts_it(angle):
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm, 0.4 * q.mm))
    found = top_of(line.transmission(angle))
    expected = needle_top(1, 0.5, angle, z_mm=0.4)
    assert found == pytest.approx(expected, abs=1.0)
    assert line.camera.simulation.tip_position(angle * q.deg) == pytest.approx(expected, abs=1e-6)
    assert line.camera.simulation.tip_position() == pytest.approx(expected, abs=1e-6)  # the motor's angle


def test_half_a_turn_mirrors_the_tip_about_the_axis_column():
    line = Beamline(Needle(0.8 * q.mm, 0.3 * q.mm, -0.2 * q.mm), axis_column=300 * q.pixel)
    for angle in (20, 70):
        first, second = top_of(line.transmission(angle)), top_of(line.transmission(angle + 180))
        assert (first[0] + second[0]) / 2 == pytest.approx(300, abs=0.5)
        assert first[1] == second[1]
    assert line.camera.simulation.axis_position() == 300


@pytest.mark.parametrize("pitch", [3.0, -2.0])
def test_pitch_moves_the_tip_vertically_as_sin_theta(pitch):
    x_motor = RotationMotor(position=pitch * q.deg)
    line = Beamline(Needle(1 * q.mm, 0.2 * q.mm), x_motor=x_motor)
    angles = np.arange(0, 360, 30)
    rows = np.array([top_of(line.transmission(angle))[1] for angle in angles])
    # row = a + b sin(theta) + c cos(theta): b is the tip's orbit radius times sin(pitch), in pixels.
    design = np.column_stack([np.ones_like(angles), np.sin(np.radians(angles)), np.cos(np.radians(angles))])
    _, b, c = np.linalg.lstsq(design, rows, rcond=None)[0]
    radius = 1 / PIXEL_MM
    assert b == pytest.approx(
        radius * math.sin(math.radians(pitch)), abs=0.5
    )  # downstream goes down for pitch > 0
    assert abs(c) < 0.5
    assert line.camera.simulation.pitch.m_as(q.deg) == pytest.approx(pitch)
    for angle in (45, 135):
        assert line.camera.simulation.tip_position(angle * q.deg) == pytest.approx(
            needle_top(1, 0.2, angle, pitch_deg=pitch), abs=1e-6
        )


@pytest.mark.parametrize("roll", [5.0, -3.0])
def test_roll_inclines_the_needle(roll):
    z_motor = RotationMotor(position=roll * q.deg)
    line = Beamline(Needle(0.5 * q.mm, 0.8 * q.mm), z_motor=z_motor)
    transmission = line.transmission(90)
    _, top = top_of(transmission)
    upper, lower = int(top) + 40, int(top) + 240
    slope = (needle_column(transmission, lower) - needle_column(transmission, upper)) / (lower - upper)
    assert slope == pytest.approx(-math.tan(math.radians(roll)), abs=0.005)  # the top leans towards +x
    assert line.camera.simulation.roll.m_as(q.deg) == pytest.approx(roll)
    assert top_of(transmission) == pytest.approx(needle_top(0.5, 0.8, 90, roll_deg=roll), abs=1.0)


def test_fixed_tilts_and_motors_add_up_and_the_orbit_centre_and_axis_follow():
    x_motor, z_motor = RotationMotor(position=2 * q.deg), RotationMotor(position=-1 * q.deg)
    line = Beamline(
        Needle(1 * q.mm, 0.4 * q.mm), x_motor=x_motor, z_motor=z_motor, pitch=1 * q.deg, roll=4 * q.deg
    )
    simulation = line.camera.simulation
    assert (simulation.roll, simulation.pitch) == (3 * q.deg, 3 * q.deg)
    for angle in (0, 60, 250):
        assert simulation.tip_position(angle * q.deg) == pytest.approx(
            needle_top(1, 0.4, angle, roll_deg=3, pitch_deg=3), abs=1e-6
        )
        assert top_of(line.transmission(angle)) == pytest.approx(
            needle_top(1, 0.4, angle, roll_deg=3, pitch_deg=3), abs=1.0
        )
    tips = np.array([needle_top(1, 0.4, angle, roll_deg=3, pitch_deg=3) for angle in range(0, 360, 10)])
    assert simulation.orbit_center() == pytest.approx(tuple(tips.mean(axis=0)), abs=1e-6)
    assert simulation.axis_position(CENTRE[1] - 100) == pytest.approx(
        CENTRE[0] + 100 * math.tan(math.radians(3))
    )
    assert simulation.project(0 * q.mm, 0 * q.mm) == pytest.approx(CENTRE)


def test_the_flat_motor_moves_the_stage_then_takes_the_sample_out():
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm), out_of_beam_distance=2 * q.mm)
    line.flat_motor.position = -0.65 * q.mm  # 100 pixels to the left
    transmission = (line.frame(0) - DARK) / PHOTONS
    column, row = needle_top(1, 0.5, 0)
    assert top_of(transmission) == pytest.approx((column - 100, row), abs=1.0)
    assert line.camera.simulation.tip_position() == pytest.approx((column - 100, row))
    line.flat_motor.position = 2 * q.mm
    frame = line.camera.grab(TIMEOUT)
    assert np.all(frame == DARK + PHOTONS) and not frame.metadata["sample_in_beam"]


def test_the_sphere_centre_is_where_the_geometry_puts_it():
    line = Beamline(Sphere(0.6 * q.mm, -0.2 * q.mm, 0.3 * q.mm, radius=0.1 * q.mm))
    for angle in (0, 120, 250):
        expected = detector((0.6 / PIXEL_MM, -0.2 / PIXEL_MM, 0.3 / PIXEL_MM), angle)
        assert centroid(line.transmission(angle)) == pytest.approx(expected, abs=0.2)
        assert line.camera.simulation.sphere_center(angle * q.deg) == pytest.approx(expected, abs=1e-6)
    column, row = detector((0.6 / PIXEL_MM, -0.2 / PIXEL_MM, 0.3 / PIXEL_MM), 0)
    middle = line.transmission(0)[round(row), round(column)]
    assert middle == pytest.approx(math.exp(-MU_PER_MM * 0.2), abs=0.02)  # through the whole diameter


def test_the_focus_blur_grows_with_the_distance_from_the_best_focus():
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm), best_focus=1 * q.mm, focus_blur=3 * q.pixel / q.mm)

    def gradient_energy(position):
        line.focus_motor.position = position * q.mm
        frame = line.frame(30)
        rows, columns = np.gradient(frame)
        return float((rows**2 + columns**2).sum())

    energies = [gradient_energy(position) for position in (1, 1.5, 2, 3, 5)]
    assert all(a > b for a, b in zip(energies, energies[1:])), energies
    assert gradient_energy(0) == pytest.approx(energies[2], rel=0.01)  # 1 mm either side blurs alike
    assert line.camera.simulation.blur_sigma == pytest.approx(3.0)
    assert line.camera.grab(TIMEOUT).metadata["blur_px"] == pytest.approx(3.0)
    # Blurring keeps the light: the frame's sum does not change.
    line.focus_motor.position = 1 * q.mm
    sharp = line.frame()
    line.focus_motor.position = 3 * q.mm
    assert line.frame().sum() == pytest.approx(sharp.sum(), rel=1e-4)


def test_a_region_of_interest_is_the_full_frame_cut_also_when_blurred():
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm))
    line.focus_motor.position = 2 * q.mm
    full = line.frame(10)
    camera = line.camera
    camera.roi_width, camera.roi_height = 100 * q.pixel, 80 * q.pixel
    camera.roi_x0, camera.roi_y0 = 430 * q.pixel, 150 * q.pixel
    cut = line.frame()
    assert cut.shape == (80, 100)
    assert np.abs(cut - full[150:230, 430:530]).max() <= 1


def test_a_gaussian_beam_off_the_centre():
    beam = Beam(x=0.5 * q.mm, y=-0.3 * q.mm, width=2 * q.mm, height=1.5 * q.mm)
    line = Beamline(beam=beam)
    photons = line.frame() - DARK
    column, row = CENTRE[0] + 0.5 / PIXEL_MM, CENTRE[1] + 0.3 / PIXEL_MM  # y up is a smaller row
    assert line.camera.simulation.beam_center() == pytest.approx((column, row))
    for profile, centre, fwhm in ((photons[round(row)], column, 2), (photons[:, round(column)], row, 1.5)):
        bright = np.nonzero(profile > 200)[0]  # where rounding to whole counts does not matter
        a, b, _ = np.polyfit(bright, np.log(profile[bright]), 2)  # a Gaussian's log is a parabola
        assert -b / (2 * a) == pytest.approx(centre, abs=0.5)
        sigma = fwhm / PIXEL_MM / (2 * math.sqrt(2 * math.log(2)))
        assert a == pytest.approx(-1 / (2 * sigma**2), rel=0.02)
    assert line.frame().max() == pytest.approx(DARK + PHOTONS, abs=1)
    line.camera.simulation.beam = Beam()  # flat again
    assert np.all(line.frame() == DARK + PHOTONS)


# -- noise -----------------------------------------------------------------------------------


def test_seeded_noise_is_reproducible_and_every_frame_differs():
    def frames(seed):
        camera = Camera(sample=Needle(1 * q.mm, 0.5 * q.mm), seed=seed)
        singles = [np.asarray(camera.grab(TIMEOUT)) for _ in range(2)]
        camera.trigger_source = camera.trigger_sources.SOFTWARE
        with camera.recording():
            for _ in range(2):
                camera.trigger().join(TIMEOUT)
            recorded = [np.asarray(camera.grab(TIMEOUT)) for _ in range(2)]
        return singles + recorded

    first, again, other = frames(7), frames(7), frames(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other))
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[2], first[3])
    unseeded = Camera(sample=Needle(1 * q.mm, 0.5 * q.mm))
    assert not np.array_equal(np.asarray(unseeded.grab(TIMEOUT)), first[0])
    quiet = Camera(sample=Needle(1 * q.mm, 0.5 * q.mm), simulate=False)  # noise off, as noise=False
    assert np.array_equal(quiet.grab(TIMEOUT), quiet.grab(TIMEOUT)) and not quiet.simulation.noise


def test_photon_noise_has_poisson_statistics():
    camera = Camera(flux=2e5 / q.s, seed=3)  # 200 photons per pixel, read noise 2 counts
    counts = np.asarray(camera.grab(TIMEOUT), dtype=float)
    assert counts.mean() == pytest.approx(DARK + 200, rel=0.002)
    assert counts.var() == pytest.approx(200 + 2**2, rel=0.02)
    faint = Camera(flux=3000 / q.s, read_noise=0, seed=4)  # 3 photons per pixel: the Poisson law itself
    photons = np.asarray(faint.grab(TIMEOUT), dtype=float) - DARK
    assert photons.mean() == pytest.approx(3, rel=0.02) and photons.var() == pytest.approx(3, rel=0.03)
    assert np.all(photons == np.round(photons)) and photons.min() >= 0
    assert np.mean(photons == 0) == pytest.approx(math.exp(-3), abs=0.005)
    assert np.mean(photons == 3) == pytest.approx(math.exp(-3) * 27 / 6, abs=0.005)


def test_exposure_time_scales_the_counts_and_bright_pixels_saturate():
    camera = Camera(flux=2e6 / q.s, noise=False)
    camera.exposure_time = 5 * q.ms
    assert np.all(camera.grab(TIMEOUT) == DARK + 10000)
    camera.exposure_time = 100 * q.ms
    assert np.all(camera.grab(TIMEOUT) == 65535)


# -- frames: when the devices are read, metadata, buffered cameras -----------------------------------


def test_a_triggered_frame_shows_the_scene_at_the_trigger():
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm))
    camera = line.camera
    camera.trigger_source = camera.trigger_sources.SOFTWARE
    with camera.recording():
        camera.trigger().join(TIMEOUT)
        line.stage.position = 90 * q.deg
        line.shutter.close().join(TIMEOUT)
        camera.trigger().join(TIMEOUT)
        line.shutter.open().join(TIMEOUT)
        first, second = camera.grab(TIMEOUT), camera.grab(TIMEOUT)
    assert (first.metadata["angle_deg"], first.metadata["beam"]) == (0.0, True)
    assert (second.metadata["angle_deg"], second.metadata["beam"]) == (90.0, False)
    assert top_of((np.asarray(first, dtype=float) - DARK) / PHOTONS) == pytest.approx(
        needle_top(1, 0.5, 0), abs=1
    )
    assert np.all(np.asarray(second) == DARK)


def test_frames_carry_the_angles_and_positions_they_were_made_with():
    x_motor = RotationMotor(position=1 * q.deg)
    line = Beamline(Needle(1 * q.mm, 0.5 * q.mm), x_motor=x_motor, roll=0.5 * q.deg)
    line.stage.position = 33 * q.deg
    line.flat_motor.position = 0.25 * q.mm
    line.focus_motor.position = -1 * q.mm
    frame = line.camera.grab(TIMEOUT)
    assert frame.dtype == np.uint16 and frame.shape == (ROWS, COLUMNS)
    expected = {
        "angle_deg": 33.0,
        "roll_deg": 0.5,
        "pitch_deg": 1.0,
        "beam": True,
        "sample_in_beam": True,
        "blur_px": 2.0,
        "flat_position_mm": 0.25,
        "focus_position_mm": -1.0,
    }
    assert {key: frame.metadata[key] for key in expected} == pytest.approx(expected)
    assert {"frame", "timestamp", "exposure_time", "roi", "trigger_source"} <= set(frame.metadata)
    json.dumps(frame.metadata)  # what the TIFF writers store


def test_a_buffered_camera_images_the_beamline_too():
    stage = RotationMotor(position=180 * q.deg)
    camera = BufferedCamera(
        rotation_motor=stage, sample=Needle(1 * q.mm, 0.5 * q.mm), noise=False, flux=2e6 / q.s
    )
    camera.trigger_source = camera.trigger_sources.SOFTWARE
    with camera.recording():
        camera.trigger().join(TIMEOUT)
    [frame] = list(camera.readout_buffer())
    assert top_of((np.asarray(frame, dtype=float) - DARK) / PHOTONS) == pytest.approx(
        needle_top(1, 0.5, 180), abs=1
    )


# -- wrong use -------------------------------------------------------------------------------------

WRONG = [
    (
        {"rotation_motor": LinearMotor},
        CameraError,
        r"Camera: rotation_motor=LinearMotor#\d+ is not a rotation motor",
    ),
    ({"x_motor": LinearMotor}, CameraError, r"Camera: x_motor=LinearMotor#\d+ is not a rotation motor"),
    ({"z_motor": "motor"}, CameraError, r"Camera: z_motor='motor' is not a rotation motor"),
    (
        {"flat_motor": RotationMotor},
        CameraError,
        r"Camera: flat_motor=RotationMotor#\d+ is not a linear motor",
    ),
    ({"focus_motor": Shutter}, CameraError, r"Camera: focus_motor=Shutter#\d+ is not a linear motor"),
    ({"shutter": LinearMotor}, CameraError, r"Camera: shutter=LinearMotor#\d+ is not a shutter"),
    ({"sample": "needle"}, CameraError, r"Camera: sample='needle' is not a sample model"),
    ({"beam": "wide"}, CameraError, r"Camera: beam='wide' is not a Beam"),
    (
        {"sample": Needle(3 * q.mm, 0 * q.mm)},
        LimitError,
        r"Camera: sample=Needle\(x=3 mm, y=0 mm.*is outside the field of view: its tip would be at",
    ),
    (
        {"sample": Sphere(0 * q.mm, 2 * q.mm)},
        LimitError,
        r"Camera: sample=Sphere\(x=0 mm, y=2 mm.*its centre",
    ),
    ({"pixel_size": -1 * q.um}, LimitError, r"Camera: pixel_size=-1 µm must be greater than 0"),
    ({"pixel_size": 0 * q.um}, LimitError, r"Camera: pixel_size=0 µm must be greater than 0"),
    ({"pixel_size": 6.5}, UnitError, r"Camera: pixel_size=6\.5 is not a length"),
    ({"pixel_size": 6.5 * q.s}, UnitError, r"Camera: pixel_size=6\.5 s is not a length"),
    ({"pixel_size": float("nan") * q.um}, LimitError, r"Camera: pixel_size=nan µm is not a finite value"),
    ({"flux": 5 * q.mm}, UnitError, r"Camera: flux=5 mm is not photons per pixel per second"),
    ({"flux": -1 / q.s}, LimitError, r"Camera: flux=-1 1/s must be at least 0"),
    ({"dark": -5}, LimitError, r"Camera: dark=-5 must be between 0 and 65535"),
    ({"dark": "100"}, UnitError, r"Camera: dark='100' is not a number of counts"),
    ({"read_noise": 2 * q.mm}, UnitError, r"Camera: read_noise=2 mm is not a number of counts"),
    ({"roll": 5}, UnitError, r"Camera: roll=5 is not an angle"),
    ({"pitch": 95 * q.deg}, LimitError, r"Camera: pitch=95 deg must be less than 90° either way"),
    ({"axis_column": 700 * q.pixel}, LimitError, r"Camera: axis_column=700 pixel is off the sensor"),
    ({"axis_column": 3 * q.mm}, UnitError, r"Camera: axis_column=3 mm is not in pixels"),
    ({"seed": -1}, LimitError, r"Camera: seed=-1 is not a whole number >= 0"),
    ({"seed": 1.5}, LimitError, r"Camera: seed=1\.5 is not a whole number >= 0"),
    ({"focus_blur": 2 / q.mm}, UnitError, r"Camera: focus_blur=2 1/mm is not pixels per length"),
    ({"best_focus": 2 * q.deg}, UnitError, r"Camera: best_focus=2 deg is not a length"),
    (
        {"out_of_beam_distance": 0 * q.mm},
        LimitError,
        r"Camera: out_of_beam_distance=0 mm must be greater than 0",
    ),
    ({"in_beam_position": 1}, UnitError, r"Camera: in_beam_position=1 is not a length"),
]


@pytest.mark.parametrize(("arguments", "error", "message"), WRONG, ids=[next(iter(w[0])) for w in WRONG])
def test_wrong_arguments_are_refused_naming_the_camera_the_argument_and_the_value(arguments, error, message):
    arguments = {name: value() if isinstance(value, type) else value for name, value in arguments.items()}
    with pytest.raises(error, match=message) as raised:
        Camera(**arguments)
    assert isinstance(raised.value, ConcertError)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Needle(1, 0.5), UnitError, r"Needle: x=1 is not a length \(write e\.g\. 0\.5 \* q\.mm\)"),
        (lambda: Needle(1 * q.mm, 0.5 * q.s), UnitError, r"Needle: y=0\.5 s is not a length"),
        (
            lambda: Needle(1 * q.mm, 0 * q.mm, radius=0 * q.mm),
            LimitError,
            r"Needle: radius=0 mm must be greater",
        ),
        (
            lambda: Sphere(0 * q.mm, 0 * q.mm, attenuation=-1 / q.mm),
            LimitError,
            r"Sphere: attenuation=-1 1/mm",
        ),
        (
            lambda: Sphere(0 * q.mm, 0 * q.mm, attenuation=2 * q.mm),
            UnitError,
            r"Sphere: attenuation=2 mm is not",
        ),
        (lambda: Beam(width=-1 * q.mm), LimitError, r"Beam: width=-1 mm must be greater than 0"),
        (lambda: Beam(x=1), UnitError, r"Beam: x=1 is not a length"),
    ],
)
def test_wrong_sample_models_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_background_and_the_beamline_exclude_each_other():
    with pytest.raises(
        CameraError, match=r"Camera: background=<array 2x2 .*> cannot be combined .*\(sample\)"
    ):
        Camera(np.zeros((2, 2)), sample=Needle(0 * q.mm, 0 * q.mm))


def test_wrong_questions_to_the_ground_truth_are_refused():
    camera = Camera(sample=Sphere(0.5 * q.mm, 0 * q.mm), noise=False)
    simulation = camera.simulation
    with pytest.raises(
        CameraError, match=rf"{camera!r}\.simulation\.tip_position\(\) needs a Needle .* Sphere\("
    ):
        simulation.tip_position()
    with pytest.raises(UnitError, match="angle=90 is not an angle"):
        simulation.sphere_center(90)
    with pytest.raises(
        CameraError, match=r"sphere_center\(\) needs a Sphere as sample, but the sample is Needle"
    ):
        Camera(sample=Needle(0.5 * q.mm, 0 * q.mm)).simulation.sphere_center()
    with pytest.raises(CameraError, match=r"orbit_center\(\) needs a sample, but the sample is None"):
        Camera(noise=False).simulation.orbit_center()
    with pytest.raises(UnitError, match=r"project\(\): z=1 is not a length"):
        simulation.project(0 * q.mm, 0 * q.mm, 1)


def test_a_sample_set_later_is_checked_and_a_refused_one_changes_nothing():
    camera = Camera(sample=Needle(1 * q.mm, 0.5 * q.mm), noise=False)
    simulation = camera.simulation
    assert isinstance(simulation, Simulation)
    with pytest.raises(
        LimitError, match=rf"{camera!r}\.simulation: sample=Needle\(x=5 mm.*outside the field of view"
    ):
        simulation.sample = Needle(5 * q.mm, 0 * q.mm)
    with pytest.raises(CameraError, match=r"sample=3 is not a sample model"):
        simulation.sample = 3
    with pytest.raises(CameraError, match=r"beam=None is not a Beam"):
        simulation.beam = None
    assert simulation.sample == Needle(1 * q.mm, 0.5 * q.mm) and simulation.beam == Beam()
    simulation.sample = Sphere(0.5 * q.mm, 0 * q.mm)
    assert simulation.sphere_center() == pytest.approx((CENTRE[0] + 0.5 / PIXEL_MM, CENTRE[1]))
    simulation.sample = None
    assert np.all(np.asarray(camera.grab(TIMEOUT)) == DARK + 200)


def test_the_settings_read_back_in_their_units():
    simulation = Camera(
        pixel_size=13 * q.um, flux=1e6 / q.s, dark=50, read_noise=1.5, seed=9, in_beam_position=2 * q.mm
    ).simulation
    assert simulation.pixel_size.m_as(q.um) == pytest.approx(13) and simulation.flux == 1e6 / q.s
    assert (simulation.dark, simulation.read_noise, simulation.seed, simulation.noise) == (50, 1.5, 9, True)
    assert simulation.in_beam_position == 2 * q.mm
    assert simulation.out_of_beam_distance.m_as(q.mm) == pytest.approx(
        640 * 13e-3
    )  # the field of view's width
    assert simulation.best_focus == 0 * q.mm and simulation.focus_blur == 2 * q.pixel / q.mm
    assert simulation.axis_column == CENTRE[0] and simulation.angle == 0 * q.deg
    assert simulation.beam_on and not simulation.sample_in_beam and simulation.blur_sigma == 0
    assert repr(Needle(1 * q.mm, 0.5 * q.mm)) == (
        "Needle(x=1 mm, y=0.5 mm, z=0 mm, radius=50 µm, attenuation=20 1/mm)"
    )
