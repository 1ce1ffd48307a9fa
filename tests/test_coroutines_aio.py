"""Seed 003's asyncio helpers in concert.coroutines.base: tasks, loops, executors, polling."""

from __future__ import annotations

import asyncio
import threading

import pytest

from concert.coroutines.base import (
    WaitError,
    background,
    ensure_coroutine,
    feed_queue,
    get_event_loop,
    run_in_executor,
    run_in_loop,
    running_tasks,
    start,
    wait_until,
)
from concert.devices.motors.dummy import LinearMotor
from concert.exceptions import UnitError
from concert.quantities import q
from tests.conftest import TIMEOUT


def test_run_in_loop_drives_a_motor_through_awaited_futures():
    motor = LinearMotor(position=0 * q.mm, motion_velocity=1000 * q.mm / q.s)

    async def main():
        await motor.move(2 * q.mm)
        await wait_until(lambda: motor.state == "standby", sleep_time=0.001, timeout=TIMEOUT)
        return motor.position

    assert run_in_loop(main()) == 2 * q.mm


def test_run_in_loop_refuses_a_running_loop_with_the_message_given():
    async def nested():
        coroutine = asyncio.sleep(0)
        try:
            run_in_loop(coroutine, error_msg_if_running="use await in the shell")
        finally:
            coroutine.close()

    with pytest.raises(RuntimeError, match="use await in the shell"):
        asyncio.run(nested())


def test_start_and_background_run_tasks_that_are_listed_until_they_end():
    seen = []

    @background
    async def remember(value):
        seen.append(value)
        return value * 2

    async def main():
        first = start(asyncio.sleep(0, result="slept"))
        second = remember(21)
        assert first in running_tasks() and second in running_tasks()
        return await first, await second

    assert run_in_loop(main()) == ("slept", 42)
    assert seen == [21]
    assert running_tasks() == []


def test_get_event_loop_is_the_running_loop_inside_and_one_loop_per_thread_outside():
    async def inside():
        return get_event_loop() is asyncio.get_running_loop()

    assert run_in_loop(inside())
    assert get_event_loop() is get_event_loop()
    loops = []
    thread = threading.Thread(target=lambda: loops.append(get_event_loop()))
    thread.start()
    thread.join(TIMEOUT)
    assert loops and loops[0] is not get_event_loop()


def test_run_in_executor_and_ensure_coroutine():
    async def main():
        doubled = await run_in_executor(lambda value: value * 2, 21)
        plain = await ensure_coroutine(lambda: "plain")
        awaited = await ensure_coroutine(asyncio.sleep, 0, "awaited")
        return doubled, plain, awaited

    assert run_in_loop(main()) == (42, "plain", "awaited")


@pytest.mark.usefixtures("asynchronous")
def test_cancelling_run_in_executor_waits_until_the_call_has_stopped():
    from concert.futures import check_cancelled

    started, stopped = threading.Event(), threading.Event()

    def blocking():
        started.set()
        try:
            while True:
                check_cancelled()
                threading.Event().wait(0.001)  # the blocking work being simulated, not synchronisation
        finally:
            stopped.set()

    async def main():
        task = asyncio.ensure_future(run_in_executor(blocking))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return stopped.is_set()

    assert run_in_loop(asyncio.wait_for(main(), TIMEOUT))


def test_wait_until_times_out_with_wait_error_and_checks_units():
    async def never():
        await wait_until(lambda: False, sleep_time=0.001, timeout=0.01)

    with pytest.raises(WaitError, match=r"still false after 0\.01 s"):
        run_in_loop(never())
    with pytest.raises(UnitError):
        run_in_loop(wait_until(lambda: True, sleep_time=1 * q.mm))


def test_feed_queue_can_be_awaited():
    def total(items):
        result = 0
        while True:
            item = items.get(timeout=TIMEOUT)
            if item.data is None:
                return result
            result += item.data

    async def main():
        return await feed_queue(range(10), total)

    assert run_in_loop(main()) == 45


def test_run_in_loop_takes_a_concert_future_and_raises_its_exception():
    motor = LinearMotor(position=0 * q.mm, motion_velocity=1000 * q.mm / q.s)
    run_in_loop(motor.set_position(1 * q.mm))
    assert motor.position == 1 * q.mm
    assert run_in_loop(motor.get_position()) == 1 * q.mm
    with pytest.raises(UnitError):
        run_in_loop(motor.set_position(1 * q.s))
    assert motor.position == 1 * q.mm
