"""Small real PyTango device servers for the tests of the Tango client; run as a script.

``python tests/networking/tango_servers.py test -nodb -dlist a/b/c -ORBendPoint giop:tcp:127.0.0.1:0``
runs the server instance ``test`` exporting one :class:`Motorish` device
``a/b/c`` without a database. Once the server is up it prints one line,
``TANGO-PORT <port>``, to stdout (the port the operating system gave its
GIOP endpoint, read from the server's own IOR), so that a test starts it on
port 0 and learns the port without guessing or racing for a free one.

:class:`Motorish` is what a scientist meets on a beamline, in small:

* ``position``: a read-write ``float`` in ``mm`` (limits -100..100 mm);
* ``temperature``: a read-only ``float`` without a unit;
* ``velocity``: a read-write ``float`` whose unit, ``steps/s``, pint does not know;
* ``counts``: a read-only ``long`` in ``1/s`` (hertz for pint);
* ``name_tag``: a read-write string;
* ``writes``: a read-only ``long``, how many times ``position`` was written;
* commands ``Move(double)`` (sets the position, the state to MOVING and
  returns the old position), ``Stop()`` (state ON), ``Fail()`` (raises a
  Tango error of reason ``Motorish_Overheated``), ``Sleep(double)`` (holds
  the server for that many seconds: a hung server) and ``Calls()`` (how many
  commands ran).

The state is ON after start, MOVING after ``Move`` until ``Stop``.
"""

from __future__ import annotations

import binascii
import struct
import sys
import time

import tango
from tango.server import Device, attribute, command

__all__ = ["Motorish", "ior_port"]


class Motorish(Device):
    """A motor-like test device (see the module documentation)."""

    def init_device(self) -> None:
        super().init_device()
        self._position = 0.0
        self._velocity = 1.0
        self._name_tag = "motorish"
        self._calls = 0
        self._writes = 0
        self.set_state(tango.DevState.ON)
        self.set_status("The motor is idle")

    @attribute(dtype=float, unit="mm", min_value=-100, max_value=100, description="where the motor is")
    def position(self) -> float:
        return self._position

    @position.write
    def position(self, value: float) -> None:
        self._writes += 1
        self._position = value

    @attribute(dtype=int)
    def writes(self) -> int:
        return self._writes

    @attribute(dtype=float, description="a temperature without a unit")
    def temperature(self) -> float:
        return 21.5

    @attribute(dtype=float, unit="steps/s")
    def velocity(self) -> float:
        return self._velocity

    @velocity.write
    def velocity(self, value: float) -> None:
        self._velocity = value

    @attribute(dtype=int, unit="1/s")
    def counts(self) -> int:
        return 1234

    @attribute(dtype=str)
    def name_tag(self) -> str:
        return self._name_tag

    @name_tag.write
    def name_tag(self, value: str) -> None:
        self._name_tag = value

    @command(dtype_in=float, dtype_out=float)
    def Move(self, target: float) -> float:  # noqa: N802 - Tango command names are CamelCase
        self._calls += 1
        old, self._position = self._position, target
        self.set_state(tango.DevState.MOVING)
        self.set_status("The motor is moving")
        return old

    @command
    def Stop(self) -> None:  # noqa: N802
        self._calls += 1
        self.set_state(tango.DevState.ON)
        self.set_status("The motor is idle")

    @command
    def Fail(self) -> None:  # noqa: N802
        self._calls += 1
        tango.Except.throw_exception(
            "Motorish_Overheated", "the motor is too hot to move (85 degC)", "Motorish.Fail"
        )

    @command(dtype_in=float)
    def Sleep(self, seconds: float) -> None:  # noqa: N802
        self._calls += 1
        time.sleep(seconds)  # a hung server, on purpose

    @command(dtype_out=int)
    def Calls(self) -> int:  # noqa: N802
        return self._calls


def ior_port(ior: str) -> int:
    """The TCP port of the first IIOP profile of a stringified CORBA object reference (``IOR:...``).

    A CDR reader of just what is needed, with CDR's byte order octet and
    alignment: the IOR's type id and profile sequence, then in the IIOP
    profile (tag 0, itself an encapsulation) the version, host and port.
    """

    def cursor(buffer: bytes, offset: int):
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
    raise ValueError("the IOR has no IIOP profile")


def _announce_port() -> None:
    util = tango.Util.instance()
    print(f"TANGO-PORT {ior_port(util.get_dserver_ior(util.get_dserver_device()))}", flush=True)


if __name__ == "__main__":
    tango.server.run((Motorish,), args=["Motorish", *sys.argv[1:]], post_init_callback=_announce_port)
