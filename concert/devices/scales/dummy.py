"""Simulated scales, weighing a simulated ``load`` you put on them.

``Scales()`` and ``TarableScales()`` need no arguments and start empty.
``load`` is a parameter of the simulation only (there is no such knob on a
real scale): set it, e.g. ``scales.load = 5 * q.g``, to put something on
the scale. It is a mass, never negative, and at most the capacity (default
1 kg); bad values raise the usual :class:`~concert.exceptions.UnitError` or
:class:`~concert.exceptions.LimitError`. ``weight`` reads the load minus the
tare, exactly.
"""

from __future__ import annotations

from typing import Any

from concert.devices.scales import base
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["Scales", "TarableScales"]


def _capacity(scales: Any) -> Any:
    return scales._capacity


class _Simulated:
    """Mixin with the simulated load; subclasses are devices."""

    load = Quantity(
        q.g, lower=0 * q.g, external_upper_getter=_capacity, help="Simulated mass lying on the scale"
    )

    def __init__(self, load: Any = 0 * q.g, capacity: Any = 1 * q.kg) -> None:
        self._load = load.to(q.g)
        self._capacity = capacity.to(q.g)
        self._tare_mass = 0 * q.g
        super().__init__()

    def _get_load(self) -> Any:
        return self._load

    def _set_load(self, load: Any) -> None:
        self._load = load

    def _get_weight(self) -> Any:
        return self._load - self._tare_mass


class Scales(_Simulated, base.Scales):
    """Simulated scales; ``load`` and ``capacity`` are masses."""


class TarableScales(_Simulated, base.TarableScales):
    """Simulated tarable scales; ``load`` and ``capacity`` are masses."""

    def _tare_real(self) -> None:
        self._tare_mass = self._load
