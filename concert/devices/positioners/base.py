"""What every positioner offers: ``position`` and ``orientation`` as 3-vectors, moves along x, y and z.

A :class:`Positioner` drives several motors that move one object (a sample
stage, a detector table) as one device. Each motor is an :class:`Axis`: a
linear motor (its ``position`` a length) translates along a coordinate, a
rotation motor (an angle) rotates about it.

Geometry -- the laboratory frame shared by every module of the toolbox,
right-handed:

* **x** is horizontal and perpendicular to the beam, increasing to the right
  on the detector;
* **y** is vertical, increasing upwards;
* **z** runs along the beam, from the source towards the detector.

So :meth:`Positioner.right` moves towards +x, :meth:`~Positioner.up`
towards +y and :meth:`~Positioner.forward` downstream, towards +z (and
:meth:`~Positioner.left`, :meth:`~Positioner.down` and
:meth:`~Positioner.back` the other way). ``orientation`` holds the angles
of the rotation axes about x, y and z, each positive counter-clockwise when
looking from the positive end of its coordinate axis towards the origin
(the right-hand rule), as far as the motors are mounted that way: an axis's
``direction`` says whether its motor turns (or moves) with the coordinate
or against it.

Parameters:

* ``position``: a 3-vector of lengths (mm), ``[x, y, z]``. A coordinate
  without a translation axis reads NaN;
* ``orientation``: a 3-vector of angles (deg) about x, y and z. A coordinate
  without a rotation axis reads NaN;
* ``state``: ``'standby'``, ``'moving'``, ``'hard-limit'`` or ``'error'``,
  read from the motors: ``'error'`` when one of them is in error, else
  ``'moving'`` when one moves, else ``'hard-limit'`` when one stands at a
  hard limit, else ``'standby'``.

A 3-vector is given as a quantity array (``[1, 0, 2] * q.mm``) or as a
sequence of three quantities (``(1 * q.mm, 0 * q.mm, 2 * q.um)``). For a
coordinate without an axis the component must be 0 or NaN ("nothing to do
there"); anything else raises :class:`~concert.exceptions.WriteAccessError`
naming the positioner, the coordinate and the value, before anything moves.
What reads NaN can therefore be written back (``stash()``/``restore()``
work).

Every write and move is checked in full before any motor moves: units
(:class:`~concert.exceptions.UnitError`), a NaN or infinite component for
a coordinate that has an axis (:class:`~concert.exceptions.LimitError`),
a locked motor position (:class:`~concert.exceptions.LockError`), a motor in
``'error'`` (:class:`~concert.exceptions.StateError`), and the target of
every axis against its motor's soft and hardware limits
(:class:`~concert.exceptions.SoftLimitError`,
:class:`~concert.exceptions.HardLimitError`: the message names the
positioner call, the axis, its motor and the motor position it would have
had to reach). If one axis would leave its limits, no axis moves.

Then the axes move together: each motor gets its move at once (in
synchronous mode, :data:`~concert.config.DISABLE_ASYNC`, one after the
other in the calling thread, as every call there), and the call returns
once all have arrived. A motor whose component of a relative move is 0 is
not moved. Positioner motions run one
at a time (later ones queue behind the running one). Cancelling the
future, Ctrl-C while waiting for it (or in a blocking ``positioner.position
= ...``), :meth:`~concert.devices.base.Device.abort` and
:meth:`~concert.devices.base.Device.emergency_stop` stop every axis
part-way; axes not started yet (synchronous mode) never start. The
positioner's future then ends cancelled, naming what stopped it.
:meth:`Positioner.stop` stops the motors; the motion then ends normally,
part-way, as a motor's does.

The positioner adds no hardware hooks of its own: it calls its motors'
``move`` and ``position`` writes, ``stop``, ``emergency_stop`` and reads
their ``position`` and ``state``. Subclasses working in other units
(:mod:`concert.devices.positioners.imaging`) override
:meth:`Positioner._to_lab` and :meth:`Positioner._from_lab`.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from concert.checks import is_quantity
from concert.devices.base import Device
from concert.exceptions import (
    ConfigurationError,
    DeviceError,
    LimitError,
    LockError,
    StateError,
    UnitError,
    WriteAccessError,
)
from concert.futures import Future, async_, current_future, on_cancel, wait
from concert.magnitudes import real_number, same_kind
from concert.naming import calling, current_call, describe_call, describe_value
from concert.operations import device_call
from concert.parameters import Parameter, Parameterizable, ParameterValue, QuantityValue
from concert.polling import busy_wait
from concert.quantities import q
from concert.states import State

__all__ = ["ROTATION", "TRANSLATION", "Axis", "Positioner", "Vector", "VectorValue"]

#: The kind of an :class:`Axis` driven by a linear motor.
TRANSLATION = "translation"
#: The kind of an :class:`Axis` driven by a rotation motor.
ROTATION = "rotation"

_COORDINATES = ("x", "y", "z")
_PARAMETERS = {TRANSLATION: "position", ROTATION: "orientation"}
_LAB_UNITS = {TRANSLATION: q.mm, ROTATION: q.deg}


def _refusal_of(error: Exception, message: str) -> Exception:
    """A new exception of ``error``'s class carrying ``message`` (a StateError keeps its state)."""
    if isinstance(error, StateError):
        return StateError(error.error_state, message)
    return type(error)(message)


