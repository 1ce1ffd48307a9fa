"""The :class:`Device` base class: parameters plus exclusive access and stopping."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from concert import interrupts, operations
from concert.interrupts import protected
from concert.locking import ExclusiveLock, Slot
from concert.parameters import Parameterizable

__all__ = ["Device"]


class Device(Parameterizable):
    """A piece of hardware: a :class:`~concert.parameters.Parameterizable` you can lock and stop.

    ``with device:`` (or ``async with device:``) gives the block exclusive
    access, see :mod:`concert.locking`. :meth:`abort` and
    :meth:`emergency_stop` stop whatever the device is doing.

    Subclasses may implement :meth:`_abort` (stop the current operation) and
    :meth:`_emergency_stop` (bring the hardware to a safe standstill); the
    state a device is in after a stop is declared on its
    :class:`~concert.states.State` (``after_abort``). Beyond these and the
    parameters' accessors (``_get_<name>``, ``_set_<name>``), the base class
    of each family calls hardware hooks named ``_<verb>_real`` --
    ``_move_real``, ``_open_real``, ``_start_real``, ... -- that its module
    documents.
    """

    def __init__(self) -> None:
        super().__init__()
        self._exclusive = ExclusiveLock(repr(self))
        self._slot = Slot(repr(self))
        # Both guarded by concert.locking's manager (see concert.operations):
        # the last stop as (submission order, reason), and the futures of the
        # device calls running now, with how many calls each.
        self._fence: Optional[Tuple[int, str]] = None
        self._calls: Dict[Any, int] = {}
        interrupts.install()

    @protected
    def __enter__(self) -> Device:
        self._exclusive.__enter__()
        return self

    @protected
    def __exit__(self, *exc_info: Any) -> None:
        self._exclusive.__exit__(*exc_info)

    async def __aenter__(self) -> Device:
        await self._exclusive.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._exclusive.__aexit__(*exc_info)

    def abort(self) -> None:
        """Stop whatever the device is doing, including operations submitted for it before.

        Operations submitted before the call and not started yet (queued in
        the pool, queued behind another move) end cancelled without touching
        the hardware; running ones get a cancel request with reason
        ``abort()`` (their stop actions run) and end cancelled, the reason in
        their ``CancelledError``. Then :meth:`_abort` stops the hardware and
        the device moves to its state after an abort. Nothing submitted
        before may run afterwards; work submitted afterwards runs normally.
        Waits for no lock and for no caller's code; callable from any thread
        at any time; calling it again, or with nothing running, does no harm.

        :raises: the first exception a stop action or :meth:`_abort` raised,
            after every step was taken.
        """
        self._stop_everything("abort()", emergency=False)

    def emergency_stop(self) -> None:
        """Bring the device to a standstill now: like :meth:`abort`, then :meth:`_emergency_stop`.

        The reason given to stopped operations is ``emergency_stop()``.
        :meth:`_emergency_stop` runs even if a step before fails. Callable
        from any thread at any time, idempotent.
        """
        self._stop_everything("emergency_stop()", emergency=True)

    @protected
    def _stop_everything(self, reason: str, emergency: bool) -> None:
        def stop() -> None:
            try:
                self._abort()
            finally:
                try:
                    if emergency:
                        self._emergency_stop()
                finally:
                    self._states_after_abort()

        errors = operations.abort(self, reason, stop)
        if errors:
            raise errors[0]

    def _states_after_abort(self) -> None:
        for value in self._parameter_values.values():
            after_abort = getattr(value, "after_abort", None)
            if after_abort is not None:
                after_abort()

    def _abort(self) -> None:
        """Stop the hardware's current operation (override; default: nothing to stop).

        Must be idempotent: a stop calls it once, and again for a call that
        was running during the stop (whatever that call switched on after it
        is switched off). It must not wait for any lock or device call.
        """

    def _emergency_stop(self) -> None:
        """Bring the hardware to a safe state (override; default: nothing beyond abort)."""
