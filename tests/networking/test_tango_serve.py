"""``concert tango serve``: Concert devices served over Tango by real subprocesses, driven with TangoDevice.

Each server is ``python -m concert tango serve ... --port 0`` in a session
of its own (:class:`tests.networking.servers.TangoProcess`, which reads the
port from the line the command prints and kills the process group); the
module's servers start in parallel, once. Clients in this process use
timeouts of 2 s; every wait is bounded (TIMEOUT). A test that moves the
served motor leaves it at rest, wherever it stopped.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import CancelledError
from typing import Dict, List, Optional

import pytest

from concert.devices.motors.dummy import LinearMotor
from concert.devices.shutters.dummy import Shutter
from concert.devices.tango import TangoDevice
from concert.exceptions import (
    ConfigurationError,
    HardLimitError,
    NetworkingError,
    ReadAccessError,
    SoftLimitError,
    StateError,
    TangoError,
    UnitError,
)
from concert.futures import Future
from concert.networking.tango import decode_value, encode_value
from concert.networking.tango_command import load_device
from concert.networking.tango_export import check_address
from concert.parameters import QuantityValue
from concert.quantities import q
from tests.conftest import TIMEOUT
from tests.networking.servers import ROOT, TangoProcess

CLIENT_TIMEOUT = 2 * q.s
FAR = 500  # mm: a move of 5 s at the motor's 100 mm/s, stopped part-way by every test that starts one

#: Devices of the tests' own, served from a file (``concert tango serve FILE.py:FACTORY``).
FACTORIES = '''
import enum
import threading
import time

from concert.devices.base import Device
from concert.futures import async_, check_cancelled
from concert.parameters import Parameter, Quantity
from concert.quantities import q


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


class Gadget(Device):
    """A parameter of every kind, and methods taking and returning values."""

    length = Quantity(q.mm, lower=-10 * q.mm, upper=10 * q.mm, help="a length within soft limits")
    secret = Quantity(q.V, fget=None, help="write-only")
    enabled = Parameter(help="a switch")
    count = Parameter(help="a whole number")
    ratio = Parameter(help="a plain number")
    label = Parameter(help="a text")
    colour = Parameter(help="an enum member")
    ports = Parameter(help="a list: not exported")

    def __init__(self):
        self._values = dict(length=0 * q.mm, secret=0 * q.V, enabled=False, count=3, ratio=0.5,
                            label="gadget", colour=Colour.RED, ports=[1, 2])
        super().__init__()

    for _name in ("length", "enabled", "count", "ratio", "label", "colour", "ports"):
        exec(f"def _get_{_name}(self): return self._values[{_name!r}]")
        exec(f"def _set_{_name}(self, value): self._values[{_name!r}] = value")
    del _name

    def _set_secret(self, value):
        self._values["secret"] = value

    @async_
    def scale(self, factor, offset=0):
        """count * factor + offset"""
        return self._values["count"] * factor + offset

    @async_
    def add(self, amount):
        self.length = self.length + amount
        return self.length

    @async_
    def fail(self):
        raise ValueError("the gadget broke")

    @async_
    def slow(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            check_cancelled()
            threading.Event().wait(0.01)
        return "done"

    @async_
    def configure(self, *, mode):
        """Not exported: a required keyword-only parameter."""


def broken():
    raise ValueError("no hardware attached")
'''


def serve(factory: str, name: str, env: Optional[Dict[str, str]] = None) -> TangoProcess:
    return TangoProcess.concert("tango", "serve", factory, "--name", name, "--port", "0", name=name, env=env)


def serve_all(specs: Dict[str, tuple]) -> Dict[str, TangoProcess]:
    """Start several servers at once (each start waits for a subprocess to import PyTango).

    ``specs`` maps a key to the arguments of :func:`serve`.
    """
    started: Dict[str, TangoProcess] = {}
    failed: List[BaseException] = []

    def start(key: str, arguments: tuple) -> None:
        try:
            started[key] = serve(*arguments)
        except BaseException as error:  # reported below, in the test's thread
            failed.append(error)

    threads = [threading.Thread(target=start, args=item) for item in specs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    if failed:
        for process in started.values():
            process.kill()
        raise failed[0]
    return started


@pytest.fixture(scope="module")
def factories(tmp_path_factory):
    path = tmp_path_factory.mktemp("factories") / "gadgets.py"
    path.write_text(FACTORIES)
    return path


@pytest.fixture(scope="module")
def servers(factories):
    started = serve_all(
        {
            "motor": ("concert.devices.motors.dummy:LinearMotor", "test/motor/1"),
            "gadget": (f"{factories}:Gadget", "test/gadget/1"),
            "camera": ("concert.devices.cameras.dummy:Camera", "test/camera/1"),
            "shutter": ("concert.devices.shutters.dummy:Shutter", "test/shutter/1"),
        }
    )
    yield started
    for process in started.values():
        process.kill()


@pytest.fixture
def motor(servers):
    motor = TangoDevice(servers["motor"].uri, timeout=CLIENT_TIMEOUT)
    yield motor
    motor.stop().join(TIMEOUT)
    assert motor.state == "standby"


@pytest.fixture
def gadget(servers):
    return TangoDevice(servers["gadget"].uri, timeout=CLIENT_TIMEOUT)


def far_from(motor: TangoDevice) -> q.Quantity:
    """A target FAR away, on the side of zero that keeps the motor within its travel."""
    return (-FAR if motor.position > 0 * q.mm else FAR) * q.mm


def wait_moving(motor: TangoDevice) -> None:
    motor["state"].wait("moving", sleep_time=0.005 * q.s, timeout=TIMEOUT).join(TIMEOUT)


def same_message(remote: BaseException, remote_device, local: BaseException, local_device) -> None:
    """The messages agree but for the device's name."""
    assert str(remote).replace(repr(remote_device), "DEVICE") == str(local).replace(
        repr(local_device), "DEVICE"
    )
    assert repr(remote_device) in str(remote)


