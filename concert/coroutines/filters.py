"""Push-style filters, the legacy module: each is sent items and forwards what it makes to a ``consumer``.

Every filter here returns a primed generator (or, for :class:`PickSlice`
and :class:`Timer`, is an object whose call returns one), to be sent items
with ``send()`` -- by :func:`~concert.coroutines.base.inject`, a camera's
``stream(consumer)``, or another filter::

    acc = Accumulate()
    inject(radiographs, flat_correct(flat, absorptivity(acc()), dark=dark))

The arguments are checked when the filter is made, so mistakes raise
there; the ``consumer`` must be a primed generator that can take items
(:class:`TypeError` otherwise). Everything runs in the sender's thread
except :func:`queue`, which hands items to a thread of its own. An exception
raised downstream propagates to the sender. Items a filter forwards are
views or new arrays as documented per filter; nothing is copied unless
said so.

Data that does not fit -- a frame of another shape than the filter
expects -- raises ``ValueError`` naming the filter, the expected and the
received shape (the item is not forwarded); a value outside what an
argument allows raises :class:`~concert.exceptions.LimitError`, one of the
wrong type :class:`TypeError`.

Floating-point results (:func:`flat_correct`, :func:`absorptivity`) are
``float32`` for inputs of up to 16-bit integers or ``float32``, and of the
wider type otherwise; divisions by zero and logarithms of zero give
``inf``/``nan`` in those pixels without warnings.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Dict, Generator, List, Optional, Tuple

import numpy as np

from concert.checks import is_integer, is_real
from concert.coroutines._errors import shape_of, wrong_shape
from concert.coroutines.base import Inbox, check_consumer, coroutine, inject
from concert.exceptions import LimitError
from concert.naming import name_of
from concert.pipelines import Average, _Mean

__all__ = [
    "PickSlice",
    "Timer",
    "absorptivity",
    "average_images",
    "backproject",
    "downsize",
    "flat_correct",
    "process",
    "queue",
    "sinograms",
    "stall",
]

Coroutine = Generator[Any, Any, Any]


def _count(value: Any, who: str, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an int of at least ``minimum``, else TypeError or LimitError naming it."""
    if not is_integer(value):
        raise TypeError(f"{who}: {name}={value!r} must be an int")
    if value < minimum:
        raise LimitError(f"{who}: {name}={value!r} must be at least {minimum}")
    return int(value)


def _frame(item: Any, who: str, index: int) -> np.ndarray:
    """``item`` as an array of at least two dimensions, else the shape error naming ``who``."""
    array = np.asanyarray(item)
    if array.ndim < 2:
        raise wrong_shape(who, f"frame {index}", "a 2-D image", shape_of(array))
    return array


def _float_type(*dtypes: Any) -> np.dtype:
    """float32, or the wider type that the ``dtypes`` need (float64 for int32, say)."""
    return np.result_type(np.float32, *dtypes)


# -- selection ----------------------------------------------------------------------------------


def _as_slice(value: Any, name: str, stream: bool = False) -> slice:
    """``None``, a ``slice`` or a tuple ``(start, stop[, step])`` of ints (or None) as a slice.

    ``stream``: the slice selects items of a stream, whose length is not
    known, so negative bounds are refused.
    """
    if value is None:
        return slice(None)
    if isinstance(value, slice):
        parts: Tuple[Any, ...] = (value.start, value.stop, value.step)
    elif isinstance(value, (tuple, list)) and len(value) in (2, 3):
        parts = tuple(value) + (None,) * (3 - len(value))
    else:
        raise TypeError(f"downsize: {name}={value!r} must be None, a slice or a tuple (start, stop[, step])")
    if not all(part is None or is_integer(part) for part in parts):
        raise TypeError(f"downsize: {name}={value!r}: start, stop and step must be ints or None")
    start, stop, step = parts
    if step is not None and step <= 0:
        raise LimitError(f"downsize: {name}={value!r}: the step must be positive")
    if stream and any(bound is not None and bound < 0 for bound in (start, stop)):
        raise LimitError(
            f"downsize: {name}={value!r}: images are counted as they come, so bounds must not be negative"
        )
    return slice(start, stop, step)


