"""Issue 7, item 1: every call owns its thread; the pool compensates for blocked waiters.

Each case runs where the pool's size matters in a fresh interpreter
(``CONCERT_MAX_WORKERS`` is read when the pool is created), every wait
bounded so that a hang fails.
"""

from __future__ import annotations

import threading
import time

import pytest

from concert import config
from concert.exceptions import PoolExhaustedError, WaitError
from concert.futures import Future, async_, current_future
from tests.conftest import TIMEOUT, run_python

INHERITED_FENCE = """
import threading
from concert.devices.base import Device
from concert.futures import async_
from concert.operations import device_call

class D(Device):
    @async_
    def outer(self, box, ready, go):
        with device_call(self, None):
            ready.set()
            assert go.wait(30)
        return box[0].result(30)       # waits for work submitted after the abort

    @async_
    def inner(self):
        with device_call(self, None):
            return threading.current_thread().name

d = D()
box, ready, go = [], threading.Event(), threading.Event()
outer = d.outer(box, ready, go)
assert ready.wait(30)
d.abort()
box.append(d.inner())                  # submitted after the abort: must run normally
go.set()
print("inner:", box[0].result(30).startswith("concert-worker-"))
print("outer:", outer.exception(30) if not outer.cancelled() else "cancelled")
"""


def test_work_submitted_after_an_abort_runs_even_when_a_fenced_call_waits_for_it():
    result = run_python(INHERITED_FENCE, {"CONCERT_MAX_WORKERS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["inner: True", "outer: cancelled"]


@pytest.mark.usefixtures("asynchronous")
def test_a_timeout_inside_a_call_is_honoured():
    release = threading.Event()

    @async_
    def blocked_for_long():
        assert release.wait(TIMEOUT)

    @async_
    def impatient(pending: Future) -> float:
        start = time.monotonic()
        with pytest.raises(WaitError):
            pending.result(timeout=0.1)
        return time.monotonic() - start

    pending = blocked_for_long()
    try:
        waited = impatient(pending).result(TIMEOUT)
    finally:
        release.set()
    assert 0.09 <= waited < 0.6  # the old core ran the pending call in the waiter: 1.0 s and more


@pytest.mark.usefixtures("asynchronous")
def test_a_waiting_thread_never_runs_another_call():
    threads = {}

    @async_
    def child() -> str:
        return threading.current_thread().name

    @async_
    def parent() -> bool:
        threads["parent"] = threading.current_thread().name
        names = [child() for _ in range(20)]
        return all(future.result(TIMEOUT) != threads["parent"] for future in names)

    assert parent().result(TIMEOUT)


DEEP = """
import sys
from concert.futures import async_

@async_
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1).result(60)

print(depth(1200).result(120))
"""


def test_more_than_a_thousand_nested_levels_on_two_workers():
    result = run_python(DEEP, {"CONCERT_MAX_WORKERS": "2"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1200"
    assert "Exception ignored" not in result.stderr and "RecursionError" not in result.stderr


EXHAUSTED = """
from concert.exceptions import PoolExhaustedError
from concert.futures import async_

@async_
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1).result(60)

try:
    depth(100).result(60)
except PoolExhaustedError as error:
    print("PoolExhaustedError:", error)
"""


def test_a_runaway_nesting_hits_the_hard_cap_with_a_clear_error():
    result = run_python(EXHAUSTED, {"CONCERT_MAX_WORKERS": "2", "CONCERT_MAX_THREADS": "10"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("PoolExhaustedError: Concert's pool has 10 threads (MAX_THREADS=10)")
    assert "Exception ignored" not in result.stderr


STARVED_ASYNC_WITH = """
import asyncio, threading
from concert.devices.motors.dummy import LinearMotor
from concert.devices.pumps.dummy import Pump
from concert.futures import async_

motor, pump = LinearMotor(), Pump()
release = threading.Event()

@async_
def wants_motor():
    with motor:
        pass

async def main():
    async with pump:          # pump is free: this must not wait for the pool
        return "pump held"

with motor:                   # every worker ends up waiting in `with motor:`
    jobs = [wants_motor() for _ in range(8)]
    print(asyncio.run(asyncio.wait_for(main(), 10)))
for job in jobs:
    job.result(30)
print("jobs done")
"""


def test_async_with_on_a_free_device_is_not_starved_by_a_full_pool():
    result = run_python(STARVED_ASYNC_WITH, {"CONCERT_MAX_WORKERS": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["pump held", "jobs done"]


FAN_OUT = """
import threading
from concert.futures import async_, resolve

gate = threading.Event()

@async_
def leaf(i):
    assert gate.wait(30)
    return i

@async_
def fan(width):
    futures = [leaf(i) for i in range(width)]
    gate.set()
    return sum(resolve(futures, timeout=30))

print(fan(200).result(60))
"""


def test_fan_out_wider_than_the_pool_completes():
    result = run_python(FAN_OUT, {"CONCERT_MAX_WORKERS": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sum(range(200)))


@pytest.mark.usefixtures("asynchronous")
def test_many_threads_submitting_and_waiting_at_once():
    """A race test: 16 threads x 300 nested calls, with a tiny switch interval."""
    import sys

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:

        @async_
        def inner(i):
            return i

        @async_
        def outer(i):
            return inner(i).result(TIMEOUT) + 1

        results = [None] * 16

        def hammer(index):
            results[index] = sum(outer(i).result(TIMEOUT) for i in range(300))

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        sys.setswitchinterval(previous)
    assert results == [sum(range(1, 301))] * 16


@pytest.mark.usefixtures("synchronous")
def test_disable_uses_the_same_runner():
    """Under DISABLE a call runs inline, in a future of its own, exceptions stored."""
    seen = {}

    @async_
    def where():
        seen["future"] = current_future()
        seen["thread"] = threading.current_thread()
        raise ValueError("stored, not raised")

    future = where()
    assert future.done() and seen["future"] is future and seen["thread"] is threading.current_thread()
    assert isinstance(future.exception(), ValueError)


@pytest.mark.usefixtures("synchronous")
def test_disable_runs_stop_actions_when_interrupted():
    from concert.futures import on_cancel

    stopped = []

    @async_
    def move():
        with on_cancel(lambda: stopped.append("stop")):
            raise KeyboardInterrupt  # Ctrl-C in the middle of a synchronous move

    with pytest.raises(KeyboardInterrupt):
        move()
    assert stopped == ["stop"]


def test_pool_exhausted_error_is_a_concert_error():
    from concert.exceptions import ConcertError

    assert issubclass(PoolExhaustedError, ConcertError) and issubclass(PoolExhaustedError, RuntimeError)
    assert config.MAX_THREADS >= config.MAX_WORKERS
