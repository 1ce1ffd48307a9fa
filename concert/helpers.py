"""What users import: asynchronous execution, messaging and the small helpers in one place.

``from concert.helpers import async_, wait, dispatcher`` is the usual start of
a script. This module is built from the ``__all__`` of
:mod:`concert.futures`, :mod:`concert.dispatcher`, :mod:`concert.polling`
and :mod:`concert.utils`, plus :class:`~concert.exceptions.WaitError` and
:class:`~concert.imaging.ImageWithMetadata` (loaded when first asked for: it
needs numpy). It keeps the historical spellings working:

* ``getattr(concert.helpers, "async")`` is :func:`async_` (``async`` is a
  keyword, so it cannot be written as an attribute access);
* ``concert.helpers.DISABLE`` reads and writes :data:`concert.config.DISABLE_ASYNC`.
"""

from __future__ import annotations

import importlib
import sys

from concert import exceptions as _exceptions
from concert._legacy import SwitchModule, gather

_SOURCES = ("concert.futures", "concert.dispatcher", "concert.polling", "concert.utils")

__all__ = [
    *gather(globals(), *(importlib.import_module(name) for name in _SOURCES)),
    "WaitError",
    "ImageWithMetadata",  # noqa: F822 - provided lazily by __getattr__ below
]
WaitError = _exceptions.WaitError

globals()["async"] = globals()["async_"]


def __getattr__(name: str) -> object:
    # ImageWithMetadata needs numpy; loading it only when asked keeps this module light.
    if name == "ImageWithMetadata":
        from concert.imaging import ImageWithMetadata

        return ImageWithMetadata
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = SwitchModule
