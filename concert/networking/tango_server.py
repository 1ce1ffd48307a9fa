"""Running a Tango device server without a Tango database, and telling clients where it is.

Concert serves its own devices and its walker over Tango (``concert tango
serve``, ``concert tango walker``) from servers that need no Tango database:
``-nodb`` servers, reached by clients through the host and port in the
device's URI, ``tango://HOST:PORT/a/b/c#dbase=no``. :func:`run_server`
starts such a server for PyTango high-level ``Device`` classes, on a given
port or on one the operating system chooses (``port=0``), and once the
server is up prints one line saying where it is::

    Serving a/b/c on port 41833: tango://127.0.0.1:41833/a/b/c#dbase=no

The port is read back from the server's own object reference
(:func:`ior_port`), so a script or a test that starts a server on port 0
learns the port from that line (:data:`ANNOUNCEMENT` matches it) instead of
guessing a free one and racing for it.

PyTango is imported when a server is run, not when this module is imported.
"""

from __future__ import annotations

import binascii
import re
import struct
import sys
from typing import Any, Callable, Optional, Sequence, TextIO, Tuple

from concert.exceptions import ConfigurationError
from concert.networking.tango import import_tango

__all__ = ["ANNOUNCEMENT", "device_uri", "ior_port", "run_server"]

#: Matches the line :func:`run_server` prints once the server is up; group 1 is the port.
ANNOUNCEMENT = re.compile(r"^Serving \S+ on port (\d+): ")

_DEVICE_NAME = re.compile(r"^[^/\s#:]+/[^/\s#:]+/[^/\s#:]+$")


def device_uri(host: str, port: int, name: str) -> str:
    """The URI a client gives :func:`~concert.networking.tango.get_tango_device` for a ``-nodb`` device."""
    return f"tango://{host}:{port}/{name}#dbase=no"


def ior_port(ior: str) -> int:
    """The TCP port of the first IIOP profile of a stringified CORBA object reference (``IOR:...``).

    Reads just what is needed, with CDR's byte-order octet and alignment:
    the reference's type id and profile sequence, then in the IIOP profile
    (tag 0, itself an encapsulation) the version, host and port.

    :raises ValueError: if ``ior`` is not a reference with an IIOP profile.
    """
    if not ior.startswith("IOR:"):
        raise ValueError(f"not a stringified object reference: {ior[:16]!r}")

    def cursor(buffer: bytes, offset: int) -> Tuple[Callable[[str], int], Callable[[int], bytes]]:
        endian = "<" if buffer[0] else ">"
        position = [offset]

        def take(fmt: str) -> int:
            size = struct.calcsize(fmt)
            start = (position[0] + size - 1) // size * size
            position[0] = start + size
            return struct.unpack_from(endian + fmt, buffer, start)[0]

        def octets(count: int) -> bytes:
            start = position[0]
            position[0] = start + count
            return buffer[start : start + count]

        return take, octets

    try:
        data = binascii.unhexlify(ior[4:])
        take, octets = cursor(data, 1)
        octets(take("I"))  # the type id
        for _ in range(take("I")):
            tag, profile = take("I"), octets(take("I"))
            if tag == 0:
                take_in, octets_in = cursor(profile, 1)
                octets_in(2)  # the IIOP version
                octets_in(take_in("I"))  # the host
                return take_in("H")
    except (binascii.Error, struct.error, IndexError) as error:
        raise ValueError(f"a malformed object reference: {error}") from None
    raise ValueError("the object reference has no IIOP profile")


def run_server(
    classes: Sequence[Any],
    name: str,
    port: int = 0,
    host: str = "",
    instance: Optional[str] = None,
    announce_host: str = "127.0.0.1",
    stream: Optional[TextIO] = None,
    post_init: Optional[Callable[[], None]] = None,
) -> None:
    """Run a database-less Tango device server exporting one device ``name``; return when it stops.

    ``classes`` are PyTango high-level ``Device`` classes, the first of which
    is the class of device ``name`` (``domain/family/member``). The server
    listens on ``host`` (``""``: every interface) and ``port`` (``0``: one the
    system chooses). Once it is up it runs ``post_init`` (in the server's
    thread), then prints the :data:`ANNOUNCEMENT` line with the port and the
    URI a client on this machine uses (with ``announce_host``) to ``stream``
    (default: standard output), flushed. Blocks in the calling thread until
    the server is shut down (SIGINT or SIGTERM end it, as PyTango does);
    a server that cannot start raises PyTango's exception (``DevFailed``).

    :raises ConfigurationError: for a malformed device name or port, or
        without PyTango (the ``tango`` extra).
    """
    if not isinstance(name, str) or not _DEVICE_NAME.match(name):
        raise ConfigurationError(f"Tango device name {name!r} is not of the form domain/family/member")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigurationError(f"port {port!r} is not a TCP port number (0 to 65535; 0: any free port)")
    tango = import_tango()
    server_name = classes[0].__name__
    out = sys.stdout if stream is None else stream

    def announce() -> None:
        if post_init is not None:
            post_init()
        util = tango.Util.instance()
        served = ior_port(util.get_dserver_ior(util.get_dserver_device()))
        out.write(f"Serving {name} on port {served}: {device_uri(announce_host, served, name)}\n")
        out.flush()

    args = [
        server_name,
        instance or "concert",
        "-nodb",
        "-dlist",
        name,
        "-ORBendPoint",
        f"giop:tcp:{host}:{port}",
    ]
    tango.server.run(tuple(classes), args=args, msg_stream=None, post_init_callback=announce, raises=True)
