"""The main job: ``concert demo`` in a fresh process leaves valid TIFF files with every frame."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from concert.cli import SubCommand, main


def concert_command() -> str:
    found = shutil.which("concert", path=str(Path(sys.executable).parent)) or shutil.which("concert")
    if found is None:
        pytest.fail("the `concert` console script is not installed: pip install the project first")
    return found


def run(args, cwd):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    environment["CONCERT_PROGRESS_BAR"] = "0"
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def test_concert_demo_writes_every_announced_frame(tmp_path):
    result = run([concert_command(), "demo"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    announced = re.search(r"Wrote (\d+) frames \(.*\) to (\S+) in", result.stdout)
    assert announced, result.stdout
    frames, run_directory = int(announced.group(1)), Path(announced.group(2))
    assert frames == 4 + 4 + 32
    assert run_directory.is_dir() and tmp_path in run_directory.parents

    pages = {}
    for name in ("darks", "flats", "projections"):
        files = sorted((run_directory / name).glob("*.tif"))
        assert files, f"no TIFF files for {name}"
        pages[name] = []
        for file in files:
            with tifffile.TiffFile(file) as tiff:
                for page in tiff.pages:
                    image = page.asarray()
                    assert image.dtype.kind == "u" and image.ndim == 2
                    pages[name].append(image.astype(float))
    assert {name: len(images) for name, images in pages.items()} == {
        "darks": 4,
        "flats": 4,
        "projections": 32,
    }
    assert len(list((run_directory / "projections").glob("*.tif"))) > 1  # multi-page files, several of them

    # The simulated sample: darks dark, flats bright, the needle in the projections, moving with the angle.
    dark, flat = np.mean(pages["darks"], axis=0), np.mean(pages["flats"], axis=0)
    assert dark.mean() == pytest.approx(100, abs=1) and flat.mean() == pytest.approx(2100, rel=0.01)
    transmissions = [(projection - dark) / (flat - dark) for projection in pages["projections"]]
    needle_columns = []
    for transmission in transmissions:
        absorbing = np.nonzero((transmission < 0.5).sum(axis=0) > 50)[0]  # columns the needle darkens
        assert absorbing.size, "a projection without the needle"
        needle_columns.append(absorbing.mean())
    assert needle_columns[0] > needle_columns[16] + 100  # 0°: right of the axis; 90°: on it
    assert all(a > b for a, b in zip(needle_columns[:16], needle_columns[1:17]))  # moving left to 90°
    levels = re.search(
        r"mean dark (\d+\.\d), flat (\d+\.\d), projection (\d+\.\d) counts; "
        r"flat-corrected transmission (\d+\.\d\d) to (\d+\.\d\d); Shutter#1 is closed\.$",
        result.stdout.strip(),
    )
    assert levels, result.stdout
    mean_dark, mean_flat, mean_projection, low, high = map(float, levels.groups())
    assert mean_dark < 101 < mean_projection < mean_flat
    assert 0.05 < low < 0.25 and 1.0 < high < 1.2  # the needle's middle lets 13 % through

    record = json.loads((run_directory / "experiment.json").read_text())
    assert [a["frames"] for a in record["acquisitions"]] == [4, 4, 32] and record["outcome"] == "done"
    assert "acquisition projections: 32 frames" in (run_directory / "experiment.log").read_text()
    for message in (
        "Shutter#1 -> open",
        "RotationMotor#1 -> moving",
        "LinearMotor#1 -> moving",
        "Camera#1 -> recording",
    ):
        assert message in result.stdout
    assert "| projections |" in result.stdout


def test_demo_refuses_an_existing_directory(tmp_path):
    (tmp_path / "taken").mkdir()
    result = run([concert_command(), "demo", "--directory", "taken"], tmp_path)
    assert result.returncode == 1 and "exists already" in result.stderr
    assert list((tmp_path / "taken").iterdir()) == []


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and "concert " in capsys.readouterr().out
    assert main([]) == 2 and "demo" in capsys.readouterr().out
    with pytest.raises(NotImplementedError, match="'nothing'"):
        type("Nothing", (SubCommand,), {"name": "nothing"})().run()


def test_demo_runs_with_a_small_pool(tmp_path):
    environment = {"CONCERT_MAX_WORKERS": "1"}
    result = subprocess.run(
        [concert_command(), "demo", "--projections", "4"],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")},
            **environment,
            "CONCERT_PROGRESS_BAR": "0",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Wrote 12 frames" in result.stdout


# -- Ctrl-C, directories it cannot use, and output to a pipe or a terminal ------------------------


def demo_environment(**settings: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    environment.update(settings)
    return environment


class LineReader:
    """Reads a stream's lines in a thread, so that the test can wait for one with a timeout."""

    def __init__(self, stream) -> None:
        self.lines: list = []
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, condition, deadline: float) -> None:
        """Read lines until ``condition()`` holds after one of them; fail at ``deadline`` or the end."""
        while not condition():
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"not seen in time; the output so far:\n{''.join(self.lines)}")
            if line is None:
                pytest.fail(f"the output ended first:\n{''.join(self.lines)}")
            self.lines.append(line)

    def rest(self, deadline: float) -> str:
        """Wait for the end of the stream; return everything read."""
        self._thread.join(max(0.0, deadline - time.monotonic()))
        assert not self._thread.is_alive(), "the stream did not end in time"
        while True:
            line = self._queue.get_nowait()
            if line is None:
                return "".join(self.lines)
            self.lines.append(line)


