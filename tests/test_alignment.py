"""The beamline processes (issue 12, SPEC §15) end to end on the simulated beamline.

Every result is checked against the simulation's ground truth
(``camera.simulation``: the roll and pitch in effect, the axis's column, the
beam's centre, the metadata a frame was made with), never against what the
process itself reports.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from concert import config
from concert.coroutines.base import coroutine
from concert.devices.cameras.dummy import Beam, Camera, Needle
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.devices.shutters.dummy import Shutter
from concert.exceptions import ConcertError, LimitError, ProcessError, StateError, UnitError
from concert.polling import busy_wait
from concert.processes.beamline import (
    AlignmentError,
    acquire_dark,
    acquire_frames_360,
    acquire_image_with_beam,
    align_rotation_axis,
    center_to_beam,
    determine_rotation_axis,
    drift_to_beam,
    find_beam,
)
from concert.quantities import q
from tests.conftest import TIMEOUT

EPS = 0.1 * q.deg  # align_rotation_axis's default tolerance
TURN_FAST = 36000 * q.deg / q.s  # the fastest simulated rotation stage: a turn in 10 ms
MOVE_FAST = 10 * q.m / q.s


pytestmark = pytest.mark.usefixtures("no_progress_bar")  # see tests/conftest.py


class Rig:
    """A simulated tomography stage: shutter, rotation stage, two tilt motors, flat motor, needle."""

    def __init__(
        self,
        roll=0 * q.deg,
        pitch=0 * q.deg,
        seed=0,
        needle=(1.2 * q.mm, 0.5 * q.mm),
        turn_speed=TURN_FAST,
        tilt_speed=TURN_FAST,
        sample=True,
        stage_tilt=None,
        **scene,
    ):
        self.shutter = Shutter()
        self.rotation = RotationMotor(motion_velocity=turn_speed)
        self.z_motor = RotationMotor(position=roll, motion_velocity=tilt_speed)  # adds to the roll
        self.x_motor = RotationMotor(position=pitch, motion_velocity=tilt_speed)  # adds to the pitch
        self.flat_motor = LinearMotor(motion_velocity=MOVE_FAST)
        self.camera = Camera(
            shutter=self.shutter,
            rotation_motor=self.rotation,
            x_motor=self.x_motor,
            z_motor=self.z_motor,
            flat_motor=self.flat_motor,
            sample=Needle(*needle) if sample else None,
            seed=seed,
            roll=None if stage_tilt is None else stage_tilt[0],
            pitch=None if stage_tilt is None else stage_tilt[1],
            **scene,
        )
        self.truth = self.camera.simulation

    def align(self, **kwargs):
        kwargs.setdefault("x_motor", self.x_motor)
        kwargs.setdefault("z_motor", self.z_motor)
        return align_rotation_axis(self.camera, self.rotation, **kwargs)


def interrupt_after(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


# -- align_rotation_axis ---------------------------------------------------------------------------


def test_align_levels_the_axis_from_5_degrees_roll_and_3_degrees_pitch(log_of):
    records = log_of("concert.processes.beamline").records
    rig = Rig(roll=5 * q.deg, pitch=3 * q.deg, seed=1)
    assert abs(rig.truth.roll - 5 * q.deg) < 1e-6 * q.deg and abs(rig.truth.pitch - 3 * q.deg) < 1e-6 * q.deg
    roll, pitch, center = rig.align().result(TIMEOUT)
    assert abs(rig.truth.roll) < EPS and abs(rig.truth.pitch) < EPS
    # The measurement returned describes the stage as it was left: the ground truth, within the tolerance.
    assert abs(roll - rig.truth.roll) < EPS and abs(pitch - rig.truth.pitch) < EPS
    true_center = rig.truth.orbit_center()
    assert abs(center[0].m_as(q.pixel) - true_center[0]) < 1
    assert abs(center[1].m_as(q.pixel) - true_center[1]) < 1
    # Each iteration is logged with what it measured; the first saw the misalignment.
    messages = [record.getMessage() for record in records]
    assert 2 <= len(messages) <= 5 and all("iteration" in message for message in messages)
    measured = re.match(
        r"align_rotation_axis\(\) iteration 1 of at most 5: roll ([-+.\d]+)°, pitch ([-+.\d]+)°$", messages[0]
    )
    assert measured, messages[0]
    assert abs(float(measured[1]) - 5) < 0.1 and abs(float(measured[2]) - 3) < 0.1
    # Every iteration is a full turn in the positive direction; the camera is as it was.
    turns = rig.rotation.position / (360 * q.deg)
    assert abs(turns - len(messages)) < 1e-6
    assert rig.camera.state == "standby" and rig.camera.trigger_source == rig.camera.trigger_sources.AUTO


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_align_converges_from_a_random_misalignment(seed):
    rng = np.random.default_rng(seed)
    roll, pitch = rng.uniform(-5, 5) * q.deg, rng.uniform(-3, 3) * q.deg
    needle = (rng.uniform(0.8, 1.5) * q.mm * rng.choice([-1, 1]), rng.uniform(0.2, 0.8) * q.mm)
    rig = Rig(roll=roll, pitch=pitch, seed=seed, needle=needle)
    rig.align().result(TIMEOUT)
    assert abs(rig.truth.roll) < EPS and abs(rig.truth.pitch) < EPS, (roll, pitch, needle)


def test_align_corrects_a_fixed_tilt_of_the_stage_with_the_motors():
    # The stage itself is tilted, the motors start at 0: they end opposite the tilt.
    rig = Rig(seed=5, stage_tilt=(-2 * q.deg, 1.5 * q.deg))
    assert abs(rig.truth.roll + 2 * q.deg) < 1e-6 * q.deg
    rig.align().result(TIMEOUT)
    assert abs(rig.truth.roll) < EPS and abs(rig.truth.pitch) < EPS
    assert abs(rig.z_motor.position - 2 * q.deg) < EPS and abs(rig.x_motor.position + 1.5 * q.deg) < EPS


def test_align_of_an_aligned_stage_moves_no_tilt_motor():
    rig = Rig(seed=5)
    rig.align().result(TIMEOUT)
    assert rig.rotation.position == 360 * q.deg  # one turn: measured, within tolerance
    assert rig.z_motor.position == 0 * q.deg and rig.x_motor.position == 0 * q.deg


def test_align_with_one_tilt_motor_corrects_only_its_angle():
    rig = Rig(roll=3 * q.deg, pitch=2 * q.deg, seed=6)
    _, pitch, _ = rig.align(x_motor=None).result(TIMEOUT)
    assert abs(rig.truth.roll) < EPS
    assert rig.x_motor.position == 2 * q.deg and abs(rig.truth.pitch - 2 * q.deg) < 0.01 * q.deg
    assert abs(pitch - 2 * q.deg) < EPS  # measured and reported, not corrected


def test_align_without_tilt_motors_measures_once():
    rig = Rig(roll=-1 * q.deg, pitch=2 * q.deg, seed=7)
    roll, pitch, _ = align_rotation_axis(rig.camera, rig.rotation).result(TIMEOUT)
    assert abs(roll - rig.truth.roll) < EPS and abs(pitch - rig.truth.pitch) < EPS
    assert rig.rotation.position == 360 * q.deg  # one turn
    assert rig.z_motor.position == -1 * q.deg and rig.x_motor.position == 2 * q.deg


def test_align_flat_corrected_with_a_flat_and_a_dark():
    rig = Rig(roll=2 * q.deg, pitch=-2 * q.deg, seed=8)
    dark = acquire_dark(rig.camera, rig.shutter).result(TIMEOUT)
    flat = acquire_image_with_beam(rig.camera, rig.shutter, rig.flat_motor, 10 * q.mm).result(TIMEOUT)
    rig.flat_motor.position = 0 * q.mm
    seen = []
    rig.align(flat=flat, dark=dark, frame_consumer=seen.append).result(TIMEOUT)
    assert abs(rig.truth.roll) < EPS and abs(rig.truth.pitch) < EPS
    # The consumer got every frame, flat-corrected: a background of 1, the needle below it.
    assert len(seen) % 10 == 0 and len(seen) >= 20
    assert all(frame.dtype.kind == "f" for frame in seen)
    assert abs(np.median(seen[0]) - 1) < 0.02 and seen[0].min() < 0.5


def test_align_feeds_a_push_style_consumer():
    received = []

    @coroutine
    def collect():
        while True:
            received.append((yield))

    rig = Rig(seed=9)
    rig.align(num_frames=6, frame_consumer=collect()).result(TIMEOUT)
    angles = [frame.metadata["angle_deg"] for frame in received]
    assert np.allclose(angles, [0, 60, 120, 180, 240, 300])


def test_align_that_does_not_converge_leaves_the_motors_at_the_last_measurement():
    rig = Rig(roll=5 * q.deg, pitch=3 * q.deg, seed=10)
    with pytest.raises(AlignmentError, match=r"not within 0\.100° after 1 iterations: roll \+\d") as caught:
        rig.align(max_iterations=1).result(TIMEOUT)
    assert rig.z_motor.position == 5 * q.deg and rig.x_motor.position == 3 * q.deg  # not moved after it
    assert f"{rig.z_motor!r} at 5 deg, {rig.x_motor!r} at 3 deg" in str(caught.value)
    assert isinstance(caught.value, ConcertError)


@pytest.mark.parametrize("what", ["no sample", "shutter closed", "sample out of the beam"])
def test_align_that_sees_no_sample_says_so_and_leaves_the_motors(what):
    rig = Rig(roll=1 * q.deg, pitch=1 * q.deg, seed=11, sample=what != "no sample")
    if what == "shutter closed":
        rig.shutter.close().join(TIMEOUT)
    elif what == "sample out of the beam":
        rig.flat_motor.position = 10 * q.mm
    with pytest.raises(AlignmentError, match=r"align_rotation_axis\(\): no sample visible .*shows no needle"):
        rig.align().result(TIMEOUT)
    assert rig.z_motor.position == 1 * q.deg and rig.x_motor.position == 1 * q.deg
    assert rig.rotation.position == 360 * q.deg and rig.camera.state == "standby"


def test_align_refuses_wrong_devices_and_arguments_before_moving_anything():
    rig = Rig(roll=1 * q.deg, seed=12)
    linear = LinearMotor()
    cases = [
        (ProcessError, r"camera must be a camera .*not LinearMotor#\d+", dict(camera=linear)),
        (
            ProcessError,
            r"rotation_motor must be a rotation motor .*not LinearMotor#\d+",
            dict(rotation=linear),
        ),
        (ProcessError, r"x_motor must be a rotation motor .*not LinearMotor#\d+", dict(x_motor=linear)),
        (ProcessError, r"z_motor must be a rotation motor .*not 'z'", dict(z_motor="z")),
        (UnitError, r"absolute_eps=0\.1 must be a quantity in deg", dict(absolute_eps=0.1)),
        (UnitError, r"absolute_eps=0\.1 mm must be a quantity in deg", dict(absolute_eps=0.1 * q.mm)),
        (ProcessError, r"absolute_eps=-1 deg must be a finite number above 0", dict(absolute_eps=-1 * q.deg)),
        (ProcessError, r"num_frames=2 must be a whole number >= 3", dict(num_frames=2)),
        (ProcessError, r"max_iterations=0 must be a whole number >= 1", dict(max_iterations=0)),
        (ProcessError, r"measure must be a callable", dict(measure=5)),
        (ProcessError, r"flat must be a 2-D image", dict(flat=np.ones(5))),
        (
            ProcessError,
            r"flat has shape \(4, 4\), but the frames of Camera#\d+ have \(480, 640\)",
            dict(flat=np.ones((4, 4))),
        ),
        (ProcessError, r"a dark without a flat", dict(dark=np.ones((480, 640)))),
        (ProcessError, r"frame_consumer must be a callable", dict(frame_consumer=3)),
    ]
    for error, message, case in cases:
        camera = case.pop("camera", rig.camera)
        rotation = case.pop("rotation", rig.rotation)
        kwargs = {"x_motor": rig.x_motor, "z_motor": rig.z_motor, **case}
        with pytest.raises(error, match=message):
            align_rotation_axis(camera, rotation, **kwargs).result(TIMEOUT)
    assert rig.rotation.position == 0 * q.deg and rig.z_motor.position == 1 * q.deg
    assert linear.position == 0 * q.mm
    with rig.camera.recording():
        with pytest.raises(StateError, match=r"needs Camera#\d+ in standby .*'recording'"):
            rig.align().result(TIMEOUT)
    assert rig.rotation.position == 0 * q.deg


def test_align_refuses_a_measure_that_returns_no_angles():
    rig = Rig(seed=13)
    with pytest.raises(ProcessError, match=r"measure returned the roll 1.0, expected an angle"):
        rig.align(measure=lambda tips: (1.0, 2.0, (0, 0))).result(TIMEOUT)


def test_cancelling_an_alignment_stops_the_turning_stage(asynchronous):
    rig = Rig(roll=2 * q.deg, seed=14, turn_speed=90 * q.deg / q.s)  # a turn takes 4 s
    future = rig.align()
    busy_wait(lambda: rig.rotation.position > 40 * q.deg, sleep_time=0.001, timeout=TIMEOUT)
    assert future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError, match=r"align_rotation_axis\(.*\) was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    assert rig.rotation.state == "standby" and 40 * q.deg < rig.rotation.position < 360 * q.deg
    assert rig.z_motor.position == 2 * q.deg  # no correction was made
    assert rig.camera.state == "standby"


def test_cancelling_an_alignment_stops_the_tilt_motors_part_way(asynchronous):
    rig = Rig(roll=5 * q.deg, pitch=3 * q.deg, seed=15, tilt_speed=1 * q.deg / q.s)  # 5 s to correct
    future = rig.align()
    busy_wait(lambda: rig.z_motor.position < 4.9 * q.deg, sleep_time=0.001, timeout=TIMEOUT)
    assert future.cancel(timeout=TIMEOUT) and future.cancelled()
    assert rig.z_motor.state == "standby" and rig.x_motor.state == "standby"
    assert 0 * q.deg < rig.z_motor.position < 4.9 * q.deg
    assert 0 * q.deg < rig.x_motor.position < 3 * q.deg
    assert rig.z_motor.position == rig.truth.roll  # nothing moves after the stop: the truth is where they are


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread"
)
def test_ctrl_c_while_joining_an_alignment_stops_the_stage():
    # Works in both modes: with DISABLE_ASYNC the alignment runs in this thread and the signal lands in it.
    rig = Rig(roll=2 * q.deg, seed=16, turn_speed=36 * q.deg / q.s)  # a second between frames
    timers = []

    def first_frame(frame):
        if not timers:
            timers.append(interrupt_after(0.2))  # while the stage turns towards the second frame

    with pytest.raises(KeyboardInterrupt):
        rig.align(frame_consumer=first_frame).join(TIMEOUT)
    timers[0].join(TIMEOUT)
    assert rig.rotation.state == "standby" and 0 * q.deg < rig.rotation.position < 36 * q.deg
    assert rig.z_motor.position == 2 * q.deg and rig.camera.state == "standby"


def test_progress_bar_when_enabled(capsys):
    config.PROGRESS_BAR = True
    Rig(seed=17).align(num_frames=4).result(TIMEOUT)
    error = capsys.readouterr().err
    assert "align_rotation_axis" in error and "acquire_frames_360" in error


# -- frames over a turn, darks and flats -----------------------------------------------------------


def test_acquire_frames_360_takes_equally_spaced_frames_and_ends_a_turn_further():
    rig = Rig(seed=20)
    rig.rotation.position = 30 * q.deg
    frames = acquire_frames_360(rig.camera, rig.rotation, 8).result(TIMEOUT)
    angles = [frame.metadata["angle_deg"] for frame in frames]  # what each frame was made with
    assert np.allclose(angles, 30 + 45 * np.arange(8))
    assert rig.rotation.position == 390 * q.deg
    tips = [rig.truth.tip_position(angle * q.deg) for angle in angles]
    assert len({round(x) for x, _ in tips}) > 4  # the needle moved from frame to frame
    assert all(frame.dtype == np.uint16 for frame in frames)


def test_acquire_frames_360_refuses_a_turn_beyond_the_limit_before_moving():
    rig = Rig(seed=21)
    rig.rotation.position = 3300 * q.deg
    with pytest.raises(
        LimitError,
        match=r"RotationMotor#\d+ at 3300 deg cannot turn a full 360° in the positive direction: .*3600 deg",
    ):
        acquire_frames_360(rig.camera, rig.rotation, 4).result(TIMEOUT)
    assert rig.rotation.position == 3300 * q.deg
    with pytest.raises(ProcessError, match=r"num_frames=0 must be a whole number >= 1"):
        acquire_frames_360(rig.camera, rig.rotation, 0).result(TIMEOUT)


def test_darks_are_dark_and_flats_bright():
    rig = Rig(seed=22)
    dark = acquire_dark(rig.camera, rig.shutter).result(TIMEOUT)
    assert rig.shutter.state == "closed" and dark.metadata["beam"] is False
    assert abs(dark.mean() - rig.truth.dark) < 1 and dark.std() < 3 * rig.truth.read_noise
    flat = acquire_image_with_beam(rig.camera, rig.shutter, rig.flat_motor, 10 * q.mm).result(TIMEOUT)
    assert rig.shutter.state == "open" and rig.flat_motor.position == 10 * q.mm
    assert flat.metadata["sample_in_beam"] is False and flat.mean() > dark.mean() + 100
    radio = acquire_image_with_beam(rig.camera, rig.shutter, rig.flat_motor, 0 * q.mm).result(TIMEOUT)
    assert radio.metadata["sample_in_beam"] is True and radio.min() < flat.min()
    # A dark with the shutter closed already: it stays closed.
    assert acquire_dark(rig.camera, rig.shutter).result(TIMEOUT).metadata["beam"] is False


def test_darks_and_flats_refuse_wrong_devices():
    rig = Rig(seed=23)
    with pytest.raises(ProcessError, match=r"acquire_dark\(\): shutter must be a shutter .*not Camera#"):
        acquire_dark(rig.camera, rig.camera).result(TIMEOUT)
    with pytest.raises(ProcessError, match=r"flat_motor must be a linear motor .*not RotationMotor#"):
        acquire_image_with_beam(rig.camera, rig.shutter, rig.rotation, 1 * q.mm).result(TIMEOUT)
    with pytest.raises(UnitError):
        acquire_image_with_beam(rig.camera, rig.shutter, rig.flat_motor, 1 * q.deg).result(TIMEOUT)
    with pytest.raises(LimitError):
        acquire_image_with_beam(rig.camera, rig.shutter, rig.flat_motor, 5 * q.m).result(TIMEOUT)
    assert rig.flat_motor.position == 0 * q.mm and rig.shutter.state == "open"


# -- determine_rotation_axis -----------------------------------------------------------------------


@pytest.mark.parametrize("axis_column", [301.7, 340.2])
def test_determine_rotation_axis_finds_the_true_axis_within_a_pixel(axis_column):
    rig = Rig(seed=24, axis_column=axis_column * q.pixel, needle=(0.9 * q.mm, 0.3 * q.mm))
    rig.rotation.position = 20 * q.deg
    axis = determine_rotation_axis(
        rig.camera, rig.shutter, rig.flat_motor, rig.rotation, flat_position=10 * q.mm
    ).result(TIMEOUT)
    assert abs(axis - rig.truth.axis_position()) < 1
    assert rig.shutter.state == "open" and rig.flat_motor.position == 0 * q.mm
    assert rig.rotation.position == 200 * q.deg


def test_determine_rotation_axis_at_a_radio_position_of_its_own():
    rig = Rig(seed=25, needle=(0.9 * q.mm, 0.3 * q.mm))
    axis = determine_rotation_axis(
        rig.camera, rig.shutter, rig.flat_motor, rig.rotation, 10 * q.mm, radio_position=0.325 * q.mm
    ).result(TIMEOUT)
    # The flat motor carries the stage: 0.325 mm is 50 pixels to the right.
    assert abs(rig.truth.axis_position() - (319.5 + 50)) < 1e-6
    assert abs(axis - rig.truth.axis_position()) < 1
    with pytest.raises(UnitError):
        determine_rotation_axis(rig.camera, rig.shutter, rig.flat_motor, rig.rotation, 10).result(TIMEOUT)


# -- the beam ----------------------------------------------------------------------------------------


class CameraTable(LinearMotor):
    """One axis of a simulated table carrying the camera: moving it moves the beam's image the other way.

    A simulated device like the others (not a mock): the simulation's beam is
    fixed relative to the detector, so this motor puts it where a fixed beam
    appears once the camera has moved (``axis`` 0: x, to the right; 1: y, up).
    """

    def __init__(self, axis, **kwargs):
        super().__init__(motion_velocity=MOVE_FAST, **kwargs)
        self.axis, self.camera, self.beam, self.other = axis, None, None, None

    def _move_real(self, position):
        super()._move_real(position)
        self.show()

    def show(self):
        """Put the beam (``(x, y, width, height)`` in the lab, mm) where the camera now sees it."""
        here = {self.axis: self.position, 1 - self.axis: self.other.position}
        x, y, width, height = self.beam
        self.camera.simulation.beam = Beam(x=x - here[0], y=y - here[1], width=width, height=height)


def beam_rig(beam_at=(6 * q.mm, -3 * q.mm), size=0.6 * q.mm, start=(0 * q.mm, 0 * q.mm)):
    xmotor, zmotor = CameraTable(0, position=start[0]), CameraTable(1, position=start[1])
    camera = Camera(beam=Beam(width=size, height=size), seed=30)
    camera.exposure_time = 10 * q.ms  # 2000 counts at the beam's peak
    for motor, other in ((xmotor, zmotor), (zmotor, xmotor)):
        motor.camera, motor.beam, motor.other = camera, (*beam_at, size, size), other
    xmotor.show()
    return camera, xmotor, zmotor


def beam_offset(camera):
    """The true distance (pixels) of the beam's centre from the frame's."""
    x, y = camera.simulation.beam_center()
    return float(np.hypot(x - 319.5, y - 239.5))


PIXEL = 6.5 * q.um
BORDERS = dict(xborder=(-10 * q.mm, 10 * q.mm), zborder=(-8 * q.mm, 8 * q.mm))


def test_find_beam_searches_until_the_beam_is_in_view():
    camera, xmotor, zmotor = beam_rig()
    assert beam_offset(camera) > 500  # out of view: 6 mm to the right, the field of view is 4.2 mm wide
    x, z = find_beam(camera, xmotor, zmotor, PIXEL, **BORDERS).result(TIMEOUT)
    assert (x, z) == (xmotor.position, zmotor.position)
    frame = camera.grab()
    assert np.count_nonzero(frame > 1000) >= 10  # seen
    column, row = camera.simulation.beam_center()
    assert -100 < column < 740 and -100 < row < 580


def test_center_to_beam_centres_an_off_centre_beam():
    camera, xmotor, zmotor = beam_rig(beam_at=(-7 * q.mm, 4 * q.mm))
    x, y = center_to_beam(camera, xmotor, zmotor, PIXEL, tolerance=1, **BORDERS).result(TIMEOUT)
    assert beam_offset(camera) < 1.5
    assert abs(xmotor.position + 7 * q.mm) < 0.01 * q.mm and abs(zmotor.position - 4 * q.mm) < 0.01 * q.mm
    true_x, true_y = camera.simulation.beam_center()
    assert abs(x.m_as(q.pixel) - true_x) < 1 and abs(y.m_as(q.pixel) - true_y) < 1


def test_drift_to_beam_centres_a_beam_in_view_with_two_pixel_sizes():
    camera, xmotor, zmotor = beam_rig(beam_at=(1 * q.mm, 0.8 * q.mm))
    drift_to_beam(camera, xmotor, zmotor, (PIXEL, PIXEL), tolerance=1).result(TIMEOUT)
    assert beam_offset(camera) < 1.5


def test_find_beam_that_finds_nothing_goes_back_and_says_so():
    camera, xmotor, zmotor = beam_rig(beam_at=(30 * q.mm, 0 * q.mm), start=(1 * q.mm, 2 * q.mm))
    with pytest.raises(
        AlignmentError, match=r"find_beam\(\): no beam .* moved back to where the search started"
    ):
        find_beam(camera, xmotor, zmotor, PIXEL, (-5 * q.mm, 5 * q.mm), (-4 * q.mm, 4 * q.mm)).result(TIMEOUT)
    assert xmotor.position == 1 * q.mm and zmotor.position == 2 * q.mm


def test_drift_to_beam_that_does_not_converge_says_where_it_left_the_motors():
    camera, xmotor, zmotor = beam_rig(beam_at=(1 * q.mm, 0.8 * q.mm))
    with pytest.raises(
        AlignmentError, match=r"still .* pixels from the centre .* after 1 moves; the motors were left"
    ):
        drift_to_beam(camera, xmotor, zmotor, 3 * PIXEL, tolerance=1, max_iterations=1).result(TIMEOUT)


def test_beam_processes_refuse_wrong_arguments():
    camera, xmotor, zmotor = beam_rig(beam_at=(1 * q.mm, 0.8 * q.mm))
    with pytest.raises(UnitError, match=r"pixelsize=6\.5 must be a length"):
        drift_to_beam(camera, xmotor, zmotor, 6.5).result(TIMEOUT)
    with pytest.raises(ProcessError, match=r"xmotor must be a linear motor .*not RotationMotor#"):
        drift_to_beam(camera, RotationMotor(), zmotor, PIXEL).result(TIMEOUT)
    with pytest.raises(ProcessError, match=r"xborder=5 mm must be two lengths"):
        find_beam(camera, xmotor, zmotor, PIXEL, 5 * q.mm, (0 * q.mm, 1 * q.mm)).result(TIMEOUT)
    with pytest.raises(ProcessError, match=r"tolerance=0 must be a number of pixels above 0"):
        drift_to_beam(camera, xmotor, zmotor, PIXEL, tolerance=0).result(TIMEOUT)
    assert xmotor.position == 0 * q.mm and zmotor.position == 0 * q.mm


# -- where the processes are importable --------------------------------------------------------------


def test_the_processes_are_reachable_where_the_legacy_api_and_the_package_have_them():
    import concert.processes
    import concert.processes.common as common

    names = {
        "acquire_dark",
        "acquire_frames_360",
        "acquire_image_with_beam",
        "align_rotation_axis",
        "center_to_beam",
        "determine_rotation_axis",
        "drift_to_beam",
        "find_beam",
    }
    for module in (common, concert.processes):
        assert names <= set(module.__all__)
        assert all(getattr(module, name) is globals()[name] for name in names)
    assert {"scan", "ascan", "dscan", "focus"} <= set(concert.processes.__all__)
    # The §7 scan (a function, not its module) and the legacy one stay apart.
    assert callable(concert.processes.scan) and concert.processes.scan.__module__ == "concert.processes.scan"
    assert concert.processes.scan is not common.scan


def test_a_legacy_script_runs_unchanged():
    from concert.measures import rotation_axis
    from concert.processes.common import align_rotation_axis as legacy_align
    from concert.processes.common import center_to_beam as legacy_center

    rig = Rig(roll=1 * q.deg, pitch=-1 * q.deg, seed=40)
    future = legacy_align(
        rig.camera,
        rig.rotation,
        x_motor=rig.x_motor,
        z_motor=rig.z_motor,
        measure=rotation_axis,
        num_frames=10,
        absolute_eps=0.1 * q.deg,
        max_iterations=5,
        flat=None,
        dark=None,
        frame_consumer=None,
    )
    future.join()
    assert abs(rig.truth.roll) < EPS and abs(rig.truth.pitch) < EPS
    camera, xmotor, zmotor = beam_rig(beam_at=(2 * q.mm, 1 * q.mm))
    legacy_center(
        camera,
        xmotor,
        zmotor,
        PIXEL,
        [-5 * q.mm, 5 * q.mm],
        [-5 * q.mm, 5 * q.mm],
        xstep=None,
        zstep=None,
        thres=1000,
        tolerance=5,
        max_iterations=100,
    ).join()
    assert beam_offset(camera) < 6


# -- focus on the simulated blur ---------------------------------------------------------------------


@pytest.mark.parametrize("best", [-1.3 * q.mm, 2.4 * q.mm])
def test_focus_finds_the_sharpest_position_of_the_simulated_blur(best):
    from concert.processes.optimization import focus

    focus_motor = LinearMotor(position=0 * q.mm, motion_velocity=MOVE_FAST)
    camera = Camera(sample=Needle(1.2 * q.mm, 0.5 * q.mm), focus_motor=focus_motor, best_focus=best, seed=3)

    def sharpness(frame):  # the energy of the image's gradient: largest in focus
        rows, columns = np.gradient(frame.astype(float))
        return float((rows**2 + columns**2).mean())

    search = focus(camera, focus_motor, measure=sharpness, initial_step=1 * q.mm, epsilon=10 * q.um)
    position, _ = search.result(TIMEOUT)
    truth = camera.simulation
    assert abs(position - best) < 0.1 * q.mm  # the simulation's own best focus, not the search's
    assert focus_motor.position == position
    assert truth.blur_sigma < 0.5  # pixels (some at the start): in focus, by the simulation's own account