@coroutine
def downsize(consumer: Coroutine, x_slice: Any = None, y_slice: Any = None, z_slice: Any = None) -> Coroutine:
    """Forward a cut-out of selected images: ``image[y_slice, x_slice]`` of the images ``z_slice`` selects.

    Each slice is ``None`` (everything), a :class:`slice`, or a tuple
    ``(start, stop)`` / ``(start, stop, step)`` as for Python slicing.
    ``x_slice`` cuts columns, ``y_slice`` rows (the first two axes of each
    image); ``z_slice`` selects images by their number in the stream,
    counting from 0 -- images it does not select are dropped, and its bounds
    must not be negative. What is forwarded is a view of the image (no copy).

    :raises TypeError: for a slice that is not one of the above.
    :raises LimitError: for a step that is not positive, or a negative ``z_slice`` bound.
    :raises ValueError: (from ``send``) for an image of fewer than two dimensions.
    """
    check_consumer(consumer, "downsize")
    columns = _as_slice(x_slice, "x_slice")
    rows = _as_slice(y_slice, "y_slice")
    images = _as_slice(z_slice, "z_slice", stream=True)
    first = images.start or 0
    step = images.step or 1
    index = 0
    while True:
        image = _frame((yield), "downsize", index)
        selected = (
            index >= first and (images.stop is None or index < images.stop) and (index - first) % step == 0
        )
        index += 1
        if selected:
            consumer.send(image[rows, columns])


class PickSlice:
    """Forward item ``index`` of every item (a slice of a volume, a sinogram of a stack …).

    ``PickSlice(index)(consumer)`` returns the primed filter. :attr:`index`
    may be changed at any time; it is read for each item. Negative indices
    count from the end, as in Python. What is forwarded is a view (no copy).

    :raises TypeError: if ``index`` is not an int.
    :raises LimitError: (from ``send``) if ``index`` lies outside the item's first axis.
    """

    def __init__(self, index: int) -> None:
        if not is_integer(index):
            raise TypeError(f"PickSlice(index={index!r}): index must be an int")
        self.index = int(index)

    def __call__(self, consumer: Coroutine) -> Coroutine:
        check_consumer(consumer, f"PickSlice({self.index})")
        generator = self._pick(consumer)
        next(generator)
        return generator

    def _pick(self, consumer: Coroutine) -> Coroutine:
        while True:
            array = np.asanyarray((yield))
            index = self.index
            length = array.shape[0] if array.ndim else 0
            if not -length <= index < length:
                raise LimitError(
                    f"PickSlice({index}): index {index} lies outside an item of shape {shape_of(array)}"
                )
            consumer.send(array[index])


# -- threads and timing ---------------------------------------------------------------------------


def queue(
    consumer: Coroutine, process_all: bool = True, block: bool = False, make_deepcopy: bool = True
) -> Coroutine:
    """Forward items to ``consumer`` from a thread of its own: a slow consumer does not hold up the sender.

    Items are forwarded in the order they were sent. The queue is unbounded.

    * ``process_all=True``: every item is forwarded. ``False``: when the
      consumer is ready for the next item it gets the newest one, and the
      older ones waiting are dropped (a live view that keeps up).
    * ``block=True``: ``send()`` returns once the consumer is done with the
      item (so the sender is held up after all, but the consumer runs in its
      thread); ``False``: at once.
    * ``make_deepcopy=True``: each item is deep-copied when it is sent, so
      the sender may reuse its buffer (a camera does).

    The consumer is then driven by that thread only: do not send it items
    from elsewhere meanwhile. An exception it raises is raised by the next
    ``send()`` (by that very ``send()`` with ``block``), or by ``close()``;
    the items after it are not forwarded. ``close()`` waits until every item
    sent has been forwarded; so does garbage collection of the filter, and
    the interpreter's exit does within
    :data:`concert.config.EXIT_FLUSH_TIMEOUT` (see
    :class:`~concert.coroutines.base.Inbox`).

    :raises TypeError: if ``consumer`` is not a primed generator.
    """
    check_consumer(consumer, "queue")
    inbox = Inbox(wait=bool(block), newest_only=not process_all, deepcopy=bool(make_deepcopy))
    return inbox.start(lambda: inject(inbox, consumer), f"queue({name_of(consumer)})")


