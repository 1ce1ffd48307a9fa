"""Reaching other machines: where ZeroMQ sockets connect (:mod:`concert.networking.endpoints`)."""
