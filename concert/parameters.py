"""Parameters: named, checked, lockable values of a device.

A :class:`Parameter` is declared on a class like a property; its accessors are
``fget``/``fset``/``fget_target`` or, by convention, the methods
``_get_<name>``, ``_set_<name>`` and ``_get_target_<name>``::

    class Pump(Device):
        flow_rate = Quantity(q.l / q.min, lower=0 * q.l / q.min, upper=10 * q.l / q.min)

        def _get_flow_rate(self): ...
        def _set_flow_rate(self, rate): ...

``pump.flow_rate`` reads in the calling thread, ``pump.flow_rate = 2 * q.l / q.min``
writes in the calling thread (errors are raised there);
``pump['flow_rate'].set(...)`` and ``pump.set_flow_rate(...)`` return futures.

A write goes through, in this order, and stops at the first failure, leaving
the device untouched: the write lock (:class:`~concert.exceptions.LockError`),
the presence of a setter (:class:`~concert.exceptions.WriteAccessError`), the
value -- unit, finiteness, soft and external limits for quantities
(:class:`~concert.exceptions.UnitError`, :class:`~concert.exceptions.LimitError`),
membership for a :class:`Selection` (:class:`~concert.exceptions.WriteAccessError`)
--, exclusive access (waiting for other owners' ``with`` blocks, see
:mod:`concert.locking`), the state check (:class:`~concert.exceptions.StateError`)
and only then the setter. A successful write sends ``'changed'`` with the
parameter value as sender.

When ``data`` is given to a parameter, accessors receive it as an extra last
argument, so one accessor can serve several parameters.

:class:`Selection` is a parameter restricted to a fixed set of values, and
:class:`RunnableParameterizable` a collection of parameters with a ``run()``
returning a future (both from the legacy API).
"""

from __future__ import annotations

import abc
import difflib
import enum
import functools
import itertools
import math
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, Iterable, Iterator, List, Optional, Tuple

from concert.checks import is_quantity
from concert.dispatcher import dispatcher
from concert.exceptions import (
    AccessorNotImplementedError,
    HardLimitError,
    LimitError,
    LockError,
    ParameterDefinitionError,
    ParameterError,
    ParameterNameError,
    ReadAccessError,
    SoftLimitError,
    UnitError,
    WriteAccessError,
)
from concert.futures import Future, async_
from concert.interrupts import protected
from concert.locking import ExclusiveLock
from concert.magnitudes import real_number, same_kind
from concert.naming import calling, describe_value, instance_name
from concert.operations import device_call
from concert.polling import busy_wait
from concert.quantities import q

if TYPE_CHECKING:
    from prettytable import PrettyTable

__all__ = [
    "Parameter",
    "ParameterValue",
    "Parameterizable",
    "ParameterizableType",
    "Quantity",
    "QuantityValue",
    "RunnableParameterizable",
    "Selection",
    "SelectionValue",
]

#: How similar (difflib ratio) a name must be to a parameter's to be taken for a misspelling of it.
_CLOSE = 0.8


class Parameter:
    """A parameter declared on a :class:`Parameterizable` class (see the module documentation).

    ``fget(instance)``, ``fset(instance, value)`` and ``fget_target(instance)``
    are the accessors; missing ones are looked up as ``_get_<name>`` etc.
    ``check`` is a :func:`concert.states.check` applied to every write.
    ``help`` describes the parameter.
    """

    value_class: type = None  # set below, once ParameterValue exists

    def __init__(
        self,
        fget: Optional[Callable] = None,
        fset: Optional[Callable] = None,
        fget_target: Optional[Callable] = None,
        data: Any = None,
        check: Optional[Callable] = None,
        help: Optional[str] = None,
    ) -> None:
        self.fget = fget
        self.fset = fset
        self.fget_target = fget_target
        self.data = data
        self.check = check
        self.help = help
        self.name: Optional[str] = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        return instance._parameter_values[self.name].read()

    def __set__(self, instance: Any, value: Any) -> None:
        instance._parameter_values[self.name].write(value)