class Timer:
    """Measure how long the rest of a chain takes per item.

    ``Timer()(consumer)`` returns the primed filter; for each item it
    measures the time from receiving it until ``consumer.send(item)``
    returns (everything downstream), with :func:`time.perf_counter`, and
    appends it to :attr:`durations` (quantities in seconds). An item whose
    send raises is not counted.
    """

    def __init__(self) -> None:
        self.durations: List[Any] = []

    @property
    def duration(self) -> Any:
        """The sum of :attr:`durations` (``0 s`` before the first item)."""
        from concert.quantities import q

        return sum(self.durations, 0 * q.s)

    def reset(self) -> None:
        """Forget the durations measured so far."""
        self.durations = []

    def __call__(self, consumer: Coroutine) -> Coroutine:
        check_consumer(consumer, "Timer")
        generator = self._time(consumer)
        next(generator)
        return generator

    def _time(self, consumer: Coroutine) -> Coroutine:
        from concert.quantities import q

        while True:
            item = yield
            start = time.perf_counter()
            consumer.send(item)
            self.durations.append((time.perf_counter() - start) * q.s)


@coroutine
def process(func: Callable[..., Any], consumer: Coroutine, *args: Any, **kwargs: Any) -> Coroutine:
    """Forward ``func(item, *args, **kwargs)`` for every item.

    :raises TypeError: if ``func`` is not callable.
    :raises: (from ``send``) whatever ``func`` raises; nothing is forwarded then.
    """
    if not callable(func):
        raise TypeError(f"process: func {func!r} is not callable")
    check_consumer(consumer, f"process({name_of(func)})")
    while True:
        item = yield
        consumer.send(func(item, *args, **kwargs))


@coroutine
def stall(consumer: Coroutine, per_shot: int = 10, flush_at: Optional[int] = None) -> Coroutine:
    """Forward only every ``per_shot``-th item, and the ``flush_at``-th.

    Items are counted from 1; item ``n`` is forwarded when ``n`` is a
    multiple of ``per_shot`` or equals ``flush_at``. After the
    ``flush_at``-th item the count starts over, so with ``per_shot=4,
    flush_at=10`` items 4, 8, 10, 14, 18, 20 … are forwarded: made for
    :func:`sinograms`, which sends its volume after every radiograph, to
    reconstruct every few radiographs and once the volume is complete.

    :raises TypeError: if ``per_shot`` or ``flush_at`` is not an int.
    :raises LimitError: if ``per_shot`` or ``flush_at`` is smaller than 1.
    """
    check_consumer(consumer, "stall")
    per_shot = _count(per_shot, "stall", "per_shot")
    if flush_at is not None:
        flush_at = _count(flush_at, "stall", "flush_at")
    count = 0
    while True:
        item = yield
        count += 1
        last = count == flush_at
        if last:
            count = 0
        if last or (count and count % per_shot == 0):
            consumer.send(item)


# -- image processing -----------------------------------------------------------------------------


@coroutine
def average_images(consumer: Coroutine) -> Coroutine:
    """Forward the running average of the images so far (float64), after each image.

    Each average forwarded is a new array. The sums are those of
    :class:`~concert.pipelines.Average` (exact for integer images).

    :raises ValueError: (from ``send``) for an image of another shape or
        dtype than the first (it is not counted).
    """
    check_consumer(consumer, "average_images")
    mean = _Mean("average_images", Average._SPILL)
    while True:
        mean.add((yield))
        consumer.send(mean.mean())


