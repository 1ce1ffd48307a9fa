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
* ``tango`` -- a :class:`~concert.devices.tango.TangoDevice` of the test
  server's ``Motorish`` (``tests/networking/tango_servers.py``, started as a
  subprocess on 127.0.0.1) versus raw ``DeviceProxy`` calls on the same
  server, each side through a proxy of its own: reading ``position``
  (``device.position`` vs ``read_attribute``), writing it (``device.position
  = x``, which returns once the write is over, vs ``write_attribute``), and
  writing it through a future (``device.set_position(x).join()``) vs the
  raw write. Targets: reading and writing ≤ 1.2× the raw time. The raw
  write names the attribute, as a script does, and PyTango then asks the
  server for the attribute's configuration before every write; Concert
  writes with the ``AttributeInfoEx`` it has, which saves that round trip.
  So the write is measured once more against a raw write given the
  ``AttributeInfoEx`` too: that ratio is Concert's own cost, with no target.
* ``served`` -- a dummy ``LinearMotor`` served by ``concert tango serve`` (a
  subprocess) and driven through a ``TangoDevice``, versus the same motor in
  this process: ``set_position(x).join()`` of moves of 1 µm at 10 m/s (the
  motion itself takes no time), the whole round trip. Reported, no target.
* ``walker`` -- ``bench_walker`` of ``benchmarks/networking_walker.py`` (the
  remote walker against a local one), loaded when the part runs.

