"""``concert demo``: a short experiment on the simulated beamline.

A tomography-style run: dark frames with the shutter closed, flat fields
with it open, then projections while a rotation motor steps through angles
and the camera records. Frames stream through
:func:`~concert.pipelines.broadcast` to an averaging consumer and to a
:class:`~concert.storage.DirectoryWalker` writing multi-page TIFF files.
Device messages are printed as they arrive, a progress bar follows the
projections, and a table at the end says what was written and how fast.

It needs no arguments and writes below a fresh directory it names
(``concert-demo-<date>-<time>`` in the current directory), never into an
existing one.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any, Dict, Iterator, Optional, TextIO

from concert import config
from concert.cli import SubCommand
from concert.dispatcher import ANY, dispatcher

__all__ = ["DemoCommand", "run_demo"]

STATE_MESSAGES = ("open", "closed", "moving", "standby", "recording")


def fresh_directory(parent: str = ".") -> str:
    """Return the path of a directory that does not exist yet, named after the current time."""
    stem = os.path.join(parent, time.strftime("concert-demo-%Y%m%d-%H%M%S"))
    candidate, suffix = stem, 1
    while os.path.exists(candidate):
        candidate, suffix = f"{stem}-{suffix}", suffix + 1
    return candidate


class _MessagePrinter:
    """Prints device messages as the dispatcher delivers them (one handler per message)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._start = time.monotonic()
        self._lock = threading.Lock()  # one line at a time
        self.count = 0
        self._handlers = {message: self._handler(message) for message in STATE_MESSAGES}

    def _handler(self, message: str):
        def show(sender: Any) -> None:
            with self._lock:
                self.count += 1
                line = f"  {time.monotonic() - self._start:7.3f} s  {sender!r:>16} -> {message}"
                if config.PROGRESS_BAR:
                    from tqdm import tqdm

                    tqdm.write(line, file=self._out)
                else:
                    print(line, file=self._out)

        return show

    def __enter__(self) -> _MessagePrinter:
        for message, handler in self._handlers.items():
            dispatcher.subscribe(ANY, message, handler)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        dispatcher.flush(30)
        for message, handler in self._handlers.items():
            dispatcher.unsubscribe(ANY, message, handler)


def _frames(
    camera: Any, count: int, description: Optional[str] = None, motor: Any = None, angles: Any = None
):
    """A producer factory: ``count`` frames, triggered one by one, with the motor at ``angles``."""

    def produce() -> Iterator[Any]:
        from concert.processes.progress import progress_bar

        bar = progress_bar(count, description) if description else None
        try:
            for index in range(count):
                if motor is not None:
                    motor.position = angles[index]
                camera.trigger().join(30)
                frame = camera.grab(timeout=30).result(30)
                if motor is not None:
                    frame.metadata["angle_deg"] = float(angles[index].m_as("deg"))
                if bar is not None:
                    bar.update()
                yield frame
        finally:
            if bar is not None:
                bar.close()

    return produce


def _switch(shutter: Any, state: str) -> None:
    if shutter.state != state:
        (shutter.open() if state == "open" else shutter.close()).join(30)


def run_demo(
    directory: Optional[str] = None,
    projections: int = 32,
    flats: int = 4,
    darks: int = 4,
    out: TextIO = sys.stdout,
) -> Dict[str, Any]:
    """Run the demo experiment, writing below ``directory`` (default: a fresh one); return its summary."""
    from prettytable import PrettyTable

    from concert.devices.cameras.dummy import Camera
    from concert.devices.motors.dummy import RotationMotor
    from concert.devices.shutters.dummy import Shutter
    from concert.pipelines import Average
    from concert.processes.experiment import Acquisition, Experiment
    from concert.quantities import q
    from concert.storage import DirectoryWalker

    directory = os.path.abspath(directory or fresh_directory())
    if os.path.exists(directory):
        raise FileExistsError(f"concert demo writes into a new directory; {directory!r} exists already")
    print(f"Simulated beamline: shutter, rotation motor, camera. Writing below {directory}", file=out)

    shutter, motor, camera = Shutter(), RotationMotor(motion_velocity=3600 * q.deg / q.s), Camera()
    camera.trigger_source = camera.trigger_sources.SOFTWARE
    angles = [q.Quantity(180.0 * i / projections, q.deg) for i in range(projections)]
    frame_bytes = camera.roi_width.magnitude * camera.roi_height.magnitude * 2
    walker = DirectoryWalker(root=directory, bytes_per_file=int(frame_bytes * 8))  # 8 frames per file
    average = Average()

    def after(state: str, produce_frames):
        """A producer factory that first puts the shutter into ``state``."""

        def produce():
            _switch(shutter, state)
            return produce_frames()

        return produce

    experiment = Experiment(
        [
            Acquisition("darks", after("closed", _frames(camera, darks))),
            Acquisition("flats", after("open", _frames(camera, flats))),
            Acquisition(
                "projections",
                after("open", _frames(camera, projections, "projections", motor, angles)),
                consumers=[average],
            ),
        ],
        walker,
    )
    began = time.monotonic()
    with _MessagePrinter(out) as printer:
        with camera.recording():
            record = experiment.run().result()
        _switch(shutter, "closed")
    elapsed = time.monotonic() - began

    run_directory = os.path.join(directory, record["run"])
    table = PrettyTable(["acquisition", "files", "frames", "MB", "seconds", "MB/s"])
    table.align["acquisition"] = "l"
    total_frames = total_bytes = 0
    for entry in record["acquisitions"]:
        folder = os.path.join(run_directory, entry["name"])
        files = sorted(name for name in os.listdir(folder) if name.endswith(".tif"))
        size = sum(os.path.getsize(os.path.join(folder, name)) for name in files)
        total_frames += entry["frames"]
        total_bytes += size
        rate = size / 1e6 / entry["seconds"] if entry["seconds"] else float("inf")
        megabytes, seconds = f"{size / 1e6:.1f}", f"{entry['seconds']:.3f}"
        table.add_row([entry["name"], len(files), entry["frames"], megabytes, seconds, f"{rate:.0f}"])
    print(table, file=out)
    print(
        f"Wrote {total_frames} frames ({total_bytes / 1e6:.1f} MB) to {run_directory} in {elapsed:.2f} s; "
        f"{printer.count} device messages; mean projection intensity {average.average.mean():.1f}.",
        file=out,
    )
    return {"directory": run_directory, "frames": total_frames, "bytes": total_bytes, "record": record}


class DemoCommand(SubCommand):
    """``concert demo``."""

    name = "demo"
    help = "run a short experiment on the simulated beamline and write its frames"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--directory", help="where to write (must not exist; default: a fresh one here)")
        parser.add_argument("--projections", type=int, default=32, help="number of projections (default 32)")

    def run(self, args: argparse.Namespace) -> int:
        if args.projections < 1:
            print(f"concert demo: --projections must be at least 1, not {args.projections}", file=sys.stderr)
            return 2
        try:
            run_demo(args.directory, args.projections)
        except FileExistsError as error:
            print(f"concert demo: {error}", file=sys.stderr)
            return 1
        return 0
