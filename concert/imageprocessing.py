"""Image processing for aligning a tomography set-up: flat fields, needle tips, spheres, rotation axes.

What lives here:

* :func:`flat_correct`, :func:`normalize`, :func:`filter_low_frequencies` -- images in, images out;
* :func:`find_needle_tip`, :func:`find_needle_tips`, :func:`find_sphere_centers`,
  :func:`segment_convex_object`, :func:`center_of_mass`, :func:`center_of_points` -- where things are;
* :func:`correlate`, :func:`compute_rotation_axis` -- how two images are displaced;
* :func:`ramp_filter` -- the filter of filtered back-projection.

**Geometry.** A frame is a 2-D array ``frame[row, column]``. Every point these
functions take or return is ``(x, y)`` in pixels, that is ``(column, row)``:
x grows to the right, the row grows *downwards* (the physical vertical is
``-row``). Coordinates are sub-pixel floats, with the centre of pixel
``frame[r, c]`` at ``(c, r)``. The laboratory frame, the rotation axis and the
signs of its roll and pitch are those of :func:`concert.measures.rotation_axis`.

**Samples absorb.** A needle or a sphere is *darker* than the background
around it, as in a projection, raw or flat-corrected (pass ``1 - image`` or
``-image`` for an absorptivity image, where it is brighter). The background is
taken as the median of the image, so the object covers less than half of it;
flat-correct frames whose illumination is uneven first.

**Types.** Images are numpy arrays of integers or floats (an
:class:`~concert.imaging.ImageWithMetadata` too); nothing here modifies its
arguments. Images returned are float32 when every input image is float32,
float16 or an integer type of at most 16 bits, and float64 otherwise (as the
legacy :func:`concert.coroutines.filters.flat_correct` filter).

**Errors** (all from :mod:`concert.exceptions`; each message names the
function, the argument and what was wrong):

* :class:`~concert.exceptions.DataError` -- an image of the wrong
  dimensionality, dtype or shape, an empty image or list of images, values
  that are not finite where finite ones are needed, and an image in which the
  object looked for (a needle, a sphere, any object) is not found;
* :class:`~concert.exceptions.LimitError` -- a numeric argument that is not a
  number or lies outside its range (``fwhm=-1``, ``supersampling=0``);
* :class:`~concert.exceptions.UnitError` -- a quantity in a unit other than
  pixels where pixels are meant.

**Threads.** Every function is pure: any number of threads may call them at
once. They run in the calling thread. scipy (:mod:`scipy.ndimage`,
:mod:`scipy.fft`) is imported when a function first needs it, not with this
module.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from concert.checks import is_integer, is_quantity, is_real
from concert.exceptions import DataError, LimitError, UnitError
from concert.naming import describe_value

__all__ = [
    "center_of_mass",
    "center_of_points",
    "compute_rotation_axis",
    "correlate",
    "filter_low_frequencies",
    "find_needle_tip",
    "find_needle_tips",
    "find_sphere_centers",
    "flat_correct",
    "normalize",
    "ramp_filter",
    "segment_convex_object",
]

LOG = logging.getLogger(__name__)

#: A point ``(x, y)`` in pixels: ``(column, row)``.
Point = Tuple[float, float]

_NUMBER_KINDS = "iuf"  # the dtype kinds of images: signed, unsigned integers, floats
_SAMPLES = 1 << 16  # pixels the background and noise estimates look at (every n-th row and column)
_DETECTION = 8.0  # an object must be darker than the background by this many times the noise
_SMOOTHING = 1.0  # sigma in pixels of the Gaussian that tames photon noise before thresholds
_BLOCK_BYTES = 1 << 19  # flat_correct works through the image in blocks of rows of this many bytes


# -- checks -------------------------------------------------------------------------------------------


def _dims(ndims: Sequence[int]) -> str:
    names = {1: "a 1-D array", 2: "a 2-D image", 3: "a 3-D stack of images"}
    return " or ".join(names.get(n, f"{n}-D") for n in ndims)


def _array(
    value: Any,
    function: str,
    argument: str,
    ndims: Sequence[int] = (2,),
    kinds: str = _NUMBER_KINDS,
    expected: str = "",
) -> np.ndarray:
    """``value`` as an array of one of ``ndims`` dimensions, numbers of ``kinds``, not empty; else DataError.

    ``expected`` says what is expected in messages (by default, from ``ndims``).
    """
    expected = expected or _dims(ndims)
    if value is None:
        raise DataError(f"{function}: {argument} is None, expected {expected}")
    try:
        array = np.asanyarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise DataError(f"{function}: {argument} is not an array of numbers ({error})") from None
    if array.dtype.kind not in kinds:
        what = "integers, floats or bools" if "b" in kinds else "integers or floats"
        raise DataError(f"{function}: {argument} is of dtype {array.dtype}, expected {what}")
    if array.ndim not in ndims:
        raise DataError(
            f"{function}: {argument} has {array.ndim} dimensions (shape {array.shape}), expected {expected}"
        )
    if array.size == 0:
        raise DataError(f"{function}: {argument} is empty (shape {array.shape})")
    return array


def _images(images: Any, function: str, argument: str = "images") -> List[np.ndarray]:
    """The 2-D images of a list (tuple, iterable) of images or of a 3-D stack; DataError if there are none."""
    if isinstance(images, np.ndarray) or hasattr(images, "__array_interface__"):
        stack = np.asanyarray(images)
        if stack.ndim == 2:
            raise DataError(
                f"{function}: {argument} is one 2-D image (shape {stack.shape}), expected a list or a 3-D "
                "stack of images"
            )
        stack = _array(stack, function, argument, ndims=(3,))
        return [stack[index] for index in range(len(stack))]
    if images is None or isinstance(images, (str, bytes)) or not isinstance(images, Iterable):
        raise DataError(f"{function}: {argument} is {describe_value(images)}, expected a list of 2-D images")
    result = [_array(image, function, f"{argument}[{index}]") for index, image in enumerate(images)]
    if not result:
        raise DataError(f"{function}: {argument} is empty, expected at least one image")
    return result


def _float_type(*dtypes: Any) -> np.dtype:
    """float32, or the wider type that the ``dtypes`` need (float64 for int32 or float64)."""
    return np.result_type(np.float32, *dtypes)


def _number(value: Any, function: str, argument: str, unit: str = "") -> float:
    """``value`` as a finite float (a ``q.pixel`` quantity when ``unit`` is 'pixel'); else Unit/LimitError."""
    if is_quantity(value):
        if unit != "pixel":
            raise UnitError(f"{function}: {argument}={value!s} has a unit, expected a plain number")
        value = _in_pixels(value, function, argument)
    if not is_real(value):
        raise LimitError(f"{function}: {argument}={value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise LimitError(f"{function}: {argument}={value!r} is not a finite number")
    return number


def _in_pixels(value: Any, function: str, argument: str) -> Any:
    """The magnitude of a quantity in pixels (``q.pixel``); UnitError for any other unit."""
    from concert.quantities import q

    try:
        return value.to(q.pixel).magnitude
    except Exception:  # DimensionalityError, or a quantity of another registry
        raise UnitError(f"{function}: {argument}={value!s} is not in pixels (q.pixel)") from None


def _scipy(function: str) -> Any:
    """scipy's ndimage and fft modules, or an ImportError saying who needs them."""
    try:
        import scipy.fft
        import scipy.ndimage
    except ImportError as error:
        raise ImportError(
            f"concert.imageprocessing.{function} needs scipy, which is not installed: pip install scipy"
        ) from error
    return scipy


