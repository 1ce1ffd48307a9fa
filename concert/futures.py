"""Futures: the ``async_`` decorator, the :class:`Future` it returns, and cancellation.

Device methods are plain blocking functions. Decorating one with
:func:`async_` makes every call submit it to the module-wide pool
(:mod:`concert.executor`) and return a :class:`Future` at once::

    @async_
    def move(motor, delta):
        ...                      # blocks until the motor has arrived

    future = move(motor, 1 * q.mm)   # returns immediately
    future.join()                    # blocks; raises what move raised

The contract, in one place:

* Every call runs in one thread from its start to its end. A thread that
  waits never runs other work meanwhile; the pool starts other threads
  while its threads wait (see :mod:`concert.executor`), so nesting and
  fan-out never deadlock, and every timeout is honoured.
* The caller's :mod:`contextvars` context is copied at the call and the
  function runs in that copy, in either mode.
* When :data:`concert.config.DISABLE_ASYNC` is true *at the time of the call*
  the same runner runs the function inline, in the caller's thread, and the
  returned future is already finished; an :class:`Exception` it raises is
  stored in the future, not raised at the call. ``KeyboardInterrupt`` and
  other non-``Exception`` errors propagate (after the stop actions ran).
* **One cancellation mechanism.** A cancel request is recorded on the future
  with its *reason* (``cancel()``, ``Ctrl-C``, ``abort()``,
  ``emergency_stop()``, a cancelled parent). Hardware stop actions are
  registered with :func:`on_cancel` and run when the request is made; loops
  call :func:`check_cancelled` between steps. The
  :class:`~concurrent.futures.CancelledError` raised by ``result()`` names the
  operation and the reason: ``LinearMotor#1.move(+5 mm) was stopped by
  emergency_stop()``.
* A running future ends cancelled when its function raises
  ``CancelledError`` or returns after one of its stop actions ran on a
  request. If a stop action raises, the request is withdrawn: the error
  reaches the canceller and the operation goes on or finishes as it would
  have.
* While a decorated call waits for another future, a cancel request on the
  call is passed on to that future: a ``focus`` waiting for its
  optimisation stops it. Work a call submits after it was asked to stop
  (putting motors back in a ``finally``) runs normally.
* A failed future whose exception nobody asked for is logged with its
  traceback when it is garbage-collected; nothing fails silently.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import itertools
import logging
import sys
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, Union

from concert import config, interrupts
from concert.exceptions import CancelActionError, WaitError
from concert.executor import blocked, get_executor
from concert.interrupts import discard_held, protected
from concert.naming import describe_call, describe_value, name_of
from concert.timeouts import optional_seconds

__all__ = [
    "CancelRegistration",
    "CancelledError",
    "Future",
    "async_",
    "awaited_by",
    "check_cancelled",
    "current_future",
    "is_async",
    "on_cancel",
    "resolve",
    "run_in_thread",
    "threaded",
    "wait",
]

LOG = logging.getLogger(__name__)

_T = TypeVar("_T")
_DONE = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED))
_CANCELLED = frozenset((CANCELLED, CANCELLED_AND_NOTIFIED))

#: Submission order of every future; ``next()`` on it is atomic in CPython.
#: Abort fences compare against it (see :mod:`concert.operations`).
_order = itertools.count(1)

#: The future whose function is running in this context (None outside one).
_current: contextvars.ContextVar[Optional[Future]] = contextvars.ContextVar(
    "concert_current_future", default=None
)


# The future each thread waits for in a Concert wait right now: thread ident -> future. An
# entry is written only by its own thread (set before it sleeps, put back after); readers take
# lock-free snapshots (single dict operations are atomic).
_awaiting: Dict[int, Future] = {}


def awaited_by(thread_id: int) -> List[Future]:
    """Return the futures thread ``thread_id`` waits for now, and those their functions wait for in turn.

    A snapshot for deadlock checks (the dispatcher refuses a wait that the
    delivering thread is waiting for): the future the thread is blocked on
    in ``result()``/``wait()``/``join()``, then the future that future's
    function is blocked on, and so on. Safe to call from any thread.
    """
    chain: List[Future] = []
    future = _awaiting.get(thread_id)
    while future is not None and future not in chain:
        chain.append(future)
        runner = future._thread
        future = None if runner is None else _awaiting.get(runner)
    return chain


def next_order() -> int:
    """Return the next number of the submission order (what :attr:`Future.order` holds)."""
    return next(_order)


class Future(concurrent.futures.Future):
    """A :class:`concurrent.futures.Future` with Concert's waiting and cancellation.

    Adds :meth:`wait`/:meth:`join`, cancel requests with a reason that stop
    *running* operations, Ctrl-C handling, ``await`` support and logging of
    failures nobody retrieved. It is still a standard future:
    ``concurrent.futures.wait``, ``as_completed`` and ``add_done_callback``
    work as usual.

    ``name`` is used in messages (``repr``, :class:`~concert.exceptions.WaitError`,
    the ``CancelledError`` of a cancelled future).
    """

    # The base class's state machine and its one Condition, _condition, guard
    # everything here once other threads can see the future:
    #   _cancel_reason  the standing cancel request (first reason wins), or None;
    #                   set while PENDING or RUNNING, withdrawn if a stop action raises
    #   _claimed        the stop actions of that request were taken to be run
    #   _claimed_at     the submission order when that happened (see _block)
    #   _interrupted    one of them ran: a normal return then ends cancelled
    #   _stopping       the stop actions are running right now: settling waits for
    #                   them, so that whether they all succeeded decides the outcome
    #   _cancel_actions replaced whole, never mutated
    # _retrieved is a flag only ever set to True, so it needs no lock. _call is
    # written before the future is shared and dropped when it settles.
    _cancel_actions: Tuple[Callable[[], Any], ...] = ()
    _cancel_reason: Optional[str] = None
    _claimed = False
    _claimed_at = 0
    _interrupted = False
    _stopping = False
    _cancel_text: Optional[str] = None
    _cancel_operation: Optional[Callable[[], Any]] = None  # see cancel_operation
    _retrieved = False
    _call: Optional[tuple] = None
    _thread: Optional[int] = None  # the ident of the thread running the function (set once, at its start)

    def __init__(self, name: Union[str, Callable[[], str], None] = None) -> None:
        """``name`` says what the future stands for; a callable giving it is called when first asked."""
        super().__init__()
        self._name = name
        self.order = next(_order)

    # -- naming ------------------------------------------------------------

    @property
    def name(self) -> str:
        """What this future stands for, e.g. ``'LinearMotor#1.move(+5 mm)'``."""
        name = self._name
        if callable(name):
            name = self._name = name()  # described when first asked: most calls never are
        elif name is None:
            call = self._call
            if call is None:
                return "future"
            name = self._name = describe_call(*call)
        return name

    def __repr__(self) -> str:
        state = self._state.lower().replace("_and_notified", "")
        if self._state == FINISHED:
            state = "failed" if self._exception is not None else "finished"
        return f"<Future {self.name!r} {state} at {id(self):#x}>"

    # -- settling (called by the runner) ------------------------------------

    def _settle(self, result: Any, error: Optional[BaseException]) -> None:
        """Move a running future to its final state: one lock, callbacks after it."""
        # Done before the waiters wake, so that they need not wait for it.
        call = self._call
        if call is not None:
            if (error is not None or self._cancel_reason is not None) and self._name is None:
                self._name = describe_call(*call)  # a failure or stop keeps naming the call in full
            elif len(call[1]) > 1 or call[2]:
                # Drop the arguments (frames, say) but keep the instance: 'Motor#1.move(...)'.
                self._call = (call[0], (*call[1][:1], Ellipsis), {})
        condition = self._condition
        with condition:
            while self._stopping:
                condition.wait()
            if error is None and not self._interrupted:  # the common case first
                self._result = result
                self._state = FINISHED
                for waiter in self._waiters:
                    waiter.add_result(self)
            elif isinstance(error, (CancelledError, KeyboardInterrupt)) or error is None:
                self._cancel_text = self._stopped_text(error)
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
            else:
                self._exception = error
                self._state = FINISHED
                for waiter in self._waiters:
                    waiter.add_exception(self)
            condition.notify_all()
        if self._done_callbacks:
            self._invoke_callbacks()

    def _stopped_text(self, error: Optional[BaseException] = None) -> str:
        reason = self._cancel_reason
        if reason is not None:
            return f"{self.name} was stopped by {reason}"
        text = str(error) if isinstance(error, CancelledError) else ""
        if not text:
            return f"{self.name} was cancelled"
        return text if text.startswith(self.name) else f"{self.name} was stopped: {text}"

    def _cancelled_error(self) -> CancelledError:
        text = self._cancel_text
        if text is None:  # cancelled before it started
            reason = self._cancel_reason or "cancel()"
            text = f"{self.name} was cancelled by {reason} before it started"
        return CancelledError(text)

    # -- cancellation --------------------------------------------------------

    def add_cancel_action(self, action: Callable[[], Any]) -> None:
        """Make a cancel request on the *running* operation call ``action()``.

        ``action`` must make the running function return soon (a motor's
        ``stop``, a camera's ``abort``). Actions stack: a scan registers one,
        the move it makes registers another, and a request runs them all, the
        most recent first. Usually registered with :func:`on_cancel`.
        """
        with self._condition:
            self._cancel_actions = (*self._cancel_actions, action)

    @property
    def cancel_operation(self) -> Optional[Callable[[], Any]]:
        """The legacy spelling of a stop action: ``future.cancel_operation = motor.stop``.

        Assigning a callable registers it with :meth:`add_cancel_action`, so
        a cancel request on the running operation (:meth:`cancel`, Ctrl-C,
        ``abort()``) calls it once, as every stop action; if it raises, the
        request is withdrawn and the error reaches the canceller. Assigning
        again replaces the previous one (it is unregistered); assigning
        ``None`` unregisters it. Reading returns what was assigned last, or
        ``None``. An action assigned after a request was made is not run by
        that request.

        :raises CancelActionError: if the value is neither callable nor ``None``.
        """
        return self._cancel_operation

    @cancel_operation.setter
    def cancel_operation(self, action: Optional[Callable[[], Any]]) -> None:
        if action is not None and not callable(action):
            raise CancelActionError(
                f"{self.name}: cancel_operation must be a callable that stops the operation "
                f"(e.g. motor.stop) or None, not {describe_value(action)}"
            )
        with self._condition:  # replacing is one step (the lock is reentrant)
            previous = self._cancel_operation
            if previous is not None:
                self.remove_cancel_action(previous)
            self._cancel_operation = action
            if action is not None:
                self.add_cancel_action(action)

    def remove_cancel_action(self, action: Callable[[], Any]) -> None:
        """Unregister ``action`` (its last registration); unknown actions are ignored."""
        with self._condition:
            actions = self._cancel_actions
            for index in range(len(actions) - 1, -1, -1):
                if actions[index] is action or actions[index] == action:  # a bound method equals itself
                    self._cancel_actions = actions[:index] + actions[index + 1 :]
                    return

    @protected
    def request_cancel(self, reason: str) -> bool:
        """Record a cancel request with ``reason`` and run the stop actions; do not wait.

        A pending future is cancelled at once and never runs. A running one
        keeps the first reason it was given; its stop actions run in the
        calling thread, the most recent first, once per request.
        Returns whether the future is cancelled or now asked to stop (false
        for a finished one).

        :raises: the first exception a stop action raised (all of them run);
            the request is then withdrawn.
        """
        with self._condition:
            if self._state == PENDING:
                self._cancel_reason = reason
        if super().cancel():
            with self._condition:
                if self._state == CANCELLED:  # tell waiters now, not when the pool reaches it
                    self.set_running_or_notify_cancel()
            return True
        with self._condition:
            if self._state != RUNNING:
                return self._state in _CANCELLED
            if self._claimed:
                return True
            self._claimed = True
            self._claimed_at = next(_order)
            if self._cancel_reason is None:
                self._cancel_reason = reason
            actions = self._cancel_actions
            self._stopping = bool(actions)
        if actions:
            failed = True
            try:
                _run_all(reversed(actions))
                failed = False
            finally:
                with self._condition:
                    if failed:  # withdrawn: the operation goes on or finishes as it would have
                        self._cancel_reason = None
                        self._claimed = False
                    else:
                        self._interrupted = True
                    self._stopping = False
                    self._condition.notify_all()
        return True

    def cancel(self, timeout: Any = None, reason: str = "cancel()") -> bool:
        """Cancel the operation; return whether the future ends cancelled.

        A pending future is cancelled without running. A running one gets a
        cancel request (see :meth:`request_cancel`); then this waits, at most
        ``timeout`` (seconds or a time quantity), until the function has
        returned, so that when it returns ``True`` the operation has really
        stopped. ``False`` means the operation finished anyway (it had no
        stop action and never checked), or it had finished already. Called
        from a thread running an asyncio event loop (as
        ``asyncio.wrap_future`` does) it does not wait and returns ``True``.

        :raises WaitError: if the operation has not stopped within ``timeout``.
        :raises: the first exception a stop action raised; the operation then
            goes on (or finishes) as if nothing had happened.
        """
        seconds = optional_seconds(timeout, "timeout")
        if not self.request_cancel(reason):
            return False
        if self._state in _DONE or _current.get() is self or _in_event_loop():
            # Done; or cancelled from inside its own function (it ends cancelled when it
            # returns); or from an event loop (asyncio.wrap_future), which must not block.
            return self._state != FINISHED
        if not self._wait_done(seconds):
            raise WaitError(f"{self!r} did not stop within {seconds:g} s after {reason}")
        return self._state != FINISHED

    # -- waiting ---------------------------------------------------------------

    def _is_done(self) -> bool:
        return self._state in _DONE

    @protected
    def _wait_done(self, seconds: Optional[float]) -> bool:
        """Wait until done, at most ``seconds``; return whether done. Ctrl-C ends the wait.

        The wait sleeps on a wake-up lock of its own that settling releases
        (the base class's waiter protocol), not on the future's condition, so
        an interrupt can never leave that condition's lock in a wrong state.
        """
        with self._condition:
            if self._state in _DONE:
                return True
            wakeup = _Wakeup()
            self._waiters.append(wakeup)
        ident = threading.get_ident()
        outer = _awaiting.get(ident)
        _awaiting[ident] = self
        try:
            with blocked():
                interrupts.acquire(wakeup.lock, seconds)
        finally:
            if outer is None:
                _awaiting.pop(ident, None)
            else:
                _awaiting[ident] = outer
            with self._condition:
                if wakeup in self._waiters:
                    self._waiters.remove(wakeup)
        return self._state in _DONE

    def _pass_on_cancel(self, waiter: Future) -> None:
        """A stop action of ``waiter`` while it waits for this future: pass its request on."""
        self.request_cancel(waiter._cancel_reason or "cancellation of " + waiter.name)

    @protected
    def _block(self, timeout: Any) -> None:
        """Wait until done. WaitError on timeout; Ctrl-C cancels and re-raises."""
        seconds = None if timeout is None else optional_seconds(timeout, "timeout")  # bad ones fail
        if self._state in _DONE:
            return
        waiter = _current.get()
        link = None
        try:
            if waiter is not None and waiter is not self:
                link = functools.partial(self._pass_on_cancel, waiter)
                # A request made while it waits is passed on, and so is one made after this
                # future was submitted. Work submitted after the request is new work (a
                # dscan putting its motors back in a `finally`): it runs.
                waiter.add_cancel_action(link)
                if waiter._claimed and self.order < waiter._claimed_at:
                    link()
            if not self._wait_done(seconds):
                raise WaitError(f"{self.name} did not finish within {seconds:g} s (it goes on running)")
        except KeyboardInterrupt:
            _cancel_after_interrupt([self])
            raise
        finally:
            if link is not None:
                waiter.remove_cancel_action(link)

    def _outcome(self) -> None:
        self._retrieved = True
        if self._state in _CANCELLED:
            raise self._cancelled_error()

    @protected
    def wait(self, timeout: Any = None) -> Future:
        """Block until done and return this future (so ``f.wait().result()`` works).

        ``timeout`` is in seconds or a time quantity; ``None`` waits forever.
        It bounds this wait only: the operation goes on after a timeout.

        :raises WaitError: if not done within ``timeout``.
        :raises CancelledError: if the future was cancelled, naming the reason.
        :raises: the exception the function raised.
        :raises KeyboardInterrupt: after a cancel request on the future (which
            runs its stop actions, e.g. stops the motor).
        """
        self._block(timeout)
        self._outcome()
        super().result(0)
        return self

    join = wait

    @protected
    def result(self, timeout: Any = None) -> Any:
        """Return the function's result, waiting as :meth:`wait` does."""
        self._block(timeout)
        self._retrieved = True
        if self._state == FINISHED and self._exception is None:  # settled: no lock needed
            return self._result
        self._outcome()
        return super().result(0)

    @protected
    def exception(self, timeout: Any = None) -> Optional[BaseException]:
        """Return the function's exception (or ``None``), waiting as :meth:`wait` does."""
        self._block(timeout)
        self._outcome()
        return super().exception(0)

    def __await__(self):
        """Await the result from asyncio without blocking the event loop.

        Cancelling the awaiting task cancels this future: the cancel request
        is made in a helper thread while the task waits for it, so the loop
        stays free and, once the task has been cancelled, the operation has
        stopped.
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
        except asyncio.CancelledError as error:
            # The task's cancel message (``task.cancel("Ctrl-C")``) is the reason, when there is one.
            reason = (str(error.args[0]) if error.args and error.args[0] else "") or "task cancellation"
            await loop.run_in_executor(None, functools.partial(self.cancel, reason=reason))
            raise
        if self.cancelled():
            raise asyncio.CancelledError(str(self._cancelled_error()))
        return self.result()

    @protected  # a Ctrl-C during garbage collection would be swallowed: it waits instead
    def __del__(self) -> None:
        if getattr(self, "_state", None) == FINISHED and self._exception is not None and not self._retrieved:
            error = self._exception
            try:
                LOG.error(
                    "%r failed and nobody retrieved its exception",
                    self,
                    exc_info=(type(error), error, error.__traceback__),
                )
            except Exception:  # logging torn down at interpreter exit
                pass


def _in_event_loop() -> bool:
    asyncio = sys.modules.get("asyncio")  # no event loop can run before asyncio is imported
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Wakeup:
    """A waiter in the base class's protocol that releases a lock when the future is done."""

    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()

    def _wake(self, future: Any) -> None:
        if self.lock.locked():
            self.lock.release()

    add_result = add_exception = add_cancelled = _wake


def _set_if_pending(waiter: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Scope(Future):
    """The future a blocking call made outside any future runs in, already running.

    A device call run in the caller's thread (see :mod:`concert.operations`)
    is made in one, so that ``abort()`` from another thread and Ctrl-C stop
    it as they stop a call in the pool. Most such calls are never
    cancelled, waited for or given a stop action, so the base class's
    Condition is made the first time something needs it.
    """

    def __init__(self, name: Union[str, Callable[[], str], None] = None) -> None:
        # The fields of concurrent.futures.Future.__init__, but running (nobody else has
        # seen the future yet) and without the Condition (see _condition).
        self._state = RUNNING
        self._result = None
        self._exception = None
        self._waiters: List[Any] = []
        self._done_callbacks: List[Callable[[concurrent.futures.Future], Any]] = []
        self._name = name
        self.order = next(_order)

    @property
    def _condition(self) -> threading.Condition:  # type: ignore[override]
        try:
            return self.__dict__["_made_condition"]
        except KeyError:  # first use; setdefault is atomic, so racing threads get the same one
            return self.__dict__.setdefault("_made_condition", threading.Condition())


def current_future() -> Optional[Future]:
    """Return the future of the operation running in this context, if any."""
    return _current.get()


def check_cancelled() -> None:
    """Raise ``CancelledError`` if the operation running here was asked to stop.

    The one check for loops (scans, writers, grabs, pipelines): call it
    between steps. Outside any operation it does nothing.

    :raises CancelledError: naming the operation and the reason of the request.
    """
    future = _current.get()
    if future is not None and future._cancel_reason is not None:
        with future._condition:
            while future._stopping:  # a stop action that fails withdraws the request
                future._condition.wait()
            if future._cancel_reason is None:
                return
        raise CancelledError(future._stopped_text())


class CancelRegistration:
    """A stop action registered by :func:`on_cancel`; a ``with`` block unregisters it on exit.

    Leaving the block with a ``KeyboardInterrupt`` (Ctrl-C in the main thread,
    e.g. in a blocking move) runs the action, protected from a second Ctrl-C,
    before the interrupt goes on: the hardware is stopped.
    """

    __slots__ = ("_action", "_future")

    def __init__(self, future: Optional[Future], action: Callable[[], Any]) -> None:
        self._future, self._action = future, action

    def remove(self) -> None:
        """Unregister the action (nothing happens if it was registered outside a call)."""
        if self._future is not None:
            self._future.remove_cancel_action(self._action)

    def __enter__(self) -> CancelRegistration:
        return self

    @protected
    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.remove()
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            future = self._future
            if future is not None:
                with future._condition:
                    if future._cancel_reason is None:
                        future._cancel_reason = "Ctrl-C"
            try:
                self._action()
            except Exception:
                LOG.exception("stopping after Ctrl-C failed: %r", self._action)
            discard_held()


def on_cancel(action: Callable[[], Any]) -> CancelRegistration:
    """Register ``action`` as a stop action of the operation running here.

    Call it before the part that ``action`` interrupts. Used as a context
    manager, the action is unregistered when the block ends -- what a step
    nested in a longer operation wants::

        @async_
        def move(self, delta):
            with on_cancel(self.stop):      # cancelling stops the motor
                ...

    Without ``with`` it stays registered until the call ends. Outside any
    operation it registers nothing, but a ``with`` block still runs
    ``action`` when Ctrl-C interrupts it.

    :raises CancelledError: if the operation was already asked to stop: the
        part it would interrupt must not start.
    """
    future = _current.get()
    if future is not None:
        with future._condition:  # the check and the registration are one step
            while future._stopping:
                future._condition.wait()
            if future._cancel_reason is None:
                future._cancel_actions = (*future._cancel_actions, action)
                return CancelRegistration(future, action)
        raise CancelledError(future._stopped_text())
    return CancelRegistration(future, action)


#: How long Ctrl-C waits for the operations it stopped to end, in seconds.
INTERRUPT_GRACE = 5.0


def request_cancel_logged(future: concurrent.futures.Future, reason: str) -> bool:
    """Ask ``future`` to stop with ``reason`` where an interrupt is being handled; return whether it is.

    A failing stop action is logged instead of raised, so that the stop of
    the others and the interrupt being handled go on. A future that is not
    Concert's is cancelled the standard way.
    """
    try:
        if isinstance(future, Future):
            return future.request_cancel(reason)
        return future.cancel()
    except Exception:
        LOG.exception("stopping %r after %s failed", future, reason)
        return False


@protected
def _cancel_after_interrupt(futures: Iterable[concurrent.futures.Future]) -> None:
    """Ask every future to stop because of Ctrl-C; log failing stop actions instead of raising them.

    Then wait, at most :data:`INTERRUPT_GRACE` seconds in all, until they
    have ended, so that the interrupt reaches the caller once the operations
    have stopped; one still running then is logged. Protected: a second
    Ctrl-C cannot leave some of them running. The KeyboardInterrupt being
    handled stays what the caller sees.
    """
    futures = list(futures)
    for future in futures:
        request_cancel_logged(future, "Ctrl-C")
    deadline = time.monotonic() + INTERRUPT_GRACE
    for future in futures:
        if not future.done() and _current.get() is not future:
            concurrent.futures.wait([future], max(0.0, deadline - time.monotonic()))
            if not future.done():
                LOG.error("%r was asked to stop after Ctrl-C but is still running", future)
    discard_held()


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


def _run(future: Future, func: Callable, args: tuple, kwargs: dict, fresh: bool = False) -> None:
    """The one runner of a call, in a pool thread or inline (already in the call's context).

    Exceptions end in the future. A ``KeyboardInterrupt`` (inline only: pool
    threads never get one) first runs the stop actions still registered,
    protected from a second Ctrl-C, and is then raised again, as is any other non-``Exception``.
    """
    if fresh:  # made by the caller just now (inline): nobody else can have cancelled it
        future._state = RUNNING
    else:
        with future._condition:  # the base class's set_running_or_notify_cancel, in one lock
            state = future._state
            if state != PENDING:
                if state == CANCELLED:
                    future._state = CANCELLED_AND_NOTIFIED
                    for waiter in future._waiters:
                        waiter.add_cancelled(future)
                return
            future._state = RUNNING
    future._thread = threading.get_ident()
    _current.set(future)
    try:
        result = func(*args, **kwargs)
    except BaseException as error:
        _finish_after(future, error)
        if not isinstance(error, Exception):
            raise
    else:
        future._settle(result, None)


@protected
def _finish_after(future: Future, error: BaseException) -> None:
    if isinstance(error, KeyboardInterrupt):
        request_cancel_logged(future, "Ctrl-C")
        discard_held()
    future._settle(None, error)


class _Call:
    """What the pool runs for one ``@async_`` call: its future (holding the call) and context."""

    __slots__ = ("context", "future")

    def __init__(self, future: Future) -> None:
        self.future = future
        self.context = contextvars.copy_context()

    def run(self) -> None:
        """Run in a pool thread: a ``SystemExit`` and the like end in the future, not the thread."""
        func, args, kwargs = self.future._call  # whole until the call settles
        try:
            self.context.run(_run, self.future, func, args, kwargs)
        except BaseException:  # already stored in the future by _run
            pass
        finally:
            self.context = None


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

    @functools.wraps(func)
    def submit(*args: Any, **kwargs: Any) -> Future:
        future = Future()
        future._call = (func, args, kwargs)
        if config.DISABLE_ASYNC:  # the same runner, inline (frames kept few: nesting recurses)
            contextvars.copy_context().run(_run, future, func, args, kwargs, True)
        else:
            get_executor().submit(_Call(future))
        return future

    submit._concert_async = True
    return submit


def is_async(func: Any) -> bool:
    """Return whether ``func`` was decorated with :func:`async_`."""
    if isinstance(func, (staticmethod, classmethod)):
        func = func.__func__
    return getattr(func, "_concert_async", False) is True


@protected
def wait(futures: Iterable[concurrent.futures.Future], timeout: Any = None) -> None:
    """Wait for *all* ``futures``, then raise the first failure in their order.

    Every future is waited for even when an earlier one failed, so nothing is
    left running unnoticed. ``timeout`` (seconds or a time quantity) bounds the
    whole wait; the operations go on after it. Ctrl-C while waiting asks
    every one of them to stop (their stop actions run) and is raised again.

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
                    with blocked():
                        interrupts.interruptibly(concurrent.futures.wait, [future], remaining)
            except WaitError:
                pass
            if not future.done():
                late.append(future)
    except KeyboardInterrupt:
        _cancel_after_interrupt(futures)  # Ctrl-C stops everything being waited for
        raise
    if late:
        names = ", ".join(getattr(future, "name", None) or repr(future) for future in late)
        raise WaitError(
            f"{len(late)} of {len(futures)} futures not done within {seconds:g} s "
            f"(they go on running): {names}"
        )
    failures: List[BaseException] = []
    for future in futures:
        if future.cancelled():
            failures.append(
                future._cancelled_error()
                if isinstance(future, Future)
                else CancelledError(f"{future!r} was cancelled")
            )
        elif future.exception() is not None:
            failures.append(future.exception())
    for other in failures[1:]:  # the first is raised; the other failures must not vanish
        if isinstance(other, CancelledError):
            continue  # a cancellation is an outcome the caller asked for, not a failure to report
        LOG.error(
            "wait(): besides the failure raised, %r also failed",
            other,
            exc_info=(type(other), other, other.__traceback__),
        )
    if failures:
        raise failures[0]


@protected
def resolve(futures: Iterable[concurrent.futures.Future], timeout: Any = None) -> List[Any]:
    """Wait for all ``futures`` as :func:`wait` does and return their results in order."""
    futures = list(futures)
    wait(futures, timeout)
    return [future.result() for future in futures]


def run_in_thread(func: Callable[..., _T], *args: Any, name: Optional[str] = None, **kwargs: Any) -> Future:
    """Run ``func(*args, **kwargs)`` in a new daemon thread of its own; return its :class:`Future`.

    For work that must outlive the pool, such as a poll that runs for the
    whole session. The call runs as an :func:`async_` call does -- in a copy
    of the caller's context, its future the current one (so
    :func:`check_cancelled` and :func:`on_cancel` work), cancellable with a
    reason -- but never waits for a pool thread. ``name`` names the future
    (default: the call, as :func:`async_` names it).
    """
    future = Future(name)
    future._call = (func, args, kwargs)
    context = contextvars.copy_context()
    context.run(_current.set, None)  # the thread is not part of the caller's call
    thread = threading.Thread(
        target=context.run,
        args=(_run, future, func, args, kwargs),
        name=f"concert-thread-{name_of(func)}",
        daemon=True,
    )
    thread.start()
    return future


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
            name=f"concert-threaded-{name_of(func)}",
            daemon=True,
        )
        thread.start()
        return thread

    return start
