"""A simulated pump: switches instantly, pumps up to ``max_flow_rate``.

``Pump()`` needs no arguments: standby, 1 l/min set, at most 10 l/min. The
maximum is a hardware limit of ``flow_rate``: a higher rate raises
:class:`~concert.exceptions.HardLimitError` before the pump is touched.
"""

from __future__ import annotations

from typing import Any

from concert.devices.pumps import base
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["Pump"]


def _max_flow_rate(pump: Pump) -> Any:
    return pump._max_flow_rate


class Pump(base.Pump):
    """A simulated pump; ``flow_rate`` and ``max_flow_rate`` are volume-per-time quantities."""

    flow_rate = Quantity(
        q.l / q.min, lower=0 * q.l / q.min, external_upper_getter=_max_flow_rate, help="Flow rate"
    )

    def __init__(self, flow_rate: Any = 1 * q.l / q.min, max_flow_rate: Any = 10 * q.l / q.min) -> None:
        self._flow_rate = flow_rate.to(q.l / q.min)
        self._max_flow_rate = max_flow_rate.to(q.l / q.min)
        self._pumping = False
        super().__init__()

    def _start_real(self) -> None:
        self._pumping = True

    def _stop_real(self) -> None:
        self._pumping = False

    def _get_flow_rate(self) -> Any:
        return self._flow_rate

    def _set_flow_rate(self, rate: Any) -> None:
        self._flow_rate = rate
