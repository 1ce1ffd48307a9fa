"""Module class giving the legacy names of the DISABLE switch a live value.

``concert.helpers.DISABLE`` and ``concert.async.DISABLE_ASYNC`` are properties
that read and write :data:`concert.config.DISABLE_ASYNC`, so setting any of
the three names, at any time, switches the same thing.
"""

from __future__ import annotations

import types

from concert import config


class SwitchModule(types.ModuleType):
    """A module whose ``DISABLE`` and ``DISABLE_ASYNC`` forward to :mod:`concert.config`."""

    @property
    def DISABLE(self) -> bool:  # noqa: N802 - the historical name
        return config.DISABLE_ASYNC

    @DISABLE.setter
    def DISABLE(self, value: bool) -> None:  # noqa: N802
        config.DISABLE_ASYNC = bool(value)

    @property
    def DISABLE_ASYNC(self) -> bool:  # noqa: N802
        return config.DISABLE_ASYNC

    @DISABLE_ASYNC.setter
    def DISABLE_ASYNC(self, value: bool) -> None:  # noqa: N802
        config.DISABLE_ASYNC = bool(value)
