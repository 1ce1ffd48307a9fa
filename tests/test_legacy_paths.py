"""SPEC §14: every module path seed 003 names exists, and offers the names the legacy API uses.

Each path is imported in a fresh interpreter as well, so that a module that
works only once something else was imported first fails here.
"""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from concert.exceptions import ConcertError
from tests.conftest import run_python

#: module path -> the names ``from <path> import <name>`` must find there.
PATHS = {
    "concert.coroutines.base": ["coroutine", "inject", "broadcast"],
    "concert.coroutines.sinks": ["null", "Result", "Accumulate"],
    "concert.coroutines.filters": [
        "downsize",
        "queue",
        "average_images",
        "sinograms",
        "flat_correct",
        "absorptivity",
        "stall",
        "backproject",
        "PickSlice",
        "Timer",
        "process",
    ],
    "concert.session.utils": [
        "dstate",
        "ddoc",
        "pdoc",
        "code_of",
        "get_default_table",
        "abort_awaiting",
        "check_emergency_stop",
    ],
    "concert.networking.base": ["SocketConnection", "CommData", "SocketType"],
    "concert.writers": ["TiffWriter"],
    "concert.typing": ["ArrayLike"],
    "concert.base": ["RunnableParameterizable"],
    "concert.storage": ["write_libtiff"],
}

PAIRS = [(path, name) for path, names in PATHS.items() for name in names]


@pytest.mark.parametrize("path", list(PATHS))
def test_the_module_path_imports(path):
    module = importlib.import_module(path)
    assert module.__name__ == path


@pytest.mark.parametrize("path, name", PAIRS, ids=[f"{path}.{name}" for path, name in PAIRS])
def test_the_legacy_name_is_there(path, name):
    namespace: dict = {}
    exec(f"from {path} import {name}", namespace)  # the statement a legacy script contains
    assert namespace[name] is not None


@pytest.mark.parametrize("path", list(PATHS))
def test_the_module_path_imports_in_a_fresh_interpreter(path):
    names = ", ".join(PATHS[path])
    result = run_python(f"from {path} import {names}")
    assert result.returncode == 0, result.stderr


def test_runnable_parameterizable_is_a_parameterizable():
    from concert.base import RunnableParameterizable
    from concert.parameters import Parameterizable

    assert issubclass(RunnableParameterizable, Parameterizable)


def test_write_libtiff_without_pylibtiff_says_what_is_missing(tmp_path):
    from concert.storage import write_libtiff

    assert callable(write_libtiff)
    if importlib.util.find_spec("libtiff") is None:  # the usual case: pylibtiff is not a dependency
        with pytest.raises((ConcertError, ImportError), match=r"(?i)libtiff"):
            write_libtiff(str(tmp_path / "frame.tif"), [[0, 1], [2, 3]])
