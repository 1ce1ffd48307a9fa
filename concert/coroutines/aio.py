"""The asyncio helpers seed 003 names in ``concert.coroutines.base`` (re-exported there).

Concert's futures are awaitable (:meth:`concert.futures.Future.__await__`),
so asyncio code can drive devices directly: ``await motor.move(1 * q.mm)``.
These helpers complete the picture for scripts written for the asyncio-era
Concert:

* :func:`get_event_loop` -- the loop of the calling thread (the running one,
  or one made and set for the thread); :func:`use_event_loop` makes a given
  loop the thread's (the shell makes its prompt's loop the main thread's);
* :func:`start` and the decorator :func:`background` -- run an awaitable as
  a task right away; :func:`running_tasks` lists the tasks started so that a
  shell can cancel them all;
* :func:`run_in_loop` -- run a coroutine to its end from synchronous code;
* :func:`run_in_executor` -- await a blocking function run on Concert's pool;
* :func:`ensure_coroutine` -- await whatever ``func(*args)`` returns;
* :func:`wait_until` -- poll a condition without blocking the loop;
* and in :mod:`concert.coroutines.base` also seed 003's ``feed_queue``
  (:func:`concert.pipelines.feed_queue`, whose future can be awaited) and
  ``WaitError`` (:class:`concert.exceptions.WaitError`).

asyncio is imported when these are first used, not with the module.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Awaitable, Callable, List, Optional

from concert.exceptions import WaitError
from concert.timeouts import optional_seconds, to_seconds

__all__ = [
    "background",
    "ensure_coroutine",
    "get_event_loop",
    "run_in_executor",
    "run_in_loop",
    "running_tasks",
    "start",
    "use_event_loop",
    "wait_until",
]

# The tasks start() made that have not ended: a WeakSet would lose a task nobody else
# references while it runs. Guarded by _tasks_lock; a task removes itself when done.
_tasks: List[Any] = []
_tasks_lock = threading.Lock()
_loops = threading.local()  # .loop: the loop get_event_loop() made for the thread (thread-owned)


def get_event_loop() -> Any:
    """Return the running loop, else the calling thread's own loop (made the first time, and set)."""
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return loop


def use_event_loop(loop: Any) -> None:
    """Make ``loop`` the calling thread's loop: :func:`get_event_loop` returns it from now on.

    When no loop is running, :func:`get_event_loop` (and so :func:`start`,
    :func:`background` and :func:`run_in_loop`) uses ``loop``, and so does
    :func:`asyncio.get_event_loop` in this thread. The interactive shell
    calls this with the loop its prompt runs, so that tasks started in a
    cell advance while the prompt waits for input. Affects the calling
    thread only; a closed ``loop`` is replaced by a new one when next needed.
    """
    import asyncio

    _loops.loop = loop
    asyncio.set_event_loop(loop)


def start(awaitable: Awaitable) -> Any:
    """Wrap ``awaitable`` into a task of :func:`get_event_loop` and start it; return the task.

    The task is listed by :func:`running_tasks` until it ends, so that a
    session can cancel every background task at once. A task made for an
    awaitable that is not a coroutine (a Concert future, say) is named
    after it (``LinearMotor#1.move(+5 mm)``).
    """
    import asyncio

    task = asyncio.ensure_future(awaitable, loop=get_event_loop())
    if task is not awaitable and not inspect.iscoroutine(awaitable):
        # A future wrapped into a task: name the task after it (``LinearMotor#1.move(+5 mm)``).
        task.set_name(getattr(awaitable, "name", None) or type(awaitable).__name__)
    with _tasks_lock:
        _tasks.append(task)
    task.add_done_callback(_forget)
    return task


def _forget(task: Any) -> None:
    with _tasks_lock:
        if task in _tasks:
            _tasks.remove(task)


def running_tasks() -> List[Any]:
    """Return the tasks :func:`start` made that have not ended yet (a snapshot)."""
    with _tasks_lock:
        return list(_tasks)


def background(corofunc: Callable[..., Awaitable]) -> Callable[..., Any]:
    """Decorate a coroutine function so that calling it :func:`start`\\ s it and returns the task."""

    @functools.wraps(corofunc)
    def started(*args: Any, **kwargs: Any) -> Any:
        return start(corofunc(*args, **kwargs))

    return started


def run_in_loop(coroutine: Awaitable, error_msg_if_running: Optional[str] = None) -> Any:
    """Run ``coroutine`` as a task in :func:`get_event_loop` until it ends; return its result.

    Any awaitable will do, a Concert future among them
    (``run_in_loop(motor.set_position(1 * q.mm))``): its result is returned
    and its exception raised.

    On Ctrl-C the task is cancelled (and run until it has handled that),
    then ``KeyboardInterrupt`` is raised again.

    :raises RuntimeError: with ``error_msg_if_running`` if the loop is already running.
    """
    loop = get_event_loop()
    if loop.is_running():
        raise RuntimeError(
            error_msg_if_running or "run_in_loop(): the event loop is already running; use await instead"
        )
    task = loop.create_task(coroutine if inspect.iscoroutine(coroutine) else _awaited(coroutine))
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        task.cancel()
        try:
            loop.run_until_complete(task)
        except BaseException:  # its CancelledError, or what its clean-up raised: Ctrl-C wins
            pass
        raise


async def _awaited(awaitable: Awaitable) -> Any:
    return await awaitable


async def run_in_executor(func: Callable[..., Any], *args: Any) -> Any:
    """Await ``func(*args)`` run on Concert's pool (:func:`concert.futures.async_`).

    If the awaiting task is cancelled, the call is asked to stop and the task
    ends only once it has: resources are left consistent.
    """
    from concert.futures import async_

    return await async_(func)(*args)


async def ensure_coroutine(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await what ``func(*args, **kwargs)`` returns if it is awaitable (a Concert future, say).

    Anything else is returned as it is.
    """
    result = func(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


async def wait_until(condition: Callable[[], Any], sleep_time: Any = None, timeout: Any = None) -> None:
    """Await until ``condition()`` is true, checking every ``sleep_time`` (default 0.1 s).

    The loop is never blocked.

    ``sleep_time`` and ``timeout`` are seconds or time quantities. The
    condition is checked at least once, and once more at the deadline.

    :raises WaitError: if it is still false after ``timeout``.
    :raises UnitError: for a ``sleep_time`` or ``timeout`` that is not a duration.
    """
    import asyncio
    import time

    interval = 0.1 if sleep_time is None else to_seconds(sleep_time, "sleep_time")
    seconds = optional_seconds(timeout, "timeout")
    deadline = None if seconds is None else time.monotonic() + seconds
    while not condition():
        if deadline is None:
            await asyncio.sleep(interval)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitError(f"wait_until(): condition {condition!r} still false after {seconds:g} s")
        await asyncio.sleep(min(interval, remaining))
