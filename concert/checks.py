"""The small checks of values that Concert makes everywhere, each in one place.

* :func:`is_integer` -- an integer (Python or numpy) that is not a bool;
* :func:`is_real` -- a real number (int, float, Fraction, Decimal, numpy scalar) that is not a bool;
* :func:`is_quantity` -- a pint quantity of any registry, recognised without importing pint.

``True`` is an ``int`` to Python, but a bool given where a count, a number of
frames or a magnitude is expected is a mistake, so none of these accepts one.
"""

from __future__ import annotations

import decimal
import numbers
from typing import Any

__all__ = ["is_integer", "is_quantity", "is_real"]


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (``int``, a numpy integer) but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (int, float, Fraction, Decimal, numpy scalar) but not a bool."""
    return isinstance(value, (numbers.Real, decimal.Decimal)) and not isinstance(value, bool)


def is_quantity(value: Any) -> bool:
    """Whether ``value`` is a pint quantity (of any registry); pint is not imported."""
    return hasattr(value, "magnitude") and hasattr(value, "units") and hasattr(value, "to")
