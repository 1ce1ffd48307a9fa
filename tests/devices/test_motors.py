"""Simulated motors: real-time moves, interruption, exact concurrent moves, limits, messages."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import CancelledError

import pytest

from concert.devices.motors import base
from concert.devices.motors.dummy import (
    ContinuousLinearMotor,
    ContinuousRotationMotor,
    LinearMotor,
    RotationMotor,
)
from concert.dispatcher import dispatcher
from concert.exceptions import HardLimitError, SoftLimitError, StateError, UnitError
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT

RESTING = ("standby", "hard-limit")


@pytest.mark.parametrize("cls", [LinearMotor, RotationMotor, ContinuousLinearMotor, ContinuousRotationMotor])
def test_every_dummy_works_without_arguments(cls):
    motor = cls()
    assert motor.state == "standby"
    assert motor.position == 0 * motor["position"].unit
    unit = motor["position"].unit
    motor.move(1 * unit).join(TIMEOUT)
    assert motor.position == 1 * unit
    motor.home().join(TIMEOUT)
    assert motor.position == 0 * unit
    assert {p.name for p in motor} >= {"position", "motion_velocity", "velocity", "state"}


def test_move_takes_real_time():
    motor = LinearMotor(motion_velocity=50 * q.mm / q.s)
    begin = time.monotonic()
    motor.move(5 * q.mm).join(TIMEOUT)
    elapsed = time.monotonic() - begin
    assert 0.1 <= elapsed < 0.1 + 1.0
    assert motor.position == 5 * q.mm and motor.state == "standby"


def test_fifty_concurrent_moves_are_exact():
    motor = LinearMotor(motion_velocity=1000 * q.mm / q.s)
    barrier = threading.Barrier(50, timeout=TIMEOUT)
    errors = []

    def move():
        try:
            barrier.wait()
            motor.move(0.1 * q.mm).join(TIMEOUT)
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=move) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert errors == []
    assert motor.position == 5 * q.mm


def started_long_move(motor):
    """Start a 100 mm move at 100 mm/s and return (future, start) once it is under way."""
    start = motor.position
    future = motor.move(100 * q.mm)
    busy_wait(lambda: motor.position > start + 1 * q.mm, sleep_time=0.001, timeout=TIMEOUT)
    return future, start


def assert_stopped_part_way(motor, start, target):
    assert motor.state in RESTING
    position = motor.position
    assert start < position < target, f"{position} not strictly between {start} and {target}"
    # and it stays there
    assert motor.position == position


def test_stop_interrupts_a_move(asynchronous):
    motor = LinearMotor()
    future, start = started_long_move(motor)
    motor.stop().join(TIMEOUT)
    future.join(TIMEOUT)  # the move ends normally, part-way
    assert_stopped_part_way(motor, start, start + 100 * q.mm)


def test_cancel_interrupts_a_move(asynchronous):
    motor = LinearMotor()
    future, start = started_long_move(motor)
    assert future.cancel()
    with pytest.raises(CancelledError):
        future.result(TIMEOUT)
    assert_stopped_part_way(motor, start, start + 100 * q.mm)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_sigint_during_join_interrupts_a_move(asynchronous):
    motor = LinearMotor()
    future, start = started_long_move(motor)
    timer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        future.join(TIMEOUT)
    timer.join(TIMEOUT)
    assert future.cancelled()
    assert_stopped_part_way(motor, start, start + 100 * q.mm)


def test_emergency_stop_from_another_thread(asynchronous):
    motor = LinearMotor()
    future, start = started_long_move(motor)
    stopper = threading.Thread(target=motor.emergency_stop)
    stopper.start()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive()
    with pytest.raises(CancelledError):  # the move learns it was stopped
        future.result(TIMEOUT)
    assert future.cancelled()
    assert_stopped_part_way(motor, start, start + 100 * q.mm)
    motor.emergency_stop()  # idempotent, and harmless at rest
    assert motor.state in RESTING


def test_emergency_stop_during_a_blocking_write(synchronous):
    motor = LinearMotor()
    stopper = threading.Thread(
        target=lambda: (
            busy_wait(lambda: motor.position > 1 * q.mm, sleep_time=0.001, timeout=TIMEOUT),
            motor.emergency_stop(),
        )
    )
    stopper.start()
    with pytest.raises(
        CancelledError, match=r"LinearMotor#\d+\.position = 100 mm was stopped by emergency_stop\(\)"
    ):
        motor.position = 100 * q.mm  # blocks in this thread until stopped: and says so
    stopper.join(TIMEOUT)
    assert_stopped_part_way(motor, 0 * q.mm, 100 * q.mm)


def test_standby_message_when_a_move_ends():
    motor = LinearMotor()
    arrived = dispatcher.when(motor, "standby")
    handler_calls = []
    dispatcher.subscribe(motor, "standby", handler_calls.append)
    try:
        motor.move(1 * q.mm).join(TIMEOUT)
        assert arrived.result(TIMEOUT) is motor
        dispatcher.flush(TIMEOUT)
        assert handler_calls == [motor]
    finally:
        dispatcher.unsubscribe(motor, "standby", handler_calls.append)


def test_limits_refuse_before_moving():
    motor = LinearMotor()
    with pytest.raises(HardLimitError, match=r"LinearMotor#\d+\['position'\].*2.*meter.*hardware limit 1 m"):
        motor.position = 2 * q.m
    with pytest.raises(HardLimitError):
        motor.move(-1.5 * q.m).join(TIMEOUT)
    motor["position"].upper = 5 * q.mm
    with pytest.raises(SoftLimitError):
        motor.move(6 * q.mm).join(TIMEOUT)
    with pytest.raises(UnitError, match=r"LinearMotor#\d+\['position'\]: move by .*degree.*mm"):
        motor.move(1 * q.deg).join(TIMEOUT)
    assert motor.position == 0 * q.mm and motor.state == "standby"


def test_continuous_motion_and_hard_limit():
    motor = ContinuousLinearMotor(upper_hard_limit=20 * q.mm)
    reached = dispatcher.when(motor, "moving")
    motor.velocity = 1000 * q.mm / q.s
    assert reached.result(TIMEOUT) is motor
    busy_wait(lambda: motor.state == "hard-limit", sleep_time=0.001, timeout=TIMEOUT)
    assert motor.position == 20 * q.mm and motor.velocity == 0 * q.mm / q.s
    motor.move(-5 * q.mm).join(TIMEOUT)  # moving out of a hard limit is allowed
    assert motor.position == 15 * q.mm and motor.state == "standby"


def test_continuous_motion_stops_on_zero_velocity():
    motor = ContinuousRotationMotor()
    motor.velocity = -90 * q.deg / q.s
    assert motor.state == "moving" and motor.velocity == -90 * q.deg / q.s
    busy_wait(lambda: motor.position < -0.5 * q.deg, sleep_time=0.001, timeout=TIMEOUT)
    motor.velocity = 0 * q.deg / q.s
    assert motor.state == "standby"
    stopped_at = motor.position
    assert stopped_at < 0 * q.deg and motor.position == stopped_at


def test_error_state_and_reset():
    class Stalling(LinearMotor):
        def _move_hardware(self, position):
            raise OSError("encoder lost")

    motor = Stalling()
    with pytest.raises(OSError, match="encoder lost"):
        motor.move(1 * q.mm).join(TIMEOUT)
    assert motor.state == "error" and "encoder lost" in motor["state"].error
    with pytest.raises(StateError):
        motor.move(1 * q.mm).join(TIMEOUT)
    motor.reset().join(TIMEOUT)
    assert motor.state == "standby"


def test_velocity_measured_by_sampling_positions(asynchronous):
    """The base class measures velocity from two positions MOTOR_VELOCITY_SAMPLING_TIME apart."""
    from concert import config

    class Sampled(LinearMotor):
        _get_velocity = base.LinearMotor._get_velocity

    previous = config.MOTOR_VELOCITY_SAMPLING_TIME
    config.MOTOR_VELOCITY_SAMPLING_TIME = 0.05
    try:
        motor = Sampled(motion_velocity=100 * q.mm / q.s)
        assert motor.velocity == 0 * q.mm / q.s
        future, _ = started_long_move(motor)
        measured = motor.velocity
        motor.stop().join(TIMEOUT)
        future.join(TIMEOUT)
    finally:
        config.MOTOR_VELOCITY_SAMPLING_TIME = previous
    assert 80 * q.mm / q.s < measured < 120 * q.mm / q.s


def test_stop_never_waits_for_another_owners_block(asynchronous):
    motor = ContinuousLinearMotor()
    motor.velocity = 1 * q.mm / q.s
    with motor:
        stopper = threading.Thread(target=motor.emergency_stop)
        stopper.start()
        stopper.join(TIMEOUT)
        assert not stopper.is_alive(), "emergency_stop waited for a with-block"
    assert motor.state == "standby" and motor.velocity == 0 * q.mm / q.s
