"""The DISABLE switch: three names and an environment variable, effective whenever set."""

from __future__ import annotations

import importlib
import threading

import pytest

import concert.helpers
from concert import config
from concert.dispatcher import Dispatcher
from concert.exceptions import ConfigurationError
from concert.futures import async_
from tests.conftest import TIMEOUT, run_python

legacy = importlib.import_module("concert.async")


@async_
def where():
    return threading.get_ident()


@async_
def broken():
    raise ValueError("stored, not raised")


def set_switch(name: str, value: bool) -> None:
    if name == "helpers.DISABLE":
        concert.helpers.DISABLE = value
    elif name == "async.DISABLE_ASYNC":
        legacy.DISABLE_ASYNC = value
    else:
        config.DISABLE_ASYNC = value


NAMES = ["helpers.DISABLE", "async.DISABLE_ASYNC", "config.DISABLE_ASYNC"]


@pytest.mark.parametrize("name", NAMES)
def test_switch_on_and_off_at_run_time(name):
    previous = config.DISABLE_ASYNC
    try:
        set_switch(name, True)
        assert config.DISABLE_ASYNC and concert.helpers.DISABLE and legacy.DISABLE_ASYNC
        future = where()
        assert future.done() and future.result() == threading.get_ident()
        failed = broken()  # the exception is stored in the future, not raised here
        assert failed.done() and isinstance(failed.exception(), ValueError)

        set_switch(name, False)
        assert not (config.DISABLE_ASYNC or concert.helpers.DISABLE or legacy.DISABLE_ASYNC)
        assert where().result(TIMEOUT) != threading.get_ident()

        set_switch(name, True)  # and back again
        assert where().result() == threading.get_ident()
    finally:
        config.DISABLE_ASYNC = previous


def test_dispatcher_delivers_before_send_returns_when_disabled(synchronous):
    dispatcher = Dispatcher("sync")
    seen = []
    sender = object()
    dispatcher.subscribe(sender, "ping", lambda s: seen.append(threading.get_ident()))
    dispatcher.send(sender, "ping")
    assert seen == [threading.get_ident()]


def test_switching_on_with_messages_queued_keeps_order(asynchronous):
    dispatcher = Dispatcher("switch")
    sender = object()
    gate = threading.Event()
    order = []

    def handler(s):
        order.append(len(order))
        if len(order) == 1:
            assert gate.wait(TIMEOUT)

    dispatcher.subscribe(sender, "m", handler)
    for _ in range(3):
        dispatcher.send(sender, "m")  # the first one blocks the delivery thread
    config.DISABLE_ASYNC = True
    late = threading.Thread(target=dispatcher.send, args=(sender, "m"))
    late.start()
    gate.set()
    late.join(TIMEOUT)
    assert not late.is_alive()
    assert order == [0, 1, 2, 3]


def test_environment_variable_disables_in_a_fresh_process():
    code = (
        "import threading\n"
        "from concert import config\n"
        "from concert.helpers import async_, DISABLE\n"
        "print(config.DISABLE_ASYNC, DISABLE)\n"
        "f = async_(threading.get_ident)()\n"
        "print(f.done(), f.result() == threading.get_ident())\n"
    )
    on = run_python(code, {"CONCERT_DISABLE_ASYNC": "1"})
    assert on.returncode == 0, on.stderr
    assert on.stdout.split() == ["True", "True", "True", "True"]
    off = run_python(code, {"CONCERT_DISABLE_ASYNC": "0"})
    assert off.returncode == 0, off.stderr
    assert off.stdout.split()[:2] == ["False", "False"]
    assert off.stdout.split()[3] == "False"


def test_malformed_environment_variable_is_reported():
    result = run_python("import concert.config", {"CONCERT_MAX_WORKERS": "many"})
    assert result.returncode != 0
    assert "CONCERT_MAX_WORKERS='many'" in result.stderr
    assert ConfigurationError.__name__ in result.stderr


def test_legacy_names():
    assert getattr(concert.helpers, "async") is async_
    assert getattr(legacy, "async") is async_
    assert legacy.wait is concert.helpers.wait and legacy.dispatcher is concert.helpers.dispatcher
