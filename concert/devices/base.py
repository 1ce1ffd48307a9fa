"""The :class:`Device` base class: parameters plus exclusive access and stopping."""

from __future__ import annotations

import threading
from typing import Any

from concert.locking import ExclusiveLock
from concert.parameters import Parameterizable

__all__ = ["Device"]


class Device(Parameterizable):
    """A piece of hardware: a :class:`~concert.parameters.Parameterizable` you can lock and stop.

    ``with device:`` (or ``async with device:``) gives the block exclusive
    access, see :mod:`concert.locking`. :meth:`abort` and
    :meth:`emergency_stop` stop whatever the device is doing.

    Subclasses implement :meth:`_abort` (stop the current operation) and may
    implement :meth:`_emergency_stop` (bring the hardware to a safe standstill).
    """

    def __init__(self) -> None:
        super().__init__()
        self._exclusive = ExclusiveLock(repr(self))
        # The abort generation (see concert.fences): bumped by abort() under
        # _abort_lock, read without it by operations as they start and go on.
        self._aborts = 0
        self._abort_lock = threading.Lock()

    def __enter__(self) -> Device:
        self._exclusive.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._exclusive.__exit__(*exc_info)

    async def __aenter__(self) -> Device:
        await self._exclusive.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._exclusive.__aexit__(*exc_info)

    def abort(self) -> None:
        """Stop whatever the device is doing, including operations queued for it.

        Calls :meth:`_abort` (which stops the hardware and returns once it
        stands still) after fencing off every operation begun before: those
        waiting for the device do not run, those running end with
        ``CancelledError`` (see :mod:`concert.fences`). It waits for no lock
        and for no caller's code. Callable from any thread at any time;
        calling it again, or with nothing running, does no harm.
        """
        with self._abort_lock:
            self._aborts += 1
        self._abort()

    def emergency_stop(self) -> None:
        """Bring the device to a standstill now: :meth:`abort`, then :meth:`_emergency_stop`.

        :meth:`_emergency_stop` runs even if :meth:`abort` fails. Callable
        from any thread at any time, idempotent.
        """
        try:
            self.abort()
        finally:
            self._emergency_stop()

    def _abort(self) -> None:
        """Stop the hardware's current operation (override; default: nothing to stop)."""

    def _emergency_stop(self) -> None:
        """Bring the hardware to a safe state (override; default: nothing beyond abort)."""