class Axis:
    """One motor of a :class:`Positioner`: it moves along, or rotates about, the ``coordinate`` x, y or z.

    ``motor`` is a device with a ``position`` quantity: a length makes a
    translation axis (``kind`` is :data:`TRANSLATION`), an angle a rotation
    axis (:data:`ROTATION`). ``direction`` is 1 when the motor's positive
    direction is the coordinate's, -1 when it is the opposite.
    ``position`` is where the motor stands (in the motor's own scale) when
    the axis is at 0; ``None`` means the motor's 0. So the axis value is
    ``direction * (motor.position - position)``.

    :raises ConfigurationError: ``coordinate`` is not one of ``'x'``,
        ``'y'``, ``'z'``, or ``direction`` is neither 1 nor -1.
    :raises DeviceError: ``motor`` has no ``position`` quantity that is a
        length or an angle.
    :raises UnitError, LimitError: ``position`` is no finite value of the
        motor's kind.
    """

    def __init__(self, coordinate: str, motor: Any, direction: int = 1, position: Any = None) -> None:
        shown = f"Axis({coordinate!r}, {describe_value(motor)})"
        if not isinstance(coordinate, str) or coordinate not in _COORDINATES:
            raise ConfigurationError(f"{shown}: the coordinate must be 'x', 'y' or 'z', not {coordinate!r}")
        value = motor["position"] if isinstance(motor, Parameterizable) and "position" in motor else None
        if not isinstance(value, QuantityValue):
            raise DeviceError(
                f"{shown}: {describe_value(motor)} is not a motor (it has no position quantity)"
            )
        unit = value.unit
        if same_kind(unit._units, q.mm._units):
            kind = TRANSLATION
        elif same_kind(unit._units, q.deg._units):
            kind = ROTATION
        else:
            raise DeviceError(
                f"{shown}: {motor!r} positions in {unit:~P}, neither a length (a linear motor) "
                "nor an angle (a rotation motor)"
            )
        if isinstance(direction, bool) or direction not in (1, -1):
            raise ConfigurationError(f"{shown}: direction must be 1 or -1, not {describe_value(direction)}")
        if position is None:
            zero = q.Quantity(0.0, unit)
        else:
            try:
                zero = value._convert(position, "axis position")
            except (UnitError, LimitError) as error:
                raise _refusal_of(error, f"{shown}: position={describe_value(position)}: {error}") from None
        self.coordinate: str = coordinate
        self.motor: Any = motor
        self.direction: int = int(direction)
        self.position: Any = zero
        self.kind: str = kind

    def __repr__(self) -> str:
        direction = ", direction=-1" if self.direction < 0 else ""
        zero = f", position={describe_value(self.position)}" if self.position.magnitude else ""
        return f"Axis({self.coordinate!r}, {self.motor!r}{direction}{zero})"

    @property
    def name(self) -> str:
        """How messages name the axis: ``'x axis'`` for a translation, ``'rotation about x'``."""
        return f"{self.coordinate} axis" if self.kind == TRANSLATION else f"rotation about {self.coordinate}"

    def to_motor(self, value: float) -> Any:
        """The motor position (a quantity in the motor's unit) for the axis value ``value``.

        ``value`` is a number in mm (translation) or degrees (rotation).
        """
        unit = self.position.units
        step = q.Quantity(self.direction * value, _LAB_UNITS[self.kind]).to(unit)
        return self.position + step

    def from_motor(self, motor_position: Any) -> float:
        """The axis value, in mm or degrees, for the motor position ``motor_position`` (a quantity)."""
        return float(self.direction * (motor_position - self.position).m_as(_LAB_UNITS[self.kind]))