# -- what a served device looks like ----------------------------------------------------------------


def test_a_served_motor_has_its_parameters_with_units_and_limits_and_its_methods(motor):
    assert motor.served
    assert isinstance(motor["position"], QuantityValue) and motor["position"].unit == q.mm
    assert motor["position"].lower == -1000 * q.mm  # the dummy's travel, fixed: Tango's min/max_value
    assert motor["position"].upper == 1000 * q.mm
    assert motor["motion_velocity"].unit == q.mm / q.s
    assert motor["motion_velocity"].upper == 10000 * q.mm / q.s
    assert not motor["velocity"].writable
    assert {"move", "stop", "home", "reset", "abort", "emergency_stop"} <= set(motor.commands)
    assert not {"stash", "restore", "ConcertWait", "ConcertCancel"} & set(motor.commands)
    info = motor.proxy.get_attribute_config("position")
    assert (info.unit, float(info.min_value), float(info.max_value)) == ("mm", -1000, 1000)
    assert str(motor.proxy.state()) == "STANDBY"
    assert motor.Status == "LinearMotor#1 is standby"
    assert motor.state == "standby"


def test_moves_arrive_at_their_targets(motor):
    start = motor.position
    motor.position = start + 2 * q.mm  # over within the call
    assert motor.position == start + 2 * q.mm
    motor.move(-1.5 * q.mm).join(TIMEOUT)
    assert motor.position == start + 0.5 * q.mm
    future = motor.set_position(start + 30 * q.mm)  # 0.3 s: runs on after the Tango call
    assert isinstance(future, Future)
    future.join(TIMEOUT)
    assert motor.position == start + 30 * q.mm
    assert motor["position"].target == start + 30 * q.mm
    numbers, _ = motor.proxy.command_inout("move", "-30 mm")  # as any Tango client calls it
    assert numbers[0] > 0  # 0.3 s: still running when the call returned, as operation numbers[0]
    motor["state"].wait("standby", sleep_time=0.01 * q.s, timeout=TIMEOUT).join(TIMEOUT)
    over, results = motor.proxy.command_inout("ConcertWait", numbers[0])
    assert (list(over), results) == ([1], ["None"])
    assert motor.position == start
    assert motor.state == "standby"


