"""Module class giving the legacy names of the DISABLE switch a live value.

``concert.helpers.DISABLE`` and ``concert.async.DISABLE_ASYNC`` are properties
that read and write :data:`concert.config.DISABLE_ASYNC`, so setting any of
the three names, at any time, switches the same thing.
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
