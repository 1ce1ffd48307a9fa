"""concert.session.utils: the session helpers on real dummy devices, without a terminal."""

from __future__ import annotations

import concurrent.futures
import functools
import io
import logging
import signal
import sys
import textwrap
import threading
import types
from concurrent.futures import CancelledError

import pytest

from concert.devices.base import Device
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.devices.shutters.dummy import Shutter
from concert.exceptions import ConcertError, UnitError
from concert.futures import Future, async_, wait
from concert.parameters import Parameter, Quantity
from concert.polling import busy_wait
from concert.quantities import q
from concert.session import utils
from concert.session.utils import (
    SessionError,
    abort_awaiting,
    check_emergency_stop,
    code_of,
    ddoc,
    dstate,
    get_default_table,
    pdoc,
)
from concert.states import State
from tests.conftest import TIMEOUT, run_python


@pytest.fixture(autouse=True)
def columns(monkeypatch):
    """Tables as wide as a 100-column terminal, whatever runs the tests."""
    monkeypatch.setenv("COLUMNS", "100")


class Sensor(Device):
    """A sensor whose reading fails, for tables that must still show it.

    More text that the tables leave out.
    """

    reading = Quantity(q.mV, help="The voltage read")
    label = Parameter(help="A name")
    state = State(default="standby", help="standby or error")

    def _get_reading(self):
        raise RuntimeError("sensor unplugged")

    def _get_label(self):
        return "left"

    def _set_label(self, value):
        pass


class Plain(Device):
    """A device without a state."""

    value = Parameter()

    def _get_value(self):
        return 42


def slow_motor() -> LinearMotor:
    """A motor that needs 500 s for the moves of these tests: they are always stopped part-way."""
    return LinearMotor(motion_velocity=1 * q.mm / q.s)


def wait_until_moving(motor) -> None:
    """Wait until the motor really moves: in state 'moving' and its position changing.

    The state turns 'moving' a moment before the simulated axis starts; a
    stop in that moment is not what these tests are about.
    """
    start = motor.position
    busy_wait(lambda: motor.state == "moving" and motor.position != start, 0.001, TIMEOUT)


# -- dstate -----------------------------------------------------------------------------------


def test_dstate_shows_state_and_readable_parameters_with_units():
    namespace = {"motor": LinearMotor(position=2 * q.mm), "tomo": RotationMotor()}
    assert str(dstate(namespace)) == textwrap.dedent(
        """\
        +-------+---------+----------------------------+
        | Name  | State   | Parameters                 |
        +-------+---------+----------------------------+
        | motor | standby | motion_velocity = 100 mm/s |
        |       |         | position = 2 mm            |
        |       |         | velocity = 0 mm/s          |
        +-------+---------+----------------------------+
        | tomo  | standby | motion_velocity = 90 deg/s |
        |       |         | position = 0 deg           |
        |       |         | velocity = 0 deg/s         |
        +-------+---------+----------------------------+"""
    )


def test_dstate_shows_a_device_without_parameters_besides_its_state():
    shutter = Shutter()
    assert dstate({"shutter": shutter}).rows == [["shutter", shutter.state, ""]]


def test_dstate_names_a_device_once_skips_private_names_and_non_devices():
    motor = RotationMotor()
    namespace = {"b_motor": motor, "a_motor": motor, "_hidden": LinearMotor(), "number": 3, "q": q}
    rows = dstate(namespace).rows
    assert [row[0] for row in rows] == ["a_motor, b_motor"]


def test_dstate_shows_a_failing_parameter_and_a_device_without_state():
    table = dstate({"sensor": Sensor(), "plain": Plain()})
    rows = {row[0]: row for row in table.rows}
    assert rows["plain"][1:] == ["", "value = 42"]
    assert rows["sensor"][1] == "standby"
    assert rows["sensor"][2] == "label = left\nreading = <RuntimeError: sensor unplugged>"


def test_dstate_reads_the_session_namespace_by_default(monkeypatch):
    main = types.ModuleType("__main__")
    main.pump_motor = LinearMotor()
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert [row[0] for row in dstate().rows] == ["pump_motor"]
    module = types.ModuleType("session")
    module.other = Shutter()
    assert [row[0] for row in dstate(module).rows] == ["other"]


def test_dstate_of_an_empty_namespace_is_an_empty_table():
    assert dstate({}).rows == []


