"""The Tango client against real PyTango device servers on 127.0.0.1 (tests/networking/tango_servers.py).

Servers run as subprocesses without a database, in a session of their own
(their process group is killed by the fixture's finalizer), on port 0: the
server prints the port it got. Client timeouts are at most 3 s; every wait
is bounded. One module-scoped server serves most tests; tests that kill or
hang a server start one of their own.
"""

from __future__ import annotations

import socket
import time

import pytest

from concert.devices.tango import STATES, TangoDevice
from concert.exceptions import (
    ConcertError,
    ConfigurationError,
    HardLimitError,
    NetworkingError,
    TangoError,
    UnitError,
    WriteAccessError,
)
from concert.futures import Future
from concert.networking.tango import command_inout, get_tango_device
from concert.parameters import QuantityValue, SelectionValue
from concert.quantities import q
from tests.conftest import TIMEOUT, run_python
from tests.networking.servers import TangoProcess

CLIENT_TIMEOUT = 2 * q.s


def Server() -> TangoProcess:  # noqa: N802 - reads as the class it used to be
    return TangoProcess.motorish()


@pytest.fixture(scope="module")
def server():
    server = Server()
    yield server
    server.kill()


@pytest.fixture
def own_server():
    server = Server()
    yield server
    server.kill()


@pytest.fixture
def device(server):
    device = TangoDevice(server.uri, timeout=CLIENT_TIMEOUT)
    yield device
    device.Stop().join(TIMEOUT)
    device.position = 0 * q.mm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- attributes ------------------------------------------------------------------------------


def test_quantity_attribute_reads_and_writes_with_its_unit(device):
    assert isinstance(device["position"], QuantityValue)
    assert device["position"].unit == q.mm
    device.position = 3 * q.mm
    assert device.position == 3 * q.mm
    device.set_position(2500 * q.um).join(TIMEOUT)
    assert device.get_position().result(TIMEOUT).to(q.mm).magnitude == pytest.approx(2.5)
    assert device["position"].target == 2.5 * q.mm  # Tango's set point
    assert device["position"].help == "where the motor is"
    assert device.counts == 1234 / q.s  # an integer attribute in 1/s


def test_bad_unit_and_hard_limit_refused_before_the_server_is_asked(device):
    writes = device.writes
    with pytest.raises(UnitError, match=r"position.*3 s"):
        device.position = 3 * q.s
    with pytest.raises(UnitError):
        device.position = 3
    with pytest.raises(HardLimitError, match="100 mm"):
        device.position = 200 * q.mm  # the attribute's max_value
    assert device["position"].upper == 100 * q.mm
    assert device.writes == writes  # nothing reached the server
    assert device.position == 0 * q.mm


def test_attributes_without_a_unit_pint_knows_are_plain_parameters(device):
    assert not isinstance(device["temperature"], QuantityValue)
    assert device.temperature == 21.5
    assert not device["temperature"].writable  # read-only in Tango
    with pytest.raises(WriteAccessError, match="temperature"):
        device.temperature = 30.0
    assert not isinstance(device["velocity"], QuantityValue)  # 'steps/s' is not a pint unit
    device.velocity = 2.5
    assert device.velocity == 2.5
    with pytest.raises(UnitError, match=r"velocity = 2 mm/s.*no unit"):
        device.velocity = 2 * q.mm / q.s
    device.name_tag = "slit-1"
    assert device.name_tag == "slit-1"
    with pytest.raises(ConfigurationError, match="name_tag"):
        device.name_tag = object()
    assert device.Status == "The motor is idle"
    device.velocity = 1.0


def test_an_enum_attribute_is_a_selection_of_its_labels(device):
    assert isinstance(device["mode"], SelectionValue)
    assert device["mode"].values == ["SLOW", "FAST", "TURBO"]
    assert device["mode"].help == "how fast it moves"
    assert device.mode == "SLOW"
    try:
        device.mode = "TURBO"
        assert device.mode == "TURBO"
        assert device["mode"].target == "TURBO"
        assert device.proxy.read_attribute("mode").value == 2  # Tango got the label's index
        for wrong in ("turbo", 2, 1.0, None, "FAST "):
            with pytest.raises(WriteAccessError, match=r"\['mode'\].*not one of .*'SLOW', 'FAST', 'TURBO'"):
                device.mode = wrong
        assert device.proxy.read_attribute("mode").value == 2  # nothing reached the server
    finally:
        device.mode = "SLOW"


