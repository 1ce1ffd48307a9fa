"""Benchmark acquisition with and without a live PyplotImageViewer as one more consumer (issue 10).

Run with ``python benchmarks/bench_viewer.py [--rounds N] [--quick]``. Two
producers of 2048×2048 uint16 frames feed ``broadcast`` with three sets of
consumers: :func:`~concert.pipelines.null` alone; ``null`` and a second
consumer doing nothing (what any extra consumer costs the pipeline); and
``null`` and a live :class:`~concert.ext.viewers.PyplotImageViewer`. The
producers:

* the simulated camera (``concert.devices.cameras.dummy.Camera``) streaming
  at full speed (its frame rate set to its limit, so that rendering the
  frames is all that limits it: several hundred frames per second, faster
  than real cameras of that size);
* frames generated beforehand, handed out as fast as ``broadcast`` takes them
  (what is left is the pipeline's own cost per frame and consumer).

Each producer runs a short acquisition (100 frames) and a long one. An
acquisition is timed end to end, as a scientist times it: the whole
``resolve(broadcast(...))``, from the first frame asked for until every
consumer has returned (the viewer returns once the stream has ended and its
last frame is in the slot; drawing goes on in the background). The rate of
production alone (until the producer is exhausted) is given too. The three
sides run in turn, round after round, the order rotating; one viewer, its
drawing process started beforehand, serves every round. The table gives the
medians over the rounds, the ratio of the medians of "viewer" to "null
alone" with the range of the per-round ratios, and how many frames the
viewer drew. Timings are reported, never asserted: the machines are shared
and noisy. Without a display the viewer writes its PNG into a temporary
directory, removed at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import tempfile
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

import numpy as np
from prettytable import PrettyTable

from concert.devices.cameras.dummy import Camera
from concert.ext.viewers import PyplotImageViewer
from concert.futures import resolve
from concert.pipelines import broadcast, null
from concert.quantities import q

SIZE = 2048
SHORT = 100  # frames of a short acquisition


def timed(frames: Iterator[np.ndarray], count: int, times: List[float]) -> Iterator[np.ndarray]:
    """Yield ``count`` frames of ``frames``; append the seconds of production to ``times`` at the end."""
    start = time.perf_counter()
    yield from itertools.islice(frames, count)
    times.append(time.perf_counter() - start)


def counted(items: Iterable[Any]) -> int:
    """A second consumer doing nothing, as ``null`` does: what any consumer costs the pipeline."""
    count = 0
    for _ in items:
        count += 1
    return count


def camera_producer(camera: Camera) -> Callable[[int, List[float], List[Any]], None]:
    def run(count: int, times: List[float], consumers: List[Any]) -> None:
        with camera.recording():
            resolve(broadcast(timed(camera.stream(), count, times), *consumers), 600)

    return run


def memory_producer(frames: List[np.ndarray]) -> Callable[[int, List[float], List[Any]], None]:
    def run(count: int, times: List[float], consumers: List[Any]) -> None:
        resolve(broadcast(timed(itertools.cycle(frames), count, times), *consumers), 600)

    return run


def cpu_seconds(pid: int) -> Optional[float]:
    """The CPU time process ``pid`` has used (Linux: /proc), or ``None`` where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, ValueError, IndexError):
        return None


