"""A simulated IO device: ``port_count`` ports (default 4) of ``bits`` bits each (default 1).

``IO()`` needs no arguments: ports 0 to 3, each holding 0 or 1, all 0 at
first -- or all ``port_value`` (the legacy argument), e.g. ``IO(port_value=1)``.
A port holds an integer from 0 to 2**bits - 1; ``True``/``False``
count as 1/0. Anything else (other numbers, floats, strings) raises
:class:`~concert.exceptions.LimitError` naming the device, the port and the
value, and the port keeps its value.
"""

from __future__ import annotations

import numbers
from typing import Any, Hashable, List

from concert.checks import is_integer
from concert.devices.io import base
from concert.exceptions import LimitError
from concert.naming import describe_value

__all__ = ["IO"]


class IO(base.IO):
    """A simulated IO device: ``port_count`` integer ports of ``bits`` bits, each ``port_value`` at first.

    :raises LimitError: ``port_value`` is not an integer a port can hold
        (0 to 2**bits - 1), ``port_count`` is not a whole number >= 0 or ``bits``
        not one >= 1.
    """

    def __init__(self, port_count: int = 4, bits: int = 1, port_value: Any = 0) -> None:
        for name, given, least in (("port_count", port_count, 0), ("bits", bits, 1)):
            if not is_integer(given) or given < least:
                raise LimitError(f"IO: {name}={describe_value(given)} is not a whole number >= {least}")
        highest = 2**bits - 1
        if not isinstance(port_value, numbers.Integral) or not 0 <= port_value <= highest:
            raise LimitError(
                f"IO: port_value={describe_value(port_value)} cannot be held by the ports: "
                f"they hold integers from 0 to {highest}"
            )
        self._values = dict.fromkeys(range(int(port_count)), int(port_value))
        self._bits = int(bits)
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
