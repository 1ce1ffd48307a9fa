"""Scans, optimisation and focusing on simulated devices; the progress bar."""

from __future__ import annotations

from concurrent.futures import CancelledError

import numpy as np
import pytest

from concert import config
from concert.devices.cameras.dummy import Camera
from concert.devices.motors.dummy import LinearMotor
from concert.exceptions import SoftLimitError, WaitError
from concert.processes import ascan, dscan, focus, halver, optimize_parameter, scan
from concert.quantities import q
from tests.conftest import TIMEOUT


def fast_motor(**kwargs):
    return LinearMotor(motion_velocity=10 * q.m / q.s, **kwargs)


def test_scan_returns_points_and_values(no_progress_bar):
    motor = fast_motor()
    xs, ys = scan(motor["position"], lambda: motor.position**2, 0 * q.mm, 4 * q.mm, intervals=4).result(
        TIMEOUT
    )
    assert list(xs.to(q.mm).magnitude) == [0, 1, 2, 3, 4]
    assert list(ys.to(q.mm**2).magnitude) == [0, 1, 4, 9, 16]
    assert motor.position == 4 * q.mm


def test_scan_converts_units_and_respects_limits(no_progress_bar):
    motor = fast_motor()
    xs, _ = scan(motor["position"], lambda: 0, 0 * q.um, 2000 * q.um, intervals=2).result(TIMEOUT)
    assert list(xs.to(q.mm).magnitude) == [0, 1, 2] and str(xs.units) == "millimeter"
    motor["position"].upper = 1 * q.mm
    with pytest.raises(SoftLimitError):
        scan(motor["position"], lambda: 0, 0 * q.mm, 2 * q.mm, intervals=2).result(TIMEOUT)
    with pytest.raises(ValueError, match="intervals=0"):
        scan(motor["position"], lambda: 0, 0 * q.mm, 1 * q.mm, intervals=0).result(TIMEOUT)


def test_ascan_sets_parameters_together(no_progress_bar):
    x, y = fast_motor(), fast_motor()
    positions, ys = ascan(
        [(x["position"], 0 * q.mm, 2 * q.mm), (y["position"], 10 * q.mm, 6 * q.mm)],
        2,
        lambda: (x.position + y.position).to(q.mm).magnitude,
    ).result(TIMEOUT)
    assert [list(p.magnitude) for p in positions] == [[0, 1, 2], [10, 8, 6]]
    assert list(ys) == [10, 9, 8]


def test_dscan_is_relative_and_goes_back(no_progress_bar):
    motor = fast_motor(position=5 * q.mm)
    seen = []
    future = dscan([(motor["position"], -1 * q.mm, 1 * q.mm)], 2, lambda: seen.append(motor.position))
    positions, _ = future.result(TIMEOUT)
    assert list(positions[0].magnitude) == [4, 5, 6] and seen == [4 * q.mm, 5 * q.mm, 6 * q.mm]
    assert motor.position == 5 * q.mm


def test_dscan_goes_back_after_a_failure(no_progress_bar):
    motor = fast_motor(position=5 * q.mm)

    def failing():
        if motor.position > 5 * q.mm:
            raise OSError("detector saturated")

    with pytest.raises(OSError, match="saturated"):
        dscan([(motor["position"], 0 * q.mm, 2 * q.mm)], 2, failing).result(TIMEOUT)
    assert motor.position == 5 * q.mm


def test_halver_finds_a_maximum():
    x, value = halver(lambda x: -((x - 3.2) ** 2), 0.0, 1.0, 1e-4)
    assert abs(x - 3.2) < 1e-3 and value <= 0
    with pytest.raises(WaitError, match="no maximum"):
        halver(lambda x: x, 0.0, 1.0, 1e-9, max_iterations=10)