class ParameterValue:
    """The value side of a :class:`Parameter` on one instance: ``device['name']``.

    ``device['name'] is device['name']`` always holds, so a parameter value can
    be a Dispatcher sender and a ``with`` target.
    """

    def __init__(self, instance: Parameterizable, parameter: Parameter) -> None:
        self._instance = instance
        self._parameter = parameter
        self.name: str = parameter.name
        self._label = f"{instance!r}[{parameter.name!r}]"
        self._lock = ExclusiveLock(self._label)
        # Write protection; plain flags, changed only by lock()/unlock().
        self._write_locked = False
        self._permanent = False
        self._stashed: List[Any] = []  # list.append/pop are atomic
        self._getter = self._accessor(parameter.fget, "_get_")
        self._target_getter = self._accessor(parameter.fget_target, "_get_target_")
        raw_setter = self._accessor(parameter.fset, "_set_")
        if raw_setter is not None and parameter.check is not None:

            def write(_instance: Any, value: Any) -> None:
                raw_setter(value)

            write.__name__ = f"_set_{parameter.name}"  # (messages name the write instead, see write())
            self._setter = functools.partial(parameter.check(write), instance)
        else:
            self._setter = raw_setter

    def _accessor(self, given: Optional[Callable], prefix: str) -> Optional[Callable]:
        if given is not None:
            accessor = functools.partial(given, self._instance)
        else:
            accessor = getattr(self._instance, prefix + self._parameter.name, None)
            if accessor is None:
                return None
        if self._parameter.data is not None:
            data = self._parameter.data
            return lambda *args: accessor(*args, data)
        return accessor

    def __repr__(self) -> str:
        return self._label  # LinearMotor#1['position'], as messages and future names show it

    # -- description ---------------------------------------------------------------

    @property
    def help(self) -> Optional[str]:
        """The parameter's description."""
        return self._parameter.help

    @property
    def data(self) -> Any:
        """The ``data`` the parameter was declared with."""
        return self._parameter.data

    @property
    def writable(self) -> bool:
        """Whether the parameter has a setter (independently of :attr:`locked`)."""
        return self._setter is not None

    @property
    def readable(self) -> bool:
        """Whether the parameter has a getter."""
        return self._getter is not None

    @property
    def target_readable(self) -> bool:
        """Whether the parameter has a target getter (``fget_target`` or ``_get_target_<name>``)."""
        return self._target_getter is not None

    @property
    def target(self) -> Any:
        """The target value, read in the calling thread (blocking); see :meth:`read_target`.

        :raises ReadAccessError: if the parameter has no target getter
            (:attr:`target_readable` is false), naming the device and the parameter.
        """
        return self.read_target()

    @property
    def info_table(self) -> PrettyTable:
        """A table describing the parameter, for printing: ``print(motor['position'].info_table)``.

        A :class:`prettytable.PrettyTable` with the columns ``Attribute`` and
        ``Value`` and one row each for the name, the current value (read in
        the calling thread; an error reading it is shown in its place, as
        ``str(device)`` does), for quantities the unit and the limits a write
        must respect (:attr:`QuantityValue.lower`, :attr:`QuantityValue.upper`),
        for selections the allowed values, then whether the parameter is
        locked, and its help. Values are shown with short unit symbols
        (``2.0 mm``).
        """
        from prettytable import PrettyTable

        table = PrettyTable(["Attribute", "Value"])
        table.align = "l"
        for row in self._info_rows():
            table.add_row(list(row))
        return table

    def _info_rows(self) -> List[Tuple[str, str]]:
        """The rows of :attr:`info_table`; subclasses insert theirs after the value."""
        value = _shown_reading(self.read) if self.readable else "<cannot be read>"
        rows = [("name", self.name), ("value", value)]
        rows.extend(self._extra_info_rows())
        rows.append(("locked", "yes" if self.locked else "no"))
        rows.append(("help", self.help or ""))
        return rows

    def _extra_info_rows(self) -> List[Tuple[str, str]]:
        return []

    # -- blocking access in the calling thread ----------------------------------------

    def read(self) -> Any:
        """Read the value in the calling thread and return it.

        :raises ReadAccessError: if the parameter has no getter.
        """
        getter = self._getter
        if getter is None:
            raise ReadAccessError(f"{self._label} cannot be read: it has no getter")
        try:
            value = getter()
        except AccessorNotImplementedError as error:
            raise ReadAccessError(f"{self._label} cannot be read: {error}") from error
        return self._from_device(value)

    def read_target(self) -> Any:
        """Read the target value in the calling thread.

        :raises ReadAccessError: if the parameter has no target getter.
        """
        getter = self._target_getter
        if getter is None:
            raise ReadAccessError(
                f"{self._label} has no target value: it has no target getter "
                f"(fget_target, or a method _get_target_{self.name}())"
            )
        try:
            value = getter()
        except AccessorNotImplementedError as error:
            raise ReadAccessError(f"{self._label} has no target: {error}") from error
        return self._from_device(value)

    def write(self, value: Any) -> None:
        """Write ``value`` in the calling thread; the checks of the module documentation apply.

        Messages name the write as the user made it, e.g.
        ``Camera#1.exposure_time = 2 ms is not allowed in state 'recording'``.

        :raises LockError: the parameter is write-locked, or exclusive access failed.
        :raises WriteAccessError: the parameter has no setter.
        :raises UnitError, LimitError: for quantities, a bad value.
        :raises StateError: the device's state does not allow the write.
        """
        describe = functools.partial(self._describe_write, value)
        with calling(self._instance, describe):
            if self._write_locked:
                raise LockError(
                    f"{self._label} is locked for writing; refusing to set it to {describe_value(value)}"
                )
            setter = self._setter
            if setter is None:
                raise WriteAccessError(
                    f"{self._label} cannot be written (to {describe_value(value)}): it has no setter"
                )
            checked = self._validate(value)
            with device_call(self._instance, describe, (self._lock,)):
                try:
                    setter(checked)
                except AccessorNotImplementedError as error:
                    raise WriteAccessError(
                        f"{self._label} cannot be written (to {describe_value(value)}): {error}"
                    ) from error
        dispatcher.send(self, "changed")

    def _describe_write(self, value: Any) -> str:
        return f"{instance_name(self._instance)}.{self.name} = {describe_value(value)}"

    def _validate(self, value: Any) -> Any:
        return value

    def _from_device(self, value: Any) -> Any:
        return value

    # -- futures ---------------------------------------------------------------------------

    @async_
    def get(self, wait_on: Optional[Future] = None) -> Any:
        """Return a future of the value; first wait for ``wait_on`` if given."""
        if wait_on is not None:
            wait_on.join()
        return self.read()

    @async_
    def get_target(self, wait_on: Optional[Future] = None) -> Any:
        """Return a future of the target value; first wait for ``wait_on`` if given."""
        if wait_on is not None:
            wait_on.join()
        return self.read_target()

    @async_
    def set(self, value: Any, wait_on: Optional[Future] = None) -> None:
        """Return a future of writing ``value`` (see :meth:`write`); first wait for ``wait_on``."""
        if wait_on is not None:
            wait_on.join()
        self.write(value)

    @async_
    def stash(self) -> None:
        """Push the current value onto this parameter's stack (writable parameters only)."""
        if self.writable and self.readable:
            self._stashed.append(self.read())

    @async_
    def restore(self) -> None:
        """Write back the value last stashed; does nothing if nothing is stashed.

        The value leaves the stack only once it has been written: after a
        refused write it is still there to restore later.
        """
        try:
            value = self._stashed[-1]
        except IndexError:
            return
        self.write(value)
        self._stashed.pop()

    @async_
    def wait(self, value: Any, sleep_time: Any = None, timeout: Any = None) -> None:
        """Return a future that finishes once the parameter reads ``value``.

        ``sleep_time`` (default 0.1 s) is the polling interval, ``timeout``
        the longest wait (:class:`~concert.exceptions.WaitError` after it).
        """

        def reached() -> bool:
            return self.read() == value

        reached.__qualname__ = f"{self._label} == {describe_value(value)}"
        busy_wait(reached, sleep_time, timeout)

    # -- write protection --------------------------------------------------------------

    def lock(self, permanent: bool = False) -> None:
        """Refuse writes from now on; a ``permanent`` lock can never be undone."""
        self._write_locked = True
        self._permanent = self._permanent or permanent

    def unlock(self) -> None:
        """Allow writes again.

        :raises LockError: if the lock is permanent.
        """
        if self._permanent:
            raise LockError(f"{self._label} is locked permanently and cannot be unlocked")
        self._write_locked = False

    @property
    def locked(self) -> bool:
        """Whether writes are refused."""
        return self._write_locked

    # -- exclusive access -------------------------------------------------------------------

    @protected
    def __enter__(self) -> ParameterValue:
        self._lock.__enter__()
        return self

    @protected
    def __exit__(self, *exc_info: object) -> None:
        self._lock.__exit__(*exc_info)

    async def __aenter__(self) -> ParameterValue:
        await self._lock.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._lock.__aexit__(*exc_info)


