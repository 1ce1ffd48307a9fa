"""A simulated IO device: ``port_count`` ports (default 4) of ``bits`` bits each (default 1).

``IO()`` needs no arguments: ports 0 to 3, each holding 0 or 1, all 0 at
first. A port holds an integer from 0 to 2**bits - 1; ``True``/``False``
count as 1/0. Anything else (other numbers, floats, strings) raises
:class:`~concert.exceptions.LimitError` naming the device, the port and the
value, and the port keeps its value.
"""

from __future__ import annotations

import numbers
from typing import Any, Hashable, List

from concert.devices.io import base
from concert.exceptions import LimitError
from concert.naming import describe_value

__all__ = ["IO"]


class IO(base.IO):
    """A simulated IO device with ``port_count`` integer ports of ``bits`` bits."""

    def __init__(self, port_count: int = 4, bits: int = 1) -> None:
        self._values = dict.fromkeys(range(port_count), 0)
        self._bits = bits
        super().__init__()

    def _get_ports(self) -> List[Hashable]:
        return list(self._values)

    def _read_port_real(self, port: Hashable) -> int:
        return self._values[port]

    def _write_port_real(self, port: Hashable, value: int) -> None:
        self._values[port] = value

    def _check_port_value_real(self, port: Hashable, value: Any) -> int:
        highest = 2**self._bits - 1
        if not isinstance(value, numbers.Integral) or not 0 <= value <= highest:
            raise LimitError(
                f"{self!r}: port {port!r} cannot take {describe_value(value)}: "
                f"it holds integers from 0 to {highest}"
            )
        return int(value)