def test_optimize_parameter_leaves_the_parameter_at_the_best_value(no_progress_bar):
    motor = fast_motor()

    def peak():
        return -float(((motor.position - 2.5 * q.mm) / q.mm).to("dimensionless").magnitude ** 2)

    x, _ = optimize_parameter(motor["position"], peak, 0 * q.mm, alg_args=(1 * q.mm, 1 * q.um)).result(
        TIMEOUT
    )
    assert abs(x - 2.5 * q.mm) < 5 * q.um and motor.position == x


class FocusCamera(Camera):
    """A camera whose frames are sharpest (largest spread) with the motor at 3 mm."""

    def __init__(self, motor):
        super().__init__()
        self.motor = motor

    def _grab_real(self, timeout):
        frame = super()._grab_real(timeout)
        if frame is None:
            return None
        offset = float((self.motor.position - 3 * q.mm).to(q.mm).magnitude)
        sharpness = np.exp(-(offset**2))
        frame[:] = (np.indices(frame.shape).sum(axis=0) % 2) * 1000 * sharpness
        return frame


def test_focus_finds_the_sharpest_position(no_progress_bar):
    motor = fast_motor()
    camera = FocusCamera(motor)
    previous_trigger = camera.trigger_source
    position, sharpness = focus(camera, motor, initial_step=1 * q.mm, epsilon=5 * q.um).result(TIMEOUT)
    assert abs(position - 3 * q.mm) < 0.02 * q.mm
    assert motor.position == position and sharpness > 0
    assert camera.state == "standby" and camera.trigger_source == previous_trigger


@pytest.mark.parametrize("enabled", [True, False])
def test_progress_bar_only_when_enabled(capsys, enabled):
    previous = config.PROGRESS_BAR
    config.PROGRESS_BAR = enabled
    try:
        motor = fast_motor()
        scan(motor["position"], lambda: 0, 0 * q.mm, 1 * q.mm, intervals=5).result(TIMEOUT)
    finally:
        config.PROGRESS_BAR = previous
    error = capsys.readouterr().err
    assert ("scan position" in error) is enabled
    assert ("/6 [" in error) is enabled  # the bar, with its total of 6 points


def cancel_mid_step(start_process):
    """Start a process whose feedback blocks; cancel it during the first step; return (future, calls)."""
    import threading

    started, gate, calls = threading.Event(), threading.Event(), []

    def feedback():
        calls.append(1)
        started.set()
        assert gate.wait(TIMEOUT)
        return 0

    future = start_process(feedback)
    assert started.wait(TIMEOUT)
    canceller = threading.Thread(target=future.cancel)  # cancel() waits for the step to end
    canceller.start()
    gate.set()
    canceller.join(TIMEOUT)
    assert not canceller.is_alive()
    return future, calls


def test_cancelling_a_scan_stops_it_after_the_current_step(no_progress_bar, asynchronous):
    motor = fast_motor()
    future, calls = cancel_mid_step(lambda feedback: scan(motor["position"], feedback, 0 * q.mm, 4 * q.mm, 4))
    assert future.cancelled() and len(calls) == 1 and motor.position == 0 * q.mm


def test_cancelling_a_dscan_puts_the_parameters_back(no_progress_bar, asynchronous):
    motor = fast_motor(position=5 * q.mm)
    future, calls = cancel_mid_step(
        lambda feedback: dscan([(motor["position"], 1 * q.mm, 3 * q.mm)], 2, feedback)
    )
    assert future.cancelled() and len(calls) == 1 and motor.position == 5 * q.mm


def test_measurements_that_do_not_stack_stay_a_list(no_progress_bar):
    motor = fast_motor()
    _, ys = ascan(
        [(motor["position"], 0 * q.mm, 1 * q.mm)], 1, lambda: (motor.position, 2 * motor.position)
    ).result(TIMEOUT)
    assert ys == [(0 * q.mm, 0 * q.mm), (1 * q.mm, 2 * q.mm)]


def test_focus_refuses_a_recording_camera(no_progress_bar):
    from concert.exceptions import StateError

    camera = Camera()
    with camera.recording():
        with pytest.raises(StateError, match=r"focus needs Camera#\d+ in standby.*'recording'"):
            focus(camera, fast_motor()).result(TIMEOUT)
        assert camera.state == "recording"


