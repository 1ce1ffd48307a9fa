"""The module-wide thread pool that runs ``@async_`` calls.

The pool is a :class:`concurrent.futures.ThreadPoolExecutor`, created on
first use with :data:`concert.config.MAX_WORKERS` threads named
``concert-worker-N``. Creating it lazily keeps ``import concert`` free of
threads, and lets a program set ``MAX_WORKERS`` before its first call.

``@async_`` calls enter the pool through :meth:`Pool.submit_item`, which
queues Concert's own work item instead of wrapping the call in a second,
standard-library future: half the allocations and half the locking per
call. It uses the same queue, thread accounting and shutdown checks as
``ThreadPoolExecutor.submit`` (private attributes that CPython 3.9-3.14 all
share), so ``shutdown()`` and interpreter exit treat both kinds of work
alike: at exit the pool finishes the work it was given -- a queued write is
never dropped.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import thread as _stdlib_thread
from typing import Any, Optional

from concert import config


class Pool(ThreadPoolExecutor):
    """A ThreadPoolExecutor that also accepts ready-made work items."""

    def submit_item(self, item: Any) -> None:
        """Queue ``item``; a worker calls ``item.run()``.

        ``item.future`` must be the future to cancel on ``shutdown(cancel_futures=True)``.

        :raises RuntimeError: after ``shutdown()`` or interpreter shutdown,
            exactly as :meth:`submit` does.
        """
        with self._shutdown_lock, _stdlib_thread._global_shutdown_lock:
            if self._broken:
                raise _stdlib_thread.BrokenThreadPool(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _stdlib_thread._shutdown:
                raise RuntimeError("cannot schedule new futures after interpreter shutdown")
            self._work_queue.put(item)
            self._adjust_thread_count()


# Owned by _creation_lock: written once, under the lock, read without it.
_pool: Optional[Pool] = None
_creation_lock = threading.Lock()
_worker_numbers = itertools.count()


def _initialise_worker() -> None:
    threading.current_thread().name = f"concert-worker-{next(_worker_numbers)}"


def get_executor() -> Pool:
    """Return the module-wide pool, creating it on the first call (thread-safe)."""
    global _pool
    pool = _pool
    if pool is None:
        with _creation_lock:
            if _pool is None:
                _pool = Pool(max_workers=config.MAX_WORKERS, initializer=_initialise_worker)
            pool = _pool
    return pool
