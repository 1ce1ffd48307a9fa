"""The errors of the sinks and filters for data that does not fit: one place for their class and wording.

Data of the wrong shape or dtype raises :class:`~concert.exceptions.DataError`
(a ``ValueError`` too).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from concert.exceptions import DataError

__all__ = ["shape_of", "wrong_dtype", "wrong_shape"]


def shape_of(value: Any) -> str:
    """``(4, 5)`` for an array of that shape, ``a list`` for something that is no array."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return str(shape)
    return f"a {type(value).__name__}"


def wrong_shape(who: str, what: str, expected: Any, received: Any) -> ValueError:
    """The error for ``what`` given to ``who`` with shape ``received`` where ``expected`` was needed.

    ``expected`` and ``received`` are shapes (tuples) or texts.
    """
    return DataError(f"{who}: {what} has shape {received}, expected {expected}")


def wrong_dtype(who: str, what: str, expected: Any, received: Any) -> ValueError:
    """The error for ``what`` given to ``who`` whose dtype ``received`` cannot be stored as ``expected``."""
    return DataError(
        f"{who}: {what} is {np.dtype(received)}, which cannot be stored as {np.dtype(expected)} "
        "without wrapping around or truncating"
    )
