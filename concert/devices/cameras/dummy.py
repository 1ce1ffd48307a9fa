"""Simulated cameras that record in real time and never skip a frame.

Three classes:

* :class:`Base` -- a software camera to subclass: it keeps the settings,
  records in real time, buffers, numbers and timestamps the frames and
  adds their metadata; a subclass says what a frame shows by implementing
  ``_expose_real(number)``. (A subclass written for the legacy API that
  implements ``_grab_real(self)`` -- no timeout argument -- instead gets that
  method called for the content of each frame.)
* :class:`Camera` -- ``Base`` showing a built-in test pattern, or a
  ``background`` image of your own, with or without noise, or -- wired to
  a shutter, motors and a sample by its keyword arguments -- the simulated
  beamline of :mod:`concert.devices.cameras.simulation`: a
  :class:`~concert.devices.cameras.simulation.Needle` or
  :class:`~concert.devices.cameras.simulation.Sphere` (both importable from
  here too) on a rotation stage, in a beam.
* :class:`BufferedCamera` -- ``Camera`` as a
  :class:`~concert.devices.cameras.base.BufferedCamera`, read out after
  the recording with ``readout_buffer()``.

``Camera()`` needs no arguments: a 640 x 480 sensor of 6.5 µm pixels giving
``uint16`` frames, recording at 100 frames per second with 1 ms exposures,
trigger source AUTO, the region of interest covering the whole sensor.

Timing model (``n`` counts the frames of one recording from 0):

* AUTO: frame ``n`` is complete ``(n + 1) / frame_rate`` after
  ``start_recording()``; :meth:`~concert.devices.cameras.base.Camera.grab`
  waits until then, so frames come at the frame rate in real time.
* SOFTWARE: every ``trigger()`` records one frame at once.
* EXTERNAL: every :meth:`Base.simulate_external_trigger` (standing in for a
  pulse on the trigger input) records one frame at once.

The camera buffers frames like the ring buffer of a real camera, except
that it never fills (frames are computed when read, so the buffer costs no
memory): a slow reader is never skipped ahead; it gets every frame, numbered
consecutively, with the timestamp of when the frame was complete (so in AUTO
mode consecutive timestamps are exactly 1 / frame_rate apart, however late
they are read). Frames recorded before ``stop_recording()`` stay readable;
``start_recording()`` discards the unread frames of the previous recording.

Outside a recording, as the legacy simulated camera did, a grab takes a
single frame -- but only once every frame recorded before has been read, so
none is ever dropped: after ``stop_recording()``, ``grab()`` first returns
the recorded frames not read yet, oldest first, and only then single frames.
A single frame is taken at once with the current settings (the simulation
does not wait for the exposure); its metadata ``'frame'`` counts the single
frames of the camera's life from 0 (independently of the recordings), and its
``'trigger_source'`` is ``'SOFTWARE'``: the grab triggered it. Iterators
(``stream()``) and ``stream(consumer)`` never take single frames: they end.

What a :class:`Camera` frame shows (for the simulated beamline, see
:mod:`concert.devices.cameras.simulation`: its frames are ``uint16`` too,
with more metadata, and its devices are read at the trigger of a
``SOFTWARE`` or ``EXTERNAL`` frame, when an ``AUTO`` or single frame is read):

* without ``background``: a dark level of 100 counts plus a smooth pattern
  whose brightness grows with the exposure time (saturating at 65535) and
  which drifts by two columns per frame, so consecutive frames differ; no
  noise, so frames are reproducible. With ``simulate=False`` every frame is
  the pattern of frame 0 (it does not drift);
* with ``background`` (a 2-D array of real numbers, whose shape sets the
  sensor size: ``(rows, columns)`` = ``(sensor_height, sensor_width)``):
  the background, with ``simulate=True`` (the default) plus noise -- each
  pixel drawn from a normal distribution around its value with standard
  deviation ``sqrt(max(abs(value), 1))``, like photon shot noise, rounded and clipped to
  the range of an integer dtype -- and with ``simulate=False`` the
  background itself, unchanged. Frames have the background's dtype; the
  exposure time changes only the metadata.

A frame of a region of interest is the same region cut from the full
frame. Metadata: ``'frame'`` (int), ``'timestamp'`` (seconds since the epoch,
float), ``'exposure_time'`` (seconds, float), ``'roi'`` (x0, y0, width,
height in pixels, ints) and ``'trigger_source'`` (its name).

The simulation does not couple exposure time and frame rate: any exposure
time is allowed at any frame rate.
"""

