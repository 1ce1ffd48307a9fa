"""The ``alignment`` part of ``benchmarks/bench_toolbox.py``: ``align_rotation_axis`` versus a grid scan.

Both sides level the same simulated stage (a 320 x 240 camera, a needle
0.9 mm off the rotation axis, 5° roll and 3° pitch at the start, the fastest
simulated motors, noise on) to the same final accuracy: |roll| and |pitch|
below 0.1°, checked against the simulation's ground truth. The stage itself
is tilted by (0.07°, -0.05°) and the tilt motors start at (4.93°, 3.05°),
so the level axis is at motor positions (-0.07°, 0.05°), between the
round numbers a grid visits.

* ``align_rotation_axis`` -- the process as a scientist calls it (10 frames
  a turn, ``absolute_eps=0.1°``): its iterations, frames and times.
* The grid scan -- what one does without the ellipse fit: every combination
  of ``z_motor`` and ``x_motor`` positions at multiples of 0.2° (so that one
  lies within 0.1° of the level axis) within ±6° and ±4° of the start,
  60 x 40 = 2400 points; at each, four frames at 0°, 90°, 180° and
  270°, and the spread of the needle tip's height over them as the figure
  of merit (a level axis keeps the tip at one height: the heights at 0° and
  180° differ by the roll, at 90° and 270° by the pitch). The motors end at
  the best point.

The grid is slow (about 10 000 frames: minutes), so it runs once per
benchmark run, between the two halves of the rounds of
``align_rotation_axis``; with ``quick`` it visits every fourth point in each
direction (1/16 of them, which does not reach the accuracy) and its time for
the whole grid is extrapolated from that, as the row says. Wall and CPU
times (of this process, all its threads) are both given: on a shared
machine the CPU times are the steadier. Timings are reported, never
asserted.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Dict, List, Tuple

import numpy as np

from concert import config
from concert.devices.cameras.dummy import Camera, Needle
from concert.devices.motors.dummy import RotationMotor
from concert.futures import resolve
from concert.imageprocessing import find_needle_tip
from concert.processes.beamline import align_rotation_axis
from concert.quantities import q

EPS = 0.1  # degrees: the final accuracy both sides must reach
TILT = (0.07, -0.05)  # roll, pitch (degrees) of the stage itself
START = (4.93, 3.05)  # z_motor, x_motor (degrees) at the start: 5° roll, 3° pitch in all
SPAN = (6.0, 4.0)  # the grid's half-widths in roll and pitch (degrees)


def _rig(seed: int) -> Tuple[Camera, RotationMotor, RotationMotor, RotationMotor]:
    fast = 36000 * q.deg / q.s
    rotation = RotationMotor(motion_velocity=fast)
    z_motor = RotationMotor(position=START[0] * q.deg, motion_velocity=fast)
    x_motor = RotationMotor(position=START[1] * q.deg, motion_velocity=fast)
    camera = Camera(
        sensor_width=320 * q.pixel,
        sensor_height=240 * q.pixel,
        rotation_motor=rotation,
        x_motor=x_motor,
        z_motor=z_motor,
        sample=Needle(0.9 * q.mm, 0.3 * q.mm),
        seed=seed,
        roll=TILT[0] * q.deg,
        pitch=TILT[1] * q.deg,
    )
    return camera, rotation, x_motor, z_motor


def _error(camera: Camera) -> float:
    """The larger of |roll| and |pitch| in effect (degrees): the ground truth."""
    truth = camera.simulation
    return max(abs(truth.roll.m_as(q.deg)), abs(truth.pitch.m_as(q.deg)))


def _align(seed: int) -> Dict[str, Any]:
    camera, rotation, x_motor, z_motor = _rig(seed)
    start, cpu = time.perf_counter(), time.process_time()
    align_rotation_axis(camera, rotation, x_motor=x_motor, z_motor=z_motor, absolute_eps=EPS * q.deg).join()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    turns = round(rotation.position.m_as(q.deg) / 360)
    return {
        "seconds": seconds,
        "cpu": cpu,
        "iterations": turns,
        "frames": 10 * turns,
        "error": _error(camera),
    }


def _multiples(low: float, high: float, step: float) -> np.ndarray:
    """The multiples of ``step`` from ``low`` to ``high``: the round positions a scientist would scan."""
    return np.arange(math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9) + 1) * step


def _grid(seed: int, stride: int) -> Dict[str, Any]:
    camera, rotation, x_motor, z_motor = _rig(seed)
    rolls, pitches = (_multiples(start - span, start + span, 2 * EPS) for start, span in zip(START, SPAN))
    visited = [(roll, pitch) for roll in rolls[::stride] for pitch in pitches[::stride]]
    camera.trigger_source = camera.trigger_sources.SOFTWARE
    best = (np.inf, START)
    start, cpu = time.perf_counter(), time.process_time()
    with camera.recording():
        for roll, pitch in visited:
            resolve([z_motor["position"].set(roll * q.deg), x_motor["position"].set(pitch * q.deg)])
            heights = []
            for angle in (0, 90, 180, 270):
                rotation["position"].set(angle * q.deg).join()
                camera.trigger().join()
                heights.append(find_needle_tip(camera.grab())[1])
            spread = max(heights) - min(heights)
            if spread < best[0]:
                best = (spread, (roll, pitch))
        resolve([z_motor["position"].set(best[1][0] * q.deg), x_motor["position"].set(best[1][1] * q.deg)])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    full = len(rolls) * len(pitches)
    return {
        "seconds": seconds * full / len(visited),
        "cpu": cpu * full / len(visited),
        "measured": seconds,
        "points": len(visited),
        "full": full,
        "frames": 4 * full,
        "error": _error(camera),
    }


def bench_alignment(rounds: int, quick: bool) -> List[List[str]]:
    """Rows of the table of ``bench_toolbox.py``: the process's rounds, the grid's run, the ratio."""
    previous = config.PROGRESS_BAR
    config.PROGRESS_BAR = False
    try:
        _align(0)  # warm up: imports, caches
        # Half of the process's rounds before the grid and half after, so that a change of the
        # machine's load during the long grid hits both sides.
        runs = [_align(seed) for seed in range(1, rounds // 2 + 1)]
        grid = _grid(rounds + 1, 4 if quick else 1)
        runs += [_align(seed) for seed in range(rounds // 2 + 1, rounds + 1)]
    finally:
        config.PROGRESS_BAR = previous
    times = [run["seconds"] for run in runs]
    median = statistics.median(times)
    cpu = statistics.median(run["cpu"] for run in runs)
    iterations = sorted(run["iterations"] for run in runs)
    worst = max(run["error"] for run in runs)
    extrapolated = grid["points"] < grid["full"]
    reached = ", not reached: 1/16 of the grid" if extrapolated else ""
    how = (
        f"extrapolated from {grid['points']} of {grid['full']} points ({grid['measured']:.1f} s)"
        if extrapolated
        else f"{grid['full']} points, one run"
    )
    return [
        [
            f"align_rotation_axis from 5° roll / 3° pitch to < {EPS:g}° "
            f"(iterations {iterations[0]}–{iterations[-1]}, median {statistics.median(iterations):g}; "
            f"worst true error {worst:.3f}°)",
            f"{median:.2f} s per alignment ({cpu:.2f} s CPU)",
            f"{statistics.median(run['frames'] for run in runs):g} frames",
            f"{min(times):.2f}–{max(times):.2f} s",
            "",
        ],
        [
            f"grid scan of z_motor x x_motor at multiples of {2 * EPS:g}° within ±{SPAN[0]:g}° x "
            f"±{SPAN[1]:g}°, 4 frames a point (true error {grid['error']:.3f}°{reached})",
            f"{grid['seconds']:.1f} s per alignment ({grid['cpu']:.1f} s CPU)",
            f"{grid['frames']} frames",
            how,
            f"grid / align_rotation_axis: {grid['seconds'] / median:,.0f}× the wall time, "
            f"{grid['cpu'] / cpu:,.0f}× the CPU time",
        ],
    ]


if __name__ == "__main__":
    for row in bench_alignment(3, quick=True):
        print(" | ".join(row))
