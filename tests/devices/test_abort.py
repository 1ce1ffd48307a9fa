"""abort()/emergency_stop() stop everything, including queued work; nothing re-arms afterwards."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from concert.devices.cameras.dummy import Camera
from concert.devices.motors.dummy import ContinuousLinearMotor, LinearMotor
from concert.devices.pumps.dummy import Pump
from concert.exceptions import StateError
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT


def test_emergency_stop_also_stops_queued_moves(asynchronous):
    motor = LinearMotor(motion_velocity=10 * q.mm / q.s)
    futures = [motor.move(5 * q.mm) for _ in range(3)]  # three moves of 0.5 s, queued behind each other
    busy_wait(lambda: motor.position > 0.5 * q.mm, sleep_time=0.001, timeout=TIMEOUT)
    motor.emergency_stop()
    for future in futures:
        with pytest.raises(CancelledError):
            future.result(TIMEOUT)
    stopped_at = motor.position
    assert 0 * q.mm < stopped_at < 5 * q.mm and motor.state == "standby"
    assert all(future.cancelled() for future in futures)
    motor.move(1 * q.mm).join(TIMEOUT)  # and it works normally afterwards
    assert abs(motor.position - (stopped_at + 1 * q.mm)) < 1 * q.nm  # one step


def test_abort_does_not_cancel_or_wait_for_the_callers_work(asynchronous):
    """abort() stops the motor; the script that was moving it learns of it, abort() does not wait for it."""
    motor = LinearMotor(motion_velocity=10 * q.mm / q.s)
    outcome = {}

    def script():
        try:
            motor.position = 10 * q.mm
        except CancelledError as error:
            outcome["error"] = error

    runner = threading.Thread(target=script)
    runner.start()
    busy_wait(lambda: motor.position > 0.5 * q.mm, sleep_time=0.001, timeout=TIMEOUT)
    motor.abort().join(TIMEOUT)
    runner.join(TIMEOUT)
    assert f"{motor!r}.position = 10 mm was stopped by abort()" in str(outcome["error"])
    assert motor.state == "standby" and motor.position < 10 * q.mm


class SlowCamera(Camera):
    """Arms in two steps, so an abort can come in between."""

    def __init__(self):
        super().__init__()
        self.arming, self.armed = threading.Event(), threading.Event()

    def _record_real(self):
        self.arming.set()
        assert self.armed.wait(TIMEOUT)
        super()._record_real()


def test_a_start_under_way_cannot_re_arm_after_abort(asynchronous):
    camera = SlowCamera()
    starting = camera.start_recording()
    assert camera.arming.wait(TIMEOUT)
    camera.abort().join(TIMEOUT)
    camera.armed.set()  # the hardware finishes arming after the stop ...
    with pytest.raises(CancelledError):
        starting.result(TIMEOUT)
    assert camera.state == "standby" and not camera._recording  # ... and is stopped again


class SlowPump(Pump):
    def __init__(self):
        super().__init__()
        self.starting, self.go = threading.Event(), threading.Event()

    def _start_real(self):
        self.starting.set()
        assert self.go.wait(TIMEOUT)
        super()._start_real()


def test_emergency_stop_of_a_pump_that_is_starting(asynchronous):
    pump = SlowPump()
    starting = pump.start()
    assert pump.starting.wait(TIMEOUT)
    pump.emergency_stop()
    pump.go.set()
    with pytest.raises(CancelledError):
        starting.result(TIMEOUT)
    assert pump.state == "standby"


def test_move_and_a_position_block_do_not_deadlock(asynchronous):
    motor = LinearMotor(motion_velocity=1 * q.m / q.s)
    inside, done = threading.Event(), threading.Event()
    moves = []

    def block():
        with motor["position"]:
            inside.set()
            busy_wait(lambda: bool(moves) and motor["position"]._lock.waiters() >= 1, 0.001, TIMEOUT)
            motor.position = 1 * q.mm  # must not wait for the queued move
        done.set()

    holder = threading.Thread(target=block)
    holder.start()
    assert inside.wait(TIMEOUT)
    moves.append(motor.move(1 * q.mm))
    assert done.wait(TIMEOUT), "the block and the move deadlocked"
    moves[0].join(TIMEOUT)
    holder.join(TIMEOUT)
    assert motor.position == 2 * q.mm


def test_continuous_motion_cannot_leave_the_error_state():
    motor = ContinuousLinearMotor()
    motor["state"]._change("error", "simulated failure")
    with pytest.raises(StateError, match="'error'"):
        motor.velocity = 1 * q.mm / q.s
    assert motor.state == "error"


def test_pickled_quantities_are_accepted():
    import pickle

    motor = LinearMotor(motion_velocity=1 * q.m / q.s)
    motor.position = pickle.loads(pickle.dumps(2 * q.mm))
    assert motor.position == 2 * q.mm
