"""Issue 7, item 2: one cancellation mechanism, and the reason is never lost."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from concert.devices.cameras.dummy import Camera
from concert.devices.motors.dummy import LinearMotor
from concert.exceptions import WaitError
from concert.futures import async_, check_cancelled, on_cancel
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT

pytestmark = pytest.mark.usefixtures("asynchronous")


class StopButtonError(Exception):
    pass


def moving(motor: LinearMotor, delta=100 * q.mm):
    future = motor.move(delta)
    busy_wait(lambda: motor.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    return future


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        (lambda motor, future: future.cancel(), "cancel()"),
        (lambda motor, future: motor.abort(), "abort()"),
        (lambda motor, future: motor.emergency_stop(), "emergency_stop()"),
    ],
)
def test_the_cancelled_error_names_the_operation_and_the_reason(stop, reason):
    motor = LinearMotor()
    future = moving(motor)
    stop(motor, future)
    with pytest.raises(CancelledError) as raised:
        future.result(TIMEOUT)
    assert str(raised.value) == f"{motor!r}.move(+100 mm) was stopped by {reason}"
    assert future.cancelled() and motor.state == "standby" and motor.position < 100 * q.mm


def test_a_cancelled_parent_passes_its_reason_to_what_it_waits_for():
    motor = LinearMotor()

    @async_
    def scan():
        return motor.move(100 * q.mm).result(TIMEOUT)

    parent = scan()
    busy_wait(lambda: motor.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    assert parent.cancel(TIMEOUT)
    with pytest.raises(CancelledError, match=r"scan\(\) was stopped by cancel\(\)"):
        parent.result(TIMEOUT)
    assert motor.state == "standby" and motor.position < 100 * q.mm


def test_a_pending_future_names_the_reason_too():
    gate = threading.Event()

    @async_
    def first():
        assert gate.wait(TIMEOUT)

    @async_
    def waits_in_line(i):
        return i

    # Fill the pool with blockers so that the next call stays queued.
    from concert import config

    blockers = [first() for _ in range(config.MAX_WORKERS)]
    queued = waits_in_line(7)
    try:
        assert queued.cancel() is True
    finally:
        gate.set()
    with pytest.raises(
        CancelledError, match=r"waits_in_line\(7\) was cancelled by cancel\(\) before it started"
    ):
        queued.result(TIMEOUT)
    for blocker in blockers:
        blocker.result(TIMEOUT)


def test_a_failing_stop_action_reaches_the_canceller_and_the_operation_finishes():
    started, release = threading.Event(), threading.Event()

    def broken_stop():
        raise StopButtonError("stop button jammed")

    @async_
    def work():
        with on_cancel(broken_stop):
            started.set()
            assert release.wait(TIMEOUT)
        check_cancelled()  # the request was withdrawn: this does not raise
        return "finished"

    future = work()
    assert started.wait(TIMEOUT)
    with pytest.raises(StopButtonError, match="jammed"):
        future.cancel()
    release.set()
    assert future.result(TIMEOUT) == "finished" and not future.cancelled()


def test_cancel_with_a_timeout_does_not_wait_forever():
    release = threading.Event()

    @async_
    def slow_to_stop():
        with on_cancel(lambda: None):  # a stop action that does not stop anything
            assert release.wait(TIMEOUT)

    future = slow_to_stop()
    busy_wait(future.running, sleep_time=0.001, timeout=TIMEOUT)
    with pytest.raises(WaitError, match=r"did not stop within 0\.1 s after cancel\(\)"):
        future.cancel(timeout=0.1)
    release.set()
    with pytest.raises(CancelledError, match=r"slow_to_stop\(\) was stopped by cancel\(\)"):
        future.result(TIMEOUT)


def test_a_loop_stops_at_its_check_with_the_reason():
    steps = []
    started = threading.Event()

    @async_
    def loop():
        while True:
            check_cancelled()
            steps.append(1)
            started.set()
            threading.Event().wait(0.001)

    future = loop()
    assert started.wait(TIMEOUT)
    assert future.cancel(TIMEOUT)
    with pytest.raises(CancelledError, match=r"loop\(\) was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    count = len(steps)
    assert count >= 1 and len(steps) == count


def test_on_cancel_refuses_to_start_what_a_standing_request_would_stop():
    asked, go = threading.Event(), threading.Event()
    touched = []

    @async_
    def late():
        asked.set()
        assert go.wait(TIMEOUT)
        with on_cancel(lambda: None):
            touched.append("hardware")

    future = late()
    assert asked.wait(TIMEOUT)
    canceller = threading.Thread(target=future.cancel)
    canceller.start()
    busy_wait(lambda: future._cancel_reason is not None, sleep_time=0.001, timeout=TIMEOUT)
    go.set()
    canceller.join(TIMEOUT)
    assert future.cancelled() and touched == []


def test_a_cancelled_grab_names_the_reason():
    camera = Camera()
    camera.trigger_source = "SOFTWARE"
    with camera.recording():
        grab = camera.grab_async()
        busy_wait(grab.running, sleep_time=0.001, timeout=TIMEOUT)
        assert grab.cancel(TIMEOUT)
        with pytest.raises(CancelledError, match=r"grab_async\(\) was stopped by cancel\(\)"):
            grab.result(TIMEOUT)


def test_cancelling_a_wrapped_future_does_not_block_the_event_loop():
    import asyncio
    import time

    release = threading.Event()

    @async_
    def never_checks():
        assert release.wait(TIMEOUT)

    async def main():
        future = never_checks()
        wrapped = asyncio.wrap_future(future)
        while not future.running():  # bounded by the wait_for below
            await asyncio.sleep(0.001)
        start = time.monotonic()
        wrapped.cancel()  # asyncio cancels the Concert future from the loop's thread
        with pytest.raises(asyncio.CancelledError):
            await wrapped
        return time.monotonic() - start, future

    elapsed, future = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    release.set()
    assert elapsed < 1.0  # the loop was never blocked until the call stopped
    assert future.result(TIMEOUT) is None  # no stop action, never checked: it finished