class Vector(Parameter):
    """A :class:`~concert.parameters.Parameter` holding a 3-vector ``[x, y, z]`` of quantities in ``unit``.

    ``kind`` is the kind of the axes it is made of (:data:`TRANSLATION` or
    :data:`ROTATION`). Values are converted by :meth:`VectorValue.convert`;
    the device's ``_check_components(name, kind, magnitudes)`` refuses what
    its axes cannot do, before any accessor runs.
    """

    def __init__(
        self,
        unit: Any,
        kind: str,
        fget: Optional[Callable] = None,
        fset: Optional[Callable] = None,
        help: Optional[str] = None,
    ) -> None:
        super().__init__(fget=fget, fset=fset, help=help)
        self.unit = q.Unit(unit) if not isinstance(unit, q.Unit) else unit
        self.kind = kind


class VectorValue(ParameterValue):
    """The value side of a :class:`Vector`: conversion of 3-vectors, ``unit`` and tolerance waits."""

    _parameter: Vector

    @property
    def unit(self) -> Any:
        """The unit every component is converted to."""
        return self._parameter.unit

    def convert(self, value: Any, what: str = "value") -> np.ndarray:
        """Return ``value`` as three floats in :attr:`unit` (NaN components are kept).

        ``value`` is a quantity whose magnitude holds three numbers, or a
        sequence of three quantities (of units of this kind, mixed if need
        be). ``what`` names the value in messages (``'move by'``).

        :raises UnitError: not three quantities of this kind.
        :raises LimitError: an infinite component, or one too large for a float.
        """
        prefix = f"{current_call(self._instance) or self._label}: {'' if what == 'value' else what + ' '}"
        return _numbers(value, self.unit, prefix)

    def _validate(self, value: Any) -> Any:
        numbers = self.convert(value)
        self._instance._check_components(self.name, self._parameter.kind, numbers)
        return q.Quantity(numbers, self.unit)

    def _from_device(self, value: Any) -> Any:
        if isinstance(value, q.Quantity):
            return value
        return q.Quantity(np.asarray(value, dtype=float), self.unit)

    def _extra_info_rows(self) -> List[Tuple[str, str]]:
        return [("unit", format(self.unit, "~"))]

    @async_
    def wait(self, value: Any, eps: Any = None, sleep_time: Any = None, timeout: Any = None) -> None:
        """Return a future that finishes once every component is within ``eps`` of ``value``'s.

        ``eps`` is a quantity of this kind (default: equal up to rounding,
        1e-9 of the unit); components that are NaN in ``value`` are not
        compared. ``sleep_time`` (default 0.1 s) is the polling interval,
        ``timeout`` the longest wait (:class:`~concert.exceptions.WaitError`).

        :raises UnitError, LimitError: ``value`` or ``eps`` cannot be converted.
        """
        target = self.convert(value, "wait for")
        if eps is None:
            tolerance = 1e-9
        else:
            tolerance = abs(self.convert([eps] * 3, "eps")[0])
        compared = ~np.isnan(target)

        def reached() -> bool:
            current = self.read().m_as(self.unit)
            return bool(np.all(np.abs(current[compared] - target[compared]) <= tolerance))

        reached.__qualname__ = f"{self._label} == {describe_value(q.Quantity(target, self.unit))}"
        busy_wait(reached, sleep_time, timeout)


Vector.value_class = VectorValue


