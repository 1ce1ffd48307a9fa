"""Ctrl-C (a real SIGINT) while blocked on a future cancels it and re-raises."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from concert.futures import async_, on_cancel, wait
from tests.conftest import TIMEOUT

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread only"
)


def interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def make_move():
    started, stopped = threading.Event(), threading.Event()

    @async_
    def move():
        on_cancel(stopped.set)  # what a motor registers: its stop()
        started.set()
        assert stopped.wait(TIMEOUT), "the motor was never stopped"
        return "stopped part-way"

    return move, started, stopped


@pytest.mark.parametrize("method", ["join", "wait", "result"])
def test_sigint_interrupts_blocked_wait_and_runs_cancel_action(asynchronous, method):
    move, started, stopped = make_move()
    future = move()
    assert started.wait(TIMEOUT)
    begin = time.monotonic()
    timer = interrupt_after(0.1)
    with pytest.raises(KeyboardInterrupt):
        getattr(future, method)(TIMEOUT)
    elapsed = time.monotonic() - begin
    timer.join(TIMEOUT)
    assert elapsed < 0.1 + 0.5, f"join was interrupted only after {elapsed:.3f} s"
    assert stopped.is_set() and future.cancelled()


def test_sigint_in_module_wait_cancels_everything_waited_for(asynchronous):
    moves = [make_move() for _ in range(3)]
    futures = [move() for move, _, _ in moves]
    for _, started, _ in moves:
        assert started.wait(TIMEOUT)
    timer = interrupt_after(0.1)
    with pytest.raises(KeyboardInterrupt):
        wait(futures, TIMEOUT)
    timer.join(TIMEOUT)
    assert all(stopped.is_set() for _, _, stopped in moves)
    assert all(future.cancelled() for future in futures)


def test_sigint_during_synchronous_call_runs_cancel_action(synchronous):
    stopped = threading.Event()

    @async_
    def move():
        on_cancel(stopped.set)
        interrupt_after(0.05)
        # Under DISABLE this runs in the main thread, so the signal lands here.
        threading.Event().wait(TIMEOUT)
        raise AssertionError("no SIGINT arrived")

    with pytest.raises(KeyboardInterrupt):
        move()
    assert stopped.is_set()


def test_sigint_keeps_the_interrupt_and_stops_everything_even_if_a_stop_fails(asynchronous, log_of):
    records = log_of("concert.futures").records
    moves = [make_move() for _ in range(2)]
    broken_started = threading.Event()
    release = threading.Event()

    def broken_stop():
        raise RuntimeError("stop failed")

    @async_
    def broken():
        on_cancel(broken_stop)
        broken_started.set()
        assert release.wait(TIMEOUT)

    futures = [broken()] + [move() for move, _, _ in moves]
    assert broken_started.wait(TIMEOUT)
    for _, started, _ in moves:
        assert started.wait(TIMEOUT)
    timer = interrupt_after(0.05)
    try:
        with pytest.raises(KeyboardInterrupt):
            wait(futures, TIMEOUT)
    finally:
        timer.join(TIMEOUT)
        release.set()
    assert all(stopped.is_set() for _, _, stopped in moves)  # the failing stop did not keep these running
    assert any("stop failed" in str(r.exc_info[1]) for r in records if r.exc_info)
