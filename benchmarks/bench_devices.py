"""Benchmark parameter access on a simulated motor against the raw accessors, in one run.

Run with ``python benchmarks/bench_devices.py`` (``--profile`` adds where the
time of a blocking write goes). Prints one table: each row a Concert
operation, its baseline, both timings and the ratio with the target from
issue 3. The two sides of a row run in alternating rounds; each timing is the
median over the rounds, and the ratio column also gives the range of the
per-round ratios. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import pstats
import statistics
import subprocess
import sys
import time
from typing import Callable

from prettytable import PrettyTable

from concert import config
from concert.devices.motors.dummy import LinearMotor
from concert.quantities import q


def rounds(calls: int, count: int, concert: Callable[[], None], baseline: Callable[[], None]):
    """Time ``calls`` calls of each side per round, the sides alternating, for ``count`` rounds.

    Returns (median time per call of ``concert``, the same of ``baseline``,
    lowest and highest per-round ratio).
    """
    ours, theirs = [], []
    for _ in range(count):
        for run, times in ((concert, ours), (baseline, theirs)):
            start = time.perf_counter()
            for _ in range(calls):
                run()
            times.append((time.perf_counter() - start) / calls)
    ratios = [a / b for a, b in zip(ours, theirs)]
    return statistics.median(ours), statistics.median(theirs), min(ratios), max(ratios)


def cold_starts(code: str, baseline: str, count: int):
    """Wall times of fresh interpreters running ``code`` and ``baseline``, alternating (as :func:`rounds`)."""

    def run(source: str) -> Callable[[], None]:
        return lambda: subprocess.run([sys.executable, "-c", source], check=True)

    return rounds(1, count, run(code), run(baseline))


def row(table: PrettyTable, name: str, result, baseline: str, target: str, scale: float = 1e6) -> None:
    ours, theirs, low, high = result
    digits = 0 if scale < 1e6 else 2
    table.add_row(
        [
            name,
            f"{ours * scale:.{digits}f}",
            f"{theirs * scale:.{digits}f} ({baseline})",
            f"{ours / theirs:.3g}× ({low:.3g}–{high:.3g})",
            target,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--profile", action="store_true", help="profile the blocking write")
    args = parser.parse_args()
    calls = 2_000 if args.quick else 10_000
    count = 3 if args.quick else 7

    motor = LinearMotor(motion_velocity=10 * q.m / q.s)  # 1 nm moves take no time: "instant"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=config.MAX_WORKERS)
    raw_get = motor._get_position
    table = PrettyTable(["measurement", "concert [µs]", "baseline [µs]", "ratio (range)", "target"])
    table.align["measurement"] = "l"

    def bare_round_trip() -> None:
        pool.submit(raw_get).result()

    submitted = "pool.submit(raw getter)"
    row(
        table,
        "motor.position (blocking read)",
        rounds(calls, count, lambda: motor.position, bare_round_trip),
        submitted,
        "≤ 0.25×",
    )
    row(
        table,
        "motor['position'].get().result()",
        rounds(calls, count, lambda: motor["position"].get().result(), bare_round_trip),
        submitted,
        "≤ 1.2×",
    )

    targets = [0 * q.mm, 1e-6 * q.mm]
    state = {"i": 0}

    def write() -> None:
        state["i"] ^= 1
        motor.position = targets[state["i"]]

    def raw_write() -> None:
        state["i"] ^= 1
        motor._move_real(targets[state["i"]])

    row(
        table,
        "motor.position = x (blocking write)",
        rounds(calls, count, write, raw_write),
        "raw hook _move_real",
        "report",
    )
    row(
        table,
        "cold start: import + LinearMotor() [ms]",
        cold_starts(
            "from concert.devices.motors.dummy import LinearMotor; LinearMotor()",
            "import pint; pint.UnitRegistry()",
            count,
        ),
        "import pint; UnitRegistry()",
        "≤ 1.3×",
        scale=1e3,
    )
    print(table)

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            write()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        print(f"Where a blocking write spends its time ({calls} writes, by own time):")
        print(out.getvalue())
    pool.shutdown()


if __name__ == "__main__":
    main()
