"""What every IO device offers -- ``ports``, ``read_port(port)``, ``write_port(port, value)`` -- and Signal.

``ports`` (read-only) lists the port identifiers. ``read_port`` and
``write_port`` return futures. A port that is not in ``ports`` raises
:class:`IODeviceError` (a :class:`~concert.exceptions.ParameterError`)
naming the device, the port (and the value, when writing); a value the port cannot take raises
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

A :class:`Signal` drives one port of an IO device as a binary signal --
a TTL trigger line, a relay: ``on()``, ``off()`` and ``trigger(duration)``.
"""

from __future__ import annotations

import threading
from typing import Any, Hashable, List

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError, LimitError
from concert.exceptions import IODeviceError as IODeviceError  # re-exported: where the legacy API has it
from concert.futures import async_, on_cancel
from concert.naming import describe_value
from concert.operations import device_call
from concert.parameters import Parameter
from concert.quantities import q
from concert.states import State
from concert.timeouts import to_seconds

__all__ = ["IO", "Signal"]

_NO_VALUE = object()


class IO(Device):
    """An input/output device (see the module documentation)."""

    ports = Parameter(help="Identifiers of the ports")

    def _check_port(self, port: Hashable, value: Any = _NO_VALUE) -> None:
        known: List[Hashable] = self["ports"].read()
        if port not in known:
            action = "read it" if value is _NO_VALUE else f"write {describe_value(value)} to it"
            listed = ", ".join(map(repr, known)) or "none"
            raise IODeviceError(f"{self!r} has no port {port!r} (it has: {listed}); cannot {action}")

    @async_
    def read_port(self, port: Hashable) -> Any:
        """Return a future of the value of ``port``.

        :raises IODeviceError: (in the future) if there is no such port.
        """
        self._check_port(port)
        return self._read_port_real(port)

    @async_
    def write_port(self, port: Hashable, value: Any) -> None:
        """Return a future of writing ``value`` to ``port``.

        :raises IODeviceError: (in the future) if there is no such port.
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


class Signal(Device):
    """One port of an IO device as a binary signal: ``Signal(port, device, on_value=1, off_value=0)``.

    ``on()`` writes ``on_value`` to the port, ``off()`` writes ``off_value``
    and ``trigger(duration=10 ms)`` switches on, waits ``duration`` and
    switches off; all three return futures and are allowed in any state
    (switching on what is on does no harm). The read-only ``state`` is read
    from the port: ``'on'`` when it holds ``on_value``, else ``'off'``.
    Each call is a device call on the signal (it waits for other owners'
    ``with signal:`` blocks; an ``abort()`` fences it off) and writes through
    ``device.write_port``, so it waits for ``with device:`` blocks too.
    Cancelling a running ``trigger()`` ends its wait at once; it switches off
    in any case. :meth:`abort` switches the port off without waiting for any
    lock.

    :raises IODeviceError: ``device`` is not an :class:`IO`, or has no port ``port``.
    :raises LimitError: the port cannot hold ``on_value`` or ``off_value``
        (as the device checks it), or they are equal.
    """

    state = State(help="on or off: whether the port holds the on value")

    def __init__(self, port: Hashable, device: IO, on_value: Any = 1, off_value: Any = 0) -> None:
        if not isinstance(device, IO):
            raise IODeviceError(
                f"Signal(port={describe_value(port)}, device={describe_value(device)}): "
                "the device is not an IO device (concert.devices.io.base.IO)"
            )
        known: List[Hashable] = device["ports"].read()
        if port not in known:
            listed = ", ".join(map(repr, known)) or "none"
            raise IODeviceError(
                f"Signal(port={describe_value(port)}, device={device!r}): {device!r} has no port "
                f"{port!r} (it has: {listed})"
            )
        self._port = port
        self._io = device
        self._on_value = device._check_port_value_real(port, on_value)
        self._off_value = device._check_port_value_real(port, off_value)
        if self._on_value == self._off_value:
            raise LimitError(
                f"Signal(port={describe_value(port)}, device={device!r}): on_value and off_value are "
                f"both {describe_value(on_value)}; they must differ"
            )
        super().__init__()

    @property
    def port(self) -> Hashable:
        """The port of the IO device this signal drives."""
        return self._port

    @property
    def device(self) -> IO:
        """The IO device."""
        return self._io

    def _get_state(self) -> str:
        return "on" if self._io._read_port_real(self._port) == self._on_value else "off"

    @async_
    def on(self) -> None:
        """Return a future of switching the signal on (writing ``on_value`` to the port)."""
        with device_call(self, None):
            self._io.write_port(self._port, self._on_value).join()

    @async_
    def off(self) -> None:
        """Return a future of switching the signal off (writing ``off_value`` to the port)."""
        with device_call(self, None):
            self._io.write_port(self._port, self._off_value).join()

    @async_
    def trigger(self, duration: Any = 10 * q.ms) -> None:
        """Return a future of a pulse: on, ``duration`` (a time quantity or seconds) later off.

        The signal is switched off however the call ends (cancelled,
        failed); cancelling ends the wait at once.

        :raises UnitError: (in the future) ``duration`` is not a time.
        :raises LimitError: (in the future) ``duration`` is negative or not finite.
        """
        seconds = to_seconds(duration, "duration")
        if not 0 <= seconds < float("inf") or _negative(duration):
            raise LimitError(
                f"{self!r}.trigger(): duration={describe_value(duration)} must be a finite time >= 0"
            )
        with device_call(self, None):
            ended = threading.Event()
            try:
                self._io.write_port(self._port, self._on_value).join()
                with on_cancel(ended.set):
                    ended.wait(seconds)
            finally:
                self._io.write_port(self._port, self._off_value).join()

    def _abort(self) -> None:
        # Off at once, without waiting for anybody's exclusive access to the IO device.
        self._io._write_port_real(self._port, self._off_value)


def _negative(duration: Any) -> bool:
    """Whether ``duration`` (a number or quantity) is below zero (``to_seconds`` counts those as zero)."""
    magnitude = getattr(duration, "magnitude", duration)
    try:
        return bool(magnitude < 0)
    except TypeError:
        return False
