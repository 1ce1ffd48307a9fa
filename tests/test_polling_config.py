"""busy_wait/wait_until, duration arguments and the environment overrides of concert.config."""

from __future__ import annotations

import json

import pytest

from concert.exceptions import UnitError, WaitError
from concert.polling import busy_wait, wait_until
from concert.quantities import q
from concert.timeouts import to_seconds
from tests.conftest import run_python


def test_busy_wait_returns_once_condition_holds():
    calls = []

    def third_time_lucky():
        calls.append(1)
        return len(calls) >= 3

    busy_wait(third_time_lucky, sleep_time=1 * q.ms, timeout=30 * q.s)
    assert len(calls) == 3
    assert wait_until is busy_wait


def test_busy_wait_times_out_naming_the_condition():
    def never_ready():
        return False

    with pytest.raises(WaitError, match=r"never_ready.*0\.02 s"):
        busy_wait(never_ready, sleep_time=5 * q.ms, timeout=20 * q.ms)


def test_busy_wait_propagates_condition_errors():
    def broken():
        raise OSError("device unplugged")

    with pytest.raises(OSError, match="unplugged"):
        busy_wait(broken, timeout=1)


@pytest.mark.parametrize("bad", [1 * q.mm, "0.1", None.__class__, float("nan") * q.s])
def test_bad_sleep_times_are_refused(bad):
    with pytest.raises(UnitError, match="sleep_time"):
        busy_wait(lambda: True, sleep_time=bad)


def test_to_seconds():
    assert to_seconds(250 * q.ms, "t") == 0.25
    assert to_seconds(2, "t") == 2.0
    assert to_seconds(-1, "t") == 0.0
    with pytest.raises(UnitError, match="t=True"):
        to_seconds(True, "t")


CONFIG = (
    "import json; from concert import config as c; print(json.dumps([c.DISABLE_ASYNC, c.MAX_WORKERS, "
    "c.LOCK_TIMEOUT, c.PROGRESS_BAR, c.MOTOR_VELOCITY_SAMPLING_TIME, c.EXIT_FLUSH_TIMEOUT]))"
)


def test_config_defaults_and_environment_overrides():
    defaults = run_python(CONFIG)
    assert defaults.returncode == 0, defaults.stderr
    assert json.loads(defaults.stdout) == [False, 128, None, True, 0.1, 10.0]
    overridden = run_python(
        CONFIG,
        {
            "CONCERT_DISABLE_ASYNC": "yes",
            "CONCERT_MAX_WORKERS": "7",
            "CONCERT_LOCK_TIMEOUT": "2.5",
            "CONCERT_PROGRESS_BAR": "off",
            "CONCERT_MOTOR_VELOCITY_SAMPLING_TIME": "0.5",
            "CONCERT_EXIT_FLUSH_TIMEOUT": "1",
        },
    )
    assert overridden.returncode == 0, overridden.stderr
    assert json.loads(overridden.stdout) == [True, 7, 2.5, False, 0.5, 1.0]


@pytest.mark.parametrize(
    "variable, value",
    [("MAX_WORKERS", "0"), ("LOCK_TIMEOUT", "-1"), ("PROGRESS_BAR", "maybe"), ("EXIT_FLUSH_TIMEOUT", "inf")],
)
def test_bad_environment_values_name_variable_and_value(variable, value):
    result = run_python("import concert.config", {f"CONCERT_{variable}": value})
    assert result.returncode != 0
    assert f"CONCERT_{variable}={value!r}" in result.stderr and "ConfigurationError" in result.stderr