Parameter.value_class = ParameterValue


def _shown(value: Any) -> str:
    """``value`` as the tables show it: ``2.0 mm`` for quantities, an enum member's name, else ``str``."""
    if isinstance(value, q.Quantity):
        return f"{value:~}"
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


def _shown_reading(read: Callable[[], Any]) -> str:
    """What ``read()`` returns, shown; an error instead of a value is shown in its place."""
    try:
        return _shown(read())
    except Exception as error:  # a table must show every parameter, even a failing one
        return f"<{type(error).__name__}: {error}>"


def _as_unit(unit: Any) -> Any:
    if isinstance(unit, q.Unit):
        return unit
    if isinstance(unit, q.Quantity):
        return unit.units
    if isinstance(unit, str):
        return q.Unit(unit)
    raise UnitError(f"{unit!r} is not a unit (use e.g. q.mm)")


class Quantity(Parameter):
    """A :class:`Parameter` holding a physical quantity in ``unit``.

    ``lower``/``upper`` are the default soft limits (per instance, see
    :class:`QuantityValue`); ``external_lower_getter(instance)`` and
    ``external_upper_getter(instance)`` report limits of the hardware itself;
    ``user_*_getter/setter`` store the soft limits somewhere else than in
    the instance (in the hardware, say).
    """

    def __init__(
        self,
        unit: Any,
        fget: Optional[Callable] = None,
        fset: Optional[Callable] = None,
        fget_target: Optional[Callable] = None,
        lower: Any = None,
        upper: Any = None,
        data: Any = None,
        check: Optional[Callable] = None,
        external_lower_getter: Optional[Callable] = None,
        external_upper_getter: Optional[Callable] = None,
        user_lower_getter: Optional[Callable] = None,
        user_lower_setter: Optional[Callable] = None,
        user_upper_getter: Optional[Callable] = None,
        user_upper_setter: Optional[Callable] = None,
        help: Optional[str] = None,
    ) -> None:
        super().__init__(fget=fget, fset=fset, fget_target=fget_target, data=data, check=check, help=help)
        self.unit = _as_unit(unit)
        self.lower = lower
        self.upper = upper
        self.external_lower_getter = external_lower_getter
        self.external_upper_getter = external_upper_getter
        self.user_lower_getter = user_lower_getter
        self.user_lower_setter = user_lower_setter
        self.user_upper_getter = user_upper_getter
        self.user_upper_setter = user_upper_setter


