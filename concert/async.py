"""The legacy module ``concert.async``, kept for scripts written against it.

``async`` is a keyword, so load it with ``importlib.import_module("concert.async")``.
It offers the same objects as :mod:`concert.helpers` (built from its ``__all__``); ``DISABLE_ASYNC`` here
reads and writes :data:`concert.config.DISABLE_ASYNC`, and the attribute
``async`` is :func:`concert.futures.async_`.
"""

from __future__ import annotations

import sys

from concert import helpers
from concert._legacy import SwitchModule, gather

__all__ = gather(globals(), helpers)

globals()["async"] = helpers.async_


def __getattr__(name: str) -> object:
    return getattr(helpers, name)  # what helpers loads lazily (ImageWithMetadata)


sys.modules[__name__].__class__ = SwitchModule
