"""``concert demo``: a short experiment on the simulated beamline.

A tomography-style run on the simulated beamline of
:mod:`concert.devices.cameras.simulation`: the camera images a needle on a
rotation stage. Dark frames with the shutter closed, flat fields with it
open and the needle moved out of the beam by a flat-field motor, then
projections while the rotation motor steps through angles and the camera
records. Frames stream through
:func:`~concert.pipelines.broadcast` to an averaging consumer and to a
:class:`~concert.storage.DirectoryWalker` writing multi-page TIFF files.
Device messages are printed as they arrive, one line per acquisition when
it has recorded its frames, and a table at the end says what was written
and how fast; the last line gives the mean levels of the darks, flats and
projections and the range of the flat-corrected transmission. A progress
bar follows the projections when the output is a terminal (and
:data:`concert.config.PROGRESS_BAR` is on); on a pipe or a file the output
is plain lines.

It needs no arguments and writes below a fresh directory it names
(``concert-demo-<date>-<time>`` in the current directory), never into an
existing one.

Ctrl-C stops the experiment after the frame in hand; the demo then closes
the shutter, prints the table of what was written and raises the
``KeyboardInterrupt`` again (``concert demo`` turns it into one line on
standard error and exit status 130).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, TextIO

from concert import config
from concert.cli import SubCommand
from concert.dispatcher import ANY, dispatcher
from concert.interrupts import discard_held, protected

__all__ = ["DemoCommand", "DemoDirectoryError", "run_demo"]

STATE_MESSAGES = ("open", "closed", "moving", "standby", "recording")

#: Longest wait, in seconds, for any one step of the demo: a frame, a shutter move, a step of the clean-up.
CLEANUP_TIMEOUT = 30


class DemoDirectoryError(OSError):
    """The demo's directory cannot be created (no permission, a file in the way, ...)."""


def fresh_directory(parent: str = ".") -> str:
    """Return the path of a directory that does not exist yet, named after the current time."""
    stem = os.path.join(parent, time.strftime("concert-demo-%Y%m%d-%H%M%S"))
    candidate, suffix = stem, 1
    while os.path.exists(candidate):
        candidate, suffix = f"{stem}-{suffix}", suffix + 1
    return candidate


def _create_directory(directory: Optional[str]) -> str:
    """Create the demo's directory (default: a fresh one here); return its absolute path.

    :raises FileExistsError: if ``directory`` exists already (as anything).
    :raises DemoDirectoryError: if it cannot be created, saying why.
    """
    path = os.path.abspath(directory or fresh_directory())
    while True:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.mkdir(path, 0o750)
            return path
        except FileExistsError:
            if not os.path.isdir(os.path.dirname(path)):  # a file where a parent should be
                raise DemoDirectoryError(
                    f"cannot create the directory {path!r}: a parent is not a directory"
                ) from None
            if directory is not None:
                raise FileExistsError(
                    f"concert demo writes into a new directory; {path!r} exists already"
                ) from None
            path = os.path.abspath(fresh_directory())  # taken meanwhile: the next free name
        except OSError as error:
            raise DemoDirectoryError(
                f"cannot create the directory {path!r}: {error.strerror or error}"
            ) from None


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False