@pytest.mark.parametrize("helper", [dstate, ddoc])
def test_a_namespace_must_be_a_mapping_or_module(helper):
    with pytest.raises(SessionError, match=rf"{helper.__name__}\(namespace=\[1, 2\]\)"):
        helper([1, 2])
    assert issubclass(SessionError, ConcertError) and issubclass(SessionError, TypeError)


# -- ddoc ---------------------------------------------------------------------------------------


def test_ddoc_shows_class_documentation_and_parameters_with_units_and_help():
    rows = ddoc({"sensor": Sensor(), "plain": Plain()}).rows
    assert [row[0] for row in rows] == ["plain", "sensor"]
    plain, sensor = rows
    assert plain[1:] == ["Plain: A device without a state.", "value"]
    assert sensor[1] == "Sensor: A sensor whose reading fails, for tables that must still show it."
    assert sensor[2].splitlines() == [
        "label: A name",
        "reading [mV]: The voltage read",
        "state: standby or error",
    ]


def test_ddoc_reads_nothing_from_the_hardware():
    table = ddoc({"sensor": Sensor()})  # its reading raises when read
    assert "unplugged" not in str(table)


# -- pdoc ---------------------------------------------------------------------------------------


def measure_flux(detector, exposure=1 * q.s):
    """Measure the flux on ``detector``.

    Long explanation left out of the table.
    """


@async_
def align(motor):
    """Align the sample."""


def _private_helper():
    """Never listed."""


def test_pdoc_lists_the_session_processes_without_the_blacklisted_helpers():
    namespace = {
        "measure_flux": measure_flux,
        "align": align,
        "quick_flux": functools.partial(measure_flux, exposure=2 * q.s),
        "_private_helper": _private_helper,
        "dstate": dstate,
        "async_": async_,
        "LinearMotor": LinearMotor,
        "motor": LinearMotor(),
    }
    rows = pdoc(namespace=namespace).rows
    assert [row[0] for row in rows] == ["align", "measure_flux", "quick_flux"]
    assert rows[0][1] == "align(motor)\nAlign the sample."
    assert rows[1][1].startswith("measure_flux(detector, exposure=<Quantity(1, 'second')>)\nMeasure the flux")
    assert "Long explanation" not in rows[1][1]
    assert rows[2][1].startswith("quick_flux(detector, *, exposure=")


def test_pdoc_lists_concert_processes_but_not_concert_tools():
    from concert.pipelines import broadcast
    from concert.processes import dscan, scan

    rows = pdoc(namespace={"scan": scan, "dscan": dscan, "broadcast": broadcast, "wait": wait}).rows
    assert [row[0] for row in rows] == ["dscan", "scan"]
    assert utils.BLACKLIST == ("concert", "IPython")
    assert "concert.processes" in utils.PROCESS_MODULES


@pytest.mark.parametrize(
    "call", [lambda ns: pdoc(False, namespace=ns), lambda ns: pdoc(hide_blacklisted=False, namespace=ns)]
)
def test_pdoc_shows_the_blacklisted_too_when_asked(call):
    rows = call({"dstate": dstate, "measure_flux": measure_flux}).rows
    assert [row[0] for row in rows] == ["dstate", "measure_flux"]


def test_pdoc_of_a_device_summarises_parameters_and_methods():
    rows = {row[0]: row for row in pdoc(LinearMotor()).rows}
    assert rows["position"][1] == "quantity [mm]\nread-write"
    assert rows["position"][2] == "Position"
    assert rows["state"][1] == "state\nread-only"
    assert rows["velocity"][1] == "quantity [mm/s]\nread-only"
    assert rows["move"][1] == "method, returns a Future"
    assert rows["move"][2].startswith("move(delta)\nMove by ``delta``")
    assert rows["emergency_stop"][1] == "method"
    assert not any(name.startswith("_") for name in rows)
    plain = {row[0]: row for row in pdoc(Sensor()).rows}
    assert plain["label"][1] == "parameter\nread-write"


def test_pdoc_of_a_function():
    (row,) = pdoc(measure_flux).rows
    assert row[0] == "measure_flux"
    assert "Long explanation left out of the table." in row[1]  # one function: all of its documentation


