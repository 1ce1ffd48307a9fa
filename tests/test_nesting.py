"""Nested submission and fan-out wider than the pool never deadlock."""

from __future__ import annotations

import json

from concert.futures import async_, resolve
from tests.conftest import TIMEOUT, run_python

FAN_OUT = """
import json, threading
from concert import config
from concert.futures import async_, resolve

workers = config.MAX_WORKERS
threads = set()

@async_
def leaf(i):
    threads.add(threading.current_thread().name)
    return i

@async_
def child(i):
    return 2 * leaf(i).result(timeout=30)

@async_
def parent():
    return sum(resolve([child(i) for i in range(4 * workers)], timeout=30))

# As many parents as workers: every worker is busy waiting on children.
totals = resolve([parent() for _ in range(workers)], timeout=60)
print(json.dumps({"workers": workers, "totals": totals, "threads": len(threads)}))
"""


def test_fan_out_four_times_the_pool_completes():
    result = run_python(FAN_OUT, {"CONCERT_MAX_WORKERS": "2"}, timeout=90)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = sum(2 * i for i in range(4 * 2))
    assert report == {"workers": 2, "totals": [expected, expected], "threads": report["threads"]}
    assert 1 <= report["threads"] <= 2  # the pool did not grow past MAX_WORKERS


PENDING = """
import threading
from concert.futures import async_

release = threading.Event()
ran = []

@async_
def blocker():
    assert release.wait(30)

@async_
def queued():
    ran.append(1)

first = blocker()
second = queued()           # one worker only: this one waits in the queue
print(second.cancel(), second.cancelled())
release.set()
first.result(timeout=30)
print(ran)
"""


def test_pending_future_is_cancelled_without_running():
    result = run_python(PENDING, {"CONCERT_MAX_WORKERS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["True True", "[]"]


def test_deep_nesting_in_process():
    @async_
    def depth(n):
        return 0 if n == 0 else 1 + depth(n - 1).result(TIMEOUT)

    assert depth(200).result(TIMEOUT) == 200
    assert resolve([depth(20) for _ in range(20)], TIMEOUT) == [20] * 20
