"""Simulated motors that move in real time, in integer steps, and stop part-way.

``LinearMotor()`` needs no arguments. Positions are kept in whole steps
(1 nm, or 1 µdeg) as a stepper controller does, so sums of relative moves are
exact. A move of Δ takes ``abs(Δ) / motion_velocity`` of real time; during it,
reading the position interpolates, and a stop leaves the motor where it got
to. The hard limits (by default ±1 m, or ±3600°) are the external limits of
``position``: targets beyond them are refused before the motor moves, and a
continuous motion ends at them in state ``'hard-limit'``. The mechanics move
at 1 step per second to 10 m/s (or 36000°/s): ``motion_velocity`` has these
hardware limits besides its soft limits, so removing the soft limits never
lets a zero or negative speed through.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Tuple

from concert.devices.motors import base
from concert.interrupts import interruptibly, protected
from concert.operations import device_call
from concert.parameters import Quantity
from concert.quantities import q
from concert.states import check, transition

__all__ = ["ContinuousLinearMotor", "ContinuousRotationMotor", "LinearMotor", "RotationMotor"]


class _Axis:
    """The simulated mechanics: one motion at a time, in integer steps.

    Every field but the two events is guarded by ``_lock``; ``_stop_request``
    is set to end the running positioning move, ``_idle`` whenever none runs.

    A stop must not be lost when it lands after the motor reported
    ``'moving'`` but before the axis started: :meth:`move_to` asks the device,
    under ``_lock``, whether a stop came since the motion was armed, and the
    device counts a stop before it takes ``_lock`` in :meth:`stop`, so one of
    the two always sees the other.
    """

    def __init__(self, steps: int, lower: Optional[int], upper: Optional[int]) -> None:
        self._lock = threading.Lock()
        self._steps = steps
        self._lower, self._upper = lower, upper
        # (start steps, end steps or None when continuous, start time, signed steps per second)
        self._motion: Optional[Tuple[int, Optional[int], float, float]] = None
        self._stop_request = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    def _now(self) -> int:
        # Caller holds _lock.
        if self._motion is None:
            return self._steps
        start, end, began, rate = self._motion
        travelled = rate * (time.monotonic() - began)
        if end is not None:
            return end if abs(travelled) >= abs(end - start) else round(start + travelled)
        steps = start + travelled
        if self._lower is not None and steps <= self._lower:
            return self._lower
        if self._upper is not None and steps >= self._upper:
            return self._upper
        return round(steps)

    def position(self) -> int:
        with self._lock:
            return self._now()

    def rate(self) -> float:
        """Signed steps per second right now (0 at rest or at a limit)."""
        with self._lock:
            if self._motion is None:
                return 0.0
            now, (_, end, _, rate) = self._now(), self._motion
            if now == end or (end is None and now in (self._lower, self._upper)):
                return 0.0
            return rate

    def at_limit_while_running(self) -> bool:
        with self._lock:
            return (
                self._motion is not None
                and self._motion[1] is None
                and self._now() in (self._lower, self._upper)
            )

    @protected
    def move_to(self, target: int, steps_per_second: float, stopped: Callable[[], bool]) -> None:
        """Move to ``target``, blocking until there or stopped (Ctrl-C stops it; never half-done).

        Returns at once, without moving, when ``stopped()`` (asked under ``_lock``) is true.
        """
        with self._lock:
            if stopped():
                return
            start = self._now()
            self._stop_request.clear()
            self._idle.clear()
            rate = steps_per_second if target >= start else -steps_per_second
            self._motion = (start, target, time.monotonic(), rate)
        arrived = False
        try:
            duration = abs(target - start) / steps_per_second
            arrived = duration < 1e-6 or not interruptibly(self._stop_request.wait, duration)
        finally:
            with self._lock:
                self._steps = target if arrived else self._now()
                self._motion = None
            self._idle.set()

    @protected
    def run(self, steps_per_second: float) -> None:
        """Start moving at a constant signed rate and return at once."""
        with self._lock:
            self._steps = self._now()
            self._motion = (self._steps, None, time.monotonic(), steps_per_second)

    @protected
    def stop(self) -> bool:
        """Stop and return once standing still; return whether a continuous run was stopped."""
        self._stop_request.set()
        with self._lock:
            continuous = self._motion is not None and self._motion[1] is None
            if continuous:
                self._steps = self._now()
                self._motion = None
        self._idle.wait()
        return continuous


class _Simulated:
    """Mixin turning an abstract motor into a simulated one; subclasses set _unit and _step."""

    _unit: Any
    _step: Any

    def _init_axis(self, position: Any, lower_hard: Any, upper_hard: Any, velocity: Any) -> None:
        self._per_unit = round((1 * self._unit / self._step).to("dimensionless").magnitude)
        self._lower_hard, self._upper_hard = lower_hard, upper_hard
        self._axis = _Axis(
            self._to_steps(position),
            None if lower_hard is None else self._to_steps(lower_hard),
            None if upper_hard is None else self._to_steps(upper_hard),
        )
        self._set_motion_velocity(velocity.to(self._unit / q.s))
        self._home_position = 0 * self._unit

    # Positions are whole steps; converting with an integer number of steps per
    # unit (not a float step size) keeps round numbers exact: 15000000 nm -> 15.0 mm.

    def _to_steps(self, value: Any) -> int:
        magnitude = value.magnitude if value._units == self._unit._units else value.m_as(self._unit)
        return round(magnitude * self._per_unit)

    def _from_steps(self, steps: float, per_second: bool = False) -> Any:
        unit = self._unit / q.s if per_second else self._unit
        return q.Quantity(steps / self._per_unit, unit)

    def _steps_per_second(self, velocity: Any) -> float:
        return velocity.m_as(self._unit / q.s) * self._per_unit

    def _get_position(self) -> Any:
        return self._from_steps(self._axis.position())

    def _move_real(self, position: Any) -> None:
        self._axis.move_to(self._to_steps(position), self._rate, self._stopped_since_armed)

    def _stop_real(self) -> None:
        self._axis.stop()

    def _home_real(self) -> None:
        self._move_real(self._home_position)

    def _get_motion_velocity(self) -> Any:
        return self._motion_velocity

    def _set_motion_velocity(self, velocity: Any) -> None:
        self._rate = self._steps_per_second(velocity)  # steps per second, computed once per change
        self._motion_velocity = velocity

    def _get_velocity(self) -> Any:
        return self._from_steps(self._axis.rate(), per_second=True)


def _hard_lower(motor: Any) -> Any:
    return motor._lower_hard


def _hard_upper(motor: Any) -> Any:
    return motor._upper_hard


def _limit(value: Any) -> Any:
    return lambda motor: value


def _speed(lowest: Any, highest: Any, help: str) -> Quantity:
    """A motion velocity between ``lowest`` and ``highest``: soft limits, and the same as hardware limits.

    The hardware limits keep 0 and negative speeds out even when a script
    removes the soft ones.
    """
    return Quantity(
        lowest.units,
        lower=lowest,
        upper=highest,
        external_lower_getter=_limit(lowest),
        external_upper_getter=_limit(highest),
        help=help,
    )


class LinearMotor(_Simulated, base.LinearMotor):
    """A simulated linear motor: 1 nm steps, hard limits ±1 m, 100 mm/s by default."""

    _unit = q.mm
    _step = 1 * q.nm
    position = Quantity(
        q.mm, help="Position", external_lower_getter=_hard_lower, external_upper_getter=_hard_upper
    )
    motion_velocity = _speed(1e-6 * q.mm / q.s, 10 * q.m / q.s, "Speed of positioning moves")

    def __init__(
        self,
        position: Any = 0 * q.mm,
        lower_hard_limit: Any = -1 * q.m,
        upper_hard_limit: Any = 1 * q.m,
        motion_velocity: Any = 100 * q.mm / q.s,
    ) -> None:
        self._init_axis(position, lower_hard_limit, upper_hard_limit, motion_velocity)
        super().__init__()


class RotationMotor(_Simulated, base.RotationMotor):
    """A simulated rotation stage: 1 µdeg steps, hard limits ±3600°, 90°/s by default."""

    _unit = q.deg
    _step = 1e-6 * q.deg
    position = Quantity(
        q.deg, help="Angular position", external_lower_getter=_hard_lower, external_upper_getter=_hard_upper
    )
    motion_velocity = _speed(1e-6 * q.deg / q.s, 36000 * q.deg / q.s, "Angular speed of moves")

    def __init__(
        self,
        position: Any = 0 * q.deg,
        lower_hard_limit: Any = -3600 * q.deg,
        upper_hard_limit: Any = 3600 * q.deg,
        motion_velocity: Any = 90 * q.deg / q.s,
    ) -> None:
        self._init_axis(position, lower_hard_limit, upper_hard_limit, motion_velocity)
        super().__init__()


class _Continuous:
    """Mixin: writing ``velocity`` starts constant-velocity motion; zero (or stop()) ends it.

    The state is ``'moving'`` while it runs (``'hard-limit'`` once it has run
    into a limit) and ``'standby'`` once stopped: the state after a stop that
    motors declare.
    """

    def _set_velocity(self, velocity: Any) -> None:
        with device_call(self, None, slot=True):  # one motion at a time, as positioning moves
            if velocity.magnitude == 0:
                self._stop_real()
            else:
                self._run(velocity)

    @check(source=("standby", "hard-limit", "moving"), target="moving")
    @transition(immediate="moving", target="moving")
    def _run(self, velocity: Any) -> None:
        self._axis.stop()
        rate = self._steps_per_second(abs(velocity))
        self._axis.run(rate if velocity.magnitude > 0 else -rate)

    def _stop_real(self) -> None:
        # No device call here: stopping must never wait for anybody's `with motor:` block.
        if self._axis.stop():
            self["state"].after_abort()

    def _get_state(self) -> str:
        state = self["state"]._software
        if state == "moving" and self._axis.at_limit_while_running():
            return "hard-limit"
        return state


class ContinuousLinearMotor(_Continuous, LinearMotor, base.ContinuousLinearMotor):
    """A simulated linear motor that also runs at a constant velocity."""

    velocity = Quantity(
        q.mm / q.s, lower=-10 * q.m / q.s, upper=10 * q.m / q.s, help="Velocity of continuous motion"
    )


class ContinuousRotationMotor(_Continuous, RotationMotor, base.ContinuousRotationMotor):
    """A simulated rotation motor that also runs at a constant velocity."""

    velocity = Quantity(
        q.deg / q.s, lower=-36000 * q.deg / q.s, upper=36000 * q.deg / q.s, help="Angular velocity"
    )
