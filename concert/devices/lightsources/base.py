"""What every light source offers: ``intensity`` (V), the control voltage.

``intensity`` is never negative (soft limit 0 V: a negative value raises
:class:`~concert.exceptions.SoftLimitError` before the hardware is touched);
implementations report their maximum as a hardware limit. Implementations
provide only the accessors ``_get_intensity()``/``_set_intensity(voltage)``
(volts, converted and checked against the limits already); there are no
``_*_real`` hardware hooks in this family.
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["LightSource"]


class LightSource(Device):
    """A light source (see the module documentation)."""

    intensity = Quantity(q.V, lower=0 * q.V, help="Control voltage setting the brightness")

    def _get_intensity(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read its intensity")

    def _set_intensity(self, intensity: Any) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot set its intensity")
