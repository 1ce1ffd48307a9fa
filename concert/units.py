"""Units and numbers of arguments: :class:`expects`/:class:`Numeric`, :func:`linspace`, :func:`arange`.

* :class:`expects` and :class:`Numeric` check argument types, shapes and units
  when a decorated function is called;
* :func:`linspace` and :func:`arange` are :mod:`numpy`'s functions for pint
  quantities.

Importing this module is cheap: pint and numpy are imported when a check or
a range needs them. A value with a missing or wrong unit raises
:class:`~concert.exceptions.UnitError` (a :class:`ValueError`), a value of
the wrong type or shape raises :class:`TypeError`, and every message names
the function, the argument and the offending value.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, List, Tuple, TypeVar, Union

from concert.checks import is_integer, is_quantity, is_real
from concert.exceptions import UnitError
from concert.naming import name_of

__all__ = ["Numeric", "arange", "expects", "linspace"]

_F = TypeVar("_F", bound=Callable[..., Any])


# -- expects / Numeric -----------------------------------------------------------------------


class Numeric:
    """What :class:`expects` accepts for a numeric argument.

    ``Numeric(1)`` is one real number; ``Numeric(n)`` with ``n >= 2`` is a sequence or a
    one-dimensional array of ``n`` real numbers. With ``units`` (a pint unit, a quantity or
    a unit name) the argument must be a quantity of that dimension (any compatible unit:
    ``Numeric(2, q.mm)`` accepts ``[4, 5] * q.mm`` and ``[4, 5] * q.m``). Without ``units``
    it must be plain numbers or a dimensionless quantity. Booleans are not numbers here.
    A unit name is looked up at the first check (so that creating a ``Numeric`` does not
    load pint); an unknown name raises :class:`~concert.exceptions.UnitError` then.

    :raises TypeError: (from the constructor) for a ``dimension`` that is not a positive int.
    """

    def __init__(self, dimension: int, units: Any = None) -> None:
        if not is_integer(dimension) or dimension < 1:
            raise TypeError(f"Numeric(dimension={dimension!r}): dimension must be a positive int")
        self.dimension = dimension
        self.units = units

    def __repr__(self) -> str:
        if self.units is None:
            return f"Numeric({self.dimension})"
        return f"Numeric({self.dimension}, {self.units!s})"

    def _describe(self) -> str:
        what = "one number" if self.dimension == 1 else f"a sequence of {self.dimension} numbers"
        if self.units is not None:
            what += f" in units of {self.units!s}"
        return what

    def check(self, value: Any, where: str) -> None:
        """Raise if ``value`` does not match; ``where`` starts the message.

        :raises TypeError: for a value of the wrong type or shape.
        :raises UnitError: for a value of the right shape with a missing or wrong unit.
        """
        from concert.quantities import q

        quantity = is_quantity(value)
        if quantity and not isinstance(value, q.Quantity):
            raise UnitError(f"{where}={value!r} is a quantity of another pint registry than concert's q")
        magnitude = value.magnitude if quantity else value
        if not self._has_shape(magnitude):
            raise TypeError(f"{where}={value!r}: expected {self._describe()}")
        if self.units is None:
            if quantity and not value.dimensionless:
                raise UnitError(f"{where}={value!r}: expected plain numbers, got a quantity in {value.units}")
            return
        units = _unit_of(self.units, where)
        if not quantity:
            if q.Quantity(1, units).dimensionless:
                return
            raise UnitError(f"{where}={value!r} has no unit, expected {self._describe()}")
        if not value.is_compatible_with(units):
            raise UnitError(f"{where}={value!r} has the wrong unit, expected {self._describe()}")

    def _has_shape(self, magnitude: Any) -> bool:
        import numpy as np

        if self.dimension == 1:
            if isinstance(magnitude, np.ndarray):
                return magnitude.ndim == 0 and _is_real_dtype(magnitude.dtype)
            return is_real(magnitude)
        if isinstance(magnitude, np.ndarray):
            return magnitude.shape == (self.dimension,) and _is_real_dtype(magnitude.dtype)
        if isinstance(magnitude, (list, tuple)):
            return len(magnitude) == self.dimension and all(is_real(item) for item in magnitude)
        return False


def _unit_of(units: Any, where: str) -> Any:
    """The pint unit meant by ``units``: a unit, a quantity (its unit) or a unit name."""
    from concert.quantities import q

    if isinstance(units, q.Quantity):
        return units.units
    if isinstance(units, str):
        try:
            return q.Unit(units)
        except Exception as error:  # pint's UndefinedUnitError
            raise UnitError(f"{where}: the expected unit {units!r} is not a unit: {error}") from None
    return units


def _is_real_dtype(dtype: Any) -> bool:
    import numpy as np

    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating))


class expects:  # noqa: N801 -- the historical, documented spelling
    """Decorator checking the arguments of every call against expectations.

    Expectations are given like the arguments themselves -- positionally for the first
    parameters, by keyword for any parameter::

        @expects(Camera, LinearMotor, pixelsize=Numeric(2, q.mm))
        def foo(camera, motor, pixelsize=None): ...

    An expectation is a class or tuple of classes (checked with :func:`isinstance`), a
    :class:`Numeric`, or ``None`` (not checked; use it for ``self`` of a method).
    Arguments that are not passed are not checked, and passing ``None`` to a parameter
    whose default is ``None`` is accepted (it is the same as not passing it). A call that
    does not fit the signature at all is left to the function, which raises as usual.

    Checks happen when the decorated function is called, before its body runs.

    :raises TypeError: (at decoration) for an expectation naming a parameter the function
        does not have, more expectations than parameters, or an expectation of a kind above
        not listed. (At call time) for an argument of the wrong type or shape.
    :raises UnitError: (at call time; a :class:`ValueError`) for a numeric argument with a
        missing or incompatible unit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __call__(self, func: _F) -> _F:
        name = name_of(func)
        signature = inspect.signature(func)
        try:
            bound = signature.bind_partial(*self.args, **self.kwargs)
        except TypeError as error:
            raise TypeError(f"@expects on {name}(): expectations do not fit its signature: {error}") from None
        specs: Dict[str, Any] = {}
        for parameter, spec in bound.arguments.items():
            kind = signature.parameters[parameter].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(f"@expects on {name}(): cannot check *args or **kwargs ({parameter!r})")
            _check_spec(spec, name, parameter)
            if spec is not None:
                specs[parameter] = spec

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                call = signature.bind(*args, **kwargs)
            except TypeError:
                return func(*args, **kwargs)  # let the function report the bad call itself
            for parameter, value in call.arguments.items():
                spec = specs.get(parameter)
                if spec is None:
                    continue
                if value is None and signature.parameters[parameter].default is None:
                    continue
                where = f"{name}() argument {parameter!r}"
                if isinstance(spec, Numeric):
                    spec.check(value, where)
                elif not isinstance(value, spec):
                    raise TypeError(
                        f"{where}={value!r}: expected {_type_names(spec)}, got {type(value).__name__}"
                    )
            return func(*args, **kwargs)

        checked.__signature__ = signature  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]