@pytest.mark.parametrize("thing", [3, "motor", LinearMotor])
def test_pdoc_of_something_else_is_refused(thing):
    with pytest.raises(SessionError, match=r"pdoc\(.*\): give a device or a function"):
        pdoc(thing)


def test_pdoc_refuses_a_bad_namespace():
    with pytest.raises(SessionError, match=r"pdoc\(namespace=42\)"):
        pdoc(namespace=42)


# -- code_of ------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_code_of_prints_plain_source_without_a_terminal(capsys):
    code_of(measure_flux)
    out = capsys.readouterr().out
    assert out.startswith("def measure_flux(detector, exposure=1 * q.s):\n")
    assert "\x1b[" not in out


def test_code_of_shows_the_decorated_function_and_partials(capsys):
    code_of(align)
    assert capsys.readouterr().out.startswith("@async_\ndef align(motor):\n")
    code_of(functools.partial(measure_flux, 1))
    assert capsys.readouterr().out.startswith("def measure_flux(")
    code_of(Plain)
    assert capsys.readouterr().out.startswith("class Plain(Device):")


def test_code_of_highlights_on_a_terminal(monkeypatch):
    pytest.importorskip("pygments")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    code_of(measure_flux)
    assert "\x1b[" in terminal.getvalue() and "measure_flux" in terminal.getvalue()


@pytest.mark.parametrize("thing, name", [(len, "len"), (3, "3"), (LinearMotor(), "LinearMotor#")])
def test_code_of_without_source_names_what_was_asked(thing, name):
    with pytest.raises(SessionError, match=rf"code_of\({name}.*source code is not available"):
        code_of(thing)


# -- get_default_table --------------------------------------------------------------------------


def test_the_default_table_fits_the_terminal(monkeypatch):
    table = get_default_table(["A", "B"])
    assert table.field_names == ["A", "B"]
    assert table.max_width == {"A": 46, "B": 46}  # 100 columns less borders and padding, shared
    table.add_row(["x" * 200, "y"])
    assert max(len(line) for line in str(table).splitlines()) <= 100
    monkeypatch.setenv("COLUMNS", "40")
    assert get_default_table(["A", "B", "C"], widths=[5, None, None]).max_width == {"A": 5, "B": 12, "C": 12}


def test_a_narrow_terminal_still_gives_readable_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "20")
    assert set(get_default_table(["A", "B", "C", "D"]).max_width.values()) == {10}


def test_default_table_layout():
    table = get_default_table(["Name", "Value"], widths=[4, None])
    table.add_row(["motor", "1\n2"])
    assert str(table) == textwrap.dedent(
        """\
        +------+-------+
        | Name | Value |
        +------+-------+
        | moto | 1     |
        | r    | 2     |
        +------+-------+"""
    )


@pytest.mark.parametrize(
    "field_names, widths, match",
    [
        ("Name", None, "give a list of column names"),
        ([], None, "at least one"),
        (["A", "A"], None, "distinct"),
        (["A", 1], None, "distinct strings"),
        (["A", "B"], [3], "one width per column"),
        (["A"], [0], "positive"),
        (["A"], [2.5], "positive"),
        (["A"], "3", "one width per column"),
    ],
)
def test_default_table_refuses_bad_arguments(field_names, widths, match):
    with pytest.raises(SessionError, match=match):
        get_default_table(field_names, widths)


# -- abort_awaiting -----------------------------------------------------------------------------


def test_abort_awaiting_stops_a_moving_motor(asynchronous):
    motor = slow_motor()
    future = motor.move(500 * q.mm)
    wait_until_moving(motor)
    stopped = abort_awaiting()
    assert future in stopped
    with pytest.raises(CancelledError, match=r"move\(\+500 mm\) was stopped by abort_awaiting\(\)"):
        future.result(TIMEOUT)
    assert motor.state == "standby"
    assert 0 * q.mm <= motor.position < 500 * q.mm


@pytest.mark.parametrize(
    "skip", ["move", ["LinearMotor", "move"], "LinearMotor#{n}.move", "LinearMotor#{n}.move(+500 mm)"]
)
def test_abort_awaiting_skips_what_it_is_told_to(asynchronous, skip):
    motor = slow_motor()
    number = repr(motor).split("#")[1]
    names = [name.format(n=number) for name in skip] if isinstance(skip, list) else skip.format(n=number)
    future = motor.move(500 * q.mm)
    wait_until_moving(motor)
    try:
        assert future not in abort_awaiting(skip=names)
        assert not future.done()
    finally:
        motor.stop().join(TIMEOUT)
    future.result(TIMEOUT)  # stopped by stop(): a move that ends early, not a cancelled one
    assert motor.position < 500 * q.mm