from __future__ import annotations

import collections
import inspect
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Iterator, Optional, Tuple

import numpy as np

from concert.devices.cameras import base
from concert.devices.cameras.base import CameraError, TriggerSource
from concert.devices.cameras.simulation import Beam as Beam  # re-exported: SPEC §15 names them here
from concert.devices.cameras.simulation import Needle as Needle
from concert.devices.cameras.simulation import Simulation
from concert.devices.cameras.simulation import Sphere as Sphere
from concert.exceptions import AccessorNotImplementedError, HardLimitError, LimitError, StateError, UnitError
from concert.imaging import ImageWithMetadata
from concert.naming import describe_value
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["Base", "BufferedCamera", "Camera"]

#: The keyword arguments of the simulated beamline: Simulation's, which Camera passes on by name.
_BEAMLINE = tuple(
    name
    for name, parameter in inspect.signature(Simulation).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)

_ROI = ("roi_x0", "roi_y0", "roi_width", "roi_height")
_DARK = 100.0  # counts
_SIGNAL = 200.0  # mean counts per millisecond of exposure
_SATURATION = np.iinfo(np.uint16).max


def _limit(value: Any) -> Any:
    return lambda camera: value


@dataclass(frozen=True)
class _Setup:
    """What one recording (or one single frame) was started with; settings cannot change while recording."""

    mode: TriggerSource
    period: float  # seconds between AUTO frames
    exposure: float  # seconds
    roi: Tuple[int, int, int, int]  # x0, y0, width, height
    started: float  # time.monotonic() at the start
    started_wall: float  # time.time() at the start
    serial: int  # counts the setups of the camera's life from 0: with the frame number, names a frame


def _takes_timeout(func: Callable) -> bool:
    """Whether ``func(self, timeout)`` is a valid call (the current ``_grab_real`` hook)."""
    try:
        inspect.signature(func).bind(None, 0.0)
    except TypeError:
        return False
    except ValueError:  # no signature to inspect: assume the current hook
        return True
    return True