def test_state_is_moving_while_it_moves_and_standby_after(motor, asynchronous):
    moving = motor.set_position(far_from(motor))
    wait_moving(motor)
    assert str(motor.proxy.state()) == "MOVING"
    assert "LinearMotor#1 is moving; running: LinearMotor#1['position'].set(" in motor.Status
    motor.stop().join(TIMEOUT)
    moving.join(TIMEOUT)
    assert motor.state == "standby"
    assert str(motor.proxy.state()) == "STANDBY"


# -- stopping part-way -----------------------------------------------------------------------------


def test_a_second_client_stops_it_part_way(motor, servers, asynchronous):
    other = TangoDevice(servers["motor"].uri, timeout=CLIENT_TIMEOUT)
    start, target = motor.position, far_from(motor)
    moving = motor.set_position(target)
    wait_moving(other)
    other.stop().join(TIMEOUT)
    assert moving.result(TIMEOUT) is None  # as locally: a stop from elsewhere ends the write early
    stopped = motor.position
    assert min(start, target) < stopped < max(start, target)
    assert other.state == motor.state == "standby"
    assert motor.position == stopped


def test_cancelling_the_client_future_stops_the_served_motor(motor, asynchronous):
    start, target = motor.position, far_from(motor)
    moving = motor.set_position(target)
    wait_moving(motor)
    assert moving.cancel(timeout=TIMEOUT)
    assert moving.cancelled()
    with pytest.raises(
        CancelledError, match=r"TangoDevice#\d+\(test/motor/1\)\['position'\].* by cancel\(\)"
    ):
        moving.result(0)
    stopped = motor.position
    assert min(start, target) < stopped < max(start, target)
    assert motor.state == "standby"
    assert motor.position == stopped


def test_abort_on_the_client_stops_the_served_motor(motor, asynchronous):
    start, target = motor.position, far_from(motor)
    moving = motor.move(target - start)
    wait_moving(motor)
    motor.abort().join(TIMEOUT)
    with pytest.raises(CancelledError, match=r"move\(.*\) was stopped by abort\(\)"):
        moving.join(TIMEOUT)
    assert min(start, target) < motor.position < max(start, target)
    assert motor.state == "standby"


#: A client that moves the motor far away twice -- a blocking write in the main thread, then a future
#: joined -- and says where each move starts and goes (in mm) and what it found after each Ctrl-C.
CLIENT = """
import sys
from concert.devices.tango import TangoDevice
from concert.quantities import q

motor = TangoDevice(sys.argv[1], timeout=2 * q.s)
for how in ("write", "join"):
    start = motor.position
    target = (-500 if start > 0 * q.mm else 500) * q.mm
    print("moving", start.to(q.mm).magnitude, target.to(q.mm).magnitude, flush=True)
    try:
        if how == "write":
            motor.position = target
        else:
            motor.set_position(target).join()
    except KeyboardInterrupt:
        print("interrupted", how, motor.state, flush=True)
    else:
        print("not interrupted", how, flush=True)
"""


def test_ctrl_c_in_a_client_stops_the_served_motor(motor, servers):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CONCERT_")}
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, servers["motor"].uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: see readline()
        cwd=str(ROOT),
        env=environment,
    )
    try:
        for how in ("write", "join"):
            # Where the client's move starts, as the client read it: the client starts its second
            # move as soon as it reported the first one's end, before this test could look.
            word, *numbers = readline(client, TIMEOUT).split()
            assert word == "moving"
            start, target = (float(number) * q.mm for number in numbers)
            wait_moving(motor)
            client.send_signal(signal.SIGINT)  # a real Ctrl-C
            assert readline(client, TIMEOUT) == f"interrupted {how} standby\n"
            assert motor.state == "standby"
            stopped = motor.position
            assert min(start, target) < stopped < max(start, target), (how, start, target, stopped)
        assert client.wait(TIMEOUT) == 0
    finally:
        client.kill()
        output, errors = client.communicate(timeout=TIMEOUT)
        print("the client printed:", output.decode(errors="replace"), errors.decode(errors="replace"))


