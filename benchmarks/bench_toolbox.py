"""Benchmark the beamline toolbox (issue 12): image processing, the simulated sample, alignment.

Run with ``python benchmarks/bench_toolbox.py [--rounds N] [--quick] [--only PART ...]``.
Each part is a function ``(rounds, quick) -> rows`` registered in ``PARTS``;
a part that compares Concert with a baseline runs both *in the same run*, in
interleaved rounds (the order alternating from round to round), and reports
medians and their ratio, so that the noise of a shared machine hits both
sides alike. Timings are reported, never asserted.

Every row has the five columns of the table: what was measured, the median
throughput, the median rate, the range over the rounds, and the ratio (or a
note). Shorter rows are padded with empty cells.

Parts:

* ``flat_correct`` -- :func:`concert.imageprocessing.flat_correct` of
  2048×2048 frames versus the bare numpy expression ``(radio - dark) /
  (flat - dark)`` (``radio / flat`` without a dark) on the same arrays,
  uint16 (a camera's frames) and float32. Concert subtracts integers as
  floats (the bare expression on uint16 wraps around where the radio is
  darker than the dark), returns float32 where numpy returns float64 for
  integers, and replaces the pixels where the flat equals the dark. Target:
  Concert's throughput ≥ 0.95× the bare expression's.
* ``simulation`` -- ``benchmarks/toolbox_simulation.py:bench_simulation``:
  frames of the simulated camera with its sample.
* ``alignment`` -- ``benchmarks/toolbox_alignment.py:bench_alignment``:
  ``align_rotation_axis`` on the simulated stage versus a grid scan.

The last two live in files of their own, loaded only when their part runs:
while a file is missing its part reports so in one row, and the others run.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import statistics
import time
from typing import Callable, Dict, List, Optional

import numpy as np
from prettytable import PrettyTable

SIZE = 2048
COLUMNS = ["what", "median throughput", "median rate", "range over rounds", "Concert / baseline"]
HERE = pathlib.Path(__file__).resolve().parent

Part = Callable[[int, bool], List[List[str]]]


def _frames(dtype: type, count: int, seed: int) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(200, 4000, size=(SIZE, SIZE)).astype(dtype) for _ in range(count)]


def _time(function: Callable[[], object], calls: int) -> float:
    """Seconds for ``calls`` calls of ``function``."""
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return time.perf_counter() - start


def bench_flat_correct(rounds: int, quick: bool) -> List[List[str]]:
    """The ``flat_correct`` part: rows of the table (see the module documentation)."""
    calls = 5 if quick else 20
    rows: List[List[str]] = []
    for dtype, with_dark in ((np.uint16, True), (np.float32, True), (np.uint16, False)):
        rows.extend(_flat_correct_rows(dtype, with_dark, rounds, calls))
    return rows


def _flat_correct_rows(dtype: type, with_dark: bool, rounds: int, calls: int) -> List[List[str]]:
    """Two rows, the bare expression and flat_correct, on frames of ``dtype``: ``calls`` frames a round."""
    from concert.imageprocessing import flat_correct

    radios = _frames(dtype, 4, 1)
    flat = _frames(dtype, 1, 2)[0] + dtype(4000)
    dark = _frames(dtype, 1, 3)[0] // dtype(20) if with_dark else None
    counter = iter(range(1 << 62))  # both sides take the four radios in turn

    def ours() -> object:
        return flat_correct(radios[next(counter) % 4], flat, dark)

    def bare() -> object:
        radio = radios[next(counter) % 4]
        return (radio - dark) / (flat - dark) if with_dark else radio / flat

    sides = {"bare numpy": bare, "flat_correct": ours}
    times: Dict[str, List[float]] = {name: [] for name in sides}
    for side in sides.values():
        _time(side, 2)  # warm up: caches, the allocator
    for round_number in range(rounds):
        order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
        for name in order:
            times[name].append(_time(sides[name], calls))
    megabytes = calls * radios[0].nbytes / 2**20
    expression = "(radio - dark) / (flat - dark)" if with_dark else "radio / flat"
    rows = []
    for name in sides:
        median = statistics.median(times[name])
        rows.append(
            [
                f"flat_correct {SIZE}×{SIZE} {np.dtype(dtype).name} {expression}, {name}",
                f"{megabytes / median:,.0f} MiB/s",
                f"{calls / median:,.1f} frames/s",
                f"{calls / max(times[name]):,.1f}–{calls / min(times[name]):,.1f} frames/s",
                "",
            ]
        )
    ratios = [b / o for b, o in zip(times["bare numpy"], times["flat_correct"])]
    rows[-1][-1] = (
        f"{statistics.median(times['bare numpy']) / statistics.median(times['flat_correct']):.3f}× "
        f"({min(ratios):.3f}–{max(ratios):.3f}; target ≥ 0.95×)"
    )
    return rows


def _from_file(part: str, filename: str, function: str) -> Part:
    """Part ``function`` of ``benchmarks/filename``, loaded when it runs; one row if the file is missing."""

    def run(rounds: int, quick: bool) -> List[List[str]]:
        path = HERE / filename
        if not path.exists():
            return [[f"{part}: benchmarks/{filename} is not there (yet)", "", "", "", "not run"]]
        spec = importlib.util.spec_from_file_location(f"_bench_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, function)(rounds, quick)

    run.__name__ = run.__qualname__ = f"bench_{part}"
    return run


#: The parts of the benchmark, run in this order.
PARTS: Dict[str, Part] = {
    "flat_correct": bench_flat_correct,
    "simulation": _from_file("simulation", "toolbox_simulation.py", "bench_simulation"),
    "alignment": _from_file("alignment", "toolbox_alignment.py", "bench_alignment"),
}


def _cells(row: List[str]) -> List[str]:
    """``row`` with as many cells as the table has columns (padded; extra cells joined into the last)."""
    row = [str(cell) for cell in row]
    if len(row) > len(COLUMNS):
        row = [*row[: len(COLUMNS) - 1], "; ".join(row[len(COLUMNS) - 1 :])]
    return row + [""] * (len(COLUMNS) - len(row))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per part (default 9)")
    parser.add_argument("--quick", action="store_true", help="fewer frames per round")
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), help="run only these parts")
    args = parser.parse_args(argv)
    table = PrettyTable(COLUMNS)
    table.align = "l"
    for name in args.only or PARTS:
        for row in PARTS[name](args.rounds, args.quick):
            table.add_row(_cells(row))
    print(f"{args.rounds} interleaved rounds per part; medians; ratio of medians (range of per-round ratios)")
    print(table)


if __name__ == "__main__":
    main()
