"""The ``walker`` part of the networking benchmark: a remote walker against a local one, on the same disk.

:func:`bench_walker` starts a walker server (``concert tango walker``) in a
subprocess on 127.0.0.1 and writes 1 GiB of 2048×2048 uint16 frames
(128 of them; ``quick``: 32) as multi-page TIFF files of 256 MiB through a
:class:`~concert.storage.remote.RemoteDirectoryWalker` -- frames over
ZeroMQ to the server, which writes them -- once as made by default
(``copy=True``: each frame is copied when it is sent, so that a producer
may reuse its arrays) and once with ``copy=False`` -- and, in alternating
order, the same frames through a local
:class:`~concert.storage.walkers.DirectoryWalker` into a sibling directory
on the same disk. A round is timed from the call of ``write`` until its
future resolved, i.e. every file is complete, synced and named. All write
with the same writer, so all sync every file. Each round's files are
deleted right after it is timed: at most one round's data (1 GiB) is on
disk at any time. Target: the remote walker's throughput ≥ 0.8× the local
one's.

Run it alone with ``python benchmarks/networking_walker.py [--rounds N]
[--quick] [--directory DIR] [--default-malloc]`` (the allocator is tuned
as ``bench_networking.py`` tunes it, see there);
``benchmarks/bench_networking.py`` runs it as its part ``walker``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

SIZE = 2048
#: Pixel bytes per multi-page file: 32 frames.
BYTES_PER_FILE = 256 * 2**20
#: The sides of a round.
LOCAL = "DirectoryWalker (local)"
REMOTE = "RemoteDirectoryWalker"
UNCOPIED = "RemoteDirectoryWalker(copy=False)"


_POOL: List[np.ndarray] = []  # 4 random frames, made once, outside the timed rounds


def _frames(count: int) -> Iterator[np.ndarray]:
    """``count`` frames cycling through 4 random ones, never written into (so ``copy=False`` is safe)."""
    if not _POOL:
        rng = np.random.default_rng(11)
        _POOL.extend(rng.integers(0, 2**16, (SIZE, SIZE), dtype=np.uint16) for _ in range(4))
    for index in range(count):
        yield _POOL[index % len(_POOL)]


def _timed(walker: Any, name: str, count: int) -> float:
    """Seconds ``walker`` takes to write ``count`` frames into its subdirectory ``name`` (deleted after)."""
    walker.home().descend(name)
    directory = walker.current
    start = time.perf_counter()
    written = walker.write(_frames(count)).result(timeout=600)
    elapsed = time.perf_counter() - start
    assert written == count, (written, count)
    walker.home()
    shutil.rmtree(directory)
    return elapsed


def bench_walker(rounds: int, quick: bool, directory: Optional[str] = None) -> List[List[str]]:
    """The ``walker`` part: rows of the table (see the module documentation).

    ``directory`` is where the data goes (default: the system's temporary
    directory); both walkers write below a fresh directory there, removed
    at the end.
    """
    from concert import config
    from concert.storage import DirectoryWalker
    from concert.storage.remote import RemoteDirectoryWalker

    root_of_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root_of_checkout not in sys.path:  # the tests' real-server helper
        sys.path.insert(0, root_of_checkout)
    from tests.networking.servers import TangoProcess

    count = 32 if quick else 128
    megabytes = count * SIZE * SIZE * 2 / 2**20
    previous, config.DISABLE_ASYNC = config.DISABLE_ASYNC, False
    top = tempfile.mkdtemp(prefix="concert-bench-walker-", dir=directory)
    server = None
    try:
        root, name = os.path.join(top, "remote"), "bench/walker/1"
        server = TangoProcess.concert(
            "tango", "walker", "--port", "0", "--root", root, "--name", name, name=name
        )
        sides: Dict[str, Any] = {
            LOCAL: DirectoryWalker(os.path.join(top, "local"), bytes_per_file=BYTES_PER_FILE),
            REMOTE: RemoteDirectoryWalker(server.uri, bytes_per_file=BYTES_PER_FILE, timeout=30),
            UNCOPIED: RemoteDirectoryWalker(
                server.uri, bytes_per_file=BYTES_PER_FILE, timeout=30, copy=False
            ),
        }
        times: Dict[str, List[float]] = {name: [] for name in sides}
        for walker in sides.values():
            _timed(walker, "warm-up", max(4, count // 8))  # connections, the server's imports, caches
        for round_number in range(rounds):
            order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
            for name in order:
                times[name].append(_timed(sides[name], f"round-{round_number}", count))
    finally:
        if server is not None:
            server.kill()
        shutil.rmtree(top, ignore_errors=True)
        config.DISABLE_ASYNC = previous
    local = times[LOCAL]
    rows = []
    for name in sides:
        median = statistics.median(times[name])
        slowest, fastest = megabytes / max(times[name]), megabytes / min(times[name])
        ratio = ""
        if name != LOCAL:
            ratios = [near / far for near, far in zip(local, times[name])]  # throughput: time inverted
            spread = f"{min(ratios):.3f}–{max(ratios):.3f}"
            ratio = f"{statistics.median(local) / median:.3f}× ({spread}; target ≥ 0.8×)"
        rows.append(
            [
                f"walker {megabytes / 1024:g} GiB of {SIZE}×{SIZE} uint16, 256 MiB files, {name}",
                f"{megabytes / median:,.0f} MiB/s",
                f"{count / median:,.1f} frames/s",
                f"{slowest:,.0f}–{fastest:,.0f} MiB/s",
                ratio,
            ]
        )
    return rows


def main(argv: Optional[List[str]] = None, bench: Callable[..., List[List[str]]] = bench_walker) -> None:
    from prettytable import PrettyTable

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="256 MiB a round instead of 1 GiB")
    parser.add_argument("--directory", default=None, help="where to write (default: the temporary directory)")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's allocator as it is")
    args = parser.parse_args(argv)
    tuned = False
    if not args.default_malloc:
        from concert.networking.walker_server import keep_freed_memory  # as the server does, for all sides

        tuned = keep_freed_memory()
    table = PrettyTable(["what", "median throughput", "median rate", "range over rounds", "remote / local"])
    table.align = "l"
    for row in bench(args.rounds, args.quick, args.directory):
        table.add_row(row)
    print(
        f"{args.rounds} interleaved rounds; medians; ratio of medians (range of per-round ratios); "
        f"allocator {'keeps freed memory' if tuned else 'as by default'}"
    )
    print(table)


if __name__ == "__main__":
    main()
