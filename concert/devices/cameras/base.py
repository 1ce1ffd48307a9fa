"""What every camera offers: exposure, frame rate, trigger source, region of interest, frames.

States: ``'standby'``, ``'recording'`` and ``'error'``.

Parameters (and their units):

* ``exposure_time`` (s), ``frame_rate`` (1/s, frames per second in AUTO mode);
* ``trigger_source``: a member of :attr:`Camera.trigger_sources`
  (:class:`TriggerSource`): ``AUTO`` (free-running at ``frame_rate``),
  ``SOFTWARE`` (one frame per :meth:`Camera.trigger`) or ``EXTERNAL`` (one
  frame per pulse on the hardware trigger input). The member's name as a
  string (``'SOFTWARE'``) is accepted too; anything else raises
  :class:`~concert.exceptions.LimitError`;
* the region of interest ``roi_x0``, ``roi_y0``, ``roi_width``,
  ``roi_height`` (pixel): whole pixels (else
  :class:`~concert.exceptions.LimitError`), at least one pixel wide and
  high, and on the sensor (``roi_x0 + roi_width <= sensor_width``, likewise
  vertically; else :class:`~concert.exceptions.HardLimitError`);
* read-only: ``sensor_width``, ``sensor_height`` (pixel) and the size of one
  pixel, ``sensor_pixel_width``, ``sensor_pixel_height`` (µm).

Settings can be written only in ``'standby'``: a recording has one
configuration from start to end. A write while recording raises
:class:`~concert.exceptions.StateError`. As for every parameter, a refused
write raises before the implementation's setter runs and leaves the camera
unchanged.

Frames (numpy arrays of shape ``(roi_height, roi_width)`` with metadata, see
:class:`~concert.imaging.ImageWithMetadata`):

* ``start_recording()``, ``stop_recording()``, ``trigger()``, ``grab_async()``
  and ``reset()`` return futures; ``grab()`` blocks and returns the frame
  (as the legacy API did); ``with camera.recording():`` records for the
  duration of the block and always stops.
* The camera buffers what it records, so no frame is skipped: :meth:`Camera.grab`
  (and :meth:`Camera.grab_async`) returns the oldest frame nobody has read yet, waiting for it if necessary.
  Frames recorded before ``stop_recording()`` can still be read after it.
  Once the camera is not recording and has nothing left to read, a grab
  *started* in ``'standby'`` takes a single frame with the current settings
  (``_snap_real()``) if the camera can; otherwise -- and for a grab that was
  waiting when the recording stopped -- it raises
  :class:`~concert.exceptions.StateError`.
* :meth:`Camera.stream` has two forms, told apart by the argument:
  ``stream()`` / ``stream(timeout)`` (``None``, seconds or a time quantity)
  returns an iterator over the frames, read one after the other while
  recording, ending after the last recorded frame when recording stops;
  ``stream(consumer)``, with a push-style consumer (a primed generator, see
  :mod:`concert.coroutines.base`), returns a future that sends every frame
  into the consumer, in a pool thread, until recording stops and the frames
  recorded before have been sent. Cancelling that future stops the sending
  (the recording goes on); one consumer at a time.
* :attr:`Camera.convert` (the identity by default) is applied to every frame
  :meth:`Camera.grab`, :meth:`Camera.grab_async`, :meth:`Camera.stream` and
  :meth:`BufferedCamera.readout_buffer` return.
* Each frame is read once: the grabs, the iterators and a ``stream(consumer)``
  running at the same time share the frames, each frame going to exactly one
  of them.
* Reading a frame is a device operation: it waits while another owner holds
  the camera exclusively (``with camera:``, see :mod:`concert.locking`), so
  nobody else takes the frames meant for that owner. A grab that waits for a
  frame does not keep the camera: it looks for one in slices of 50 ms, each
  a device call of its own, and an owner asking for ``with camera:``
  meanwhile gets in when the current slice ends (owners get in the order
  they asked); the grab's next slice waits until their blocks have ended.
* :class:`BufferedCamera` is a camera that records into a buffer of its own,
  read out after the recording with :meth:`BufferedCamera.readout_buffer`.

Implementations provide the hardware side:

* ``_record_real()``: start recording with the current settings (they stay
  fixed until the recording stops); return once it records;
* ``_stop_real()``: stop recording; return once stopped; harmless when not
  recording. ``stop_recording()`` and ``reset()`` call it, and so do
  :meth:`~concert.devices.base.Device.abort` and ``emergency_stop()``, from
  any thread while other calls run, so it must not wait for any lock or
  device call, and may be called several times for one stop. Frames recorded
  before stay readable;
* ``_trigger_real()``: take one frame now (only called while recording in
  SOFTWARE mode); raise :class:`~concert.exceptions.StateError` if the
  hardware took none;
* ``_grab_real(timeout)``: return the oldest recorded frame not read yet (an
  :class:`~concert.imaging.ImageWithMetadata`), waiting at most ``timeout``
  seconds (a float, possibly 0) for one, or ``None`` if there is none by
  then. Called from any number of threads at once; each frame must be
  returned once;
* optionally ``_snap_real()``: take and return one frame (an
  :class:`~concert.imaging.ImageWithMetadata`) with the current settings
  while not recording; a grab in ``'standby'`` calls it once every recorded
  frame has been read. Not implemented, a grab there raises
  :class:`~concert.exceptions.StateError`;
* for a :class:`BufferedCamera`, ``_readout_real(*args, **kwargs)``: return an
  iterator over the frames in the camera's buffer, oldest first (called in
  ``'standby'``, with the arguments given to ``readout_buffer``); each
  ``next()`` on it runs as one device call;
* the accessors ``_get_<name>``/``_set_<name>`` of the parameters (values in
  the units above, converted and checked already).

``start_recording()``, ``stop_recording()``, ``trigger()`` and ``reset()``
run one at a time, in the camera's slot, after the state check; an
exception in ``start_recording()``, ``stop_recording()`` or ``reset()``
puts the camera into ``'error'``. A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from contextlib import contextmanager
from enum import Enum
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from concert.coroutines.base import is_coroutine
from concert.devices.base import Device
from concert.exceptions import (
    AccessorNotImplementedError,
    LimitError,
    StateError,
    UnitError,
    WaitError,
)
from concert.exceptions import CameraError as CameraError  # re-exported: where the legacy API has it
from concert.futures import Future, async_, check_cancelled
from concert.imaging import ImageWithMetadata
from concert.naming import describe_value
from concert.operations import device_call
from concert.parameters import Parameter, Quantity
from concert.quantities import q
from concert.states import State, check, transition
from concert.timeouts import optional_seconds

__all__ = ["BufferedCamera", "Camera", "TriggerSource", "identity", "standby_only"]

#: Seconds between two looks at the state (and at cancellation) while a grab waits for a frame.
_POLL_INTERVAL = 0.05


def identity(frame: Any) -> Any:
    """Return ``frame`` unchanged: the default :attr:`Camera.convert`."""
    return frame


class TriggerSource(str, Enum):
    """What starts the exposure of a frame. Members compare equal to their names."""

    AUTO = "AUTO"  #: the camera records at ``frame_rate`` on its own
    SOFTWARE = "SOFTWARE"  #: one frame per call of :meth:`Camera.trigger`
    EXTERNAL = "EXTERNAL"  #: one frame per pulse on the hardware trigger input


def standby_only(convert: Optional[Callable[[Any, Any], Any]] = None) -> Callable:
    """Return a Parameter ``check`` allowing writes only in ``'standby'``.

    ``convert(camera, value)``, if given, runs first and returns the value to
    write or raises to refuse it. Both run before the setter, so a refused
    write never reaches the hardware.

    :raises StateError: when the camera is not in standby (naming the
        camera, the parameter's setter, the value and the state).
    """
    in_standby = check(source="standby", target="standby")

    def decorate(write: Callable) -> Callable:
        checked = in_standby(write)
        if convert is None:
            return checked

        @functools.wraps(write)
        def converted(camera: Any, value: Any) -> Any:
            return checked(camera, convert(camera, value))

        return converted

    return decorate


def _trigger_source(camera: Any, value: Any) -> TriggerSource:
    try:
        return TriggerSource(value)
    except (ValueError, TypeError):
        choices = ", ".join(source.name for source in TriggerSource)
        raise LimitError(
            f"{camera!r}['trigger_source']: {describe_value(value)} is not a trigger source "
            f"(use a member of camera.trigger_sources: {choices})"
        ) from None


def _whole_pixels(name: str) -> Callable[[Any, Any], Any]:
    def convert(camera: Any, value: Any) -> Any:
        magnitude = float(value.magnitude)
        if not magnitude.is_integer():
            raise LimitError(f"{camera!r}[{name!r}]: {describe_value(value)} is not a whole number of pixels")
        return q.Quantity(int(magnitude), q.pixel)

    return convert


def _no_pixels(camera: Any) -> Any:
    return 0 * q.pixel


def _one_pixel(camera: Any) -> Any:
    return 1 * q.pixel


def _room_for(extent: str, taken: str) -> Callable[[Any], Any]:
    """An external upper limit: the sensor's ``extent`` minus the current ``taken``."""

    def upper(camera: Any) -> Any:
        return camera[extent].read() - camera[taken].read()

    return upper


def _roi_quantity(name: str, lower: Callable, upper: Callable, help: str) -> Quantity:
    return Quantity(
        q.pixel,
        check=standby_only(_whole_pixels(name)),
        external_lower_getter=lower,
        external_upper_getter=upper,
        help=help,
    )


class Camera(Device):
    """A camera (see the module documentation)."""

    #: The trigger sources, e.g. ``camera.trigger_source = camera.trigger_sources.SOFTWARE``.
    trigger_sources = TriggerSource

    state = State(default="standby", help="standby, recording or error", after_abort={"recording": "standby"})
    exposure_time = Quantity(q.s, check=standby_only(), help="Exposure time of each frame")
    frame_rate = Quantity(1 / q.s, check=standby_only(), help="Frames per second in AUTO trigger mode")
    trigger_source = Parameter(
        check=standby_only(_trigger_source), help="What starts a frame: AUTO, SOFTWARE or EXTERNAL"
    )
    roi_x0 = _roi_quantity(
        "roi_x0", _no_pixels, _room_for("sensor_width", "roi_width"), "First column of the region of interest"
    )
    roi_y0 = _roi_quantity(
        "roi_y0", _no_pixels, _room_for("sensor_height", "roi_height"), "First row of the region of interest"
    )
    roi_width = _roi_quantity(
        "roi_width", _one_pixel, _room_for("sensor_width", "roi_x0"), "Columns in the region of interest"
    )
    roi_height = _roi_quantity(
        "roi_height", _one_pixel, _room_for("sensor_height", "roi_y0"), "Rows in the region of interest"
    )
    sensor_width = Quantity(q.pixel, help="Columns of the sensor")
    sensor_height = Quantity(q.pixel, help="Rows of the sensor")
    sensor_pixel_width = Quantity(q.micrometer, help="Width of one sensor pixel")
    sensor_pixel_height = Quantity(q.micrometer, help="Height of one sensor pixel")

    # -- recording ----------------------------------------------------------------------

    @async_
    @check(source="standby", target="recording")
    @transition(target="recording")
    def start_recording(self) -> None:
        """Start recording frames (standby → recording).

        Frames of an earlier recording that were never read may be discarded.
        """
        self._record_real()

    @async_
    @check(source="recording", target="standby")
    @transition(target="standby")
    def stop_recording(self) -> None:
        """Stop recording (recording → standby); recorded frames can still be read."""
        self._stop_real()

    @contextmanager
    def recording(self) -> Iterator[Camera]:
        """Record for the duration of a ``with`` block; stop at its end, also on an exception.

        Blocks until recording has started; yields the camera. If something
        else stopped the recording meanwhile, the end of the block does nothing.
        """
        self.start_recording().join()
        try:
            yield self
        finally:
            if self["state"].read() == "recording":
                self.stop_recording().join()

    @async_
    @check(source="recording", target="recording")
    def trigger(self) -> None:
        """Take one frame now (only while recording with trigger source SOFTWARE).

        :raises StateError: when not recording, or with another trigger source.
        """
        source = self["trigger_source"].read()
        if source != TriggerSource.SOFTWARE:
            shown = getattr(source, "name", source)
            raise StateError(
                "recording", f"{self!r}: trigger() needs trigger_source SOFTWARE, but it is {shown}"
            )
        self._trigger_real()

    @async_
    @check(source="error", target="standby")
    @transition(target="standby")
    def reset(self) -> None:
        """Leave the ``'error'`` state: stop the hardware if it still records, then standby."""
        self._stop_real()

    def _abort(self) -> None:
        # Stop at once, without waiting for anybody's exclusive access: abort() may come
        # from any thread at any time, also while another owner holds the camera. The
        # state goes from recording to standby as declared.
        self._stop_real()

    # -- frames ---------------------------------------------------------------------------

    #: What :attr:`convert` is until set (the class's, so every camera starts with the identity).
    _convert: Callable[[Any], Any] = staticmethod(identity)
    #: The consumer a ``stream(consumer)`` is sending frames to now, with its token; guarded by _streaming.
    _pushing: Optional[tuple] = None
    _streaming = threading.Lock()  # one for all cameras: taken only to claim or release a stream

    @property
    def convert(self) -> Callable[[Any], Any]:
        """A callable applied to every frame read, e.g. ``camera.convert = np.fliplr`` (at first: identity).

        It is called with each frame (an :class:`~concert.imaging.ImageWithMetadata`)
        that :meth:`grab`, :meth:`grab_async`, :meth:`stream` (both forms)
        and :meth:`BufferedCamera.readout_buffer` return, in the thread that
        reads the frame and without holding the camera, and what it returns
        is returned instead. A plain numpy array it returns gets the frame's
        metadata (an :class:`~concert.imaging.ImageWithMetadata`); anything
        else is returned as it is. An exception it raises reaches the
        reader, and that frame counts as read. Assigning ``None`` restores
        the identity; it can be assigned at any time.

        :raises CameraError: on assigning something that is not callable.
        """
        return self._convert

    @convert.setter
    def convert(self, func: Optional[Callable[[Any], Any]]) -> None:
        if func is None:
            func = identity
        if not callable(func):
            raise CameraError(
                f"{self!r}.convert must be a callable applied to every frame "
                f"(e.g. numpy.fliplr) or None, not {describe_value(func)}"
            )
        self._convert = func

    def _converted(self, frame: ImageWithMetadata) -> Any:
        convert = self._convert
        if convert is identity:
            return frame
        result = convert(frame)
        if isinstance(result, np.ndarray) and not isinstance(result, ImageWithMetadata):
            result = ImageWithMetadata(result, dict(frame.metadata))
        return result

    def grab(self, timeout: Any = None) -> ImageWithMetadata:
        """Return the oldest recorded frame that nobody has read yet, blocking until there is one.

        The legacy API's blocking grab: ``grab_async(timeout).result()``, so
        it waits, fails and reacts to Ctrl-C exactly as :meth:`grab_async`
        describes (Ctrl-C stops the wait and takes no frame).
        """
        return self.grab_async(timeout).result()

    @async_
    def grab_async(self, timeout: Any = None) -> ImageWithMetadata:
        """Return a future of the oldest recorded frame that nobody has read yet.

        Waits for the frame if it has not been recorded yet (in AUTO mode
        until its time comes, in SOFTWARE or EXTERNAL mode until a trigger),
        at most ``timeout`` (seconds or a time quantity; ``None``: as long as
        the camera records). Cancelling the future (or Ctrl-C while waiting
        for it) stops the wait within 50 ms and takes no frame; a frame that
        was being handed over at that very moment is returned (the future
        then ends finished, not cancelled): no frame is ever dropped.

        Started in ``'standby'`` with every recorded frame read, it takes one
        frame with the current settings if the camera can (``_snap_real()``;
        the simulated camera does). The frame is passed through
        :attr:`convert`.

        :raises WaitError: no frame within ``timeout``; no frame was taken.
        :raises UnitError: ``timeout`` is not a duration.
        :raises StateError: the camera is not recording (or stopped while
            waiting), every frame it recorded has been read and it cannot
            take one outside a recording, or it is in ``'error'``.
        """
        frame = self._next_frame("grab()", timeout, snap=True)
        if frame is None:
            state = self["state"].read()
            raise StateError(
                state,
                f"{self!r}: grab() found no frame to read in state {state!r}: the camera is not "
                "recording and every frame it recorded has been read (start_recording() first)",
            )
        return self._converted(frame)

    def stream(self, consumer: Any = None, timeout: Any = None) -> Union[Iterator[Any], Future]:
        """Read the frames as the camera records them: an iterator, or pushed into ``consumer``.

        The first argument decides the form:

        * ``stream()``, ``stream(timeout)``, ``stream(timeout=timeout)``
          (``None``, seconds or a time quantity): return an iterator over
          the frames. Not a future: the
          frames are read in the thread that iterates. It yields every frame
          from the oldest unread one on, waiting for each as :meth:`grab`
          does (at most ``timeout`` per frame); it ends when recording stops
          and the frames recorded before have been yielded.
        * ``stream(consumer)``, ``consumer`` a push-style consumer (a primed
          generator, see :func:`concert.coroutines.base.coroutine`, or an
          object with a ``send`` method): return a
          :class:`~concert.futures.Future` that sends every frame into
          ``consumer.send()``, in a pool thread, from the oldest unread one
          on, until recording stops and the frames recorded before have been
          sent, or the consumer finishes (its generator returns). The future's
          result is the number of frames sent; ``timeout`` (default: none)
          bounds the wait for each frame, else the future fails with
          :class:`~concert.exceptions.WaitError`. Cancelling it stops the
          sending within 50 ms (a frame being handed over is still sent); the
          recording is left as it is, and so is every frame not sent. An
          exception of the consumer ends the future with it (the frame it was
          sent counts as read). Under :data:`~concert.config.DISABLE_ASYNC`
          it runs in the calling thread and returns once it is over, so
          something must stop the recording: the consumer itself, another
          thread or a finished consumer. One such stream at a time per camera.

        Frames go through :attr:`convert` in both forms.

        :raises StateError: here, when the camera is not recording.
        :raises CameraError: here, for ``stream(consumer)`` while another
            ``stream(consumer)`` of this camera runs, for a generator
            that was never started (not primed) or has finished, or for a
            timeout given twice (``stream(1, timeout=2)``).
        :raises UnitError: here, when ``timeout`` is not a duration.
        :raises WaitError: from the iterator, when a frame takes longer than ``timeout``.
        """
        if _is_consumer(consumer):
            self._seconds("stream(consumer)", timeout)
            return self._start_pushing(consumer, timeout)
        if inspect.isgenerator(consumer):
            raise CameraError(
                f"{self!r}: stream(consumer): the consumer {_consumer_name(consumer)} is a generator "
                "that was never started; decorate its function with @coroutine "
                "(concert.coroutines.base) so that it is primed"
            )
        if consumer is not None and timeout is not None:
            raise CameraError(
                f"{self!r}: stream({describe_value(consumer)}, timeout={describe_value(timeout)}): "
                "the timeout is given twice"
            )
        timeout = consumer if consumer is not None else timeout
        self._seconds("stream()", timeout)  # a bad timeout fails here, not at the first frame
        self._require_recording("stream()")
        return self._stream(timeout)

    def _require_recording(self, what: str) -> None:
        state = self["state"].read()
        if state != "recording":
            raise StateError(
                state, f"{self!r}: {what} is not allowed in state {state!r} (only in 'recording')"
            )

    def _start_pushing(self, consumer: Any, timeout: Any) -> Future:
        if inspect.isgenerator(consumer) and inspect.getgeneratorstate(consumer) == inspect.GEN_CLOSED:
            raise CameraError(
                f"{self!r}: stream(consumer): the consumer {_consumer_name(consumer)} has finished "
                "and takes no more frames"
            )
        token = object()
        with Camera._streaming:
            self._require_recording("stream(consumer)")
            if self._pushing is not None:
                raise CameraError(
                    f"{self!r}: stream(consumer) refused: the camera is already streaming into "
                    f"{_consumer_name(self._pushing[1])} (cancel that stream's future, or stop "
                    "recording, first)"
                )
            self._pushing = (token, consumer)
        try:
            future = self._push(consumer) if timeout is None else self._push(consumer, timeout)
        except BaseException:
            self._stop_pushing(token)
            raise
        future.add_done_callback(lambda _future: self._stop_pushing(token))
        return future

    def _stop_pushing(self, token: object) -> None:
        with Camera._streaming:
            if self._pushing is not None and self._pushing[0] is token:
                self._pushing = None

    def _push_frames(self, consumer: Any, timeout: Any = None) -> int:
        sent = 0
        while True:
            if inspect.isgenerator(consumer) and inspect.getgeneratorstate(consumer) == inspect.GEN_CLOSED:
                return sent  # closed from elsewhere: no frame is taken for it
            frame = self._next_frame("stream(consumer)", timeout)
            if frame is None:
                return sent
            try:
                consumer.send(self._converted(frame))
            except StopIteration:  # the consumer took the frame and finished
                return sent + 1
            sent += 1

    _push_frames.__name__ = "stream"
    _push_frames.__qualname__ = "Camera.stream"  # the future is named Camera#1.stream(<consumer>)
    _push = async_(_push_frames)

    def _seconds(self, what: str, timeout: Any) -> Optional[float]:
        try:
            return optional_seconds(timeout, "timeout")
        except UnitError as error:
            raise UnitError(f"{self!r}: {what}: {error}") from None

    def _stream(self, timeout: Any) -> Iterator[Any]:
        while True:
            frame = self._next_frame("stream()", timeout)
            if frame is None:
                return
            yield self._converted(frame)

    def _next_frame(self, what: str, timeout: Any, snap: bool = False) -> Optional[ImageWithMetadata]:
        """Return the next frame, or ``None`` when none can come (not recording, nothing buffered).

        Polls the hardware in slices of _POLL_INTERVAL, each one device call
        on the camera, so that a stop and a cancel request
        (:func:`~concert.futures.check_cancelled`) are noticed while waiting
        and the camera is free between the slices: an owner waiting for
        ``with camera:`` gets in when the current slice ends (behind the
        owners that asked before it, see :mod:`concert.locking`), and the
        next slice waits until those blocks have ended. The state is read
        *before* each poll: a poll that follows a non-recording state has
        seen every frame there will be. With ``snap``, a call that finds the
        camera in standby at its first look takes a single frame
        (``_snap_real()``) once nothing recorded is left. The frame is not
        converted.
        """
        seconds = self._seconds(what, timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        state = self["state"]
        first = True
        while True:
            check_cancelled()
            current = state.read()
            if current not in ("standby", "recording"):
                raise StateError(
                    current, f"{self!r}: {what} is not allowed in state {current!r} (reset() first)"
                )
            wait = _POLL_INTERVAL if current == "recording" else 0.0
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            with device_call(self, f"{self!r}.{what}"):
                frame = self._grab_real(wait)
                if frame is None and snap and first and current == "standby":
                    try:
                        frame = self._snap_real()
                    except AccessorNotImplementedError:
                        frame = None
            if frame is not None:
                return frame
            if current != "recording":
                return None
            first = False
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitError(f"{self!r}: {what} got no frame within {seconds:g} s")

    # -- what implementations provide ------------------------------------------------------

    def _record_real(self) -> None:
        """Start recording with the current settings; return once recording."""
        raise AccessorNotImplementedError(f"{self!r} cannot start recording")

    def _stop_real(self) -> None:
        """Stop recording, return once stopped; harmless when not recording; never waits for locks."""
        raise AccessorNotImplementedError(f"{self!r} cannot stop recording")

    def _trigger_real(self) -> None:
        """Take one frame now (recording, SOFTWARE mode); raise ``StateError`` if none was taken."""
        raise AccessorNotImplementedError(f"{self!r} cannot be triggered")

    def _grab_real(self, timeout: float) -> Optional[ImageWithMetadata]:
        """Return the oldest unread frame, waiting at most ``timeout`` s; ``None`` if none by then."""
        raise AccessorNotImplementedError(f"{self!r} cannot read frames")

    def _snap_real(self) -> ImageWithMetadata:
        """Take one frame with the current settings while not recording (optional)."""
        raise AccessorNotImplementedError(f"{self!r} cannot take a frame outside a recording")


def _consumer_name(consumer: Any) -> str:
    """``sink()`` for a generator of the function ``sink``, else the value as messages show it."""
    if inspect.isgenerator(consumer):
        return f"{consumer.__name__}()"
    return describe_value(consumer)


def _is_consumer(value: Any) -> bool:
    """Whether ``value`` is a push-style consumer: a primed generator, or an object with ``send``."""
    if is_coroutine(value):
        return True
    if inspect.isgenerator(value) or value is None or isinstance(value, (int, float, q.Quantity)):
        return False
    return callable(getattr(value, "send", None))


class BufferedCamera(Camera):
    """A camera that records into a buffer of its own, read out after the recording.

    Record as with every camera (``start_recording()`` ... ``stop_recording()``,
    or ``with camera.recording():``), then iterate over
    :meth:`readout_buffer`. Implementations provide ``_readout_real``
    besides the hooks of :class:`Camera`.
    """

    def readout_buffer(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Return an iterator over the frames in the camera's buffer, oldest first.

        Allowed in ``'standby'`` only, i.e. after the recording. ``args`` and
        ``kwargs`` go to the implementation's ``_readout_real`` (the
        simulated camera takes none). Each frame is read as one device call
        (it waits for other owners' ``with camera:`` blocks), goes through
        :attr:`convert`, and is read once: a frame read out is gone from the
        buffer, for :meth:`grab` too, and a frame grabbed is not read out
        again. Iterating inside a cancelled operation raises
        ``CancelledError`` between two frames.

        :raises StateError: here, when the camera is not in ``'standby'``.
        """
        state = self["state"].read()
        if state != "standby":
            raise StateError(
                state,
                f"{self!r}: readout_buffer() is not allowed in state {state!r} "
                "(only in 'standby': stop_recording() first)",
            )
        return self._read_out(args, kwargs)

    def _read_out(self, args: tuple, kwargs: dict) -> Iterator[Any]:
        what = f"{self!r}.readout_buffer()"
        with device_call(self, what):
            frames = iter(self._readout_real(*args, **kwargs))
        while True:
            check_cancelled()
            with device_call(self, what):
                frame = next(frames, None)
            if frame is None:
                return
            yield self._converted(frame)

    def _readout_real(self, *args: Any, **kwargs: Any) -> Iterator[ImageWithMetadata]:
        """Return an iterator over the frames in the buffer, oldest first (called in standby)."""
        raise AccessorNotImplementedError(f"{self!r} cannot read out its buffer")
