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

from concert import config
from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_, on_cancel
from concert.naming import calling, describe_value, instance_name
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

    # -- position ------------------------------------------------------------------

    def _set_position(self, position: Any) -> None:
        # Motions run one at a time: a write queues in the motor's slot behind a running move.
        with device_call(self, None, slot=True):
            self._move_to(position)

    @check(source=_RESTING, target=_RESTING)
    @transition(immediate="moving", target="standby")
    def _move_to(self, position: Any) -> None:
        with on_cancel(self._stop_hardware):  # a cancel request or Ctrl-C stops the motor
            self._move_hardware(position)

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
        with calling(self, lambda: f"{instance_name(self)}.move({describe_value(given, signed=True)})"):
            delta = position._convert(given, "move by")  # UnitError/LimitError naming the motor
            # One device call: fenced (an abort also stops queued moves), queued in the motor's
            # slot behind a running motion, so the target is computed from where that one ended.
            with device_call(self, None, (position._lock,), slot=True):
                position.write(position.read() + delta)

    @async_
    def stop(self) -> None:
        """Stop the current motion part-way (always allowed; does nothing at rest)."""
        self._stop_hardware()

    @async_
    def home(self) -> None:
        """Move to the home position."""
        with calling(self, lambda: f"{instance_name(self)}.home()"):
            with device_call(self, None, (self["position"]._lock,), slot=True):
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
