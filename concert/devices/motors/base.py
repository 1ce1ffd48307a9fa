"""What every motor offers: position, motion_velocity, velocity, move, stop, home.

States: ``'standby'``, ``'moving'``, ``'hard-limit'`` and ``'error'``. One
motion at a time: moves and position writes from several threads queue up on
the motor (each relative ``move`` starts from where the previous one ended,
so concurrent moves never lose an update). ``stop()``, ``abort()``,
``emergency_stop()``, cancelling the future and Ctrl-C all stop a move
part-way.

Implementations provide the hardware side:

* ``_get_position()``, ``_move_hardware(position)`` (blocks until arrived or
  stopped), ``_stop_hardware()`` (blocks until standing still),
  ``_home_hardware()``;
* ``_get_motion_velocity()``/``_set_motion_velocity(v)``;
* continuous motors also ``_get_velocity()``/``_set_velocity(v)``.
"""

from __future__ import annotations

import threading
from typing import Any

from concert import config, fences
from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_, on_cancel
from concert.locking import operation
from concert.parameters import Quantity
from concert.quantities import q
from concert.states import State, check, transition

__all__ = [
    "ContinuousLinearMotor",
    "ContinuousRotationMotor",
    "LinearMotor",
    "RotationMotor",
]

_RESTING = ("standby", "hard-limit")


class _Motor(Device):
    """Behaviour shared by linear and rotation motors; subclasses declare the units."""

    state = State(default="standby", help="standby, moving, hard-limit or error")

    def __init__(self) -> None:
        super().__init__()
        # Serialises motions: held for a whole move, reentrant for its nested write.
        self._motion = threading.RLock()

    # -- position ------------------------------------------------------------------

    def _set_position(self, position: Any) -> None:
        with self._motion:
            self._move_to(position)

    @check(source=_RESTING, target=_RESTING)
    @transition(immediate="moving", target="standby")
    def _move_to(self, position: Any) -> None:
        with on_cancel(self._stop_hardware):  # future.cancel() stops the motor
            try:
                self._move_hardware(position)
            except KeyboardInterrupt:  # Ctrl-C during a blocking write in the main thread
                self._stop_hardware()
                raise

    @async_
    def move(self, delta: Any) -> None:
        """Move by ``delta`` relative to where the motor is when the move starts.

        Returns a future; the target is checked against the limits before the
        motor moves.
        """
        position = self["position"]
        delta = position._convert(delta, "move by")  # UnitError naming the motor, not pint's error
        # Fenced before queueing for the motion, so an abort also stops queued moves; the
        # position's own lock is taken before the motion lock, as a position write does.
        with fences.fence(self, "move()"), operation((self._exclusive, position._lock)), self._motion:
            fences.check(self)
            position.write(position.read() + delta)

    @async_
    def stop(self) -> None:
        """Stop the current motion part-way (always allowed; does nothing at rest)."""
        self._stop_hardware()

    @async_
    def home(self) -> None:
        """Move to the home position."""
        with fences.fence(self, "home()"), operation((self._exclusive, self["position"]._lock)), self._motion:
            fences.check(self)
            self._home()

    @check(source=_RESTING, target="standby")
    @transition(immediate="moving", target="standby")
    def _home(self) -> None:
        with on_cancel(self._stop_hardware):
            self._home_hardware()

    @async_
    @check(source="error", target="standby")
    @transition(target="standby")
    def reset(self) -> None:
        """Leave the ``'error'`` state."""

    def _abort(self) -> None:
        self._stop_hardware()

    # -- velocity measured from two positions -------------------------------------------

    def _get_velocity(self) -> Any:
        first = self["position"].read()
        waited = threading.Event()
        waited.wait(config.MOTOR_VELOCITY_SAMPLING_TIME)
        second = self["position"].read()
        return (second - first) / (config.MOTOR_VELOCITY_SAMPLING_TIME * q.s)

    # -- what implementations provide ----------------------------------------------------

    def _move_hardware(self, position: Any) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot move")

    def _stop_hardware(self) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot stop")

    def _home_hardware(self) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot home")


class LinearMotor(_Motor):
    """A motor that moves along a line (positions in mm)."""

    position = Quantity(q.mm, help="Position")
    motion_velocity = Quantity(q.mm / q.s, help="Speed of positioning moves")
    velocity = Quantity(q.mm / q.s, help="Current velocity, measured from two positions")


class ContinuousLinearMotor(LinearMotor):
    """A linear motor that can also run at a constant ``velocity``."""

    velocity = Quantity(q.mm / q.s, help="Velocity of continuous motion; writing it starts or stops it")


class RotationMotor(_Motor):
    """A motor that rotates (positions in degrees)."""

    position = Quantity(q.deg, help="Angular position")
    motion_velocity = Quantity(q.deg / q.s, help="Angular speed of positioning moves")
    velocity = Quantity(q.deg / q.s, help="Current angular velocity, measured from two positions")


class ContinuousRotationMotor(RotationMotor):
    """A rotation motor that can also run at a constant ``velocity``."""

    velocity = Quantity(
        q.deg / q.s, help="Angular velocity of continuous motion; writing it starts or stops it"
    )
