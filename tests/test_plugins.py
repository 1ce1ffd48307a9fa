"""The test-runner plugins: ``pytest --disable-async`` and ``nosetests --disable-async``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = """
from concert import config

def test_mode():
    assert config.DISABLE_ASYNC is {expected}
"""


def run(command, cwd):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flag, expected", [(["--disable-async"], True), ([], False)])
def test_pytest_plugin(tmp_path: Path, flag, expected):
    (tmp_path / "test_mode.py").write_text(CHECK.format(expected=expected))
    result = run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *flag, "test_mode.py"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert ("asynchronous execution disabled" in result.stdout) is expected


def nosetests() -> str:
    found = shutil.which("nosetests", path=str(Path(sys.executable).parent)) or shutil.which("nosetests")
    if found is None:
        pytest.fail("nosetests is not installed: install the test extras (pip install '.[test]')")
    return found


@pytest.mark.parametrize("flag, expected", [(["--disable-async"], True), ([], False)])
def test_nose_plugin(tmp_path: Path, flag, expected):
    (tmp_path / "test_mode.py").write_text(CHECK.format(expected=expected))
    result = run([nosetests(), *flag, "test_mode.py"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 1 test" in result.stderr and "OK" in result.stderr