def _numbers(value: Any, unit: Any, prefix: str) -> np.ndarray:
    """``value``, a 3-vector of quantities, as three floats in ``unit`` (see :meth:`VectorValue.convert`).

    ``prefix`` starts every message (``'Positioner#1.move(...): move by '``).
    """
    shown = describe_value(value) if is_quantity(value) else _shown_sequence(value)
    example = f"write e.g. [1, 0, 0] * q.{format(unit, '~')}"
    components = None
    if is_quantity(value):
        magnitude = value.magnitude
        if isinstance(magnitude, (np.ndarray, list, tuple)) and np.shape(magnitude) == (3,):
            components = [q.Quantity(element, value.units) for element in np.asarray(magnitude).tolist()]
    elif isinstance(value, (list, tuple, np.ndarray)) and len(value) == 3:
        components = list(value)
    if components is None:
        raise UnitError(f"{prefix}{shown} is not a 3-vector [x, y, z] ({example})")
    numbers = np.empty(3)
    for index, (coordinate, component) in enumerate(zip(_COORDINATES, components)):
        if not isinstance(component, q.Quantity):
            raise UnitError(
                f"{prefix}{shown}: the {coordinate} component, {describe_value(component)}, is not a "
                f"quantity in {unit:~P} ({example})"
            )
        if not same_kind(component._units, unit._units):
            raise UnitError(
                f"{prefix}{shown}: the {coordinate} component, {describe_value(component)}, "
                f"cannot be expressed in {unit:~P}"
            )
        try:
            number = real_number(component.magnitude)
        except (UnitError, LimitError) as error:
            raise _refusal_of(
                error, f"{prefix}{shown}: the {coordinate} component {describe_value(component)} {error}"
            ) from None
        number = float(q.Quantity(number, component.units).m_as(unit))
        if math.isinf(number):
            raise LimitError(f"{prefix}{shown}: the {coordinate} component is not a finite number")
        numbers[index] = number
    return numbers


def _described(instance: Any, method: str, value: Any) -> str:
    """``Positioner#1.move([1, 0, 0] mm)``: a call with a vector argument, as messages name it."""
    shown = describe_value(value, signed=True) if is_quantity(value) else _shown_sequence(value)
    return f"{instance!r}.{method}({shown})"


