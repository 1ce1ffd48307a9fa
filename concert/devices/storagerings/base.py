"""What every storage ring offers: ``current`` (mA), ``energy`` (GeV) and ``lifetime`` (h).

All three are read-only: a beamline observes the ring, it does not run it;
writing one raises :class:`~concert.exceptions.WriteAccessError`.
Implementations provide only the accessors ``_get_current()``,
``_get_energy()`` and ``_get_lifetime()``; there are no ``_*_real``
hardware hooks in this family.
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["StorageRing"]


class StorageRing(Device):
    """A storage ring (see the module documentation)."""

    current = Quantity(q.mA, help="Ring current")
    energy = Quantity(q.GeV, help="Electron energy")
    lifetime = Quantity(q.h, help="Beam lifetime")

    def _get_current(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read the ring current")

    def _get_energy(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read the electron energy")

    def _get_lifetime(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read the beam lifetime")
