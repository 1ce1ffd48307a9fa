"""Exclusive access to devices and parameter values: ``with motor, pump['foo']:``.

The model, in four rules:

1. Work runs on behalf of an *owner*, a token kept in a context variable. The
   outermost ``with`` in a context creates one; futures submitted inside the
   block copy the context (see :mod:`concert.futures`) and so act as the same
   owner. A write or device operation started outside any block gets a fresh
   owner for its duration, which nested work inherits.
2. Holding an :class:`ExclusiveLock` (entering ``with``) waits until no other
   owner holds it or runs an operation on it; it is reentrant for its owner.
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

All lock state lives under one module-wide condition, ``_manager``: one lock
to reason about, and a consistent snapshot for the deadlock check. Hardware
operations take milliseconds or more, so sharing it costs nothing that
matters.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import itertools
import threading
import time
from threading import Condition
from typing import Dict, List, Optional, Sequence, Tuple

from concert import config
from concert.exceptions import LockError
from concert.timeouts import optional_seconds

__all__ = ["ExclusiveLock", "Owner", "current_owner", "operation"]


class Owner:
    """The identity on whose behalf work runs (see rule 1)."""

    __slots__ = ("number",)
    _numbers = itertools.count(1)

    def __init__(self) -> None:
        self.number = next(Owner._numbers)

    def __repr__(self) -> str:
        return f"owner #{self.number}"


_owner: contextvars.ContextVar[Optional[Owner]] = contextvars.ContextVar("concert_lock_owner", default=None)
# Reset tokens of the `with` blocks entered in this context, innermost last.
_entered: contextvars.ContextVar[Tuple[contextvars.Token, ...]] = contextvars.ContextVar(
    "concert_lock_entered", default=()
)

_manager = Condition()
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
        self._pending: Dict[Owner, int] = {}  # owners waiting to hold it, with how many threads

    def __repr__(self) -> str:
        holder = f"held by {self._holder}" if self._holder else "free"
        return f"<ExclusiveLock {self.name} {holder}>"

    @property
    def holder(self) -> Optional[Owner]:
        """The owner holding this lock exclusively, or ``None``."""
        return self._holder

    def waiters(self) -> int:
        """Return how many threads are waiting for this lock right now (a snapshot)."""
        with _manager:
            return sum(1 for wanted in _waiting.values() for lock, _ in wanted if lock is self)

    # -- what blocks whom (caller holds _manager) ---------------------------------

    def _blockers(self, owner: Owner, exclusive: bool) -> List[Owner]:
        blockers = []
        if self._holder is not None and self._holder is not owner:
            blockers.append(self._holder)
        if exclusive:
            blockers.extend(o for o in self._operations if o is not owner)
        elif self._pending and owner is not self._holder and owner not in self._operations:
            # A waiting `with` block goes first, or back-to-back operations could
            # keep it out for ever. The holder, and an owner already operating
            # here, carry on: the waiting block waits for exactly them.
            blockers.extend(o for o in self._pending if o is not owner)
        return blockers

    # -- holding (the `with` statement) ----------------------------------------------

    def hold(self, owner: Owner) -> None:
        """Make ``owner`` hold this lock exclusively, waiting as rule 2 says.

        :raises LockError: on a deadlock or when :data:`~concert.config.LOCK_TIMEOUT` expires.
        """
        with _manager:
            if self._holder is not owner:
                self._pending[owner] = self._pending.get(owner, 0) + 1
                try:
                    _wait_until_free(((self, True),), owner)
                finally:
                    count = self._pending.pop(owner) - 1
                    if count:
                        self._pending[owner] = count
                    _manager.notify_all()  # operations held back by this request may go on
            if self._depth == 0:
                self._holder = owner
                _holding.setdefault(owner, []).append(self)
            self._depth += 1

    def release(self, owner: Owner) -> None:
        """Undo one :meth:`hold` by ``owner``."""
        with _manager:
            if self._holder is not owner:
                raise LockError(f"{self.name} is not held by {owner}")
            self._depth -= 1
            if self._depth == 0:
                self._holder = None
                held = _holding[owner]
                held.remove(self)
                if not held:
                    del _holding[owner]
                _manager.notify_all()

    def __enter__(self) -> ExclusiveLock:
        owner = _owner.get() or Owner()
        reset = _owner.set(owner)
        try:
            self.hold(owner)
        except BaseException:
            _owner.reset(reset)
            raise
        _entered.set((*_entered.get(), reset))
        _thread_holders().append(owner)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _thread_holders().remove(_owner.get())
        self._leave()

    def _leave(self) -> None:
        resets = _entered.get()
        owner = _owner.get()
        _entered.set(resets[:-1])
        _owner.reset(resets[-1])
        self.release(owner)

    async def __aenter__(self) -> ExclusiveLock:
        import asyncio

        from concert.executor import get_executor

        owner = _owner.get() or Owner()
        reset = _owner.set(owner)
        acquiring = get_executor().submit(self.hold, owner)
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

    def _release_if_held(self, hold: concurrent.futures.Future, owner: Owner) -> None:
        if not hold.cancelled() and hold.exception() is None:
            self.release(owner)


class operation:  # noqa: N801 - used like the function-style context managers of contextlib
    """Run the body as an operation on all ``locks`` at once (rule 3)::

        with operation((device_lock, parameter_lock)):
            setter(value)

    Waits, atomically for all of them, until no other owner holds any; then
    the body runs and no other owner can take them until it ends.

    An operation nested in one this thread is already running on the same
    locks *for the same owner* (a write inside a device method, a state check
    inside a write) needs no bookkeeping and skips the manager: the outer
    operation keeps every other owner out. This is tracked per thread and
    owner, not per context, because futures copy the context and may outlive
    the operation that started them, and a waiting worker may run another
    owner's work.

    :raises LockError: on a deadlock or when :data:`~concert.config.LOCK_TIMEOUT` expires.
    """

    __slots__ = ("_locks", "_nested", "_owner", "_reset")

    def __init__(self, locks: Sequence[ExclusiveLock]) -> None:
        self._locks = locks

    def __enter__(self) -> Owner:
        active = _thread_operations()
        locks = self._locks
        owner = _owner.get()
        self._reset = None
        if owner is None:
            owner = Owner()
            self._reset = _owner.set(owner)
        self._owner = owner
        self._nested = all((lock, owner) in active for lock in locks)
        if not self._nested:
            try:
                with _manager:
                    _wait_until_free(tuple((lock, False) for lock in locks), owner)
                    for lock in locks:
                        lock._operations[owner] = lock._operations.get(owner, 0) + 1
            except BaseException:
                if self._reset is not None:
                    _owner.reset(self._reset)
                raise
        for lock in locks:
            key = (lock, owner)
            active[key] = active.get(key, 0) + 1
        return owner

    def __exit__(self, *exc_info: object) -> None:
        active = _thread_operations()
        locks, owner = self._locks, self._owner
        for lock in locks:
            key = (lock, owner)
            depth = active[key] - 1
            if depth:
                active[key] = depth
            else:
                del active[key]
        if not self._nested:
            with _manager:
                for lock in locks:
                    count = lock._operations[owner] - 1
                    if count:
                        lock._operations[owner] = count
                    else:
                        del lock._operations[owner]
                _manager.notify_all()
        if self._reset is not None:
            _owner.reset(self._reset)


_local = threading.local()


def _thread_holders() -> List[Owner]:
    """Owners whose ``with`` blocks the calling thread is inside, innermost last (thread-owned)."""
    try:
        return _local.holders
    except AttributeError:
        _local.holders = []
        return _local.holders


def _suspended_here(owner: Owner) -> set:
    """Owners other than ``owner`` whose work the calling thread has suspended to run this.

    A worker waiting on a future runs it in its own thread (see
    :mod:`concert.futures`); while it does, the owners of the blocks and
    operations it was in cannot make progress. Waiting for one of them would
    hang for ever.
    """
    owners = {other for _, other in _thread_operations()} | set(_thread_holders())
    owners.discard(owner)
    return owners


def _thread_operations() -> Dict[Tuple[ExclusiveLock, Owner], int]:
    """(lock, owner) pairs the calling thread runs operations for, with nesting depths (thread-owned)."""
    try:
        return _local.operations
    except AttributeError:
        _local.operations = {}
        return _local.operations


def _wait_until_free(wanted: Tuple[Tuple[ExclusiveLock, bool], ...], owner: Owner) -> None:
    # Caller holds _manager. `wanted` is ((lock, exclusive), ...).
    if not any(lock._blockers(owner, exclusive) for lock, exclusive in wanted):
        return
    timeout = optional_seconds(config.LOCK_TIMEOUT, "LOCK_TIMEOUT")
    deadline = None if timeout is None else time.monotonic() + timeout
    waiting = _waiting.setdefault(owner, [])
    try:
        while True:
            blocked = [(lock, exclusive) for lock, exclusive in wanted if lock._blockers(owner, exclusive)]
            if not blocked:
                return
            lock, exclusive = blocked[0]
            suspended = _suspended_here(owner) & set(lock._blockers(owner, exclusive))
            if suspended:
                raise LockError(
                    f"deadlock: {owner} wants {lock.name}, which {', '.join(map(str, suspended))} has; "
                    "that owner waits in this very thread for this work to finish. Do not wait, inside "
                    "a with-block or a device operation, for work that needs the same device"
                )
            cycle = _find_cycle(owner, lock, exclusive)
            if cycle is not None:
                blocker, waited = cycle
                raise LockError(
                    f"deadlock: {owner} wants {lock.name} while holding {_names(_holding.get(owner))}, "
                    f"but {blocker}, which has {lock.name}, waits for {waited.name}; "
                    "take them in the same order everywhere, or release one first"
                )
            waiting.append((lock, exclusive))
            try:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise LockError(
                        f"waited {timeout:g} s (LOCK_TIMEOUT) for {lock.name}, "
                        f"held by {lock._holder or 'others'}"
                    )
                _manager.wait(remaining)
            finally:
                waiting.remove((lock, exclusive))
    finally:
        if not waiting:
            _waiting.pop(owner, None)


def _names(locks: Optional[List[ExclusiveLock]]) -> str:
    return ", ".join(sorted(lock.name for lock in locks)) if locks else "nothing"


def _find_cycle(owner: Owner, lock: ExclusiveLock, exclusive: bool) -> Optional[Tuple[Owner, ExclusiveLock]]:
    """Return (the owner blocking ``lock``, the lock it waits for) if waiting would close a cycle.

    Depth-first search through "X waits for a lock that Y holds or operates
    on", starting from the owners that block ``lock``. Caller holds _manager.
    """
    for first in lock._blockers(owner, exclusive):
        seen = set()
        stack = [first]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            for waited, waits_exclusively in _waiting.get(current, ()):
                blockers = waited._blockers(current, waits_exclusively)
                if owner in blockers:
                    return first, _waiting[first][0][0] if _waiting.get(first) else waited
                stack.extend(blockers)
    return None