class QuantityValue(ParameterValue):
    """The value side of a :class:`Quantity`: adds units, limits and tolerance waits.

    Every value -- a write, a soft limit, a ``move()`` distance, a ``wait()``
    tolerance -- goes through one conversion, :meth:`_convert`, before any
    accessor runs:

    * it must be a quantity of this registry whose unit converts to the
      parameter's unit, else :class:`~concert.exceptions.UnitError`. Bare
      numbers are accepted only when the parameter's unit is
      ``q.dimensionless``; angles are not plain numbers (``90`` or
      ``2 * q.dimensionless`` for a position in degrees is refused: write
      ``90 * q.deg``), nor is ``rad/s`` a ``Hz`` (see
      :func:`concert.magnitudes.same_kind`);
    * its magnitude must be one real number (see
      :func:`concert.magnitudes.real_number`): ints, floats, numpy scalars
      of every width, ``Fraction``, ``Decimal``, 0-d and 1-element arrays
      are turned into a float; strings, bools, complex numbers and other
      arrays are refused (:class:`~concert.exceptions.UnitError`), numbers
      too large for a float too (:class:`~concert.exceptions.LimitError`);
    * it must not be NaN, nor infinite (limits may be infinite)
      (:class:`~concert.exceptions.LimitError`).

    The result is a quantity in the parameter's unit with a ``float``
    magnitude. A write must then lie within the soft limits
    (:class:`~concert.exceptions.SoftLimitError`) and the external limits
    (:class:`~concert.exceptions.HardLimitError`).
    """

    _parameter: Quantity

    def __init__(self, instance: Parameterizable, parameter: Quantity) -> None:
        super().__init__(instance, parameter)
        self._unit = parameter.unit
        self._units = parameter.unit._units  # the UnitsContainer, compared on every write
        self._plain = not self._units  # q.dimensionless: bare numbers are fine
        # as messages show units: mm/s, m²; a dimensionless one by name, so that no message ends in ""
        self._symbol = format(self._unit, "~P") or "dimensionless"
        self._code = format(self._unit, "~")  # as code writes them: q.Quantity(2, 'mm / s')
        self._limits_locked = False
        self._limits_permanent = False
        self._magnitudes: Dict[int, Tuple[Any, float]] = {}  # see _magnitude(); dict ops are atomic
        self._lower = None if parameter.lower is None else self._limit(parameter.lower, "lower limit")
        self._upper = None if parameter.upper is None else self._limit(parameter.upper, "upper limit")

    @property
    def unit(self) -> Any:
        """The unit values are converted to."""
        return self._unit

    def _convert(self, value: Any, what: str = "value", infinite: bool = False) -> Any:
        """Return ``value`` in the parameter's unit with a float magnitude (see the class documentation).

        ``what`` names the value in messages (``'lower limit'``, ``'move by'``);
        ``infinite`` allows infinities (for limits).

        :raises UnitError: not a quantity of the right kind, or not one real number.
        :raises LimitError: NaN, infinite (unless allowed), or too large for a float.
        """
        if isinstance(value, q.Quantity):
            magnitude, units = value._magnitude, value._units
            if type(magnitude) is float and units == self._units and math.isfinite(magnitude):
                return value  # the common case: nothing to do
            number = self._real(magnitude, value, what)
            if units != self._units:
                if not same_kind(units, self._units):
                    if not units:  # 2 * q.dimensionless for an angle: a bare number in disguise
                        raise UnitError(self._not_a_quantity(value, what, number))
                    raise UnitError(
                        f"{self._prefix(what)}{describe_value(value)} cannot be expressed in {self._symbol}"
                    )
                try:
                    number = float(q.Quantity(number, units).m_as(self._unit))
                except Exception as error:  # an offset unit that does not convert, say
                    raise UnitError(
                        f"{self._prefix(what)}{describe_value(value)} cannot be expressed in "
                        f"{self._symbol}: {error}"
                    ) from None
        elif self._plain and not is_quantity(value):
            number = self._real(value, value, what)
        else:
            raise UnitError(self._not_a_quantity(value, what))
        if number != number or (not infinite and number in _INFINITIES):
            advice = " (None means no limit)" if infinite else ""
            raise LimitError(f"{self._prefix(what)}{describe_value(value)} is not a finite number{advice}")
        return q.Quantity(number, self._unit)

    def _prefix(self, what: str) -> str:
        return f"{self._label}: " if what == "value" else f"{self._label}: {what} "

    def _real(self, magnitude: Any, value: Any, what: str) -> float:
        try:
            return real_number(magnitude)
        except (UnitError, LimitError) as error:
            raise type(error)(f"{self._prefix(what)}{describe_value(value)} {error}") from None

    def _not_a_quantity(self, value: Any, what: str, number: Optional[float] = None) -> str:
        """The message refusing a bare number (or a plain-number quantity): how to write it instead."""
        shown = describe_value(value)
        symbol = self._symbol
        if is_quantity(value) and not isinstance(value, q.Quantity):
            return (
                f"{self._prefix(what)}{shown} is a quantity of another pint registry, "
                f"not one in {symbol} (use concert.quantities.q)"
            )
        if number is None:
            try:
                number = real_number(value)
            except (UnitError, LimitError):
                number = 2.0
        example = f"{number:g}" if math.isfinite(number) else "2"
        code = self._code
        example = f"{example} * q.{code}" if code.isidentifier() else f"q.Quantity({example}, {code!r})"
        return f"{self._prefix(what)}{shown} is not a quantity in {symbol} (write e.g. {example})"

    def _limit(self, value: Any, what: str) -> Any:
        return self._convert(value, what, infinite=True)

    def _validate(self, value: Any) -> Any:
        converted = self._convert(value)
        number = converted._magnitude
        # Limits are compared as plain numbers in the parameter's unit (pint comparisons are
        # slow), written so that a NaN limit refuses instead of letting everything through.
        lower, upper = self._soft_lower(), self._soft_upper()
        if lower is not None and not number >= self._magnitude(lower, "soft lower limit"):
            raise SoftLimitError(self._outside(value, converted, "below the soft limit", lower))
        if upper is not None and not number <= self._magnitude(upper, "soft upper limit"):
            raise SoftLimitError(self._outside(value, converted, "above the soft limit", upper))
        parameter = self._parameter
        if parameter.external_lower_getter is not None:
            limit = parameter.external_lower_getter(self._instance)
            if limit is not None and not number >= self._magnitude(limit, "hardware lower limit"):
                raise HardLimitError(self._outside(value, converted, "below the hardware limit", limit))
        if parameter.external_upper_getter is not None:
            limit = parameter.external_upper_getter(self._instance)
            if limit is not None and not number <= self._magnitude(limit, "hardware upper limit"):
                raise HardLimitError(self._outside(value, converted, "above the hardware limit", limit))
        return converted

    def _outside(self, value: Any, converted: Any, where: str, limit: Any) -> str:
        shown = describe_value(value)
        in_unit = describe_value(converted)
        if in_unit != shown:
            shown = f"{shown} (= {in_unit})"
        return f"{self._label}: {shown} is {where} {describe_value(limit)}"

    def _magnitude(self, limit: Any, what: str) -> float:
        """``limit`` as a number in the parameter's unit, remembering the last few conversions.

        :raises UnitError, LimitError: the limit itself is no quantity of the right kind, or NaN.
        """
        cache = self._magnitudes
        key = id(limit)
        cached = cache.get(key)
        if cached is not None and cached[0] is limit:
            return cached[1]
        magnitude = self._limit(limit, what)._magnitude
        if len(cache) > 8:
            cache.clear()
        cache[key] = (limit, magnitude)  # keeps `limit` alive, so its id cannot be reused
        return magnitude

    def _from_device(self, value: Any) -> Any:
        if isinstance(value, q.Quantity):
            return value
        return q.Quantity(value, self._unit)

    # -- soft limits ----------------------------------------------------------------------

    def _check_limits_unlocked(self, what: str, value: Any) -> None:
        if self._limits_locked:
            raise LockError(
                f"{self._label}: limits are locked; refusing to set the {what} limit "
                f"to {describe_value(value)}"
            )

    def _soft_lower(self) -> Any:
        getter = self._parameter.user_lower_getter
        return getter(self._instance) if getter is not None else self._lower

    def _soft_upper(self) -> Any:
        getter = self._parameter.user_upper_getter
        return getter(self._instance) if getter is not None else self._upper

    def _tighter(self, soft: Any, getter: Optional[Callable], side: str) -> Any:
        """The tighter of the soft limit and the hardware one on ``side`` (``'lower'``/``'upper'``)."""
        if getter is None:
            return soft
        hard = getter(self._instance)
        if hard is None:
            return soft
        hard = self._limit(hard, f"hardware {side} limit")
        if soft is None:
            return hard
        soft_number = self._magnitude(soft, f"soft {side} limit")
        tighter = hard._magnitude > soft_number if side == "lower" else hard._magnitude < soft_number
        return hard if tighter else soft

    @property
    def lower(self) -> Any:
        """The lowest value a write may have: the soft limit or the hardware one, whichever is higher.

        Reading it asks ``external_lower_getter`` (if given) and returns the
        tighter of the two limits; when only one of them is set, that one;
        ``None`` only when neither is. So it never returns ``None`` while
        the hardware reports a lower limit.

        Setting it sets the *soft* limit (the hardware one is not the user's
        to change): the value is converted as a write is
        (:class:`~concert.exceptions.UnitError` for a bare number or a wrong
        unit, :class:`~concert.exceptions.LimitError` for NaN); ``None``
        switches the soft limit off. It cannot exceed :attr:`upper`
        (:class:`~concert.exceptions.LimitError`). After setting a soft
        limit looser than the hardware's, :attr:`lower` still reports the
        hardware's.
        """
        return self._tighter(self._soft_lower(), self._parameter.external_lower_getter, "lower")

    @lower.setter
    def lower(self, value: Any) -> None:
        self._check_limits_unlocked("lower", value)
        if value is not None:
            value = self._limit(value, "lower limit")
            upper = self.upper
            if upper is not None and value._magnitude > self._magnitude(upper, "soft upper limit"):
                raise LimitError(
                    f"{self._label}: lower limit {describe_value(value)} above the upper limit "
                    f"{describe_value(upper)}"
                )
        setter = self._parameter.user_lower_setter
        if setter is not None:
            setter(self._instance, value)
        self._lower = value  # what `lower` reports unless a user getter is given

    @property
    def upper(self) -> Any:
        """The highest value a write may have: the soft limit or the hardware one, whichever is lower.

        The mirror image of :attr:`lower`: setting it sets the soft limit,
        which cannot be below :attr:`lower`.
        """
        return self._tighter(self._soft_upper(), self._parameter.external_upper_getter, "upper")

    @upper.setter
    def upper(self, value: Any) -> None:
        self._check_limits_unlocked("upper", value)
        if value is not None:
            value = self._limit(value, "upper limit")
            lower = self.lower
            if lower is not None and value._magnitude < self._magnitude(lower, "soft lower limit"):
                raise LimitError(
                    f"{self._label}: upper limit {describe_value(value)} below the lower limit "
                    f"{describe_value(lower)}"
                )
        setter = self._parameter.user_upper_setter
        if setter is not None:
            setter(self._instance, value)
        self._upper = value  # what `upper` reports unless a user getter is given

    def _extra_info_rows(self) -> List[Tuple[str, str]]:
        return [
            ("unit", format(self._unit, "~") or "dimensionless"),
            ("lower", _shown_reading(lambda: self.lower)),
            ("upper", _shown_reading(lambda: self.upper)),
        ]

    def lock_limits(self, permanent: bool = False) -> None:
        """Refuse changes of the soft limits; a ``permanent`` lock can never be undone."""
        self._limits_locked = True
        self._limits_permanent = self._limits_permanent or permanent

    def unlock_limits(self) -> None:
        """Allow changes of the soft limits again.

        :raises LockError: if the limits are locked permanently.
        """
        if self._limits_permanent:
            raise LockError(f"{self._label}: limits are locked permanently")
        self._limits_locked = False

    @async_
    def wait(self, value: Any, eps: Any = None, sleep_time: Any = None, timeout: Any = None) -> None:
        """Return a future that finishes once the value is within ``eps`` of ``value``.

        Without ``eps`` the value must compare equal.
        """
        target = self._convert(value, "wait for")
        tolerance = None if eps is None else self._convert(eps, "eps")

        def reached() -> bool:
            current = self.read()
            return current == target if tolerance is None else abs(current - target) <= tolerance

        shown = describe_value(target)
        if tolerance is not None:
            shown += f" ± {describe_value(tolerance)}"
        reached.__qualname__ = f"{self._label} == {shown}"
        busy_wait(reached, sleep_time, timeout)


