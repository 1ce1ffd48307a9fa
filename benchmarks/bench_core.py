"""Benchmark the futures core and the Dispatcher against baselines measured in the same run.

Run with ``python benchmarks/bench_core.py`` (``pip install '.[bench]'`` first
for blinker). Prints one table: each row is a Concert operation, its baseline,
both timings (best of several repetitions) and the ratio Concert/baseline
with the target from issue 2. Timings are reported, never asserted: the
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import queue
import statistics
import threading
import time
from typing import Callable, List

from prettytable import PrettyTable

from concert import config, executor
from concert.dispatcher import Dispatcher
from concert.futures import async_, wait


def best_of(repeat: int, run: Callable[[], float]) -> float:
    """Return the smallest of ``repeat`` timings, each returned by ``run()``."""
    return min(run() for _ in range(repeat))


def noop(value: int = 0) -> int:
    return value


decorated_noop = async_(noop)


def bench_round_trip(pool: concurrent.futures.ThreadPoolExecutor, calls: int, repeat: int):
    def concert_run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            decorated_noop().result()
        return (time.perf_counter() - start) / calls

    def bare_run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            pool.submit(noop).result()
        return (time.perf_counter() - start) / calls

    return best_of(repeat, concert_run), best_of(repeat, bare_run)


def bench_many(pool: concurrent.futures.ThreadPoolExecutor, calls: int, repeat: int):
    def concert_run() -> float:
        start = time.perf_counter()
        futures = [decorated_noop(i) for i in range(calls)]
        wait(futures)
        return time.perf_counter() - start

    def bare_run() -> float:
        start = time.perf_counter()
        futures = [pool.submit(noop, i) for i in range(calls)]
        concurrent.futures.wait(futures)
        return time.perf_counter() - start

    return best_of(repeat, concert_run), best_of(repeat, bare_run)


def bench_disabled(calls: int, repeat: int):
    def concert_run() -> float:
        config.DISABLE_ASYNC = True
        try:
            start = time.perf_counter()
            for _ in range(calls):
                decorated_noop()
            return (time.perf_counter() - start) / calls
        finally:
            config.DISABLE_ASYNC = False

    def bare_run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            future = concurrent.futures.Future()
            future.set_result(noop())
        return (time.perf_counter() - start) / calls

    return best_of(repeat, concert_run), best_of(repeat, bare_run)


class NaiveDispatcher:
    """The baseline of the issue: queue.Queue, one thread, dict of handler sets."""

    def __init__(self) -> None:
        self._handlers: dict = {}
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def subscribe(self, sender, message, handler) -> None:
        self._handlers.setdefault((id(sender), message), set()).add(handler)

    def send(self, sender, message) -> None:
        self._queue.put((sender, message))

    def _run(self) -> None:
        while True:
            sender, message = self._queue.get()
            for handler in self._handlers.get((id(sender), message), ()):
                handler(sender)


def time_delivery(make_sender, messages: int) -> float:
    """Time from the first send until the last of ``messages`` is handled."""
    sender = object()
    done = threading.Event()
    count = [0]

    def handler(_sender) -> None:
        count[0] += 1
        if count[0] == messages:
            done.set()

    send = make_sender(sender, handler)
    start = time.perf_counter()
    for _ in range(messages):
        send(sender, "changed")
    if not done.wait(120):
        raise RuntimeError("messages were not delivered within 120 s")
    return time.perf_counter() - start


def bench_dispatcher(messages: int, repeat: int):
    def concert_sender(sender, handler):
        dispatcher = Dispatcher("bench")
        dispatcher.subscribe(sender, "changed", handler)
        return dispatcher.send

    def naive_sender(sender, handler):
        dispatcher = NaiveDispatcher()
        dispatcher.subscribe(sender, "changed", handler)
        return dispatcher.send

    results = {
        "concert": best_of(repeat, lambda: time_delivery(concert_sender, messages)),
        "naive": best_of(repeat, lambda: time_delivery(naive_sender, messages)),
    }
    try:
        import blinker
    except ImportError:
        results["blinker"] = None
    else:

        def blinker_sender(sender, handler):
            signal = blinker.Signal()
            signal.connect(handler, sender=sender, weak=False)
            return lambda sender, message: signal.send(sender)

        results["blinker"] = best_of(repeat, lambda: time_delivery(blinker_sender, messages))
    return results


def bench_latency(samples: int) -> List[float]:
    """Send one message at a time to an idle dispatcher; return send-to-handler latencies."""
    dispatcher = Dispatcher("latency")
    sender = object()
    arrived = threading.Event()
    stamp = [0.0]

    def handler(_sender) -> None:
        stamp[0] = time.perf_counter()
        arrived.set()

    dispatcher.subscribe(sender, "tick", handler)
    latencies = []
    for _ in range(samples):
        arrived.clear()
        dispatcher.flush(10)  # the delivery thread is idle again
        time.sleep(0.0005)  # let it go to sleep: we measure the idle case on purpose
        start = time.perf_counter()
        dispatcher.send(sender, "tick")
        if not arrived.wait(10):
            raise RuntimeError("message not delivered within 10 s")
        latencies.append(stamp[0] - start)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    repeat = 3 if args.quick else 5

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=config.MAX_WORKERS)
    executor.get_executor()  # both pools exist before timing starts

    table = PrettyTable(["measurement", "concert", "baseline", "ratio", "target"])
    table.align["measurement"] = "l"

    concert_t, bare_t = bench_round_trip(pool, 20_000 // scale, repeat)
    table.add_row(
        [
            "async_ call + result() [µs]",
            f"{concert_t * 1e6:.1f}",
            f"{bare_t * 1e6:.1f} (pool.submit)",
            f"{concert_t / bare_t:.2f}×",
            "≤ 1.10×",
        ]
    )

    calls = 100_000 // scale
    concert_t, bare_t = bench_many(pool, calls, repeat)
    table.add_row(
        [
            f"{calls} calls then wait [ms]",
            f"{concert_t * 1e3:.0f}",
            f"{bare_t * 1e3:.0f} (pool.submit)",
            f"{concert_t / bare_t:.2f}×",
            "≤ 1.15×",
        ]
    )

    concert_t, bare_t = bench_disabled(200_000 // scale, repeat)
    table.add_row(
        [
            "async_ call under DISABLE [µs]",
            f"{concert_t * 1e6:.2f}",
            f"{bare_t * 1e6:.2f} (Future+set_result)",
            f"{concert_t / bare_t:.2f}×",
            "≤ 1.5×",
        ]
    )

    messages = 200_000 // scale
    results = bench_dispatcher(messages, repeat)
    concert_t = results["concert"]
    table.add_row(
        [
            f"{messages} messages delivered [ms]",
            f"{concert_t * 1e3:.0f}",
            f"{results['naive'] * 1e3:.0f} (naive queue.Queue)",
            f"{results['naive'] / concert_t:.2f}× faster",
            "≥ 3×",
        ]
    )
    if results["blinker"] is None:
        table.add_row(["", "", "blinker not installed", "-", "≥ 1×"])
    else:
        table.add_row(
            [
                "",
                "",
                f"{results['blinker'] * 1e3:.0f} (blinker send)",
                f"{results['blinker'] / concert_t:.2f}× faster",
                "≥ 1×",
            ]
        )

    latencies = sorted(bench_latency(2_000 // scale))
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    table.add_row(["send→handler latency p50 [µs]", f"{p50 * 1e6:.0f}", "", "", ""])
    table.add_row(["send→handler latency p99 [µs]", f"{p99 * 1e6:.0f}", "", "", "≤ 1000 µs"])
    print(table)
    pool.shutdown()


if __name__ == "__main__":
    main()
