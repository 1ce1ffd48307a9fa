"""What Concert accepts as the number of a quantity: one real number, as a Python float.

``5 * q.mm``, ``np.uint8(255) * q.mm``, ``Fraction(1, 3) * q.s``,
``Decimal('0.01') * q.s``, ``np.array(5) * q.mm`` and ``np.array([5]) * q.mm``
all hold one real number; :func:`real_number` turns each into a ``float``,
so that everything behind a parameter computes with floats (no integer
overflow of a ``uint8``, no ``Decimal * float`` ``TypeError``).

Refused, with :class:`~concert.exceptions.UnitError` (the value is not a
number in any unit): strings, bools (``True * q.mm`` is almost always a
mistake: "int but not bool"), complex numbers, ``None``, arrays of more or
fewer than one element and anything else that is not a real number.
Refused with :class:`~concert.exceptions.LimitError`: a real number too
large for a float (``10**400``, a huge ``Fraction``). NaN and infinities are
floats; whether they are allowed is up to the caller.

This module also decides which units are interchangeable: see
:func:`same_kind`.
"""

from __future__ import annotations

import decimal
import functools
import math
import numbers
from typing import Any

import numpy as np

from concert.exceptions import LimitError, UnitError

__all__ = ["real_number", "same_kind"]


def real_number(value: Any) -> float:
    """Return ``value``, one real number, as a float (see the module documentation).

    The messages of the exceptions are clauses to append to the value's
    description, e.g. ``"'5' mm" + " is a string, not a number"``.

    :raises UnitError: ``value`` is not one real number.
    :raises LimitError: ``value`` is a real number too large for a float.
    """
    if type(value) is float:  # the common case first
        return value
    if isinstance(value, np.ndarray):
        if value.size != 1:
            shape = "x".join(map(str, value.shape)) or "0"
            raise UnitError(f"is not a single number (an array of shape {shape})")
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)):
        raise UnitError("is a bool, not a number (write e.g. 1 or 0)")
    if isinstance(value, (str, bytes)):
        raise UnitError("is a string, not a number")
    if not isinstance(value, (numbers.Real, decimal.Decimal)):
        kind = "complex number" if isinstance(value, numbers.Complex) else type(value).__name__
        raise UnitError(f"is not a real number (it is a {kind})")
    try:
        number = float(value)
    except OverflowError:
        raise LimitError(_TOO_LARGE) from None
    except (ValueError, TypeError, ArithmeticError) as error:  # a signalling Decimal NaN, say
        raise LimitError(f"is not a usable number ({error})") from None
    if number in _INFINITIES and value != number:  # Decimal('1e400'), a huge long double
        raise LimitError(_TOO_LARGE)
    return number


_TOO_LARGE = "is too large to be a floating-point number"
_INFINITIES = (math.inf, -math.inf)


def same_kind(units: Any, other: Any) -> bool:
    """Whether two unit containers measure the same kind of thing, so that one converts to the other.

    Stricter than pint's dimensionality: angles (``deg``, ``rad``, ``turn``)
    and counts are not interchangeable with plain numbers, nor ``rad/s``
    with ``Hz``, although pint treats the radian as 1. Units are compared by
    their root units in their registry (``mm`` and ``km`` are both metres,
    ``deg`` and ``rad`` both radians, ``%`` and plain numbers both
    dimensionless).
    """
    return units == other or _root(units) == _root(other)


@functools.lru_cache(maxsize=256)
def _root(units: Any) -> Any:
    from concert.quantities import q

    return q.get_root_units(q.Unit(units))[1]._units