Quantity.value_class = QuantityValue

#: How many allowed values a refusal lists before it says how many there are in all.
_VALUES_SHOWN = 10


class Selection(Parameter):
    """A :class:`Parameter` whose value is one of a fixed set: ``Selection(range(3))``.

    ``iterable`` is read once, when the class is defined; its items, in the
    order given, are the allowed values (:attr:`SelectionValue.values`).
    Writing any other value raises
    :class:`~concert.exceptions.WriteAccessError`, naming the device, the
    parameter, the value and the allowed values, before any accessor runs;
    the device is left as it was. A value is allowed when it equals one of
    the set (``1.0`` and ``numpy.int64(1)`` for ``1``; ``True`` is not
    ``1``), and the setter receives that member of the set. Reads are not
    checked. The other arguments are those of :class:`Parameter`.

    :raises ParameterDefinitionError: ``iterable`` is not iterable, is a
        string (whose items would be its letters), or has no items.
    """

    def __init__(
        self,
        iterable: Iterable[Any],
        fget: Optional[Callable] = None,
        fset: Optional[Callable] = None,
        fget_target: Optional[Callable] = None,
        data: Any = None,
        check: Optional[Callable] = None,
        help: Optional[str] = None,
    ) -> None:
        if isinstance(iterable, (str, bytes)):
            raise ParameterDefinitionError(
                f"Selection({iterable!r}): a string is not a set of values; "
                f"list them instead, e.g. Selection([{iterable!r}])"
            )
        try:
            values = tuple(iterable)
        except TypeError:
            raise ParameterDefinitionError(
                f"Selection({describe_value(iterable)}): the allowed values must be given as an "
                "iterable, e.g. Selection(range(3)) or Selection(['5x', '10x'])"
            ) from None
        if not values:
            raise ParameterDefinitionError(
                f"Selection({describe_value(iterable)}): there are no values to select from; "
                "give at least one, e.g. Selection(range(3))"
            )
        super().__init__(fget=fget, fset=fset, fget_target=fget_target, data=data, check=check, help=help)
        self.values: Tuple[Any, ...] = values


