"""The module-wide pool that runs ``@async_`` calls, and what it does for blocked waiters.

Every call runs in one thread from its start to its end: no thread ever runs
another call's work while it waits for it. The pool still never deadlocks
on nesting or fan-out, because it *compensates* for waiting threads: a pool
thread that blocks in a Concert wait (:meth:`Future.result`, ``join``,
:func:`~concert.futures.wait`, a lock wait of :mod:`concert.locking`) wraps
the wait in :func:`blocked`, and while it is blocked it does not count
towards :data:`concert.config.MAX_WORKERS`; if calls are queued, another
thread starts on them. The pool may therefore run more than ``MAX_WORKERS``
threads while some of them wait, but never more than
:data:`concert.config.MAX_THREADS`: a wait that would need one more raises
:class:`~concert.exceptions.PoolExhaustedError` instead.

The threads come from a :class:`concurrent.futures.ThreadPoolExecutor` with
``MAX_THREADS`` workers named ``concert-worker-N``, used through its public
``submit`` only. Concert keeps its own queue of calls (:class:`Pool`): each
thread it starts takes calls from that queue, one after the other, until the
queue has stayed empty for :data:`IDLE_SECONDS` or enough other threads run. At interpreter exit the executor
joins its threads, which first finish every call already queued: a queued
write is never dropped.

The pool also knows every call it runs, so that an uncaught Ctrl-C that
ends a script can stop them (:func:`running`).
"""

from __future__ import annotations

import collections
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Deque, Dict, List, Optional, Set

from concert import config
from concert.exceptions import PoolExhaustedError
from concert.interrupts import protected

__all__ = ["Pool", "blocked", "get_executor", "running"]

_local = threading.local()  # .pool: the Pool whose thread this is (set in the thread's initializer)
_numbers = itertools.count()  # next() is atomic: names the threads concert-worker-0, -1, ...

#: How long a pool thread with nothing to do waits for the next call before it
#: ends (seconds). It bounds how long interpreter exit waits for idle threads.
IDLE_SECONDS = 0.05


