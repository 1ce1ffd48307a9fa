"""concert.measures: the rotation axis from needle tips of a known tilted stage, areas, the dummy gradient.

Ground truth comes from the test-only generator of :mod:`tests.test_imageprocessing`
(tips projected with explicit rotation matrices, frames rendered by area
coverage with Poisson noise), never from the module under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.exceptions import DataError, LimitError, ProcessError, UnitError
from concert.imageprocessing import find_needle_tips
from concert.measures import Area, DummyGradientMeasure, SimpleArea, rotation_axis
from concert.processes.optimization import halver, optimize_parameter
from concert.quantities import q
from tests.conftest import TIMEOUT
from tests.test_imageprocessing import (
    DARK_COUNTS,
    FAST,
    OPEN_BEAM,
    axis_lean,
    expose,
    needle,
    projected_tip,
    sphere,
)

# -- rotation_axis ---------------------------------------------------------------------------------


def tips_of(roll, pitch, count=36, radius=100.0, height=20.0, phase=30.0, axis=(160.3, 170.7)):
    return [projected_tip(360 * k / count, roll, pitch, radius, height, phase, *axis) for k in range(count)]


@FAST
@given(
    roll=st.floats(-30, 30),
    pitch=st.floats(-30, 30),
    radius=st.floats(5, 500),
    height=st.floats(-100, 100),
    phase=st.floats(0, 360),
    count=st.integers(3, 90),
    column=st.floats(-1000, 1000),
    row=st.floats(-1000, 1000),
)
def test_rotation_axis_of_exact_tips(roll, pitch, radius, height, phase, count, column, row):
    tips = tips_of(roll, pitch, count, radius, height, phase, (column, row))
    found_roll, found_pitch, (x, y) = rotation_axis(tips)
    assert found_roll.to(q.deg).magnitude == pytest.approx(roll, abs=1e-6)
    assert found_pitch.to(q.deg).magnitude == pytest.approx(pitch, abs=1e-6)
    # the ellipse's centre is where the point's height along the axis projects
    centre = projected_tip(0, roll, pitch, 0, height, 0, column, row)
    assert x.to(q.pixel).magnitude == pytest.approx(centre[0], abs=1e-6)
    assert y.to(q.pixel).magnitude == pytest.approx(centre[1], abs=1e-6)


def test_rotation_axis_signs_from_hand_made_tips():
    """Tips written out by hand from the geometry's words, not from the generator."""
    # No pitch, roll > 0: the circle is seen edge-on as a line whose right end (theta = 0, +x) is lower.
    lowered = [(100 + 50 * math.cos(t), 100 + 5 * math.cos(t)) for t in np.linspace(0, 2 * np.pi, 8, False)]
    roll, pitch, _centre = rotation_axis(lowered)
    assert roll.magnitude == pytest.approx(math.degrees(math.atan2(5, 50))) and roll.magnitude > 0
    assert pitch.magnitude == pytest.approx(0, abs=1e-9)
    # No roll, pitch > 0: at theta = 90° (towards the detector) the point is seen below the centre.
    angles = np.linspace(0, 2 * np.pi, 8, False)
    downstream_low = [(100 + 50 * math.cos(t), 100 + 10 * math.sin(t)) for t in angles]
    roll, pitch, (x, y) = rotation_axis(downstream_low)
    assert pitch.magnitude == pytest.approx(math.degrees(math.asin(10 / 50))) and pitch.magnitude > 0
    assert roll.magnitude == pytest.approx(0, abs=1e-9)
    assert (x.magnitude, y.magnitude) == pytest.approx((100, 100))
    downstream_high = [(100 + 50 * math.cos(t), 100 - 10 * math.sin(t)) for t in angles]
    assert rotation_axis(downstream_high)[1].magnitude == pytest.approx(-math.degrees(math.asin(10 / 50)))


def test_rotation_axis_returns_quantities():
    roll, pitch, centre = rotation_axis(tips_of(1.0, -2.0))
    assert roll.units == q.deg and pitch.units == q.deg
    assert isinstance(centre, tuple) and len(centre) == 2
    assert all(value.units == q.pixel for value in centre)
    in_pixels = [(x * q.pixel, y * q.pixel) for x, y in tips_of(1.0, -2.0)]
    assert rotation_axis(in_pixels)[0].magnitude == pytest.approx(1.0)
    assert rotation_axis(np.array(tips_of(1.0, -2.0)) * q.pixel)[1].magnitude == pytest.approx(-2.0)