def readline(process: subprocess.Popen, timeout: float) -> str:
    """The next line ``process`` prints, waiting at most ``timeout`` seconds ('' if none came).

    ``process.stdout`` must be unbuffered (``bufsize=0``): a buffered reader may already hold the
    next line, which ``select`` cannot see, and would wait for the line after it.
    """
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().decode() if ready else ""


# -- errors come back as the same exceptions -------------------------------------------------------------


def test_a_bad_unit_is_refused_with_the_same_message_as_locally(motor):
    local = LinearMotor()
    writes = [
        (lambda device: device.set_position(3 * q.s).join(TIMEOUT), UnitError),  # refused by the client
        (lambda device: device.move(3 * q.s).join(TIMEOUT), UnitError),  # refused by the server
        (lambda device: device.move(3).join(TIMEOUT), UnitError),
        (lambda device: device.set_position(2 * q.m).join(TIMEOUT), HardLimitError),
    ]
    for write, error in writes:
        with pytest.raises(error) as remote:
            write(motor)
        with pytest.raises(error) as here:
            write(local)
        if error is UnitError:
            same_message(remote.value, motor, here.value, local)
    assert motor.state == "standby"


def test_errors_raised_by_the_server_keep_class_message_and_tango_reason(gadget):
    with pytest.raises(SoftLimitError) as remote:
        gadget.length = 20 * q.mm  # soft limits are checked on the server
    assert str(remote.value) == f"{gadget!r}['length']: 20 mm is above the soft limit 10 mm"
    assert remote.value.reason == "SoftLimitError"
    assert remote.value.origin == "concert:Gadget#1"
    assert remote.value.description == "Gadget#1['length']: 20 mm is above the soft limit 10 mm"
    assert gadget.length == 0 * q.mm
    with pytest.raises(TangoError) as failed:  # not a Concert exception: a TangoError keeping it
        gadget.fail().join(TIMEOUT)
    assert (failed.value.reason, failed.value.description) == ("ValueError", "the gadget broke")
    with pytest.raises(
        ConfigurationError, match=r"^TangoDevice#\d+\(test/gadget/1\)\.scale\(\) takes 1 to 2 arg"
    ):
        gadget.scale().join(TIMEOUT)


def test_a_shutter_reports_its_states_and_refuses_what_it_refuses_locally(servers):
    shutter = TangoDevice(servers["shutter"].uri, timeout=CLIENT_TIMEOUT)
    assert shutter.state == "open" and str(shutter.proxy.state()) == "OPEN"
    shutter.close().join(TIMEOUT)
    assert shutter.state == "closed" and str(shutter.proxy.state()) == "CLOSE"
    local = Shutter()
    local.close().join(TIMEOUT)
    with pytest.raises(StateError) as remote:
        shutter.close().join(TIMEOUT)
    with pytest.raises(StateError) as here:
        local.close().join(TIMEOUT)
    same_message(remote.value, shutter, here.value, local)
    assert remote.value.error_state == here.value.error_state == "closed"
    shutter.open().join(TIMEOUT)
    assert shutter.state == "open"


# -- other devices, other kinds of parameters ----------------------------------------------------------


def test_parameters_of_every_kind_and_commands_with_results(gadget, servers):
    assert set(gadget["length"].__class__.__mro__) >= {QuantityValue}
    assert gadget["length"].lower is None  # soft limits stay on the server
    gadget.enabled = True
    gadget.count = 7
    gadget.ratio = 2.25
    gadget.label = "slit-1"
    gadget.colour = "GREEN"  # an enum member travels as its name
    assert (gadget.enabled, gadget.count, gadget.ratio, gadget.label, gadget.colour) == (
        True,
        7,
        2.25,
        "slit-1",
        "GREEN",
    )
    gadget.secret = 5 * q.V  # write-only
    with pytest.raises(ReadAccessError):
        gadget["secret"].read()
    assert "ports" not in gadget and "configure" not in gadget.commands
    assert b"ports is not exported" in servers["gadget"].output
    assert b"configure() is not exported: it has required keyword-only parameters" in servers["gadget"].output
    assert gadget.scale(3).result(TIMEOUT) == 21
    assert gadget.scale(2, 1).result(TIMEOUT) == 15
    assert gadget.add(2 * q.mm).result(TIMEOUT) == 2 * q.mm
    assert gadget.slow(0.3).result(TIMEOUT) == "done"  # over after the Tango call: the result comes later
    gadget.length = 0 * q.mm
    assert gadget.state == "standby"  # no state: Tango's ON


