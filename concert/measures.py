"""Measures: numbers computed from frames or parameters, for alignment and optimisation.

* :func:`rotation_axis` -- roll, pitch and centre of a tilted rotation axis, from the ellipse a
  needle tip draws over a full turn;
* :class:`Area`, :class:`SimpleArea` -- how many pixels of a frame an object covers;
* :class:`DummyGradientMeasure` -- a stand-in for a sharpness measure, largest at a known position
  of a parameter (for trying out optimisers and ``focus`` without a beam).

**Geometry** (the laboratory frame every toolbox module shares). Right-handed:
**x** horizontal, perpendicular to the beam, to the right on the detector;
**y** vertical, up; **z** along the beam, from the source towards the
detector, which sees the projection along z. A frame is ``frame[row,
column]`` with the column = x and the row growing *downwards* (y = -row); a
point is ``(x, y)`` in pixels, that is ``(column, row)``, sub-pixel floats.
The rotation axis runs nominally along +y. Its **roll** is its angle from the
vertical in the detector plane (about z), positive when its top leans towards
+x (right in the image); its **pitch** is its angle out of the detector plane
(about x), positive when its top leans towards +z (downstream). At the stage
angle θ a point at distance r from the axis sits at ``r (cos θ, 0, sin θ)`` in
the axis' frame (θ = 0: towards +x, θ = 90°: towards +z), which is then
tilted by the pitch (about x), then by the roll (about z), then projected
along z.

Wrong use raises :class:`~concert.exceptions.DataError` (tips or frames that
do not fit), :class:`~concert.exceptions.UnitError` (a quantity in the wrong
unit) or :class:`~concert.exceptions.ProcessError` (a measure built from
something it cannot use); messages name the measure, the argument and the
value.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Tuple

import numpy as np

from concert.checks import is_quantity, is_real
from concert.exceptions import DataError, LimitError, ProcessError, UnitError
from concert.imageprocessing import _array, _images, _points, _scipy, flat_correct
from concert.naming import describe_value

__all__ = ["Area", "DummyGradientMeasure", "SimpleArea", "rotation_axis"]


def rotation_axis(tips: Any) -> Tuple[Any, Any, Tuple[Any, Any]]:
    """Return ``(roll, pitch, center)`` of the rotation axis from needle tips seen over a full turn.

    ``tips`` are the positions ``(x, y)`` in pixels (``(column, row)``, as
    :func:`~concert.imageprocessing.find_needle_tips` returns them; numbers
    or ``q.pixel`` quantities) of one point of the sample in frames taken at
    stage angles equally spaced over 360°, in order: ``θ_k = 360° k / N`` for
    ``k = 0 … N-1``, at least 3 of them. Where the point starts (its angle at
    θ = 0) does not matter.

    The point draws an ellipse: with the geometry of this module its
    projection is ``center + R(roll) · (r cos(θ + φ), -r sin(pitch) sin(θ +
    φ))`` (physical x and y). The ellipse is fitted by linear least squares
    in ``cos θ`` and ``sin θ`` for each coordinate; its major axis is ``r``,
    inclined by the roll; its minor axis is ``r |sin(pitch)|``, and the
    direction in which the point goes round gives the sign of the pitch (for
    a positive pitch the point moves down while θ runs from 0 to 180°,
    towards the detector).

    Returns the roll and the pitch as ``q.deg`` quantities (roll between
    -90° and 90°) and ``center``, the ellipse's centre, as a pair of
    ``q.pixel`` quantities ``(x, y)`` (column, row).

    :raises DataError: for fewer than 3 tips, tips that are not ``(x, y)``
        pairs of finite numbers, or tips that move by less than half a pixel
        (the point is on the axis, whose tilt then cannot be seen).
    :raises UnitError: for quantities not in pixels.
    """
    from concert.quantities import q

    points = _points(tips, "rotation_axis", "tips")
    count = len(points)
    if count < 3:
        raise DataError(
            f"rotation_axis: tips has {count} point{'s' if count != 1 else ''}, expected at least 3 "
            "(taken at angles equally spaced over 360°)"
        )
    angles = 2 * np.pi * np.arange(count) / count
    design = np.column_stack([np.ones(count), np.cos(angles), np.sin(angles)])
    physical = np.column_stack([points[:, 0], -points[:, 1]])  # y up
    coefficients, *_ = np.linalg.lstsq(design, physical, rcond=None)
    centre = coefficients[0]
    motion = coefficients[1:].T  # [[x_cos, x_sin], [y_cos, y_sin]]: rotation(roll) · diag(r, -r sin p) · turn
    left, singular, _ = np.linalg.svd(motion)
    radius = float(singular[0])
    if radius < 0.5:
        raise DataError(
            f"rotation_axis: tips move by {radius:.3g} pixels, less than half a pixel: the point is on the "
            "axis, whose tilt cannot be seen from it"
        )
    major = left[:, 0] if left[0, 0] >= 0 else -left[:, 0]  # (cos roll, -sin roll), x towards the right
    roll = math.atan2(-major[1], major[0])
    sine = -float(np.linalg.det(motion)) / radius**2
    pitch = math.asin(max(-1.0, min(1.0, sine)))
    return (
        q.Quantity(math.degrees(roll), q.deg),
        q.Quantity(math.degrees(pitch), q.deg),
        (q.Quantity(float(centre[0]), q.pixel), q.Quantity(float(-centre[1]), q.pixel)),
    )


class DummyGradientMeasure:
    """A measure that is largest where ``param`` is ``max_position``: ``10000 - d**2``.

    ``d`` is the distance of the parameter's current value from
    ``max_position``, as a number in ``max_position``'s unit. With
    ``negative=True`` the measure is ``d**2 - 10000`` instead, smallest at
    ``max_position`` (for minimisers). Stands in for a sharpness measure:
    calling it reads ``param`` (``param.get().result()``, in the calling
    thread) and ignores any frame it is given, so it works both as a
    ``feedback()`` and as a ``measure(frame)``. It keeps no state.

    :raises ProcessError: if ``param`` is not a parameter value
        (``motor['position']``).
    :raises UnitError: if ``max_position`` is not a quantity of ``param``'s
        kind (also when called, for a value of another unit).
    """

    #: The value at ``max_position``.
    MAXIMUM = 10000.0

    def __init__(self, param: Any, max_position: Any, negative: bool = False) -> None:
        if not callable(getattr(param, "get", None)):
            raise ProcessError(
                f"DummyGradientMeasure: param={describe_value(param)} is not a parameter value "
                "(write motor['position'])"
            )
        if not is_quantity(max_position) or not is_real(max_position.magnitude):
            raise UnitError(
                f"DummyGradientMeasure: max_position={describe_value(max_position)} is not one quantity "
                "(write e.g. 18.75 * q.mm)"
            )
        unit = getattr(param, "unit", None)
        if unit is not None:
            try:
                max_position.to(unit)
            except Exception:  # DimensionalityError
                raise UnitError(
                    f"DummyGradientMeasure: max_position={describe_value(max_position)} is not in a unit of "
                    f"{param!r} ({unit:~P})"
                ) from None
        self.param = param
        self.max_position = max_position
        self.negative = bool(negative)

    def __call__(self, frame: Any = None) -> float:
        """The measure at the parameter's current value (``frame`` is ignored)."""
        value = self.param.get().result()
        try:
            distance = float((value - self.max_position).to(self.max_position.units).magnitude)
        except Exception:  # a bare number, or another dimension
            raise UnitError(
                f"DummyGradientMeasure: {self.param!r} is {describe_value(value)}, which cannot be compared "
                f"with max_position={describe_value(self.max_position)}"
            ) from None
        result = self.MAXIMUM - distance**2
        return -result if self.negative else result

    def __repr__(self) -> str:
        negative = ", negative=True" if self.negative else ""
        return f"DummyGradientMeasure({self.param!r}, {describe_value(self.max_position)}{negative})"