class _Output:
    """The demo's lines on ``out``: device messages as the dispatcher delivers them, and notes.

    With ``bar`` true, lines are written through tqdm, above the progress
    bar; otherwise printed (and flushed: a pipe gets them as they happen).
    """

    def __init__(self, out: TextIO, bar: bool) -> None:
        self._out = out
        self.bar = bar
        self._start = time.monotonic()
        self._lock = threading.Lock()  # one line at a time; guards _gone too
        self._gone = False  # the reader of out went away (a closed pipe): print nothing more
        self.count = 0  # device messages printed
        self._handlers = {message: self._handler(message) for message in STATE_MESSAGES}

    def line(self, text: str) -> None:
        """Write ``text`` as a line of its own."""
        with self._lock:
            if self._gone:
                return
            try:
                if self.bar:
                    from tqdm import tqdm

                    tqdm.write(text, file=self._out)
                else:
                    print(text, file=self._out, flush=True)
            except BrokenPipeError:
                self._gone = True  # | head has read enough: the demo goes on, and ends with status 141

    def progress(self, total: int, description: str) -> Any:
        """Return a progress bar over ``total`` steps on ``out``, or ``None`` without a bar."""
        if not self.bar:
            return None
        from concert.processes.progress import progress_bar

        return progress_bar(total, description, file=self._out)

    def _handler(self, message: str) -> Callable[[Any], None]:
        def show(sender: Any) -> None:
            with self._lock:
                self.count += 1
            self.line(f"  {time.monotonic() - self._start:7.3f} s  {sender!r:>16} -> {message}")

        return show

    def __enter__(self) -> _Output:
        for message, handler in self._handlers.items():
            dispatcher.subscribe(ANY, message, handler)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        dispatcher.flush(CLEANUP_TIMEOUT)
        for message, handler in self._handlers.items():
            dispatcher.unsubscribe(ANY, message, handler)


class _Producers:
    """Counts the demo's frame producers that started and have not ended yet."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._running = 0

    def started(self) -> None:
        with self._condition:
            self._running += 1

    def ended(self) -> None:
        with self._condition:
            self._running -= 1
            self._condition.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait until every producer has ended, at most ``timeout`` seconds; return whether they have."""
        with self._condition:
            return self._condition.wait_for(lambda: self._running == 0, timeout)


def _frames(camera: Any, count: int, motor: Any = None, angles: Any = None, bar: Any = None) -> Iterator[Any]:
    """Yield ``count`` frames, triggered one by one, the motor at ``angles``; close ``bar`` at the end.

    The camera reads the motor's angle at each trigger: the frame shows it and its
    metadata has it (``'angle_deg'``).
    """
    try:
        for index in range(count):
            if motor is not None:
                motor.position = angles[index]
            camera.trigger().join(CLEANUP_TIMEOUT)
            frame = camera.grab_async(timeout=CLEANUP_TIMEOUT).result(CLEANUP_TIMEOUT)
            if bar is not None:
                bar.update()
            yield frame
    finally:
        if bar is not None:
            bar.close()


def _switch(shutter: Any, state: str) -> None:
    if shutter.state != state:
        (shutter.open() if state == "open" else shutter.close()).join(CLEANUP_TIMEOUT)


def _place(motor: Any, position: Any) -> None:
    if motor.position != position:
        motor.set_position(position).join(CLEANUP_TIMEOUT)