def test_a_camera_parameter_with_units_enum_and_state(servers):
    camera = TangoDevice(servers["camera"].uri, timeout=CLIENT_TIMEOUT)
    camera.exposure_time = 5 * q.ms
    assert camera.exposure_time.to(q.ms) == 5 * q.ms
    assert camera["exposure_time"].upper == 1000 * q.s
    assert camera.trigger_source == "AUTO"
    camera.trigger_source = "SOFTWARE"
    assert camera.trigger_source == "SOFTWARE"
    camera.trigger_source = "AUTO"
    assert camera.sensor_width == 640 * q.pixel and not camera["sensor_width"].writable
    assert camera["roi_x0"].lower == 0 * q.pixel
    assert camera["roi_x0"].upper is None  # computed from other parameters: checked on the server
    camera.start_recording().join(TIMEOUT)
    try:
        assert camera.state == "recording" and str(camera.proxy.state()) == "RUNNING"
        # The value travels in the attribute's unit: the server's message shows it so.
        with pytest.raises(StateError, match=r"exposure_time = 0.002 s is not allowed in state 'recording'"):
            camera.exposure_time = 2 * q.ms
    finally:
        camera.stop_recording().join(TIMEOUT)
    assert camera.state == "standby"


def test_values_travel_as_text_and_come_back_equal():
    import enum

    import numpy as np

    class Mode(enum.Enum):
        FAST = 1

    for value in (
        5,
        -2.5,
        "AUTO",
        "",
        True,
        None,
        (1, "a"),
        [1.5, 2],
        5 * q.mm,
        2.5 * q.mm / q.s,
        q.Quantity(20, q.degC),
    ):
        text = encode_value(value)
        assert decode_value(text) == value and type(decode_value(text)) is type(value), text
    assert encode_value(np.float64(2.5) * q.mm) == "2.5 millimeter"
    assert encode_value(Mode.FAST) == "'FAST'"
    assert decode_value("5 mm") == decode_value("5mm") == 5 * q.mm  # as a Tango tool may write them
    assert decode_value("AUTO") == "AUTO"  # no number, no quantity: the text
    assert decode_value("m") == 1 * q.m  # which is why clients quote strings
    with pytest.raises(ConfigurationError, match=r"<array 2x2 float64> cannot travel"):
        encode_value(np.zeros((2, 2)))


# -- the command -------------------------------------------------------------------------------------


def test_sigterm_ends_a_server_normally_and_ctrl_c_with_130(asynchronous):
    synchronous = {**os.environ, "CONCERT_DISABLE_ASYNC": "1"}  # its operations run in threads of their own
    factory = "concert.devices.motors.dummy:LinearMotor"
    started = serve_all({"term": (factory, "test/motor/2"), "int": (factory, "test/motor/3", synchronous)})
    try:
        motors = {key: TangoDevice(server.uri, timeout=CLIENT_TIMEOUT) for key, server in started.items()}
        moving = [motors["term"].set_position(FAR * q.mm), motors["int"].move(FAR * q.mm)]
        for motor in motors.values():  # moving when the servers are told to end: they stop them first
            wait_moving(motor)
        for key, sig, status, line in (
            (
                "term",
                signal.SIGTERM,
                0,
                "motor/2 stopped by SIGTERM; it stopped LinearMotor#1['position'].set(+500 mm)",
            ),
            ("int", signal.SIGINT, 130, "motor/3 stopped by Ctrl-C; it stopped LinearMotor#1.move(+500 mm)"),
        ):
            process = started[key].process
            process.send_signal(sig)
            out, _ = process.communicate(timeout=TIMEOUT)
            assert process.returncode == status, out
            assert out.decode().splitlines()[-1] == "concert tango: test/" + line, out
        for future in moving:
            with pytest.raises(NetworkingError):  # the clients' calls: the servers are gone
                future.result(TIMEOUT)
    finally:
        for process in started.values():
            process.kill()