def _same_value(allowed: Any, value: Any) -> bool:
    """Whether ``value`` stands for the allowed value ``allowed`` (equal, and a bool only for a bool)."""
    if allowed is value:
        return True
    if isinstance(allowed, bool) != isinstance(value, bool):
        return False  # True == 1, but a switch is not a channel number
    try:
        return bool(allowed == value)
    except Exception:  # arrays, values that refuse to be compared: not the same
        return False


class SelectionValue(ParameterValue):
    """The value side of a :class:`Selection`: :attr:`values` and the check of every write."""

    _parameter: Selection

    @property
    def values(self) -> List[Any]:
        """The allowed values, in the order the :class:`Selection` was given them.

        A new list on every read: changing it changes nothing.
        """
        return list(self._parameter.values)

    def _validate(self, value: Any) -> Any:
        for allowed in self._parameter.values:
            if _same_value(allowed, value):
                return allowed
        raise WriteAccessError(
            f"{self._label} cannot be set to {describe_value(value)}: "
            f"it is not one of the allowed values {self._allowed_text()}"
        )

    def _allowed_text(self) -> str:
        values = self._parameter.values
        shown = ", ".join(describe_value(allowed) for allowed in values[:_VALUES_SHOWN])
        if len(values) > _VALUES_SHOWN:
            shown += f", ... ({len(values)} values in all)"
        return shown

    def _extra_info_rows(self) -> List[Tuple[str, str]]:
        return [("values", ", ".join(_shown(allowed) for allowed in self._parameter.values))]


