"""Simulated motors: real-time moves, interruption, exact concurrent moves, limits, messages."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import CancelledError
from decimal import Decimal

import numpy as np
import pytest

from concert.devices.motors import base
from concert.devices.motors.dummy import (
    ContinuousLinearMotor,
    ContinuousRotationMotor,
    LinearMotor,
    RotationMotor,
)
from concert.dispatcher import dispatcher
from concert.exceptions import HardLimitError, LimitError, SoftLimitError, StateError, UnitError
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


def test_a_stop_seen_in_the_moving_state_always_stops_the_move(asynchronous):
    # The state turns 'moving' before the simulated axis starts; a stop in that window
    # used to be lost (the move then ran in full and stop() waited for all of it).
    motor = LinearMotor(motion_velocity=1 * q.m / q.s)
    for _ in range(200):
        start = motor.position
        target = start + 500 * q.mm if start < 0 * q.mm else start - 500 * q.mm
        future = motor.set_position(target)
        deadline = time.monotonic() + TIMEOUT
        while motor.state != "moving" and not future.done():  # spin: the window is microseconds long
            assert time.monotonic() < deadline, "the move never started"
        motor.stop().join(TIMEOUT)
        future.join(TIMEOUT)
        assert motor.position != target, "the stop was lost: the move ran in full"
        assert motor.state == "standby"


def test_a_move_stopped_before_the_axis_starts_keeps_it_where_it_was():
    from concert.devices.motors.dummy import _Axis

    axis = _Axis(0, None, None)
    axis.move_to(10_000, 1.0, stopped=lambda: True)  # would take hours: returns at once, unmoved
    assert axis.position() == 0
    axis.move_to(5, 1e6, stopped=lambda: False)
    assert axis.position() == 5


def test_a_stop_at_rest_does_not_stop_the_next_move():
    motor = LinearMotor()
    motor.stop().join(TIMEOUT)
    motor.set_position(1 * q.mm).join(TIMEOUT)
    assert motor.position == 1 * q.mm


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
    message = r"LinearMotor#\d+\['position'\]: 2 m \(= 2000 mm\) is above the hardware limit 1 m"
    with pytest.raises(HardLimitError, match=message):
        motor.position = 2 * q.m
    with pytest.raises(HardLimitError):
        motor.move(-1.5 * q.m).join(TIMEOUT)
    motor["position"].upper = 5 * q.mm
    with pytest.raises(SoftLimitError):
        motor.move(6 * q.mm).join(TIMEOUT)
    with pytest.raises(
        UnitError, match=r"LinearMotor#\d+\['position'\]: move by 1 deg cannot be expressed in mm$"
    ):
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
        def _move_real(self, position):
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


# -- issue 8 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
)
def test_numpy_integer_positions_move_the_motor(kind):
    motor = LinearMotor(motion_velocity=10 * q.m / q.s)
    motor.position = kind(100) * q.mm  # 100 * 10**6 steps would overflow the small widths
    assert motor.position == 100 * q.mm and motor.state == "standby"
    motor.move(kind(27) * q.mm).join(TIMEOUT)
    assert motor.position == 127 * q.mm and motor.state == "standby"


def test_a_uint8_position_of_255_mm():
    motor = LinearMotor(motion_velocity=10 * q.m / q.s)
    motor.position = np.uint8(255) * q.mm
    assert motor.position == 255 * q.mm and motor.state == "standby"


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("position", q.Quantity("5", "mm"), UnitError),
        ("position", q.Quantity(10**400, "mm"), LimitError),
        ("position", q.Quantity(np.array([1, 2]), "mm"), UnitError),
        ("motion_velocity", q.Quantity("50", "mm/s"), UnitError),
        ("motion_velocity", q.Quantity(Decimal("sNaN"), "mm/s"), LimitError),
    ],
)
def test_bad_magnitudes_leave_the_motor_as_it_was(name, value, error):
    motor = LinearMotor(motion_velocity=1 * q.m / q.s)
    before = (motor.position, motor.motion_velocity)
    with pytest.raises(error, match=rf"LinearMotor#\d+\['{name}'\]"):
        setattr(motor, name, value)
    assert motor.state == "standby" and (motor.position, motor.motion_velocity) == before
    motor.move(1 * q.mm).join(TIMEOUT)  # and it still works
    assert motor.position == before[0] + 1 * q.mm and motor.state == "standby"


def test_motion_velocity_has_hardware_limits_besides_the_soft_ones():
    motor = LinearMotor()
    motor["motion_velocity"].lower = None
    with pytest.raises(HardLimitError):
        motor.motion_velocity = 0 * q.mm / q.s
    with pytest.raises(HardLimitError):
        motor.motion_velocity = -5 * q.mm / q.s
    motor.move(1 * q.mm).join(TIMEOUT)
    assert motor.state == "standby" and motor.motion_velocity == 100 * q.mm / q.s


def test_a_nan_soft_limit_does_not_switch_the_limit_off():
    motor = LinearMotor(motion_velocity=10 * q.m / q.s)
    motor["position"].lower = -10 * q.mm
    with pytest.raises(LimitError, match=r"LinearMotor#\d+\['position'\]: lower limit nan mm"):
        motor["position"].lower = float("nan") * q.mm
    with pytest.raises(UnitError):
        motor["position"].lower = -600  # a bare number
    with pytest.raises(UnitError):
        motor["position"].lower = -600 * q.deg
    assert motor["position"].lower == -10 * q.mm
    with pytest.raises(SoftLimitError):
        motor.move(-500 * q.mm).join(TIMEOUT)
    assert motor.position == 0 * q.mm


@pytest.mark.parametrize("value", [90, 90.0, np.int64(90), 2 * q.dimensionless])
def test_rotation_motors_refuse_bare_numbers(value):
    motor = RotationMotor()
    with pytest.raises(UnitError, match=r"is not a quantity in deg \(write e.g. (90|2) \* q.deg\)"):
        motor.position = value
    with pytest.raises(UnitError, match=r"move by .* is not a quantity in deg"):
        motor.move(value).join(TIMEOUT)
    assert motor.position == 0 * q.deg and motor.state == "standby"


def test_rotation_motors_convert_angles():
    motor = RotationMotor(motion_velocity=36000 * q.deg / q.s)
    motor.position = np.pi / 4 * q.rad
    assert motor.position.magnitude == pytest.approx(45)
    with pytest.raises(UnitError, match=r"\['motion_velocity'\]: 1 Hz cannot be expressed in deg/s"):
        motor.motion_velocity = 1 * q.Hz


def test_a_misspelt_position_does_not_pass_silently():
    motor = LinearMotor()
    with pytest.raises(
        AttributeError, match=r"LinearMotor#\d+ has no parameter 'positon'; did you mean 'position'"
    ):
        motor.positon = 4 * q.mm
    assert not hasattr(motor, "positon") and motor.position == 0 * q.mm


def test_state_errors_name_what_the_user_called():
    motor = LinearMotor()
    motor["state"]._change("error")
    only = r"is not allowed in state 'error' \(only in 'standby', 'hard-limit'\)$"
    with pytest.raises(StateError, match=rf"^{motor!r}\.move\(\+5 mm\) {only}"):
        motor.move(5 * q.mm).join(TIMEOUT)
    with pytest.raises(StateError, match=rf"^{motor!r}\.position = 5 mm {only}"):
        motor.position = 5 * q.mm
    with pytest.raises(StateError, match=rf"^{motor!r}\.home\(\) {only}"):
        motor.home().join(TIMEOUT)
    with pytest.raises(StateError, match=rf"^{motor!r}\.position = 5 mm {only}"):
        motor["position"].set(5 * q.mm).join(TIMEOUT)
    continuous = ContinuousLinearMotor()
    continuous["state"]._change("error")
    with pytest.raises(
        StateError, match=rf"^{continuous!r}\.velocity = 5 mm/s is not allowed in state 'error'"
    ):
        continuous.velocity = 5 * q.mm / q.s


def test_a_refused_move_is_named_as_the_user_wrote_it():
    motor = LinearMotor()
    motor["state"]._change("error")
    with pytest.raises(StateError, match=rf"^{motor!r}\.move\(\+0.001 km\) is not allowed"):
        motor.move(0.001 * q.km).join(TIMEOUT)