class Pool:
    """A queue of calls and the threads that run them (see the module documentation).

    A *call* is any object with a ``run()`` method and a ``future`` attribute.
    A thread that finds the queue empty waits up to :data:`IDLE_SECONDS` for
    the next call before it gives itself back to the executor, so a stream
    of calls costs one hand-over each, not one executor submission.
    """

    def __init__(self, workers: int, max_threads: int) -> None:
        self.workers = workers
        self.max_threads = max(max_threads, workers)
        self._executor = ThreadPoolExecutor(max_workers=self.max_threads, initializer=self._mark)
        # Everything below is guarded by _lock.
        self._lock = threading.Lock()
        self._queue: Deque[Any] = collections.deque()
        self._active = 0  # threads running calls or about to take one, not blocked in a wait
        # The parking locks of idle threads, each held until its thread is woken: being in
        # this list (not the outcome of a timed acquire) decides whether a thread was woken.
        self._parked: Dict[threading.Lock, None] = {}  # insertion-ordered: the last parked wakes first
        self._threads = 0  # threads started on the queue and not finished: active + parked + blocked
        self._running: Set[Any] = set()  # the calls being run right now

    def _mark(self) -> None:
        _local.pool = self
        threading.current_thread().name = f"concert-worker-{next(_numbers)}"

    def _need_thread(self) -> bool:
        """Wake an idle thread or count a new one for queued work; return whether to start one.

        Caller holds _lock and has made sure there is queued work and
        ``_active < workers``.
        """
        self._active += 1
        if self._parked:
            self._parked.popitem()[0].release()
            return False
        self._threads += 1
        return True

    @protected
    def _start_thread(self) -> None:
        try:
            self._executor.submit(self._take_calls)
        except RuntimeError:
            # Interpreter shutdown: the executor takes no more work, but queued calls
            # must still run, or the waits on them would never end.
            threading.Thread(target=self._take_calls_marked, daemon=True).start()

    def _take_calls_marked(self) -> None:
        self._mark()
        self._take_calls()

    @protected
    def submit(self, call: Any) -> None:
        """Queue ``call``; a pool thread runs it as soon as one is free."""
        with self._lock:
            self._queue.append(call)
            start = (
                self._active < self.workers
                and (self._parked or self._threads < self.max_threads)
                and self._need_thread()
            )
        if start:
            self._start_thread()

    def _take_calls(self) -> None:
        lock, queue, running, parked = self._lock, self._queue, self._running, self._parked
        parking = threading.Lock()
        parking.acquire()
        call = None
        while True:
            lock.acquire()
            try:
                if call is not None:
                    running.discard(call)
                    call = None
                while not queue or self._active > self.workers:
                    self._active -= 1
                    if self._active >= self.workers:  # enough others run: give this thread back
                        self._threads -= 1
                        return
                    parked[parking] = None
                    lock.release()
                    try:
                        parking.acquire(timeout=IDLE_SECONDS)
                    finally:
                        lock.acquire()
                    if parking in parked:  # nobody woke it: count itself out
                        del parked[parking]
                        if not queue:
                            self._threads -= 1
                            return
                        self._active += 1
                    else:  # woken by _need_thread, which counted it active again
                        parking.acquire(blocking=False)  # held again, whatever the timing was
                call = queue.popleft()
                running.add(call)
            finally:
                lock.release()
            call.run()

    def running(self) -> List[Any]:
        """Return the calls being run and those queued, oldest first (a snapshot)."""
        with self._lock:
            return [*self._running, *self._queue]

    # -- compensation for blocked threads -------------------------------------------------

    @protected
    def _begin_wait(self) -> None:
        with self._lock:
            self._active -= 1
            start = False
            if self._queue and self._active < self.workers:
                if not self._parked and self._threads >= self.max_threads:
                    self._active += 1
                    raise PoolExhaustedError(
                        f"Concert's pool has {self._threads} threads (MAX_THREADS={self.max_threads}), "
                        f"all waiting, and {len(self._queue)} calls queued that none is left to run: "
                        "nesting too deep or a runaway fan-out"
                    )
                start = self._need_thread()
        if start:
            self._start_thread()

    @protected
    def _end_wait(self) -> None:
        with self._lock:
            self._active += 1


class blocked:  # noqa: N801 - used like the function-style context managers of contextlib
    """Mark the body as a wait of the calling thread (see the module documentation).

    Outside a pool thread it does nothing. Usable around any wait that may
    depend on other pool work; the body must not run calls itself.

    :raises PoolExhaustedError: on entry, if the wait needs another thread and
        MAX_THREADS are running.
    """

    __slots__ = ("_pool",)

    @protected
    def __enter__(self) -> None:
        pool = self._pool = getattr(_local, "pool", None)
        if pool is not None:
            pool._begin_wait()

    @protected
    def __exit__(self, *exc_info: Any) -> None:
        if self._pool is not None:
            self._pool._end_wait()


# Owned by _creation_lock: written once, under the lock, read without it.
_pool: Optional[Pool] = None
_creation_lock = threading.Lock()


def get_executor() -> Pool:
    """Return the module-wide pool, creating it on the first call (thread-safe).

    Its size is read from :data:`concert.config.MAX_WORKERS` and
    :data:`concert.config.MAX_THREADS` then.
    """
    global _pool
    pool = _pool
    if pool is None:
        with _creation_lock:
            if _pool is None:
                _pool = Pool(config.MAX_WORKERS, config.MAX_THREADS)
                from concert import exit_hook, interrupts

                exit_hook.install()
                interrupts.install()
            pool = _pool
    return pool


def running() -> List[Any]:
    """Return the calls the module-wide pool runs or has queued (empty before it exists)."""
    pool = _pool
    return [] if pool is None else pool.running()
