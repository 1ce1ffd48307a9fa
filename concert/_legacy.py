"""What the facades share: the live legacy DISABLE switch, and building them from ``__all__``.

``concert.helpers.DISABLE`` and ``concert.async.DISABLE_ASYNC`` are properties
that read and write :data:`concert.config.DISABLE_ASYNC`, so setting any of
the three names, at any time, switches the same thing. :func:`gather` fills
a facade from its sources' ``__all__``.
"""

from __future__ import annotations

import types

from concert import config


def _get(module: types.ModuleType) -> bool:
    return config.DISABLE_ASYNC


def _set(module: types.ModuleType, value: bool) -> None:
    config.DISABLE_ASYNC = bool(value)


class SwitchModule(types.ModuleType):
    """A module whose ``DISABLE`` and ``DISABLE_ASYNC`` forward to :mod:`concert.config`."""

    DISABLE = DISABLE_ASYNC = property(_get, _set)


def gather(namespace: dict, *modules: types.ModuleType) -> list:
    """Copy every name in each module's ``__all__`` into ``namespace``; return the names, in order.

    How the facades (:mod:`concert.helpers`, :mod:`concert.base`,
    :mod:`concert.async`) are built: from their sources' ``__all__``, never
    by hand. A name two modules export is taken from the first. A name a
    module provides only lazily (through its ``__getattr__``) is listed but
    not copied: the facade's own ``__getattr__`` fetches it when asked.
    """
    names: list = []
    for module in modules:
        for name in module.__all__:
            if name not in names:
                names.append(name)
                if name in vars(module):
                    namespace[name] = vars(module)[name]
    return names