def pages_in(folder: Path) -> int:
    count = 0
    for file in sorted(folder.glob("*.tif")):
        with tifffile.TiffFile(file) as tiff:
            count += len(tiff.pages)
    return count


@pytest.mark.parametrize("mode", [{}, {"CONCERT_DISABLE_ASYNC": "1"}], ids=["threads", "disable-async"])
def test_ctrl_c_closes_the_shutter_prints_the_summary_and_records_the_cancellation(tmp_path, mode):
    deadline = time.monotonic() + 25
    directory = tmp_path / "demo"
    projections = directory / "scan_0000" / "projections"
    with open(tmp_path / "stderr", "w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "concert", "demo", "--projections", "2000", "--directory", str(directory)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=demo_environment(CONCERT_PROGRESS_BAR="0", **mode),
        )
        try:
            reader = LineReader(process.stdout)
            # Under way: the motor is stepping and at least two multi-page files (9+ frames) exist.
            reader.wait_for(
                lambda: (
                    any("RotationMotor#1 -> moving" in line for line in reader.lines)
                    and len(list(projections.glob("*.tif"))) >= 2
                ),
                deadline,
            )
            process.send_signal(signal.SIGINT)
            returncode = process.wait(max(0.0, deadline - time.monotonic()))
            out = reader.rest(deadline)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        err = stderr.read()

    assert returncode == 130, out + err
    assert "Traceback" not in err and err.splitlines() == ["concert demo: stopped by Ctrl-C"], err
    record = json.loads((directory / "scan_0000" / "experiment.json").read_text())
    assert record["outcome"] == "cancelled"
    assert record["reason"] == "Experiment(darks, flats, projections).run() was stopped by Ctrl-C"
    entries = {entry["name"]: entry for entry in record["acquisitions"]}
    assert [entries[name]["outcome"] for name in ("darks", "flats")] == ["done", "done"]
    assert entries["projections"]["outcome"] == "cancelled"
    assert entries["projections"]["reason"] == record["reason"]
    for name, entry in entries.items():  # what the record says is what is on disk
        assert entry["frames"] == pages_in(directory / "scan_0000" / name), name
    assert 9 <= entries["projections"]["frames"] < 2000

    table_row = re.search(r"^\| projections \|\s+(\d+)\s+\|\s+(\d+)\s+\|.*\| cancelled \|$", out, re.M)
    assert table_row, out  # the summary table, with the frames written
    assert int(table_row.group(2)) == entries["projections"]["frames"]
    total = sum(entry["frames"] for entry in entries.values())
    assert f"Wrote {total} frames" in out
    assert "The run was cancelled: Experiment(darks, flats, projections).run() was stopped by Ctrl-C" in out
    assert "Shutter#1 -> closed" in out and out.rstrip().endswith("Shutter#1 is closed.")


