"""The ``simulation`` part of ``benchmarks/bench_toolbox.py``: frames of the simulated beamline with a sample.

Run on its own with ``python benchmarks/toolbox_simulation.py [--rounds N] [--quick]``
(a table), or through ``bench_toolbox.py``, which calls
:func:`bench_simulation`. Rows (the five columns of ``bench_toolbox.py``:
what, median throughput, median rate, range over the rounds, ratio or note):

* 2048×2048 frames of a camera imaging a needle on the rotation stage, read
  with ``camera.grab()`` (single frames, as a process reads them), noise on
  and off, and the demo's 640×480 frames with noise; each against drawing
  the frame's normal random numbers alone with numpy
  (``Generator.standard_normal`` of the frame's shape, float32), the floor
  of a noisy frame's cost: the ratio is the baseline's time over the
  camera's (1× would mean the noise is all there is to a frame).
* The demo, ``run_demo()`` with its defaults (40 frames), next to the two
  parts of its work measured alone on the same frames: *simulating* --
  :meth:`~concert.devices.cameras.simulation.Simulation.render` of the
  demo's 40 scenes (darks, flats, the 32 projections' angles), read from
  the devices once before the rounds -- and *writing* -- the same 40 frames
  through a :class:`~concert.storage.DirectoryWalker` into three data sets
  of 8-frame multi-page TIFF files, as the demo writes them. Their shares
  of the demo's median time; the rest is moving the motors, messages,
  the averaging consumers and the experiment's bookkeeping, all of which
  overlap in the demo's threads.

The sides of each group run in interleaved rounds, their order alternating
from round to round; timings are medians over the rounds, reported, never
asserted.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Sequence

import numpy as np
from prettytable import PrettyTable

from concert.devices.cameras.dummy import Camera, Needle
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.devices.shutters.dummy import Shutter
from concert.quantities import q

COLUMNS = ["what", "median throughput", "median rate", "range over rounds", "Concert / baseline"]


def _time(function: Callable[[], object], calls: int = 1) -> float:
    """Seconds for ``calls`` calls of ``function``."""
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return time.perf_counter() - start


def _interleaved(sides: Dict[str, Callable[[], object]], rounds: int, calls: int) -> Dict[str, List[float]]:
    """Seconds per round of each side (``calls`` calls a round), the order alternating from round to round."""
    times: Dict[str, List[float]] = {name: [] for name in sides}
    for side in sides.values():
        side()  # warm up: caches, the allocator, pint's conversions
    for number in range(rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(list(sides)))
        for name in order:
            times[name].append(_time(sides[name], calls))
    return times


def _beamline(columns: int, rows: int, noise: bool) -> Camera:
    stage = RotationMotor(position=30 * q.deg)
    return Camera(
        sensor_width=columns * q.pixel,
        sensor_height=rows * q.pixel,
        shutter=Shutter(),
        rotation_motor=stage,
        sample=Needle(1 * q.mm, 0.5 * q.mm),
        noise=noise,
        seed=1,
    )


def _frame_rows(columns: int, rows: int, noise: bool, rounds: int, calls: int) -> List[List[str]]:
    camera = _beamline(columns, rows, noise)
    generator = np.random.default_rng(2)
    sides = {
        "camera.grab()": camera.grab,
        "numpy's normal numbers alone": lambda: generator.standard_normal((rows, columns), dtype=np.float32),
    }
    times = _interleaved(sides, rounds, calls)
    ours, baseline = times["camera.grab()"], times["numpy's normal numbers alone"]
    median = statistics.median(ours)
    ratios = [b / o for b, o in zip(baseline, ours)]
    label = f"simulated camera {columns}×{rows}, needle, noise {'on' if noise else 'off'}: grab()"
    return [
        [
            label,
            f"{calls * columns * rows / median / 1e6:,.0f} Mpixel/s",
            f"{calls / median:,.1f} frames/s",
            f"{calls / max(ours):,.1f}–{calls / min(ours):,.1f} frames/s",
            f"{statistics.median(baseline) / median:.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) of drawing "
            "its normal numbers alone",
        ]
    ]


def _demo_scenes() -> tuple:
    """The camera of the demo and the 40 scenes of its frames (read from devices placed as the demo does)."""
    shutter, stage, flat_motor = Shutter(), RotationMotor(), LinearMotor()
    camera = Camera(
        shutter=shutter, rotation_motor=stage, flat_motor=flat_motor, sample=Needle(1 * q.mm, 0.5 * q.mm)
    )
    camera.exposure_time = 10 * q.ms
    simulation = camera.simulation
    scenes = []
    shutter.close().join()
    scenes += [simulation.scene()] * 4
    shutter.open().join()
    flat_motor.set_position(5 * q.mm).join()
    scenes += [simulation.scene()] * 4
    flat_motor.set_position(0 * q.mm).join()
    for index in range(32):
        stage.set_position(180 * index / 32 * q.deg).join()
        scenes.append(simulation.scene())
    return camera, scenes


def _demo_rows(rounds: int) -> List[List[str]]:
    from concert.demo import run_demo
    from concert.imaging import ImageWithMetadata
    from concert.storage import DirectoryWalker

    camera, scenes = _demo_scenes()
    simulation, roi = camera.simulation, (0, 0, 640, 480)
    frames = [
        ImageWithMetadata(*simulation.render(0.01, roi, (0, n), scene)) for n, scene in enumerate(scenes)
    ]
    parents: List[str] = []

    def fresh() -> str:
        parents.append(tempfile.mkdtemp(prefix="concert-bench-"))
        return parents[-1]

    def demo() -> object:
        return run_demo(f"{fresh()}/demo", out=io.StringIO())

    def simulate() -> object:
        return [simulation.render(0.01, roi, (0, n), scene) for n, scene in enumerate(scenes)]

    def write() -> object:
        walker = DirectoryWalker(root=fresh(), bytes_per_file=640 * 480 * 2 * 8)
        for name, part in (("darks", frames[:4]), ("flats", frames[4:8]), ("projections", frames[8:])):
            walker.create_writer(iter(part), name=name)()
        return walker

    try:
        times = _interleaved({"demo": demo, "simulating": simulate, "writing": write}, rounds, 1)
    finally:
        for parent in parents:
            shutil.rmtree(parent, ignore_errors=True)
    whole = statistics.median(times["demo"])
    rows = [
        [
            "concert demo (run_demo, 40 frames of 640×480)",
            f"{40 / whole:,.0f} frames/s",
            f"{whole:.3f} s a run",
            f"{min(times['demo']):.3f}–{max(times['demo']):.3f} s",
            "",
        ]
    ]
    for name in ("simulating", "writing"):
        median = statistics.median(times[name])
        rows.append(
            [
                f"  its {name} alone (the same 40 frames)",
                f"{40 / median:,.0f} frames/s",
                f"{median:.3f} s a run",
                f"{min(times[name]):.3f}–{max(times[name]):.3f} s",
                f"{median / whole:.0%} of the demo's time",
            ]
        )
    rest = whole - sum(statistics.median(times[name]) for name in ("simulating", "writing"))
    rows[-1][-1] += f"; the rest {rest / whole:.0%} (motors, messages, consumers; partly overlapping)"
    return rows


def bench_simulation(rounds: int, quick: bool) -> List[List[str]]:
    """The ``simulation`` part: rows of five cells (see the module documentation).

    ``rounds`` interleaved rounds per group; ``quick`` takes fewer frames per
    round (the demo always runs whole).
    """
    big = 2 if quick else 8
    rows: List[List[str]] = []
    rows += _frame_rows(2048, 2048, True, rounds, big)
    rows += _frame_rows(2048, 2048, False, rounds, big)
    rows += _frame_rows(640, 480, True, rounds, 10 if quick else 50)
    rows += _demo_rows(rounds)
    return rows


def _table(rows: Sequence[Sequence[str]]) -> PrettyTable:
    table = PrettyTable(COLUMNS)
    table.align = "l"
    for row in rows:
        table.add_row(list(row))
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per group (default 7)")
    parser.add_argument("--quick", action="store_true", help="fewer frames per round")
    arguments = parser.parse_args()
    print(f"{arguments.rounds} interleaved rounds per group; medians")
    print(_table(bench_simulation(arguments.rounds, arguments.quick)))
