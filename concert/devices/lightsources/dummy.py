"""A simulated light source: dark at first, at most ``max_intensity`` (default 10 V).

``LightSource()`` needs no arguments. The maximum is a hardware limit: a
higher value raises :class:`~concert.exceptions.HardLimitError` before the
light source is touched.
"""

from __future__ import annotations

from typing import Any

from concert.devices.lightsources import base
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["LightSource"]


def _max_intensity(source: LightSource) -> Any:
    return source._max_intensity


class LightSource(base.LightSource):
    """A simulated light source; arguments are voltage quantities."""

    intensity = Quantity(
        q.V,
        lower=0 * q.V,
        external_upper_getter=_max_intensity,
        help="Control voltage setting the brightness",
    )

    def __init__(self, intensity: Any = 0 * q.V, max_intensity: Any = 10 * q.V) -> None:
        self._intensity = intensity.to(q.V)
        self._max_intensity = max_intensity.to(q.V)
        super().__init__()

    def _get_intensity(self) -> Any:
        return self._intensity

    def _set_intensity(self, intensity: Any) -> None:
        self._intensity = intensity
