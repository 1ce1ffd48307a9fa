"""IO devices: listing, reading and writing ports; unknown ports and bad values."""

from __future__ import annotations

import contextvars

import numpy as np
import pytest

from concert.devices.io.base import IODeviceError
from concert.devices.io.dummy import IO
from concert.exceptions import LimitError, ParameterError, WaitError
from tests.conftest import TIMEOUT


class CountingIO(IO):
    """Records the hardware writes."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.writes = []

    def _write_port_real(self, port, value) -> None:
        self.writes.append((port, value))
        super()._write_port_real(port, value)


def test_defaults():
    io = IO()
    assert io.ports == [0, 1, 2, 3]
    assert [io.read_port(port).result(TIMEOUT) for port in io.ports] == [0, 0, 0, 0]


def test_write_then_read():
    io = CountingIO()
    io.write_port(2, 1).join(TIMEOUT)
    io.write_port(3, True).join(TIMEOUT)
    assert [io.read_port(port).result(TIMEOUT) for port in io.ports] == [0, 0, 1, 1]
    io.write_port(2, np.uint8(0)).join(TIMEOUT)
    assert io.read_port(2).result(TIMEOUT) == 0
    assert io.writes == [(2, 1), (3, 1), (2, 0)]
    assert all(type(value) is int for _, value in io.writes)


def test_wider_ports():
    io = IO(port_count=2, bits=8)
    io.write_port(1, 255).join(TIMEOUT)
    assert io.read_port(1).result(TIMEOUT) == 255
    with pytest.raises(LimitError, match="256"):
        io.write_port(1, 256).join(TIMEOUT)


@pytest.mark.parametrize("port", [4, -1, "0", None, 1.5])
def test_unknown_port_is_refused(port):
    io = CountingIO()
    with pytest.raises(ParameterError) as info:
        io.write_port(port, 1).join(TIMEOUT)
    assert isinstance(info.value, IODeviceError)  # the legacy name of the same error
    message = str(info.value)
    assert repr(io) in message and repr(port) in message and "write 1" in message
    with pytest.raises(ParameterError) as info:
        io.read_port(port).join(TIMEOUT)
    assert repr(io) in str(info.value) and repr(port) in str(info.value)
    assert io.writes == []


@pytest.mark.parametrize("value", [2, -1, 0.5, 1.0, "1", None, float("nan")])
def test_bad_value_is_refused_before_the_hardware(value):
    io = CountingIO()
    with pytest.raises(LimitError) as info:
        io.write_port(1, value).join(TIMEOUT)
    message = str(info.value)
    assert repr(io) in message and "port 1" in message and repr(value) in message
    assert io.writes == [] and io.read_port(1).result(TIMEOUT) == 0


def test_errors_are_stored_in_the_future_not_raised_at_the_call():
    io = IO()
    future = io.write_port(99, 1)  # must not raise here
    assert isinstance(future.exception(TIMEOUT), ParameterError)


def test_writes_wait_for_another_owners_with_block_reads_do_not(asynchronous):
    io = IO()
    with io:
        stranger = contextvars.Context().run(io.write_port, 0, 1)
        with pytest.raises(WaitError):
            stranger.wait(0.2)
        assert contextvars.Context().run(io.read_port, 0).result(TIMEOUT) == 0
        io.write_port(1, 1).join(TIMEOUT)  # the block's own work proceeds
    stranger.join(TIMEOUT)
    assert io.read_port(0).result(TIMEOUT) == 1