def bench(run, count: int, rounds: int, viewer: PyplotImageViewer) -> dict:
    """Rounds of the three sides in turn (the order rotating); return the rates, ratios and frames drawn."""
    sides = {"null": [null], "null + null": [null, counted], "null + viewer": [null, viewer]}
    times: Dict[str, List[float]] = {name: [] for name in sides}  # production
    whole: Dict[str, List[float]] = {name: [] for name in sides}  # end to end
    drawn_before, received_before = viewer.drawn, viewer.received
    names = list(sides)
    drawing = 0.0  # CPU seconds of the drawing process during the viewer's rounds
    lasted = 0.0  # seconds those rounds lasted, the viewer's end of stream included
    for index in range(rounds):
        for name in names[index % 3 :] + names[: index % 3]:
            before, began = cpu_seconds(viewer.pid), time.perf_counter()
            run(count, times[name], sides[name])
            whole[name].append(time.perf_counter() - began)
            after = cpu_seconds(viewer.pid)
            if name == "null + viewer":
                lasted += time.perf_counter() - began
                if before is not None and after is not None:
                    drawing += after - before
    viewer.flush(60)  # the drawing of the last round is not counted in the next one
    rates = {name: [count / seconds for seconds in values] for name, values in whole.items()}
    ratios = [w / o for w, o in zip(rates["null + viewer"], rates["null"])]
    produced = {name: statistics.median(count / time for time in values) for name, values in times.items()}
    return {
        "rates": {name: statistics.median(values) for name, values in rates.items()},
        "ratios": (min(ratios), max(ratios)),
        "production": produced["null + viewer"] / produced["null"],
        "drawn": viewer.drawn - drawn_before,
        "received": viewer.received - received_before,
        "lasted": lasted,
        "drawing": drawing / lasted if cpu_seconds(viewer.pid) is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds of each side (default 15)")
    parser.add_argument("--quick", action="store_true", help="short rounds (a smoke test)")
    args = parser.parse_args()
    camera_frames, memory_frames = (60, 200) if args.quick else (600, 3000)

    camera = Camera(sensor_width=SIZE * q.pixel, sensor_height=SIZE * q.pixel)
    camera.frame_rate = camera["frame_rate"].upper  # its hardware limit: frames come as fast as it renders
    with camera.recording():
        generated = [np.array(frame) for frame in itertools.islice(camera.stream(), 8)]

    directory = tempfile.mkdtemp(prefix="bench-viewer-")
    viewer = PyplotImageViewer(title="bench_viewer", directory=directory)
    try:
        viewer.show(generated[0])
        viewer.flush(60)  # its drawing process is up: its start is not part of any round
        table = PrettyTable(
            [
                "producer (2048×2048 uint16)",
                "null [frames/s, end to end]",
                "null + null",
                "null + viewer",
                "viewer / null",
                "production: viewer / null",
                "target",
                "frames drawn",
                "drawing CPU",
            ]
        )
        table.align["producer (2048×2048 uint16)"] = "l"
        for name, run, count in (
            ("dummy Camera, camera.stream()", camera_producer(camera), SHORT),
            ("dummy Camera, camera.stream()", camera_producer(camera), camera_frames),
            ("frames generated beforehand", memory_producer(generated), SHORT),
            ("frames generated beforehand", memory_producer(generated), memory_frames),
        ):
            result = bench(run, count, args.rounds, viewer)
            rates = result["rates"]
            low, high = result["ratios"]
            per_second = result["drawn"] / result["lasted"]
            table.add_row(
                [
                    f"{name}, {args.rounds} × {count} frames",
                    f"{rates['null']:.0f}",
                    f"{rates['null + null']:.0f}",
                    f"{rates['null + viewer']:.0f}",
                    f"{rates['null + viewer'] / rates['null']:.3f} ({low:.3f} … {high:.3f})",
                    f"{result['production']:.3f}",
                    "≥ 0.95",
                    f"{result['drawn']} of {result['received']} ({per_second:.1f}/s)",
                    "n/a" if result["drawing"] is None else f"{result['drawing']:.0%} of a CPU",
                ]
            )
        print(table)
        print(
            "rates end to end (the whole resolve(broadcast(...))), medians over the rounds (per-round "
            "ratios in brackets); production: the ratio of the medians of production alone; frames drawn "
            "and drawing CPU (the drawing process's CPU time): per second of the viewer's rounds\n"
            f"viewer: matplotlib backend "
            f"{viewer.backend}, at most {viewer.rate:g} draws/s, 2048² frames drawn at "
            f"1:{viewer.factor((SIZE, SIZE))}; {os.cpu_count()} CPUs"
        )
    finally:
        viewer.close()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
