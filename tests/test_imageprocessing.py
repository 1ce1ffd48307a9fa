"""concert.imageprocessing against frames of known geometry, made here, and its refusals of wrong input.

The frames come from a small generator of this file, written from the
geometry of the toolbox (x = column to the right, row downwards, a point is
``(x, y)`` = ``(column, row)``, pixel centres at integers) and from nothing
in the module under test: a needle is a straight rod whose pixels are
covered by area (8 by 8 samples a pixel) up to a tip at a known sub-pixel
point; a sphere is a ball of known centre and radius whose projected
thickness gives the transmission (4 by 4 samples a pixel); photon noise is
Poisson with a fixed seed; the rotation of a tip about a tilted axis follows
the recipe of the geometry with explicit rotation matrices.
:mod:`tests.test_measures` uses the same generator.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from concert import imageprocessing as ip
from concert.exceptions import ConcertError, DataError, LimitError, UnitError
from concert.imaging import ImageWithMetadata
from concert.quantities import q

# -- the test-only simulated beamline ----------------------------------------------------------------

OPEN_BEAM = 1000.0  # counts of the open beam in a pixel
DARK_COUNTS = 100.0  # counts of the dark frame

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rod_coverage(
    shape: Tuple[int, int],
    tip: Tuple[float, float],
    half_width: float,
    lean: float = 0.0,
    pointing: str = "up",
    samples: int = 8,
    rounded: bool = False,
) -> np.ndarray:
    """The fraction of each pixel covered by a rod of ``half_width`` ending at ``tip`` = (x, y).

    The rod runs from its tip to the frame's edge: down to the bottom edge
    for a needle ``pointing`` up, up to the top edge for one pointing down.
    ``lean`` (degrees) leans the needle's top towards +x. The end is cut
    square to the rod, with the tip at the middle of the cut, or, if
    ``rounded``, is a half disk whose apex is the tip.
    """
    height, width = shape
    x_tip, y_tip = tip
    sign = 1.0 if pointing == "up" else -1.0
    angle = math.radians(lean)
    # (column, row) direction from the tip into the shaft: down and to the left for a positive lean
    shaft = np.array([-math.sin(angle), math.cos(angle)]) * sign
    across = np.array([shaft[1], -shaft[0]])
    length = (height + 4) / abs(shaft[1])
    corners = [
        np.array(tip) + a * shaft + b * across
        for a in (-2, length)
        for b in (-half_width - 2, half_width + 2)
    ]
    top = max(0, math.floor(min(c[1] for c in corners)))
    bottom = min(height, math.ceil(max(c[1] for c in corners)) + 1)
    left = max(0, math.floor(min(c[0] for c in corners)))
    right = min(width, math.ceil(max(c[0] for c in corners)) + 1)
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    rows = np.arange(top, bottom)[:, None, None, None] + offsets[None, :, None, None]
    columns = np.arange(left, right)[None, None, :, None] + offsets[None, None, None, :]
    along = (columns - x_tip) * shaft[0] + (rows - y_tip) * shaft[1]
    sideways = (columns - x_tip) * across[0] + (rows - y_tip) * across[1]
    coverage = np.zeros(shape)
    if rounded:  # the end: a half disk of the rod's width, centred half a width inside the tip
        inside = ((along >= half_width) & (np.abs(sideways) <= half_width)) | (
            (along - half_width) ** 2 + sideways**2 <= half_width**2
        )
    else:
        inside = (along >= 0) & (np.abs(sideways) <= half_width)
    coverage[top:bottom, left:right] = inside.mean(axis=(1, 3))
    return coverage


def needle(shape, tip, half_width=3.0, lean=0.0, pointing="up", absorbed=0.7, rounded=False) -> np.ndarray:
    """The transmission of a needle absorbing ``absorbed`` of the beam where it fully covers a pixel."""
    return 1 - absorbed * rod_coverage(shape, tip, half_width, lean, pointing, rounded=rounded)


def sphere(shape, centre, radius, mu=0.05, samples=4) -> np.ndarray:
    """The transmission ``exp(-mu * thickness)`` of a ball of ``radius`` pixels at ``centre`` = (x, y)."""
    height, width = shape
    x_centre, y_centre = centre
    transmission = np.ones(shape)
    top, bottom = max(0, int(y_centre - radius - 2)), min(height, int(y_centre + radius + 3))
    left, right = max(0, int(x_centre - radius - 2)), min(width, int(x_centre + radius + 3))
    if bottom <= top or right <= left:
        return transmission
    offsets = (np.arange(samples) + 0.5) / samples - 0.5
    rows = np.arange(top, bottom)[:, None, None, None] + offsets[None, :, None, None]
    columns = np.arange(left, right)[None, None, :, None] + offsets[None, None, None, :]
    squared = (rows - y_centre) ** 2 + (columns - x_centre) ** 2
    thickness = 2 * np.sqrt(np.clip(radius**2 - squared, 0, None))
    transmission[top:bottom, left:right] = np.exp(-mu * thickness).mean(axis=(1, 3))
    return transmission


def expose(
    transmission: np.ndarray, rng: np.random.Generator, beam: Optional[np.ndarray] = None
) -> np.ndarray:
    """A camera frame (uint16) of ``transmission`` with photon noise: Poisson(dark + beam · transmission)."""
    beam = OPEN_BEAM if beam is None else beam
    return rng.poisson(DARK_COUNTS + beam * transmission).astype(np.uint16)


def rotation_x(angle: float) -> np.ndarray:
    """Right-handed rotation about x by ``angle`` radians: +y turns towards +z."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rotation_z(angle: float) -> np.ndarray:
    """Right-handed rotation about z by ``angle`` radians: +x turns towards +y, +y towards -x."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def tilt(roll: float, pitch: float) -> np.ndarray:
    """The tilt of the geometry, degrees: pitch about x (top to +z), then roll about z (top to +x)."""
    return rotation_z(-math.radians(roll)) @ rotation_x(math.radians(pitch))


def projected_tip(theta, roll, pitch, radius, height, phase, axis_column, axis_row) -> Tuple[float, float]:
    """(x, y) on the detector of a point ``radius`` from the axis, ``height`` up it, at stage angle ``theta``.

    In the axis frame the point is at ``radius (cos, 0, sin)(theta + phase)``
    (degrees; theta = 0 towards +x, 90° towards +z) plus ``height`` along y;
    the axis crosses the detector at (``axis_column``, ``axis_row``).
    """
    angle = math.radians(theta + phase)
    point = np.array([radius * math.cos(angle), height, radius * math.sin(angle)])
    x, y, _z = tilt(roll, pitch) @ point
    return axis_column + x, axis_row - y


def axis_lean(roll: float, pitch: float) -> float:
    """The angle (degrees) by which the projected axis' top leans towards +x."""
    x, y, _z = tilt(roll, pitch) @ np.array([0.0, 1.0, 0.0])
    return math.degrees(math.atan2(x, y))


