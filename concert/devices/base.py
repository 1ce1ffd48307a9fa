"""The :class:`Device` base class: parameters plus exclusive access and stopping."""

from __future__ import annotations

from typing import Any, Dict

from concert.futures import Future
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
        # Futures of the checked/transitioning operations now running; filled
        # and emptied by concert.states. dict ops are atomic; abort() copies.
        self._running: Dict[Future, None] = {}

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
        """Stop the current operation: call :meth:`_abort`, then cancel the running operations.

        Blocks until they have stopped. Callable from any thread at any time;
        calling it again, or with nothing running, does no harm.
        """
        self._abort()
        for future in list(self._running):
            future.cancel()

    def emergency_stop(self) -> None:
        """Bring the device to a standstill now: :meth:`abort`, then :meth:`_emergency_stop`.

        Callable from any thread at any time, idempotent.
        """
        self.abort()
        self._emergency_stop()

    def _abort(self) -> None:
        """Stop the hardware's current operation (override; default: nothing to stop)."""

    def _emergency_stop(self) -> None:
        """Bring the hardware to a safe state (override; default: nothing beyond abort)."""
