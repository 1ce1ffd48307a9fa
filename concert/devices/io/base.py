"""What every IO device offers: ``ports``, ``read_port(port)`` and ``write_port(port, value)``.

``ports`` (read-only) lists the port identifiers. ``read_port`` and
``write_port`` return futures. A port that is not in ``ports`` raises
:class:`~concert.exceptions.ParameterError` naming the device, the port (and
the value, when writing); a value the port cannot take raises
:class:`~concert.exceptions.LimitError`. Both are raised before the
hardware is touched. Writes are device operations: they wait for other
owners' ``with io:`` blocks; reads never wait.

Implementations provide:

* the accessor ``_get_ports()``: a list of the port identifiers (hashable);
* ``_read_port_real(port)``: return the value of ``port`` (one of ``ports``,
  checked already); called without any lock, from any thread;
* ``_write_port_real(port, value)``: write ``value`` (as returned by
  ``_check_port_value_real``) to ``port``; return once written. It runs as
  one device call;
* optionally ``_check_port_value_real(port, value)``: return the value to
  write for ``value``, or raise :class:`~concert.exceptions.LimitError`
  naming the device, the port and the value. It runs before the hardware is
  touched; the default accepts every value unchanged.

A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented). An exception of a hook propagates
to the caller (IO devices have no state machine).
"""

from __future__ import annotations

from typing import Any, Hashable, List

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError, ParameterError
from concert.futures import async_
from concert.naming import describe_value
from concert.operations import device_call
from concert.parameters import Parameter

__all__ = ["IO"]

_NO_VALUE = object()


class IO(Device):
    """An input/output device (see the module documentation)."""

    ports = Parameter(help="Identifiers of the ports")

    def _check_port(self, port: Hashable, value: Any = _NO_VALUE) -> None:
        known: List[Hashable] = self["ports"].read()
        if port not in known:
            action = "read it" if value is _NO_VALUE else f"write {describe_value(value)} to it"
            listed = ", ".join(map(repr, known)) or "none"
            raise ParameterError(f"{self!r} has no port {port!r} (it has: {listed}); cannot {action}")

    @async_
    def read_port(self, port: Hashable) -> Any:
        """Return a future of the value of ``port``.

        :raises ParameterError: (in the future) if there is no such port.
        """
        self._check_port(port)
        return self._read_port_real(port)

    @async_
    def write_port(self, port: Hashable, value: Any) -> None:
        """Return a future of writing ``value`` to ``port``.

        :raises ParameterError: (in the future) if there is no such port.
        :raises LimitError: (in the future) if the port cannot take ``value``.
        """
        self._check_port(port, value)
        checked = self._check_port_value_real(port, value)
        with device_call(self, None):
            self._write_port_real(port, checked)

    # -- what implementations provide ------------------------------------------------

    def _get_ports(self) -> List[Hashable]:
        raise AccessorNotImplementedError(f"{self!r} cannot list its ports")

    def _read_port_real(self, port: Hashable) -> Any:
        """Return the value of ``port`` (a known port)."""
        raise AccessorNotImplementedError(f"{self!r} cannot read port {port!r}")

    def _write_port_real(self, port: Hashable, value: Any) -> None:
        """Write ``value`` (checked by :meth:`_check_port_value_real`) to ``port`` (a known port)."""
        raise AccessorNotImplementedError(f"{self!r} cannot write {describe_value(value)} to port {port!r}")

    def _check_port_value_real(self, port: Hashable, value: Any) -> Any:
        """Return what to write to ``port`` for ``value``; raise ``LimitError`` if it cannot be written."""
        return value
