"""Benchmark the futures core against plain ``concurrent.futures``, measured in the same run.

Run with ``python benchmarks/bench_core.py`` (a full run, a few minutes at
most) or ``python benchmarks/bench_core.py --quick`` (a smoke run with small
sizes and few rounds, well under a minute).

Each case runs in a fresh interpreter (``--section NAME``, spawned by the
main script), so every case starts with fresh pools, and with a timeout, so a
case that hangs or crashes cannot stall the run. The main script prints one
table with the columns case, concert, baseline, ratio and target, for the
targets of the issue:

1. ``async_`` call + ``result()`` vs ``pool.submit(f).result()`` on a
   ``ThreadPoolExecutor(max_workers=128)``, (i) with fresh pools and (ii)
   after a 100-wide fan-out of 50 ms sleeps on each pool (``async_`` calls on
   the Concert side), so both have about 100 idle threads. Target ≤ 1.10×.
2. 100,000 ``async_`` calls then ``concert.futures.wait`` vs 100,000
   ``pool.submit`` then ``concurrent.futures.wait``. Target ≤ 1.15×.
3. 100,000 ``async_`` calls with ``concert.config.DISABLE_ASYNC = True`` vs
   100,000 × (``concurrent.futures.Future()`` + ``set_result``). Target ≤ 1.5×.
4. A 1000-deep chain of nested ``async_`` calls, each returning the
   ``result()`` of the next, with ``CONCERT_MAX_WORKERS=2``: whether it
   completes, and the time per level (no baseline).
5. ``future.cancel()`` of a moving dummy ``LinearMotor`` until it is at rest,
   p50 and p99, against ``motor.stop().result()`` on a moving motor as the
   baseline. Target: p99 ≤ the stop's p99 + 2 ms.

Cases 1-3 alternate the two sides in rounds (Concert first in even rounds,
the baseline first in odd ones); the concert and baseline columns are the
medians of the per-round timings and the ratio is the median of the
per-round ratios. For case 5 the ratio column holds the difference
concert - baseline, since its target is additive. A case that fails prints
``failed: <error>`` instead of numbers and the run goes on. Timings are
reported, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from typing import Callable, Dict, List, NamedTuple, Tuple

from prettytable import PrettyTable

Row = List[str]

#: Sizes of a full run and of a --quick run.
SIZES: Dict[bool, Dict[str, int]] = {
    False: {
        "round_trip_calls": 2_000,
        "round_trip_rounds": 15,
        "many_calls": 100_000,
        "many_rounds": 5,
        "disabled_calls": 100_000,
        "disabled_rounds": 7,
        "chain_depth": 1_000,
        "chain_runs": 5,
        "cancels": 1_000,
    },
    True: {
        "round_trip_calls": 200,
        "round_trip_rounds": 5,
        "many_calls": 10_000,
        "many_rounds": 3,
        "disabled_calls": 20_000,
        "disabled_rounds": 3,
        "chain_depth": 1_000,
        "chain_runs": 2,
        "cancels": 50,
    },
}

POOL_SIZE = 128  # both pools: Concert's through CONCERT_MAX_WORKERS, the baseline's max_workers
FAN_OUT = 100
FAN_OUT_SLEEP = 0.05
CHAIN_WORKERS = 2
RESULT_MARKER = "BENCH-RESULT "
STDERR_LINES = 30  # of a case's error output, shown after its name


# -- helpers ---------------------------------------------------------------------------------


def noop(value: int = 0) -> int:
    return value


def interleaved(
    rounds: int,
    concert_batch: Callable[[], float],
    baseline_batch: Callable[[], float],
    before_round: Callable[[], None] = lambda: None,
) -> Tuple[float, float, float]:
    """Time both sides in ``rounds`` rounds, alternating which goes first.

    Each batch returns its own timing. Returns the median Concert timing, the
    median baseline timing and the median of the per-round ratios.
    """
    concert_times, baseline_times, ratios = [], [], []
    for index in range(rounds):
        before_round()
        if index % 2 == 0:
            concert, baseline = timed(concert_batch), timed(baseline_batch)
        else:
            baseline, concert = timed(baseline_batch), timed(concert_batch)
        concert_times.append(concert)
        baseline_times.append(baseline)
        ratios.append(concert / baseline)
    return statistics.median(concert_times), statistics.median(baseline_times), statistics.median(ratios)


def timed(batch: Callable[[], float]) -> float:
    gc.collect()  # the garbage of the previous batch is not charged to this one
    return batch()


def percentile(values: List[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def number(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def ratio_row(case: str, concert: float, baseline: float, ratio: float, target: str) -> Row:
    return [case, number(concert), number(baseline), f"{ratio:.2f}×", target]


# -- sections: each runs in its own interpreter and returns its table rows ---------------------


def round_trip(sizes: Dict[str, int], fan_out: bool) -> List[Row]:
    from concert import config
    from concert.futures import async_, wait

    calls = sizes["round_trip_calls"]
    decorated_noop = async_(noop)
    sleep = async_(time.sleep)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="baseline")
    existing = set(threading.enumerate())

    def fan_out_both() -> None:
        # Like with like: 100 sleeps started at once on each pool, then waited for.
        wait([sleep(FAN_OUT_SLEEP) for _ in range(FAN_OUT)])
        concurrent.futures.wait([pool.submit(time.sleep, FAN_OUT_SLEEP) for _ in range(FAN_OUT)])

    def thread_counts() -> str:
        started = [thread for thread in threading.enumerate() if thread not in existing]
        baseline = sum(thread.name.startswith("baseline") for thread in started)
        return f"threads: concert {len(started) - baseline}, baseline {baseline}"

    def concert_batch() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            decorated_noop().result()
        return (time.perf_counter() - start) / calls * 1e6

    def baseline_batch() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            pool.submit(noop).result()
        return (time.perf_counter() - start) / calls * 1e6

    if config.MAX_WORKERS < FAN_OUT:
        raise RuntimeError(f"MAX_WORKERS is {config.MAX_WORKERS}, the fan-out needs {FAN_OUT}")
    decorated_noop().result()  # the first call creates the pool: not timed
    pool.submit(noop).result()
    if fan_out:
        # Again before every round, in case a pool retires idle threads.
        results = interleaved(sizes["round_trip_rounds"], concert_batch, baseline_batch, fan_out_both)
        case = f"{round_trip_case(True)}, {thread_counts()}"
    else:
        results = interleaved(sizes["round_trip_rounds"], concert_batch, baseline_batch)
        case = round_trip_case(False)
    return [ratio_row(case, *results, "≤ 1.10×")]


def round_trip_case(fan_out: bool) -> str:
    state = f"after {FAN_OUT}-wide fan-out" if fan_out else "fresh pools"
    return f"async_ + result(), {state} [µs/call]"


def section_round_trip_fresh(sizes: Dict[str, int]) -> List[Row]:
    return round_trip(sizes, fan_out=False)


def section_round_trip_fan_out(sizes: Dict[str, int]) -> List[Row]:
    return round_trip(sizes, fan_out=True)


def many_case(sizes: Dict[str, int]) -> str:
    return f"{sizes['many_calls']} calls then wait [ms]"


def section_many(sizes: Dict[str, int]) -> List[Row]:
    from concert.futures import async_, wait

    calls = sizes["many_calls"]
    decorated_noop = async_(noop)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=POOL_SIZE)

    def concert_batch() -> float:
        start = time.perf_counter()
        futures = [decorated_noop(index) for index in range(calls)]
        wait(futures)
        return (time.perf_counter() - start) * 1e3

    def baseline_batch() -> float:
        start = time.perf_counter()
        futures = [pool.submit(noop, index) for index in range(calls)]
        concurrent.futures.wait(futures)
        return (time.perf_counter() - start) * 1e3

    decorated_noop().result()
    pool.submit(noop).result()
    results = interleaved(sizes["many_rounds"], concert_batch, baseline_batch)
    return [ratio_row(many_case(sizes), *results, "≤ 1.15×")]


def disabled_case(sizes: Dict[str, int]) -> str:
    return f"{sizes['disabled_calls']} calls under DISABLE_ASYNC [µs/call]"


def section_disabled(sizes: Dict[str, int]) -> List[Row]:
    from concert import config
    from concert.futures import async_

    calls = sizes["disabled_calls"]
    decorated_noop = async_(noop)
    config.DISABLE_ASYNC = True  # read on every call; this interpreter runs nothing else

    def concert_batch() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            decorated_noop()
        return (time.perf_counter() - start) / calls * 1e6

    def baseline_batch() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            future = concurrent.futures.Future()
            future.set_result(noop())
        return (time.perf_counter() - start) / calls * 1e6

    results = interleaved(sizes["disabled_rounds"], concert_batch, baseline_batch)
    return [ratio_row(disabled_case(sizes), *results, "≤ 1.5×")]


def chain_case(sizes: Dict[str, int]) -> str:
    return f"{sizes['chain_depth']}-deep nested chain, MAX_WORKERS={CHAIN_WORKERS} [µs/level]"


def section_chain(sizes: Dict[str, int]) -> List[Row]:
    from concert import config
    from concert.futures import async_

    depth = sizes["chain_depth"]
    if config.MAX_WORKERS != CHAIN_WORKERS:
        raise RuntimeError(f"MAX_WORKERS is {config.MAX_WORKERS}, expected {CHAIN_WORKERS}")

    @async_
    def level(remaining: int) -> int:
        return 0 if remaining == 0 else level(remaining - 1).result() + 1

    per_level = []
    for _ in range(sizes["chain_runs"]):
        start = time.perf_counter()
        result = level(depth - 1).result()  # depth calls in all
        per_level.append((time.perf_counter() - start) / depth * 1e6)
        if result != depth - 1:
            raise RuntimeError(f"the chain returned {result}, expected {depth - 1}")
    return [[chain_case(sizes), f"completes, {number(statistics.median(per_level))}", "-", "-", "completes"]]


def cancel_cases() -> List[str]:
    return ["cancel() → at rest, p50 [ms]", "cancel() → at rest, p99 [ms]"]


def section_cancel(sizes: Dict[str, int]) -> List[Row]:
    from concert.devices.motors.dummy import LinearMotor
    from concert.quantities import q

    motor = LinearMotor(motion_velocity=100 * q.mm / q.s)

    def start_move():
        # 1000 mm take 10 s; always towards the far limit, which stays in range.
        origin = motor.position
        future = motor.move((1000 if origin.magnitude <= 0 else -1000) * q.mm)
        deadline = time.perf_counter() + 5
        while not (motor.state == "moving" and motor.position != origin):
            if future.done():
                future.result()  # raises what the move raised
                raise RuntimeError("the move ended before it was cancelled")
            if time.perf_counter() > deadline:
                raise RuntimeError("the motor did not start moving within 5 s")
        return future

    def check_at_rest(what: str) -> None:
        first, second = motor.position, motor.position
        if first != second or motor.state == "moving":
            raise RuntimeError(f"still moving after {what}")

    def cancel_sample() -> float:
        future = start_move()
        start = time.perf_counter()
        cancelled = future.cancel()
        elapsed = time.perf_counter() - start
        if not cancelled:  # the motor goes on moving: this interpreter ends without waiting
            raise RuntimeError("cancel() of the moving motor returned False")
        check_at_rest("cancel()")
        return elapsed * 1e3

    def stop_sample() -> float:
        future = start_move()
        start = time.perf_counter()
        motor.stop().result()
        elapsed = time.perf_counter() - start
        check_at_rest("stop()")
        try:
            future.join(10)
        except concurrent.futures.CancelledError:
            pass
        return elapsed * 1e3

    cancels, stops = [], []
    for index in range(sizes["cancels"]):
        if index % 2 == 0:
            cancels.append(cancel_sample())
            stops.append(stop_sample())
        else:
            stops.append(stop_sample())
            cancels.append(cancel_sample())
    rows = []
    for case, fraction, target in zip(cancel_cases(), (0.5, 0.99), ("-", "≤ baseline + 2 ms")):
        concert, baseline = percentile(cancels, fraction), percentile(stops, fraction)
        rows.append(
            [case, f"{concert:.3f}", f"{baseline:.3f} (stop)", f"{concert - baseline:+.3f} ms", target]
        )
    return rows


class Section(NamedTuple):
    run: Callable[[Dict[str, int]], List[Row]]
    cases: Callable[[Dict[str, int]], List[str]]  # the case names, for failure rows
    targets: List[str]
    env: Dict[str, str]
    timeout: float  # seconds, full run; a --quick run allows QUICK_TIMEOUT


QUICK_TIMEOUT = 8.0  # 6 sections: even if every one hangs, --quick ends within a minute
WIDE = {"CONCERT_MAX_WORKERS": str(POOL_SIZE)}
SECTIONS: Dict[str, Section] = {
    "round-trip-fresh": Section(
        section_round_trip_fresh, lambda sizes: [round_trip_case(False)], ["≤ 1.10×"], WIDE, 120
    ),
    "round-trip-fan-out": Section(
        section_round_trip_fan_out, lambda sizes: [round_trip_case(True)], ["≤ 1.10×"], WIDE, 120
    ),
    "many": Section(section_many, lambda sizes: [many_case(sizes)], ["≤ 1.15×"], WIDE, 300),
    "disabled": Section(section_disabled, lambda sizes: [disabled_case(sizes)], ["≤ 1.5×"], WIDE, 120),
    "chain": Section(
        section_chain,
        lambda sizes: [chain_case(sizes)],
        ["completes"],
        {"CONCERT_MAX_WORKERS": str(CHAIN_WORKERS)},
        60,
    ),
    "cancel": Section(section_cancel, lambda sizes: cancel_cases(), ["-", "≤ baseline + 2 ms"], WIDE, 180),
}


def failure_rows(section: Section, sizes: Dict[str, int], reason: str) -> List[Row]:
    reason = " ".join(reason.split())
    if len(reason) > 60:
        reason = reason[:57] + "..."
    return [
        [case, f"failed: {reason}", "-", "-", target]
        for case, target in zip(section.cases(sizes), section.targets)
    ]


def run_section(name: str, quick: bool) -> None:
    """Child side: run one section, print its rows as JSON and leave at once."""
    section, sizes = SECTIONS[name], SIZES[quick]
    try:
        rows = section.run(sizes)
    except Exception as error:  # reported in the table; the run goes on
        traceback.print_exc(limit=-6)  # the innermost frames: a RecursionError has thousands
        rows = failure_rows(section, sizes, f"{type(error).__name__}: {error}")
    print(RESULT_MARKER + json.dumps(rows), flush=True)
    sys.stderr.flush()
    # Leave without waiting for pool threads: work a failed case left behind (a motor
    # still moving, a stuck chain) must not keep this interpreter alive.
    os._exit(0)


def spawn_section(name: str, quick: bool) -> List[Row]:
    """Parent side: run one section in a fresh interpreter, with a timeout."""
    section, sizes = SECTIONS[name], SIZES[quick]
    timeout = QUICK_TIMEOUT if quick else section.timeout
    command = [sys.executable, os.path.abspath(__file__), "--section", name] + (["--quick"] if quick else [])
    env = dict(os.environ, **section.env)
    print(f"running {name} ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return failure_rows(section, sizes, f"timeout after {timeout:g} s")
    if done.stderr.strip():
        print("\n".join(done.stderr.rstrip().splitlines()[-STDERR_LINES:]), file=sys.stderr)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    if done.returncode < 0:
        reason = f"killed by {signal.Signals(-done.returncode).name}"
    else:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        reason = last[0]
    return failure_rows(section, sizes, reason)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds (a smoke run)")
    parser.add_argument("--section", choices=sorted(SECTIONS), help="run one case here (used internally)")
    args = parser.parse_args()
    if args.section:
        run_section(args.section, args.quick)
        return
    table = PrettyTable(["case", "concert", "baseline", "ratio", "target"])
    table.align["case"] = "l"
    table.title = (
        f"bench_core {'--quick' if args.quick else '(full)'}: Python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs; medians over rounds"
    )
    for name in SECTIONS:
        for row in spawn_section(name, args.quick):
            table.add_row(row)
    print(table)


if __name__ == "__main__":
    main()
