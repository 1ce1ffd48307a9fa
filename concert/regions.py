"""``Region``: a parameter and the values a legacy scan sets it to (``from concert.helpers import Region``).

A region pairs what to move -- a parameter value such as ``motor['position']``
-- with the values to visit, in order. :func:`concert.processes.common.scan`
takes one region or a list of them (nested, the last one changing fastest).

Regions compare and hash by identity, so that they can be the keys of the
``callbacks`` dictionary of a scan even when their values are a numpy or
quantity array (which has no hash). This module imports neither numpy nor
pint: :mod:`concert.helpers` loads it eagerly.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from concert.naming import describe_value

__all__ = ["Region"]


class Region:
    """``parameter`` (e.g. ``motor['position']``) and the ``values`` to set it to, in order.

    Nothing is checked here -- a region is plain data, as in the legacy API;
    :func:`~concert.processes.common.scan` checks the regions it is given
    (a parameter value, at least one value) and raises
    :class:`~concert.processes.common.ProcessError` otherwise. ``values`` is
    any iterable that can be iterated more than once (a list, a range, a
    numpy or quantity array); iterating the region iterates its values.
    """

    __slots__ = ("parameter", "values")

    def __init__(self, parameter: Any, values: Iterable[Any]) -> None:
        self.parameter = parameter
        self.values = values

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)

    def __repr__(self) -> str:
        return f"Region({self.parameter!r}, {describe_value(self.values)})"