@pytest.mark.parametrize("case", ["proc", "existing file", "below a file", "no permission"])
def test_a_directory_the_demo_cannot_use_gives_one_line_and_status_1(tmp_path, case):
    (tmp_path / "afile").write_text("not a directory")
    if case == "no permission":
        if os.geteuid() == 0:
            pytest.skip("root may write anywhere; /proc stands for a directory it cannot write")
        (tmp_path / "locked").mkdir(mode=0o500)
    directory, message = {
        "proc": ("/proc/x", "cannot create the directory '/proc/x': "),
        "existing file": (str(tmp_path / "afile"), "exists already"),
        "below a file": (str(tmp_path / "afile" / "demo"), "cannot create the directory "),
        "no permission": (str(tmp_path / "locked" / "demo"), "Permission denied"),
    }[case]
    result = subprocess.run(
        [sys.executable, "-m", "concert", "demo", "--directory", directory],
        env=demo_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("concert demo: ") and message in line and "Traceback" not in line
    assert result.stdout == ""
    assert (tmp_path / "afile").read_text() == "not a directory"


def test_on_a_pipe_the_output_is_plain_lines_one_per_acquisition(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "concert", "demo", "--directory", str(tmp_path / "demo")],
        env=demo_environment(CONCERT_PROGRESS_BAR="1"),  # the bar is on, but stdout is no terminal
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\r" not in result.stdout and "\r" not in result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) <= 2 * 32 + 30  # two motor messages per projection, a few more, the table
    for name, count in (("darks", 4), ("flats", 4), ("projections", 32)):
        [line] = [line for line in lines if line.startswith(f"{name}: ")]
        assert re.fullmatch(rf"{name}: {count} frames recorded in \d+\.\d+ s", line)
    assert "| projections |" in result.stdout and "Shutter#1 is closed." in lines[-1]


def test_on_a_terminal_the_projections_get_a_progress_bar(tmp_path):
    deadline = time.monotonic() + 25
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # rows, columns
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "concert", "demo", "--directory", str(tmp_path / "demo")],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            env=demo_environment(CONCERT_PROGRESS_BAR="1"),
        )
    finally:
        os.close(terminal)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "the demo did not end in time"
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other side was closed, the demo ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        returncode = process.wait(max(0.0, deadline - time.monotonic()))
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    shown = b"".join(chunks).decode(errors="replace")
    assert returncode == 0, shown
    assert re.search(r"\rprojections:\s+\d+%\|.*\| \d+/32 \[", shown), shown
    assert "Shutter#1 is closed." in shown and "Traceback" not in shown


def test_a_reader_that_goes_away_ends_the_demo_quietly_with_sigpipes_status(tmp_path):
    # concert demo | head -1: the demo still writes every frame, prints no traceback, exits 141.
    process = subprocess.Popen(
        [concert_command(), "demo", "--directory", str(tmp_path / "scan")],
        cwd=tmp_path,
        env=demo_environment(CONCERT_PROGRESS_BAR="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout.readline().startswith(b"Simulated beamline")
        process.stdout.close()  # as head does once it has its line
        assert process.wait(timeout=120) == 128 + signal.SIGPIPE
        assert process.stderr.read() == b""
    finally:
        process.kill()
        process.wait(timeout=120)
        process.stderr.close()
    pages = 0
    for file in (tmp_path / "scan").rglob("*.tif"):
        with tifffile.TiffFile(file) as tiff:
            pages += len(tiff.pages)
    assert pages == 4 + 4 + 32