def test_abort_awaiting_cancels_futures_a_thread_waits_for_and_skips_by_name(asynchronous):
    started = threading.Event()
    release = threading.Event()

    @async_
    def blocker():
        started.set()
        release.wait(TIMEOUT)

    running = blocker()
    assert started.wait(TIMEOUT)
    manual = Future("controller reply")
    waiter_errors = []

    def waiter():
        try:
            manual.result(TIMEOUT)
        except CancelledError as error:
            waiter_errors.append(error)

    thread = threading.Thread(target=waiter)
    thread.start()
    busy_wait(lambda: manual in utils._awaited(), 0.001, TIMEOUT)
    try:
        stopped = abort_awaiting(skip="blocker")
        assert manual in stopped and running not in stopped
    finally:
        release.set()
    thread.join(TIMEOUT)
    assert len(waiter_errors) == 1 and "abort_awaiting()" in str(waiter_errors[0])
    running.result(TIMEOUT)


def test_abort_awaiting_leaves_the_operation_calling_it_alone(asynchronous):
    @async_
    def stop_the_others():
        return abort_awaiting()

    future = stop_the_others()
    assert future not in future.result(TIMEOUT)
    assert not future.cancelled()


@pytest.mark.parametrize("skip", [3, [1, 2], [None]])
def test_abort_awaiting_refuses_a_bad_skip(skip):
    with pytest.raises(SessionError, match=r"abort_awaiting\(skip="):
        abort_awaiting(skip=skip)


# -- check_emergency_stop ---------------------------------------------------------------------------


class Switch:
    """A ``check`` for check_emergency_stop: its value, and a way to wait until it was polled."""

    def __init__(self) -> None:
        self.value = False
        self.calls = 0
        self._polled = threading.Condition()

    def __call__(self) -> bool:
        with self._polled:
            self.calls += 1
            self._polled.notify_all()
        return self.value

    def polled(self, times: int = 2) -> None:
        """Wait until the check has been called ``times`` more times (at most TIMEOUT)."""
        with self._polled:
            target = self.calls + times
            assert self._polled.wait_for(lambda: self.calls >= target, TIMEOUT)


@pytest.fixture
def poll():
    """``poll(check, namespace, ...)`` starts check_emergency_stop; the poll is cancelled at the end."""
    polls = []

    def start(check, namespace, **kwargs):
        future = check_emergency_stop(check, 0.005 * q.s, namespace=namespace, **kwargs)
        polls.append(future)
        return future

    yield start
    for future in polls:
        future.cancel(TIMEOUT)


def test_the_emergency_stop_stops_a_moving_motor_once_and_rearms(asynchronous, poll, capsys, log_of):
    log = log_of("concert.session.utils")
    motor = slow_motor()
    door_open = Switch()
    monitor = poll(door_open, {"motor": motor})
    door_open.polled()

    first = motor.move(500 * q.mm)
    wait_until_moving(motor)
    door_open.value = True
    with pytest.raises(CancelledError, match="emergency stop"):
        first.result(TIMEOUT)
    assert motor.state == "standby"
    stopped_at = motor.position
    assert 0 * q.mm <= stopped_at < 500 * q.mm
    busy_wait(lambda: any(r.levelno == logging.WARNING for r in log.records), 0.001, TIMEOUT)  # reported
    assert "stopped 1 device(s) (motor)" in log.records[-1].getMessage()
    assert (
        "concert: emergency stop (Switch() became true) stopped 1 device(s): motor" in capsys.readouterr().err
    )

    # While the check stays true nothing more is stopped: a short move completes.
    door_open.polled()
    motor.move(0.01 * q.mm).join(TIMEOUT)
    assert motor.position.m_as(q.mm) == pytest.approx(stopped_at.m_as(q.mm) + 0.01)

    # Once it has cleared, the next time it turns true everything is stopped again.
    door_open.value = False
    door_open.polled()
    second = motor.move(500 * q.mm)
    wait_until_moving(motor)
    door_open.value = True
    with pytest.raises(CancelledError):
        second.result(TIMEOUT)
    assert not monitor.done()