def _check_spec(spec: Any, function: str, parameter: str) -> None:
    if spec is None or isinstance(spec, Numeric):
        return
    if spec is Numeric:
        raise TypeError(
            f"@expects on {function}(): {parameter!r} expects the class Numeric; "
            "use Numeric(dimension[, units])"
        )
    if isinstance(spec, type) or (
        isinstance(spec, tuple) and spec and all(isinstance(t, type) for t in spec)
    ):
        return
    raise TypeError(
        f"@expects on {function}(): expectation {spec!r} for {parameter!r} is not a class, "
        "a tuple of classes, a Numeric or None"
    )


def _type_names(spec: Union[type, Tuple[type, ...]]) -> str:
    types = spec if isinstance(spec, tuple) else (spec,)
    return " or ".join(t.__name__ for t in types)


# -- linspace / arange -----------------------------------------------------------------------


def _in_start_units(function: str, start: Any, **others: Any) -> Tuple[Any, List[Any], Any]:
    """Return the magnitude of ``start``, those of ``others`` in start's unit, and the unit.

    Values of ``others`` named ``step`` are differences, converted to the difference unit
    of ``start`` (which only matters for offset units such as degrees Celsius).
    """
    from concert.quantities import q

    def magnitude_of(name: str, value: Any) -> Any:
        if is_quantity(value):
            if not isinstance(value, q.Quantity):
                raise UnitError(f"{function}(): {name}={value!r} is a quantity of another pint registry")
            magnitude = value.magnitude
        else:
            magnitude = value
        if not (is_real(magnitude) or (_is_ndarray(magnitude) and magnitude.ndim == 0)):
            raise TypeError(f"{function}(): {name}={value!r} is not a real number or a scalar quantity")
        return magnitude

    start_magnitude = magnitude_of("start", start)
    unit = start.units if is_quantity(start) else q.dimensionless
    magnitudes = []
    for name, value in others.items():
        magnitude_of(name, value)
        target = unit
        if name == "step" and is_quantity(start):
            target = (start - start).units  # degC -> delta_degC; any other unit stays itself
        if not is_quantity(value):
            if unit == q.dimensionless:
                magnitudes.append(value)
                continue
            if not q.Quantity(1, unit).dimensionless:
                raise UnitError(f"{function}(): {name}={value!r} has no unit, but start={start!r} has one")
            value = q.Quantity(value, q.dimensionless)
        if value.units == target:
            magnitudes.append(value.magnitude)
            continue
        try:
            magnitudes.append(value.to(target).magnitude)
        except Exception as error:  # pint's DimensionalityError, OffsetUnitCalculusError
            raise UnitError(
                f"{function}(): {name}={value!r} cannot be converted to {target}: {error}"
            ) from None
    return start_magnitude, magnitudes, unit


