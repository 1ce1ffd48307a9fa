"""The legacy module ``concert.async``, kept for scripts written against it.

``async`` is a keyword, so load it with ``importlib.import_module("concert.async")``.
It offers the same objects as :mod:`concert.helpers`; ``DISABLE_ASYNC`` here
reads and writes :data:`concert.config.DISABLE_ASYNC`, and the attribute
``async`` is :func:`concert.futures.async_`.
"""

from __future__ import annotations

import sys

from concert._legacy import SwitchModule
from concert.dispatcher import ANY, Dispatcher, dispatcher
from concert.exceptions import WaitError
from concert.futures import Future, async_, is_async, resolve, threaded, wait
from concert.polling import busy_wait, wait_until

__all__ = [
    "ANY",
    "Dispatcher",
    "Future",
    "WaitError",
    "async_",
    "busy_wait",
    "dispatcher",
    "is_async",
    "resolve",
    "threaded",
    "wait",
    "wait_until",
]

globals()["async"] = async_
sys.modules[__name__].__class__ = SwitchModule