def test_the_emergency_stop_works_with_asynchronous_execution_disabled(synchronous, poll):
    motor = slow_motor()
    door_open = Switch()
    poll(door_open, {"motor": motor})
    outcome = []

    def move():  # runs inline in this thread, as everything does with DISABLE_ASYNC
        outcome.append(motor.move(500 * q.mm))

    thread = threading.Thread(target=move)
    thread.start()
    wait_until_moving(motor)
    door_open.value = True
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert outcome[0].cancelled()
    with pytest.raises(CancelledError, match=r"emergency[ _]stop"):
        outcome[0].result()
    assert motor.state == "standby" and motor.position < 500 * q.mm


def test_the_emergency_stop_stops_every_device_of_the_session(monkeypatch, poll):
    class Recorder(Device):
        def __init__(self, log, name, fail=False):
            super().__init__()
            self._log, self._name, self._fail = log, name, fail

        def _emergency_stop(self):
            self._log.append(self._name)
            if self._fail:
                raise RuntimeError("the controller does not answer")

    stops = []
    main = types.ModuleType("__main__")
    main.first = Recorder(stops, "first", fail=True)
    main.second = Recorder(stops, "second")
    monkeypatch.setitem(sys.modules, "__main__", main)
    alarm = Switch()
    alarm.value = True
    future = check_emergency_stop(alarm, 0.005 * q.s)  # the session's namespace, looked at when it trips
    try:
        busy_wait(lambda: len(stops) == 2, 0.001, TIMEOUT)
    finally:
        future.cancel(TIMEOUT)
    assert sorted(stops) == ["first", "second"]  # a failing device does not keep the others running


def test_a_check_that_raises_is_logged_once_and_polling_goes_on(poll, log_of):
    log = log_of("concert.session.utils")
    calls = []

    def flaky():
        calls.append(None)
        if len(calls) < 5:
            raise OSError("PLC unreachable")
        return False

    poll(flaky, {})
    busy_wait(lambda: len(calls) >= 8, 0.001, TIMEOUT)
    errors = [record for record in log.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "check_emergency_stop(flaky)" in errors[0].getMessage() and errors[0].exc_info


def test_cancelling_the_poll_ends_it(poll):
    switch = Switch()
    future = poll(switch, {})
    switch.polled()
    assert future.cancel(TIMEOUT) is True
    assert future.cancelled()
    with pytest.raises(CancelledError, match=r"check_emergency_stop\(Switch\)"):
        future.result(TIMEOUT)


def test_abort_awaiting_never_cancels_the_poll(poll):
    switch = Switch()
    future = poll(switch, {})
    outcomes = []

    def wait_for_the_poll():  # a thread waiting for the poll: abort_awaiting() sees the future there
        try:
            future.result(TIMEOUT)
        except CancelledError as error:
            outcomes.append(error)

    waiter = threading.Thread(target=wait_for_the_poll)
    waiter.start()
    busy_wait(lambda: future in utils._awaited(), 0.001, TIMEOUT)
    assert future not in abort_awaiting()
    switch.polled()
    assert not future.done()
    future.cancel(TIMEOUT)
    waiter.join(TIMEOUT)
    assert len(outcomes) == 1


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((None,), SessionError, r"check_emergency_stop\(check=None\): check must be a callable"),
        ((True,), SessionError, "check must be a callable"),
        ((bool, 0 * q.s), SessionError, "longer than zero"),
        ((bool, -1), SessionError, "longer than zero"),
        ((bool, 1 * q.mm), UnitError, "poll_interval"),
        ((bool, "fast"), UnitError, "poll_interval"),
    ],
)
def test_check_emergency_stop_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        check_emergency_stop(*args, namespace={})