def run_command(*arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "concert", "tango", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )


def test_wrong_use_is_one_line_and_exit_status_1(factories):
    listening = socket.socket()
    listening.bind(("", 0))
    listening.listen()
    taken = str(listening.getsockname()[1])
    cases = [  # a device that cannot be made, an address that cannot be served (the rest: in this process)
        (("no.such.module:make",), r"cannot import no\.such\.module: No module named 'no'$"),
        (
            ("x:y", "--port", taken),
            rf"cannot serve a/b/c on every interface, port {taken}: Address already in use",
        ),
    ]
    processes = []
    try:
        for arguments, _ in cases:  # all at once: each takes a while to import
            given = list(arguments)
            given += [] if "--name" in given else ["--name", "a/b/c"]
            given += [] if "--port" in given else ["--port", "0"]
            processes.append(run_command("serve", *given))
        for process, (arguments, expected) in zip(processes, cases):
            out, err = process.communicate(timeout=TIMEOUT)
            assert process.returncode == 1, (arguments, out, err)
            assert out == ""
            lines = err.splitlines()
            assert len(lines) == 1, (arguments, err)
            assert re.match("concert tango: " + expected, lines[0]), (arguments, lines[0])
    finally:
        listening.close()
        for process in processes:
            process.kill()
            process.communicate()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (
            "concert.devices.motors.dummy:NoSuch",
            r"concert\.devices\.motors\.dummy has no 'NoSuch' \(it has: ",
        ),
        ("concert.devices.motors.dummy:LinearMotor.nothing", r"has no 'LinearMotor\.nothing'"),
        ("math:pi", r"^math:pi is 3\.14159\d*: neither a Concert device nor a callable making one$"),
        ("concert.devices.motors.dummy", r"give MODULE:FACTORY, e\.g\. "),
        (":LinearMotor", r"give MODULE:FACTORY"),
        ("/no/such/file.py:make", r"^/no/such/file\.py: there is no such file$"),
        ("concert.devices.motors.dummy:_limit", r"_limit\(\) raised TypeError"),
        (
            "collections:OrderedDict",
            r"^collections:OrderedDict\(\) gave OrderedDict\(\), not a Concert device$",
        ),
    ],
)
def test_factories_that_give_no_device_are_refused(spec, match):
    with pytest.raises(ConfigurationError, match=match):
        load_device(spec)


def test_a_factory_that_raises_is_refused_naming_it(factories):
    with pytest.raises(
        ConfigurationError, match=r"^\S+/gadgets\.py:broken\(\) raised ValueError: no hardware attached$"
    ):
        load_device(f"{factories}:broken")


def test_a_device_instance_or_a_factory_in_a_file_is_served_as_it_is(factories):
    import concert.devices.shutters.dummy as module

    module.the_shutter = Shutter()
    try:
        assert load_device("concert.devices.shutters.dummy:the_shutter") is module.the_shutter
    finally:
        del module.the_shutter
    assert type(load_device(f"{factories}:Gadget")).__name__ == "Gadget"


@pytest.mark.parametrize(
    ("name", "port", "match"),
    [
        ("bad", 0, "'bad' is not of the form domain/family/member"),
        ("a/b/c d", 0, "not of the form"),
        ("a/b/c", 65536, "65536 is not a TCP port"),
        ("a/b/c", -1, "not a TCP port"),
    ],
)
def test_check_address_refuses_bad_names_and_ports(name, port, match):
    with pytest.raises(ConfigurationError, match=match):
        check_address(name, port)


@pytest.mark.parametrize(
    "arguments",
    [(), ("serve",), ("serve", "x:y", "--port", "0"), ("serve", "x:y", "--name", "a/b/c", "--port", "one")],
)
def test_wrong_syntax_is_one_line_and_exit_status_2(arguments):
    process = run_command(*arguments)
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("concert tango"), err