@pytest.mark.parametrize(
    "roll, pitch",
    [(0.0, 0.0), (2.0, 1.0), (-3.0, 2.5), (4.0, -1.5), (-1.0, -3.0), (0.3, 0.2), (-0.25, -0.6), (5.0, 3.0)],
)
def test_rotation_axis_from_noisy_frames_of_a_tilted_stage(roll, pitch):
    """Frames of a needle tip turning over 360° about an axis of known roll and pitch: within 0.1°."""
    rng = np.random.default_rng(int(1000 + 100 * roll + 10 * pitch))
    shape, count = (300, 300), 30
    tips = tips_of(roll, pitch, count, radius=110, height=20, phase=rng.uniform(0, 360), axis=(150.4, 170.6))
    lean = axis_lean(roll, pitch)
    frames = [expose(needle(shape, tip, 3.0, lean), rng) for tip in tips]
    found_roll, found_pitch, (x, y) = rotation_axis(find_needle_tips(frames))
    assert found_roll.to(q.deg).magnitude == pytest.approx(roll, abs=0.1)
    assert found_pitch.to(q.deg).magnitude == pytest.approx(pitch, abs=0.1)
    centre = projected_tip(0, roll, pitch, 0, 20, 0, 150.4, 170.6)
    assert abs(x.magnitude - centre[0]) < 1 and abs(y.magnitude - centre[1]) < 1


@pytest.mark.parametrize(
    "tips, error, words",
    [
        ([(1, 2), (3, 4)], DataError, ["2 points", "at least 3"]),
        ([], DataError, ["empty"]),
        ([(1, 2, 3)] * 4, DataError, ["(x, y) pairs"]),
        ([(1, np.inf)] * 4, DataError, ["infinite"]),
        ([(10.0, 20.0), (10.1, 20.0), (10.0, 20.1), (10.0, 20.0)], DataError, ["less than half a pixel"]),
        ([(1 * q.mm, 2 * q.mm)] * 4, UnitError, ["pixels"]),
        ("tips", DataError, ["<U4"]),
        (None, DataError, ["None"]),
    ],
)
def test_rotation_axis_refuses(tips, error, words):
    with pytest.raises(error) as caught:
        rotation_axis(tips)
    assert str(caught.value).startswith("rotation_axis: tips")
    for word in words:
        assert word in str(caught.value)


# -- DummyGradientMeasure --------------------------------------------------------------------------


def test_dummy_gradient_measure_peaks_at_max_position():
    motor = LinearMotor(position=10 * q.mm)
    measure = DummyGradientMeasure(motor["position"], 12.5 * q.mm)
    assert measure() == pytest.approx(10000 - 2.5**2)
    motor.position = 12.5 * q.mm
    assert measure() == pytest.approx(10000)
    assert measure(np.ones((4, 4))) == pytest.approx(10000)  # a frame, as focus passes one, is ignored
    motor.position = 15 * q.mm
    assert measure() == pytest.approx(10000 - 2.5**2)
    negative = DummyGradientMeasure(motor["position"], 12500 * q.um, negative=True)
    assert negative() == pytest.approx(2500.0**2 - 10000)  # distances in max_position's unit
    assert "negative=True" in repr(negative) and "12500 µm" in repr(negative)


def test_dummy_gradient_measure_guides_a_search_to_its_maximum():
    motor = LinearMotor(position=0 * q.mm)
    measure = DummyGradientMeasure(motor["position"], 3.7 * q.mm)
    future = optimize_parameter(motor["position"], measure, 0 * q.mm, halver, (1 * q.mm, 0.01 * q.mm))
    position, value = future.result(timeout=TIMEOUT)
    assert position.to(q.mm).magnitude == pytest.approx(3.7, abs=0.02)
    assert motor.position.to(q.mm).magnitude == pytest.approx(3.7, abs=0.02)
    assert value == pytest.approx(10000, abs=1e-3)


@pytest.mark.parametrize(
    "param, max_position, error, words",
    [
        (5, 1 * q.mm, ProcessError, ["param=5", "parameter value"]),
        ("position", 1 * q.mm, ProcessError, ["param='position'"]),
        (None, 1 * q.mm, ProcessError, ["param=None"]),
        ("motor", 1, UnitError, ["max_position=1", "quantity"]),
        ("motor", "1 mm", UnitError, ["max_position='1 mm'"]),
        ("motor", np.array([1, 2]) * q.mm, UnitError, ["max_position"]),
        ("motor", 1 * q.deg, UnitError, ["max_position=1 deg", "(mm)"]),
    ],
)
def test_dummy_gradient_measure_refuses(param, max_position, error, words):
    if param == "motor":
        param = LinearMotor()["position"]
    with pytest.raises(error) as caught:
        DummyGradientMeasure(param, max_position)
    assert str(caught.value).startswith("DummyGradientMeasure: ")
    for word in words:
        assert word in str(caught.value)


def test_dummy_gradient_measure_of_a_parameter_without_a_unit_attribute():
    """A parameter-like object without a ``unit``: a mismatch shows when the measure is called."""
    rotation = RotationMotor(position=5 * q.deg)

    class Reading:
        def get(self):
            return rotation["position"].get()

    measure = DummyGradientMeasure(Reading(), 2 * q.mm)
    with pytest.raises(UnitError, match=r"^DummyGradientMeasure: .* is 5 deg, which cannot be compared"):
        measure()
    assert DummyGradientMeasure(Reading(), 7 * q.deg)() == pytest.approx(10000 - 4)


