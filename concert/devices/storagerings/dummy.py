"""A simulated storage ring whose current decays exponentially with its lifetime.

``StorageRing()`` needs no arguments: 200 mA at creation, 2.5 GeV, 10 h
lifetime, so the current is I₀·exp(-t/τ) with t the time since creation. The
decay is slow enough that a reading looks constant to a script; tests that
need exact values pass their own ``clock``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from concert.devices.storagerings import base
from concert.quantities import q

__all__ = ["StorageRing"]


class StorageRing(base.StorageRing):
    """A simulated storage ring.

    ``current``, ``energy`` and ``lifetime`` are quantities; ``clock`` returns
    the time in seconds (default :func:`time.monotonic`) and is called from
    whichever thread reads ``current``.
    """

    def __init__(
        self,
        current: Any = 200 * q.mA,
        energy: Any = 2.5 * q.GeV,
        lifetime: Any = 10 * q.h,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial_current = current.to(q.mA)
        self._energy = energy.to(q.GeV)
        self._lifetime = lifetime.to(q.h)
        self._clock = clock
        self._filled_at = clock()
        super().__init__()

    def _get_current(self) -> Any:
        elapsed = self._clock() - self._filled_at
        return self._initial_current * math.exp(-elapsed / self._lifetime.m_as(q.s))

    def _get_energy(self) -> Any:
        return self._energy

    def _get_lifetime(self) -> Any:
        return self._lifetime