def test_generator_follows_the_geometry():
    """The sign conventions of the generator itself, checked on points worked out by hand."""
    # roll > 0: the axis' top leans to the right
    assert axis_lean(5, 0) == pytest.approx(5)
    # pitch > 0: the axis' top leans downstream (+z)
    assert (tilt(0, 5) @ [0, 1, 0])[2] > 0
    # theta = 90°: the point is downstream; with pitch > 0 it is seen lower (larger row) than at 0°
    assert projected_tip(90, 0, 10, 100, 0, 0, 0, 0)[1] == pytest.approx(100 * math.sin(math.radians(10)))
    # with roll > 0 the point at theta = 0 (towards +x) is seen lower, to the right
    x, y = projected_tip(0, 10, 0, 100, 0, 0, 0, 0)
    assert (x, y) == pytest.approx((100 * math.cos(math.radians(10)), 100 * math.sin(math.radians(10))))
    # a needle's coverage: full inside, none outside, the tip row split by the sub-pixel position
    coverage = rod_coverage((20, 20), (10.0, 5.25), 2.0)
    assert coverage[10, 10] == 1 and coverage[3, 10] == 0 and coverage[10, 14] == 0
    assert coverage[5, 10] == pytest.approx(0.25)  # row 5 spans 4.5 .. 5.5, covered from 5.25 on


# -- flat_correct -----------------------------------------------------------------------------------


def reference(radio, flat, dark=None):
    """Flat correction in float64, written out."""
    radio, flat = np.asarray(radio, np.float64), np.asarray(flat, np.float64)
    dark = np.zeros_like(flat) if dark is None else np.asarray(dark, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (radio - dark) / (flat - dark)


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.uint8, np.float32),
        (np.uint16, np.float32),
        (np.int16, np.float32),
        (np.float16, np.float32),
        (np.float32, np.float32),
        (np.int32, np.float64),
        (np.uint32, np.float64),
        (np.int64, np.float64),
        (np.float64, np.float64),
    ],
)
def test_flat_correct_values_and_type(dtype, expected):
    rng = np.random.default_rng(1)
    flat = rng.integers(150, 250, (40, 30)).astype(dtype)
    dark = rng.integers(0, 20, (40, 30)).astype(dtype)
    radio = rng.integers(10, 150, (40, 30)).astype(dtype)
    for arguments in ((radio, flat, dark), (radio, flat)):
        result = ip.flat_correct(*arguments)
        assert result.dtype == expected and result.shape == radio.shape
        np.testing.assert_allclose(result, reference(*arguments), rtol=1e-6)


