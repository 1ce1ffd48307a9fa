"""What every scale offers: ``weight`` (g, read-only); tarable scales add ``tare()``.

``weight`` is what the scale shows, in grams: a mass (the load minus any
tare). Writing it raises :class:`~concert.exceptions.WriteAccessError`.
``tare()`` makes the current load read as zero; it is a device operation, so
it waits for other owners' ``with scales:`` blocks.

Implementations provide ``_get_weight()`` and, for :class:`TarableScales`,
``_tare()``.
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_
from concert.operations import device_call
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["Scales", "TarableScales"]


class Scales(Device):
    """A scale (see the module documentation)."""

    weight = Quantity(q.g, help="Weighed mass")

    def _get_weight(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read its weight")


class TarableScales(Scales):
    """A scale that can be tared."""

    @async_
    def tare(self) -> None:
        """Return a future of taring: afterwards the current load reads 0 g."""
        with device_call(self, None):
            self._tare()

    def _tare(self) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot tare")
