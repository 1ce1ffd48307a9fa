"""Type aliases for annotating code that works with Concert: ``from concert.typing import ArrayLike``.

What the signatures of Concert's APIs (and of scripts written for the
legacy API) name: :data:`ArrayLike` for frames and other array data
(``producer: Iterable[ArrayLike]``), the types of this registry's quantities
and units, and the spellings accepted for a number and a duration. They are
aliases for type checkers and readers; :data:`QuantityType` and
:data:`UnitType` are real classes and work with ``isinstance`` too.

Importing this module loads numpy and pint (:mod:`concert.quantities`).
"""

from __future__ import annotations

import numbers
from typing import Union

import numpy as np
import numpy.typing as npt

from concert.quantities import q

__all__ = ["ArrayLike", "Frame", "NDArray", "Number", "QuantityType", "TimeLike", "UnitType"]

#: Anything :func:`numpy.asarray` accepts: an array, a frame
#: (:class:`~concert.imaging.ImageWithMetadata` is an array), a nested list, a number.
ArrayLike = npt.ArrayLike

#: A numpy array of any dtype (``NDArray[np.uint16]`` for a given one).
NDArray = npt.NDArray

#: One image: a 2-d numpy array (or an :class:`~concert.imaging.ImageWithMetadata`).
Frame = np.ndarray

#: The class of the quantities of Concert's registry :data:`concert.quantities.q`
#: (``2 * q.mm`` is one). Not :class:`concert.base.Quantity`, which is a parameter.
QuantityType = q.Quantity

#: The class of the units of :data:`concert.quantities.q` (``q.mm`` is one).
UnitType = q.Unit

#: A real number: a Python or numpy int or float (anything :class:`numbers.Real`).
Number = Union[numbers.Real, np.integer, np.floating]

#: A duration as Concert's timeouts take it: seconds, or a time quantity (``100 * q.ms``).
TimeLike = Union[float, int, QuantityType]