def test_flat_correct_mixed_types_take_the_wider_one():
    frame = np.full((4, 4), 50, np.uint16)
    assert ip.flat_correct(frame, frame.astype(np.float64) + 50, frame // 5).dtype == np.float64
    assert ip.flat_correct(frame, frame + 1, frame.astype(np.float32) / 5).dtype == np.float32


def test_flat_correct_subtracts_integers_as_numbers():
    """A radio darker than the dark gives a negative value, not a wrapped-around uint16."""
    radio = np.array([[3, 10]], np.uint16)
    dark = np.array([[5, 5]], np.uint16)
    flat = np.array([[25, 25]], np.uint16)
    np.testing.assert_allclose(ip.flat_correct(radio, flat, dark), [[-0.1, 0.25]], rtol=1e-6)


def test_flat_correct_recovers_the_transmission_of_a_simulated_sample():
    rng = np.random.default_rng(5)
    shape = (120, 160)
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]]
    beam = 4000 * np.exp(-(((columns - 80) / 90) ** 2) - ((rows - 60) / 70) ** 2)  # an uneven beam
    truth = sphere(shape, (70.0, 60.0), 30, mu=0.02)
    flats = [expose(np.ones(shape), rng, beam) for _ in range(8)]
    darks = [rng.poisson(DARK_COUNTS, shape).astype(np.uint16) for _ in range(8)]
    flat, dark = np.mean(flats, axis=0), np.mean(darks, axis=0)
    radio = expose(truth, rng, beam)
    corrected = ip.flat_correct(radio, flat, dark)
    # the beam profile is gone: per block of 10 by 10 pixels the mean transmission is the truth's within noise
    blocks = (corrected - truth).reshape(12, 10, 16, 10).mean(axis=(1, 3))
    assert np.abs(blocks).max() < 0.02


@pytest.mark.parametrize("fill", [1.0, 0.0, np.nan, -5])
def test_flat_correct_pixels_where_flat_equals_dark_get_fill_quietly(fill):
    """Zeros of the denominator in every block of rows (the image is worked through in blocks)."""
    rng = np.random.default_rng(2)
    shape = (1500, 300)  # several blocks of rows
    flat = rng.integers(500, 900, shape).astype(np.uint16)
    dark = rng.integers(50, 100, shape).astype(np.uint16)
    radio = rng.integers(100, 500, shape).astype(np.uint16)
    dead = (np.arange(0, 1500, 97), np.arange(0, 1500, 97) % 300)
    flat[dead] = dark[dead]
    radio[dead[0][::2], dead[1][::2]] = dark[dead[0][::2], dead[1][::2]]  # 0 / 0 in some of them
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = ip.flat_correct(radio, flat, dark, fill=fill)
    expected = reference(radio, flat, dark)
    expected[dead] = fill
    np.testing.assert_allclose(result, expected, rtol=1e-6, equal_nan=True)
    if not np.isnan(fill):
        assert np.isfinite(result).all()


def test_flat_correct_without_dark_fills_where_the_flat_is_zero():
    flat = np.array([[0, 10], [20, 0]], np.uint16)
    radio = np.array([[0, 5], [5, 7]], np.uint16)
    np.testing.assert_array_equal(ip.flat_correct(radio, flat), [[1, 0.5], [0.25, 1]])
    assert np.isnan(ip.flat_correct(radio, flat, fill=np.nan)[0, 0])


