"""The one pint unit registry of Concert: ``from concert.quantities import q``.

Every quantity Concert makes or accepts comes from this registry, so values
from different modules can be compared and converted. Importing this module
loads pint; the concurrency core never does.

Parsing pint's unit definitions takes about a third of a second, paid by
every script and shell that uses units. The parsed definitions are therefore
kept in pint's own disk cache, in ``$XDG_CACHE_HOME/concert/pint`` (default
``~/.cache/concert/pint``), which makes the registry about seven times
faster to build. The cache is only an accelerator: if it cannot be used --
the folder cannot be written, or a file in it is unreadable (pint writes
them in place, so a process may read one another is still writing) -- the
folder is removed and the registry is built from the definitions, exactly
as without a cache.
"""

from __future__ import annotations

import logging
import os
import shutil

import pint

__all__ = ["q"]

LOG = logging.getLogger(__name__)


def _cache_folder() -> str:
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, "concert", "pint")


def _registry() -> pint.UnitRegistry:
    folder = _cache_folder()
    try:
        return pint.UnitRegistry(cache_folder=folder)
    except Exception as error:  # the cache only speeds things up: never let it stop an import
        LOG.debug("pint's definition cache in %s cannot be used (%s); building without it", folder, error)
        shutil.rmtree(folder, ignore_errors=True)
        return pint.UnitRegistry()


#: The unit registry: ``2 * q.mm``, ``q.Quantity(5, 'deg')``.
q = _registry()
# Quantities that come back from pickle (multiprocessing, files) belong to it too.
pint.set_application_registry(q)
