"""Fixtures shared by the test suite.

The suite runs twice in CI: as is, and with ``--disable-async``. Tests that
are about real concurrency take the ``asynchronous`` fixture, which switches
DISABLE_ASYNC off for their duration; tests about the synchronous mode take
``synchronous``. Every other test runs in whichever mode the session uses.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Dict, List, Optional

import pytest

from concert import config

#: Upper bound for any single wait in a test: a hang fails instead of stalling CI.
TIMEOUT = 30


# Settings of concert.config for one test; monkeypatch puts the old value back after it.


@pytest.fixture
def asynchronous(monkeypatch):
    monkeypatch.setattr(config, "DISABLE_ASYNC", False)


@pytest.fixture
def synchronous(monkeypatch):
    monkeypatch.setattr(config, "DISABLE_ASYNC", True)


@pytest.fixture
def no_progress_bar(monkeypatch):
    """No tqdm bars on standard error while the test runs (the processes' tests)."""
    monkeypatch.setattr(config, "PROGRESS_BAR", False)


class RecordingHandler(logging.Handler):
    """Collects records of one logger without passing them on (fast, thread-safe)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_of():
    """``log_of('concert.futures')`` returns a RecordingHandler attached to that logger."""
    attached = []

    def attach(name: str) -> RecordingHandler:
        logger = logging.getLogger(name)
        handler = RecordingHandler()
        attached.append((logger, handler, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        return handler

    yield attach
    for logger, handler, propagate, level in attached:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)


def run_python(
    code: str, env: Optional[Dict[str, str]] = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter; a hang fails after ``timeout`` seconds."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