def test_units_can_be_given_per_attribute(server):
    device = TangoDevice(server.uri, timeout=CLIENT_TIMEOUT, units={"velocity": "mm/s", "position": None})
    assert device["velocity"].unit == q.mm / q.s
    device.velocity = 2 * q.mm / q.s
    assert device.velocity == 2 * q.mm / q.s
    device.velocity = 1 * q.mm / q.s
    assert not isinstance(device["position"], QuantityValue)
    with pytest.raises(ConfigurationError, match="speed"):
        TangoDevice(server.uri, timeout=CLIENT_TIMEOUT, units={"speed": "mm/s"})
    with pytest.raises(ConfigurationError, match="velocity"):
        TangoDevice(server.uri, timeout=CLIENT_TIMEOUT, units={"velocity": "no such unit"})
    with pytest.raises(ConfigurationError, match=r"name_tag.*not one number"):
        TangoDevice(server.uri, timeout=CLIENT_TIMEOUT, units={"name_tag": "mm"})
    with pytest.raises(ConfigurationError, match=r"mode.*not one number"):
        TangoDevice(server.uri, timeout=CLIENT_TIMEOUT, units={"mode": "mm"})
    plain = TangoDevice(server.uri, timeout=CLIENT_TIMEOUT, units={"mode": None})
    assert not isinstance(plain["mode"], SelectionValue)  # None: as Tango has it, the index
    assert plain.mode == 0


# -- commands and state -------------------------------------------------------------------------


def test_command_returns_a_future_and_the_state_follows_tango(device):
    assert device.state == "standby"  # Tango ON
    device.position = 1 * q.mm
    future = device.Move(4.0)
    assert isinstance(future, Future)
    assert future.name.startswith(f"{device!r}.Move(")  # named after the device, as any method call
    assert future.result(TIMEOUT) == 1.0  # the command's result: the old position
    assert device.state == "moving"  # Tango MOVING
    assert device.position == 4 * q.mm
    device.Stop().join(TIMEOUT)
    assert device.state == "standby"
    assert STATES["FAULT"] == "error"
    assert {"Move", "Stop", "Fail", "Init"} <= set(device.commands)


def test_wrong_command_arguments_are_refused(device):
    calls = device.Calls().result(TIMEOUT)
    with pytest.raises(ConfigurationError, match=r"Move\(\).*one argument"):
        device.Move().join(TIMEOUT)
    with pytest.raises(ConfigurationError, match="no argument"):
        device.Stop(1).join(TIMEOUT)
    with pytest.raises(UnitError, match=r"Move\(3 mm\).*plain values"):
        device.Move(3 * q.mm).join(TIMEOUT)
    with pytest.raises(ConfigurationError, match=r"Move\('far'\): the command Move takes DevDouble; 'far'"):
        device.Move("far").join(TIMEOUT)
    assert device.Calls().result(TIMEOUT) == calls


def test_command_inout_packs_the_argument_in_the_commands_type(server):
    proxy = get_tango_device(server.uri, timeout=CLIENT_TIMEOUT)
    info = {info.cmd_name: info for info in proxy.command_list_query()}
    proxy.write_attribute("position", 1.5)
    calls = command_inout(proxy, info["Calls"])
    assert command_inout(proxy, info["Move"], 2) == 1.5  # an int for a DevDouble, converted
    assert proxy.read_attribute("position").value == 2.0
    with pytest.raises(TypeError, match=r"command Move takes DevDouble; \[1, 2\] does not convert"):
        command_inout(proxy, info["Move"], [1, 2])
    command_inout(proxy, info["Stop"])
    assert command_inout(proxy, info["Calls"]) == calls + 2  # Move and Stop: the refused one did not count
    proxy.write_attribute("position", 0.0)


def test_a_failing_command_keeps_the_tango_reason_and_description(device):
    with pytest.raises(ConcertError) as caught:
        device.Fail().join(TIMEOUT)
    error = caught.value
    assert isinstance(error, TangoError)
    assert error.reason == "Motorish_Overheated"
    assert error.description == "the motor is too hot to move (85 degC)"
    assert error.origin == "Motorish.Fail"
    assert error.errors[0] == ("Motorish_Overheated", error.description, error.origin)
    message = str(error)
    assert message.startswith("TangoDevice#")
    assert "(a/b/c).Fail(): Motorish_Overheated: the motor is too hot to move (85 degC)" in message
    assert device.state == "standby"  # the device is usable afterwards


