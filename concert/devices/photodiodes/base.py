"""What every photodiode offers: ``intensity`` (V, read-only).

``intensity`` is the diode's (amplified) output voltage; writing it raises
:class:`~concert.exceptions.WriteAccessError`. Implementations provide
only the accessor ``_get_intensity()`` (a voltage); there are no
``_*_real`` hardware hooks in this family.
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["PhotoDiode"]


class PhotoDiode(Device):
    """A photodiode (see the module documentation)."""

    intensity = Quantity(q.V, help="Output voltage, proportional to the light power")

    def _get_intensity(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read its intensity")