# -- images in, images out ---------------------------------------------------------------------------


def flat_correct(radio: Any, flat: Any, dark: Any = None, *, fill: float = 1.0) -> np.ndarray:
    """Return the flat-field corrected ``radio``: ``(radio - dark) / (flat - dark)``, or ``radio / flat``.

    ``radio`` is one 2-D image or a 3-D stack of them; ``flat`` and ``dark``
    are 2-D images of ``radio``'s frame shape. The result is a new array of
    ``radio``'s shape (an :class:`~concert.imaging.ImageWithMetadata` with a
    copy of the metadata when ``radio`` is one), float32 when all inputs are
    float32 or at most 16-bit integers, float64 otherwise. Integer inputs are
    subtracted as floats, so a radio darker than the dark gives a negative
    value, not an integer wrap-around.

    Pixels where ``flat == dark`` (``flat == 0`` without a dark) carry no
    information about the beam: instead of ``inf`` or ``nan`` they get
    ``fill``, by default 1.0 -- full transmission, so that ``-log`` of them is
    0 and they never count as sample (pass ``fill=np.nan`` to mark them).
    NaN and infinite input pixels propagate as IEEE arithmetic says; no
    warnings are issued.

    The image is processed in blocks of rows that stay in the processor's
    cache, which makes this faster than the bare numpy expression.

    :raises DataError: for an image that is not 2-D (``radio``: 2-D or 3-D),
        empty, not of integers or floats, or for a ``flat`` or ``dark`` whose
        shape is not ``radio``'s frame shape.
    :raises LimitError: if ``fill`` is not a number.
    """
    radio = _array(radio, "flat_correct", "radio", ndims=(2, 3))
    flat = _array(flat, "flat_correct", "flat")
    frame_shape = radio.shape[-2:]
    if flat.shape != frame_shape:
        raise DataError(f"flat_correct: flat has shape {flat.shape}, expected {frame_shape} (the radio's)")
    if dark is not None:
        dark = _array(dark, "flat_correct", "dark")
        if dark.shape != frame_shape:
            raise DataError(
                f"flat_correct: dark has shape {dark.shape}, expected {frame_shape} (the radio's)"
            )
    if not is_real(fill):
        raise LimitError(f"flat_correct: fill={fill!r} is not a number")
    dtype = _float_type(radio.dtype, flat.dtype, *(() if dark is None else (dark.dtype,)))
    result = np.empty_like(radio, dtype=dtype, order="C")
    frames = [result] if result.ndim == 2 else list(result)
    radios = [radio] if radio.ndim == 2 else list(radio)
    filled = 0
    for out, frame in zip(frames, radios):
        filled += _flat_correct_frame(out, frame, flat, dark, dtype, fill)
    if filled:
        LOG.debug("flat_correct: %d pixels where the flat equals the dark set to %r", filled, fill)
    return result


