"""A simulated camera that records in real time and never skips a frame.

``Camera()`` needs no arguments: a 640 x 480 sensor of 6.5 µm pixels giving
``uint16`` frames, recording at 100 frames per second with 1 ms exposures,
trigger source AUTO, the region of interest covering the whole sensor.

Timing model (``n`` counts the frames of one recording from 0):

* AUTO: frame ``n`` is complete ``(n + 1) / frame_rate`` after
  ``start_recording()``; :meth:`~concert.devices.cameras.base.Camera.grab`
  waits until then, so frames come at the frame rate in real time.
* SOFTWARE: every ``trigger()`` records one frame at once.
* EXTERNAL: every :meth:`Camera.simulate_external_trigger` (standing in for a
  pulse on the trigger input) records one frame at once.

The camera buffers frames like the ring buffer of a real camera, except
that it never fills (frames are computed when read, so the buffer costs no
memory): a slow reader is never skipped ahead; it gets every frame, numbered
consecutively, with the timestamp of when the frame was complete (so in AUTO
mode consecutive timestamps are exactly 1 / frame_rate apart, however late
they are read). Frames recorded
before ``stop_recording()`` stay readable; ``start_recording()`` discards the
unread frames of the previous recording.

Frame contents are deterministic: a dark level of 100 counts plus a smooth
pattern whose brightness grows with the exposure time (saturating at 65535)
and which drifts by two columns per frame, so consecutive frames differ. A
frame of a region of interest is the same region cut from the full frame.
Metadata: ``'frame'`` (int), ``'timestamp'`` (seconds since the epoch,
float), ``'exposure_time'`` (seconds, float), ``'roi'`` (x0, y0, width,
height in pixels, ints) and ``'trigger_source'`` (its name).

The simulation does not couple exposure time and frame rate: any exposure
time is allowed at any frame rate.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Deque, Optional, Tuple

import numpy as np

from concert.devices.cameras import base
from concert.devices.cameras.base import TriggerSource
from concert.exceptions import HardLimitError, LimitError, StateError, UnitError
from concert.imaging import ImageWithMetadata
from concert.naming import describe_value
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["Camera"]

_ROI = ("roi_x0", "roi_y0", "roi_width", "roi_height")
_DARK = 100.0  # counts
_SIGNAL = 200.0  # mean counts per millisecond of exposure
_SATURATION = np.iinfo(np.uint16).max


def _limit(value: Any) -> Any:
    return lambda camera: value


@dataclass(frozen=True)
class _Setup:
    """What one recording was started with; settings cannot change while recording."""

    mode: TriggerSource
    period: float  # seconds between AUTO frames
    exposure: float  # seconds
    roi: Tuple[int, int, int, int]  # x0, y0, width, height
    started: float  # time.monotonic() at the start
    started_wall: float  # time.time() at the start


class Camera(base.Camera):
    """A simulated camera (see the module documentation).

    ``sensor_width`` and ``sensor_height`` are whole numbers of pixels
    (quantities in ``q.pixel``, at least 1).

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

    def __init__(self, sensor_width: Any = 640 * q.pixel, sensor_height: Any = 480 * q.pixel) -> None:
        self._sensor = (  # fixed for the camera's life: read without a lock
            _pixel_count("sensor_width", sensor_width),
            _pixel_count("sensor_height", sensor_height),
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
        self._pattern: Optional[Tuple[_Setup, np.ndarray]] = None  # see _render()
        self._recording = False
        self._stopped_at: Optional[float] = None  # time.monotonic() of the last stop
        self._next = 0  # number of the next frame to hand out
        self._triggered: Deque[float] = collections.deque()  # timestamps of triggered frames not read
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

    def _record_real(self) -> None:
        with self._cond:
            self._setup = _Setup(
                mode=self._trigger_source,
                period=1 / self._frame_rate.to(1 / q.s).magnitude,
                exposure=self._exposure_time.to(q.s).magnitude,
                roi=self._roi,
                started=time.monotonic(),
                started_wall=time.time(),
            )
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
        with self._cond:
            if not self._recording or self._setup.mode is not mode:
                return False
            self._triggered.append(time.time())
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
        number, timestamp = taken
        return self._render(setup, number, timestamp)

    def _take(self, now: float) -> Tuple[Optional[Tuple[int, float]], Optional[float]]:
        """Hand out the next frame: ((number, timestamp), 0) if readable now, else (None, seconds
        until one may be, or None if none will come). Caller holds _cond."""
        setup = self._setup
        if setup is None:
            return None, None
        if setup.mode is TriggerSource.AUTO:
            complete = setup.started + (self._next + 1) * setup.period
            if self._stopped_at is not None and complete > self._stopped_at:
                return None, None
            if now < complete:
                return None, complete - now
            timestamp = setup.started_wall + (self._next + 1) * setup.period
        elif self._triggered:
            timestamp = self._triggered.popleft()
        else:
            return None, (math.inf if self._recording else None)
        self._next += 1
        return (self._next - 1, timestamp), 0.0

    def _render(self, setup: _Setup, number: int, timestamp: float) -> ImageWithMetadata:
        # The pattern is a row wave times a column wave drifting two columns per
        # frame with a period of 64, so every frame is a slice of one image 64
        # columns wider than the ROI, rendered once per setup: one copy per frame.
        cached = self._pattern  # (setup, image); replaced whole, so read without a lock
        if cached is None or cached[0] is not setup:
            cached = (setup, self._render_pattern(setup))
            self._pattern = cached
        start = 64 - (2 * number) % 64
        frame = np.array(cached[1][:, start : start + setup.roi[2]])
        metadata = {
            "frame": number,
            "timestamp": timestamp,
            "exposure_time": setup.exposure,
            "roi": setup.roi,
            "trigger_source": setup.mode.name,
        }
        return ImageWithMetadata(frame, metadata)

    @staticmethod
    def _render_pattern(setup: _Setup) -> np.ndarray:
        x0, y0, width, height = setup.roi
        columns = np.sin(2 * np.pi * (np.arange(x0 - 64, x0 + width) / 64))
        rows = np.cos(2 * np.pi * np.arange(y0, y0 + height) / 48)
        per_millisecond = _SIGNAL * (1 + 0.5 * np.outer(rows, columns))
        counts = _DARK + setup.exposure * 1000 * per_millisecond
        return np.rint(np.minimum(counts, _SATURATION)).astype(np.uint16)


def _pixel_count(name: str, value: Any) -> int:
    try:
        pixels = float(value.to(q.pixel).magnitude)
    except Exception:  # no quantity, or not one of pixels
        raise UnitError(
            f"Camera: {name}={describe_value(value)} is not in pixels (write e.g. 640 * q.pixel)"
        ) from None
    if not pixels.is_integer() or pixels < 1:
        raise LimitError(f"Camera: {name}={describe_value(value)} is not a whole number of pixels >= 1")
    return int(pixels)
