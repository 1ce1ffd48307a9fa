"""Small real PyTango device servers for the tests of the Tango client; run as a script.

``python tests/networking/tango_servers.py [NAME]`` runs a server exporting
one :class:`Motorish` device ``NAME`` (default ``a/b/c``) without a
database on 127.0.0.1, on a port the system chooses, through
:func:`concert.networking.tango_server.run_server`, which prints the line
tests read the port from (:class:`tests.networking.servers.TangoProcess`).

:class:`Motorish` is what a scientist meets on a beamline, in small:

* ``position``: a read-write ``float`` in ``mm`` (limits -100..100 mm);
* ``temperature``: a read-only ``float`` without a unit;
* ``velocity``: a read-write ``float`` whose unit, ``steps/s``, pint does not know;
* ``counts``: a read-only ``long`` in ``1/s`` (hertz for pint);
* ``name_tag``: a read-write string;
* ``mode``: a read-write ``DevEnum`` with the labels ``SLOW``, ``FAST`` and
  ``TURBO`` (``SLOW`` after start);
* ``writes``: a read-only ``long``, how many times ``position`` was written;
* commands ``Move(double)`` (sets the position, the state to MOVING and
  returns the old position), ``Stop()`` (state ON), ``Fail()`` (raises a
  Tango error of reason ``Motorish_Overheated``), ``Sleep(double)`` (holds
  the server for that many seconds: a hung server) and ``Calls()`` (how many
  commands ran).

The state is ON after start, MOVING after ``Move`` until ``Stop``.
"""

from __future__ import annotations

import sys
import time

import tango
from tango.server import Device, attribute, command

from concert.networking.tango_server import run_server

__all__ = ["Motorish"]


class Motorish(Device):
    """A motor-like test device (see the module documentation)."""

    def init_device(self) -> None:
        super().init_device()
        self._position = 0.0
        self._velocity = 1.0
        self._name_tag = "motorish"
        self._mode = 0
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

    @attribute(dtype=tango.DevEnum, enum_labels=["SLOW", "FAST", "TURBO"], description="how fast it moves")
    def mode(self) -> int:
        return self._mode

    @mode.write
    def mode(self, value: int) -> None:
        self._mode = value

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


if __name__ == "__main__":
    # python tests/networking/tango_servers.py [NAME]: serve a Motorish as NAME (default a/b/c) on 127.0.0.1.
    run_server((Motorish,), sys.argv[1] if len(sys.argv) > 1 else "a/b/c", host="127.0.0.1", instance="test")
