"""What users import: the asynchronous-execution and messaging API in one place.

``from concert.helpers import async_, wait, dispatcher`` is the usual start of
a script. The names are defined in :mod:`concert.futures`,
:mod:`concert.dispatcher` and :mod:`concert.polling`; this module gathers
them and keeps the historical spellings working:

* ``getattr(concert.helpers, "async")`` is :func:`async_` (``async`` is a
  keyword, so it cannot be written as an attribute access);
* ``concert.helpers.DISABLE`` reads and writes :data:`concert.config.DISABLE_ASYNC`.
"""

from __future__ import annotations

import sys

from concert._legacy import SwitchModule
from concert.dispatcher import ANY, Dispatcher, dispatcher
from concert.exceptions import WaitError
from concert.futures import (
    CancelledError,
    Future,
    async_,
    current_future,
    is_async,
    on_cancel,
    resolve,
    threaded,
    wait,
)
from concert.polling import busy_wait, wait_until

__all__ = [
    "ANY",
    "CancelledError",
    "Dispatcher",
    "Future",
    "WaitError",
    "async_",
    "busy_wait",
    "current_future",
    "dispatcher",
    "is_async",
    "on_cancel",
    "resolve",
    "threaded",
    "wait",
    "wait_until",
]

globals()["async"] = async_
sys.modules[__name__].__class__ = SwitchModule
