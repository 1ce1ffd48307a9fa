"""The unit registry and its definition cache (concert/quantities.py)."""

import os
import subprocess
import sys

from tests.conftest import TIMEOUT

PROBE = "from concert.quantities import q; print((2 * q.mm).to(q.m), q.Quantity(5, 'deg').to(q.rad).units)"


def _probe(cache_home):
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True
    )


def test_the_registry_fills_its_cache_and_then_builds_from_it(tmp_path):
    first = _probe(tmp_path)
    cached = sorted(path.name for path in (tmp_path / "concert" / "pint").iterdir())
    assert any(name.endswith(".pickle") for name in cached)
    second = _probe(tmp_path)
    assert first.stdout == second.stdout == "0.002 meter radian\n"
    assert sorted(path.name for path in (tmp_path / "concert" / "pint").iterdir()) == cached


def test_a_half_written_cache_is_removed_and_the_registry_still_built(tmp_path):
    _probe(tmp_path)
    folder = tmp_path / "concert" / "pint"
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes()[:50])  # as if another process were still writing them
    result = _probe(tmp_path)
    assert result.stdout == "0.002 meter radian\n" and result.stderr == ""
    assert not folder.exists()


def test_an_unwritable_cache_home_only_costs_time(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert _probe(blocker).stdout == "0.002 meter radian\n"