def _flat_correct_frame(
    out: np.ndarray, radio: np.ndarray, flat: np.ndarray, dark: Optional[np.ndarray], dtype: Any, fill: float
) -> int:
    """Flat-correct one frame into ``out`` block by block; return the number of pixels set to ``fill``.

    Per block, the numerator is written straight into ``out`` and the
    denominator into a small scratch array, both in the cache when the
    division reads them. A zero denominator is noticed by the division's
    floating-point flags (free), and only then looked for.
    """
    height, width = out.shape
    rows = max(1, _BLOCK_BYTES // max(1, width * out.itemsize))
    scratch = np.empty((min(rows, height), width), dtype=dtype) if dark is not None else None
    filled = 0
    with np.errstate(divide="raise", invalid="raise", over="ignore", under="ignore"):
        for start in range(0, height, rows):
            stop = min(start + rows, height)
            block = out[start:stop]
            if dark is None:
                numerator, denominator = radio[start:stop], flat[start:stop]
            else:
                numerator, denominator = block, scratch[: stop - start]
                with np.errstate(invalid="ignore"):  # inf - inf in the inputs: NaN, quietly
                    np.subtract(flat[start:stop], dark[start:stop], out=denominator, dtype=dtype)
                    np.subtract(radio[start:stop], dark[start:stop], out=block, dtype=dtype)
            try:
                np.divide(numerator, denominator, out=block, dtype=dtype)
            except FloatingPointError:  # the block is divided all the same; see which pixels had 0
                zero = denominator == 0
                block[zero] = fill
                filled += int(np.count_nonzero(zero))
    return filled


def normalize(image: Any, minimum: float = 0, maximum: float = 1) -> np.ndarray:
    """Return ``image`` scaled linearly: its smallest value becomes ``minimum``, its largest ``maximum``.

    Works on arrays of any number of dimensions. NaN pixels are ignored when
    the range is found and stay NaN. A constant image becomes all
    ``minimum``. The result is a new floating-point array (see the module).

    :raises DataError: for an empty array, one not of integers or floats,
        one that is all NaN or holds an infinite value.
    :raises LimitError: if ``minimum`` or ``maximum`` is not a finite number,
        or ``minimum >= maximum``.
    """
    image = _array(image, "normalize", "image", ndims=range(1, 65), expected="an array of numbers")
    low_target = _number(minimum, "normalize", "minimum")
    high_target = _number(maximum, "normalize", "maximum")
    if not low_target < high_target:
        raise LimitError(f"normalize: minimum={minimum!r} must be smaller than maximum={maximum!r}")
    dtype = _float_type(image.dtype)
    if image.dtype.kind == "f" and np.isnan(image).all():  # (nanmin would warn)
        raise DataError("normalize: image is all NaN")
    low, high = np.nanmin(image), np.nanmax(image)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise DataError("normalize: image holds an infinite value, which has no place on a linear scale")
    low, high = float(low), float(high)
    result = np.subtract(image, low, dtype=dtype)
    if high > low:
        result *= (high_target - low_target) / (high - low)
    else:
        result *= 0
    result += low_target
    return result


def filter_low_frequencies(data: Any, fwhm: float = 32) -> np.ndarray:
    """Return 1-D or 2-D ``data`` without its low frequencies: ``data`` minus its Gaussian blur.

    The blur is a Gaussian of full width at half maximum ``fwhm`` pixels
    (sigma = fwhm / 2.355) along every axis, so structures much larger than
    ``fwhm`` -- an uneven beam, a slow drift along a profile -- are removed
    while edges and small features stay. At the borders the data is
    mirrored. The result is a new floating-point array (see the module).

    :raises DataError: for data that is not 1-D or 2-D, empty, or not numbers.
    :raises LimitError: if ``fwhm`` is not a positive number (a ``q.pixel``
        quantity is fine).
    :raises UnitError: if ``fwhm`` is a quantity not in pixels.
    """
    data = _array(data, "filter_low_frequencies", "data", ndims=(1, 2))
    width = _number(fwhm, "filter_low_frequencies", "fwhm", unit="pixel")
    if width <= 0:
        raise LimitError(f"filter_low_frequencies: fwhm={fwhm!r} must be a positive number of pixels")
    ndimage = _scipy("filter_low_frequencies").ndimage
    dtype = _float_type(data.dtype)
    values = np.asarray(data, dtype=dtype)
    sigma = width / (2 * math.sqrt(2 * math.log(2)))
    blurred = ndimage.gaussian_filter(values, sigma, mode="reflect", output=dtype)
    return np.subtract(values, blurred, out=blurred)


def ramp_filter(width: int) -> np.ndarray:
    """Return the ramp filter of filtered back-projection for rows of ``width`` pixels, in Fourier space.

    ``2 * |f|`` for the frequencies ``f`` of :func:`numpy.fft.fftfreq` (in
    cycles per pixel), in that order: 0 at the zero frequency, 1 at the
    Nyquist frequency. Multiply it with ``numpy.fft.fft`` of a row (of a
    sinogram) and transform back. A float32 array of ``width`` elements.

    :raises LimitError: if ``width`` is not an integer of at least 1.
    """
    if not is_integer(width) or width < 1:
        raise LimitError(f"ramp_filter: width={width!r} must be an integer number of pixels, at least 1")
    return (2 * np.abs(np.fft.fftfreq(int(width)))).astype(np.float32)


# -- where things are --------------------------------------------------------------------------------


class _Dark:
    """What makes an image's dark objects: absorption (background - image), its smoothed form, noise, peak."""

    def __init__(self, image: np.ndarray, function: str, argument: str, what: str) -> None:
        ndimage = _scipy(function).ndimage
        data = np.array(image, dtype=np.float64)  # a copy: becomes the absorption in place
        step = max(1, int(math.sqrt(data.size / _SAMPLES)))
        background = float(np.median(data[::step, ::step]))
        if not math.isfinite(background):
            raise DataError(f"{function}: {argument} holds NaN or infinite values")
        self.absorption = np.subtract(background, data, out=data)
        self.smooth = ndimage.gaussian_filter(self.absorption, _SMOOTHING, mode="nearest")
        sample = self.smooth[::step, ::step]
        self.noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))
        self.peak = float(self.smooth.max())
        if not math.isfinite(self.peak):
            raise DataError(f"{function}: {argument} holds NaN or infinite values")
        if not (self.peak > 0 and self.peak > _DETECTION * self.noise):
            raise DataError(
                f"{function}: {argument} shows no {what}: nothing in it is darker than its background "
                f"({background:.6g}) by more than {_DETECTION:g} times its noise "
                f"(darkest {self.peak:.3g} below, noise {self.noise:.3g})"
            )
        self.ndimage = ndimage

    def strongest(self, threshold: float) -> Tuple[np.ndarray, Tuple[slice, slice]]:
        """The mask (within its bounding box) and the bounding box of the most absorbing region."""
        labels, count = self.ndimage.label(self.smooth > threshold)
        index = 1
        if count > 1:
            sums = self.ndimage.sum_labels(self.smooth, labels, index=np.arange(1, count + 1))
            index = int(np.argmax(sums)) + 1
        box = self.ndimage.find_objects(labels, max_label=index)[index - 1]
        return labels[box] == index, box

    def threshold(self, fraction: float) -> float:
        """``fraction`` of the peak, but at least 5 times the noise."""
        return max(fraction * self.peak, 5 * self.noise)


