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
from typing import Any, Callable, Dict, List, Optional, Sequence

from concert import locking
from concert.futures import Future, _current, _Scope, next_order
from concert.interrupts import protected
from concert.naming import describe_call

__all__ = ["abort", "device_call"]

_local = threading.local()  # .active: {device: its outermost device_call} of this thread (thread-owned)


def _active() -> Dict[Any, device_call]:
    try:
        return _local.active
    except AttributeError:
        _local.active = {}
        return _local.active


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

    # The outermost call on a device in a thread is the record of that call: it is in the
    # thread's _local.active while it runs, and nested calls on the device point to it through
    # _outer. Only its own thread reads or writes a record, except that abort() finds the
    # record's future in the device's _calls (under the lock manager).
    #   future  the future the call runs in (a scope of its own outside any future)
    #   owner   the lock owner it registered with (made for the call outside any owner)
    #   held    the locks registered for it, a tuple (a nested call adds and removes its own)
    #   slot    the slot it runs in, or None; the record itself is the slot's operation
    #   entered its number in the submission order once registered with the device, else 0
    #   depth   1 + the number of nested calls running
    __slots__ = (
        "_added",
        "_device",
        "_locks",
        "_outer",
        "_owner_reset",
        "_scope_reset",
        "_slot",
        "_what",
        "depth",
        "entered",
        "future",
        "held",
        "owner",
        "slot",
    )

    def __init__(
        self, device: Any, what: Any, locks: Sequence[locking.ExclusiveLock] = (), slot: bool = False
    ):
        self._device, self._what = device, what
        exclusive = getattr(device, "_exclusive", None)
        self._locks = tuple(locks) if exclusive is None else (exclusive, *locks)
        self._slot = getattr(device, "_slot", None) if slot else None

    def __repr__(self) -> str:
        return f"<device_call {_describe(self._what)!r}>"

    @protected
    def __enter__(self) -> None:
        device = self._device
        try:
            active = _local.active
        except AttributeError:
            active = _local.active = {}
        outer = active.get(device)
        self._outer = outer
        if outer is not None:
            self._enter_nested(outer)
            return
        future = _current.get()
        scope_reset = None
        if future is None:
            what = self._what  # the scope is named when first asked
            future = _Scope(what if callable(what) else functools.partial(_describe, what))
            scope_reset = _current.set(future)
        owner = locking.current_owner()
        owner_reset = None
        if owner is None:
            owner = locking.Owner(future)  # named after the call, for lock messages
            owner_reset = locking._owner.set(owner)
        self.future, self.owner, self.entered = future, owner, 0
        self._owner_reset, self._scope_reset = owner_reset, scope_reset
        locks, slot = self.held, self.slot = self._locks, self._slot
        try:
            # Fence, registration and -- if no one else has them -- the locks and the slot in one
            # hold of the manager, atomically with respect to abort(); else wait for them outside it.
            with locking._manager._lock:  # the manager's own lock, entered in C (we are protected)
                fence = getattr(device, "_fence", None)
                if fence is not None and future.order < fence[0]:
                    raise CancelledError(f"{_describe(self._what, future)} was stopped by {fence[1]}")
                # Read from __dict__, where abort() keeps them: getattr with a default would, on a
                # Parameterizable never aborted, build and throw away an AttributeError every call.
                try:
                    stoppers = device.__dict__.get("_stoppers")
                except AttributeError:  # an object without a __dict__ cannot be aborted either
                    stoppers = None
                if stoppers and threading.get_ident() not in stoppers:
                    _wait_for_stop(device)  # submitted after the stop: it starts once the stop is over
                self.entered = next_order()
                calls = getattr(device, "_calls", None)
                if calls is not None:
                    calls[future] = calls.get(future, 0) + 1
                started = locking.enter_now(owner, locks, slot, self)
            if not started:
                locking.enter(owner, locks, slot, self)  # waits, outside the manager
            self.depth = 1
        except BaseException:
            self.held, self.slot = (), None  # enter() and enter_now() took all or nothing
            self._unwind()
            raise
        active[device] = self

    @protected
    def _enter_nested(self, outer: device_call) -> None:
        missing = tuple(lock for lock in self._locks if lock not in outer.held)
        slot = self._slot if self._slot is not None and outer.slot is None else None
        if missing or slot is not None:
            locking.enter(outer.owner, missing, slot, outer)
            outer.held += missing
            if slot is not None:
                outer.slot = slot
        self._added = (missing, slot)
        outer.depth += 1

    @protected
    def __exit__(self, exc_type: Any, error: Any, traceback: Any) -> None:
        outer = self._outer
        if outer is not None:
            outer.depth -= 1
            missing, slot = self._added
            if missing or slot is not None:
                locking.leave(outer.owner, missing, slot)
                outer.held = tuple(lock for lock in outer.held if lock not in missing)
                if slot is not None:
                    outer.slot = None
            return
        device = self._device
        _local.active.pop(device, None)
        self._unwind()
        # Stopped while it ran: whatever the body switched on after the stop is stopped
        # again, and the call ends cancelled, naming the stop.
        fence = getattr(device, "_fence", None)
        if fence is not None and fence[0] > self.entered:
            _stop_again(device)
            if exc_type is None:
                raise CancelledError(f"{_describe(self._what, self.future)} was stopped by {fence[1]}")
        elif exc_type is None and self._scope_reset is not None and self.future._interrupted:
            raise CancelledError(self.future._stopped_text())

    @protected
    def _unwind(self) -> None:
        """Undo what __enter__ registered for the outermost call (what it got to, if it failed)."""
        device = self._device
        if self.entered:
            with locking._manager._lock:  # as in __enter__: one hold for the locks, the slot and the _calls
                try:
                    locking.unregister(self.owner, self.held, self.slot)
                finally:
                    calls = getattr(device, "_calls", None)  # guarded by the manager
                    if calls is not None:
                        future = self.future
                        count = calls.get(future, 0) - 1
                        if count > 0:
                            calls[future] = count
                        else:
                            calls.pop(future, None)
        if self._owner_reset is not None:
            locking._owner.reset(self._owner_reset)
        if self._scope_reset is not None:
            _current.reset(self._scope_reset)


@protected
def _stop_again(device: Any) -> None:
    device._abort()
    states_after_abort = getattr(device, "_states_after_abort", None)
    if states_after_abort is not None:
        states_after_abort()


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
