"""Imaging helpers of the legacy API: taking frames, and how finely a tomographic scan must sample.

* :func:`frames` -- a generator of frames taken one by one with software
  triggers, the usual producer of an
  :class:`~concert.experiments.base.Acquisition`;
* :func:`tomo_angular_step`, :func:`tomo_projections_number`,
  :func:`tomo_max_speed` -- the sampling a tomographic scan needs.

The sampling formulas. The rotation axis is in the middle of a frame
``frame_width`` pixels wide (perpendicular to the axis), so the outermost
pixels are ``r = frame_width / 2`` pixels from it. Turning the sample by a
step ``θ`` moves them along the frame by ``r · tan θ`` pixels at most; for
no point of the sample to move by more than one pixel between two
projections, ``r · tan θ <= 1``::

    θ = arctan(2 / frame_width)

Over the half turn a parallel-beam scan needs, that makes ``ceil(π / θ)``
projections (about ``π / 2 · frame_width``, the classical rule). A sample
turning continuously while the camera records at ``frame_rate`` must not
turn by more than ``θ`` from one frame to the next -- the frame rate, not
the exposure time, counts, since a frame takes exposure plus readout --
so its speed is at most ``θ · frame_rate``.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Iterator, Optional

from concert.checks import is_integer, is_quantity, is_real
from concert.exceptions import LimitError, StateError, UnitError
from concert.experiments.base import ExperimentError
from concert.naming import describe_value
from concert.quantities import q

__all__ = ["frames", "tomo_angular_step", "tomo_max_speed", "tomo_projections_number"]

LOG = logging.getLogger(__name__)


def frames(num_frames: int, camera: Any, callback: Optional[Callable[[], Any]] = None) -> Iterator[Any]:
    """Return a generator taking ``num_frames`` frames with ``camera``, one software trigger each.

    Nothing happens until the first frame is asked for. Then the camera
    is switched to SOFTWARE triggering and records; each frame is triggered,
    grabbed (blocking) and, once ``callback()`` (if given) has been called
    -- to move a motor to the next position, say -- yielded. When the
    generator ends, is closed or fails, the recording is stopped and the
    trigger source restored; a camera that was recording before is stopped
    first and records again afterwards (frames it had recorded and nobody
    read are dropped then, as ``start_recording()`` does). Runs in the thread
    that iterates: a cancelled run stops it at the next grab
    (:func:`~concert.futures.check_cancelled`).

    :raises ExperimentError: at once, if ``num_frames`` is not a whole
        number >= 0 or ``callback`` cannot be called.
    :raises StateError: from the generator, if the camera is in ``'error'``.
    """
    if not is_integer(num_frames) or num_frames < 0:
        raise ExperimentError(f"frames(): num_frames={describe_value(num_frames)} is not a whole number >= 0")
    if callback is not None and not callable(callback):
        raise ExperimentError(f"frames(): callback={describe_value(callback)} cannot be called")
    return _frames(int(num_frames), camera, callback)


def _frames(num_frames: int, camera: Any, callback: Optional[Callable[[], Any]]) -> Iterator[Any]:
    state = camera.state
    was_recording = state == "recording"
    if state not in ("standby", "recording"):
        raise StateError(state, f"frames(): {camera!r} is in state {state!r}; reset() it first")
    if was_recording:
        LOG.info("frames(): %r was recording; it stops for the frames and records again after them", camera)
        camera.stop_recording().join()
    trigger = camera["trigger_source"]
    trigger.stash().join()
    try:
        camera.trigger_source = camera.trigger_sources.SOFTWARE
        with camera.recording():
            for _ in range(num_frames):
                camera.trigger().join()
                frame = camera.grab()
                if callback is not None:
                    callback()
                yield frame
    finally:
        trigger.restore().join()
        if was_recording:
            camera.start_recording().join()


def _pixels(function: str, frame_width: Any) -> float:
    """``frame_width`` in pixels (a quantity in pixels, or a plain number of them), checked."""
    if is_quantity(frame_width):
        try:
            width = float(frame_width.to(q.pixel).magnitude)
        except Exception:
            raise UnitError(
                f"{function}: frame_width={describe_value(frame_width)} is not in pixels "
                "(e.g. 1024 * q.pixel)"
            ) from None
    elif is_real(frame_width):
        width = float(frame_width)
    else:
        raise UnitError(
            f"{function}: frame_width={describe_value(frame_width)} is not a number of pixels "
            "(e.g. 1024 * q.pixel)"
        )
    if not math.isfinite(width) or width <= 0:
        raise LimitError(f"{function}: frame_width={describe_value(frame_width)} must be a finite number > 0")
    return width


def tomo_angular_step(frame_width: Any) -> Any:
    """The largest angular step that moves no pixel of a ``frame_width`` wide frame by more than one pixel.

    ``arctan(2 / frame_width)`` (see the module documentation), in radians.
    ``frame_width`` is in pixels: a quantity (``2048 * q.pixel``) or a plain number.

    :raises UnitError: ``frame_width`` is not a number or not in pixels.
    :raises LimitError: it is not finite and > 0.
    """
    return _step("tomo_angular_step()", frame_width) * q.rad


def _step(function: str, frame_width: Any) -> float:
    """The angular step in radians (a plain float); errors name ``function``."""
    return math.atan(2 / _pixels(function, frame_width))


def tomo_projections_number(frame_width: Any) -> int:
    """How many projections a half-turn scan of a ``frame_width`` wide frame needs: ``ceil(π / step)``.

    :raises UnitError, LimitError: as :func:`tomo_angular_step`.
    """
    return math.ceil(math.pi / _step("tomo_projections_number()", frame_width))


def tomo_max_speed(frame_width: Any, frame_rate: Any) -> Any:
    """The fastest continuous rotation that blurs no pixel by more than one between frames, in rad/s.

    ``tomo_angular_step(frame_width) * frame_rate``; ``frame_rate`` is a
    quantity in frames per second (``100 / q.s``, ``100 * q.Hz``).

    :raises UnitError: ``frame_rate`` is not a rate, or ``frame_width`` as for
        :func:`tomo_angular_step`.
    :raises LimitError: either is not finite and > 0.
    """
    step = _step("tomo_max_speed()", frame_width)
    try:
        rate = float(frame_rate.to(1 / q.s).magnitude)
    except Exception:
        raise UnitError(
            f"tomo_max_speed(): frame_rate={describe_value(frame_rate)} is not a rate (e.g. 100 / q.s)"
        ) from None
    if not math.isfinite(rate) or rate <= 0:
        raise LimitError(f"tomo_max_speed(): frame_rate={describe_value(frame_rate)} must be finite and > 0")
    return step * rate * q.rad / q.s
