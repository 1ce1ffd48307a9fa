"""Turning the durations users pass (seconds or pint time quantities) into seconds.

Kept apart so that the concurrency core never imports pint: a quantity is
recognised by its ``to`` method, not by its type.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from concert.checks import is_quantity, is_real
from concert.exceptions import UnitError


def to_seconds(value: Any, what: str) -> float:
    """Return ``value`` in seconds as a float.

    ``value`` is a number of seconds or a pint quantity of time (``2 * q.s``,
    ``50 * q.ms``). ``what`` names the argument in error messages.

    :raises UnitError: for a quantity that is not a time, something that is
        neither number nor quantity, or NaN. Negative durations count as zero,
        as in :mod:`concurrent.futures`.
    """
    if is_quantity(value):
        try:
            seconds = float(value.to("s").magnitude)
        except Exception as error:  # pint raises DimensionalityError here
            raise UnitError(f"{what}={value!r} is not a time: {error}") from None
    elif is_real(value):
        seconds = float(value)
    else:
        raise UnitError(f"{what}={value!r} is neither a number of seconds nor a time quantity")
    if math.isnan(seconds):
        raise UnitError(f"{what}={value!r} is not a number")
    return max(seconds, 0.0)


def optional_seconds(value: Any, what: str) -> Optional[float]:
    """Like :func:`to_seconds`, but ``None`` and infinity both mean "wait forever": ``None``."""
    if value is None:
        return None
    seconds = to_seconds(value, what)
    return None if math.isinf(seconds) else seconds