def test_check_emergency_stop_refuses_a_bad_namespace():
    with pytest.raises(SessionError, match=r"check_emergency_stop\(namespace="):
        check_emergency_stop(bool, namespace="session")


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or sys.platform == "win32", reason="POSIX signals")
def test_exit_session_ends_the_process_after_stopping_the_devices():
    code = textwrap.dedent(
        """
        import threading
        from concert import config
        config.DISABLE_ASYNC = False
        from concert.devices.motors.dummy import LinearMotor
        from concert.polling import busy_wait
        from concert.quantities import q
        from concert.session.utils import check_emergency_stop

        motor = LinearMotor(motion_velocity=1 * q.mm / q.s)
        beam_lost = []
        check_emergency_stop(lambda: bool(beam_lost), 0.005 * q.s, exit_session=True)
        future = motor.move(500 * q.mm)
        busy_wait(lambda: motor.state == "moving", 0.001, 30)
        beam_lost.append(True)
        try:
            future.result(30)
        except Exception as error:
            print("move ended:", error, flush=True)
        threading.Event().wait(30)  # the process ends while it waits here
        print("still alive", flush=True)
        """
    )
    result = run_python(code, timeout=TIMEOUT * 2)
    assert result.returncode == -signal.SIGTERM, result
    assert "stopped 1 device(s): motor" in result.stderr
    assert "still alive" not in result.stdout


# -- asyncio tasks: abort_awaiting and stop_all ---------------------------------------------------------


