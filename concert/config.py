"""Run-time configuration of Concert.

Every setting is a plain module attribute: assign to it at any time and the
next operation that consults it sees the new value. Each one starts from the
environment variable ``CONCERT_<NAME>`` when that is set, otherwise from the
default documented below.

``DISABLE_ASYNC`` (``CONCERT_DISABLE_ASYNC``, default ``False``)
    Run every ``@async_`` call synchronously in the caller's thread and deliver
    every Dispatcher message before ``send`` returns. Consulted on every call,
    so it can be switched on and off while a program runs.
    ``concert.helpers.DISABLE`` and ``concert.async.DISABLE_ASYNC`` are the same
    switch under its legacy names.

``MAX_WORKERS`` (``CONCERT_MAX_WORKERS``, default 128)
    Size of the module-wide thread pool. Read once, when the pool is first
    needed.

``MAX_THREADS`` (``CONCERT_MAX_THREADS``, default 2048)
    The most threads the pool may run while some of them wait for other
    calls (see :mod:`concert.executor`). Read once, when the pool is first
    needed.

``LOCK_TIMEOUT`` (``CONCERT_LOCK_TIMEOUT``, seconds, default ``None``: wait forever)
    How long acquiring a device's exclusive lock may take.

``PROGRESS_BAR`` (``CONCERT_PROGRESS_BAR``, default ``True``)
    Show a tqdm progress bar for long operations.

``MOTOR_VELOCITY_SAMPLING_TIME`` (``CONCERT_MOTOR_VELOCITY_SAMPLING_TIME``, seconds, default 0.1)
    Interval between the two position readings from which a motor's velocity
    is computed. Stored in seconds so that importing this module never loads
    pint; read it as a quantity with ``value * q.s``.

``EXIT_FLUSH_TIMEOUT`` (``CONCERT_EXIT_FLUSH_TIMEOUT``, seconds, default 10)
    At interpreter exit, how long the dispatchers may take to deliver the
    messages still queued. Whatever is left after that is reported in the log.

A malformed environment variable raises :class:`concert.exceptions.ConfigurationError`
at import, naming the variable and its value.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, TypeVar

from concert.exceptions import ConfigurationError

_T = TypeVar("_T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _parse_positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _parse_seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a finite number of seconds >= 0")
    return value


def _parse_optional_seconds(text: str) -> Optional[float]:
    if text.strip().lower() in ("", "none"):
        return None
    return _parse_seconds(text)


def _from_env(name: str, parse: Callable[[str], _T], default: _T) -> _T:
    variable = "CONCERT_" + name
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        return parse(text)
    except ValueError as error:
        raise ConfigurationError(f"environment variable {variable}={text!r} is invalid: {error}") from None


DISABLE_ASYNC: bool = _from_env("DISABLE_ASYNC", _parse_bool, False)
MAX_WORKERS: int = _from_env("MAX_WORKERS", _parse_positive_int, 128)
MAX_THREADS: int = _from_env("MAX_THREADS", _parse_positive_int, 2048)
LOCK_TIMEOUT: Optional[float] = _from_env("LOCK_TIMEOUT", _parse_optional_seconds, None)
PROGRESS_BAR: bool = _from_env("PROGRESS_BAR", _parse_bool, True)
MOTOR_VELOCITY_SAMPLING_TIME: float = _from_env("MOTOR_VELOCITY_SAMPLING_TIME", _parse_seconds, 0.1)
EXIT_FLUSH_TIMEOUT: float = _from_env("EXIT_FLUSH_TIMEOUT", _parse_seconds, 10.0)
