"""pytest plugin: ``pytest --disable-async`` runs the session with DISABLE_ASYNC on.

Registered through the ``pytest11`` entry point, so it is active wherever
Concert is installed. It imports nothing from Concert unless the option is
given, so it costs other projects' test runs nothing; the previous value of
the switch is restored when the session ends.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("concert").addoption(
        "--disable-async",
        action="store_true",
        default=False,
        help="run @async_ calls synchronously and deliver Dispatcher messages at once "
        "(sets concert.config.DISABLE_ASYNC)",
    )


_previous: list = []  # the switch's value before this session turned it on


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("disable_async", default=False):
        from concert import config as concert_config

        _previous.append(concert_config.DISABLE_ASYNC)
        concert_config.DISABLE_ASYNC = True


def pytest_unconfigure(config: pytest.Config) -> None:
    if _previous:
        from concert import config as concert_config

        concert_config.DISABLE_ASYNC = _previous.pop()


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("disable_async", default=False):
        return "concert: asynchronous execution disabled (--disable-async)"
    return ""
