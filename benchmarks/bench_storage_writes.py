"""Benchmark :func:`concert.storage.write_images` against writing the same bytes raw, in one run.

Run with ``python benchmarks/bench_storage_writes.py [--directory DIR] [--frames N] [--profile]``.
Writes 2048 x 2048 uint16 frames (128 of them: 1 GiB) into a fresh temporary
directory under ``DIR`` (default: the system's temporary directory), in two
modes -- multi-page files of ``bytes_per_file`` and one file per frame -- and
for each mode the same bytes into the same number of files with plain
``open``/``write``/``fsync``. Every file is synced in both cases. The two
sides run in alternating rounds (``--repeat``, default 3); each throughput
is the median over the rounds and the ratio column gives the range of the
per-round ratios too; files are deleted after every run. Prints one table;
nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import tempfile
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
from prettytable import PrettyTable

from concert.storage import write_images

#: Pixel bytes per multi-page file: 32 frames of 2048 x 2048 uint16.
MULTI_PAGE_BYTES = 256 * 2**20

#: Throughput ratio (write_images / raw) each mode should reach.
TARGETS = {"multi-page": 0.9, "one file per frame": 0.8}


def _frames(count: int, shape: Tuple[int, int]) -> Iterator[np.ndarray]:
    """``count`` frames cycling through 4 random ones (the data must not be trivially compressible)."""
    pool = [np.random.default_rng(seed).integers(0, 2**16, shape, dtype=np.uint16) for seed in range(4)]
    for index in range(count):
        yield pool[index % len(pool)]


def _raw(directory: str, frames: List[np.ndarray], per_file: int) -> None:
    """Write ``frames`` as raw bytes, ``per_file`` frames per file, each file synced."""
    for start in range(0, len(frames), per_file):
        with open(os.path.join(directory, f"raw_{start:>06}.bin"), "xb") as stream:
            for frame in frames[start : start + per_file]:
                stream.write(memoryview(frame).cast("B"))
            stream.flush()
            os.fsync(stream.fileno())
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _timed(parent: str, run: Callable[[str], None]) -> float:
    """Wall time of ``run(directory)`` in a fresh directory, deleted after."""
    directory = tempfile.mkdtemp(prefix="concert-bench-", dir=parent)
    try:
        start = time.perf_counter()
        run(directory)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(directory)


def bench_write_modes(
    directory: Optional[str] = None,
    frames: int = 128,
    shape: Tuple[int, int] = (2048, 2048),
    repeat: int = 3,
    bytes_per_file: int = MULTI_PAGE_BYTES,
) -> Dict[str, Dict[str, float]]:
    """Time write_images and raw writes of the same frames under ``directory``.

    Returns ``{mode: {"bytes": total, "concert": seconds, "raw": seconds,
    "low": ratio, "high": ratio}}`` for the modes ``"multi-page"`` (files of
    ``bytes_per_file`` pixel bytes) and ``"one file per frame"``; each time is
    the median of ``repeat`` alternating rounds, ``low``/``high`` the range of
    the per-round throughput ratios.
    """
    parent = directory or tempfile.gettempdir()
    data = list(_frames(frames, shape))
    total = sum(frame.nbytes for frame in data)
    frames_per_file = max(1, bytes_per_file // data[0].nbytes)
    results: Dict[str, Dict[str, float]] = {}

    def multi_page(where: str) -> None:
        written = write_images(
            iter(data), prefix=os.path.join(where, "multi_{:>04}.tif"), bytes_per_file=bytes_per_file
        )
        assert written == frames

    def single(where: str) -> None:
        written = write_images(iter(data), prefix=os.path.join(where, "frame_{:>06}.tif"))
        assert written == frames

    for mode, concert_run, per_file in (
        ("multi-page", multi_page, frames_per_file),
        ("one file per frame", single, 1),
    ):
        # Interleave so that drifting disk speed hurts both sides alike.
        raws, ours = [], []
        for _ in range(repeat):
            raws.append(_timed(parent, lambda where, n=per_file: _raw(where, data, n)))
            ours.append(_timed(parent, concert_run))
        ratios = [raw / our for raw, our in zip(raws, ours)]  # throughput ratio: time inverted
        results[mode] = {
            "bytes": float(total),
            "concert": statistics.median(ours),
            "raw": statistics.median(raws),
            "low": min(ratios),
            "high": max(ratios),
        }
    return results


def _profile(directory: Optional[str], frames: int, shape: Tuple[int, int]) -> str:
    parent = directory or tempfile.gettempdir()
    data = list(_frames(frames, shape))
    profiler = cProfile.Profile()

    def run(where: str) -> None:
        profiler.enable()
        write_images(iter(data), prefix=os.path.join(where, "frame_{:>06}.tif"))
        profiler.disable()

    _timed(parent, run)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", default=None, help="where to create the temporary directory")
    parser.add_argument("--frames", type=int, default=128, help="number of 2048×2048 uint16 frames")
    parser.add_argument(
        "--repeat", type=int, default=3, help="alternating rounds per mode (the median is reported)"
    )
    parser.add_argument("--profile", action="store_true", help="profile one-file-per-frame write_images")
    args = parser.parse_args()
    shape = (2048, 2048)
    if args.profile:
        print(_profile(args.directory, args.frames, shape))
        return
    results = bench_write_modes(args.directory, frames=args.frames, shape=shape, repeat=args.repeat)
    table = PrettyTable(
        ["mode", "data [MiB]", "write_images [MiB/s]", "raw [MiB/s]", "ratio (range)", "target"]
    )
    table.align["mode"] = "l"
    for mode, result in results.items():
        mebibytes = result["bytes"] / 2**20
        concert_rate = mebibytes / result["concert"]
        raw_rate = mebibytes / result["raw"]
        table.add_row(
            [
                mode,
                f"{mebibytes:.0f}",
                f"{concert_rate:.0f}",
                f"{raw_rate:.0f}",
                f"{concert_rate / raw_rate:.2f}× ({result['low']:.2f}–{result['high']:.2f})",
                f"≥ {TARGETS[mode]}×",
            ]
        )
    where = args.directory or tempfile.gettempdir()
    print(
        f"{args.frames} frames of {shape[0]}×{shape[1]} uint16 under {where}, median of {args.repeat} rounds"
    )
    print(table)


if __name__ == "__main__":
    main()