# -- Area and SimpleArea ---------------------------------------------------------------------------


def test_area_counts_what_func_marks():
    frame = np.arange(20).reshape(4, 5)
    assert Area(lambda image: image > 14)(frame) == 5
    assert Area(lambda image: (image % 2).astype(np.uint8))(frame) == 10
    assert isinstance(Area(lambda image: image > 0)(frame), int)
    for func in (5, None, "x > 3"):
        with pytest.raises(ProcessError, match=r"^Area: func=.* is not callable"):
            Area(func)


def simulated_sphere(rng, shape=(160, 180), centre=(90.3, 75.6), radius=30.0, mu=0.04):
    beam = OPEN_BEAM * (1 + 0.3 * np.sin(np.arange(shape[1]) / 25))[None, :] * np.ones(shape)
    flats = [expose(np.ones(shape), rng, beam) for _ in range(4)]
    darks = [rng.poisson(DARK_COUNTS, shape).astype(np.uint16) for _ in range(4)]
    radio = expose(sphere(shape, centre, radius, mu), rng, beam)
    # the sphere absorbs half of the beam where its thickness 2 sqrt(R² - ρ²) exceeds ln 2 / mu
    inner = math.sqrt(radius**2 - (math.log(2) / (2 * mu)) ** 2)
    return radio, flats, darks, math.pi * inner**2


def test_simple_area_of_a_simulated_sphere():
    rng = np.random.default_rng(20)
    radio, flats, darks, expected = simulated_sphere(rng)
    measure = SimpleArea(flats, darks)
    assert measure(radio) == pytest.approx(expected, rel=0.05)
    assert isinstance(measure(radio), int)
    mask = measure.object_pixels(radio)
    assert mask.dtype == bool and mask.shape == radio.shape and mask.sum() == measure(radio)
    np.testing.assert_allclose(measure.flats, np.mean(flats, axis=0))
    np.testing.assert_allclose(measure.darks, np.mean(darks, axis=0))
    blank = expose(np.ones(radio.shape), rng, np.mean(flats, axis=0) - DARK_COUNTS)
    assert measure(blank) == 0
    assert SimpleArea(flats[0], darks[0])(radio) == pytest.approx(expected, rel=0.05)  # one flat, one dark
    assert SimpleArea(np.stack(flats), threshold=0.9)(radio) > measure(radio)  # no dark: the dark counts too


def test_simple_area_flats_and_darks_can_be_replaced():
    rng = np.random.default_rng(21)
    radio, flats, darks, expected = simulated_sphere(rng)
    measure = SimpleArea(flats[0] * 0 + 1)
    measure.flats = flats
    measure.darks = darks
    assert measure(radio) == pytest.approx(expected, rel=0.05)
    measure.darks = None
    assert measure.darks is None
    with pytest.raises(DataError, match=r"^SimpleArea: dark has shape \(5, 5\), expected \(160, 180\)"):
        measure.darks = np.ones((5, 5))
    measure.darks = darks
    with pytest.raises(DataError, match=r"^SimpleArea: flat has shape \(5, 5\), expected \(160, 180\)"):
        measure.flats = np.ones((5, 5))
    assert measure(radio) == pytest.approx(expected, rel=0.05)  # a refused assignment changes nothing


@pytest.mark.parametrize(
    "arguments, keywords, error, words",
    [
        ((np.ones(5),), {}, DataError, ["flat has 1 dimensions", "a 2-D image or a 3-D stack"]),
        ((np.ones((3, 3)), np.ones((3, 4))), {}, DataError, ["dark has shape (3, 4)"]),
        (([np.ones((3, 3)), np.ones((3, 4))],), {}, DataError, ["flat[1] has shape (3, 4)"]),
        (([],), {}, DataError, ["flat is empty"]),
        ((np.ones((3, 3), complex),), {}, DataError, ["complex128"]),
        ((np.ones((3, 3)),), {"threshold": 0}, LimitError, ["threshold=0"]),
        ((np.ones((3, 3)),), {"threshold": 1.5}, LimitError, ["threshold=1.5"]),
        ((np.ones((3, 3)),), {"threshold": "0.5"}, LimitError, ["threshold='0.5'"]),
    ],
)
def test_simple_area_refuses(arguments, keywords, error, words):
    with pytest.raises(error) as caught:
        SimpleArea(*arguments, **keywords)
    assert str(caught.value).startswith("SimpleArea: ")
    for word in words:
        assert word in str(caught.value)


def test_simple_area_refuses_frames_that_do_not_fit():
    measure = SimpleArea(np.ones((10, 10)))
    with pytest.raises(DataError, match=r"^SimpleArea: frame has shape \(10, 11\), expected \(10, 10\)"):
        measure(np.ones((10, 11)))
    with pytest.raises(DataError, match=r"^SimpleArea: frame has 3 dimensions"):
        measure.object_pixels(np.ones((2, 10, 10)))
