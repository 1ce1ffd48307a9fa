"""Polling: wait until a condition holds, for hardware that cannot notify.

Prefer a Dispatcher message (:meth:`concert.dispatcher.Dispatcher.when`) or a
future where the device offers one; poll only what can only be polled.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from concert.exceptions import WaitError
from concert.naming import name_of
from concert.timeouts import optional_seconds, to_seconds

__all__ = ["busy_wait", "wait_until"]


def busy_wait(condition: Callable[[], Any], sleep_time: Any = None, timeout: Any = None) -> None:
    """Call ``condition()`` every ``sleep_time`` until it returns something true.

    Blocks the calling thread. ``sleep_time`` (default 0.1 s) and ``timeout``
    (default ``None``: forever) are seconds or time quantities. The condition
    is always checked at least once, and once more at the deadline.

    :raises WaitError: naming the condition, if it is still false after ``timeout``.
    :raises UnitError: for a ``sleep_time`` or ``timeout`` that is not a duration.
    :raises: whatever ``condition`` raises.
    """
    interval = 0.1 if sleep_time is None else to_seconds(sleep_time, "sleep_time")
    seconds = optional_seconds(timeout, "timeout")
    deadline = None if seconds is None else time.monotonic() + seconds
    while not condition():
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitError(f"condition {name_of(condition)!r} still false after {seconds:g} s")
            time.sleep(min(interval, remaining))
        else:
            time.sleep(interval)


#: Another name for :func:`busy_wait`.
wait_until = busy_wait
