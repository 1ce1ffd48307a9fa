"""A simulated X-ray tube: switches instantly; 40 kV and 100 µA set, at most 60 kV and 1000 µA.

``XRayTube()`` needs no arguments. The maxima are hardware limits: a higher
setting raises :class:`~concert.exceptions.HardLimitError` before the tube is
touched.
"""

from __future__ import annotations

from typing import Any

from concert.devices.xraytubes import base
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["XRayTube"]


def _max_voltage(tube: XRayTube) -> Any:
    return tube._max_voltage


def _max_current(tube: XRayTube) -> Any:
    return tube._max_current


class XRayTube(base.XRayTube):
    """A simulated X-ray tube; arguments are quantities of voltage and current."""

    voltage = Quantity(q.kV, lower=0 * q.kV, external_upper_getter=_max_voltage, help="Acceleration voltage")
    current = Quantity(q.uA, lower=0 * q.uA, external_upper_getter=_max_current, help="Tube current")

    def __init__(
        self,
        voltage: Any = 40 * q.kV,
        current: Any = 100 * q.uA,
        max_voltage: Any = 60 * q.kV,
        max_current: Any = 1000 * q.uA,
    ) -> None:
        self._voltage = voltage.to(q.kV)
        self._current = current.to(q.uA)
        self._max_voltage = max_voltage.to(q.kV)
        self._max_current = max_current.to(q.uA)
        self._emitting = False
        super().__init__()

    def _on_real(self) -> None:
        self._emitting = True

    def _off_real(self) -> None:
        self._emitting = False

    def _get_voltage(self) -> Any:
        return self._voltage

    def _set_voltage(self, voltage: Any) -> None:
        self._voltage = voltage

    def _get_current(self) -> Any:
        return self._current

    def _set_current(self, current: Any) -> None:
        self._current = current