def test_cancelling_focus_stops_its_search(no_progress_bar, asynchronous):
    import threading

    motor = fast_motor()
    camera = FocusCamera(motor)
    evaluated = threading.Event()
    original = camera._grab_real

    def counting(timeout):
        evaluated.set()
        return original(timeout)

    camera._grab_real = counting
    future = focus(camera, motor, initial_step=1 * q.mm, epsilon=1e-9 * q.mm, max_iterations=100_000)
    assert evaluated.wait(TIMEOUT)
    assert future.cancel()
    assert future.cancelled() and camera.state == "standby"


def stop_from_inside_at(step, reason="abort()"):
    """A feedback that asks its own process to stop at call ``step`` (works in both modes)."""
    from concert.futures import current_future

    calls = []

    def feedback():
        calls.append(1)
        if len(calls) == step:
            current_future().request_cancel(reason)  # no waiting: the process goes on to its next check
        return len(calls)

    return feedback, calls


def test_a_scan_stops_before_its_next_step_and_names_the_reason(no_progress_bar):
    motor = fast_motor()
    feedback, calls = stop_from_inside_at(2)
    future = scan(motor["position"], feedback, 0 * q.mm, 4 * q.mm, intervals=4)
    with pytest.raises(CancelledError, match=r"^scan\(.*\) was stopped by abort\(\)$"):
        future.result(TIMEOUT)
    assert future.cancelled() and len(calls) == 2 and motor.position == 1 * q.mm


@pytest.mark.parametrize("process", ["ascan", "dscan"])
def test_an_ascan_or_dscan_stops_before_its_next_step(no_progress_bar, process):
    motor = fast_motor(position=5 * q.mm)
    feedback, calls = stop_from_inside_at(1, "emergency_stop()")
    start = ascan if process == "ascan" else dscan
    future = start([(motor["position"], 1 * q.mm, 3 * q.mm)], 2, feedback)
    with pytest.raises(CancelledError, match=r"was stopped by emergency_stop\(\)"):
        future.result(TIMEOUT)
    assert len(calls) == 1
    assert motor.position == (1 * q.mm if process == "ascan" else 5 * q.mm)  # dscan went back


def test_optimize_parameter_stops_before_its_next_evaluation(no_progress_bar):
    motor = fast_motor()
    feedback, calls = stop_from_inside_at(3)
    future = optimize_parameter(motor["position"], feedback, 0 * q.mm, alg_args=(1 * q.mm, 1 * q.um))
    with pytest.raises(CancelledError, match=r"optimize_parameter\(.*\) was stopped by abort\(\)"):
        future.result(TIMEOUT)
    assert len(calls) == 3


def test_cancel_reports_the_reason_of_a_stopped_scan(no_progress_bar, asynchronous):
    motor = fast_motor()
    future, calls = cancel_mid_step(lambda feedback: scan(motor["position"], feedback, 0 * q.mm, 4 * q.mm, 4))
    with pytest.raises(CancelledError, match=r"scan\(.*\) was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    assert len(calls) == 1


def test_cancelling_a_scan_stops_the_move_in_progress(no_progress_bar, asynchronous):
    from concert.polling import busy_wait

    motor = LinearMotor(motion_velocity=1 * q.mm / q.s)  # 10 s to the second point: it must be cut short
    future = scan(motor["position"], lambda: 0, 0 * q.mm, 10 * q.mm, intervals=1)
    busy_wait(lambda: motor.position > 0 * q.mm, sleep_time=0.001, timeout=TIMEOUT)
    assert future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError, match=r"was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    assert motor.state == "standby" and 0 * q.mm < motor.position < 10 * q.mm


def test_no_process_has_a_stop_flag_of_its_own():
    import concert.processes.progress as progress

    assert not hasattr(progress, "Steps")  # check_cancelled() is the one way to stop between steps
