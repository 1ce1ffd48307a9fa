"""The main job: ``concert demo`` in a fresh process leaves valid TIFF files with every frame."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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
        pages[name] = 0
        for file in files:
            with tifffile.TiffFile(file) as tiff:
                for page in tiff.pages:
                    image = page.asarray()
                    assert image.dtype.kind == "u" and image.ndim == 2
                    pages[name] += 1
    assert pages == {"darks": 4, "flats": 4, "projections": 32}
    assert len(list((run_directory / "projections").glob("*.tif"))) > 1  # multi-page files, several of them

    record = json.loads((run_directory / "experiment.json").read_text())
    assert [a["frames"] for a in record["acquisitions"]] == [4, 4, 32] and record["outcome"] == "done"
    assert "acquisition projections: 32 frames" in (run_directory / "experiment.log").read_text()
    for message in ("Shutter#1 -> open", "RotationMotor#1 -> moving", "Camera#1 -> recording"):
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
        type("Nothing", (SubCommand,), {"name": "nothing"})().run(None)


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