def test_abort_runs_the_tango_stop(device):
    device.Move(2.0).join(TIMEOUT)
    assert device.state == "moving"
    device.abort().join(TIMEOUT)
    assert device.state == "standby"


# -- get_tango_device ---------------------------------------------------------------------------


def test_get_tango_device_applies_peer_and_timeout(server):
    proxy = get_tango_device("a/b/c#dbase=no", peer=f"127.0.0.1:{server.port}", timeout=1500 * q.ms)
    assert proxy.get_timeout_millis() == 1500
    assert proxy.read_attribute("temperature").value == 21.5
    assert TangoDevice(proxy).temperature == 21.5  # a proxy is used as it is
    assert get_tango_device(server.uri, timeout=2).get_timeout_millis() == 2000


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: get_tango_device("tango:://nonsense"), ConfigurationError, "UnsupportedProtocol"),
        (lambda: get_tango_device("tango://h:1/a/b/c", peer="h:2"), ConfigurationError, "either"),
        (lambda: get_tango_device("a/b/c", peer="h:1/x"), ConfigurationError, "host:port"),
        (lambda: get_tango_device(""), ConfigurationError, "non-empty"),
        (lambda: get_tango_device("a/b/c#dbase=no", timeout=0), ConfigurationError, "longer than zero"),
        (lambda: get_tango_device("a/b/c#dbase=no", timeout=3 * q.mm), UnitError, "timeout"),
        (lambda: TangoDevice(42), ConfigurationError, "42"),
    ],
)
def test_wrong_use_of_get_tango_device(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_no_server_is_a_networking_error_within_the_timeout():
    uri = f"tango://127.0.0.1:{free_port()}/a/b/c#dbase=no"
    started = time.monotonic()
    with pytest.raises(NetworkingError, match=r"a/b/c.*API_"):
        TangoDevice(uri, timeout=1 * q.s)
    assert time.monotonic() - started < 2 * 1 + 3


def test_a_device_the_server_does_not_have_is_a_networking_error(server):
    with pytest.raises(NetworkingError, match=r"x/y/z.*API_DeviceNotDefined"):
        TangoDevice(f"tango://127.0.0.1:{server.port}/x/y/z#dbase=no", timeout=CLIENT_TIMEOUT)


# -- servers that hang or die ---------------------------------------------------------------------


def test_a_hung_server_is_a_networking_error_within_the_timeout(own_server):
    device = TangoDevice(own_server.uri, timeout=0.5 * q.s)
    started = time.monotonic()
    with pytest.raises(NetworkingError, match=r"Sleep\(3\.0\).*API_DeviceTimedOut") as caught:
        device.Sleep(3.0).join(TIMEOUT)
    assert time.monotonic() - started < 2 * 0.5 + 3
    assert caught.value.reason  # Tango's reason is kept here too


def test_a_server_killed_mid_session_is_a_networking_error_not_a_hang(own_server):
    device = TangoDevice(own_server.uri, timeout=1 * q.s)
    device.position = 2 * q.mm
    own_server.kill()
    for action in (lambda: device.position, lambda: device.state, lambda: device.Move(1.0).join(TIMEOUT)):
        started = time.monotonic()
        with pytest.raises(NetworkingError, match=r"TangoDevice#\d+\(a/b/c\)"):
            action()
        assert time.monotonic() - started < 2 * 1 + 3


# -- imports ---------------------------------------------------------------------------------


def test_pytango_is_imported_only_when_a_device_is_asked_for():
    result = run_python(
        "import sys\n"
        "import concert.networking.base as base, concert.devices.tango\n"
        "assert 'tango' not in sys.modules, 'imported too early'\n"
        "get = base.get_tango_device\n"
        "assert 'get_tango_device' not in base.__all__\n"
        "assert 'tango' not in sys.modules, 'imported by the lookup'\n"
        "from concert.networking.tango import get_tango_device\n"
        "assert get is get_tango_device\n"
        "print('ok')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_missing_pytango_says_how_to_install_it():
    result = run_python(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tango' or name.startswith('tango.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "from concert.devices.tango import TangoDevice\n"
        "from concert.exceptions import ConfigurationError\n"
        "try:\n"
        "    TangoDevice('a/b/c')\n"
        "except ConfigurationError as error:\n"
        "    print(error)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'concert[tango]'" in result.stdout