For ``tango`` and ``served`` a round is many calls of each side, made in
blocks of :data:`BLOCK` calls that take turns; a side's time per call is the
median over the rounds of each round's mean, the ratio the median of the
per-round ratios (each round's two sides ran side by side), and its range
that of the per-round ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

import numpy as np
from prettytable import PrettyTable

SIZE = 2048
HWM = 16  # messages queued per side: bounded memory, enough to keep the loopback link busy


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


# -- Tango ------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _tango_process() -> type:
    """The tests' :class:`~tests.networking.servers.TangoProcess`: real servers, their ports read back."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.networking.servers import TangoProcess

    return TangoProcess


def _per_call(call: Callable[[int], object], count: int) -> float:
    """Seconds per call of ``count`` calls ``call(i)`` in a row."""
    start = time.perf_counter()
    for index in range(count):
        call(index)
    return (time.perf_counter() - start) / count


#: Calls a side makes in a row inside a round before the other side takes its turn.
BLOCK = 25


def _compare(
    label: str, sides: Dict[str, Callable[[int], object]], rounds: int, count: int, target: str
) -> List[List[str]]:
    """Interleaved rounds of two sides, the reference first; the rows of the table.

    In a round each side makes ``count`` calls, in blocks of :data:`BLOCK`
    taking turns (which side starts alternates), so that the drift of a
    shared machine within a round hits both sides alike; a side's figure for
    the round is its mean time per call, and the round's ratio that of the
    two means.
    """
    times: Dict[str, List[float]] = {name: [] for name in sides}
    for side in sides.values():
        _per_call(side, max(10, count // 10))  # warm up: connections, caches
    blocks = max(1, count // BLOCK)
    for round_number in range(rounds):
        spent = dict.fromkeys(sides, 0.0)
        for block in range(blocks):
            order = list(sides) if (round_number + block) % 2 == 0 else list(reversed(sides))
            for name in order:
                spent[name] += _per_call(sides[name], BLOCK)
        for name in sides:
            times[name].append(spent[name] / blocks)
    reference, ours = (times[name] for name in sides)
    ratios = [o / r for r, o in zip(reference, ours)]
    rows = []
    for name in sides:
        median = statistics.median(times[name])
        rows.append(
            [
                f"{label}: {name}",
                f"{median * 1e6:,.0f} µs/call",
                f"{1 / median:,.0f} calls/s",
                f"{min(times[name]) * 1e6:,.0f}–{max(times[name]) * 1e6:,.0f} µs",
                "",
            ]
        )
    rows[-1][-1] = (
        f"{statistics.median(ratios):.3f}× "
        f"({min(ratios):.3f}–{max(ratios):.3f}{'; target ' + target if target else ''})"
    )
    return rows


def bench_tango(rounds: int, quick: bool) -> List[List[str]]:
    """The ``tango`` part: rows of the table (see the module documentation)."""
    from concert.devices.tango import TangoDevice
    from concert.networking.tango import get_tango_device
    from concert.quantities import q

    server = _tango_process().motorish("bench/motorish/1")
    try:
        device = TangoDevice(server.uri, timeout=10 * q.s)
        proxy = get_tango_device(server.uri, timeout=10 * q.s)  # the raw side's own connection
        info = proxy.get_attribute_config_ex(["position"])[0]
        count = 100 if quick else 400
        targets, raw = [1.0 * q.mm, 2.0 * q.mm], [1.0, 2.0]

        def concert_write(index: int) -> None:
            device.position = targets[index % 2]

        def raw_write(index: int) -> None:
            proxy.write_attribute("position", raw[index % 2])

        rows = _compare(
            "tango read",
            {
                "raw read_attribute": lambda index: proxy.read_attribute("position"),
                "device.position": lambda index: device.position,
            },
            rounds,
            count,
            "≤ 1.2×",
        )
        rows += _compare(
            "tango write",
            {"raw write_attribute": raw_write, "device.position = x": concert_write},
            rounds,
            count,
            "≤ 1.2×",
        )
        rows += _compare(
            "tango write",
            {
                "raw write_attribute(AttributeInfoEx)": lambda index: proxy.write_attribute(
                    info, raw[index % 2]
                ),
                "device.position = x": concert_write,
            },
            rounds,
            count,
            "",
        )
        rows += _compare(
            "tango write",
            {
                "raw write_attribute": raw_write,
                "set_position(x).join()": lambda index: device.set_position(targets[index % 2]).join(),
            },
            rounds,
            count,
            "",
        )
    finally:
        server.kill()
    return rows


def bench_served(rounds: int, quick: bool) -> List[List[str]]:
    """The ``served`` part: rows of the table (see the module documentation)."""
    from concert.devices.motors.dummy import LinearMotor
    from concert.devices.tango import TangoDevice
    from concert.quantities import q

    factory = "concert.devices.motors.dummy:LinearMotor"
    name = "bench/motor/1"
    server = _tango_process().concert("tango", "serve", factory, "--name", name, "--port", "0", name=name)
    try:
        remote = TangoDevice(server.uri, timeout=10 * q.s)
        local = LinearMotor()
        for motor in (remote, local):
            motor.motion_velocity = 10 * q.m / q.s
        targets = [0 * q.mm, 1 * q.um]

        def moves(motor: object) -> Callable[[int], object]:
            return lambda index: motor.set_position(targets[index % 2]).join()

        rows = _compare(
            "served motor set_position(x).join(), 1 µm",
            {"in this process": moves(local), "served over Tango": moves(remote)},
            rounds,
            50 if quick else 200,
            "",
        )
    finally:
        server.kill()
    return rows


def bench_walker(rounds: int, quick: bool) -> List[List[str]]:
    """The ``walker`` part: ``bench_walker`` of ``benchmarks/networking_walker.py``, loaded now."""
    path = Path(__file__).with_name("networking_walker.py")
    if not path.is_file():
        return [["walker", f"(not run: {path.name} is not there)", "", "", ""]]
    spec = importlib.util.spec_from_file_location("networking_walker", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("networking_walker", module)
    spec.loader.exec_module(module)
    return module.bench_walker(rounds, quick)


#: The parts of the benchmark, run in this order.
PARTS: Dict[str, Callable[[int, bool], List[List[str]]]] = {
    "zmq": bench_zmq,
    "tango": bench_tango,
    "served": bench_served,
    "walker": bench_walker,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per part (default 9)")
    parser.add_argument("--quick", action="store_true", help="fewer frames per round")
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), help="run only these parts")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's allocator as it is")
    args = parser.parse_args()
    from concert.networking.walker_server import keep_freed_memory  # what the walker server does itself

    tuned = False if args.default_malloc else keep_freed_memory()
    table = PrettyTable(["what", "median", "median rate", "range over rounds", "Concert / reference"])
    table.align = "l"
    for name in args.only or PARTS:
        for row in PARTS[name](args.rounds, args.quick):
            table.add_row(row)
    print(
        f"{args.rounds} interleaved rounds per part; medians; ratio: zmq of the medians, tango and served "
        "the median of the per-round ratios (range: of the per-round ratios); "
        f"allocator {'keeps freed memory' if tuned else 'as by default'}"
    )
    print(table)


if __name__ == "__main__":
    main()
