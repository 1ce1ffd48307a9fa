"""Networking under the name seed 003 gives it: :class:`SocketConnection`, a line-protocol TCP client.

Many controllers (motor drivers, pressure gauges, temperature controllers)
speak a plain text protocol over TCP: a command ends with a return sequence
(a newline, ``\\r\\n``), and so does each reply. :class:`SocketConnection` is
a client for them. The module also offers what :mod:`concert.networking`
has elsewhere, so that ``from concert.networking.base import CommData``
works: :class:`~concert.networking.endpoints.CommData` and
:class:`~concert.networking.endpoints.SocketType`, and -- loaded when first
asked for, so that importing this module never imports pyzmq --
:class:`~concert.networking.zmq.ZmqSender`,
:class:`~concert.networking.zmq.ZmqReceiver` and
:class:`~concert.networking.zmq.ZmqBroadcaster` (documented in
:mod:`concert.networking.zmq`, not listed in ``__all__`` here), and
:func:`~concert.networking.tango.get_tango_device` (documented in
:mod:`concert.networking.tango`; PyTango is imported only when it is called).
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from typing import Any, Optional, Union

from concert.checks import is_integer
from concert.exceptions import ConfigurationError, NetworkingError
from concert.networking.endpoints import CommData, SocketType
from concert.timeouts import to_seconds

__all__ = ["CommData", "SocketConnection", "SocketType"]

Data = Union[str, bytes, bytearray]

#: Names offered here that live in a module which needs pyzmq or PyTango: loaded when first asked for.
_LAZY = {name: "concert.networking.zmq" for name in ("ZmqBroadcaster", "ZmqReceiver", "ZmqSender")}
_LAZY["get_tango_device"] = "concert.networking.tango"  # importing it does not import PyTango either


def __getattr__(name: str) -> Any:
    source = _LAZY.get(name)
    if source is not None:
        return getattr(importlib.import_module(source), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SocketConnection:
    """A two-way TCP connection to ``host:port`` speaking a line protocol; thread-safe.

    ``return_sequence`` (a non-empty ``str`` or ``bytes``, default ``'\\n'``)
    ends every command sent and every reply received. ``timeout`` (seconds or
    a time quantity, default 10 s) bounds every call: connecting, sending,
    waiting for a reply, and waiting for another thread's command on the
    same connection to finish. ``encoding`` turns ``str`` commands into
    bytes and replies back into ``str``.

    The connection opens on first use (or with :meth:`connect`, or a
    ``with`` block, which also closes it). Every call holds the connection
    for itself: :meth:`execute` sends and reads the reply as one step, so
    threads sharing a connection never get each other's replies.

    Any failure -- refused, unreachable, closed by the peer, no reply within
    the timeout -- raises :class:`~concert.exceptions.NetworkingError`
    naming the connection (host and port) and the command, and closes the
    connection, since what the peer will send next is unknown (a late
    reply would be taken for the next command's); the next call opens a new
    one. Calls are blocking; wrap them in :func:`~concert.futures.async_`
    for a Future.

    :raises ConfigurationError: for an invalid ``host``, ``port`` (1..65535),
        ``return_sequence``, ``timeout`` (it must be longer than zero) or
        ``encoding``.
    :raises UnitError: for a ``timeout`` that is not a duration.
    """

    def __init__(
        self,
        host: str,
        port: int,
        return_sequence: Union[str, bytes] = "\n",
        timeout: Any = 10.0,
        encoding: str = "utf-8",
    ) -> None:
        def invalid(reason: str) -> ConfigurationError:
            return ConfigurationError(f"SocketConnection({host!r}, {port!r}): {reason}")

        if not isinstance(host, str) or not host or host != host.strip():
            raise invalid(f"host={host!r} must be a non-empty string without surrounding spaces")
        if not is_integer(port) or not 1 <= port <= 65535:
            raise invalid(f"port={port!r} must be an int in 1..65535")
        if not isinstance(encoding, str):
            raise invalid(f"encoding={encoding!r} must be the name of a text encoding")
        try:
            "".encode(encoding)
        except LookupError:
            raise invalid(f"encoding={encoding!r} is not a known text encoding") from None
        if isinstance(return_sequence, str):
            terminator = return_sequence.encode(encoding)
        elif isinstance(return_sequence, (bytes, bytearray)):
            terminator = bytes(return_sequence)
        else:
            raise invalid(f"return_sequence={return_sequence!r} must be a str or bytes")
        if not terminator:
            raise invalid("return_sequence must not be empty (it is what ends a command and a reply)")
        seconds = to_seconds(timeout, "timeout")
        if not 0 < seconds < float("inf"):
            raise invalid(f"timeout={timeout!r} must be a duration longer than zero and finite")
        self._host, self._port = host, int(port)
        self._return_sequence = return_sequence
        self._terminator = terminator
        self._timeout = seconds
        self._encoding = encoding
        # Guarded by _lock: the socket (None while closed) and the bytes received after the last reply.
        self._lock = threading.RLock()
        self._socket: Optional[socket.socket] = None
        self._buffer = bytearray()
        self._last_sent: Optional[str] = None

    # -- description ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The peer's host name or address."""
        return self._host

    @property
    def port(self) -> int:
        """The peer's TCP port."""
        return self._port

    @property
    def return_sequence(self) -> Union[str, bytes]:
        """What ends every command and every reply."""
        return self._return_sequence

    @property
    def timeout(self) -> float:
        """The longest any call takes before it fails, in seconds."""
        return self._timeout

    @property
    def connected(self) -> bool:
        """Whether the connection is open (as far as this side knows)."""
        return self._socket is not None

    def __repr__(self) -> str:
        return f"SocketConnection({self._host!r}, {self._port})"

    # -- opening and closing -----------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (nothing happens if it is open).

        :raises NetworkingError: if the peer refuses, cannot be reached or
            does not accept within the timeout.
        """
        deadline = time.monotonic() + self._timeout
        with self._held(deadline, "connecting"):
            self._open(deadline, "connecting")

    def close(self) -> None:
        """Close the connection; harmless if closed. Waits for a call of another thread to end first."""
        with self._lock:
            self._drop()

    def __enter__(self) -> SocketConnection:
        self.connect()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- talking ---------------------------------------------------------------------------------

    def send(self, data: Data) -> None:
        """Send ``data`` (``str`` or ``bytes``) followed by the return sequence.

        :raises NetworkingError: if it cannot be sent within the timeout.
        :raises ConfigurationError: if ``data`` is neither ``str`` nor ``bytes``.
        """
        payload, shown = self._encode(data)
        deadline = time.monotonic() + self._timeout
        with self._held(deadline, f"sending {shown}"):
            self._send(payload, shown, deadline)

    def recv(self, num: int = 1024) -> str:
        """Return the next reply: what arrives up to the next return sequence, which is removed.

        However the bytes arrive -- one reply split over many packets, or
        several replies in one -- each call returns exactly one reply;
        what arrived after it is kept for the next call. ``num`` is how many
        bytes are read from the socket at a time.

        :raises NetworkingError: if no whole reply arrives within the
            timeout, the peer closes the connection, or the reply is not
            text in the connection's encoding.
        :raises ConfigurationError: if ``num`` is not a positive int.
        """
        self._check_num(num)
        deadline = time.monotonic() + self._timeout
        doing = "waiting for a reply" + (f" (last sent: {self._last_sent})" if self._last_sent else "")
        with self._held(deadline, doing):
            return self._recv(num, deadline, doing)

    def execute(self, data: Data, num: int = 1024) -> str:
        """Send ``data`` and return the reply to it, as one step no other thread can come between.

        :raises NetworkingError: as :meth:`send` and :meth:`recv` do, all
            within one timeout.
        :raises ConfigurationError: for ``data`` that is neither ``str`` nor
            ``bytes``, or a ``num`` that is not a positive int.
        """
        self._check_num(num)
        payload, shown = self._encode(data)
        deadline = time.monotonic() + self._timeout
        with self._held(deadline, f"executing {shown}"):
            self._send(payload, shown, deadline)
            return self._recv(num, deadline, f"waiting for the reply to {shown}")

    # -- the parts (callers hold _lock) --------------------------------------------------------------

    def _held(self, deadline: float, doing: str) -> _Held:
        return _Held(self, deadline, doing)

    def _fail(self, doing: str, reason: str) -> NetworkingError:
        was_open = self._socket is not None
        self._drop()
        closed = " (the connection is closed; the next call opens a new one)" if was_open else ""
        return NetworkingError(f"{self!r}: {doing}: {reason}{closed}")

    def _drop(self) -> None:
        sock, self._socket = self._socket, None
        self._buffer.clear()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _open(self, deadline: float, doing: str) -> socket.socket:
        if self._socket is not None:
            return self._socket
        where = f"{self._host}:{self._port}"
        try:
            sock = socket.create_connection((self._host, self._port), timeout=_for_socket(deadline))
        except socket.timeout:
            raise self._fail(
                doing, f"{where} did not accept a connection within {self._timeout:g} s"
            ) from None
        except ConnectionRefusedError:
            raise self._fail(
                doing, f"{where} refused the connection (is anything listening there?)"
            ) from None
        except OSError as error:
            raise self._fail(doing, f"cannot connect to {where}: {error}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # commands are small: no delay
        except OSError:
            pass
        self._socket = sock
        self._buffer.clear()
        return sock

    def _encode(self, data: Data) -> tuple:
        if isinstance(data, str):
            try:
                return data.encode(self._encoding) + self._terminator, repr(data)
            except UnicodeEncodeError as error:
                raise ConfigurationError(
                    f"{self!r}: cannot send {data!r}: it is not {self._encoding} text ({error})"
                ) from None
        if isinstance(data, (bytes, bytearray)):
            return bytes(data) + self._terminator, repr(bytes(data))
        raise ConfigurationError(f"{self!r}: cannot send {data!r}: give a str or bytes")

    def _check_num(self, num: Any) -> None:
        if not is_integer(num) or num < 1:
            raise ConfigurationError(f"{self!r}: num={num!r} must be a positive int (bytes read at a time)")

    def _send(self, payload: bytes, shown: str, deadline: float) -> None:
        doing = f"sending {shown}"
        sock = self._open(deadline, doing)
        try:
            sock.settimeout(_for_socket(deadline))
            sock.sendall(payload)
        except socket.timeout:
            raise self._fail(doing, f"it could not be sent within {self._timeout:g} s") from None
        except OSError as error:
            raise self._fail(doing, f"the connection failed: {error}") from None
        self._last_sent = shown

    def _recv(self, num: int, deadline: float, doing: str) -> str:
        sock = self._open(deadline, doing)
        terminator, buffer = self._terminator, self._buffer
        searched = 0  # the buffer before this offset holds no whole terminator
        while True:
            index = buffer.find(terminator, searched)
            if index >= 0:
                reply = bytes(buffer[:index])
                del buffer[: index + len(terminator)]
                try:
                    return reply.decode(self._encoding)
                except UnicodeDecodeError as error:
                    raise NetworkingError(
                        f"{self!r}: {doing}: the reply {reply!r} is not {self._encoding} text ({error})"
                    ) from None
            searched = max(0, len(buffer) - len(terminator) + 1)
            remaining = _remaining(deadline)
            if remaining <= 0:
                raise self._fail(doing, f"no whole reply within {self._timeout:g} s" + _partial(buffer))
            try:
                sock.settimeout(_for_socket(deadline))
                chunk = sock.recv(num)
            except socket.timeout:
                raise self._fail(
                    doing, f"no whole reply within {self._timeout:g} s" + _partial(buffer)
                ) from None
            except OSError as error:
                raise self._fail(doing, f"the connection failed: {error}") from None
            if not chunk:
                raise self._fail(doing, "the peer closed the connection" + _partial(buffer))
            buffer += chunk


class _Held:
    """``with`` the connection's lock, waited for until the call's deadline."""

    __slots__ = ("_connection", "_deadline", "_doing")

    def __init__(self, connection: SocketConnection, deadline: float, doing: str) -> None:
        self._connection, self._deadline, self._doing = connection, deadline, doing

    def __enter__(self) -> None:
        connection = self._connection
        if not connection._lock.acquire(timeout=_remaining(self._deadline)):
            raise NetworkingError(
                f"{connection!r}: {self._doing}: the connection stayed busy with another thread's "
                f"command for {connection._timeout:g} s"
            )

    def __exit__(self, *exc_info: Any) -> None:
        self._connection._lock.release()


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _for_socket(deadline: float) -> float:
    # A socket timeout of 0 would make the socket non-blocking: a deadline just reached gets 1 ms.
    return max(0.001, deadline - time.monotonic())


def _partial(buffer: bytearray) -> str:
    return f" (received so far: {bytes(buffer)!r})" if buffer else ""
