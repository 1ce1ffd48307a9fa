"""Where and how a ZeroMQ socket binds or connects: :class:`CommData` and :class:`SocketType`.

Plain data, checked when made; pyzmq is never imported here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Optional

from concert.checks import is_integer
from concert.exceptions import ConfigurationError

__all__ = ["CommData", "SocketType"]


class SocketType(enum.IntEnum):
    """ZeroMQ socket types; the values are libzmq's, so ``context.socket(SocketType.PUSH)`` works."""

    PUB = 1
    SUB = 2
    REQ = 3
    REP = 4
    PULL = 7
    PUSH = 8


_PROTOCOLS = ("tcp", "ipc", "inproc")


@dataclass(frozen=True)
class CommData:
    """Where and how a ZeroMQ socket binds or connects (immutable, hashable).

    ``host`` is a host name or address for ``tcp``, a file path for ``ipc`` and a name for
    ``inproc``. ``tcp`` needs a ``port`` (1..65535); ``ipc`` and ``inproc`` take none.
    ``socket_type`` may also be given as a :class:`SocketType` name (``'pull'``) or value;
    it is stored as a :class:`SocketType`. ``sndhwm`` is the send high-water mark (0 means
    no limit in ZeroMQ).

    :raises ConfigurationError: (a :class:`ValueError`) naming the field and the value, for
        any invalid field.
    """

    host: str
    port: Optional[int] = None
    protocol: str = "tcp"
    socket_type: SocketType = SocketType.PUSH
    sndhwm: int = 1000

    def __post_init__(self) -> None:
        def invalid(reason: str) -> ConfigurationError:
            return ConfigurationError(f"{self!r}: {reason}")

        if not isinstance(self.host, str) or not self.host or self.host != self.host.strip():
            raise invalid(f"host={self.host!r} must be a non-empty string without surrounding spaces")
        if self.protocol not in _PROTOCOLS:
            raise invalid(f"protocol={self.protocol!r} must be one of {', '.join(_PROTOCOLS)}")
        if self.port is not None:
            if not is_integer(self.port) or not 1 <= self.port <= 65535:
                raise invalid(f"port={self.port!r} must be an int in 1..65535")
            if self.protocol != "tcp":
                raise invalid(f"port={self.port!r} makes no sense for protocol {self.protocol!r}")
        elif self.protocol == "tcp":
            raise invalid("protocol 'tcp' needs a port")
        if not is_integer(self.sndhwm) or self.sndhwm < 0:
            raise invalid(f"sndhwm={self.sndhwm!r} must be an int >= 0")
        object.__setattr__(self, "socket_type", _socket_type(self.socket_type, invalid))

    @property
    def server_endpoint(self) -> str:
        """The address to bind to: ``tcp://*:PORT`` (all interfaces), else the client endpoint."""
        if self.protocol == "tcp":
            return f"tcp://*:{self.port}"
        return self.client_endpoint

    @property
    def client_endpoint(self) -> str:
        """The address to connect to: ``tcp://HOST:PORT``, ``ipc://PATH`` or ``inproc://NAME``."""
        if self.protocol == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"{self.protocol}://{self.host}"


def _socket_type(value: Any, invalid: Callable[[str], ConfigurationError]) -> SocketType:
    if isinstance(value, SocketType):
        return value
    if isinstance(value, str) and value.upper() in SocketType.__members__:
        return SocketType[value.upper()]
    if is_integer(value):
        try:
            return SocketType(value)
        except ValueError:
            pass
    names = ", ".join(SocketType.__members__)
    raise invalid(f"socket_type={value!r} must be a SocketType or one of {names}")
