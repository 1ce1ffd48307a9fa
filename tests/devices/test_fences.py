"""Issue 7, items 3 and 5: a stop fences off everything submitted before it; one pass per call."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import CancelledError

import pytest

from concert import locking
from concert.devices.motors.dummy import LinearMotor
from concert.devices.pumps.dummy import Pump
from concert.devices.xraytubes.dummy import XRayTube
from concert.exceptions import LockError
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT, run_python


@pytest.mark.usefixtures("asynchronous")
def test_a_move_submitted_before_an_emergency_stop_never_runs_in_full():
    motor = LinearMotor()
    motor.move(1 * q.mm).join(TIMEOUT)
    future = motor.move(100 * q.mm)
    motor.emergency_stop()
    with pytest.raises(CancelledError, match=r"move\(\+100 mm\) was stopped by emergency_stop\(\)"):
        future.join(TIMEOUT)
    assert motor.position < 2 * q.mm and motor.state == "standby"
    motor.move(1 * q.mm).join(TIMEOUT)  # work submitted after the stop runs normally


@pytest.mark.usefixtures("asynchronous")
def test_moves_queued_behind_a_move_end_cancelled_without_moving():
    motor = LinearMotor(motion_velocity=50 * q.mm / q.s)
    first = motor.move(100 * q.mm)
    busy_wait(lambda: motor.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    queued = [motor.move(1 * q.mm) for _ in range(5)]
    busy_wait(lambda: all(f.running() for f in queued), sleep_time=0.001, timeout=TIMEOUT)
    motor.abort()
    for future in [first, *queued]:
        with pytest.raises(CancelledError, match=r"was stopped by abort\(\)"):
            future.result(TIMEOUT)
    stopped_at = motor.position
    assert stopped_at < 100 * q.mm and motor.position == stopped_at


QUEUED_IN_THE_POOL = """
import threading
from concert.devices.pumps.dummy import Pump
from concert.devices.xraytubes.dummy import XRayTube
from concert.futures import async_

gate = threading.Event()

@async_
def busy():
    assert gate.wait(30)

tube, pump = XRayTube(), Pump()
blockers = [busy(), busy()]           # both workers busy
on, start = tube.on(), pump.start()   # queued in the pool
tube.emergency_stop()
pump.emergency_stop()
gate.set()
for future in (on, start):
    try:
        future.result(30)
        print("ran")
    except Exception as error:
        print(type(error).__name__, error)
print(tube.state, tube._emitting, pump.state, pump._pumping)
"""


def test_queued_calls_do_not_switch_hardware_back_on_after_an_emergency_stop():
    result = run_python(QUEUED_IN_THE_POOL, {"CONCERT_MAX_WORKERS": "2"})
    assert result.returncode == 0, result.stderr
    on, start, final = result.stdout.splitlines()
    assert on.startswith("CancelledError XRayTube#1.on() was stopped by emergency_stop()")
    assert start.startswith("CancelledError Pump#1.start() was stopped by emergency_stop()")
    assert final == "off False standby False"


@pytest.mark.usefixtures("asynchronous")
def test_a_start_under_way_cannot_re_arm_the_hardware():
    entered, release = threading.Event(), threading.Event()

    class SlowPump(Pump):
        def _start_real(self):
            entered.set()
            assert release.wait(TIMEOUT)
            super()._start_real()  # the hardware switches on after the stop

    pump = SlowPump()
    starting = pump.start()
    assert entered.wait(TIMEOUT)
    stopper = threading.Thread(target=pump.emergency_stop)
    stopper.start()
    stopper.join(TIMEOUT)
    release.set()
    with pytest.raises(CancelledError, match=r"start\(\) was stopped by emergency_stop\(\)"):
        starting.result(TIMEOUT)
    assert pump.state == "standby" and not pump._pumping


@pytest.mark.usefixtures("asynchronous")
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_ctrl_c_stops_a_move_queued_behind_another():
    motor = LinearMotor(motion_velocity=100 * q.mm / q.s)
    first = motor.move(20 * q.mm)
    busy_wait(lambda: motor.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    second = motor.move(50 * q.mm)
    timer = threading.Timer(0.02, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        second.join(TIMEOUT)
    timer.join(TIMEOUT)
    busy_wait(second.done, sleep_time=0.001, timeout=TIMEOUT)
    with pytest.raises(CancelledError, match=r"move\(\+50 mm\) was stopped by Ctrl-C"):
        second.result(TIMEOUT)
    first.result(TIMEOUT)  # nobody waited for it: it goes on and ends normally
    assert motor.position == 20 * q.mm


def test_after_an_abort_devices_are_in_their_declared_state():
    tube, pump = XRayTube(), Pump()
    tube.on().join(TIMEOUT)
    pump.start().join(TIMEOUT)
    tube.abort()
    pump.emergency_stop()
    assert (tube.state, pump.state) == ("off", "standby")
    assert not tube._emitting and not pump._pumping


def test_one_device_call_enters_the_lock_manager_once(monkeypatch):
    calls = []
    enter, enter_now = locking.enter, locking.enter_now

    def counting(owner, locks, slot, operation):
        calls.append((tuple(lock.name for lock in locks), slot is not None))
        return enter(owner, locks, slot, operation)

    def counting_now(owner, locks, slot, operation):  # the path without a wait: entered if True
        entered = enter_now(owner, locks, slot, operation)
        if entered:
            calls.append((tuple(lock.name for lock in locks), slot is not None))
        return entered

    monkeypatch.setattr(locking, "enter", counting)
    monkeypatch.setattr(locking, "enter_now", counting_now)
    motor = LinearMotor()
    motor.move(1 * q.mm).join(TIMEOUT)
    assert calls == [((repr(motor), f"{motor!r}['position']"), True)]
    calls.clear()
    motor.position = 2 * q.mm  # the write, then its motion slot: one call, one extra lock
    assert [slot for _, slot in calls] == [False, True]


@pytest.mark.usefixtures("asynchronous")
def test_the_deadlock_detector_sees_the_motion_slot():
    """Owner A holds the pump and wants the motor's slot; owner B's move holds it and wants the pump."""
    pump = Pump()
    in_move, pump_held = threading.Event(), threading.Event()

    class Coupled(LinearMotor):
        def _move_real(self, position):
            in_move.set()
            assert pump_held.wait(TIMEOUT)
            pump.flow_rate = 2 * q.l / q.min  # waits for A's `with pump:`
            super()._move_real(position)

    motor = Coupled()
    b = motor.move(1 * q.mm)
    assert in_move.wait(TIMEOUT)
    outcome = {}

    def owner_a():
        with pump:
            pump_held.set()
            busy_wait(lambda: pump._exclusive.waiters() == 1, sleep_time=0.001, timeout=TIMEOUT)
            try:
                motor.position = 5 * q.mm  # waits for B's slot: a cycle
            except LockError as error:
                outcome["a"] = error

    a = threading.Thread(target=owner_a)
    a.start()
    a.join(TIMEOUT)
    assert not a.is_alive()
    b.result(TIMEOUT)
    assert "deadlock" in str(outcome["a"])