class Area:
    """The area of an object in a frame: the number of pixels ``func(frame)`` marks.

    ``func`` takes a frame and returns a boolean mask (any array: its
    non-zero elements count). Calling the measure returns that count, an
    int. It runs in the calling thread and keeps no state of its own.

    :raises ProcessError: if ``func`` is not callable.
    """

    def __init__(self, func: Callable[[np.ndarray], Any]) -> None:
        if not callable(func):
            raise ProcessError(f"{type(self).__name__}: func={describe_value(func)} is not callable")
        self.func = func

    def __call__(self, frame: Any) -> int:
        """The number of pixels of ``frame`` that ``func`` marks."""
        return int(np.count_nonzero(self.func(frame)))


class SimpleArea(Area):
    """The area of a sample after flat-field correction: pixels where it absorbs ``threshold`` of the beam.

    ``object_pixels(frame)`` is the mask of the pixels whose flat-corrected
    transmission (:func:`~concert.imageprocessing.flat_correct` with the flat
    and dark given), smoothed by a Gaussian of 1 pixel to tame photon noise,
    is below ``threshold`` (by default 0.5: at least half of the beam is
    absorbed). Calling the measure counts them (an int).

    ``flat`` (and ``dark``) is one 2-D image or several (a list or a 3-D
    stack), which are averaged. :attr:`flats` and :attr:`darks` return the
    averaged images in use; assigning them replaces them (the dark must keep
    the flat's shape).

    Threads: a measure may be called from several threads at once; the
    flat, the dark and what is derived from them are replaced together by
    one assignment of an immutable tuple, so a call sees either the old or
    the new ones, never a mix.

    :raises DataError: for flats or darks that are not 2-D images of one
        shape, and (when called) for a frame of another shape.
    :raises LimitError: for a ``threshold`` that is not a number between 0 and 1.
    """

    def __init__(self, flat: Any, dark: Any = None, *, threshold: float = 0.5) -> None:
        if not is_real(threshold) or not 0 < float(threshold) <= 1:
            raise LimitError(f"SimpleArea: threshold={threshold!r} must be a number above 0 and at most 1")
        self.threshold = float(threshold)
        # (flat, dark): replaced whole by the setters, read once per call (see the class documentation)
        self._fields: Tuple[np.ndarray, Optional[np.ndarray]] = (self._average(flat, "flat"), None)
        if dark is not None:
            self.darks = dark
        super().__init__(self.object_pixels)

    @staticmethod
    def _average(images: Any, argument: str) -> np.ndarray:
        if isinstance(images, np.ndarray):
            expected = "a 2-D image or a 3-D stack of them"
            array = _array(images, "SimpleArea", argument, ndims=(2, 3), expected=expected)
            stack = [array] if array.ndim == 2 else list(array)
        else:
            stack = _images(images, "SimpleArea", argument)
        shape = stack[0].shape
        for index, image in enumerate(stack):
            if image.shape != shape:
                raise DataError(f"SimpleArea: {argument}[{index}] has shape {image.shape}, expected {shape}")
        if len(stack) == 1:
            return np.array(stack[0], dtype=np.result_type(np.float32, stack[0].dtype))
        return np.mean(np.stack(stack), axis=0, dtype=np.float64)

    @property
    def flats(self) -> np.ndarray:
        """The (averaged) flat field in use; assign one image or several to replace it."""
        return self._fields[0]

    @flats.setter
    def flats(self, flat: Any) -> None:
        flat = self._average(flat, "flat")
        dark = self._fields[1]
        if dark is not None and dark.shape != flat.shape:
            raise DataError(f"SimpleArea: flat has shape {flat.shape}, expected {dark.shape} (the dark's)")
        self._fields = (flat, dark)

    @property
    def darks(self) -> Optional[np.ndarray]:
        """The (averaged) dark field in use, or ``None``; assign one image or several to replace it."""
        return self._fields[1]

    @darks.setter
    def darks(self, dark: Any) -> None:
        flat = self._fields[0]
        if dark is not None:
            dark = self._average(dark, "dark")
            if dark.shape != flat.shape:
                raise DataError(
                    f"SimpleArea: dark has shape {dark.shape}, expected {flat.shape} (the flat's)"
                )
        self._fields = (flat, dark)

    def object_pixels(self, frame: Any) -> np.ndarray:
        """The boolean mask of the pixels of ``frame`` where the sample absorbs (see the class)."""
        flat, dark = self._fields
        frame = _array(frame, "SimpleArea", "frame")
        if frame.shape != flat.shape:
            raise DataError(f"SimpleArea: frame has shape {frame.shape}, expected {flat.shape} (the flat's)")
        transmission = flat_correct(frame, flat, dark)
        smooth = _scipy("SimpleArea").ndimage.gaussian_filter(transmission, 1.0, mode="nearest")
        return smooth < self.threshold
