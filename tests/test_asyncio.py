"""Our futures inside asyncio: await, gather, wait_for, cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from concert.futures import async_, on_cancel
from tests.conftest import TIMEOUT


@async_
def double(value):
    return 2 * value


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


def test_await_returns_result_in_either_mode():
    async def main():
        return await double(21)

    assert run(main()) == 42


def test_await_raises_the_function_s_exception():
    @async_
    def broken():
        raise KeyError("missing")

    async def main():
        await broken()

    with pytest.raises(KeyError, match="missing"):
        run(main())


def test_await_does_not_block_the_event_loop(asynchronous):
    """The awaited function can only finish once another coroutine on the same loop has run."""
    release = threading.Event()

    @async_
    def waits_for_the_loop():
        assert release.wait(TIMEOUT), "the event loop was blocked"
        return "done"

    async def releaser():
        await asyncio.sleep(0)
        release.set()

    async def main():
        future = waits_for_the_loop()
        result, _ = await asyncio.gather(future, releaser())
        return result

    assert run(main()) == "done"


def test_gather_runs_futures_concurrently(asynchronous):
    barrier = threading.Barrier(3, timeout=TIMEOUT)

    @async_
    def meet(tag):
        barrier.wait()  # only passes if all three run at the same time
        return tag

    async def main():
        return await asyncio.gather(meet("a"), meet("b"), meet("c"))

    assert run(main()) == ["a", "b", "c"]


def test_wait_for_timeout_cancels_the_future(asynchronous):
    started, stopped = threading.Event(), threading.Event()

    @async_
    def move():
        on_cancel(stopped.set)
        started.set()
        assert stopped.wait(TIMEOUT)

    future = move()
    assert started.wait(TIMEOUT)

    async def main():
        await asyncio.wait_for(future, 0.05)

    with pytest.raises(asyncio.TimeoutError):
        run(main())
    assert stopped.is_set() and future.cancelled()


def test_cancelling_the_awaiting_task_cancels_the_future(asynchronous):
    started, stopped = threading.Event(), threading.Event()

    @async_
    def move():
        on_cancel(stopped.set)
        started.set()
        assert stopped.wait(TIMEOUT)

    future = move()
    assert started.wait(TIMEOUT)

    async def main():
        task = asyncio.ensure_future(future)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert stopped.is_set() and future.cancelled()


def test_wait_for_in_time_returns_result(asynchronous):
    async def main():
        return await asyncio.wait_for(double(5), TIMEOUT)

    assert run(main()) == 10


def test_cancel_action_does_not_block_the_loop(asynchronous):
    """A slow stop runs in a helper thread: the loop keeps serving other coroutines meanwhile."""
    started, stopped = threading.Event(), threading.Event()
    loop_ran_during_stop = threading.Event()

    def slow_stop():
        # The stop only completes once another coroutine on the loop has run.
        assert loop_ran_during_stop.wait(TIMEOUT), "the event loop was blocked during cancel"
        stopped.set()

    @async_
    def move():
        on_cancel(slow_stop)
        started.set()
        assert stopped.wait(TIMEOUT)

    future = move()
    assert started.wait(TIMEOUT)

    async def main():
        task = asyncio.ensure_future(future)
        await asyncio.sleep(0)
        task.cancel()

        async def other_work():
            while not task.done():
                loop_ran_during_stop.set()
                await asyncio.sleep(0.001)

        await other_work()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert stopped.is_set() and future.cancelled()
