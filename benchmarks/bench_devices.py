"""Benchmark parameter access on a simulated motor against the raw accessors, in one run.

Run with ``python benchmarks/bench_devices.py`` (``--profile`` adds where the
time of a blocking write goes). Prints one table: each row a Concert
operation, its baseline, both timings (best of several repetitions) and the
ratio with the target from issue 3. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import pstats
import subprocess
import sys
import time
from typing import Callable

from prettytable import PrettyTable

from concert import config
from concert.devices.motors.dummy import LinearMotor
from concert.quantities import q


def per_call(calls: int, repeat: int, run: Callable[[], None]) -> float:
    """Best time per call of ``run`` over ``repeat`` rounds of ``calls`` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def cold_start(code: str, repeat: int) -> float:
    """Best wall time of a fresh interpreter running ``code``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--profile", action="store_true", help="profile the blocking write")
    args = parser.parse_args()
    calls = 2_000 if args.quick else 20_000
    repeat = 3 if args.quick else 5

    motor = LinearMotor(motion_velocity=10 * q.m / q.s)  # 1 nm moves take no time: "instant"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=config.MAX_WORKERS)
    raw_get = motor._get_position
    table = PrettyTable(["measurement", "concert [µs]", "baseline [µs]", "ratio", "target"])
    table.align["measurement"] = "l"

    bare_round_trip = per_call(calls, repeat, lambda: pool.submit(raw_get).result())
    blocking_read = per_call(calls, repeat, lambda: motor.position)
    table.add_row(
        [
            "motor.position (blocking read)",
            f"{blocking_read * 1e6:.2f}",
            f"{bare_round_trip * 1e6:.2f} (pool.submit(raw getter))",
            f"{blocking_read / bare_round_trip:.3f}×",
            "≤ 0.25×",
        ]
    )
    future_read = per_call(calls, repeat, lambda: motor["position"].get().result())
    table.add_row(
        [
            "motor['position'].get().result()",
            f"{future_read * 1e6:.2f}",
            f"{bare_round_trip * 1e6:.2f} (pool.submit(raw getter))",
            f"{future_read / bare_round_trip:.2f}×",
            "≤ 1.2×",
        ]
    )

    targets = [0 * q.mm, 1e-6 * q.mm]
    state = {"i": 0}

    def write() -> None:
        state["i"] ^= 1
        motor.position = targets[state["i"]]

    def raw_write() -> None:
        state["i"] ^= 1
        motor._move_hardware(targets[state["i"]])

    blocking_write = per_call(calls, repeat, write)
    raw_setter = per_call(calls, repeat, raw_write)
    table.add_row(
        [
            "motor.position = x (blocking write)",
            f"{blocking_write * 1e6:.1f}",
            f"{raw_setter * 1e6:.1f} (raw setter _move_hardware)",
            f"{blocking_write / raw_setter:.1f}×",
            "report",
        ]
    )

    concert_cold = cold_start("from concert.devices.motors.dummy import LinearMotor; LinearMotor()", repeat)
    pint_cold = cold_start("import pint; pint.UnitRegistry()", repeat)
    table.add_row(
        [
            "cold start: import + LinearMotor() [ms]",
            f"{concert_cold * 1e3:.0f}",
            f"{pint_cold * 1e3:.0f} (import pint; UnitRegistry())",
            f"{concert_cold / pint_cold:.2f}×",
            "≤ 1.3×",
        ]
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