@coroutine
def flat_correct(flat: Any, consumer: Coroutine, dark: Any = None) -> Coroutine:
    """Forward each frame flat-field corrected: ``(frame - dark) / (flat - dark)``, or ``frame / flat``.

    The result is a new floating-point array (see the module for its type).
    ``flat`` and ``dark`` are copied when the filter is made: changing them
    afterwards changes nothing.

    :raises ValueError: if ``dark`` has another shape than ``flat``, and
        (from ``send``) for a frame of another shape than ``flat``.
    """
    check_consumer(consumer, "flat_correct")
    flat = np.array(flat)
    if flat.size == 0:
        raise wrong_shape("flat_correct", "flat", "a non-empty image", shape_of(flat))
    if dark is not None:
        dark = np.array(dark)
        if dark.shape != flat.shape:
            raise wrong_shape("flat_correct", "dark", f"{flat.shape} (the flat's)", shape_of(dark))
        dtype = _float_type(flat.dtype, dark.dtype)
        dark = dark.astype(dtype)
        denominator = flat.astype(dtype) - dark
    else:
        dtype = _float_type(flat.dtype)
        denominator = flat.astype(dtype)
    index = 0
    while True:
        frame = np.asanyarray((yield))
        if frame.shape != flat.shape:
            raise wrong_shape("flat_correct", f"frame {index}", f"{flat.shape} (the flat's)", shape_of(frame))
        index += 1
        numerator = frame.astype(_float_type(dtype, frame.dtype))
        if dark is not None:
            numerator -= dark
        with np.errstate(divide="ignore", invalid="ignore"):
            numerator /= denominator
        consumer.send(numerator)


@coroutine
def absorptivity(consumer: Coroutine) -> Coroutine:
    """Forward ``-log(frame)`` of each frame (of a flat-corrected one: its absorptivity), a new array."""
    check_consumer(consumer, "absorptivity")
    while True:
        frame = np.asanyarray((yield))
        result = frame.astype(_float_type(frame.dtype))
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(result, out=result)
        np.negative(result, out=result)
        consumer.send(result)


# -- tomography -----------------------------------------------------------------------------------


@coroutine
def sinograms(num_radiographs: int, consumer: Coroutine, sinograms_volume: Any = None) -> Coroutine:
    """Sort radiographs into sinograms; forward the volume of sinograms after every radiograph.

    The volume has the shape ``(height, num_radiographs, width)`` for
    radiographs of shape ``(height, width)``: sinogram ``i``
    (``volume[i]``) holds row ``i`` of every radiograph, radiograph ``j`` in
    its row ``j``. It is ``sinograms_volume`` if given (then radiographs
    must have the shape ``(volume.shape[0], volume.shape[2])``), otherwise a
    ``float32`` array of zeros made for the first radiograph. The same
    array is forwarded each time, updated in place: a consumer that keeps
    it must copy it. Radiograph ``num_radiographs + j`` goes into row ``j``
    again (the volume holds the latest ``num_radiographs``). Put a
    :func:`stall` after it to go on only every few radiographs.

    :raises TypeError: if ``num_radiographs`` is not an int.
    :raises LimitError: if ``num_radiographs`` is smaller than 1.
    :raises ValueError: for a ``sinograms_volume`` that is not a 3-D array
        with ``num_radiographs`` rows per sinogram, and (from ``send``) for a
        radiograph that is not 2-D or has another shape than the first (or
        than the volume's); the volume is left unchanged then.
    """
    check_consumer(consumer, "sinograms")
    count = _count(num_radiographs, "sinograms", "num_radiographs")
    volume = sinograms_volume
    shape: Optional[Tuple[int, ...]] = None
    if volume is not None:
        if not isinstance(volume, np.ndarray) or volume.ndim != 3 or volume.shape[1] != count:
            raise wrong_shape(
                "sinograms", "sinograms_volume", f"(height, {count}, width), a 3-D array", shape_of(volume)
            )
        shape = (volume.shape[0], volume.shape[2])
    index = 0
    while True:
        radiograph = np.asanyarray((yield))
        if radiograph.ndim != 2:
            raise wrong_shape("sinograms", f"radiograph {index}", "a 2-D image", shape_of(radiograph))
        if shape is None:
            shape = radiograph.shape
            volume = np.zeros((shape[0], count, shape[1]), dtype=np.float32)
        elif radiograph.shape != shape:
            raise wrong_shape("sinograms", f"radiograph {index}", shape, radiograph.shape)
        volume[:, index % count, :] = radiograph
        index += 1
        consumer.send(volume)


