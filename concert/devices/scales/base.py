"""What every scale offers: ``weight`` (g, read-only); tarable scales add ``tare()``.

``weight`` is what the scale shows, in grams: a mass (the load minus any
tare). Writing it raises :class:`~concert.exceptions.WriteAccessError`.
``tare()`` makes the current load read as zero; it is a device operation, so
it waits for other owners' ``with scales:`` blocks.

Implementations provide the accessor ``_get_weight()`` (a mass, g) and,
for :class:`TarableScales`, ``_tare_real()``: make the current load read as
zero, returning once it does. ``tare()`` runs it as one device call; an
exception propagates to the caller (scales have no state machine). A hook
the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented).
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
            self._tare_real()

    def _tare_real(self) -> None:
        """Make the current load read as zero; return once it does."""
        raise AccessorNotImplementedError(f"{self!r} cannot tare")
