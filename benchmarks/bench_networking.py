"""Benchmark Concert's networking against the raw libraries it is built on (issue 11).

Run with ``python benchmarks/bench_networking.py [--rounds N] [--quick] [--only PART ...]
[--default-malloc]``.
Each part is a function returning table rows, registered in ``PARTS``; every
part compares Concert with the raw library *in the same run*, in
interleaved rounds, and reports medians and their ratio, so that the noise
of a shared machine hits both sides alike. Timings are reported, never
asserted.

On glibc the allocator is told, for the whole process and so for both
sides alike, to keep freed memory instead of handing it back to the system
(``mallopt``: no trimming, large blocks from the heap). Otherwise the
receiving I/O thread, which allocates a new 8 MiB message for every frame,
now and then gets memory the allocator had just returned, and spends a
round in page faults: which side that hits is chance, and it swamps the
comparison. ``--default-malloc`` leaves the allocator as it is.

Parts:

* ``zmq`` -- 2048×2048 uint16 frames (8 MiB) PUSH→PULL over
  ``tcp://127.0.0.1``: :class:`~concert.networking.zmq.ZmqSender` feeding a
  :class:`~concert.networking.zmq.ZmqReceiver` (header, zero-copy payload,
  end of stream, frames rebuilt as arrays) versus raw pyzmq
  ``send(copy=False)``/``recv(copy=False)`` of the same buffers. The sender
  runs in a thread, the receiver in the main thread; a round is timed from
  the start of the sending until the last frame (and, for Concert, the end
  of stream) arrived. Target: Concert's throughput ≥ 0.9× raw.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import statistics
import threading
import time
from typing import Callable, Dict, List, Sequence

import numpy as np
from prettytable import PrettyTable

SIZE = 2048
HWM = 16  # messages queued per side: bounded memory, enough to keep the loopback link busy


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep what is freed (see the module documentation); whether it could."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    trim_threshold, top_pad, mmap_threshold = (
        -1,
        -2,
        -3,
    )  # glibc's M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD
    settings = ((trim_threshold, 2**31 - 1), (top_pad, 64 * 2**20), (mmap_threshold, 32 * 2**20))
    return all(libc.mallopt(option, value) == 1 for option, value in settings)


def _frames(count: int) -> List[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.integers(0, 4096, size=(SIZE, SIZE), dtype=np.uint16) for _ in range(count)]


class _ConcertStream:
    """ZmqSender → ZmqReceiver, made once and used for every round (one stream per round)."""

    def __init__(self) -> None:
        from concert.networking.zmq import ZmqReceiver, ZmqSender

        self.sender = ZmqSender("tcp://127.0.0.1:*", sndhwm=HWM, timeout=60)
        self.receiver = ZmqReceiver(self.sender.endpoint, rcvhwm=HWM, timeout=60)
        self.sender.wait_for_receiver()

    def run(self, frames: Sequence[np.ndarray], count: int) -> float:
        """Seconds from the start of sending until the end of the stream arrived."""
        thread = threading.Thread(
            target=self.sender, args=(itertools.islice(itertools.cycle(frames), count),)
        )
        start = time.perf_counter()
        thread.start()
        received = 0
        for frame in self.receiver:
            received += frame.shape[0] > 0
        elapsed = time.perf_counter() - start
        thread.join()
        assert received == count, (received, count)
        return elapsed

    def close(self) -> None:
        self.receiver.close()
        self.sender.close()


class _RawStream:
    """Raw pyzmq PUSH → PULL, each in a context of its own (as in two processes); an empty message ends."""

    def __init__(self) -> None:
        import zmq

        self.contexts = [zmq.Context(io_threads=1), zmq.Context(io_threads=1)]
        self.push = self.contexts[0].socket(zmq.PUSH)
        self.pull = self.contexts[1].socket(zmq.PULL)
        self.push.setsockopt(zmq.SNDHWM, HWM)
        self.pull.setsockopt(zmq.RCVHWM, HWM)
        self.push.bind("tcp://127.0.0.1:*")
        self.pull.connect(self.push.getsockopt_string(zmq.LAST_ENDPOINT))

    def run(self, frames: Sequence[np.ndarray], count: int) -> float:
        """Seconds from the start of sending until the empty message arrived."""
        push, pull = self.push, self.pull

        def send() -> None:
            for frame in itertools.islice(itertools.cycle(frames), count):
                push.send(frame, copy=False)
            push.send(b"")

        thread = threading.Thread(target=send)
        start = time.perf_counter()
        thread.start()
        received = 0
        while True:
            message = pull.recv(copy=False)
            if not len(message.buffer):
                break
            received += 1
        elapsed = time.perf_counter() - start
        thread.join()
        assert received == count, (received, count)
        return elapsed

    def close(self) -> None:
        self.push.close(0)
        self.pull.close(0)
        for context in self.contexts:
            context.term()


def bench_zmq(rounds: int, quick: bool) -> List[List[str]]:
    """The ``zmq`` part: rows of the table (see the module documentation)."""
    count = 30 if quick else 150
    frames = _frames(4)
    megabytes = count * frames[0].nbytes / 2**20
    sides = {"raw pyzmq": _RawStream(), "ZmqSender/ZmqReceiver": _ConcertStream()}
    times: Dict[str, List[float]] = {name: [] for name in sides}
    try:
        for side in sides.values():
            side.run(frames, count)  # warm up: connections, memory of both I/O threads
        for round_number in range(rounds):
            order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
            for name in order:
                times[name].append(sides[name].run(frames, count))
    finally:
        for side in sides.values():
            side.close()
    raw, ours = times["raw pyzmq"], times["ZmqSender/ZmqReceiver"]
    ratios = [r / o for r, o in zip(raw, ours)]  # throughput ratio = time ratio inverted
    rows = []
    for name in sides:
        median = statistics.median(times[name])
        slowest, fastest = megabytes / max(times[name]), megabytes / min(times[name])
        rows.append(
            [
                f"zmq {SIZE}×{SIZE} uint16, {name}",
                f"{megabytes / median:,.0f} MiB/s",
                f"{count / median:,.0f} frames/s",
                f"{slowest:,.0f}–{fastest:,.0f} MiB/s",
                "",
            ]
        )
    rows[-1][-1] = (
        f"{statistics.median(raw) / statistics.median(ours):.3f}× "
        f"({min(ratios):.3f}–{max(ratios):.3f}; target ≥ 0.9×)"
    )
    return rows


#: The parts of the benchmark, run in this order; others (Tango, remote walker) are added here.
PARTS: Dict[str, Callable[[int, bool], List[List[str]]]] = {"zmq": bench_zmq}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per part (default 9)")
    parser.add_argument("--quick", action="store_true", help="fewer frames per round")
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), help="run only these parts")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's allocator as it is")
    args = parser.parse_args()
    tuned = False if args.default_malloc else keep_freed_memory()
    table = PrettyTable(["what", "median throughput", "median rate", "range over rounds", "Concert / raw"])
    table.align = "l"
    for name in args.only or PARTS:
        for row in PARTS[name](args.rounds, args.quick):
            table.add_row(row)
    print(
        f"{args.rounds} interleaved rounds per part; medians; ratio of medians (range of per-round ratios); "
        f"allocator {'keeps freed memory' if tuned else 'as by default'}"
    )
    print(table)


if __name__ == "__main__":
    main()