@pytest.fixture
def loop_thread():
    """An asyncio loop running in a thread of its own; ``call(func)`` runs ``func()`` in it and returns."""
    import asyncio

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
    thread.start()

    def call(func):
        async def run():
            return func()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(TIMEOUT)

    def settled(task):  # wait (in the loop) until the task has ended; return it
        async def wait():
            await asyncio.wait([task], timeout=TIMEOUT)
            return task

        return asyncio.run_coroutine_threadsafe(wait(), loop).result(TIMEOUT)

    call.loop, call.settled = loop, settled
    yield call

    async def cancel_the_rest():
        others = [task for task in asyncio.all_tasks(loop) if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(cancel_the_rest(), loop).result(TIMEOUT)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(TIMEOUT)
    loop.close()


def test_abort_awaiting_cancels_started_tasks_in_their_own_loop(loop_thread):
    import asyncio

    from concert.coroutines.aio import start

    async def ramp():
        await asyncio.sleep(TIMEOUT)

    async def keep():
        await asyncio.sleep(TIMEOUT)

    ramped = loop_thread(lambda: start(ramp()))
    kept = loop_thread(lambda: start(keep()))
    stopped = abort_awaiting(skip="keep")  # from this thread: the loop cancels the task
    assert ramped in stopped and kept not in stopped
    assert loop_thread.settled(ramped).cancelled()
    assert not kept.done()
    assert utils.task_name(ramped) == "ramp()"
    assert abort_awaiting(skip=["keep()"]) == []  # a task is also skipped by its name with brackets


def test_a_task_waiting_for_a_future_is_named_after_it_and_both_are_stopped(asynchronous, loop_thread):
    from concert.coroutines.aio import start

    motor = slow_motor()
    task = loop_thread(lambda: start(motor.move(500 * q.mm)))
    wait_until_moving(motor)
    assert utils.task_name(task) == f"{motor!r}.move(+500 mm)"
    stopped = utils.stop_all({"motor": motor}, "the test", report=False)
    assert stopped.devices == ["motor"] and stopped.failed == []
    assert stopped.operations == [f"{motor!r}.move(+500 mm)"]
    assert stopped.tasks == [f"{motor!r}.move(+500 mm)"]
    assert loop_thread.settled(task).cancelled()
    assert motor.state == "standby" and motor.position < 500 * q.mm


def test_stop_all_called_in_the_loop_cancels_the_tasks_at_once_but_not_itself(loop_thread):
    import asyncio

    from concert.coroutines.aio import start

    async def ramp():
        await asyncio.sleep(TIMEOUT)

    async def stopper():
        return utils.stop_all({}, "inside", report=False)

    other = loop_thread(lambda: start(ramp()))
    calling = loop_thread(lambda: start(stopper()))
    result = loop_thread.settled(calling).result()
    assert result.tasks == ["ramp()"]
    assert other.cancelled() or loop_thread.settled(other).cancelled()


def test_stop_all_says_what_it_stopped_on_one_line(asynchronous, capsys, log_of):
    log = log_of("concert.session.utils")

    class Stuck(Device):
        """A device whose emergency stop fails."""

        def _emergency_stop(self):
            raise RuntimeError("no answer")

    motor, shutter, stuck = slow_motor(), Shutter(), Stuck()
    future = motor.move(500 * q.mm)
    wait_until_moving(motor)
    result = utils.stop_all({"motor": motor, "shutter": shutter, "stuck": stuck, "_hidden": motor}, "Ctrl-K")
    assert result == utils.Stopped([f"{motor!r}.move(+500 mm)"], [], ["motor", "shutter"], ["stuck"])
    assert capsys.readouterr().err == (
        "concert: Ctrl-K stopped 2 device(s): motor, shutter; "
        f"cancelled 1 operation(s): {motor!r}.move(+500 mm); "
        "emergency_stop() FAILED for stuck (see the log)\n"
    )
    with pytest.raises(CancelledError, match=r"move\(\+500 mm\) was stopped by Ctrl-K$"):
        future.result(TIMEOUT)
    assert any(
        record.exc_info and "emergency_stop() of stuck failed" in record.getMessage()
        for record in log.records
    )
    assert "Ctrl-K: stopped 2 device(s) (motor, shutter)" in log.records[-1].getMessage()


def test_stop_all_with_nothing_to_stop_says_so_and_reads_the_session_namespace(monkeypatch, capsys):
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert utils.stop_all(reason="Ctrl-K") == utils.Stopped([], [], [], [])
    assert capsys.readouterr().err == (
        "concert: Ctrl-K: nothing to stop (no device in the session, nothing running)\n"
    )
    main.shutter = Shutter()
    assert utils.stop_all(reason="Ctrl-K", report=False).devices == ["shutter"]
    assert capsys.readouterr().err == ""


def test_stop_all_leaves_work_submitted_while_it_ran_alone(asynchronous):
    submitted = []

    class Starter(Device):
        """A device that, while it is being stopped, has someone start a move elsewhere."""

        def _emergency_stop(self):
            submitted.append(other.move(0.2 * q.mm))  # 0.2 s: it still runs when stop_all() returns

    motor, other = slow_motor(), slow_motor()
    future = motor.move(500 * q.mm)
    wait_until_moving(motor)
    result = utils.stop_all({"motor": motor, "starter": Starter()}, "Ctrl-K", report=False)
    assert result.operations == [f"{motor!r}.move(+500 mm)"]
    done, _ = concurrent.futures.wait([future], TIMEOUT)  # its stop actions may still be ending
    assert done and future.cancelled()
    assert submitted[0].result(TIMEOUT) is None  # new work: it ran to its end
    assert other.position == 0.2 * q.mm


def test_stop_all_stops_the_devices_at_once_and_says_which_it_waits_for():
    together = threading.Barrier(2, timeout=5)

    class Meeting(Device):
        """A device whose emergency stop returns only once the other one's has begun."""

        def _emergency_stop(self):
            together.wait()

    seen = []
    result = utils.stop_all({"a": Meeting(), "b": Meeting()}, "Ctrl-K", report=False, progress=seen.append)
    assert result.devices == ["a", "b"] and result.failed == []
    assert seen[0] == ["a", "b"] and seen[-1] == [] and all(len(still) <= 2 for still in seen)


def test_stop_all_lists_a_blocking_write_running_on_a_device():
    motor = slow_motor()
    outcome = []

    def write():
        try:
            motor.position = 500 * q.mm  # blocking, outside any future
        except CancelledError as error:
            outcome.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    wait_until_moving(motor)
    result = utils.stop_all({"motor": motor}, "Ctrl-K", report=False)
    thread.join(TIMEOUT)
    assert result.operations == [f"{motor!r}.position = 500 mm"]
    assert len(outcome) == 1 and str(outcome[0]).startswith(f"{motor!r}.position = 500 mm was stopped by")
    assert motor.state == "standby" and motor.position < 500 * q.mm


def test_the_helpers_and_stopping_import_neither_numpy_nor_pint():
    code = (
        "import sys\n"
        "from concert.session import utils\n"
        "print(utils.stop_all({}, 'x', report=False), [m for m in ('numpy', 'pint') if m in sys.modules])\n"
    )
    result = run_python(code, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Stopped(operations=[], tasks=[], devices=[], failed=[]) []\n"


def test_a_long_summary_is_shortened():
    names = [f"m{index}" for index in range(10)]
    assert utils.Stopped([], [], names, []).summary("x") == (
        "concert: x stopped 10 device(s): m0, m1, m2, m3, m4, m5, m6, m7 and 2 more"
    )


def test_stop_all_refuses_a_bad_namespace():
    with pytest.raises(SessionError, match=r"stop_all\(namespace="):
        utils.stop_all(namespace=42)
