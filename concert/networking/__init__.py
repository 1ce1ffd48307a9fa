"""Reaching other machines.

* :mod:`concert.networking.endpoints` -- where ZeroMQ sockets connect
  (:class:`~concert.networking.endpoints.CommData`,
  :class:`~concert.networking.endpoints.SocketType`);
* :mod:`concert.networking.base` -- the module path seed 003 names:
  :class:`~concert.networking.base.SocketConnection`, a thread-safe TCP
  client for line protocols, and the names above;
* :mod:`concert.networking.zmq` -- frame streams over ZeroMQ
  (:class:`~concert.networking.zmq.ZmqSender`,
  :class:`~concert.networking.zmq.ZmqReceiver`,
  :class:`~concert.networking.zmq.ZmqBroadcaster`), also offered here and in
  :mod:`concert.networking.base`. They are loaded when first asked for, so
  importing this package never imports pyzmq.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Names offered here that live in a module which needs pyzmq: loaded when first asked for.
_LAZY = {name: "concert.networking.zmq" for name in ("ZmqBroadcaster", "ZmqReceiver", "ZmqSender")}


def __getattr__(name: str) -> Any:
    source = _LAZY.get(name)
    if source is not None:
        return getattr(importlib.import_module(source), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
