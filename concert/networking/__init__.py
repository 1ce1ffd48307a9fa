"""Reaching other machines.

* :mod:`concert.networking.endpoints` -- where ZeroMQ sockets connect
  (:class:`~concert.networking.endpoints.CommData`,
  :class:`~concert.networking.endpoints.SocketType`);
* :mod:`concert.networking.base` -- the module path seed 003 names:
  :class:`~concert.networking.base.SocketConnection`, a thread-safe TCP
  client for line protocols, and the names above.
"""