class Base(base.Camera):
    """A software camera to subclass; frames show what ``_expose_real(number)`` returns.

    ``sensor_width`` and ``sensor_height`` are whole numbers of pixels
    (quantities in ``q.pixel``, at least 1). Settings, timing, buffering and
    metadata are as the module documentation describes. A subclass
    implements:

    * ``_expose_real(number)``: return the image of frame ``number`` (a 2-D
      array, normally ``roi_height`` x ``roi_width``; it is neither cropped
      nor checked) for the current settings, which stay fixed while
      recording. Called outside any lock, possibly from several threads at
      once. The base class wraps it into an
      :class:`~concert.imaging.ImageWithMetadata` with the metadata.

    A subclass written for the legacy API that defines ``_grab_real(self)``
    (no timeout) gets that called for the content instead.

    Hardware limits, refused with :class:`~concert.exceptions.HardLimitError`
    before anything changes: exposure time 1 µs to 1000 s, frame rate
    0.001 to 10000 frames per second, and the region of interest on the sensor.
    """

    exposure_time = Quantity(
        q.s,
        check=base.standby_only(),
        external_lower_getter=_limit(1 * q.us),
        external_upper_getter=_limit(1000 * q.s),
        help="Exposure time of each frame",
    )
    frame_rate = Quantity(
        1 / q.s,
        check=base.standby_only(),
        external_lower_getter=_limit(0.001 / q.s),
        external_upper_getter=_limit(10000 / q.s),
        help="Frames per second in AUTO trigger mode",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        legacy = cls.__dict__.get("_grab_real")
        if legacy is not None and not _takes_timeout(legacy):
            # The legacy hook: the content of the next frame. Timing stays the base's.
            def _expose_real(self: Any, number: int, _legacy: Callable = legacy) -> Any:
                return _legacy(self)

            cls._expose_real = _expose_real
            del cls._grab_real

    def __init__(self, sensor_width: Any = 640 * q.pixel, sensor_height: Any = 480 * q.pixel) -> None:
        self._sensor = (  # fixed for the camera's life: read without a lock
            _pixel_count(type(self).__name__, "sensor_width", sensor_width),
            _pixel_count(type(self).__name__, "sensor_height", sensor_height),
        )
        # _cond guards every field below (getters read a single field without it: one
        # attribute read is atomic). It is notified whenever a frame may have become
        # readable or will never come (trigger, start, stop). Never held while rendering.
        self._cond = threading.Condition()
        self._roi: Tuple[int, int, int, int] = (0, 0, *self._sensor)
        self._exposure_time = 1 * q.ms
        self._frame_rate = 100 / q.s
        self._trigger_source = TriggerSource.AUTO
        self._setup: Optional[_Setup] = None  # of the last recording; None before the first
        self._recording = False
        self._stopped_at: Optional[float] = None  # time.monotonic() of the last stop
        self._next = 0  # number of the next frame of the recording to hand out
        self._singles = 0  # number of the next single frame (taken outside a recording)
        self._serial = 0  # setups made so far (see _Setup.serial)
        # (timestamp, scene at the trigger) of the triggered frames not read yet; see _scene()
        self._triggered: Deque[Tuple[float, Any]] = collections.deque()
        super().__init__()

    # -- settings (written in standby only, so a recording sees them fixed) ----------------

    def _get_exposure_time(self) -> Any:
        return self._exposure_time

    def _set_exposure_time(self, value: Any) -> None:
        with self._cond:
            self._exposure_time = value

    def _get_frame_rate(self) -> Any:
        return self._frame_rate

    def _set_frame_rate(self, value: Any) -> None:
        with self._cond:
            self._frame_rate = value

    def _get_trigger_source(self) -> TriggerSource:
        return self._trigger_source

    def _set_trigger_source(self, value: TriggerSource) -> None:
        with self._cond:
            self._trigger_source = value

    def _get_sensor_width(self) -> Any:
        return q.Quantity(self._sensor[0], q.pixel)

    def _get_sensor_height(self) -> Any:
        return q.Quantity(self._sensor[1], q.pixel)

    def _get_sensor_pixel_width(self) -> Any:
        return 6.5 * q.micrometer

    def _get_sensor_pixel_height(self) -> Any:
        return 6.5 * q.micrometer

    def _roi_value(self, name: str) -> Any:
        return q.Quantity(self._roi[_ROI.index(name)], q.pixel)

    def _write_roi(self, name: str, value: Any) -> None:
        # The parameters' limits were checked against the other ROI values as they were then;
        # check again under the lock, so that concurrent writes cannot leave the sensor together.
        with self._cond:
            roi = list(self._roi)
            roi[_ROI.index(name)] = int(value.magnitude)
            x0, y0, width, height = roi
            if x0 + width > self._sensor[0] or y0 + height > self._sensor[1]:
                raise HardLimitError(
                    f"{self!r}[{name!r}]: {describe_value(value)} would put the region of interest "
                    f"{tuple(roi)} beyond the {self._sensor[0]} x {self._sensor[1]} sensor"
                )
            self._roi = (x0, y0, width, height)

    def _get_roi_x0(self) -> Any:
        return self._roi_value("roi_x0")

    def _set_roi_x0(self, value: Any) -> None:
        self._write_roi("roi_x0", value)

    def _get_roi_y0(self) -> Any:
        return self._roi_value("roi_y0")

    def _set_roi_y0(self, value: Any) -> None:
        self._write_roi("roi_y0", value)

    def _get_roi_width(self) -> Any:
        return self._roi_value("roi_width")

    def _set_roi_width(self, value: Any) -> None:
        self._write_roi("roi_width", value)

    def _get_roi_height(self) -> Any:
        return self._roi_value("roi_height")

    def _set_roi_height(self, value: Any) -> None:
        self._write_roi("roi_height", value)

    # -- recording ------------------------------------------------------------------------

    def _current_setup(self, mode: TriggerSource) -> _Setup:
        """The settings now, as a setup (caller holds _cond)."""
        self._serial += 1
        return _Setup(
            mode=mode,
            period=1 / self._frame_rate.to(1 / q.s).magnitude,
            exposure=self._exposure_time.to(q.s).magnitude,
            roi=self._roi,
            started=time.monotonic(),
            started_wall=time.time(),
            serial=self._serial - 1,
        )

    def _record_real(self) -> None:
        with self._cond:
            self._setup = self._current_setup(self._trigger_source)
            self._recording = True
            self._stopped_at = None
            self._next = 0
            self._triggered.clear()
            self._cond.notify_all()

    def _stop_real(self) -> None:
        with self._cond:
            if self._recording:
                self._recording = False
                self._stopped_at = time.monotonic()
                self._cond.notify_all()

    def _record_triggered(self, mode: TriggerSource) -> bool:
        scene = self._scene()  # what the frame shows is read at the trigger, outside the lock
        with self._cond:
            if not self._recording or self._setup.mode is not mode:
                return False
            self._triggered.append((time.time(), scene))
            self._cond.notify_all()
            return True

    def _trigger_real(self) -> None:
        if not self._record_triggered(TriggerSource.SOFTWARE):
            raise StateError(
                "standby", f"{self!r}: trigger() came after recording stopped; no frame was taken"
            )

    def simulate_external_trigger(self) -> bool:
        """Play a pulse on the trigger input, as the hardware that triggers the camera would.

        Records one frame when the camera records with trigger source
        EXTERNAL and returns ``True``; otherwise the camera ignores the pulse,
        as a real one does, and ``False`` is returned. Callable from any thread.
        """
        return self._record_triggered(TriggerSource.EXTERNAL)

    # -- frames -----------------------------------------------------------------------------

    def _grab_real(self, timeout: float) -> Optional[ImageWithMetadata]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                taken, wait = self._take(now)
                if taken is not None:
                    break
                remaining = deadline - now
                if wait is None or remaining <= 0:
                    return None
                self._cond.wait(min(wait, remaining))
            setup = self._setup
        number, timestamp, scene = taken
        return self._render(setup, number, timestamp, scene)

    def _snap_real(self) -> ImageWithMetadata:
        with self._cond:
            setup = self._current_setup(TriggerSource.SOFTWARE)
            number = self._singles
            self._singles += 1
        return self._render(setup, number, setup.started_wall)

    def _take(self, now: float) -> Tuple[Optional[Tuple[int, float, Any]], Optional[float]]:
        """Hand out the next frame: ((number, timestamp, scene), 0) if readable now, else (None,
        seconds until one may be, or None if none will come). Caller holds _cond. The scene is
        the one read at the trigger (``None`` for AUTO frames: read when rendered)."""
        setup = self._setup
        if setup is None:
            return None, None
        if setup.mode is TriggerSource.AUTO:
            complete = setup.started + (self._next + 1) * setup.period
            if self._stopped_at is not None and complete > self._stopped_at:
                return None, None
            if now < complete:
                return None, complete - now
            timestamp, scene = setup.started_wall + (self._next + 1) * setup.period, None
        elif self._triggered:
            timestamp, scene = self._triggered.popleft()
        else:
            return None, (math.inf if self._recording else None)
        self._next += 1
        return (self._next - 1, timestamp, scene), 0.0

    def _render(self, setup: _Setup, number: int, timestamp: float, scene: Any = None) -> ImageWithMetadata:
        if scene is None:
            scene = self._scene()
        try:
            image, extra = self._content(setup, number, scene)
        except AccessorNotImplementedError as error:  # a programming error, not "cannot take a frame"
            raise CameraError(str(error)) from None
        if image is None:
            raise CameraError(f"{self!r}: the frame hook returned None instead of an image (frame {number})")
        metadata = {
            "frame": number,
            "timestamp": timestamp,
            "exposure_time": setup.exposure,
            "roi": setup.roi,
            "trigger_source": setup.mode.name,
        }
        metadata.update(extra)
        return ImageWithMetadata(image, metadata)

    def _scene(self) -> Any:
        """What the frames show that is read from other devices (``None``: nothing); read per frame."""
        return None

    def _content(self, setup: _Setup, number: int, scene: Any) -> Tuple[Any, Dict[str, Any]]:
        """The image of frame ``number`` of ``setup`` showing ``scene``, and the metadata it adds."""
        return self._image(setup, number), {}

    def _image(self, setup: _Setup, number: int) -> Any:
        """The content of frame ``number`` of ``setup``: what ``_expose_real`` returns."""
        return self._expose_real(number)

    def _expose_real(self, number: int) -> Any:
        """Return the image of frame ``number`` for the current settings (a 2-D array)."""
        raise AccessorNotImplementedError(f"{self!r} cannot make frames: implement _expose_real(number)")


class Camera(Base):
    """A simulated camera (see the module documentation); usable with no arguments.

    ``background`` (optional) is the image the camera sees: a 2-D array of
    real, finite numbers whose shape sets the sensor size, ``(rows,
    columns)`` = ``(sensor_height, sensor_width)``; without it the camera
    shows its built-in test pattern on a ``sensor_width`` x
    ``sensor_height`` sensor (640 x 480 pixels unless given). ``simulate``
    adds noise to a background (or lets the pattern drift); ``False`` makes
    every frame the background itself (the pattern of frame 0).

    The keyword-only arguments, all optional, wire the camera into the
    simulated beamline of :mod:`concert.devices.cameras.simulation` (given
    any of them, not ``None``, the camera images it instead of the
    pattern): the devices ``shutter``, ``rotation_motor``, ``x_motor``,
    ``z_motor``, ``flat_motor``, ``focus_motor``, the ``sample``
    (:class:`~concert.devices.cameras.simulation.Needle` or
    :class:`~concert.devices.cameras.simulation.Sphere`) and the ``beam``
    (:class:`~concert.devices.cameras.simulation.Beam`), and the scene:
    ``pixel_size``, ``flux``, ``dark``, ``read_noise``, ``noise``, ``seed``,
    ``axis_column``, ``roll``, ``pitch``, ``in_beam_position``,
    ``out_of_beam_distance``, ``best_focus`` and ``focus_blur``, described
    by :class:`~concert.devices.cameras.simulation.Simulation`;
    ``simulate=False`` then switches the noise off as ``noise=False`` does.
    The camera's :attr:`simulation` answers for the ground truth.

    :raises CameraError: ``background`` is not such an image, or does not
        have the ``sensor_width``/``sensor_height`` also given, or is given
        with the simulated beamline; a device of the wrong kind for its
        argument, a sample or beam of the wrong type.
    :raises UnitError: a sensor size is not in pixels; an argument of the
        simulated beamline is not in its unit.
    :raises LimitError: a sensor size is not a whole number of pixels >= 1;
        an argument of the simulated beamline is out of range, or the
        sample would leave the sensor during a turn.
    """

    def __init__(
        self,
        background: Any = None,
        simulate: bool = True,
        sensor_width: Any = None,
        sensor_height: Any = None,
        *,
        shutter: Any = None,
        rotation_motor: Any = None,
        x_motor: Any = None,
        z_motor: Any = None,
        flat_motor: Any = None,
        focus_motor: Any = None,
        sample: Any = None,
        beam: Any = None,
        pixel_size: Any = None,
        flux: Any = None,
        dark: Any = None,
        read_noise: Any = None,
        noise: Optional[bool] = None,
        seed: Optional[int] = None,
        axis_column: Any = None,
        roll: Any = None,
        pitch: Any = None,
        in_beam_position: Any = None,
        out_of_beam_distance: Any = None,
        best_focus: Any = None,
        focus_blur: Any = None,
    ) -> None:
        arguments = locals()  # first: just the arguments
        beamline = {name: arguments[name] for name in _BEAMLINE if arguments[name] is not None}
        if beamline and background is not None:
            raise CameraError(
                f"{type(self).__name__}: background={describe_value(background)} cannot be combined with "
                f"the simulated beamline ({', '.join(sorted(beamline))}): the camera images one or the other"
            )
        self._constructed = False  # until Base.__init__ has numbered the camera (messages name it)
        self._background = None if background is None else _image_of(background)
        self._simulate = bool(simulate)
        self._noise = np.random.default_rng()
        self._pattern: Optional[Tuple[tuple, np.ndarray]] = None  # see _pattern_frame()
        if self._background is not None:
            rows, columns = self._background.shape
            for name, given, size in (
                ("sensor_width", sensor_width, columns),
                ("sensor_height", sensor_height, rows),
            ):
                if given is not None and _pixel_count("Camera", name, given) != size:
                    raise CameraError(
                        f"Camera: {name}={describe_value(given)} disagrees with the background, "
                        f"{columns} x {rows} pixels (its shape sets the sensor size: leave {name} out)"
                    )
            sensor_width, sensor_height = columns * q.pixel, rows * q.pixel
        sensor_width = 640 * q.pixel if sensor_width is None else sensor_width
        sensor_height = 480 * q.pixel if sensor_height is None else sensor_height
        self._simulation: Optional[Simulation] = None  # fixed for the camera's life
        if beamline:
            sensor = (
                _pixel_count(type(self).__name__, "sensor_width", sensor_width),
                _pixel_count(type(self).__name__, "sensor_height", sensor_height),
            )
            beamline["noise"] = bool(beamline.get("noise", True)) and self._simulate
            self._simulation = Simulation(self._label, sensor, **beamline)
        super().__init__(sensor_width=sensor_width, sensor_height=sensor_height)
        self._constructed = True

    def _label(self) -> str:
        return repr(self) if self._constructed else type(self).__name__

    @property
    def simulation(self) -> Optional[Simulation]:
        """The simulated beamline the camera images (:class:`~concert.devices.cameras.simulation.Simulation`).

        ``None`` when the camera shows its test pattern or a background.
        Ask it for the ground truth: ``camera.simulation.tip_position(angle)``,
        ``camera.simulation.roll`` ...
        """
        return self._simulation

    @property
    def background(self) -> Optional[np.ndarray]:
        """The background given to the constructor (a read-only array), or ``None``."""
        return self._background

    @property
    def simulate(self) -> bool:
        """Whether frames vary (noise on a background, the drifting pattern) or are the background itself."""
        return self._simulate

    def _scene(self) -> Any:
        simulation = self._simulation
        return None if simulation is None else simulation.scene()

    def _content(self, setup: _Setup, number: int, scene: Any) -> Tuple[Any, Dict[str, Any]]:
        simulation = self._simulation
        if simulation is None:
            return super()._content(setup, number, scene)
        return simulation.render(setup.exposure, setup.roi, (setup.serial, number), scene)

    def _image(self, setup: _Setup, number: int) -> np.ndarray:
        x0, y0, width, height = setup.roi
        background = self._background
        if background is None:
            return self._pattern_frame(setup, number if self._simulate else 0)
        crop = background[y0 : y0 + height, x0 : x0 + width]
        if not self._simulate:
            return np.array(crop)
        values = crop.astype(np.float64)
        noisy = values + self._noise.standard_normal(values.shape) * np.sqrt(np.maximum(np.abs(values), 1.0))
        if np.issubdtype(crop.dtype, np.integer):
            limits = np.iinfo(crop.dtype)
            return np.clip(np.rint(noisy), limits.min, limits.max).astype(crop.dtype)
        return noisy.astype(crop.dtype)

    def _pattern_frame(self, setup: _Setup, number: int) -> np.ndarray:
        # The pattern is a row wave times a column wave drifting two columns per
        # frame with a period of 64, so every frame is a slice of one image 64
        # columns wider than the ROI, rendered once per exposure time and ROI: one copy per frame.
        key = (setup.exposure, setup.roi)
        cached = self._pattern  # (key, image); replaced whole, so read without a lock
        if cached is None or cached[0] != key:
            cached = (key, self._render_pattern(setup))
            self._pattern = cached
        start = 64 - (2 * number) % 64
        return np.array(cached[1][:, start : start + setup.roi[2]])

    @staticmethod
    def _render_pattern(setup: _Setup) -> np.ndarray:
        x0, y0, width, height = setup.roi
        columns = np.sin(2 * np.pi * (np.arange(x0 - 64, x0 + width) / 64))
        rows = np.cos(2 * np.pi * np.arange(y0, y0 + height) / 48)
        per_millisecond = _SIGNAL * (1 + 0.5 * np.outer(rows, columns))
        counts = _DARK + setup.exposure * 1000 * per_millisecond
        return np.rint(np.minimum(counts, _SATURATION)).astype(np.uint16)


class BufferedCamera(Camera, base.BufferedCamera):
    """The simulated :class:`Camera` as a buffered camera: record, stop, then ``readout_buffer()``.

    Takes the arguments of :class:`Camera`. ``readout_buffer()`` (in
    standby) yields the frames of the last recording that nobody has read
    yet, oldest first, and ends; it never takes single frames. Each frame
    is read once, by ``grab()`` or by the readout.
    """

    def _readout_real(self) -> Iterator[ImageWithMetadata]:
        while True:
            frame = self._grab_real(0.0)
            if frame is None:
                return
            yield frame


def _image_of(background: Any) -> np.ndarray:
    """``background`` as a read-only 2-D array of real, finite numbers (a copy), or CameraError."""
    try:
        image = np.array(background)
    except Exception:  # ragged nested lists and the like
        image = None
    if image is None or image.ndim != 2 or image.size == 0 or image.dtype.kind not in "iuf":
        shape = "" if image is None else f" ({image.ndim}-D, dtype {image.dtype})"
        raise CameraError(
            f"Camera: background={describe_value(background)}{shape} is not an image: give a "
            "non-empty 2-D array of real numbers, (rows, columns) = (sensor_height, sensor_width)"
        )
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise CameraError(f"Camera: background={describe_value(background)} holds NaN or infinite values")
    image.flags.writeable = False
    return image


def _pixel_count(owner: str, name: str, value: Any) -> int:
    try:
        pixels = float(value.to(q.pixel).magnitude)
    except Exception:  # no quantity, or not one of pixels
        raise UnitError(
            f"{owner}: {name}={describe_value(value)} is not in pixels (write e.g. 640 * q.pixel)"
        ) from None
    if not pixels.is_integer() or pixels < 1:
        raise LimitError(f"{owner}: {name}={describe_value(value)} is not a whole number of pixels >= 1")
    return int(pixels)