def test_flat_correct_lets_nan_and_inf_of_the_inputs_through():
    radio = np.array([[np.nan, 1, np.inf, 2]], np.float32)
    flat = np.array([[4, np.inf, np.inf, 4]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = ip.flat_correct(radio, flat)
    assert np.isnan(result[0, 0]) and result[0, 1] == 0 and np.isnan(result[0, 2]) and result[0, 3] == 0.5


def test_flat_correct_of_a_stack_strided_inputs_and_metadata():
    rng = np.random.default_rng(3)
    stack = rng.integers(100, 200, (3, 50, 60)).astype(np.uint16)
    big_flat = rng.integers(300, 400, (100, 120)).astype(np.uint16)
    flat = big_flat[::2, ::2]  # not contiguous
    dark = np.full((50, 60), 10, np.uint16)
    result = ip.flat_correct(stack, flat, dark)
    assert result.shape == stack.shape and result.dtype == np.float32
    for index in range(3):
        np.testing.assert_allclose(result[index], reference(stack[index], flat, dark), rtol=1e-6)
    image = ImageWithMetadata(stack[0], {"frame": 7})
    corrected = ip.flat_correct(image, flat, dark)
    assert isinstance(corrected, ImageWithMetadata) and corrected.metadata == {"frame": 7}
    corrected.metadata["frame"] = 8
    assert image.metadata["frame"] == 7


def test_flat_correct_leaves_its_arguments_alone():
    rng = np.random.default_rng(4)
    arrays = [rng.integers(1, 100, (30, 20)).astype(np.float32) for _ in range(3)]
    arrays[1] += 200
    copies = [array.copy() for array in arrays]
    ip.flat_correct(*arrays)
    for array, copy in zip(arrays, copies):
        np.testing.assert_array_equal(array, copy)


@pytest.mark.parametrize(
    "radio, flat, dark, words",
    [
        (np.ones(5), np.ones((5, 5)), None, ["radio", "1 dimensions"]),
        (np.ones((2, 2, 5, 5)), np.ones((5, 5)), None, ["radio", "4 dimensions"]),
        (np.ones((5, 5)), np.ones((4, 5)), None, ["flat", "(4, 5)", "(5, 5)"]),
        (np.ones((5, 5)), np.ones((5, 5)), np.ones((5, 4)), ["dark", "(5, 4)"]),
        (np.ones((5, 5)), np.ones((5, 5, 1)), None, ["flat", "3 dimensions"]),
        (np.ones((0, 5)), np.ones((0, 5)), None, ["radio", "empty"]),
        (np.ones((5, 5), complex), np.ones((5, 5)), None, ["radio", "complex128"]),
        (np.ones((5, 5)), np.ones((5, 5), bool), None, ["flat", "bool"]),
        (np.ones((5, 5)), np.full((5, 5), "a"), None, ["flat", "<U1"]),
        (np.ones((5, 5)), None, None, ["flat", "None"]),
        ([[1, 2], [3]], np.ones((2, 2)), None, ["radio", "not an array"]),
        (np.ones((3, 5, 5)), np.ones((5, 4)), None, ["flat", "(5, 4)", "(5, 5)"]),
    ],
)
def test_flat_correct_refuses_what_does_not_fit(radio, flat, dark, words):
    with pytest.raises(DataError) as caught:
        ip.flat_correct(radio, flat, dark)
    message = str(caught.value)
    assert message.startswith("flat_correct: ")
    for word in words:
        assert word in message


@pytest.mark.parametrize("fill", ["1", None, 1j])
def test_flat_correct_refuses_a_fill_that_is_no_number(fill):
    with pytest.raises(LimitError, match="flat_correct: fill="):
        ip.flat_correct(np.ones((2, 2)), np.ones((2, 2)), fill=fill)


# -- wrong images, for every function that takes one ------------------------------------------------

IMAGE_TAKERS = {
    "flat_correct": (lambda image: ip.flat_correct(image, image), "radio"),
    "find_needle_tip": (ip.find_needle_tip, "image"),
    "segment_convex_object": (ip.segment_convex_object, "image"),
    "center_of_mass": (ip.center_of_mass, "frame"),
    "correlate": (lambda image: ip.correlate(image, image), "first"),
    "compute_rotation_axis": (lambda image: ip.compute_rotation_axis(image, image), "first_projection"),
    "find_needle_tips": (lambda image: ip.find_needle_tips([image]), "images[0]"),
    "find_sphere_centers": (lambda image: ip.find_sphere_centers([image]), "images[0]"),
}

bad_dtypes = st.sampled_from([np.complex64, np.complex128, np.dtype("U3"), np.dtype("S2"), np.dtype("m8[s]")])
bad_images = st.one_of(
    # the wrong number of dimensions (and not a stack where flat_correct takes one)
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=4, max_dims=5, max_side=3), elements=st.just(1.0)),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=1, max_side=5), elements=st.just(1.0)),
    hnp.arrays(np.float64, st.just(())),
    # a dtype that holds no intensities
    hnp.arrays(bad_dtypes, hnp.array_shapes(min_dims=2, max_dims=2, max_side=4)),
    # empty
    hnp.arrays(np.uint16, st.sampled_from([(0, 4), (3, 0), (0, 0)])),
)


@pytest.mark.parametrize("function", sorted(IMAGE_TAKERS))
@FAST
@given(image=bad_images)
def test_functions_refuse_images_that_are_no_images(function, image):
    call, argument = IMAGE_TAKERS[function]
    with pytest.raises(DataError) as caught:
        call(image)
    message = str(caught.value)
    assert message.startswith(f"{function}: {argument} ")
    assert any(word in message for word in ("dimensions", "dtype", "empty"))


@pytest.mark.parametrize("function", ["find_needle_tips", "find_sphere_centers"])
@pytest.mark.parametrize(
    "images, words",
    [
        ([], ["images is empty"]),
        ((), ["images is empty"]),
        (iter([]), ["images is empty"]),
        (np.zeros((0, 5, 5)), ["images is empty"]),
        (np.ones((5, 5)), ["one 2-D image"]),
        (None, ["images is None"]),
        (5, ["images is 5"]),
        ("frames", ["images is 'frames'"]),
        ([np.ones((5, 5)), np.ones(5)], ["images[1]", "1 dimensions"]),
    ],
)
def test_image_lists_that_do_not_fit(function, images, words):
    with pytest.raises(DataError) as caught:
        getattr(ip, function)(images)
    assert str(caught.value).startswith(f"{function}: ")
    for word in words:
        assert word in str(caught.value)


# -- normalize, ramp_filter, filter_low_frequencies ---------------------------------------------------


def test_normalize_maps_the_range():
    image = np.array([[2, 4], [6, 10]], np.uint16)
    np.testing.assert_allclose(ip.normalize(image), [[0, 0.25], [0.5, 1]])
    np.testing.assert_allclose(ip.normalize(image, -1, 1), [[-1, -0.5], [0, 1]])
    assert ip.normalize(image).dtype == np.float32
    assert ip.normalize(image.astype(np.int64)).dtype == np.float64
    stack = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    assert ip.normalize(stack).min() == 0 and ip.normalize(stack).max() == 1
    np.testing.assert_array_equal(ip.normalize(np.full((3, 3), 7.0), 2, 5), np.full((3, 3), 2.0))
    with_nan = ip.normalize(np.array([1.0, np.nan, 3.0]))
    assert with_nan[0] == 0 and np.isnan(with_nan[1]) and with_nan[2] == 1
    np.testing.assert_array_equal(image, [[2, 4], [6, 10]])


