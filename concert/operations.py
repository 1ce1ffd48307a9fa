"""One pass through the machinery per device call: fence, locks, slot, cancellation.

Every device call -- a parameter write, a checked or transitioning method, a
motor's ``move`` -- runs its body inside :class:`device_call`. Entered by the
outermost layer, it does, once:

1. **Fence.** It refuses to start (``CancelledError``, naming the call and
   the stop) if the device was stopped by :func:`abort` after the operation
   was *submitted*: everything queued before an ``abort()`` or
   ``emergency_stop()`` -- in the pool, or behind another move on the same
   motor -- ends cancelled without touching the hardware. Submission order
   is :attr:`concert.futures.Future.order`; a blocking call made outside any
   future is submitted when it starts.
2. **Registration.** The device knows the operations running on it, so that
   :func:`abort` can ask each of them to stop, with its reason.
3. **Locks** (:mod:`concert.locking`): the device's exclusive lock, the
   parameter's, and -- for state-machine methods and motions -- the device's
   :class:`~concert.locking.Slot`, all in one atomic wait that a cancel
   request interrupts.

A nested device call on the same device in the same thread (a write inside
``move``, a state check inside a write) only adds the locks the outer one
does not have yet. Every call runs in one thread from start to end (see
:mod:`concert.executor`), so this per-thread record always belongs to
exactly one operation.

The operation's cancel requests are those of the future it runs in; a
blocking call outside any future runs in a *scope*, a future of its own
made for the duration of the call, so that ``abort()`` from another thread
and Ctrl-C stop it the same way.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import CancelledError
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from concert import locking
from concert.futures import Future, _current, next_order
from concert.interrupts import protected
from concert.naming import describe_call

__all__ = ["abort", "device_call"]

_local = threading.local()  # .active: {device: _Active} of the calling thread (thread-owned)


def _active() -> Dict[Any, _Active]:
    try:
        return _local.active
    except AttributeError:
        _local.active = {}
        return _local.active


class _Active:
    """The outermost device call of this thread on one device."""

    __slots__ = ("depth", "device", "entered", "future", "locks", "owner", "owner_reset", "slot")

    def __init__(self, device: Any, future: Future, owner: locking.Owner) -> None:
        self.device, self.future, self.owner = device, future, owner
        self.depth = 0
        self.entered = 0
        self.locks: List[locking.ExclusiveLock] = []
        self.slot: Optional[locking.Slot] = None
        self.owner_reset: Any = None  # resets the owner this call made for itself


def _describe(what: Any, future: Optional[Future] = None) -> str:
    if isinstance(what, tuple):
        return describe_call(*what)
    if callable(what):
        return what()
    if what is None:
        return future.name if future is not None else "device call"
    return str(what)


class device_call:  # noqa: N801 - used like the function-style context managers of contextlib
    """Run the body as one call on ``device`` (see the module documentation).

    ``what`` describes the call for messages: a string, a callable returning
    one, ``(func, args, kwargs)`` (both described only when a message needs
    it), or ``None`` for the name of the future the call runs in. ``locks`` are the
    exclusive locks to operate on (the device's own is added when it has
    one); ``slot`` asks for the device's one-at-a-time slot.

    :raises CancelledError: the device was stopped after the call was
        submitted, or the call was asked to stop while it waited.
    :raises LockError: see :func:`concert.locking.enter`.
    """

    __slots__ = ("_added", "_device", "_locks", "_record", "_reset", "_slot", "_what")

    def __init__(
        self, device: Any, what: Any, locks: Sequence[locking.ExclusiveLock] = (), slot: bool = False
    ):
        self._device, self._what = device, what
        exclusive = getattr(device, "_exclusive", None)
        self._locks = tuple(locks) if exclusive is None else (exclusive, *locks)
        self._slot = getattr(device, "_slot", None) if slot else None

    @protected
    def __enter__(self) -> None:
        active = _active()
        record = active.get(self._device)
        if record is not None:
            self._record, self._reset = record, None
            self._enter_nested(record)
            return
        self._reset = None
        future = _current.get()
        if future is None:
            future = Future(
                functools.partial(_describe, self._what)
            )  # a scope for a blocking call, named when asked
            future.set_running_or_notify_cancel()
            self._reset = _current.set(future)
        owner = locking.current_owner()
        owner_reset = None
        if owner is None:
            owner = locking.Owner(future)  # named after the call, for lock messages
            owner_reset = locking._owner.set(owner)
        record = _Active(self._device, future, owner)
        try:
            if not self._start(record):
                locking.enter(owner, self._locks, self._slot, record)  # waits, outside the manager
        except BaseException:
            if record.entered:
                self._finish(record)
            if owner_reset is not None:
                locking._owner.reset(owner_reset)
            if self._reset is not None:
                _current.reset(self._reset)
            raise
        record.locks = list(self._locks)
        record.slot = self._slot
        record.depth = 1
        record.owner_reset = owner_reset
        active[self._device] = record
        self._record = record

    @protected
    def _start(self, record: _Active) -> bool:
        """Check the fence and register with the device, atomically with respect to abort().

        In the same hold of the manager, take the locks and the slot if no
        one else has them (the common case: one hold of it per call, not
        two); returns whether it did. If not, the caller waits for them with
        :func:`concert.locking.enter`.
        """
        device = self._device
        with locking._manager._lock:  # the manager's own lock, entered in C (we are protected)
            fence = getattr(device, "_fence", None)
            if fence is not None and record.future.order < fence[0]:
                raise CancelledError(f"{_describe(self._what, record.future)} was stopped by {fence[1]}")
            stoppers = _stoppers_of(device)
            if stoppers and threading.get_ident() not in stoppers:
                _wait_for_stop(device)  # submitted after the stop: it starts once the stop is over
            record.entered = next_order()
            calls = getattr(device, "_calls", None)
            if calls is not None:
                calls[record.future] = calls.get(record.future, 0) + 1
            return locking.enter_now(record.owner, self._locks, self._slot, record)

    @protected
    def _finish(self, record: _Active) -> None:
        with locking._manager:
            self._unregister_call(record)

    def _unregister_call(self, record: _Active) -> None:
        # Caller holds locking._manager, which guards the device's _calls.
        calls = getattr(self._device, "_calls", None)
        if calls is None:
            return
        count = calls.get(record.future, 0) - 1
        if count > 0:
            calls[record.future] = count
        else:
            calls.pop(record.future, None)

    @protected
    def _enter_nested(self, record: _Active) -> None:
        missing = [lock for lock in self._locks if lock not in record.locks]
        slot = self._slot if self._slot is not None and record.slot is None else None
        added: Tuple[List[locking.ExclusiveLock], Optional[locking.Slot]] = ([], None)
        if missing or slot is not None:
            locking.enter(record.owner, missing, slot, record)
            added = (missing, slot)
            record.locks.extend(missing)
            if slot is not None:
                record.slot = slot
        self._added = added
        record.depth += 1

    @protected
    def __exit__(self, exc_type: Any, error: Any, traceback: Any) -> None:
        record = self._record
        if record.depth > 1:
            record.depth -= 1
            missing, slot = self._added
            if missing or slot is not None:
                locking.leave(record.owner, missing, slot)
                for lock in missing:
                    record.locks.remove(lock)
                if slot is not None:
                    record.slot = None
            return
        self._unwind(record)
        # Stopped while it ran: whatever the body switched on after the stop is stopped
        # again, and the call ends cancelled, naming the stop.
        fence = getattr(self._device, "_fence", None)
        if fence is not None and fence[0] > record.entered:
            _stop_again(self._device)
            if exc_type is None:
                raise CancelledError(f"{_describe(self._what, record.future)} was stopped by {fence[1]}")
        elif exc_type is None and self._reset is not None and record.future._interrupted:
            raise CancelledError(record.future._stopped_text())

    @protected
    def _unwind(self, record: _Active) -> None:
        _active().pop(self._device, None)
        with locking._manager._lock:  # as in _start(): one hold for the locks, the slot and the _calls
            try:
                locking.unregister(record.owner, record.locks, record.slot)
            finally:
                self._unregister_call(record)
        if record.owner_reset is not None:
            locking._owner.reset(record.owner_reset)
        if self._reset is not None:
            _current.reset(self._reset)


@protected
def _stop_again(device: Any) -> None:
    device._abort()
    states_after_abort = getattr(device, "_states_after_abort", None)
    if states_after_abort is not None:
        states_after_abort()


def _stoppers_of(device: Any) -> Optional[Dict[int, int]]:
    """The device's ``_stoppers`` (see :func:`abort`, which keeps them in its ``__dict__``), or ``None``.

    Read from ``__dict__``: ``getattr`` with a default would, on a
    :class:`~concert.parameters.Parameterizable` that never was aborted,
    build and throw away an ``AttributeError`` in every device call.
    """
    try:
        return device.__dict__.get("_stoppers")
    except AttributeError:  # an object without a __dict__ cannot be aborted either
        return None


def _wait_for_stop(device: Any) -> None:
    # Caller holds the manager. A cancel request on the waiting call ends the wait.
    from concert.futures import check_cancelled, on_cancel

    with on_cancel(locking._wake_waiters):
        while device._stoppers and threading.get_ident() not in device._stoppers:
            check_cancelled()
            locking._manager.wait(None)


@protected
def abort(device: Any, reason: str, stop: Callable[[], None]) -> List[BaseException]:
    """Fence ``device`` off, ask every operation running on it to stop, then call ``stop()``.

    Operations submitted before this call and not started yet will refuse
    to start; running ones get a cancel request with ``reason`` (their stop
    actions run here, in the calling thread); then ``stop()`` stops the
    hardware and sets the state. Device calls submitted meanwhile by other
    threads start only once all that is over, so that the stop cannot cut
    them short. Returns the exceptions raised on the way (every step is
    taken); it never waits for a lock held by anyone else's code.
    """
    me = threading.get_ident()
    with locking._manager:
        device._fence = (next_order(), reason)
        running = list(getattr(device, "_calls", {}))
        stoppers = device.__dict__.setdefault("_stoppers", {})
        stoppers[me] = stoppers.get(me, 0) + 1
        locking._manager.notify_all()  # calls queued for the device's locks look at the fence
    errors = []
    try:
        for future in running:
            try:
                future.request_cancel(reason)
            except Exception as error:
                errors.append(error)
        try:
            stop()
        except Exception as error:
            errors.append(error)
    finally:
        with locking._manager:
            count = stoppers[me] - 1
            if count:
                stoppers[me] = count
            else:
                del stoppers[me]
            locking._manager.notify_all()
    return errors
