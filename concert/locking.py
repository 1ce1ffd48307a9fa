"""Exclusive access to devices and parameter values: ``with motor, pump['foo']:``.

The model, in four rules:

1. Work runs on behalf of an *owner*, a token kept in a context variable. The
   outermost ``with`` in a context creates one; futures submitted inside the
   block copy the context (see :mod:`concert.futures`) and so act as the same
   owner. A write or device operation started outside any block gets a fresh
   owner for its duration, which nested work inherits.
2. Holding an :class:`ExclusiveLock` (entering ``with``) waits until no other
   owner holds it or runs an operation on it; it is reentrant for its owner.
   Owners waiting to hold it get it first come, first served: a thread
   re-entering ``with pump:`` in a loop queues up behind the others.
3. An operation (a parameter write, a device method such as ``move``) waits
   until no other owner holds the lock -- or waits to hold it, so that a
   stream of operations cannot keep a ``with`` block out for ever (an owner
   that already runs operations on the lock carries on: the block waits for
   exactly those). Operations of different owners do not exclude each
   other. Reads take nothing and never wait.
4. A wait that would close a cycle -- owner A waits for B, which (transitively)
   waits for A -- raises :class:`~concert.exceptions.LockError` naming both
   objects instead of hanging; this is deadlock *detection*, so the order in
   which a script nests its ``with`` blocks is free. Every wait also honours
   :data:`concert.config.LOCK_TIMEOUT`.

5. Checked and transitioning methods of a device (and a motor's motions) run
   one at a time, whatever their owner: each device has one :class:`Slot`,
   shared by all its state machines, that such an
   operation holds for its duration. Waiting operations get it in the order
   they asked, except that one still waiting for a lock lets those behind it
   that could start go first. Waiting for a slot goes through the same
   manager, so the deadlock check and ``LOCK_TIMEOUT`` cover it too: there is
   no lock the detector cannot see.

All lock state lives under one module-wide condition, ``_manager``: one lock
to reason about, and a consistent snapshot for the deadlock check. Hardware
operations take milliseconds or more, so sharing it costs nothing that
matters. Every wait is a Concert wait: a pool thread waiting here lets the
pool start another (:func:`concert.executor.blocked`), and a cancel request
on the waiting operation ends the wait with ``CancelledError``. The
bookkeeping around a wait is protected from Ctrl-C
(:func:`concert.interrupts.protected`), so an interrupt never leaves a lock
half taken or half released.

Devices enter this module through :mod:`concert.operations`, once per device call.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import itertools
import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from concert import config, interrupts
from concert.exceptions import LockError
from concert.executor import blocked
from concert.interrupts import protected
from concert.timeouts import optional_seconds

__all__ = ["ExclusiveLock", "Owner", "Slot", "current_owner", "enter", "enter_now", "leave", "unregister"]


class Owner:
    """The identity on whose behalf work runs (see rule 1).

    ``what`` says in user terms what the owner is, for error messages: a
    string (``the `with` block at scan.py:12``) or an object whose ``name``
    says it (the future of a device call: ``LinearMotor#1.move(+5 mm)``).
    The thread that created the owner is recorded too.
    """

    __slots__ = ("number", "thread", "what")
    _numbers = itertools.count(1)

    def __init__(self, what: Any = None) -> None:
        self.number = next(Owner._numbers)
        self.thread = threading.current_thread().name
        self.what = what

    def __repr__(self) -> str:
        what = self.what
        if what is None:
            text = f"owner #{self.number}"
        else:
            text = what if isinstance(what, str) else str(getattr(what, "name", what))
        return f"{text} (thread {self.thread})"


_CONCERT_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_CONTEXTLIB = contextlib.__file__


def _block_text(lock: ExclusiveLock) -> str:
    """``the `with LinearMotor#1:` block at scan.py:12``: the caller's line outside Concert."""
    frame = sys._getframe(1)
    while frame.f_back is not None and (
        frame.f_code.co_filename.startswith(_CONCERT_DIR) or frame.f_code.co_filename == _CONTEXTLIB
    ):
        frame = frame.f_back
    return f"the `with {lock.name}:` block at {os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


_owner: contextvars.ContextVar[Optional[Owner]] = contextvars.ContextVar("concert_lock_owner", default=None)
# Reset tokens of the `with` blocks entered in this context, innermost last.
_entered: contextvars.ContextVar[Tuple[contextvars.Token, ...]] = contextvars.ContextVar(
    "concert_lock_entered", default=()
)


class _Manager:
    """The condition all lock state lives under: a reentrant lock, and waits Ctrl-C cannot tear.

    :meth:`wait` releases the lock (held exactly once by the caller), sleeps
    on a wake-up lock of its own until :meth:`notify_all` or the timeout,
    and takes the lock back -- in protected code, so that an interrupt never
    leaves the lock released under a ``with`` block that will release it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sleepers: List[threading.Lock] = []  # guarded by _lock

    @protected
    def __enter__(self) -> None:
        self._lock.acquire()

    @protected
    def __exit__(self, *exc_info: Any) -> None:
        self._lock.release()

    def notify_all(self) -> None:
        """Wake every waiter (caller holds the lock)."""
        for sleeper in self._sleepers:
            sleeper.release()
        self._sleepers.clear()

    @protected
    def wait(self, timeout: Optional[float]) -> None:
        """Sleep until notified or ``timeout`` seconds passed (caller holds the lock once)."""
        sleeper = threading.Lock()
        sleeper.acquire()
        self._sleepers.append(sleeper)
        self._lock.release()
        try:
            interrupts.acquire(sleeper, timeout)
        finally:
            self._lock.acquire()
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)


_manager = _Manager()
# Guarded by _manager: what each owner is waiting for right now (one entry per
# waiting thread), and which locks each owner holds exclusively.
_waiting: Dict[Owner, List[Tuple[ExclusiveLock, bool]]] = {}
_holding: Dict[Owner, List[ExclusiveLock]] = {}


def current_owner() -> Optional[Owner]:
    """Return the owner the calling context acts for, or ``None`` outside any block."""
    return _owner.get()


class ExclusiveLock:
    """The exclusive-access lock of one device or one parameter value.

    ``name`` names the guarded object in error messages. All state is guarded
    by the module's ``_manager`` condition.
    """

    __slots__ = ("_depth", "_holder", "_operations", "_pending", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._holder: Optional[Owner] = None
        self._depth = 0
        self._operations: Dict[Owner, int] = {}
        # Owners waiting to hold it, with how many of their threads wait, in the order
        # they asked (a dict keeps insertion order): the first one gets it next (fairness).
        self._pending: Dict[Owner, int] = {}

    def __repr__(self) -> str:
        holder = f"held by {self._holder}" if self._holder else "free"
        return f"<ExclusiveLock {self.name} {holder}>"

    @property
    def holder(self) -> Optional[Owner]:
        """The owner holding this lock exclusively, or ``None``."""
        return self._holder

    def waiters(self) -> int:
        """Return how many threads are waiting for this lock right now (a snapshot)."""
        return _waiters_of(self)

    # -- what blocks whom (caller holds _manager) ---------------------------------

    def _blocked(self, owner: Owner, exclusive: Any) -> bool:
        if exclusive:
            return bool(self._blockers(owner, exclusive))
        # What _blockers() says for an operation, without building the list (every device call asks).
        holder = self._holder
        if holder is not None and holder is not owner:
            return True
        if self._pending and owner is not holder and owner not in self._operations:
            return any(waiting is not owner for waiting in self._pending)
        return False

    def _queue(self, owner: Owner, exclusive: Any, wanted: Any) -> None:
        if exclusive:
            self._pending[owner] = self._pending.get(owner, 0) + 1

    def _unqueue(self, owner: Owner, exclusive: Any) -> None:
        if exclusive:
            count = self._pending.pop(owner) - 1
            if count:
                self._pending[owner] = count

    def _blockers(self, owner: Owner, exclusive: Any) -> List[Owner]:
        blockers = []
        if self._holder is not None and self._holder is not owner:
            blockers.append(self._holder)
        if exclusive:
            blockers.extend(o for o in self._operations if o is not owner)
            # First come, first served: the owners that asked to hold it before this one.
            for waiting in self._pending:
                if waiting is owner:
                    break
                blockers.append(waiting)
        elif self._pending and owner is not self._holder and owner not in self._operations:
            # A waiting `with` block goes first, or back-to-back operations could
            # keep it out for ever. The holder, and an owner already operating
            # here, carry on: the waiting block waits for exactly them.
            blockers.extend(o for o in self._pending if o is not owner)
        return blockers

    # -- holding (the `with` statement) ----------------------------------------------

    @protected
    def hold(self, owner: Owner) -> None:
        """Make ``owner`` hold this lock exclusively, waiting as rule 2 says.

        :raises LockError: on a deadlock or when :data:`~concert.config.LOCK_TIMEOUT` expires.
        :raises CancelledError: if the operation waiting here is asked to stop.
        """
        with _manager:
            if self._holder is not owner:
                _wait_until_free(((self, True),), owner)
            self._grant(owner)

    def _grant(self, owner: Owner) -> None:
        if self._depth == 0:
            self._holder = owner
            _holding.setdefault(owner, []).append(self)
        self._depth += 1

    def _ungrant(self, owner: Owner) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._holder = None
            held = _holding[owner]
            held.remove(self)
            if not held:
                del _holding[owner]
            _manager.notify_all()

    @protected
    def release(self, owner: Owner) -> None:
        """Undo one :meth:`hold` by ``owner`` (protected from Ctrl-C)."""
        with _manager:
            if self._holder is not owner:
                raise LockError(f"{self.name} is not held by {owner}")
            self._ungrant(owner)

    @protected
    def __enter__(self) -> ExclusiveLock:
        owner = _owner.get() or Owner(_block_text(self))
        reset = _owner.set(owner)
        try:
            self.hold(owner)
        except BaseException:
            _owner.reset(reset)
            raise
        _entered.set((*_entered.get(), reset))
        return self

    @protected
    def __exit__(self, *exc_info: object) -> None:
        self._leave()

    @protected
    def _leave(self) -> None:
        resets = _entered.get()
        owner = _owner.get()
        _entered.set(resets[:-1])
        _owner.reset(resets[-1])
        self.release(owner)

    async def __aenter__(self) -> ExclusiveLock:
        import asyncio

        owner = _owner.get() or Owner(_block_text(self).replace("`with", "`async with", 1))
        reset = _owner.set(owner)
        acquiring: concurrent.futures.Future = concurrent.futures.Future()

        def acquire() -> None:
            try:
                self.hold(owner)
            except BaseException as error:
                acquiring.set_exception(error)
            else:
                acquiring.set_result(None)

        # A thread of its own, not the pool: a pool full of waiting jobs cannot starve it.
        threading.Thread(target=acquire, name=f"concert-async-with-{self.name}", daemon=True).start()
        try:
            await asyncio.shield(asyncio.wrap_future(acquiring))
        except BaseException:
            # Cancelled (or failed) while waiting: the hold may still succeed in
            # its thread later; whenever it does, give the lock back at once.
            acquiring.add_done_callback(lambda done: self._release_if_held(done, owner))
            _owner.reset(reset)
            raise
        _entered.set((*_entered.get(), reset))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._leave()  # an async block is held by its task, not by the loop's thread

    def _release_if_held(self, hold: Any, owner: Owner) -> None:
        if not hold.cancelled() and hold.exception() is None:
            self.release(owner)


class Slot:
    """One-at-a-time execution on a device (rule 5): held by one operation, whatever its owner.

    ``name`` names the device in error messages. Guarded by ``_manager``.
    """

    __slots__ = ("_operation", "_owner", "_queue_", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._operation: Any = None
        self._owner: Optional[Owner] = None
        # The operations waiting for the slot, in the order they asked, each with its
        # owner and everything it waits for: the first one that could start gets it
        # next (fairness). One queued behind a `with` block's lock does not hold up
        # the block's own calls (that would be a deadlock of our making).
        self._queue_: List[Tuple[Any, Owner, Tuple[Tuple[Any, Any], ...]]] = []

    def __repr__(self) -> str:
        return f"<Slot {self.name} {'busy' if self._operation is not None else 'free'}>"

    def waiters(self) -> int:
        """Return how many threads are waiting for this slot right now (a snapshot)."""
        return _waiters_of(self)

    def _queue(self, owner: Owner, operation: Any, wanted: Any) -> None:
        self._queue_.append((operation, owner, wanted))

    def _unqueue(self, owner: Owner, operation: Any) -> None:
        for index, (waiting, _, _) in enumerate(self._queue_):
            if waiting is operation:
                del self._queue_[index]
                return

    def _ahead(self, operation: Any) -> List[Owner]:
        """The owners of the queued operations that asked before ``operation`` and could start."""
        ahead = []
        for waiting, owner, wanted in self._queue_:
            if waiting is operation:
                break
            if not any(lock._blocked(owner, mode) for lock, mode in wanted if lock is not self):
                ahead.append(owner)
        return ahead

    def _blocked(self, owner: Owner, operation: Any) -> bool:
        if self._operation is operation:
            return False  # a nested call of the operation in the slot
        return self._operation is not None or bool(self._ahead(operation))

    def _blockers(self, owner: Owner, operation: Any) -> List[Owner]:
        if not self._blocked(owner, operation):
            return []
        blockers = [] if self._operation is None else [self._owner]
        blockers.extend(self._ahead(operation))
        return [blocker for blocker in blockers if blocker is not owner]

    @property
    def holder(self) -> Optional[Owner]:
        """The owner of the operation running in the slot, or ``None``."""
        return self._owner


@protected
def enter(owner: Owner, locks: Sequence[ExclusiveLock], slot: Optional[Slot], operation: Any) -> None:
    """Start ``operation`` of ``owner`` on ``locks`` (rule 3) and in ``slot`` (rule 5), atomically.

    Waits until no other owner holds any of the locks and no other operation
    runs in the slot. On return everything is registered; on an exception
    nothing is. Pair with :func:`leave`.

    :raises LockError: on a deadlock or when :data:`~concert.config.LOCK_TIMEOUT` expires.
    :raises CancelledError: if the operation is asked to stop while it waits.
    """
    wanted: Tuple[Tuple[Any, Any], ...] = tuple((lock, False) for lock in locks)
    if slot is not None:
        wanted = (*wanted, (slot, operation))
    with _manager:
        _wait_until_free(wanted, owner)
        _register(owner, locks, slot, operation)


def enter_now(owner: Owner, locks: Sequence[ExclusiveLock], slot: Optional[Slot], operation: Any) -> bool:
    """:func:`enter` if that would not wait: register and return ``True``, else change nothing.

    The caller holds ``_manager`` (so that a device call checks its fence,
    registers and takes its locks in one hold of it, see
    :mod:`concert.operations`); on ``False`` it calls :func:`enter` once it
    has let go of the manager.
    """
    for lock in locks:
        if lock._blocked(owner, False):
            return False
    if slot is not None and slot._blocked(owner, operation):
        return False
    _register(owner, locks, slot, operation)
    return True


@protected
def leave(owner: Owner, locks: Sequence[ExclusiveLock], slot: Optional[Slot]) -> None:
    """End what :func:`enter` started (protected from Ctrl-C)."""
    with _manager:
        unregister(owner, locks, slot)


def _register(owner: Owner, locks: Sequence[ExclusiveLock], slot: Optional[Slot], operation: Any) -> None:
    for lock in locks:
        lock._operations[owner] = lock._operations.get(owner, 0) + 1
    if slot is not None:
        slot._operation, slot._owner = operation, owner


def unregister(owner: Owner, locks: Sequence[ExclusiveLock], slot: Optional[Slot]) -> None:
    """:func:`leave` for a caller that holds ``_manager`` already."""
    for lock in locks:
        operations = lock._operations
        count = operations[owner] - 1
        if count:
            operations[owner] = count
        else:
            del operations[owner]
    if slot is not None:
        slot._operation = slot._owner = None
    if _manager._sleepers:
        _manager.notify_all()


def _wake_waiters() -> None:
    with _manager:
        _manager.notify_all()


@protected
def _wait_until_free(wanted: Tuple[Tuple[Any, Any], ...], owner: Owner) -> None:
    # Caller holds _manager. `wanted` is ((lock, exclusive) or (slot, operation), ...).
    if not any(lock._blocked(owner, mode) for lock, mode in wanted):
        return
    from concert.futures import check_cancelled, on_cancel

    timeout = optional_seconds(config.LOCK_TIMEOUT, "LOCK_TIMEOUT")
    deadline = None if timeout is None else time.monotonic() + timeout
    with on_cancel(_wake_waiters), blocked():
        waiting = _waiting.setdefault(owner, [])
        for lock, mode in wanted:
            lock._queue(owner, mode, wanted)  # from now on, later requests queue up behind this one
        try:
            while True:
                check_cancelled()
                blocked_by = [(lock, mode) for lock, mode in wanted if lock._blocked(owner, mode)]
                if not blocked_by:
                    return
                lock, mode = blocked_by[0]
                cycle = _find_cycle(owner, lock, mode)
                if cycle is not None:
                    blocker, waited = cycle
                    raise LockError(
                        f"deadlock: {owner} wants {lock.name} while holding {_names(_holding.get(owner))}, "
                        f"but {blocker}, which has {lock.name}, waits for {waited.name}; "
                        "take them in the same order everywhere, or release one first"
                    )
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise LockError(
                        f"waited {timeout:g} s (LOCK_TIMEOUT) for {lock.name}, "
                        f"taken by {_owners_text(lock._blockers(owner, mode))}"
                    )
                waiting.append((lock, mode))
                try:
                    _manager.wait(remaining)  # Ctrl-C ends a lock wait
                finally:
                    waiting.remove((lock, mode))
        finally:
            for lock, mode in wanted:
                lock._unqueue(owner, mode)
            if not waiting:
                _waiting.pop(owner, None)
            _manager.notify_all()  # whoever queued up behind this request may go on


def _waiters_of(lock: Any) -> int:
    with _manager:
        return sum(1 for wanted in _waiting.values() for waited, _ in wanted if waited is lock)


def _owners_text(owners: List[Owner]) -> str:
    unique = list(dict.fromkeys(owners))
    return ", ".join(map(repr, unique)) if unique else "others"


def _names(locks: Optional[List[ExclusiveLock]]) -> str:
    return ", ".join(sorted(lock.name for lock in locks)) if locks else "nothing"


def _find_cycle(owner: Owner, lock: Any, mode: Any) -> Optional[Tuple[Owner, Any]]:
    """Return (the owner blocking ``lock``, the lock it waits for) if waiting would close a cycle.

    Depth-first search through "X waits for a lock that Y holds or operates
    on, or for a slot Y's operation runs in", starting from the owners that
    block ``lock``. Caller holds _manager.
    """
    for first in lock._blockers(owner, mode):
        seen = set()
        stack = [first]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for waited, waited_mode in _waiting.get(current, ()):
                blockers = waited._blockers(current, waited_mode)
                if owner in blockers:
                    return first, _waiting[first][0][0] if _waiting.get(first) else waited
                stack.extend(blockers)
    return None
