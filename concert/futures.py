"""Futures: the ``async_`` decorator and the :class:`Future` it returns.

Device methods are plain blocking functions. Decorating one with
:func:`async_` makes every call submit it to the module-wide pool
(:mod:`concert.executor`) and return a :class:`Future` at once::

    @async_
    def move(motor, delta):
        ...                      # blocks until the motor has arrived

    future = move(motor, 1 * q.mm)   # returns immediately
    future.join()                    # blocks; raises what move raised

The contract, in one place:

* The caller's :mod:`contextvars` context is copied at the call and the
  function runs in that copy, in either mode.
* When :data:`concert.config.DISABLE_ASYNC` is true *at the time of the call*
  the function runs in the caller's thread and the returned future is already
  finished; an :class:`Exception` it raises is stored in the future, not
  raised at the call. ``KeyboardInterrupt`` and other non-``Exception``
  errors propagate.
* A thread that waits on a future which has not started yet runs it
  itself -- a pool worker, a pipeline's thread, a handler: any thread but
  the main one, where Ctrl-C must interrupt the wait rather than the work.
  Nested calls and fan-out wider than the pool therefore never deadlock, and
  neither does work submitted from outside the pool while every worker
  waits -- as long as the waiting goes through this module (``Future``
  methods, :func:`wait`, :func:`resolve`). The price: a timeout bounds the
  wait for work running elsewhere, but work the waiting thread takes over
  runs to its end. ``concurrent.futures.wait`` knows nothing of this.
* A failed future whose exception nobody asked for is logged with its
  traceback when it is garbage-collected; nothing fails silently.
* While a decorated call waits for another future, cancelling the call
  cancels that future too: a ``focus`` waiting for its optimisation stops it.
* A function that raises :class:`~concurrent.futures.CancelledError` (a
  cancelled step, an operation fenced off by a device's ``abort()``) leaves
  its future cancelled, not failed.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import logging
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    RUNNING,
)
from typing import Any, Callable, Iterable, List, Optional, Tuple, TypeVar

from concert import config
from concert.exceptions import WaitError
from concert.executor import get_executor
from concert.timeouts import optional_seconds

__all__ = [
    "CancelRegistration",
    "Future",
    "async_",
    "is_async",
    "wait",
    "resolve",
    "threaded",
    "on_cancel",
    "current_future",
]

LOG = logging.getLogger(__name__)

_T = TypeVar("_T")
_DONE = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED))
_MAIN_THREAD = threading.main_thread()

#: The future whose function is running in this context (None outside one).
_current: contextvars.ContextVar[Optional[Future]] = contextvars.ContextVar(
    "concert_current_future", default=None
)


class Future(concurrent.futures.Future):
    """A :class:`concurrent.futures.Future` with the waiting API of Concert.

    Adds :meth:`wait`/:meth:`join`, cancellation of *running* operations
    through a cancel action, Ctrl-C handling, ``await`` support and logging of
    failures nobody retrieved. It is still a standard future:
    ``concurrent.futures.wait``, ``as_completed`` and ``add_done_callback``
    work as usual.

    ``name`` is used in messages (``repr``, :class:`~concert.exceptions.WaitError`).
    """

    # Follows the base class's state machine and its one Condition, _condition,
    # which guards _cancel_actions and _cancelling once other threads can see
    # the future. _work is claimed by a single atomic list.pop(); _retrieved
    # is a flag only ever set to True, so it needs no lock.

    # Class-level defaults keep __init__ (and so every call) cheap.
    _cancel_actions: Tuple[Callable[[], Any], ...] = ()  # replaced whole, under _condition
    _cancelling = False
    _retrieved = False
    _work: Optional[list] = None  # [(context, func, args, kwargs)] until claimed

    def __init__(self, name: Optional[str] = None) -> None:
        super().__init__()
        self._name = name

    # -- naming ------------------------------------------------------------

    @property
    def name(self) -> str:
        """What this future stands for, e.g. ``'LinearMotor.move'``."""
        return self._name or "future"

    def __repr__(self) -> str:
        state = self._state.lower().replace("_and_notified", "")
        if self._state == FINISHED:
            state = "failed" if self._exception is not None else "finished"
        return f"<Future {self.name!r} {state} at {id(self):#x}>"

    # -- running (called by the pool, or by a worker that waits on us) -----

    def _execute(self) -> None:
        """Run the stored call here, unless another thread has claimed it."""
        try:
            context, func, args, kwargs = self._work.pop()  # atomic: one claimant wins
        except (IndexError, AttributeError):
            return
        if self.set_running_or_notify_cancel():
            context.run(self._invoke, func, args, kwargs)

    def _invoke(self, func: Callable, args: tuple, kwargs: dict) -> None:
        _current.set(self)
        try:
            result = func(*args, **kwargs)
        except BaseException as error:
            self._settle(None, error)
        else:
            self._settle(result, None)

    def _settle(self, result: Any, error: Optional[BaseException]) -> None:
        """Move a running future to its final state: one lock, callbacks after it."""
        with self._condition:
            cancelled = self._cancelling or isinstance(error, CancelledError)
            if cancelled:
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
            elif error is None:
                self._result = result
                self._state = FINISHED
                for waiter in self._waiters:
                    waiter.add_result(self)
            else:
                self._exception = error
                self._state = FINISHED
                for waiter in self._waiters:
                    waiter.add_exception(self)
            self._condition.notify_all()
        self._invoke_callbacks()
        if cancelled and error is not None and not isinstance(error, CancelledError):
            LOG.warning(
                "%r raised after it was cancelled", self, exc_info=(type(error), error, error.__traceback__)
            )

    # -- cancellation --------------------------------------------------------

    def add_cancel_action(self, action: Callable[[], Any]) -> None:
        """Make :meth:`cancel` of the *running* operation call ``action()``.

        ``action`` must make the running function return soon (a motor's
        ``stop``, a camera's ``abort``). Actions stack: a scan registers one,
        the move it makes registers another, and cancelling runs them all,
        the most recent first. Usually registered with :func:`on_cancel`.
        """
        with self._condition:
            self._cancel_actions = (*self._cancel_actions, action)

    def remove_cancel_action(self, action: Callable[[], Any]) -> None:
        """Unregister ``action`` (its last registration); unknown actions are ignored."""
        with self._condition:
            actions = list(self._cancel_actions)
            for index in range(len(actions) - 1, -1, -1):
                if actions[index] == action:  # equal, so a bound method matches itself
                    del actions[index]
                    self._cancel_actions = tuple(actions)
                    return

    def cancel(self) -> bool:
        """Cancel the operation; return whether the future ends cancelled.

        A pending future is cancelled without running. A running future is
        cancelled only if it has cancel actions: they run in the calling
        thread, the most recently registered first, then this method waits
        until the function has returned, so that when it returns ``True`` the
        operation has really stopped. A running future without cancel
        actions, and a finished one, are left alone and ``False`` is returned.

        :raises: the first exception a cancel action raised (all of them run);
            the future then keeps running (or finishes) as if nothing happened.
        """
        if super().cancel():
            return True
        with self._condition:
            if self._state != RUNNING or not self._cancel_actions:
                return False
            actions = self._cancel_actions
            first = not self._cancelling
            self._cancelling = True
        if first:
            try:
                _run_all(reversed(actions))
            except BaseException:
                with self._condition:
                    if self._state == RUNNING:
                        self._cancelling = False
                raise
        if _current.get() is self:
            # Cancelled from inside its own function: it ends cancelled when it returns.
            return True
        with self._condition:
            self._condition.wait_for(self._is_done)
            return self._state != FINISHED

    # -- waiting ---------------------------------------------------------------

    def _is_done(self) -> bool:
        return self._state in _DONE

    def _block(self, timeout: Any) -> None:
        """Wait until done. WaitError on timeout; Ctrl-C cancels and re-raises."""
        seconds = optional_seconds(timeout, "timeout")
        if self._state in _DONE:
            return
        waiter = _current.get()
        linked = waiter is not None and waiter is not self
        if linked:
            waiter.add_cancel_action(self.cancel)  # cancelling the waiting call cancels this
        try:
            if self._work and threading.current_thread() is not _MAIN_THREAD:
                self._execute()  # a blocked thread runs what it waits for: no deadlock
            with self._condition:
                if not self._condition.wait_for(self._is_done, seconds):
                    raise WaitError(f"{self!r} did not finish within {seconds:g} s")
        except KeyboardInterrupt:
            _cancel_quietly([self])
            raise
        finally:
            if linked:
                waiter.remove_cancel_action(self.cancel)

    def wait(self, timeout: Any = None) -> Future:
        """Block until done and return this future (so ``f.wait().result()`` works).

        ``timeout`` is in seconds or a time quantity; ``None`` waits forever.

        :raises WaitError: if not done within ``timeout``.
        :raises CancelledError: if the future was cancelled.
        :raises: the exception the function raised.
        :raises KeyboardInterrupt: after cancelling the future (which runs its
            cancel action, e.g. stops the motor).
        """
        self._block(timeout)
        self._retrieved = True
        super().result(0)
        return self

    join = wait

    def result(self, timeout: Any = None) -> Any:
        """Return the function's result, waiting as :meth:`wait` does."""
        self._block(timeout)
        self._retrieved = True
        return super().result(0)

    def exception(self, timeout: Any = None) -> Optional[BaseException]:
        """Return the function's exception (or ``None``), waiting as :meth:`wait` does."""
        self._block(timeout)
        self._retrieved = True
        return super().exception(0)

    def __await__(self):
        """Await the result from asyncio without blocking the event loop.

        Cancelling the awaiting task cancels this future: the cancel action runs
        in a helper thread while the task waits for it, so the loop stays free
        and, once the task has been cancelled, the operation has stopped.
        """
        return self._await_in_loop().__await__()

    async def _await_in_loop(self) -> Any:
        import asyncio  # lazily: importing asyncio costs more than the rest of Concert

        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def wake(_: concurrent.futures.Future) -> None:
            try:
                loop.call_soon_threadsafe(_set_if_pending, woken)
            except RuntimeError:  # the loop was closed meanwhile: nobody awaits any more
                pass

        self.add_done_callback(wake)
        try:
            await woken
        except asyncio.CancelledError:
            await loop.run_in_executor(None, self.cancel)
            raise
        if self.cancelled():
            raise asyncio.CancelledError(f"{self!r} was cancelled")
        return self.result()

    def __del__(self) -> None:
        if self._state == FINISHED and self._exception is not None and not self._retrieved:
            error = self._exception
            try:
                LOG.error(
                    "%r failed and nobody retrieved its exception",
                    self,
                    exc_info=(type(error), error, error.__traceback__),
                )
            except Exception:  # logging torn down at interpreter exit
                pass


def _set_if_pending(waiter: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


def current_future() -> Optional[Future]:
    """Return the future of the ``@async_`` call running in this context, if any."""
    return _current.get()


class CancelRegistration:
    """A cancel action registered by :func:`on_cancel`; a ``with`` block unregisters it on exit."""

    __slots__ = ("_action", "_future")

    def __init__(self, future: Optional[Future], action: Callable[[], Any]) -> None:
        self._future, self._action = future, action

    def remove(self) -> None:
        """Unregister the action (nothing happens if it was registered outside a call)."""
        if self._future is not None:
            self._future.remove_cancel_action(self._action)

    def __enter__(self) -> CancelRegistration:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.remove()


def on_cancel(action: Callable[[], Any]) -> CancelRegistration:
    """Register ``action`` as a cancel action of the ``@async_`` call running here.

    Call it from inside a decorated function, before the part that
    ``action`` interrupts; outside one it registers nothing. Used as a
    context manager, the action is unregistered when the block ends -- what
    a step nested in a longer operation wants::

        @async_
        def move(self, delta):
            with on_cancel(self.stop):      # cancelling stops the motor
                ...

    Without ``with`` it stays registered until the call ends.
    """
    future = _current.get()
    if future is not None:
        future.add_cancel_action(action)
    return CancelRegistration(future, action)


def _cancel_quietly(futures: Iterable[concurrent.futures.Future]) -> None:
    """Cancel every future (Ctrl-C); log failing cancel actions instead of raising them.

    Used where an interrupt is being handled: the KeyboardInterrupt must stay
    what the caller sees, and one failing stop must not keep the others from
    running.
    """
    for future in futures:
        try:
            future.cancel()
        except Exception:
            LOG.exception("cancelling %r after Ctrl-C failed", future)


def _run_all(actions: Iterable[Callable[[], Any]]) -> None:
    """Call every action; then raise the first exception any of them raised."""
    first: Optional[BaseException] = None
    for action in actions:
        try:
            action()
        except BaseException as error:
            first = first or error
    if first is not None:
        raise first


def _name_of(func: Callable) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _run_now(func: Callable, name: str, args: tuple, kwargs: dict) -> Future:
    """Run ``func`` in the caller's thread, in a copy of its context; return its finished future."""
    future = Future(name)
    future._state = RUNNING  # nobody else can see it yet
    contextvars.copy_context().run(_run_here, future, func, args, kwargs)
    return future


def _run_here(future: Future, func: Callable, args: tuple, kwargs: dict) -> None:
    _current.set(future)
    try:
        result = func(*args, **kwargs)
    except Exception as error:
        future._settle(None, error)
    except BaseException:
        # Ctrl-C or exit while running synchronously: stop what it was doing
        # first, then mark the future cancelled; the interrupt stays what is raised.
        try:
            _run_all(reversed(future._cancel_actions))
        except Exception:
            LOG.exception("stopping %r after an interrupt failed", future)
        future._cancelling = True
        future._settle(None, None)
        raise
    else:
        future._settle(result, None)


class _WorkItem:
    """What the pool runs for one ``@async_`` call."""

    __slots__ = ("future",)

    def __init__(self, future: Future) -> None:
        self.future = future

    def run(self, *_worker_context: Any) -> None:
        self.future._execute()


def async_(func: Callable[..., _T]) -> Callable[..., Future]:
    """Decorate a blocking function so that calling it returns a :class:`Future`.

    Works on functions, methods, static and class methods and keeps their name,
    docstring and signature. Each call is submitted to the module-wide pool,
    or, when :data:`concert.config.DISABLE_ASYNC` is true at the time of the
    call, run at once in the caller's thread (see the module documentation).

    Decorating an already decorated function returns it unchanged.
    """
    if isinstance(func, staticmethod):
        return staticmethod(async_(func.__func__))
    if isinstance(func, classmethod):
        return classmethod(async_(func.__func__))
    if is_async(func):
        return func
    name = _name_of(func)

    @functools.wraps(func)
    def submit(*args: Any, **kwargs: Any) -> Future:
        if config.DISABLE_ASYNC:
            return _run_now(func, name, args, kwargs)
        future = Future(name)
        future._work = [(contextvars.copy_context(), func, args, kwargs)]
        get_executor().submit_item(_WorkItem(future))
        return future

    submit._concert_async = True
    return submit


def is_async(func: Any) -> bool:
    """Return whether ``func`` was decorated with :func:`async_`."""
    if isinstance(func, (staticmethod, classmethod)):
        func = func.__func__
    return getattr(func, "_concert_async", False) is True


def wait(futures: Iterable[concurrent.futures.Future], timeout: Any = None) -> None:
    """Wait for *all* ``futures``, then raise the first failure in their order.

    Every future is waited for even when an earlier one failed, so nothing is
    left running unnoticed. ``timeout`` (seconds or a time quantity) bounds the
    whole wait.

    :raises WaitError: naming the futures not done within ``timeout``.
    :raises: the exception of the first future (in the given order) that
        failed, or :class:`CancelledError` for the first cancelled one. Every
        further failure is logged with its traceback.
    """
    futures = list(futures)
    seconds = optional_seconds(timeout, "timeout")
    deadline = None if seconds is None else time.monotonic() + seconds
    late = []
    try:
        for future in futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                if isinstance(future, Future):
                    future._block(remaining)
                else:
                    concurrent.futures.wait([future], remaining)
            except WaitError:
                pass
            if not future.done():
                late.append(future)
    except KeyboardInterrupt:
        _cancel_quietly(futures)  # Ctrl-C stops everything being waited for
        raise
    if late:
        raise WaitError(f"{len(late)} of {len(futures)} futures not done within {seconds:g} s: {late!r}")
    failures = []
    for future in futures:
        if future.cancelled():
            failures.append(CancelledError(f"{future!r} was cancelled"))
        elif future.exception() is not None:
            failures.append(future.exception())
    for other in failures[1:]:  # the first is raised; the others must not vanish
        LOG.error(
            "wait(): besides the failure raised, %r also failed",
            other,
            exc_info=(type(other), other, other.__traceback__),
        )
    if failures:
        raise failures[0]


def resolve(futures: Iterable[concurrent.futures.Future], timeout: Any = None) -> List[Any]:
    """Wait for all ``futures`` as :func:`wait` does and return their results in order."""
    futures = list(futures)
    wait(futures, timeout)
    return [future.result() for future in futures]


def threaded(func: Callable) -> Callable[..., threading.Thread]:
    """Decorate ``func`` so that each call runs it in a new daemon thread.

    The call returns the started :class:`threading.Thread`; the caller's
    context travels with it. An exception ends the thread and is reported by
    :func:`threading.excepthook`. Prefer :func:`async_` unless the work must
    outlive the pool, such as a loop that runs for the whole session.
    """

    @functools.wraps(func)
    def start(*args: Any, **kwargs: Any) -> threading.Thread:
        context = contextvars.copy_context()
        context.run(_current.set, None)  # the thread is not part of the caller's call
        thread = threading.Thread(
            target=context.run,
            args=(func, *args),
            kwargs=kwargs,
            name=f"concert-threaded-{_name_of(func)}",
            daemon=True,
        )
        thread.start()
        return thread

    return start