@pytest.mark.parametrize(
    "arguments, error, words",
    [
        ((np.array([np.nan, np.nan]),), DataError, ["all NaN"]),
        ((np.array([1.0, np.inf]),), DataError, ["infinite"]),
        ((np.ones(3), 1, 1), LimitError, ["minimum=1", "maximum=1"]),
        ((np.ones(3), 2, 1), LimitError, ["smaller"]),
        ((np.ones(3), "0", 1), LimitError, ["minimum='0'"]),
        ((np.ones(3), 0, np.inf), LimitError, ["maximum=inf"]),
        ((np.ones(3), 0 * q.mm, 1), UnitError, ["minimum"]),
        ((np.array(5.0),), DataError, ["0 dimensions"]),
        ((np.array([1j]),), DataError, ["complex"]),
    ],
)
def test_normalize_refuses(arguments, error, words):
    with pytest.raises(error) as caught:
        ip.normalize(*arguments)
    assert str(caught.value).startswith("normalize: ")
    for word in words:
        assert word in str(caught.value)


def test_ramp_filter():
    np.testing.assert_allclose(ip.ramp_filter(8), [0, 0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(ip.ramp_filter(5), [0, 0.4, 0.8, 0.8, 0.4])
    assert ip.ramp_filter(8).dtype == np.float32
    assert ip.ramp_filter(np.int64(1)).tolist() == [0]
    # filtering a row: its mean is gone, a cosine at a quarter of the sampling rate is halved
    row = 3 + np.cos(2 * np.pi * np.arange(64) / 4)
    filtered = np.fft.ifft(np.fft.fft(row) * ip.ramp_filter(64)).real
    np.testing.assert_allclose(filtered, 0.5 * np.cos(2 * np.pi * np.arange(64) / 4), atol=1e-9)


@pytest.mark.parametrize("width", [0, -3, 2.5, True, "8", None, 8 * q.pixel])
def test_ramp_filter_refuses(width):
    with pytest.raises(LimitError, match=r"ramp_filter: width="):
        ip.ramp_filter(width)


def test_filter_low_frequencies_removes_the_slow_and_keeps_the_small():
    columns = np.arange(600, dtype=np.float64)
    slow = 1000 + 2 * columns + 300 * np.exp(-(((columns - 300) / 300) ** 2))
    bump = 50 * np.exp(-(((columns - 220) / 1.5) ** 2))
    result = ip.filter_low_frequencies(slow + bump, fwhm=32)
    assert result.dtype == np.float64 and result.shape == columns.shape
    inner = (np.abs(columns - 220) > 40) & (columns > 100) & (columns < 500)  # away from the borders
    assert np.abs(result[inner]).max() < 1  # the slow part is gone
    assert result[220] > 40  # most of the bump is left
    image = np.add.outer(slow[:400], slow[:400]).astype(np.float32)
    image[200:203, 200:203] += 100
    filtered = ip.filter_low_frequencies(image, fwhm=16 * q.pixel)
    assert filtered.dtype == np.float32 and filtered.shape == image.shape
    assert filtered[201, 201] > 80 and np.abs(filtered[300:320, 100:120]).max() < 1


@pytest.mark.parametrize(
    "data, fwhm, error, words",
    [
        (np.ones((3, 3, 3)), 32, DataError, ["data", "3 dimensions"]),
        (np.ones(10), 0, LimitError, ["fwhm=0"]),
        (np.ones(10), -2.0, LimitError, ["fwhm=-2.0"]),
        (np.ones(10), "32", LimitError, ["fwhm='32'"]),
        (np.ones(10), np.nan, LimitError, ["fwhm=nan"]),
        (np.ones(10), 32 * q.mm, UnitError, ["fwhm", "pixels"]),
    ],
)
def test_filter_low_frequencies_refuses(data, fwhm, error, words):
    with pytest.raises(error) as caught:
        ip.filter_low_frequencies(data, fwhm)
    assert str(caught.value).startswith("filter_low_frequencies: ")
    for word in words:
        assert word in str(caught.value)


# -- needles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("pointing", ["up", "down"])
@pytest.mark.parametrize(
    "tip, half_width, lean, rounded",
    [
        ((100.0, 80.0), 3.0, 0.0, False),
        ((57.31, 143.77), 2.0, 0.0, False),
        ((171.5, 60.25), 4.5, 3.0, False),
        ((122.9, 128.6), 2.5, -4.0, False),
        ((30.2, 200.45), 1.5, 1.0, False),
        ((80.6, 90.3), 6.0, 0.0, True),
        ((140.2, 100.9), 3.5, -2.5, True),
    ],
)
def test_find_needle_tip_on_noisy_frames(tip, half_width, lean, rounded, pointing):
    rng = np.random.default_rng(int(tip[0] * 100))
    frame = expose(needle((256, 224), tip, half_width, lean, pointing, rounded=rounded), rng)
    x, y = ip.find_needle_tip(frame)
    assert abs(x - tip[0]) < 1 and abs(y - tip[1]) < 1, (x, y, tip)


@FAST
@given(
    x=st.floats(20, 180),
    y=st.floats(20, 150),
    half_width=st.floats(1.5, 6),
    lean=st.floats(-5, 5),
    pointing=st.sampled_from(["up", "down"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_find_needle_tip_anywhere(x, y, half_width, lean, pointing, seed):
    frame = expose(needle((170, 200), (x, y), half_width, lean, pointing), np.random.default_rng(seed))
    found_x, found_y = ip.find_needle_tip(frame)
    assert abs(found_x - x) < 1 and abs(found_y - y) < 1


def test_find_needle_tip_of_a_blurred_needle_and_of_a_flat_corrected_one():
    from scipy import ndimage

    rng = np.random.default_rng(8)
    tip = (90.4, 70.7)
    blurred = ndimage.gaussian_filter(needle((200, 180), tip, 3.0), 2.0)
    x, y = ip.find_needle_tip(expose(blurred, rng))
    assert abs(x - tip[0]) < 1 and abs(y - tip[1]) < 1
    flat = np.full((200, 180), DARK_COUNTS + OPEN_BEAM)
    corrected = ip.flat_correct(expose(needle((200, 180), tip), rng), flat, np.full((200, 180), DARK_COUNTS))
    x, y = ip.find_needle_tip(corrected)
    assert abs(x - tip[0]) < 1 and abs(y - tip[1]) < 1


def test_find_needle_tips_of_a_list_and_of_a_stack():
    rng = np.random.default_rng(9)
    tips = [(60.0 + 10 * k, 50.5 + 7.3 * k) for k in range(5)]
    frames = [expose(needle((160, 160), tip), rng) for tip in tips]
    found = ip.find_needle_tips(frames)
    assert found == ip.find_needle_tips(np.stack(frames)) == ip.find_needle_tips(iter(frames))
    assert all(type(value) is float for point in found for value in point)
    assert np.abs(np.array(found) - tips).max() < 1


def test_no_needle():
    rng = np.random.default_rng(10)
    blank = expose(np.ones((100, 100)), rng)
    with pytest.raises(DataError, match=r"^find_needle_tip: image shows no needle: nothing in it is darker"):
        ip.find_needle_tip(blank)
    with pytest.raises(DataError, match=r"^find_needle_tip: image shows no needle"):
        ip.find_needle_tip(np.full((50, 50), 7, np.uint16))
    frames = [expose(needle((100, 100), (50.0, 40.0)), rng) for _ in range(2)] + [blank]
    with pytest.raises(DataError, match=r"^find_needle_tips: images\[2\] shows no needle"):
        ip.find_needle_tips(frames)
    across = expose(1 - 0.7 * rod_coverage((100, 100), (50.0, -5.0), 3.0), rng)  # top to bottom
    with pytest.raises(
        DataError, match=r"^find_needle_tip: image shows no needle tip: .* crosses the whole image"
    ):
        ip.find_needle_tip(across)
    broken = expose(needle((100, 100), (50.0, 40.0)), rng).astype(np.float64)
    broken[3, 3] = np.nan
    with pytest.raises(DataError, match=r"^find_needle_tip: image holds NaN"):
        ip.find_needle_tip(broken)


# -- spheres ---------------------------------------------------------------------------------------


def moving_sphere(count=6, shape=(220, 240), radius=18.0, seed=11):
    rng = np.random.default_rng(seed)
    centres = [(rng.uniform(40, shape[1] - 40), rng.uniform(40, shape[0] - 40)) for _ in range(count)]
    return [expose(sphere(shape, centre, radius), rng) for centre in centres], centres


@pytest.mark.parametrize("supersampling", [1, 3])
def test_find_sphere_centers_on_noisy_frames(supersampling):
    frames, centres = moving_sphere()
    found = ip.find_sphere_centers(frames, supersampling=supersampling)
    assert len(found) == len(centres)
    assert np.abs(np.array(found) - centres).max() < 1
    assert all(type(value) is float for point in found for value in point)


@FAST
@given(
    first=st.tuples(st.floats(30, 130), st.floats(30, 90)),
    second=st.tuples(st.floats(30, 130), st.floats(30, 90)),
    radius=st.floats(6, 25),
    seed=st.integers(0, 2**32 - 1),
)
def test_find_sphere_centers_anywhere(first, second, radius, seed):
    rng = np.random.default_rng(seed)
    frames = [expose(sphere((120, 160), centre, radius), rng) for centre in (first, second)]
    found = ip.find_sphere_centers(frames)
    assert np.abs(np.array(found) - [first, second]).max() < 1


def test_find_sphere_centers_with_a_correlation_threshold():
    frames, centres = moving_sphere(count=3)
    rng = np.random.default_rng(12)
    assert np.abs(np.array(ip.find_sphere_centers(frames, correlation_threshold=0.8)) - centres).max() < 1
    other = expose(needle(frames[0].shape, (120.0, 100.0), 6.0), rng)
    ip.find_sphere_centers([*frames, other])  # no threshold: a match is a match
    with pytest.raises(DataError) as caught:
        ip.find_sphere_centers([*frames, other], correlation_threshold=0.8)
    assert str(caught.value).startswith("find_sphere_centers: images[3] matches the sphere of images[0]")
    assert "correlation_threshold=0.8" in str(caught.value)


def test_find_sphere_centers_refuses():
    frames, _ = moving_sphere(count=2)
    blank = expose(np.ones(frames[0].shape), np.random.default_rng(13))
    with pytest.raises(DataError, match=r"^find_sphere_centers: images\[2\] shows no sphere"):
        ip.find_sphere_centers([*frames, blank])
    with pytest.raises(DataError, match=r"^find_sphere_centers: images\[0\] shows no sphere"):
        ip.find_sphere_centers([blank, *frames])
    with pytest.raises(DataError, match=r"^find_sphere_centers: images\[1\] has shape \(100, 100\)"):
        ip.find_sphere_centers([frames[0], frames[1][:100, :100]])
    for supersampling in (0, -1, 1.5, True, "2", None):
        with pytest.raises(LimitError, match=r"^find_sphere_centers: supersampling="):
            ip.find_sphere_centers(frames, supersampling=supersampling)
    for threshold in (1.5, -2, "0.5", np.nan):
        with pytest.raises(LimitError, match=r"^find_sphere_centers: correlation_threshold="):
            ip.find_sphere_centers(frames, correlation_threshold=threshold)


def test_segment_convex_object_covers_the_sphere_and_fills_holes():
    rng = np.random.default_rng(14)
    shape, centre, radius = (150, 170), (80.3, 70.6), 25.0
    mask = ip.segment_convex_object(expose(sphere(shape, centre, radius), rng))
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]]
    disk = (columns - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2
    assert mask.dtype == bool and mask.shape == shape
    assert (mask & disk).sum() / (mask | disk).sum() > 0.9
    # a ring (a hollow shell seen end-on) comes back filled
    ring = np.where((np.hypot(columns - 85, rows - 75) - 20) ** 2 < 16, 0.3, 1.0)
    filled = ip.segment_convex_object(expose(ring, rng))
    assert filled[75, 85] and filled[75, 100] and not filled[10, 10]
    with pytest.raises(DataError, match=r"^segment_convex_object: image shows no object"):
        ip.segment_convex_object(expose(np.ones(shape), rng))


# -- centres ---------------------------------------------------------------------------------------


def test_center_of_mass():
    frame = np.zeros((10, 20))
    frame[2, 3] = 1  # (x, y) = (3, 2)
    frame[6, 15] = 3  # (15, 6)
    assert ip.center_of_mass(frame) == pytest.approx((12.0, 5.0))
    rows, columns = np.mgrid[0:100, 0:120]
    disk = (columns - 40.5) ** 2 + (rows - 60.25) ** 2 < 15**2
    assert ip.center_of_mass(disk) == pytest.approx((40.5, 60.25), abs=0.05)
    assert ip.center_of_mass(disk.astype(np.uint8)) == ip.center_of_mass(disk)


@pytest.mark.parametrize(
    "frame, words",
    [
        (np.zeros((4, 4)), ["total mass of 0", "positive"]),
        (-np.ones((4, 4)), ["total mass of -16"]),
        (np.full((4, 4), np.nan), ["NaN"]),
        (np.ones((2, 3, 4)), ["3 dimensions"]),
        (np.ones((2, 2), complex), ["complex128"]),
    ],
)
def test_center_of_mass_refuses(frame, words):
    with pytest.raises(DataError) as caught:
        ip.center_of_mass(frame)
    assert str(caught.value).startswith("center_of_mass: frame ")
    for word in words:
        assert word in str(caught.value)


def test_center_of_points():
    assert ip.center_of_points([(0, 0), (4, 2), (2, 10)]) == (2.0, 4.0)
    assert ip.center_of_points(np.array([[1.5, 2.5]])) == (1.5, 2.5)
    assert ip.center_of_points([(1 * q.pixel, 3 * q.pixel), (3 * q.pixel, 5 * q.pixel)]) == (2.0, 4.0)
    assert ip.center_of_points(np.array([[1, 3], [3, 5]]) * q.pixel) == (2.0, 4.0)
    # tips at equally spaced angles around an ellipse: its centre
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    points = np.column_stack([50 + 30 * np.cos(angles + 0.3), 40 + 5 * np.sin(angles + 0.3)])
    assert ip.center_of_points(points) == pytest.approx((50, 40))


@pytest.mark.parametrize(
    "points, error, words",
    [
        ([], DataError, ["empty"]),
        ([(1, 2, 3)], DataError, ["(1, 3)", "(x, y) pairs"]),
        ([1, 2], DataError, ["(2,)"]),
        ([(1, np.nan)], DataError, ["NaN"]),
        ([(1, 2), (3,)], DataError, ["not an array"]),
        (np.ones((2, 2)) * q.mm, UnitError, ["pixels"]),
        ([(1 * q.mm, 2 * q.mm)], UnitError, ["pixels"]),
        ([("a", "b")], DataError, ["<U1"]),
    ],
)
def test_center_of_points_refuses(points, error, words):
    with pytest.raises(error) as caught:
        ip.center_of_points(points)
    assert str(caught.value).startswith("center_of_points: points")
    for word in words:
        assert word in str(caught.value)


# -- correlation and the rotation axis -------------------------------------------------------------


def test_correlate_finds_the_displacement():
    rng = np.random.default_rng(15)
    shape = (90, 120)
    first = expose(sphere(shape, (50.0, 40.0), 10) * needle(shape, (80.0, 30.0)), rng)
    second = expose(sphere(shape, (57.0, 37.0), 10) * needle(shape, (87.0, 27.0)), rng)  # moved by (7, -3)
    scores = ip.correlate(first, second)
    assert scores.shape == shape and scores.dtype == np.float64
    row, column = np.unravel_index(np.argmax(scores), shape)
    assert (column - shape[1] // 2, row - shape[0] // 2) == (7, -3)
    assert -1 <= scores.min() and scores.max() <= 1
    same = ip.correlate(first, first)
    assert same[shape[0] // 2, shape[1] // 2] == pytest.approx(1) and same.max() == pytest.approx(1)
    raw = ip.correlate(first, second, normalize=False)
    assert np.unravel_index(np.argmax(raw), shape) == (row, column) and raw.max() > 1


@pytest.mark.parametrize(
    "first, second, words",
    [
        (np.ones((4, 4)), np.ones((4, 5)), ["second has shape (4, 5)", "(4, 4)"]),
        (np.ones((4, 4)), np.eye(4), ["first is constant"]),
        (np.eye(4), np.full((4, 4), np.nan), ["second holds NaN"]),
        (np.ones(4), np.ones(4), ["first has 1 dimensions"]),
    ],
)
def test_correlate_refuses(first, second, words):
    with pytest.raises(DataError) as caught:
        ip.correlate(first, second)
    assert str(caught.value).startswith("correlate: ")
    for word in words:
        assert word in str(caught.value)


def sample_at(shape, axis_column, angle):
    """A sample of two spheres and a needle on the stage, seen at ``angle`` 0 or 180 degrees (no tilt)."""
    sign = 1 if angle == 0 else -1
    transmission = sphere(shape, (axis_column + sign * 37.3, 80.2), 15)
    transmission *= sphere(shape, (axis_column - sign * 52.1, 150.6), 9)
    return transmission * needle(shape, (axis_column - sign * 20.6, 120.4), 2.5)


@pytest.mark.parametrize("axis_column, width", [(127.5, 256), (131.3, 256), (100.77, 255), (150.2, 300)])
def test_compute_rotation_axis_of_a_noisy_pair(axis_column, width):
    rng = np.random.default_rng(int(axis_column * 10))
    shape = (220, width)
    first, last = (expose(sample_at(shape, axis_column, angle), rng) for angle in (0, 180))
    axis = ip.compute_rotation_axis(first, last)
    assert type(axis) is float
    assert abs(axis - axis_column) < 1


def test_compute_rotation_axis_with_a_tilted_stage():
    """The needle tip at 0° and 180° about a rolled and pitched axis: the axis at the tip's height."""
    rng = np.random.default_rng(16)
    shape, roll, pitch = (240, 260), 1.0, 1.5
    tips = [projected_tip(theta, roll, pitch, 40, 30, 0, 131.7, 150.0) for theta in (0, 180)]
    lean = axis_lean(roll, pitch)
    first, last = (expose(needle(shape, tip, 3.0, lean), rng) for tip in tips)
    axis_at_tip = 131.7 + math.tan(math.radians(lean)) * (150.0 - np.mean([tip[1] for tip in tips]))
    assert abs(ip.compute_rotation_axis(first, last) - axis_at_tip) < 1


def test_compute_rotation_axis_refuses():
    with pytest.raises(DataError, match=r"^compute_rotation_axis: last_projection has shape \(4, 5\)"):
        ip.compute_rotation_axis(np.eye(4), np.ones((4, 5)))
    with pytest.raises(DataError, match=r"^compute_rotation_axis: last_projection is constant"):
        ip.compute_rotation_axis(np.eye(4), np.ones((4, 4)))
    with pytest.raises(DataError, match=r"^compute_rotation_axis: first_projection has 3 dimensions"):
        ip.compute_rotation_axis(np.ones((2, 4, 4)), np.ones((4, 4)))


def test_every_error_is_a_concert_error():
    for call in (
        lambda: ip.flat_correct(np.ones(3), np.ones(3)),
        lambda: ip.ramp_filter(0),
        lambda: ip.filter_low_frequencies(np.ones(3), 1 * q.s),
    ):
        with pytest.raises(ConcertError):
            call()
