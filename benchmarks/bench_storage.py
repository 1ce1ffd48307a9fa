"""Benchmark storage and pipelines against baselines measured in the same run (issue 4).

Run with ``python benchmarks/bench_storage.py [--directory DIR] [--quick]``. Prints one table:

* multi-page and one-file-per-frame ``write_images`` of 2048×2048 uint16
  frames (1 GiB, fsync included) vs writing the same bytes raw
  (from ``bench_storage_writes.py``);
* simulated camera → ``broadcast`` → (TIFF writer, averager) vs
  ``write_images`` alone from frames already in memory;
* the peak memory of a pipeline whose consumer is ten times slower than its
  producer, next to the bound its queue sizes imply.

Timings are reported, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import tracemalloc

import numpy as np
from bench_storage_writes import TARGETS, bench_write_modes
from prettytable import PrettyTable

from concert.devices.cameras.dummy import Camera
from concert.pipelines import Average, broadcast, null
from concert.quantities import q
from concert.storage import write_images


def bench_camera_pipeline(parent: str, frames: int, repeat: int) -> tuple:
    """Seconds for camera → broadcast → (writer, averager), and for write_images of in-memory frames."""
    camera = Camera(sensor_width=2048 * q.pixel, sensor_height=2048 * q.pixel)
    camera.frame_rate = 10000 / q.s  # the camera is not what we measure

    with camera.recording():
        stream = camera.stream()
        in_memory = [np.array(next(stream)) for _ in range(frames)]

    def pipeline(where: str) -> None:
        def write(items):
            return write_images(
                items, prefix=os.path.join(where, "frame_{:>04}.tif"), bytes_per_file=256 * 2**20
            )

        with camera.recording():
            stream = camera.stream()
            produced = (next(stream) for _ in range(frames))
            written, _ = (future.result(600) for future in broadcast(produced, write, Average()))
            assert written == frames

    def alone(where: str) -> None:
        written = write_images(
            iter(in_memory), prefix=os.path.join(where, "frame_{:>04}.tif"), bytes_per_file=256 * 2**20
        )
        assert written == frames

    best = {"pipeline": float("inf"), "alone": float("inf")}
    for _ in range(repeat):
        for name, run in (("alone", alone), ("pipeline", pipeline)):
            where = tempfile.mkdtemp(dir=parent)
            try:
                start = time.perf_counter()
                run(where)
                best[name] = min(best[name], time.perf_counter() - start)
            finally:
                shutil.rmtree(where)
    return best["pipeline"], best["alone"], in_memory[0].nbytes * frames


def bench_slow_consumer_memory(frames: int, frame_bytes: int, queue_size: int) -> tuple:
    """Peak traced memory of a pipeline whose slow consumer takes 10× the producer's time per item."""
    produce_time = 0.002

    def producer():
        for index in range(frames):
            frame = np.full(frame_bytes, index % 256, dtype=np.uint8)
            time.sleep(produce_time)  # a detector's readout time
            yield frame

    def slow(items):
        pause = threading.Event()
        for _ in items:
            pause.wait(10 * produce_time)  # a consumer ten times slower
        return True

    tracemalloc.start()
    try:
        for future in broadcast(producer(), slow, null, queue_size=queue_size):
            future.result(600)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = (queue_size + 2) * frame_bytes  # the queue, one in the consumer's hand, one waiting to enter
    return peak, bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", default=None, help="where to write (default: the temporary directory)")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args()
    parent = args.directory or tempfile.gettempdir()
    frames = 16 if args.quick else 128
    repeat = 1 if args.quick else 3

    table = PrettyTable(["measurement", "concert", "baseline", "ratio", "target"])
    table.align["measurement"] = "l"
    for mode, result in bench_write_modes(parent, frames=frames, repeat=repeat).items():
        concert_rate = result["bytes"] / result["concert"] / 2**20
        raw_rate = result["bytes"] / result["raw"] / 2**20
        table.add_row(
            [
                f"write_images {mode}, {result['bytes'] / 2**30:.2f} GiB [MiB/s]",
                f"{concert_rate:.0f}",
                f"{raw_rate:.0f} (raw write + fsync)",
                f"{concert_rate / raw_rate:.2f}×",
                f"≥ {TARGETS[mode]}×",
            ]
        )

    pipeline, alone, total = bench_camera_pipeline(parent, frames=max(8, frames // 2), repeat=repeat)
    table.add_row(
        [
            f"camera → broadcast → (writer, averager), {total / 2**20:.0f} MiB [MiB/s]",
            f"{total / pipeline / 2**20:.0f}",
            f"{total / alone / 2**20:.0f} (write_images from memory)",
            f"{alone / pipeline:.2f}×",
            "≥ 0.85×",
        ]
    )

    frame_bytes, queue_size = 4 * 2**20, 4
    peak, bound = bench_slow_consumer_memory(
        frames=60 if not args.quick else 20, frame_bytes=frame_bytes, queue_size=queue_size
    )
    table.add_row(
        [
            f"peak memory, consumer 10× slower, queue_size={queue_size}, 4 MiB frames [MiB]",
            f"{peak / 2**20:.1f}",
            f"{bound / 2**20:.0f} (queue bound)",
            f"{peak / bound:.2f}×",
            "bounded",
        ]
    )
    print(table)


if __name__ == "__main__":
    main()