class _Transmission:
    """A consumer of projections: the range of their flat-corrected transmission.

    Each projection ``p`` is corrected with the averages of the darks ``d``
    and the flats ``f`` (read when the projections start) by
    :func:`~concert.imageprocessing.flat_correct`: ``(p - d) / (f - d)``;
    :attr:`low` and :attr:`high` are the lowest 0.1st and the highest 99.9th
    percentile over the projections (percentiles, so that single noisy pixels
    do not set the range), ``None`` until a projection has been corrected.
    Written by the consumer's thread only, read once its future is done.
    """

    def __init__(self, darks: Any, flats: Any) -> None:
        self._darks, self._flats = darks, flats
        self.low: Optional[float] = None
        self.high: Optional[float] = None

    def __call__(self, frames: Iterable[Any]) -> None:
        import numpy as np

        dark, flat = self._darks.average, self._flats.average
        if dark is None or flat is None:  # no darks or flats: nothing to correct with
            for _ in frames:
                pass
            return
        from concert.imageprocessing import flat_correct

        for frame in frames:
            transmission = flat_correct(frame, flat, dark)
            count = transmission.size
            ranks = (count // 1000, count - 1 - count // 1000)  # the 0.1st and 99.9th percentiles
            low, high = np.partition(transmission.ravel(), ranks)[list(ranks)]
            self.low = float(low) if self.low is None else min(self.low, float(low))
            self.high = float(high) if self.high is None else max(self.high, float(high))


@protected  # a Ctrl-C arriving while this runs is held back, and then ignored
def _ignore_ctrl_c() -> Any:
    """Ignore SIGINT from now on (main thread only); return the handler to put back, or ``None``."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    discard_held()  # a Ctrl-C held back meanwhile is one more of those now ignored
    return previous


def _restore_ctrl_c(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _record_path(directory: str, run: str) -> str:
    return os.path.join(directory, run, "experiment.json")


def _read_record(directory: str) -> Optional[Dict[str, Any]]:
    """The ``experiment.json`` of the (only) run below ``directory``, or ``None`` if there is none."""
    runs = sorted(name for name in os.listdir(directory) if os.path.isfile(_record_path(directory, name)))
    if not runs:
        return None
    with open(_record_path(directory, runs[-1]), encoding="utf-8") as stream:
        return json.load(stream)


def run_demo(
    directory: Optional[str] = None,
    projections: int = 32,
    flats: int = 4,
    darks: int = 4,
    out: TextIO = sys.stdout,
    view: bool = False,
) -> Dict[str, Any]:
    """Run the demo experiment, writing below ``directory`` (default: a fresh one); return its summary.

    With ``view``, every frame also goes to a live
    :class:`~concert.ext.viewers.PyplotImageViewer`, one more consumer of
    each acquisition's broadcast: it draws into ``live-view.png`` in the
    run's directory (and in a window, given a display); the output says
    where, and at the end how many frames it drew.

    The summary has the run's ``directory``, the numbers of ``frames`` and
    ``bytes`` written and the experiment's ``record`` (its
    ``experiment.json``). The shutter is closed at the end, whatever
    happened, and the table of what was written is printed. Should the run
    fail, its error is raised after that; on Ctrl-C (the experiment then
    stops after the frame in hand) the ``KeyboardInterrupt`` is. Once the
    run has ended, Ctrl-C is ignored until the shutter is closed and the
    table printed, so that nothing cuts the clean-up short.

    :raises FileExistsError: if ``directory`` exists already.
    :raises DemoDirectoryError: if ``directory`` cannot be created.
    """
    from concert.devices.cameras.dummy import Camera, Needle
    from concert.devices.motors.dummy import LinearMotor, RotationMotor
    from concert.devices.shutters.dummy import Shutter
    from concert.pipelines import Average
    from concert.processes.experiment import Acquisition, Experiment
    from concert.quantities import q
    from concert.storage import DirectoryWalker

    directory = _create_directory(directory)
    bar = config.PROGRESS_BAR and _is_terminal(out)
    output = _Output(out, bar)
    output.line(
        "Simulated beamline: shutter, rotation motor, flat-field motor, camera imaging a needle. "
        f"Writing below {directory}"
    )

    shutter = Shutter()
    motor = RotationMotor(motion_velocity=3600 * q.deg / q.s)
    flat_motor = LinearMotor(motion_velocity=1000 * q.mm / q.s)
    # A needle 1 mm off the axis, its tip 0.5 mm above the centre row; the field of view is 4.16 mm
    # wide, which is where the flat motor takes it out of the beam (out_of_beam_distance's default).
    needle = Needle(x=1 * q.mm, y=0.5 * q.mm)
    camera = Camera(shutter=shutter, rotation_motor=motor, flat_motor=flat_motor, sample=needle)
    camera.trigger_source = camera.trigger_sources.SOFTWARE
    camera.exposure_time = 10 * q.ms  # 2000 photons per pixel in the open beam
    angles = [q.Quantity(180.0 * i / projections, q.deg) for i in range(projections)]
    in_beam, out_of_beam = 0 * q.mm, 5 * q.mm
    frame_bytes = camera.roi_width.magnitude * camera.roi_height.magnitude * 2
    walker = DirectoryWalker(root=directory, bytes_per_file=int(frame_bytes * 8))  # 8 frames per file
    dark_average, flat_average, average = Average(), Average(), Average()
    transmission = _Transmission(dark_average, flat_average)
    producers = _Producers()
    consumers = {"darks": [dark_average], "flats": [flat_average], "projections": [average, transmission]}

    def acquisition(name: str, state: str, flat: Any, count: int, **moves: Any) -> Acquisition:
        """``count`` frames, the shutter in ``state``, the flat motor at ``flat``; one line when recorded."""

        def produce() -> Iterable[Any]:
            begin = time.monotonic()
            _switch(shutter, state)
            _place(flat_motor, flat)
            progress = output.progress(count, name) if name == "projections" else None

            def frames() -> Iterator[Any]:
                producers.started()
                try:
                    recorded = 0
                    for frame in _frames(camera, count, bar=progress, **moves):
                        recorded += 1
                        yield frame
                    output.line(f"{name}: {recorded} frames recorded in {time.monotonic() - begin:.3f} s")
                finally:
                    producers.ended()

            return frames()

        return Acquisition(name, produce, consumers=consumers[name])

    experiment = Experiment(
        [
            acquisition("darks", "closed", in_beam, darks),
            acquisition("flats", "open", out_of_beam, flats),
            acquisition("projections", "open", in_beam, projections, motor=motor, angles=angles),
        ],
        walker,
    )
    viewer: Any = None
    if view:
        from concert.ext.viewers import PyplotImageViewer

        # The directory is fresh, so this run is the experiment's first: the PNG goes beside experiment.json.
        png = os.path.join(directory, experiment.name_fmt.format(0), "live-view.png")
        viewer = PyplotImageViewer(title="concert demo", filename=png).start()
        for entry in experiment.acquisitions:
            entry.consumers = (*entry.consumers, viewer)
        output.line(f"Live view: every frame goes to {viewer!r}, drawn into {png} (and in a window, if any)")
    run: Optional[concurrent.futures.Future] = None
    interrupt: Optional[KeyboardInterrupt] = None
    failure: Optional[Exception] = None
    restore: Any = None
    began = time.monotonic()
    try:
        with output:
            try:
                with camera.recording():
                    try:
                        run = experiment.run()
                        run.result()
                    except KeyboardInterrupt as error:  # the run was asked to stop with reason Ctrl-C
                        interrupt = error
                    except Exception as error:  # CancelledError included; the record says more
                        failure = error
                    restore = _ignore_ctrl_c()  # from here on the clean-up cannot be cut short
                    if run is not None:
                        concurrent.futures.wait([run], CLEANUP_TIMEOUT)
                    producers.wait(CLEANUP_TIMEOUT)  # the camera is still recording for them
            finally:
                _switch(shutter, "closed")
        elapsed = time.monotonic() - began
        summary = _summarise(directory, _read_record(directory), out)
        print(
            f"Wrote {summary['frames']} frames ({summary['bytes'] / 1e6:.1f} MB) to {summary['directory']} "
            f"in {elapsed:.2f} s; {output.count} device messages; "
            f"{_levels(dark_average, flat_average, average, transmission)}; {shutter!r} is {shutter.state}.",
            file=out,
            flush=True,
        )
    finally:
        if viewer is not None:
            viewer.close()  # draws what is pending (within its timeout): the counts are final
            print(
                f"Live view: {viewer.drawn} of {viewer.received} frames drawn ({viewer.dropped} dropped: "
                f"frames come faster than it draws); the last one drawn is in {viewer.filename}",
                file=out,
                flush=True,
            )
        _restore_ctrl_c(restore)
    if interrupt is not None:
        raise interrupt
    if failure is not None:
        raise failure
    return summary


def _levels(darks: Any, flats: Any, projections: Any, transmission: _Transmission) -> str:
    """The mean counts of the acquisitions averaged, and the transmission's range, for the last line."""
    means = [
        f"{name} {average.average.mean():.1f}"
        for name, average in (("dark", darks), ("flat", flats), ("projection", projections))
        if average.average is not None  # stopped, or never started
    ]
    levels = f"mean {', '.join(means)} counts" if means else "nothing averaged"
    if transmission.low is None:
        return f"{levels}; no transmission computed"
    return f"{levels}; flat-corrected transmission {transmission.low:.2f} to {transmission.high:.2f}"