def _shown_sequence(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) <= 4:
        inner = ", ".join(describe_value(element) for element in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return describe_value(value)


def _request_all(futures: Sequence[Future], reason: str) -> None:
    """Ask every future to stop with ``reason``; then raise the first error a stop action raised."""
    first: Optional[BaseException] = None
    for future in futures:
        try:
            future.request_cancel(reason)
        except Exception as error:  # the others must still be stopped
            first = first or error
    if first is not None:
        raise first


class Positioner(Device):
    """Motors moving one object in the laboratory frame (see the module documentation).

    ``axes`` are the :class:`Axis` objects, at most one translation and one
    rotation per coordinate, each on its own motor. ``position`` is where
    the positioner's origin lies in the laboratory frame (a 3-vector of
    lengths, default ``[0, 0, 0]``): reading ``position`` gives it plus the
    translation axes' values, so that a positioner can report laboratory
    coordinates although its motors count from their own zeros.

    :raises ConfigurationError: no axes, an item that is not an
        :class:`Axis`, two axes of one kind on one coordinate, or one motor
        on two axes.
    :raises UnitError, LimitError: ``position`` is no finite 3-vector of lengths.
    """

    state = State(help="standby, moving, hard-limit or error: read from the motors")
    position = Vector(q.mm, TRANSLATION, help="Position [x, y, z] in the laboratory frame")
    orientation = Vector(q.deg, ROTATION, help="Angles [about x, about y, about z] of the rotation axes")

    def __init__(self, axes: Iterable[Axis], position: Any = None) -> None:
        shown = type(self).__name__
        try:
            axes = tuple(axes)
        except TypeError:
            raise ConfigurationError(f"{shown}: axes must be a list of Axis objects, not {axes!r}") from None
        if not axes:
            raise ConfigurationError(f"{shown}: give at least one Axis")
        by_kind: Dict[str, Dict[str, Axis]] = {TRANSLATION: {}, ROTATION: {}}
        motors: List[Any] = []
        for axis in axes:
            if not isinstance(axis, Axis):
                raise ConfigurationError(
                    f"{shown}: {describe_value(axis)} is not an Axis (write e.g. Axis('x', motor))"
                )
            taken = by_kind[axis.kind].get(axis.coordinate)
            if taken is not None:
                raise ConfigurationError(f"{shown}: {axis!r} and {taken!r} are both the {axis.name}")
            if any(axis.motor is motor for motor in motors):
                raise ConfigurationError(f"{shown}: {axis.motor!r} drives two axes")
            by_kind[axis.kind][axis.coordinate] = axis
            motors.append(axis.motor)
        # Fixed for the positioner's life (read without a lock).
        self._axes: Tuple[Axis, ...] = axes
        self._by_kind = by_kind
        super().__init__()
        if position is None:
            origin = np.zeros(3)
        else:
            origin = _numbers(position, q.mm, f"{shown}: position=")
            if np.isnan(origin).any():
                raise LimitError(f"{shown}: position={describe_value(position)} has a NaN component")
        self._origin: np.ndarray = origin  # fixed for the positioner's life, never changed in place

    @property
    def axes(self) -> Tuple[Axis, ...]:
        """The axes, in the order given to the constructor."""
        return self._axes

    @property
    def origin(self) -> Any:
        """Where the positioner's origin lies in the laboratory frame (the constructor's ``position``)."""
        return q.Quantity(self._origin.copy(), q.mm)

    # -- reading -------------------------------------------------------------------------

    def _get_state(self) -> str:
        states = set()
        for axis in self._axes:
            motor = axis.motor
            states.add(motor["state"].read() if "state" in motor else "standby")
        for state in ("error", "moving", "hard-limit"):
            if state in states:
                return state
        return "standby"

    def _lab(self, kind: str) -> np.ndarray:
        """The axes' values of ``kind`` in mm or degrees (NaN where there is no axis); with the origin."""
        values = np.full(3, np.nan)
        for index, coordinate in enumerate(_COORDINATES):
            axis = self._by_kind[kind].get(coordinate)
            if axis is not None:
                values[index] = axis.from_motor(axis.motor["position"].read())
        if kind == TRANSLATION:
            values = values + self._origin
        return values

    def _to_lab(self, kind: str, numbers: np.ndarray) -> np.ndarray:
        """Turn numbers in the unit of the parameter of ``kind`` into mm or degrees (override for pixels)."""
        unit = self[_PARAMETERS[kind]].unit
        lab = _LAB_UNITS[kind]
        return numbers if unit == lab else q.Quantity(numbers, unit).m_as(lab)

    def _from_lab(self, kind: str, numbers: np.ndarray) -> np.ndarray:
        """Turn mm or degrees into numbers in the unit of the parameter of ``kind`` (override for pixels)."""
        unit = self[_PARAMETERS[kind]].unit
        lab = _LAB_UNITS[kind]
        return numbers if unit == lab else q.Quantity(numbers, lab).m_as(unit)

    def _get_position(self) -> Any:
        return q.Quantity(self._from_lab(TRANSLATION, self._lab(TRANSLATION)), self["position"].unit)

    def _get_orientation(self) -> Any:
        return q.Quantity(self._from_lab(ROTATION, self._lab(ROTATION)), self["orientation"].unit)

    # -- checks before anything moves ---------------------------------------------------------

    def _call(self, name: str) -> str:
        return current_call(self) or f"{self!r}[{name!r}]"

    def _check_components(self, name: str, kind: str, numbers: np.ndarray) -> None:
        """Refuse components the axes cannot do: non-zero where there is no axis, NaN where there is one.

        :raises WriteAccessError: a non-zero component for a coordinate without an axis of ``kind``.
        :raises LimitError: a NaN component for a coordinate that has one.
        """
        unit = self[name].unit
        present = [axis.coordinate for axis in self._axes if axis.kind == kind]
        for index, coordinate in enumerate(_COORDINATES):
            number = numbers[index]
            if coordinate in present:
                if math.isnan(number):
                    raise LimitError(
                        f"{self._call(name)}: the {coordinate} component is NaN, but {self!r} has a "
                        f"{kind} axis along {coordinate}; give a number; nothing moved"
                    )
            elif not (number == 0 or math.isnan(number)):
                has = ", ".join(present) or "none"
                raise WriteAccessError(
                    f"{self._call(name)}: the {coordinate} component is "
                    f"{describe_value(q.Quantity(number, unit))}, but {self!r} has no {kind} axis "
                    f"along {coordinate} (it has: {has}); give 0 or NaN there; nothing moved"
                )

    def _check_axis(self, call: str, axis: Axis, target: Any) -> None:
        """Refuse, before anything moves, a target the axis's motor would refuse."""
        motor = axis.motor
        value = motor["position"]
        where = f"{call}: the {axis.name}, {motor!r},"
        if "state" in motor and motor["state"].read() == "error":
            raise StateError("error", f"{where} is in state 'error' (reset() it first); nothing moved")
        if value.locked:
            raise LockError(f"{where} has its position locked; nothing moved")
        if not value.writable:
            raise WriteAccessError(f"{where} cannot be moved (its position has no setter); nothing moved")
        try:
            value._validate(target)
        except (LimitError, UnitError) as error:
            raise _refusal_of(
                error, f"{where} would have to go to {describe_value(target)}: {error}; nothing moved"
            ) from None

    # -- moving -------------------------------------------------------------------------------

    def _go(self, kind: str, target: Optional[np.ndarray] = None, delta: Optional[np.ndarray] = None) -> None:
        """Move the axes of ``kind`` to ``target`` or by ``delta`` (mm or degrees; NaN: no axis there).

        One positioner motion at a time (the positioner's slot); every axis
        is checked before the first one moves.
        """
        name = _PARAMETERS[kind]
        with device_call(self, None, (self[name]._lock,), slot=True):
            call = self._call(name)
            starts: List[Callable[[], Future]] = []
            for index, coordinate in enumerate(_COORDINATES):
                axis = self._by_kind[kind].get(coordinate)
                if axis is None:
                    continue
                value = axis.motor["position"]
                if delta is not None:
                    if delta[index] == 0:
                        continue
                    step = axis.to_motor(delta[index]) - axis.position
                    goal = value.read() + step
                    if hasattr(axis.motor, "move"):
                        start = _starter(axis.motor.move, step)
                    else:
                        start = _starter(value.set, goal)
                else:
                    lab = target[index] - (self._origin[index] if kind == TRANSLATION else 0.0)
                    goal = axis.to_motor(lab)
                    start = _starter(value.set, goal)
                self._check_axis(call, axis, goal)
                starts.append(start)
            self._run_together(starts)

    def _run_together(self, starts: Sequence[Callable[[], Future]]) -> None:
        """Start every motion, then wait for all; a cancel request stops all of them.

        ``guard`` is the one lock of ``futures`` and ``stopped``, shared by
        this thread and the stop action, which may run in any thread. It is
        never held while a motion starts (in synchronous mode that runs the
        whole motion), so a stop never waits for one.
        """
        outer = current_future()
        guard = threading.Lock()
        futures: List[Future] = []
        stopped = False

        def reason() -> str:
            given = getattr(outer, "_cancel_reason", None)
            return given or (f"cancellation of {outer.name}" if outer is not None else "Ctrl-C")

        def stop_all() -> None:
            nonlocal stopped
            with guard:
                stopped = True
                started = list(futures)
            _request_all(started, reason())

        with on_cancel(stop_all):
            for start in starts:
                with guard:
                    if stopped:
                        break
                future = start()
                with guard:
                    futures.append(future)
                    late = stopped
                if late:  # the stop came while this one was being started
                    _request_all([future], reason())
            wait(futures)

    def _relative(self, kind: str, delta: Any, what: str) -> None:
        value = self[_PARAMETERS[kind]]
        numbers = value.convert(delta, what)
        self._check_components(value.name, kind, numbers)
        self._go(kind, delta=self._to_lab(kind, np.nan_to_num(numbers)))

    def _set_position(self, position: Any) -> None:
        numbers = position.m_as(self["position"].unit)
        self._go(TRANSLATION, target=self._to_lab(TRANSLATION, numbers))

    def _set_orientation(self, orientation: Any) -> None:
        numbers = orientation.m_as(self["orientation"].unit)
        self._go(ROTATION, target=self._to_lab(ROTATION, numbers))

    @async_
    def move(self, delta: Any) -> None:
        """Return a future of moving by the 3-vector ``delta`` (lengths) from where the axes are.

        Components are 0 (or NaN) for coordinates without a translation
        axis. Everything is checked before any motor moves (see the module
        documentation); the axes then move together.

        :raises UnitError, LimitError, WriteAccessError, LockError, StateError:
            (in the future) ``delta`` is refused; nothing moved.
        """
        with calling(self, lambda: _described(self, "move", delta)):
            self._relative(TRANSLATION, delta, "move by")

    @async_
    def rotate(self, delta: Any) -> None:
        """Return a future of turning the rotation axes by the 3-vector of angles ``delta``.

        Components are 0 (or NaN) for coordinates without a rotation axis;
        checked and run as :meth:`move`.
        """
        with calling(self, lambda: _described(self, "rotate", delta)):
            self._relative(ROTATION, delta, "rotate by")

    def _step(self, method: Callable, index: int, sign: int, value: Any) -> None:
        with calling(self, lambda: describe_call(method, (self, value), {})):
            parameter = self["position"]
            unit = parameter.unit
            if not isinstance(value, q.Quantity) or not same_kind(value._units, unit._units):
                raise UnitError(
                    f"{current_call(self)}: {describe_value(value)} is not a quantity in {unit:~P} "
                    f"(write e.g. 1 * q.{format(unit, '~')})"
                )
            zero = q.Quantity(0.0, unit)
            delta = [zero, zero, zero]
            delta[index] = value
            numbers = parameter.convert(delta, "move by")
            numbers[index] *= sign
            self._check_components(parameter.name, TRANSLATION, numbers)
            self._go(TRANSLATION, delta=self._to_lab(TRANSLATION, numbers))

    @async_
    def right(self, value: Any) -> None:
        """Return a future of moving by ``value`` (a length) towards +x, to the right on the detector."""
        self._step(Positioner.right, 0, 1, value)

    @async_
    def left(self, value: Any) -> None:
        """Return a future of moving by ``value`` (a length) towards -x, to the left on the detector."""
        self._step(Positioner.left, 0, -1, value)

    @async_
    def up(self, value: Any) -> None:
        """Return a future of moving by ``value`` (a length) towards +y, upwards."""
        self._step(Positioner.up, 1, 1, value)

    @async_
    def down(self, value: Any) -> None:
        """Return a future of moving by ``value`` (a length) towards -y, downwards."""
        self._step(Positioner.down, 1, -1, value)

    @async_
    def forward(self, value: Any) -> None:
        """Return a future of moving by ``value`` (a length) towards +z: downstream, towards the detector."""
        self._step(Positioner.forward, 2, 1, value)

    @async_
    def back(self, value: Any) -> None:
        """Return a future of moving by ``value`` (a length) towards -z: upstream, towards the source."""
        self._step(Positioner.back, 2, -1, value)

    @async_
    def stop(self) -> None:
        """Return a future of stopping every motor; a motion under way ends normally, part-way.

        Always allowed; does nothing at rest. Never waits for the positioner's
        own motions or locks.
        """
        wait([axis.motor.stop() for axis in self._axes])

    # -- stopping everything --------------------------------------------------------------------

    def _abort(self) -> None:
        # The running motion's stop action has asked its motor moves to stop; this stops the
        # motors themselves (also motions the positioner did not start). Every motor is stopped
        # even when one fails.
        wait([axis.motor.stop() for axis in self._axes])

    def _emergency_stop(self) -> None:
        first: Optional[BaseException] = None
        for axis in self._axes:
            try:
                axis.motor.emergency_stop()
            except Exception as error:  # the other motors must still be stopped
                first = first or error
        if first is not None:
            raise first


def _starter(func: Callable[[Any], Future], argument: Any) -> Callable[[], Future]:
    return lambda: func(argument)
