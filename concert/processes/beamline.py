"""Beamline processes: align the rotation axis, find and centre the beam, take darks, flats and projections.

What a scientist does in the first hours of beam time, each a function that
returns a :class:`~concert.futures.Future` at once (SPEC §15):

* :func:`acquire_dark` -- close the shutter, take a frame;
* :func:`acquire_image_with_beam` -- open the shutter, move the sample (or
  move it out of the beam, for a flat field), take a frame;
* :func:`acquire_frames_360` -- one frame at each of ``num_frames`` angles
  equally spaced over a full turn of the rotation stage;
* :func:`align_rotation_axis` -- level the rotation axis with the two tilt
  motors of the stage, from the ellipse a needle tip draws on the detector;
* :func:`determine_rotation_axis` -- the column of the rotation axis, from
  flat-corrected projections at 0° and 180°;
* :func:`find_beam`, :func:`drift_to_beam`, :func:`center_to_beam` -- move
  the camera (or whatever the two motors carry) until the beam is seen, and
  then until it sits in the middle of the frame.

Geometry and signs (shared with :mod:`concert.imageprocessing`,
:mod:`concert.measures` and the simulated camera,
:mod:`concert.devices.cameras.simulation`). The laboratory frame is
right-handed: **x** horizontal, perpendicular to the beam, to the right on
the detector; **y** vertical, up; **z** along the beam, from the source to
the detector. A frame is ``frame[row, column]``: the column is x, the row
grows *downwards*. Points are ``(x, y)`` = ``(column, row)`` in pixels.
The rotation axis is nominally vertical; its **roll** is its angle from the
vertical in the detector plane (a rotation about z), positive when its top
leans towards +x; its **pitch** is its angle out of the detector plane (a
rotation about x), positive when its top leans downstream, towards +z. The
stage's ``z_motor`` (a rotation motor turning the axis about z) *adds* its
position to the roll and ``x_motor`` (turning it about x) adds its position
to the pitch, so :func:`align_rotation_axis` moves ``z_motor`` by ``-roll``
and ``x_motor`` by ``-pitch``.

Every process here:

* checks its arguments first and raises :class:`~concert.exceptions.ProcessError`
  (in the future) for a device of the wrong kind or a value it cannot use,
  before any device moves (wrong units: :class:`~concert.exceptions.UnitError`);
* takes its frames with the camera recording in ``SOFTWARE`` trigger mode,
  one ``trigger()`` and one ``grab()`` per frame, so each frame is taken
  after the motors stopped; the camera must be in ``'standby'`` (else
  :class:`~concert.exceptions.StateError`) and is left in ``'standby'``
  with its trigger source as it was;
* is cancellable: ``future.cancel()``, Ctrl-C while waiting for it,
  ``abort()`` stop it between steps (the loops call
  :func:`~concert.futures.check_cancelled`) and stop the move in progress
  (the motors' own stop actions); the future ends cancelled;
* shows a tqdm progress bar on standard error when
  :data:`concert.config.PROGRESS_BAR` is true;
* puts nothing back silently: where the devices are left -- after success,
  failure or cancellation -- is said in each docstring, and failures say it
  in their message. Nothing is put back at all after a cancellation: the
  motors stay where they were stopped.

Failures the camera's frames explain -- no sample visible, no beam found,
no convergence within ``max_iterations`` -- raise :class:`AlignmentError`.

Threads: each call runs in one thread of the pool (in the caller's thread
with :data:`~concert.config.DISABLE_ASYNC`), which also calls
``frame_consumer``; nothing here is shared between calls. A process
changes the camera's trigger source for its duration, so two processes
must not use one camera at the same time (the second finds it recording and
raises :class:`~concert.exceptions.StateError`).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from concert.checks import is_integer, is_quantity, is_real
from concert.coroutines.base import is_coroutine
from concert.devices.cameras.base import Camera
from concert.exceptions import AlignmentError, DataError, LimitError, ProcessError, StateError, UnitError
from concert.futures import async_, check_cancelled, resolve
from concert.magnitudes import same_kind
from concert.measures import rotation_axis
from concert.naming import describe_value
from concert.parameters import Parameterizable, QuantityValue
from concert.processes.progress import progress_bar
from concert.quantities import q

__all__ = [
    "AlignmentError",
    "acquire_dark",
    "acquire_frames_360",
    "acquire_image_with_beam",
    "align_rotation_axis",
    "center_to_beam",
    "determine_rotation_axis",
    "drift_to_beam",
    "find_beam",
]

LOG = logging.getLogger(__name__)


# -- checks ----------------------------------------------------------------------------------------


def _check_camera(who: str, camera: Any) -> Camera:
    if not isinstance(camera, Camera):
        raise ProcessError(
            f"{who}: camera must be a camera (a concert.devices.cameras.base.Camera), "
            f"not {describe_value(camera)}"
        )
    if camera.state != "standby":
        raise StateError(
            camera.state, f"{who} needs {camera!r} in standby to take its frames, not {camera.state!r}"
        )
    return camera


def _check_shutter(who: str, shutter: Any) -> Any:
    """``shutter`` if it is a device with a state and ``open()``/``close()`` (a shutter's interface)."""
    usable = (
        isinstance(shutter, Parameterizable)
        and "state" in shutter
        and callable(getattr(shutter, "open", None))
        and callable(getattr(shutter, "close", None))
    )
    if not usable:
        raise ProcessError(
            f"{who}: shutter must be a shutter (a device with a state and open()/close()), "
            f"not {describe_value(shutter)}"
        )
    return shutter


def _check_motor(who: str, name: str, motor: Any, kind: str, optional: bool = False) -> Any:
    """``motor`` if it has a ``position`` in angles (``kind='angle'``) or lengths (``'length'``)."""
    if motor is None and optional:
        return None
    unit = q.deg if kind == "angle" else q.mm
    what = "a rotation motor (position in degrees)" if kind == "angle" else "a linear motor (position in mm)"
    position = None
    if isinstance(motor, Parameterizable) and "position" in motor:
        position = motor["position"]
    if (
        not isinstance(position, QuantityValue)
        or not same_kind(position.unit._units, unit._units)
        or not callable(getattr(motor, "move", None))
    ):
        raise ProcessError(f"{who}: {name} must be {what}, not {describe_value(motor)}")
    return motor


def _quantity(who: str, name: str, value: Any, unit: Any, positive: bool = True) -> Any:
    """``value`` converted to ``unit``; UnitError for a bare number or another kind, ProcessError if <= 0."""
    if not is_quantity(value) or not same_kind(value._units, unit._units):
        raise UnitError(f"{who}: {name}={describe_value(value)} must be a quantity in {format(unit, '~P')}")
    value = value.to(unit)
    if not np.all(np.isfinite(value.magnitude)) or (positive and np.any(value.magnitude <= 0)):
        raise ProcessError(f"{who}: {name}={describe_value(value)} must be a finite number above 0")
    return value


def _count(who: str, name: str, value: Any, lowest: int) -> int:
    if not is_integer(value) or value < lowest:
        raise ProcessError(f"{who}: {name}={describe_value(value)} must be a whole number >= {lowest}")
    return int(value)


def _flat_and_dark(who: str, camera: Camera, flat: Any, dark: Any) -> Tuple[Any, Any]:
    """``flat`` and ``dark`` if they are images of the camera's frame shape or None; else ProcessError."""
    shape = (int(camera.roi_height.magnitude), int(camera.roi_width.magnitude))
    checked = []
    for name, value in (("flat", flat), ("dark", dark)):
        if value is None:
            checked.append(None)
            continue
        array = np.asarray(value)
        if array.ndim != 2 or array.dtype.kind not in "iuf":
            raise ProcessError(
                f"{who}: {name} must be a 2-D image of real numbers or None, not {describe_value(value)}"
            )
        if array.shape != shape:
            raise ProcessError(
                f"{who}: {name} has shape {array.shape}, but the frames of {camera!r} have {shape} "
                "(its region of interest)"
            )
        checked.append(value)
    if checked[0] is None and checked[1] is not None:
        raise ProcessError(
            f"{who}: a dark without a flat: give flat= too (frames are flat-corrected with both)"
        )
    return checked[0], checked[1]


def _consumer(who: str, consumer: Any) -> Optional[Callable[[Any], Any]]:
    """A function that gives one frame to ``consumer``: a push-style coroutine or a callable."""
    if consumer is None:
        return None
    if is_coroutine(consumer):
        return consumer.send
    if callable(consumer) and not hasattr(consumer, "send"):
        return consumer
    raise ProcessError(
        f"{who}: frame_consumer must be a callable taking a frame or a primed push-style coroutine, "
        f"not {describe_value(consumer)}"
    )


def _where(*motors: Any) -> str:
    """``LinearMotor#1 at 2 mm, RotationMotor#3 at 0.5°``, for the messages."""
    return ", ".join(
        f"{motor!r} at {describe_value(motor.position)}" for motor in motors if motor is not None
    )


# -- frames ------------------------------------------------------------------------------------------


class _Frames:
    """The camera recording in SOFTWARE trigger mode; :meth:`take` triggers and grabs one frame.

    On leaving, the recording stops and the trigger source is put back (it
    is the process's own change, undone as the docstrings say).
    """

    def __init__(self, camera: Camera) -> None:
        self._camera = camera
        self._trigger = camera["trigger_source"]
        self._recording: Any = None

    def __enter__(self) -> _Frames:
        self._trigger.stash().join()
        try:
            self._camera.trigger_source = self._camera.trigger_sources.SOFTWARE
            self._recording = self._camera.recording()
            self._recording.__enter__()
        except BaseException:
            self._trigger.restore().join()
            raise
        return self

    def take(self) -> Any:
        self._camera.trigger().join()
        return self._camera.grab()

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._recording.__exit__(*exc_info)
        finally:
            self._trigger.restore().join()


def _corrected(frame: Any, flat: Optional[np.ndarray], dark: Optional[np.ndarray]) -> Any:
    if flat is None:
        return frame
    from concert.imageprocessing import flat_correct

    return flat_correct(frame, flat, dark=dark)


# -- darks and flats ----------------------------------------------------------------------------------


@async_
def acquire_dark(camera: Camera, shutter: Any) -> Any:
    """Close ``shutter`` (if it is not closed) and take one frame with ``camera``; return a future of it.

    The frame is the camera's own (:class:`~concert.imaging.ImageWithMetadata`,
    the camera's dtype). The shutter is left **closed**.

    :raises ProcessError: (in the future) if ``camera`` or ``shutter`` is not one.
    :raises StateError: (in the future) if the camera is not in standby, or
        the shutter is in ``'error'``.
    """
    who = "acquire_dark()"
    _check_camera(who, camera)
    _check_shutter(who, shutter)
    with progress_bar(1, "acquire_dark") as bar:
        if shutter.state != "closed":
            shutter.close().join()
        check_cancelled()
        with _Frames(camera) as frames:
            frame = frames.take()
        bar.update()
    return frame


@async_
def acquire_image_with_beam(camera: Camera, shutter: Any, flat_motor: Any, position: Any) -> Any:
    """Open ``shutter`` if need be, move ``flat_motor`` to ``position``, take a frame; a future of it.

    ``flat_motor`` is the linear motor that moves the sample in and out of
    the beam: at the sample's position the frame is a projection, out of the
    beam a flat field. The shutter is left **open** and the motor at
    ``position``.

    :raises ProcessError: (in the future) for devices of the wrong kind.
    :raises UnitError, LimitError: (in the future) for a ``position`` the
        motor refuses, before anything moves.
    :raises StateError: (in the future) if the camera is not in standby.
    """
    who = "acquire_image_with_beam()"
    _check_camera(who, camera)
    _check_shutter(who, shutter)
    _check_motor(who, "flat_motor", flat_motor, "length")
    position = flat_motor["position"]._validate(position)  # UnitError/LimitError before anything moves
    with progress_bar(2, "acquire_image_with_beam") as bar:
        flat_motor["position"].set(position).join()
        check_cancelled()
        if shutter.state != "open":
            shutter.open().join()
        bar.update()
        check_cancelled()
        with _Frames(camera) as frames:
            frame = frames.take()
        bar.update()
    return frame


# -- frames over 360° ---------------------------------------------------------------------------------


def _check_full_turn(who: str, rotation_motor: Any) -> None:
    """LimitError before anything moves if the motor's limits leave no room for a turn from where it is."""
    here = rotation_motor.position
    try:
        rotation_motor["position"]._validate(here + 360 * q.deg)
    except LimitError as error:
        raise type(error)(
            f"{who}: {rotation_motor!r} at {describe_value(here)} cannot turn a full 360° in the positive "
            f"direction: {error}; move it back first"
        ) from None


def _frames_360(
    who: str,
    frames: _Frames,
    rotation_motor: Any,
    num_frames: int,
    flat: Optional[np.ndarray],
    dark: Optional[np.ndarray],
    give: Optional[Callable[[Any], Any]],
) -> List[Any]:
    step = 360 * q.deg / num_frames
    result = []
    with progress_bar(num_frames, "acquire_frames_360") as bar:
        for index in range(num_frames):
            check_cancelled()
            if index:
                rotation_motor.move(step).join()
            frame = _corrected(frames.take(), flat, dark)
            if give is not None:
                give(frame)
            result.append(frame)
            bar.update()
        check_cancelled()
        rotation_motor.move(step).join()  # the full turn: the stage is where it started, 360° on
    return result


@async_
def acquire_frames_360(
    camera: Camera,
    rotation_motor: Any,
    num_frames: int,
    flat: Optional[np.ndarray] = None,
    dark: Optional[np.ndarray] = None,
    frame_consumer: Any = None,
) -> List[Any]:
    """Take ``num_frames`` frames equally spaced over a full turn of ``rotation_motor``; a future of them.

    The first frame is taken where the motor is (angle θ₀), frame ``k`` at
    θ₀ + 360°·k/``num_frames``; after the last one the motor makes the last
    step too, so it is **left at θ₀ + 360°** (the sample seen as at the
    start). The motor turns in the positive direction; if its upper limit
    does not leave room for the full turn, :class:`~concert.exceptions.LimitError`
    is raised before it moves.

    With ``flat`` (and optionally ``dark``) every frame is flat-corrected
    (:func:`concert.imageprocessing.flat_correct`: ``(frame - dark) / (flat -
    dark)``, floats); otherwise the frames are the camera's own.
    ``frame_consumer`` -- a callable or a primed push-style coroutine -- is
    given every frame as it is taken, in the process's thread.

    After a cancellation the motor stays where it was stopped.

    :raises ProcessError: (in the future) for devices of the wrong kind,
        ``num_frames`` < 1, a ``flat``/``dark`` that is not a 2-D image of
        the camera's frame shape, a ``dark`` without a ``flat``, or a
        ``frame_consumer`` that is neither.
    :raises StateError: (in the future) if the camera is not in standby.
    """
    who = "acquire_frames_360()"
    _check_camera(who, camera)
    _check_motor(who, "rotation_motor", rotation_motor, "angle")
    num_frames = _count(who, "num_frames", num_frames, 1)
    flat, dark = _flat_and_dark(who, camera, flat, dark)
    give = _consumer(who, frame_consumer)
    _check_full_turn(who, rotation_motor)
    with _Frames(camera) as frames:
        return _frames_360(who, frames, rotation_motor, num_frames, flat, dark, give)


# -- the rotation axis ---------------------------------------------------------------------------------


def _needle_tips(who: str, frames: Sequence[Any]) -> List[Any]:
    """The needle tip of every frame; AlignmentError if a frame shows no sample."""
    from concert.imageprocessing import find_needle_tips

    try:
        return list(find_needle_tips(frames))
    except DataError as error:
        raise AlignmentError(f"{who}: no sample visible in the frames of the turn: {error}") from error


@async_
def align_rotation_axis(
    camera: Camera,
    rotation_motor: Any,
    x_motor: Any = None,
    z_motor: Any = None,
    measure: Callable[[Sequence[Tuple[Any, Any]]], Tuple[Any, Any, Any]] = rotation_axis,
    num_frames: int = 10,
    absolute_eps: Any = 0.1 * q.deg,
    max_iterations: int = 5,
    flat: Optional[np.ndarray] = None,
    dark: Optional[np.ndarray] = None,
    frame_consumer: Any = None,
) -> Tuple[Any, Any, Any]:
    """Level the rotation axis with the tilt motors; a future of the final ``(roll, pitch, center)``.

    A needle (or any sample with a tip) must stand on the rotation stage, off
    the axis, its tip in the field of view at every angle. Each iteration:

    1. takes ``num_frames`` frames over a full turn as
       :func:`acquire_frames_360` does (flat-corrected with ``flat`` and
       ``dark`` when given; each frame also goes to ``frame_consumer``);
    2. finds the needle tip in each (:func:`concert.imageprocessing.find_needle_tips`)
       and gives the tips to ``measure`` -- by default
       :func:`concert.measures.rotation_axis`, which fits the ellipse the tip
       draws and returns ``(roll, pitch, center)`` (angles in degrees,
       ``center`` the ellipse's ``(x, y)`` in pixels); the iteration is
       logged (logger ``concert.processes.beamline``, INFO) with the
       measured roll and pitch;
    3. stops if ``|roll| < absolute_eps`` (when there is a ``z_motor``) and
       ``|pitch| < absolute_eps`` (when there is an ``x_motor``); otherwise
       moves ``z_motor`` by ``-roll`` and ``x_motor`` by ``-pitch``, both at
       once (see the module's geometry: ``z_motor`` adds to the roll,
       ``x_motor`` to the pitch), and goes on.

    With neither tilt motor it measures once and returns. An angle without
    its motor is measured and reported but not corrected (and not waited
    for). Every iteration is one full turn: the rotation stage ends
    360° per iteration further than it started.

    Where the motors are left: at the position of the last measurement --
    the one returned -- on success; on :class:`AlignmentError`, at the
    position of the last measurement (which the message gives), never moved
    after it; after a cancellation, where they were stopped.

    :raises AlignmentError: (in the future) if no sample is visible in the
        frames (all flat, no needle found: the tilt motors have not been moved
        by the iteration that saw nothing), or if the angles are still above
        ``absolute_eps`` after ``max_iterations`` measurements.
    :raises ProcessError: (in the future) for devices of the wrong kind,
        ``num_frames`` < 3, ``max_iterations`` < 1, a ``measure`` that cannot
        be called, or a ``flat``/``dark``/``frame_consumer`` it cannot use.
    :raises UnitError: (in the future) if ``absolute_eps`` is not an angle.
    :raises StateError: (in the future) if the camera is not in standby.
    """
    who = "align_rotation_axis()"
    _check_camera(who, camera)
    _check_motor(who, "rotation_motor", rotation_motor, "angle")
    _check_motor(who, "x_motor", x_motor, "angle", optional=True)
    _check_motor(who, "z_motor", z_motor, "angle", optional=True)
    if not callable(measure):
        raise ProcessError(
            f"{who}: measure must be a callable taking the tips, not {describe_value(measure)}"
        )
    num_frames = _count(who, "num_frames", num_frames, 3)
    max_iterations = _count(who, "max_iterations", max_iterations, 1)
    eps = _quantity(who, "absolute_eps", absolute_eps, q.deg)
    flat, dark = _flat_and_dark(who, camera, flat, dark)
    give = _consumer(who, frame_consumer)

    with progress_bar(max_iterations, "align_rotation_axis") as bar, _Frames(camera) as frames:
        for iteration in range(1, max_iterations + 1):
            check_cancelled()
            _check_full_turn(who, rotation_motor)
            images = _frames_360(who, frames, rotation_motor, num_frames, flat, dark, give)
            tips = _needle_tips(who, images)
            roll, pitch, center = _measured(who, measure, tips)
            LOG.info(
                "%s iteration %d of at most %d: roll %s, pitch %s",
                who,
                iteration,
                max_iterations,
                _degrees(roll),
                _degrees(pitch),
            )
            bar.update()
            roll_done = z_motor is None or abs(roll) < eps
            pitch_done = x_motor is None or abs(pitch) < eps
            if roll_done and pitch_done:
                return roll, pitch, center
            if iteration == max_iterations:
                raise AlignmentError(
                    f"{who}: not within {_degrees(eps, signed=False)} after {max_iterations} iterations: "
                    f"roll {_degrees(roll)}, pitch {_degrees(pitch)}; the tilt motors were left at that "
                    f"measurement: {_where(z_motor, x_motor)}"
                )
            check_cancelled()
            moves = []
            if not roll_done:
                moves.append(z_motor.move(-roll))
            if not pitch_done:
                moves.append(x_motor.move(-pitch))
            resolve(moves)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _measured(who: str, measure: Callable, tips: List[Any]) -> Tuple[Any, Any, Any]:
    """``measure(tips)`` as ``(roll, pitch, center)`` with the angles in degrees."""
    try:
        result = measure(tips)
    except DataError as error:
        raise AlignmentError(f"{who}: the needle tips cannot be measured: {error}") from error
    try:
        roll, pitch, center = result
    except (TypeError, ValueError):
        raise ProcessError(
            f"{who}: measure returned {describe_value(result)}, expected (roll, pitch, center)"
        ) from None
    for name, angle in (("roll", roll), ("pitch", pitch)):
        if not is_quantity(angle) or not same_kind(angle._units, q.deg._units):
            raise ProcessError(
                f"{who}: measure returned the {name} {describe_value(angle)}, expected an angle"
            )
    return roll.to(q.deg), pitch.to(q.deg), center


def _degrees(angle: Any, signed: bool = True) -> str:
    """``+1.234°``: a measured angle as the log and the messages show it."""
    return f"{angle.to(q.deg).magnitude:{'+' if signed else ''}.3f}°"


@async_
def determine_rotation_axis(
    camera: Camera,
    shutter: Any,
    flat_motor: Any,
    rotation_motor: Any,
    flat_position: Any,
    radio_position: Any = None,
) -> Any:
    """The column of the rotation axis, from projections 180° apart; a future of it in pixels.

    Takes a dark (shutter closed, :func:`acquire_dark`), a flat
    (``flat_motor`` at ``flat_position``, the sample out of the beam), a
    projection at ``radio_position`` (default: where ``flat_motor`` is when
    the process starts -- the sample in the beam), turns ``rotation_motor``
    by 180° and takes a second projection; both are flat-corrected and given
    to :func:`concert.imageprocessing.compute_rotation_axis`, whose result
    (the axis's x, a column of the frame, in pixels) is returned.

    Left: the shutter **open**, ``flat_motor`` at ``radio_position``, the
    rotation stage **180°** further than it started.

    :raises ProcessError: (in the future) for devices of the wrong kind.
    :raises UnitError, LimitError: (in the future) for positions the motor
        refuses, before anything moves.
    :raises StateError: (in the future) if the camera is not in standby.
    """
    from concert.imageprocessing import compute_rotation_axis, flat_correct

    who = "determine_rotation_axis()"
    _check_camera(who, camera)
    _check_shutter(who, shutter)
    _check_motor(who, "flat_motor", flat_motor, "length")
    _check_motor(who, "rotation_motor", rotation_motor, "angle")
    position = flat_motor["position"]
    flat_position = position._validate(flat_position)  # UnitError/LimitError before anything moves
    radio_position = position._validate(flat_motor.position if radio_position is None else radio_position)
    with progress_bar(4, "determine_rotation_axis") as bar:
        dark = np.asarray(acquire_dark(camera, shutter).result(), dtype=float)
        bar.update()
        check_cancelled()
        flat = acquire_image_with_beam(camera, shutter, flat_motor, flat_position).result()
        bar.update()
        check_cancelled()
        first = acquire_image_with_beam(camera, shutter, flat_motor, radio_position).result()
        bar.update()
        check_cancelled()
        rotation_motor.move(180 * q.deg).join()
        check_cancelled()
        with _Frames(camera) as frames:
            last = frames.take()
        bar.update()
    return compute_rotation_axis(flat_correct(first, flat, dark=dark), flat_correct(last, flat, dark=dark))


# -- the beam ------------------------------------------------------------------------------------------

#: How many pixels above the threshold make the beam visible (single hot pixels do not).
BEAM_PIXELS = 10


def _pixel_size(who: str, pixelsize: Any) -> Tuple[Any, Any]:
    """``(width, height)`` of a pixel in mm: one length quantity for both, or two."""
    if is_quantity(pixelsize) and np.ndim(pixelsize.magnitude) == 0:
        size = _quantity(who, "pixelsize", pixelsize, q.mm)
        return size, size
    if isinstance(pixelsize, (list, tuple)) and len(pixelsize) == 2:
        return (
            _quantity(who, "pixelsize[0]", pixelsize[0], q.mm),
            _quantity(who, "pixelsize[1]", pixelsize[1], q.mm),
        )
    if is_quantity(pixelsize) and np.shape(pixelsize.magnitude) == (2,):
        return _pixel_size(who, [pixelsize[0], pixelsize[1]])
    raise UnitError(
        f"{who}: pixelsize={describe_value(pixelsize)} must be a length (one for both directions) or "
        "two lengths (width, height), e.g. 6.5 * q.um"
    )


def _border(who: str, name: str, border: Any) -> Tuple[Any, Any]:
    if isinstance(border, (list, tuple)) and len(border) == 2:
        low = _quantity(who, f"{name}[0]", border[0], q.mm, positive=False)
        high = _quantity(who, f"{name}[1]", border[1], q.mm, positive=False)
    elif is_quantity(border) and np.shape(border.magnitude) == (2,):
        return _border(who, name, [border[0], border[1]])
    else:
        raise ProcessError(
            f"{who}: {name}={describe_value(border)} must be two lengths (start, end) of the search area"
        )
    return (low, high) if low <= high else (high, low)


def _beam_visible(frame: Any, thres: float) -> bool:
    return int(np.count_nonzero(np.asarray(frame) > thres)) >= BEAM_PIXELS


def _spiral(
    start: Tuple[float, float],
    steps: Tuple[float, float],
    area: Tuple[Tuple[float, float], Tuple[float, float]],
) -> Iterator[Tuple[float, float]]:
    """Grid points around ``start``, ring after ring (a square spiral), inside ``area``; floats in mm."""
    (x_low, x_high), (z_low, z_high) = area
    x_0, z_0 = start
    x_step, z_step = steps
    rings = math.ceil(max((x_high - x_low) / x_step, (z_high - z_low) / z_step)) + 1
    eps = 1e-9 * max(x_step, z_step)
    for ring in range(rings + 1):
        if ring == 0:
            cells = [(0, 0)]
        else:
            # Clockwise on the screen from the right-hand middle: right, down, left, up, back to the right.
            cells = (
                [(ring, j) for j in range(0, -ring, -1)]
                + [(i, -ring) for i in range(ring, -ring, -1)]
                + [(-ring, j) for j in range(-ring, ring)]
                + [(i, ring) for i in range(-ring, ring)]
                + [(ring, j) for j in range(ring, 0, -1)]
            )
        for i, j in cells:
            x, z = x_0 + i * x_step, z_0 + j * z_step
            if x_low - eps <= x <= x_high + eps and z_low - eps <= z <= z_high + eps:
                yield x, z


@async_
def find_beam(
    cam: Camera,
    xmotor: Any,
    zmotor: Any,
    pixelsize: Any,
    xborder: Sequence[Any],
    zborder: Sequence[Any],
    xstep: Any = None,
    zstep: Any = None,
    thres: float = 1000,
    xmargin: Any = None,
    zmargin: Any = None,
) -> Tuple[Any, Any]:
    """Search the area ``xborder`` x ``zborder`` with ``xmotor``/``zmotor`` until ``cam`` sees the beam.

    ``xmotor`` moves horizontally (x, the frame's columns) and ``zmotor``
    vertically (the legacy name: up, the frame's rows upwards) -- the camera,
    or whatever brings the beam into its field of view; their positions are
    lengths. ``xborder`` and ``zborder`` are ``(start, end)`` motor positions
    bounding the search. The search starts where the motors are if that is
    inside the area, else in its middle, and visits a grid around the start
    ring after ring (a square spiral), so the nearest places come first. The
    grid's steps are ``xstep``/``zstep``; by default the field of view (the
    camera's region of interest times ``pixelsize``, one length or
    ``(width, height)``) less a margin, ``xmargin``/``zmargin``, by default a
    tenth of it, so that neighbouring frames overlap. The beam is visible
    when at least ``BEAM_PIXELS`` (10) pixels of a frame exceed ``thres``
    (counts).

    Returns a future of the ``(x, z)`` motor positions where the beam was
    first seen; the motors are left there. If the whole area shows no beam,
    :class:`AlignmentError` is raised and the motors are **moved back to
    where the search started** (the message says so). After a cancellation
    they stay where they were stopped.

    :raises AlignmentError: (in the future) if the beam was not found.
    :raises ProcessError, UnitError: (in the future) for devices of the wrong
        kind or arguments it cannot use (steps or margins that leave no step).
    :raises StateError: (in the future) if the camera is not in standby.
    """
    who = "find_beam()"
    return _find_beam(
        who, cam, xmotor, zmotor, pixelsize, xborder, zborder, xstep, zstep, thres, xmargin, zmargin
    )


def _find_beam(
    who: str,
    cam: Camera,
    xmotor: Any,
    zmotor: Any,
    pixelsize: Any,
    xborder: Any,
    zborder: Any,
    xstep: Any,
    zstep: Any,
    thres: Any,
    xmargin: Any,
    zmargin: Any,
) -> Tuple[Any, Any]:
    _check_camera(who, cam)
    _check_motor(who, "xmotor", xmotor, "length")
    _check_motor(who, "zmotor", zmotor, "length")
    width, height = _pixel_size(who, pixelsize)
    area = (_border(who, "xborder", xborder), _border(who, "zborder", zborder))
    if not is_real(thres):
        raise ProcessError(f"{who}: thres={describe_value(thres)} must be a number of counts")
    field = (cam.roi_width.magnitude * width, cam.roi_height.magnitude * height)
    steps = []
    for name, step, margin_name, margin, extent in (
        ("xstep", xstep, "xmargin", xmargin, field[0]),
        ("zstep", zstep, "zmargin", zmargin, field[1]),
    ):
        if step is None:
            margin = (
                extent / 10 if margin is None else _quantity(who, margin_name, margin, q.mm, positive=False)
            )
            step = extent - margin
            if step <= 0 * q.mm:
                raise ProcessError(
                    f"{who}: {margin_name}={describe_value(margin)} leaves no step: the field of view is "
                    f"{describe_value(extent)}"
                )
        steps.append(_quantity(who, name, step, q.mm).magnitude)
    start = (xmotor.position.to(q.mm), zmotor.position.to(q.mm))
    inside = all(low <= here <= high for here, (low, high) in zip(start, area))
    origin = start if inside else tuple((low + high) / 2 for low, high in area)
    plain_area = tuple((low.magnitude, high.magnitude) for low, high in area)
    points = list(_spiral((origin[0].magnitude, origin[1].magnitude), tuple(steps), plain_area))
    with progress_bar(len(points), "find_beam") as bar, _Frames(cam) as frames:
        for x, z in points:
            check_cancelled()
            resolve([xmotor["position"].set(x * q.mm), zmotor["position"].set(z * q.mm)])
            if _beam_visible(frames.take(), thres):
                return xmotor.position, zmotor.position
            bar.update()
    check_cancelled()
    resolve([xmotor["position"].set(start[0]), zmotor["position"].set(start[1])])
    raise AlignmentError(
        f"{who}: no beam (at least {BEAM_PIXELS} pixels above {thres} counts) at any of the {len(points)} "
        f"places searched in x {describe_value(area[0][0])} .. {describe_value(area[0][1])}, "
        f"z {describe_value(area[1][0])} .. {describe_value(area[1][1])}; the motors were moved back to "
        f"where the search started: {_where(xmotor, zmotor)}"
    )


def _beam_center(frame: Any) -> Tuple[float, float]:
    """The beam's centre ``(x, y)`` in pixels: the centre of mass of its brighter half.

    The background is the frame's 5th percentile, the beam's peak the
    brightest 3 x 3 mean (so one noisy pixel does not count); the pixels
    above half-way between the two are weighted by their height above the
    background. A symmetric beam's centre is found however much of the frame
    it covers; a frame lit evenly gives the frame's centre.
    """
    from concert.imageprocessing import center_of_mass

    image = np.asarray(frame, dtype=float)
    background = float(np.percentile(image, 5))
    if image.shape[0] >= 3 and image.shape[1] >= 3:
        box = sum(
            image[i : image.shape[0] - 2 + i, j : image.shape[1] - 2 + j] for i in range(3) for j in range(3)
        )
        peak = float(box.max()) / 9
    else:
        peak = float(image.max())
    if not peak > background:
        raise AlignmentError("the frame is uniform: no beam to centre")
    signal = image - background
    signal[image < (background + peak) / 2] = 0
    x, y = center_of_mass(signal)
    return float(x), float(y)


@async_
def drift_to_beam(
    cam: Camera, xmotor: Any, zmotor: Any, pixelsize: Any, tolerance: float = 5, max_iterations: int = 100
) -> Tuple[Any, Any]:
    """Move ``xmotor``/``zmotor`` until the beam's centre is within ``tolerance`` pixels of the frame's.

    The beam must be in the field of view (see :func:`find_beam`). Each
    iteration takes a frame, finds the beam's centre of mass (the frame's
    background removed) and moves the motors, both at once, by its distance
    from the frame's centre times ``pixelsize``: ``xmotor`` by +Δx (a beam to
    the right of the centre needs the camera further right) and ``zmotor``
    by -Δrow (a beam below the centre -- a larger row -- needs the camera
    lower). Returns a future of the beam's final ``(x, y)`` in pixels (the
    frame's centre is ``((width - 1) / 2, (height - 1) / 2)``); the motors
    are left there.

    :raises AlignmentError: (in the future) if the beam is not within
        ``tolerance`` after ``max_iterations`` moves (the motors are left at
        the last move, the message says where), or a frame shows no beam.
    :raises ProcessError, UnitError: (in the future) for devices of the wrong
        kind or arguments it cannot use.
    :raises StateError: (in the future) if the camera is not in standby.
    """
    return _drift_to_beam("drift_to_beam()", cam, xmotor, zmotor, pixelsize, tolerance, max_iterations)


def _drift_to_beam(
    who: str, cam: Camera, xmotor: Any, zmotor: Any, pixelsize: Any, tolerance: Any, max_iterations: Any
) -> Tuple[Any, Any]:
    _check_camera(who, cam)
    _check_motor(who, "xmotor", xmotor, "length")
    _check_motor(who, "zmotor", zmotor, "length")
    width, height = _pixel_size(who, pixelsize)
    if not is_real(tolerance) or not tolerance > 0:
        raise ProcessError(f"{who}: tolerance={describe_value(tolerance)} must be a number of pixels above 0")
    max_iterations = _count(who, "max_iterations", max_iterations, 1)
    with progress_bar(max_iterations, "drift_to_beam") as bar, _Frames(cam) as frames:
        for moves in range(max_iterations + 1):
            check_cancelled()
            frame = frames.take()
            try:
                x, y = _beam_center(frame)
            except AlignmentError as error:
                raise AlignmentError(f"{who}: {error}; the motors are at {_where(xmotor, zmotor)}") from None
            rows, columns = np.shape(frame)
            dx, dy = x - (columns - 1) / 2, y - (rows - 1) / 2
            if math.hypot(dx, dy) < tolerance:
                return x * q.pixel, y * q.pixel
            if moves == max_iterations:
                break
            resolve([xmotor.move(dx * width), zmotor.move(-dy * height)])
            bar.update()
    raise AlignmentError(
        f"{who}: the beam is still {math.hypot(dx, dy):.1f} pixels from the centre (tolerance {tolerance}) "
        f"after {max_iterations} moves; the motors were left at {_where(xmotor, zmotor)}"
    )


@async_
def center_to_beam(
    cam: Camera,
    xmotor: Any,
    zmotor: Any,
    pixelsize: Any,
    xborder: Sequence[Any],
    zborder: Sequence[Any],
    xstep: Any = None,
    zstep: Any = None,
    thres: float = 1000,
    tolerance: float = 5,
    max_iterations: int = 100,
) -> Tuple[Any, Any]:
    """:func:`find_beam`, then :func:`drift_to_beam`: bring the beam into view, then to the frame's centre.

    The arguments are theirs. Returns a future of the beam's final ``(x, y)``
    in pixels; the motors are left where the beam is centred, or -- on
    failure -- where the failing step left them (its message says where).

    :raises AlignmentError: (in the future) from either step.
    """
    who = "center_to_beam()"
    _find_beam(who, cam, xmotor, zmotor, pixelsize, xborder, zborder, xstep, zstep, thres, None, None)
    return _drift_to_beam(who, cam, xmotor, zmotor, pixelsize, tolerance, max_iterations)
