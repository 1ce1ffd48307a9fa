"""The :class:`Device` base class (parameters plus exclusive access and stopping) and :func:`abort`.

:meth:`Device.abort` returns a :class:`~concert.futures.Future`, as the
legacy API's did, and :func:`abort` stops several devices at once and
returns their futures.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any, Dict, Iterable, List, Optional, Tuple

from concert import config, interrupts, operations
from concert.exceptions import DeviceError as DeviceError  # re-exported: where the legacy API has it
from concert.futures import Future
from concert.interrupts import protected
from concert.locking import ExclusiveLock, Slot
from concert.naming import describe_value
from concert.parameters import Parameterizable

__all__ = ["Device", "abort"]


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

    def abort(self) -> Future:
        """Stop whatever the device is doing, including operations submitted for it before.

        Returns a :class:`~concert.futures.Future` of the stop (the legacy
        API's form), which is already finished when ``abort()`` returns: the
        stop is over by then, in either mode (also under
        :data:`~concert.config.DISABLE_ASYNC`). Its result is ``None``; if a
        step of the stop failed, the future holds the first exception and
        ``abort().join()`` raises it (a failure nobody retrieves is logged
        when the future is garbage-collected).

        Operations submitted before the call and not started yet (queued in
        the pool, queued behind another move) end cancelled without touching
        the hardware; running ones get a cancel request with reason
        ``abort()`` (their stop actions run) and end cancelled, the reason in
        their ``CancelledError``. Then :meth:`_abort` stops the hardware and
        the device moves to its state after an abort. Nothing submitted
        before may run afterwards; work submitted afterwards runs normally.
        Waits for no lock and for no caller's code; callable from any thread
        at any time; calling it again, or with nothing running, does no harm.
        Every step is taken even when one fails.
        """
        future = Future(f"{self!r}.abort()")
        future.set_running_or_notify_cancel()
        try:
            self._stop_everything("abort()", emergency=False)
        except Exception as error:
            future.set_exception(error)
        else:
            future.set_result(None)
        return future

    def emergency_stop(self) -> Future:
        """Bring the device to a standstill now: like :meth:`abort`, then :meth:`_emergency_stop`.

        The reason given to stopped operations is ``emergency_stop()``.
        :meth:`_emergency_stop` runs even if a step before fails. Callable
        from any thread at any time, idempotent. Blocks until the device is
        stopped and raises what went wrong; returns an already finished
        :class:`~concert.futures.Future` (of ``None``), so that code written
        for the awaitable form, ``device.emergency_stop().join()``, works too.

        :raises: the first exception a stop action, :meth:`_abort` or
            :meth:`_emergency_stop` raised, after every step was taken.
        """
        self._stop_everything("emergency_stop()", emergency=True)
        future = Future(f"{self!r}.emergency_stop()")
        future.set_running_or_notify_cancel()
        future.set_result(None)
        return future

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


def abort(devices: Iterable[Any]) -> List[Future]:
    """Abort every device of ``devices`` at once; return their :meth:`Device.abort` futures, in order.

    The devices are stopped concurrently, each in a thread of its own (in the
    calling thread, one after the other, under
    :data:`~concert.config.DISABLE_ASYNC` or for a single device); this
    returns once every stop is over, so every future is finished. A stop
    that fails does not keep the others from happening: its exception is in
    its future (``concert.futures.wait(abort(devices))`` raises the first).
    Something in ``devices`` that is not a :class:`Device` gets a failed
    future holding a :class:`DeviceError` naming it; the devices are still
    stopped. A Ctrl-C while this waits is raised at once; the stops under
    way finish in their threads.
    """
    devices = list(devices)
    futures: List[Optional[Future]] = [None] * len(devices)

    def stop(index: int) -> None:
        device = devices[index]
        if isinstance(device, Device):
            futures[index] = device.abort()
            return
        refused = Future("abort(devices)")
        refused.set_running_or_notify_cancel()
        refused.set_exception(
            DeviceError(
                f"abort(devices): item {index}, {describe_value(device)}, is not a device; not stopped"
            )
        )
        futures[index] = refused

    if config.DISABLE_ASYNC or len(devices) < 2:
        for index in range(len(devices)):
            stop(index)
        return futures  # type: ignore[return-value]
    threads = []
    for index in range(1, len(devices)):
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(stop, index), name=f"concert-abort-{index}", daemon=False
        )
        thread.start()
        threads.append(thread)
    stop(0)
    for thread in threads:
        thread.join()
    return futures  # type: ignore[return-value]
