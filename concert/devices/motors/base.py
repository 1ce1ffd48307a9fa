"""What every motor offers: position, motion_velocity, velocity, move, stop, home.

States: ``'standby'``, ``'moving'``, ``'hard-limit'`` and ``'error'``. One
motion at a time: moves and position writes from several threads queue up on
the motor (each relative ``move`` starts from where the previous one ended,
so concurrent moves never lose an update). ``stop()``, ``abort()``,
``emergency_stop()``, cancelling the future and Ctrl-C all stop a move
part-way.

Implementations provide the hardware side (positions in the unit of the
motor's ``position``: mm for linear, degrees for rotation motors):

* ``_move_real(position)``: move to ``position``, already converted and
  checked against the soft and hardware limits; block until the motor has
  arrived or was stopped by ``_stop_real()`` (from another thread) and return
  normally in both cases. It runs one at a time, in the motor's slot; an
  exception puts the motor into ``'error'``.
* ``_stop_real()``: stop the current motion and return once the motor stands
  still; harmless at rest. It is what ``stop()``, a cancel request, Ctrl-C,
  ``abort()`` and ``emergency_stop()`` call, from any thread and while
  ``_move_real()`` or ``_home_real()`` runs in another, so it must not wait for
  any lock or device call, and may be called several times for one stop.
* ``_home_real()``: move to the home position, blocking and stoppable like
  ``_move_real()``.
* the accessors ``_get_position()`` and
  ``_get_motion_velocity()``/``_set_motion_velocity(v)`` (unit per second);
  continuous motors also ``_get_velocity()``/``_set_velocity(v)``, where
  writing a non-zero velocity starts constant-velocity motion and returns at
  once, and zero stops it.

A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented).
"""

from __future__ import annotations

import threading
from typing import Any

from concert import config
from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_, on_cancel
from concert.naming import calling, describe_call
from concert.operations import device_call
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

    state = State(
        default="standby", help="standby, moving, hard-limit or error", after_abort={"moving": "standby"}
    )

    # A stop() must stop the motion it sees: one landing after the state turned 'moving' but
    # before the hardware started would otherwise be lost. stop() counts itself in _stops_asked
    # (written by stop() only, from any thread: a plain attribute store, so a motion being
    # armed reads the old count or the new one, and both are right); a motion notes the count
    # before its state changes, in _armed_at (owned by the one motion the slot lets run), and
    # does not start when the count changed since. Drivers close their own window between
    # that check and the hardware starting with _stopped_since_armed() (see the dummy motor).
    _stops_asked = 0
    _armed_at = 0

    def _stopped_since_armed(self) -> bool:
        """Whether :meth:`stop` was called since the running motion was armed; any thread."""
        return self._stops_asked != self._armed_at

    # -- position ------------------------------------------------------------------

    def _set_position(self, position: Any) -> None:
        # Motions run one at a time: a write queues in the motor's slot behind a running move.
        with device_call(self, None, slot=True):
            self._armed_at = self._stops_asked
            self._move_to(position)

    @check(source=_RESTING, target=_RESTING)
    @transition(immediate="moving", target="standby")
    def _move_to(self, position: Any) -> None:
        with on_cancel(self._stop_real):  # a cancel request or Ctrl-C stops the motor
            if not self._stopped_since_armed():
                self._move_real(position)

    @async_
    def move(self, delta: Any) -> None:
        """Move by ``delta`` relative to where the motor is when the move starts.

        Returns a future; ``delta`` is converted as a position write is
        (:class:`~concert.exceptions.UnitError`,
        :class:`~concert.exceptions.LimitError`) and the target is checked
        against the limits before the motor moves.
        """
        position = self["position"]
        # Messages name this call (LinearMotor#1.move(+5 mm)), not the position write it makes.
        given = delta
        with calling(self, lambda: describe_call(_Motor.move, (self, given), {})):
            delta = position._convert(given, "move by")  # UnitError/LimitError naming the motor
            # One device call: fenced (an abort also stops queued moves), queued in the motor's
            # slot behind a running motion, so the target is computed from where that one ended.
            with device_call(self, None, (position._lock,), slot=True):
                position.write(position.read() + delta)

    @async_
    def stop(self) -> None:
        """Stop the current motion part-way (always allowed; does nothing at rest).

        A motion whose state already reads ``'moving'`` is stopped even when the
        hardware had not started yet: it then does not start.
        """
        self._stops_asked += 1
        self._stop_real()

    @async_
    def home(self) -> None:
        """Move to the home position."""
        with calling(self, lambda: describe_call(_Motor.home, (self,), {})):
            with device_call(self, None, (self["position"]._lock,), slot=True):
                self._armed_at = self._stops_asked
                self._home()

    @check(source=_RESTING, target="standby")
    @transition(immediate="moving", target="standby")
    def _home(self) -> None:
        with on_cancel(self._stop_real):
            if not self._stopped_since_armed():
                self._home_real()

    @async_
    @check(source="error", target="standby")
    @transition(target="standby")
    def reset(self) -> None:
        """Leave the ``'error'`` state."""

    def _abort(self) -> None:
        self._stop_real()

    # -- velocity measured from two positions -------------------------------------------

    def _get_velocity(self) -> Any:
        first = self["position"].read()
        waited = threading.Event()
        waited.wait(config.MOTOR_VELOCITY_SAMPLING_TIME)
        second = self["position"].read()
        return (second - first) / (config.MOTOR_VELOCITY_SAMPLING_TIME * q.s)

    # -- what implementations provide ----------------------------------------------------

    def _move_real(self, position: Any) -> None:
        """Move to ``position`` (checked, in the motor's unit); block until there or stopped."""
        raise AccessorNotImplementedError(f"{self!r} cannot move")

    def _stop_real(self) -> None:
        """Stop the motion, return once standing still; harmless at rest; never waits for locks."""
        raise AccessorNotImplementedError(f"{self!r} cannot stop")

    def _home_real(self) -> None:
        """Move to the home position; block until there or stopped, as :meth:`_move_real`."""
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