def _summarise(directory: str, record: Optional[Dict[str, Any]], out: TextIO) -> Dict[str, Any]:
    """Print the table of what ``record`` says was written (with the files' sizes); return the summary."""
    from prettytable import PrettyTable

    if record is None:
        print("No experiment.json was written: nothing was recorded.", file=out, flush=True)
        return {"directory": directory, "frames": 0, "bytes": 0, "record": None}
    run_directory = os.path.join(directory, record["run"])
    table = PrettyTable(["acquisition", "files", "frames", "MB", "seconds", "MB/s", "outcome"])
    table.align["acquisition"] = table.align["outcome"] = "l"
    total_frames = total_bytes = 0
    for entry in record["acquisitions"]:
        folder = os.path.join(run_directory, entry["name"])
        files: List[str] = []
        if os.path.isdir(folder):
            files = sorted(name for name in os.listdir(folder) if name.endswith(".tif"))
        size = sum(os.path.getsize(os.path.join(folder, name)) for name in files)
        frames = entry.get("frames") or 0
        total_frames += frames
        total_bytes += size
        rate = size / 1e6 / entry["seconds"] if entry["seconds"] else float("inf")
        megabytes, seconds = f"{size / 1e6:.1f}", f"{entry['seconds']:.3f}"
        outcome = entry["outcome"].split(":")[0]
        table.add_row([entry["name"], len(files), frames, megabytes, seconds, f"{rate:.0f}", outcome])
    print(table, file=out)
    if record["outcome"] != "done":
        print(f"The run was {record['outcome']}: {record.get('reason', 'no reason given')}", file=out)
    out.flush()
    return {"directory": run_directory, "frames": total_frames, "bytes": total_bytes, "record": record}


