"""What users import: asynchronous execution, messaging and the small helpers in one place.

``from concert.helpers import async_, wait, dispatcher`` is the usual start of
a script. The names are defined in :mod:`concert.futures`,
:mod:`concert.dispatcher` and :mod:`concert.polling`; this module gathers
them, together with the utilities of :mod:`concert.utils` and
:class:`~concert.imaging.ImageWithMetadata`, and keeps the historical
spellings working:

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
from concert.utils import (
    Bunch,
    CommData,
    Numeric,
    PerformanceTracker,
    PrioItem,
    SocketType,
    arange,
    expects,
    is_iterable,
    linspace,
    measure,
    memoize,
)

__all__ = [
    "ANY",
    "Bunch",
    "CommData",
    "Numeric",
    "PerformanceTracker",
    "PrioItem",
    "SocketType",
    "arange",
    "expects",
    "is_iterable",
    "linspace",
    "measure",
    "memoize",
    "CancelledError",
    "Dispatcher",
    "Future",
    "ImageWithMetadata",  # noqa: F822 - provided lazily by __getattr__ below
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


def __getattr__(name: str) -> object:
    # ImageWithMetadata needs numpy; loading it only when asked keeps this module light.
    if name == "ImageWithMetadata":
        from concert.imaging import ImageWithMetadata

        return ImageWithMetadata
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = SwitchModule