def _is_ndarray(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray) and _is_real_dtype(value.dtype)


def _count(function: str, num: Any) -> int:
    if not is_integer(num):
        raise TypeError(f"{function}(): num={num!r} is not an int")
    if num < 0:
        raise ValueError(f"{function}(): num={num!r} must not be negative")
    return int(num)


def linspace(start: Any, stop: Any, num: int, endpoint: bool = True) -> Any:
    """:func:`numpy.linspace` for quantities: ``num`` values from ``start`` to ``stop``.

    ``stop`` is converted to the unit of ``start`` and the result is a quantity array in
    that unit. Plain numbers count as dimensionless, so two plain numbers give a
    dimensionless quantity array whose magnitude equals ``numpy.linspace``'s result.

    :raises UnitError: for a ``stop`` whose unit cannot be converted to start's (including
        a bare number where start has a unit, and vice versa).
    :raises TypeError: for a non-scalar or non-numeric ``start``/``stop``, or a ``num``
        that is not an int.
    :raises ValueError: for a negative ``num``.
    """
    import numpy as np

    from concert.quantities import q

    count = _count("linspace", num)
    first, (last,), unit = _in_start_units("linspace", start, stop=stop)
    return q.Quantity(np.linspace(first, last, count, endpoint=endpoint), unit)


def arange(start: Any, stop: Any, step: Any) -> Any:
    """:func:`numpy.arange` for quantities: values from ``start`` up to (not including) ``stop``.

    ``stop`` and ``step`` are converted to the unit of ``start`` (for offset units such as
    ``degC``, ``step`` is a difference like ``delta_degC``) and the result is a quantity
    array in that unit. Plain numbers count as dimensionless, so three plain numbers give
    a dimensionless quantity array whose magnitude equals ``numpy.arange``'s result. As
    with numpy, floating-point steps may make the length differ by one from what exact
    arithmetic would give.

    :raises UnitError: for a ``stop`` or ``step`` whose unit cannot be converted.
    :raises TypeError: for a non-scalar or non-numeric argument.
    :raises ValueError: for a zero or NaN ``step``.
    """
    import numpy as np

    from concert.quantities import q

    first, (last, increment), unit = _in_start_units("arange", start, stop=stop, step=step)
    if not increment or increment != increment:
        raise ValueError(f"arange(): step={step!r} must be a non-zero number")
    return q.Quantity(np.arange(first, last, increment), unit)