def find_needle_tip(image: Any) -> Point:
    """Return the tip ``(x, y)`` (pixels, ``(column, row)``) of the needle in ``image``.

    The needle is the most absorbing dark region of the image, a roughly
    vertical rod entering from the bottom edge (tip pointing up) or from the
    top edge (tip pointing down); one touching neither edge is taken to point
    up, one touching both has no tip in the image. Its centre line is fitted
    (a line through the absorption-weighted centre of each of up to 60 rows
    of the shaft, so a needle leaning a few degrees is fine); the tip is the
    point of that line where the absorption along it falls to half of the
    shaft's: the end of a blunt needle, within a fraction of a pixel of the
    apex of a rounded one, and not moved by a symmetric blur.

    :raises DataError: for an image that is not a 2-D array of numbers, holds
        NaN, or shows no needle (nothing darker than the background by 8
        times its noise; a needle crossing the whole height).
    """
    image = _array(image, "find_needle_tip", "image")
    return _needle_tip(image, "find_needle_tip", "image")


def find_needle_tips(images: Any) -> List[Point]:
    """Return the needle tip ``(x, y)`` of each image (see :func:`find_needle_tip`), in order.

    ``images`` is a list (any iterable) of 2-D images or a 3-D stack.

    :raises DataError: if there are no images, or for the first one that is
        not a 2-D image of numbers or shows no needle (the message names its
        index, ``images[3]``).
    """
    return [
        _needle_tip(image, "find_needle_tips", f"images[{index}]")
        for index, image in enumerate(_images(images, "find_needle_tips"))
    ]


