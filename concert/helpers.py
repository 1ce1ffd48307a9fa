"""What users import: asynchronous execution, messaging and the small helpers in one place.

``from concert.helpers import async_, wait, dispatcher`` is the usual start of
a script. This module is built from the ``__all__`` of its sources (see
``_SOURCES``: :mod:`concert.futures`, :mod:`concert.dispatcher`,
:mod:`concert.polling`, :mod:`concert.utils`, :mod:`concert.units`,
:mod:`concert.timing`, :mod:`concert.networking.endpoints`,
:mod:`concert.regions`), plus
:class:`~concert.exceptions.WaitError` and the names of ``_LAZY``
(:class:`~concert.imaging.ImageWithMetadata`,
:class:`~concert.pipelines.PrioItem`), loaded when first asked for because
their modules need numpy. It keeps the historical spellings working:

* ``getattr(concert.helpers, "async")`` is :func:`async_` (``async`` is a
  keyword, so it cannot be written as an attribute access);
* ``concert.helpers.DISABLE`` reads and writes :data:`concert.config.DISABLE_ASYNC`.
"""

from __future__ import annotations

import importlib
import sys

from concert import exceptions as _exceptions
from concert._legacy import SwitchModule, gather

_SOURCES = (
    "concert.futures",
    "concert.dispatcher",
    "concert.polling",
    "concert.utils",
    "concert.units",
    "concert.timing",
    "concert.networking.endpoints",
    "concert.regions",
)
# Names offered from modules that import numpy, loaded when first asked for.
_LAZY = {"ImageWithMetadata": "concert.imaging", "PrioItem": "concert.pipelines"}

__all__ = [
    *gather(globals(), *(importlib.import_module(name) for name in _SOURCES)),
    "WaitError",
    *_LAZY,
]
WaitError = _exceptions.WaitError

globals()["async"] = globals()["async_"]


def __getattr__(name: str) -> object:
    source = _LAZY.get(name)
    if source is not None:
        return getattr(importlib.import_module(source), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = SwitchModule