class DemoCommand(SubCommand):
    """``concert demo``."""

    name = "demo"
    help = "run a short experiment on the simulated beamline and write its frames"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--directory", help="where to write (must not exist; default: a fresh one here)")
        parser.add_argument("--projections", type=int, default=32, help="number of projections (default 32)")
        parser.add_argument(
            "--view",
            action="store_true",
            help="show the frames live (matplotlib; without a display: a PNG in the run's directory)",
        )

    def run(self, directory: Optional[str] = None, projections: int = 32, view: bool = False) -> int:
        """Run the demo; exit status 0, 1 for a directory it cannot use, 2 for bad options, 130 on Ctrl-C."""
        if projections < 1:
            print(f"concert demo: --projections must be at least 1, not {projections}", file=sys.stderr)
            return 2
        if view:
            import importlib.util

            if importlib.util.find_spec("matplotlib") is None:
                print("concert demo: --view needs matplotlib: pip install concert[viewers]", file=sys.stderr)
                return 1
        try:
            run_demo(directory, projections, view=view)
        except (FileExistsError, DemoDirectoryError) as error:
            print(f"concert demo: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            restore = _ignore_ctrl_c()  # one more would only cut this summing-up short
            try:
                from concert.exit_hook import stop_everything

                stopped = stop_everything("Ctrl-C")  # anything still running, as at the end of a script
                also = f"; it also stopped {', '.join(stopped)}" if stopped else ""
                print(f"concert demo: stopped by Ctrl-C{also}", file=sys.stderr, flush=True)
            finally:
                _restore_ctrl_c(restore)
            return 130
        return 0