Selection.value_class = SelectionValue

_INFINITIES = (math.inf, -math.inf)


class ParameterizableType(abc.ABCMeta):
    """The metaclass of :class:`Parameterizable`: it marks an instance constructed once ``__init__`` returned.

    Derived from :class:`abc.ABCMeta`, so that a device class may also
    derive from :class:`abc.ABC`.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__call__(*args, **kwargs)
        if isinstance(instance, Parameterizable):
            instance.__dict__["_concert_constructed"] = True
        return instance


class Parameterizable(metaclass=ParameterizableType):
    """A collection of parameters: iterate it, index it by name, read and write attributes.

    ``obj['name']`` is the :class:`ParameterValue`; iterating yields them
    sorted by name; ``obj.get_<name>()`` and ``obj.set_<name>(value)`` return
    futures.

    Misspelt parameter names raise instead of doing nothing: once the object
    is constructed (every ``__init__`` of its classes has returned), writing
    a public attribute (no leading underscore) that neither the instance nor
    its class has, and whose name is close to a parameter's (``positon``
    for ``position``) or shortens it (``exposure`` for ``exposure_time``,
    ``pos`` for ``position``), raises :class:`~concert.exceptions.ParameterNameError`
    (an :class:`AttributeError`) suggesting the parameter. Every other
    attribute write works as for any object: private ``_x`` attributes,
    attributes the class declares (in its body, properties), attributes set
    in any ``__init__``, and new attributes whose names are not close to a
    parameter's. Reading a missing attribute close to a parameter's name
    suggests it too.
    """

    _concert_parameters: ClassVar[Dict[str, Parameter]] = {}
    _instance_numbers: ClassVar[Dict[str, Iterator[int]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        parameters: Dict[str, Parameter] = {}
        for klass in reversed(cls.__mro__):
            for name, attribute in vars(klass).items():
                if isinstance(attribute, Parameter):
                    parameters[name] = attribute
                elif name in parameters:
                    del parameters[name]  # overridden by something that is not a parameter
        cls._concert_parameters = parameters

    def __init__(self) -> None:
        numbers = Parameterizable._instance_numbers.setdefault(type(self).__name__, itertools.count(1))
        self._number = next(numbers)
        self._parameter_values: Dict[str, ParameterValue] = {}
        for name, parameter in self._concert_parameters.items():
            self._parameter_values[name] = parameter.value_class(self, parameter)

    def __repr__(self) -> str:
        return f"{type(self).__name__}#{getattr(self, '_number', '?')}"

    def __getitem__(self, name: str) -> ParameterValue:
        try:
            return self._parameter_values[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._parameter_values)) or "none"
            close = self._closest_parameter(name) if isinstance(name, str) else None
            hint = f"; did you mean {close!r}?" if close is not None else ""
            raise ParameterError(f"{self!r} has no parameter {name!r}{hint} (it has: {known})") from None

    def __contains__(self, name: str) -> bool:
        return name in self._parameter_values

    def __iter__(self) -> Iterator[ParameterValue]:
        return iter([self._parameter_values[name] for name in sorted(self._parameter_values)])

    def __getattr__(self, attribute: str) -> Any:
        # Only reached when normal lookup fails: get_<name>() and set_<name>(value).
        prefix = attribute[:4] if attribute[:4] in ("get_", "set_") else ""
        if prefix:
            values = self.__dict__.get("_parameter_values", {})
            value = values.get(attribute[4:])
            if value is not None:
                return value.get if prefix == "get_" else value.set
        if attribute[:1] != "_":
            close = self._closest_parameter(attribute[len(prefix) :])
            if close is not None:
                raise ParameterNameError(
                    f"{self!r} has no attribute {attribute!r}; did you mean {prefix + close!r}?"
                )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attribute!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        # The rule of the class documentation; the fast paths first.
        if name[:1] != "_" and name not in self.__dict__ and self.__dict__.get("_concert_constructed"):
            if not hasattr(type(self), name):
                close = self._closest_parameter(name)
                if close is not None:
                    raise ParameterNameError(
                        f"{self!r} has no parameter {name!r}; did you mean {close!r}? "
                        f"(refusing to set {name!r} to {describe_value(value)}; an attribute of that "
                        "name must be declared on the class or set in __init__)"
                    )
        super().__setattr__(name, value)

    def _closest_parameter(self, name: str) -> Optional[str]:
        """The parameter ``name`` most likely means, or ``None``.

        A misspelling (``positon``: difflib ratio at least ``_CLOSE``, any
        case), or a shortening: ``name`` (three letters or more) starts a
        parameter's name or is one of its words (``exposure`` and ``time`` for
        ``exposure_time``, ``pos`` for ``position``, ``flow`` for ``flow_rate``).
        """
        names = list(self.__dict__.get("_parameter_values", ()))
        lowered = name.lower()
        close = difflib.get_close_matches(lowered, names, n=1, cutoff=_CLOSE)
        if close:
            return close[0]
        if len(lowered) >= 3:
            for candidate in sorted(names, key=len):
                if candidate.startswith(lowered) or lowered in candidate.split("_"):
                    return candidate
        return None

    def install_parameters(self, params: Dict[str, Parameter]) -> None:
        """Add ``params`` (name → :class:`Parameter`) to this instance only.

        :raises ParameterError: if a name is taken already.
        """
        for name in params:
            if name in self._parameter_values or hasattr(type(self), name):
                raise ParameterError(f"{self!r} already has an attribute {name!r}")
        cls = type(self)
        if not cls.__dict__.get("_concert_per_instance", False):
            # A class of its own, so that the new descriptors never leak to other instances.
            cls = type(cls.__name__, (cls,), {"_concert_per_instance": True, "__module__": cls.__module__})
            self.__class__ = cls
        for name, parameter in params.items():
            setattr(cls, name, parameter)
            parameter.__set_name__(cls, name)
            cls._concert_parameters = {**cls._concert_parameters, name: parameter}
            self._parameter_values[name] = parameter.value_class(self, parameter)

    @async_
    def stash(self) -> None:
        """Stash every writable parameter (see :meth:`ParameterValue.stash`)."""
        for value in self:
            if value.writable and value.readable:
                value.stash().join()

    @async_
    def restore(self) -> None:
        """Restore every parameter stashed with :meth:`stash`.

        Parameters that depend on each other (a region of interest that must
        fit the sensor) may refuse in one order and accept in another, so
        refused ones are retried while any progress is made. What still
        cannot be restored stays stashed; the first such error is raised.
        """
        pending = [value for value in self if value.writable and value._stashed]
        while pending:
            refused = []
            errors = []
            for value in pending:
                try:
                    value.restore().join()
                except Exception as error:  # retried below, or raised if nothing helps
                    refused.append(value)
                    errors.append(error)
            if len(refused) == len(pending):
                raise errors[0]
            pending = refused

    def lock(self, permanent: bool = False) -> None:
        """Write-lock all parameters."""
        for value in self:
            value.lock(permanent)

    def unlock(self) -> None:
        """Unlock all parameters.

        :raises LockError: if one of them is locked permanently.
        """
        for value in self:
            value.unlock()

    def __str__(self) -> str:
        from prettytable import PrettyTable

        table = PrettyTable(["Parameter", "Value"])
        table.align = "l"
        for value in self:
            if value.readable:
                table.add_row([value.name, _shown_reading(value.read)])
        return f"{self!r}\n{table}"


class RunnableParameterizable(Parameterizable):
    """A :class:`Parameterizable` that does one job when run: ``run()`` returns a future of it.

    Subclasses implement the job as the blocking method :meth:`_run`;
    :meth:`run` runs it in Concert's thread pool (or inline when
    asynchronous execution is disabled) and returns a
    :class:`~concert.futures.Future` of its result, named ``Name#1.run()``
    in messages. Cancelling the future cancels the job as for any call (its
    stop actions registered with :func:`~concert.futures.on_cancel` run).
    """

    @async_
    def run(self) -> Any:
        """Run :meth:`_run`; return a future of what it returns (errors are raised when waited for)."""
        return self._run()

    def _run(self) -> Any:
        """The job itself, blocking; subclasses implement it.

        :raises AccessorNotImplementedError: here, in the base class.
        """
        raise AccessorNotImplementedError(
            f"{self!r} cannot be run: {type(self).__name__} does not implement _run()"
        )
