"""Extensions add ``concert`` commands by declaring an entry point -- tested with real packages pip installs.

``extension_package/`` is a tiny extension (``concert hello``, written the
legacy way: ``SubCommand(name, opts)`` and ``run(**options)``), and
``extension_package/broken/`` a package with three commands that go wrong:
one whose module cannot be imported, one with an impossible option, one
that tries to replace ``concert ls``.
pip installs both, once for this module, into a directory of their own
(``--target``) that the ``concert`` subprocesses find on ``PYTHONPATH``; the
sources are copied first so that the build leaves nothing in the checkout.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

from tests.conftest import TIMEOUT

PACKAGES = Path(__file__).parent / "extension_package"
BUILD_LEFTOVERS = shutil.ignore_patterns("broken", "build", "*.egg-info", "__pycache__")

pytestmark = pytest.mark.timeout(60)  # pip builds two wheels once (about 3 s), then each test is quick


def why_wheels_cannot_be_built() -> Optional[str]:
    """Why pip --no-build-isolation cannot build the packages in this environment, or None if it can."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed"
    version = importlib.metadata.version("setuptools")
    major_minor = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if major_minor >= (70, 1) or importlib.util.find_spec("wheel") is not None:
        return None  # setuptools 70.1 builds wheels itself; older ones need the wheel package
    return f"setuptools {version} builds wheels only with the 'wheel' package, which is not installed"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The directory the two example packages are installed in."""
    reason = why_wheels_cannot_be_built()
    if reason is not None:
        pytest.skip(f"cannot build the example extension: {reason}")
    sources = tmp_path_factory.mktemp("sources")
    shutil.copytree(PACKAGES, sources / "hello", ignore=BUILD_LEFTOVERS)
    shutil.copytree(PACKAGES / "broken", sources / "broken", ignore=BUILD_LEFTOVERS)
    target = tmp_path_factory.mktemp("site-packages")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(sources / "hello"),
            str(sources / "broken"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(path.name for path in target.glob("*.dist-info")) == [
        "concert_broken_extension-1.0.dist-info",
        "concert_hello-1.0.dist-info",
    ]
    return target


def concert(site: Optional[Path], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CONCERT_")}
    environment["CONCERT_SESSION_DIR"] = str(tmp_path / "sessions")
    if site is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "concert", *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_an_installed_extension_adds_its_command(site, tmp_path):
    result = concert(site, tmp_path, "hello", "--who", "you")
    assert (result.returncode, result.stdout, result.stderr) == (0, "Hello, you!\n", "")
    assert concert(site, tmp_path, "hello").stdout == "Hello, world!\n"
    failed = concert(site, tmp_path, "hello", "--who", " ")
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr == "concert hello: --who is empty: say whom to greet\n"
    listed = concert(site, tmp_path, "--help").stdout
    assert re.search(r"\n    hello +Greet someone \(an example of an extension's command\)\.\n", listed), (
        listed
    )
    assert "--who WHO   whom to greet (default: world)" in concert(site, tmp_path, "hello", "--help").stdout


def test_without_the_package_the_command_does_not_exist(tmp_path):
    result = concert(None, tmp_path, "hello")
    assert result.returncode == 2 and "invalid choice: 'hello'" in result.stderr


def test_an_extension_that_cannot_be_imported_breaks_only_itself(site, tmp_path):
    listed = concert(site, tmp_path, "ls")
    assert listed.returncode == 0 and listed.stderr == ""
    assert listed.stdout.startswith("There are no sessions in")
    assert concert(site, tmp_path, "hello", "--who", "you").stdout == "Hello, you!\n"
    broken = concert(site, tmp_path, "broken")
    assert (broken.returncode, broken.stdout) == (1, "")
    assert broken.stderr == (
        "concert broken: this command cannot be loaded: concert_broken:BrokenCommand raised "
        "ModuleNotFoundError: No module named 'concert_module_that_is_not_installed'\n"
    )
    bad = concert(site, tmp_path, "badopts", "--count", "3")
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr == (
        "concert badopts: this command cannot be loaded: the options of concert_misfits:BadOptionsCommand "
        "are wrong: ValueError: 'int' is not callable\n"
    )
    help_text = concert(site, tmp_path, "--help")
    assert help_text.returncode == 0 and "Traceback" not in help_text.stdout + help_text.stderr
    listed = help_text.stdout
    assert re.search(r"\n    broken +\(cannot be loaded: concert_broken:BrokenCommand raised", listed)
    assert re.search(r"\n    badopts +\(cannot be loaded: the options of", listed)
    assert "\n    ls  " in listed and "\n    init  " in listed


def test_an_extension_cannot_replace_one_of_concerts_own_commands(site, tmp_path):
    listed = concert(site, tmp_path, "ls")
    assert "imposter" not in listed.stdout and listed.stdout.startswith("There are no sessions in")
    help_text = concert(site, tmp_path, "--help").stdout
    assert (
        "ignored extension commands:\n"
        "  ls = concert_misfits:ImposterCommand is ignored: 'ls' is one of Concert's own commands\n"
    ) in help_text
