"""A simulated photodiode lit by a simulated ``light_power``.

``PhotoDiode()`` needs no arguments: 1 mW of light and a gain of 1 V/mW read
as 1 V. ``light_power`` is a parameter of the simulation only (there is no
such knob on a real diode); it is a power, never negative. The output is
``dark_voltage + gain · light_power``, clipped at ``saturation`` (10 V) like
an amplifier's output.
"""

from __future__ import annotations

from typing import Any

from concert.devices.photodiodes import base
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["PhotoDiode"]


class PhotoDiode(base.PhotoDiode):
    """A simulated photodiode; arguments are quantities (power, volt per watt, volts)."""

    light_power = Quantity(q.mW, lower=0 * q.mW, help="Simulated light power on the diode")

    def __init__(
        self,
        light_power: Any = 1 * q.mW,
        gain: Any = 1 * q.V / q.mW,
        dark_voltage: Any = 0 * q.V,
        saturation: Any = 10 * q.V,
    ) -> None:
        self._light_power = light_power.to(q.mW)
        self._gain = gain.to(q.V / q.mW)
        self._dark_voltage = dark_voltage.to(q.V)
        self._saturation = saturation.to(q.V)
        super().__init__()

    def _get_light_power(self) -> Any:
        return self._light_power

    def _set_light_power(self, power: Any) -> None:
        self._light_power = power

    def _get_intensity(self) -> Any:
        return min(self._dark_voltage + self._gain * self._light_power, self._saturation)