_SHAFT_ROWS = 60  # rows of the shaft whose centre line is fitted
_BEYOND = 6  # rows beyond the thresholded tip in which the half-way point is looked for
_INSIDE = 5  # rows inside the thresholded tip from which the shaft's level is taken


def _needle_tip(image: np.ndarray, function: str, argument: str) -> Point:
    dark = _Dark(image, function, argument, "needle")
    mask, (rows, columns) = dark.strongest(dark.threshold(0.5))
    height, width = image.shape
    top, bottom = rows.start == 0, rows.stop == height
    if top and bottom:
        raise DataError(
            f"{function}: {argument} shows no needle tip: the dark region crosses the whole image from "
            f"row 0 to row {height - 1}"
        )
    flipped = top  # work with the tip at the top, the needle rising from below
    absorption = dark.absorption[::-1] if flipped else dark.absorption
    if flipped:
        mask = mask[::-1]
        rows = slice(height - rows.stop, height - rows.start)
    tip = rows.start  # first row of the thresholded needle
    shaft_end = min(rows.stop, tip + _SHAFT_ROWS)
    seen = np.flatnonzero(mask[: shaft_end - tip].any(axis=0))
    margin = max(3, (seen[-1] - seen[0] + 1) // 2)
    left = max(0, columns.start + seen[0] - margin)
    right = min(width, columns.start + seen[-1] + 1 + margin)
    # the centre line of the shaft: the absorption-weighted column of each row, fitted by a line
    fit_rows = np.arange(min(tip + 2, rows.stop - 1), shaft_end)
    weights = absorption[fit_rows, left:right]
    totals = weights.sum(axis=1)
    good = totals > 0
    centres = (weights[good] @ np.arange(left, right, dtype=np.float64)) / totals[good]
    fit_rows = fit_rows[good]
    if len(fit_rows) >= 3:
        slope, offset = np.polyfit(fit_rows.astype(np.float64), centres, 1)
    else:
        slope, offset = 0.0, float(np.mean(centres)) if len(centres) else (left + right - 1) / 2
    # y: where the absorption along the centre line (3 columns wide) falls to half the shaft's
    profile_rows = np.arange(max(0, tip - _BEYOND), shaft_end)
    along = _along_line(absorption, profile_rows, offset + slope * profile_rows)
    inside = profile_rows >= tip + _INSIDE
    level = float(np.median(along[inside])) if inside.sum() >= 3 else float(along.max())
    if not level > 0:
        raise DataError(f"{function}: {argument} shows no needle: its dark region has no shaft")
    start = int(np.argmax(inside)) if inside.any() else int(np.argmax(along))
    below = np.flatnonzero(along[: start + 1] < level / 2)
    if below.size:
        index = int(below[-1])  # the last row outside the needle, seen from its inside
        step = float(along[index + 1] - along[index])
        y = profile_rows[index] + (level / 2 - along[index]) / step
    else:  # the needle reaches the edge of the image
        y = profile_rows[0] - 0.5
    x = float(offset + slope * y)
    if flipped:
        y = height - 1 - y
    return x, float(y)


def _along_line(image: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The mean of ``image`` at ``columns - 1``, ``columns``, ``columns + 1`` of ``rows``, interpolated."""
    width = image.shape[1]
    total = np.zeros(len(rows))
    for offset in (-1.0, 0.0, 1.0):
        position = np.clip(columns + offset, 0, width - 1)
        low = np.minimum(np.floor(position).astype(np.intp), width - 2) if width > 1 else np.zeros_like(rows)
        fraction = position - low
        high = np.minimum(low + 1, width - 1)
        total += image[rows, low] * (1 - fraction) + image[rows, high] * fraction
    return total / 3


def segment_convex_object(image: Any) -> np.ndarray:
    """Return a boolean mask of the dark object in ``image`` (a sphere, say), its holes filled.

    The object is the most absorbing connected region of the (slightly
    smoothed) image that is darker than the background by a tenth of the
    darkest absorption or five times the noise, whichever is more; for a
    sphere, whose projection fades towards its rim, that takes in 99 % of its
    radius. Holes inside it are filled (meant for convex objects: the mask
    of a sphere is its disk); the mask is not made convex.

    :raises DataError: for an image that is not a 2-D array of numbers, holds
        NaN, or shows no object (nothing darker than the background by 8
        times its noise).
    """
    image = _array(image, "segment_convex_object", "image")
    dark = _Dark(image, "segment_convex_object", "image", "object")
    result = np.zeros(image.shape, dtype=bool)
    mask, box = _convex(dark)
    result[box] = mask
    return result


def _convex(dark: _Dark) -> Tuple[np.ndarray, Tuple[slice, slice]]:
    """The filled mask of the strongest object, within its bounding box, and that box."""
    mask, box = dark.strongest(dark.threshold(0.1))
    return dark.ndimage.binary_fill_holes(mask), box


def _centroid(weights: np.ndarray, row: float = 0, column: float = 0) -> Point:
    """``(x, y)`` of the centre of mass of ``weights``, whose pixel [0, 0] sits at ``(column, row)``."""
    total = float(weights.sum(dtype=np.float64))
    y = float(np.arange(weights.shape[0]) @ weights.sum(axis=1, dtype=np.float64)) / total
    x = float(np.arange(weights.shape[1]) @ weights.sum(axis=0, dtype=np.float64)) / total
    return column + x, row + y


def find_sphere_centers(
    images: Any, supersampling: int = 1, correlation_threshold: Optional[float] = None
) -> List[Point]:
    """Return the centre ``(x, y)`` (pixels) of the sphere in each image, in order.

    The sphere of the first image is segmented (:func:`segment_convex_object`)
    and its centre is the centre of its absorption. Every image (the first
    too) is then compared with that sphere by normalised cross-correlation
    around its own dark object; the sphere's displacement is the best match
    refined to a fraction of a pixel by a parabola through the correlation
    peak, after supersampling both (linear interpolation) by
    ``supersampling`` per axis when it is more than 1 (finer, slower).

    ``correlation_threshold``: when given (between -1 and 1), an image whose
    best match correlates less than that with the first image's sphere
    raises -- a sphere partly out of the field of view, hidden, or something
    else. ``None`` accepts every match.

    :raises DataError: if there are no images, for an image that is not a
        2-D image of numbers or of another shape than the first, one that
        shows no dark object, or one whose match stays below
        ``correlation_threshold`` (the message names its index).
    :raises LimitError: if ``supersampling`` is not an integer of at least 1,
        or ``correlation_threshold`` not a number between -1 and 1.
    """
    function = "find_sphere_centers"
    if not is_integer(supersampling) or supersampling < 1:
        raise LimitError(f"{function}: supersampling={supersampling!r} must be an integer of at least 1")
    if correlation_threshold is not None:
        limit = _number(correlation_threshold, function, "correlation_threshold")
        if not -1 <= limit <= 1:
            raise LimitError(
                f"{function}: correlation_threshold={correlation_threshold!r} must lie between -1 and 1"
            )
    frames = _images(images, function)
    first = _Dark(frames[0], function, "images[0]", "sphere")
    mask, (rows, columns) = _convex(first)
    grown = first.ndimage.binary_dilation(np.pad(mask, 2), iterations=2)
    rows = slice(rows.start - 2, rows.stop + 2)
    columns = slice(columns.start - 2, columns.stop + 2)
    template = _crop(first.absorption, rows, columns) * grown
    centre = _centroid(template, rows.start, columns.start)
    reference = _centroid(mask.astype(np.float64), rows.start + 2, columns.start + 2)
    result = []
    for index, frame in enumerate(frames):
        argument = f"images[{index}]"
        if frame.shape != frames[0].shape:
            raise DataError(f"{function}: {argument} has shape {frame.shape}, expected {frames[0].shape}")
        dark = first if index == 0 else _Dark(frame, function, argument, "sphere")
        own, (own_rows, own_columns) = _convex(dark)
        coarse = _centroid(own.astype(np.float64), own_rows.start, own_columns.start)
        dx, dy = round(coarse[0] - reference[0]), round(coarse[1] - reference[1])
        (shift_x, shift_y), peak = _match(
            dark.absorption, template, rows.start + dy, columns.start + dx, supersampling
        )
        if correlation_threshold is not None and peak < limit:
            raise DataError(
                f"{function}: {argument} matches the sphere of images[0] with a correlation of {peak:.3f}, "
                f"below correlation_threshold={correlation_threshold!r}"
            )
        result.append((float(centre[0] + dx + shift_x), float(centre[1] + dy + shift_y)))
    return result


_SEARCH = 4  # pixels around the coarse position that find_sphere_centers searches for the best match


def _crop(image: np.ndarray, rows: slice, columns: slice) -> np.ndarray:
    """``image[rows, columns]`` for bounds that may lie outside the image, zero there."""
    result = np.zeros((rows.stop - rows.start, columns.stop - columns.start))
    top, left = max(rows.start, 0), max(columns.start, 0)
    bottom, right = min(rows.stop, image.shape[0]), min(columns.stop, image.shape[1])
    if bottom > top and right > left:
        result[top - rows.start : bottom - rows.start, left - columns.start : right - columns.start] = image[
            top:bottom, left:right
        ]
    return result


def _match(
    image: np.ndarray, template: np.ndarray, row: int, column: int, factor: int
) -> Tuple[Point, float]:
    """Where ``template`` (placed at ``row``, ``column``) best matches ``image`` within ±_SEARCH pixels.

    Returns the sub-pixel displacement ``(x, y)`` and the Pearson correlation
    of the best integer (supersampled) match.
    """
    height, width = template.shape
    rows = slice(row - _SEARCH, row + height + _SEARCH)
    patch = _crop(image, rows, slice(column - _SEARCH, column + width + _SEARCH))
    if factor > 1:
        ndimage = _scipy("find_sphere_centers").ndimage
        patch = ndimage.zoom(patch, factor, order=1, grid_mode=True, mode="grid-constant")
        template = ndimage.zoom(template, factor, order=1, grid_mode=True, mode="grid-constant")
    windows = np.lib.stride_tricks.sliding_window_view(patch, template.shape)
    centred = template - template.mean()
    size = template.size
    sums = windows.sum(axis=(2, 3))
    squares = np.einsum("ijkl,ijkl->ij", windows, windows)
    products = np.einsum("ijkl,kl->ij", windows, centred)
    spread = np.sqrt(np.maximum(squares - sums**2 / size, 0) * float((centred**2).sum()))
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(spread > 0, products / spread, -1.0)
    peak_row, peak_column = np.unravel_index(int(np.argmax(scores)), scores.shape)
    peak = float(scores[peak_row, peak_column])
    offset_y = (peak_row + _parabola(scores[:, peak_column], peak_row)) / factor - _SEARCH
    offset_x = (peak_column + _parabola(scores[peak_row], peak_column)) / factor - _SEARCH
    return (offset_x, offset_y), peak


def _parabola(values: np.ndarray, index: int) -> float:
    """The offset (within ±0.5) of the vertex of the parabola through ``values[index - 1 : index + 2]``."""
    if index <= 0 or index >= len(values) - 1:
        return 0.0
    before, at, after = float(values[index - 1]), float(values[index]), float(values[index + 1])
    curvature = before - 2 * at + after
    if not curvature < 0:
        return 0.0
    return float(np.clip(0.5 * (before - after) / curvature, -0.5, 0.5))


def center_of_points(points: Any) -> Point:
    """Return the centre ``(x, y)`` of ``points`` -- a sequence of ``(x, y)`` -- as their mean.

    For points taken at equally spaced angles around a circle or an ellipse
    (needle tips over a full turn), that is its centre. The points may be
    numbers or ``q.pixel`` quantities; the result is a pair of floats.

    :raises DataError: if there are no points, they are not pairs, or not finite numbers.
    :raises UnitError: for quantities not in pixels.
    """
    array = _points(points, "center_of_points", "points")
    x, y = array.mean(axis=0)
    return float(x), float(y)


def _points(points: Any, function: str, argument: str) -> np.ndarray:
    """``points`` as a float array of shape (N, 2), N >= 1, finite; quantities in pixels accepted."""
    if is_quantity(points):
        points = _in_pixels(points, function, argument)
    elif isinstance(points, (list, tuple)) and any(
        is_quantity(value) for point in points if isinstance(point, (list, tuple)) for value in point
    ):
        points = [
            [_in_pixels(c, function, argument) if is_quantity(c) else c for c in point] for point in points
        ]
    array = _array(points, function, argument, ndims=(1, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise DataError(f"{function}: {argument} has shape {array.shape}, expected a list of (x, y) pairs")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise DataError(f"{function}: {argument} holds NaN or infinite coordinates")
    return array


def center_of_mass(frame: Any) -> Point:
    """Return the centre of mass ``(x, y)`` (pixels) of ``frame``, its pixel values the masses.

    A boolean mask (from :func:`segment_convex_object`) gives the centre of
    its area. Negative values count negatively.

    :raises DataError: for a frame that is not a 2-D array of numbers or
        bools, whose values are not finite, or whose total mass is not
        positive.
    """
    frame = _array(frame, "center_of_mass", "frame", kinds="biuf")
    total = float(frame.sum(dtype=np.float64))
    if not math.isfinite(total):
        raise DataError("center_of_mass: frame holds NaN or infinite values")
    if not total > 0:
        raise DataError(f"center_of_mass: frame has a total mass of {total:g}, expected a positive one")
    return _centroid(frame)


# -- how two images are displaced --------------------------------------------------------------------


def correlate(first: Any, second: Any, normalize: bool = True) -> np.ndarray:
    """Return the cross-correlation of two images of one shape, as a function of their displacement.

    Both images have their mean subtracted; outside the images counts as
    zero (no wrap-around). The result has the images' shape, zero
    displacement at ``[height // 2, width // 2]``: element
    ``[height // 2 + dy, width // 2 + dx]`` is ``sum(first[r, c] *
    second[r + dy, c + dx])``, so its peak sits at the displacement
    ``(dx, dy)`` by which ``second`` shows what ``first`` shows. With
    ``normalize`` (the default) it is divided by the product of the two
    images' norms: values lie between -1 and 1, and 1 means ``second`` is
    ``first`` displaced, nothing lost at the borders. float64, computed with
    FFTs.

    :raises DataError: for images that are not 2-D arrays of numbers, of
        different shapes, not finite, or (with ``normalize``) constant.
    """
    first = _array(first, "correlate", "first")
    second = _array(second, "correlate", "second")
    if first.shape != second.shape:
        raise DataError(f"correlate: second has shape {second.shape}, expected {first.shape} (first's)")
    return _correlate(first, second, normalize, "correlate", ("first", "second"))


def _correlate(
    first: np.ndarray,
    second: np.ndarray,
    normalize: bool,
    function: str,
    names: Tuple[str, str],
    dtype: Any = np.float64,
) -> np.ndarray:
    """The correlation of :func:`correlate`, computed in ``dtype`` (float32 halves time and memory)."""
    fft = _scipy(function).fft
    height, width = first.shape
    arrays = []
    for array, name in zip((first, second), names):
        centred = np.asarray(array, dtype=dtype)
        mean = float(centred.mean(dtype=np.float64))
        if not math.isfinite(mean):
            raise DataError(f"{function}: {name} holds NaN or infinite values")
        arrays.append(centred - dtype(mean))
    shape = (fft.next_fast_len(2 * height - 1, real=True), fft.next_fast_len(2 * width - 1, real=True))
    spectrum = np.conj(fft.rfft2(arrays[0], shape)) * fft.rfft2(arrays[1], shape)
    full = fft.irfft2(spectrum, shape)
    rows = (np.arange(height) - height // 2) % shape[0]
    columns = (np.arange(width) - width // 2) % shape[1]
    result = full[np.ix_(rows, columns)]
    if normalize:
        norms = [float(np.sqrt(np.dot(array.ravel(), array.ravel()))) for array in arrays]
        for norm, name in zip(norms, names):
            if norm == 0:
                raise DataError(f"{function}: {name} is constant, there is nothing to correlate")
        result /= norms[0] * norms[1]
    return result


def compute_rotation_axis(first_projection: Any, last_projection: Any) -> float:
    """Return the column ``x`` (pixels, a float) of the rotation axis from projections 180° apart.

    A turn by 180° mirrors a projection about the axis, so
    ``last_projection`` flipped left-right is ``first_projection`` shifted by
    twice the axis' distance from the image centre; the shift is found by
    :func:`correlate` and refined to a fraction of a pixel. Give
    flat-corrected projections (an uneven beam would be mirrored too) of a
    sample that is not symmetric about the axis. With a rolled axis the
    result is the axis' column at the height of the sample's features.

    :raises DataError: for projections that are not 2-D arrays of numbers, of
        different shapes, not finite, or constant.
    """
    first = _array(first_projection, "compute_rotation_axis", "first_projection")
    last = _array(last_projection, "compute_rotation_axis", "last_projection")
    if first.shape != last.shape:
        raise DataError(
            f"compute_rotation_axis: last_projection has shape {last.shape}, expected {first.shape} "
            "(first_projection's)"
        )
    names = ("first_projection", "last_projection")
    scores = _correlate(first, last[:, ::-1], True, "compute_rotation_axis", names, np.float32)
    width = scores.shape[1]
    peak_row, peak_column = np.unravel_index(int(np.argmax(scores)), scores.shape)
    shift = peak_column - width // 2 + _parabola(scores[peak_row], peak_column)
    # flipped last[c] = first[c + 2 * axis - (width - 1)], and the peak is at minus that displacement
    return float((width - 1 - shift) / 2)