_ramps: Dict[int, np.ndarray] = {}  # padded length -> ramp filter (rfft of the Ram-Lak kernel)
_ramps_lock = threading.Lock()


def _ramp(size: int) -> np.ndarray:
    """The ramp filter ``|f|`` (cycles per pixel) for rows padded to ``size``, from the band-limited kernel.

    The kernel (Kak and Slaney, eq. 3.61, unit sampling) is 1/4 at 0,
    ``-1/(pi k)^2`` at odd ``k`` and 0 at even ``k`` (circularly), so the
    filter has no DC offset.
    """
    with _ramps_lock:
        ramp = _ramps.get(size)
        if ramp is None:
            distance = np.minimum(np.arange(size), size - np.arange(size))
            kernel = np.zeros(size)
            kernel[0] = 0.25
            odd = distance % 2 == 1
            kernel[odd] = -1.0 / (np.pi * distance[odd]) ** 2
            ramp = _ramps[size] = np.fft.rfft(kernel).real
        return ramp


def reconstruct(sinogram: np.ndarray, center: float) -> np.ndarray:
    """Filtered backprojection of one parallel-beam ``sinogram`` (projections x width); return the slice.

    Projection ``k`` of ``n`` was taken at the angle ``k * pi / n`` (over 180
    degrees); ``center`` is the detector column (in pixels, may be
    fractional) onto which the rotation axis projects. The slice is
    ``width x width`` pixels (``float32``), centred on the axis: the point
    at column ``x`` and row ``y`` of the slice projects at angle ``theta`` to
    the detector column ``center + (x - center) cos(theta) + (y - center)
    sin(theta)``. Values approximate the attenuation per pixel.
    """
    projections, width = sinogram.shape
    size = max(64, 1 << math.ceil(math.log2(2 * width)))
    filtered = np.fft.irfft(np.fft.rfft(sinogram, n=size, axis=1) * _ramp(size), n=size, axis=1)[:, :width]
    positions = np.arange(width, dtype=np.float64) - center
    columns = positions[np.newaxis, :]
    rows = positions[:, np.newaxis]
    detector = np.arange(width, dtype=np.float64)
    result = np.zeros((width, width))
    for k in range(projections):
        theta = k * np.pi / projections
        where = columns * np.cos(theta) + rows * np.sin(theta) + center
        result += np.interp(where.ravel(), detector, filtered[k], left=0.0, right=0.0).reshape(width, width)
    result *= np.pi / projections
    return result.astype(np.float32)


@coroutine
def backproject(center: float, consumer: Coroutine) -> Coroutine:
    """Reconstruct each sinogram it is sent by filtered backprojection; forward the slice.

    Each item is one sinogram, a 2-D array (projections x width) taken over
    180 degrees; ``center`` is the detector column of the rotation axis,
    in pixels. See :func:`reconstruct` for the geometry; the slice is a new
    ``width x width`` ``float32`` array. To reconstruct from the volume
    :func:`sinograms` forwards, pick a sinogram first::

        sinograms(n, PickSlice(row)(backproject(center, consumer)))

    :raises TypeError: if ``center`` is not a real number.
    :raises LimitError: if ``center`` is not finite.
    :raises ValueError: (from ``send``) for an item that is not a non-empty 2-D array.
    """
    check_consumer(consumer, "backproject")
    if not is_real(center):
        raise TypeError(f"backproject: center={center!r} must be a number of pixels")
    if not math.isfinite(center):
        raise LimitError(f"backproject: center={center!r} must be finite")
    center = float(center)
    index = 0
    while True:
        sinogram = np.asanyarray((yield))
        if sinogram.ndim != 2 or sinogram.size == 0:
            raise wrong_shape(
                "backproject",
                f"sinogram {index}",
                "(projections, width), one 2-D sinogram (PickSlice picks one out of a volume)",
                shape_of(sinogram),
            )
        index += 1
        consumer.send(reconstruct(sinogram, center))
