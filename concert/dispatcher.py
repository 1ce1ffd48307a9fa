"""Publish-subscribe messaging between devices and whoever watches them.

A :class:`Dispatcher` calls ``handler(sender)`` for every message a sender
sends, in a thread of its own and in the order the messages were sent.
:data:`dispatcher` is the instance every device uses.

Design, in short:

* Senders are compared by identity, so any object -- a dict, a device, a
  parameter value -- can send. A subscription keeps its sender alive until it
  is unsubscribed (an identity key must never be reused by a new object).
* ``send`` appends to an unbounded :class:`collections.deque` and wakes the
  delivery thread only if it sleeps: it never blocks on a handler and never
  drops a message.
* The subscription table is a dict mutated only under ``_subscribe_lock``; its
  values are immutable ``(sender, handlers)`` tuples, replaced whole, so the
  delivering thread reads it without a lock. Which handlers receive a message
  is fixed when its delivery starts.
* Exactly one thread delivers at a time: whoever holds ``_delivery_lock`` (the
  delivery thread, or a thread delivering synchronously: a ``send`` or
  ``flush`` while :data:`concert.config.DISABLE_ASYNC` is on, any ``send`` once
  the interpreter exits). That lock is what keeps the order when the switch is
  flipped: a synchronous delivery first delivers whatever is still queued.
* No ``send`` or ``flush`` waits for that lock without a bound unless told to
  (``flush(timeout=None)``, ``sync_timeout=None``): a synchronous ``send``
  waits at most ``sync_timeout`` and then queues its message behind the
  delivery that holds it up (logged); during exit it waits at most until the
  exit deadline and otherwise logs the message as lost. Nothing is dropped
  without an ``ERROR`` naming it.
* A flush marker popped by a nested delivery (a handler that sends
  synchronously) is set only once the outermost delivery has finished, so
  ``flush`` never returns while a handler of an earlier message still runs.
* Interpreter exit (``_deliver_queued_at_exit``, an :mod:`atexit` hook) sets
  ``_exiting`` and waits, within :data:`concert.config.EXIT_FLUSH_TIMEOUT`,
  for what is queued and for the delivery in progress. From then on every
  ``send`` delivers in the sending thread -- the delivery thread does not
  outlive the exit, and starting one at shutdown raises ``RuntimeError``
  (3.12: in atexit functions; 3.13+: once finalizing) or hangs for ever
  (before 3.12, ``Thread.start`` waits for a thread the finalizing
  interpreter never lets run) -- except a send from a handler running in the
  delivery thread: that one is queued, and the loop running the handler
  delivers it next (nesting there would recurse once per queued message).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures import InvalidStateError
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

from concert import config
from concert.exceptions import MessagingError, WaitError
from concert.futures import Future
from concert.interrupts import interruptibly, protected
from concert.timeouts import optional_seconds

__all__ = ["ANY", "Dispatcher", "dispatcher"]

LOG = logging.getLogger(__name__)

Handler = Callable[[Any], Any]


class _Any:
    """The wildcard: as a sender it matches every sender, as a message every message."""

    _instance: Optional[_Any] = None

    def __new__(cls) -> _Any:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY"

    def __reduce__(self) -> str:
        return "ANY"


#: Subscribe with ``ANY`` as sender or message to receive from every sender or every message.
ANY = _Any()
_ANY_ID = id(ANY)

# A queue item whose sender is _FLUSH carries a threading.Event to set instead of a message.
_FLUSH = object()

# Set by _deliver_queued_at_exit: from then on every send is delivered in the sending
# thread, waiting for the delivery lock at most until _exit_deadline (time.monotonic()).
_exiting = False
_exit_deadline = 0.0
_is_finalizing = sys.is_finalizing


def _check_message(message: Any) -> None:
    if type(message) is not str:
        try:
            hash(message)
        except TypeError:
            raise MessagingError(f"message {message!r} cannot be used: messages must be hashable") from None


def _short(value: Any, limit: int = 100) -> str:
    """``repr(value)`` for a log line: never raises (objects may be half torn down at exit), never huge."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object, repr() failed>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clamp(seconds: Optional[float]) -> Optional[float]:
    """A timeout every blocking call accepts (they refuse more than ``threading.TIMEOUT_MAX``)."""
    return None if seconds is None else min(seconds, threading.TIMEOUT_MAX)


class Dispatcher:
    """Deliver messages from senders to subscribed handlers.

    ``sync_timeout`` (seconds or a time quantity, ``None`` for no limit; also an
    attribute that can be changed at any time) bounds how long a synchronous
    :meth:`send` waits for a delivery that runs in another thread before it
    queues its message instead (see :meth:`send`).

    All methods are thread-safe and may be called from inside handlers
    (except :meth:`flush`, which would wait for itself there).
    """

    def __init__(self, name: str = "dispatcher", sync_timeout: Any = 10.0) -> None:
        self._name = name
        self.sync_timeout = sync_timeout
        # Guarded by _subscribe_lock for writing; read lock-free (see module docs).
        self._table: Dict[Tuple[int, Hashable], Tuple[Any, Tuple[Handler, ...]]] = {}
        self._wildcard_entries = 0
        self._subscribe_lock = threading.Lock()
        # Items are (sender, message, number) or (_FLUSH, event, number); deque ops
        # are atomic. Numbers come from _numbers (its next() is atomic) and tell
        # when() which messages were sent after it; _number_now is the number of
        # the message being delivered (written only by whoever holds _delivery_lock).
        self._queue: deque = deque()
        self._numbers = itertools.count(1)
        self._number_now = 0
        # Wake-up protocol: the thread sets _sleeping under _wakeup, then re-checks
        # the queue before waiting; a sender appends, then notifies if _sleeping.
        self._wakeup = threading.Condition(threading.Lock())
        self._sleeping = False
        # Taken and released only by _take() and _give(), which keep _holder (its thread's
        # ident) and _depth (how often it holds it: deliveries nest when a handler sends
        # synchronously) right even when Ctrl-C comes. Also written only by the holder:
        # flush events popped by a nested delivery (set when the outermost one ends), and
        # for log messages the queue item and the handler whose delivery started last.
        self._delivery_lock = threading.RLock()
        self._holder: Optional[int] = None
        self._depth = 0
        self._held_flushes: List[threading.Event] = []
        self._item_now: Optional[Tuple[Any, Any, int]] = None
        self._handler_now: Optional[Handler] = None
        # _number_now when a synchronous send last gave up waiting for the lock: while
        # that delivery has not moved on, later synchronous sends do not wait again.
        self._stuck_at: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._thread_lock = threading.Lock()
        _instances.add(self)

    def __repr__(self) -> str:
        return f"<Dispatcher {self._name!r}, {self.queued()} queued>"

    @property
    def sync_timeout(self) -> Optional[float]:
        """Seconds a synchronous :meth:`send` waits for another thread's delivery (``None``: no limit)."""
        return self._sync_timeout

    @sync_timeout.setter
    def sync_timeout(self, value: Any) -> None:
        self._sync_timeout = optional_seconds(value, "sync_timeout")

    def queued(self) -> int:
        """Return how many messages wait for delivery (a snapshot)."""
        return sum(1 for sender, _, _ in list(self._queue) if sender is not _FLUSH)

    # -- subscriptions -----------------------------------------------------------

    def subscribe(self, sender: Any, message: Hashable, handler: Handler) -> None:
        """Call ``handler(sender)`` whenever ``sender`` sends ``message``.

        ``sender`` and ``message`` may be :data:`ANY`. Subscribing a handler
        that is already subscribed (equal, e.g. the same bound method) does
        nothing. The subscription holds a reference to ``sender``.

        :raises MessagingError: if ``handler`` is not callable or ``message``
            is not hashable.
        """
        if not callable(handler):
            raise MessagingError(
                f"cannot subscribe {handler!r} to message {message!r} from {sender!r}: "
                "the handler is not callable"
            )
        _check_message(message)
        key = (id(sender), message)
        with self._subscribe_lock:
            entry = self._table.get(key)
            if entry is None:
                self._table[key] = (sender, (handler,))
                if key[0] == _ANY_ID or message is ANY:
                    self._wildcard_entries += 1
            elif handler not in entry[1]:
                self._table[key] = (sender, entry[1] + (handler,))

    def unsubscribe(self, sender: Any, message: Hashable, handler: Handler) -> None:
        """Stop calling ``handler`` for ``message`` from ``sender``.

        Unsubscribing what is not subscribed does nothing.
        """
        _check_message(message)
        key = (id(sender), message)
        with self._subscribe_lock:
            entry = self._table.get(key)
            if entry is None or entry[0] is not sender or handler not in entry[1]:
                return
            handlers = tuple(h for h in entry[1] if h != handler)
            if handlers:
                self._table[key] = (sender, handlers)
            else:
                del self._table[key]
                if key[0] == _ANY_ID or message is ANY:
                    self._wildcard_entries -= 1

    # -- sending -------------------------------------------------------------------

    def send(self, sender: Any, message: Hashable) -> None:
        """Queue ``message`` from ``sender`` for delivery and return at once.

        The message is instead delivered *synchronously*, in the calling
        thread and after anything still queued before it, while
        :data:`concert.config.DISABLE_ASYNC` is on and once the interpreter has
        begun to exit (when no delivery thread can be relied on or started;
        a handler running in the delivery thread still queues then, and its
        message is delivered right after the messages queued before it).
        To keep the order, such a send first waits for a delivery running in
        another thread -- at most :attr:`sync_timeout` seconds; during exit at
        most until the exit deadline (:data:`concert.config.EXIT_FLUSH_TIMEOUT`
        after the exit began), and not at all once the interpreter finalizes.
        If that delivery has not finished by then, the message is not dropped
        silently: under DISABLE it is queued behind it, to be delivered in
        order by the delivery thread, and a ``WARNING`` says so (while that
        same delivery stays stuck, later sends queue at once); during exit it
        can no longer be delivered, and an ``ERROR`` names it. Ctrl-C ends
        that wait with :class:`KeyboardInterrupt`; the message is then not
        sent.

        When the delivery thread cannot be started (at interpreter shutdown,
        or when the system refuses a new thread), the queued messages are
        delivered synchronously in the same way; if even that is impossible,
        an ``ERROR`` names them.

        :raises MessagingError: if ``message`` is not hashable.
        """
        if type(message) is not str:
            _check_message(message)
        number = next(self._numbers)
        if config.DISABLE_ASYNC or (_exiting and threading.current_thread() is not self._thread):
            self._send_here(sender, message, number)
            return
        # A handler in the delivery thread sending during exit queues too: the loop
        # delivering that handler's message delivers it next (no nesting, no recursion).
        self._queue.append((sender, message, number))
        if self._thread is None and not self._start():
            self._deliver_queue_or_log("no delivery thread could be started")
        elif self._sleeping:
            with self._wakeup:
                self._wakeup.notify()
        if _exiting and threading.current_thread() is not self._thread:
            self._deliver_queue_or_log("sent while the interpreter began to exit")  # raced with the exit

    def flush(self, timeout: Any = None) -> None:
        """Return once every message sent before this call has been delivered.

        ``timeout`` is in seconds or a time quantity; ``None`` waits forever.
        It is honoured in every mode.

        Under :data:`concert.config.DISABLE_ASYNC`, when no delivery thread
        runs, and during interpreter exit, whatever is still queued is
        delivered in the calling thread, as a synchronous :meth:`send` would:
        ``timeout`` then bounds the wait for a delivery running in another
        thread and is checked between messages (a handler running in the
        calling thread is not interrupted). During exit the wait for another
        thread also ends at the exit deadline.

        :raises WaitError: if that takes longer than ``timeout`` (the message
            says which delivery holds it up); messages not delivered yet stay
            queued.
        :raises MessagingError: when called from a handler running in this
            dispatcher's delivery thread.
        """
        seconds = optional_seconds(timeout, "timeout")
        if threading.current_thread() is self._thread:
            raise MessagingError(f"{self!r}: flush() called from a handler would wait for itself")
        what = "messages sent before flush()"
        if config.DISABLE_ASYNC or _exiting or self._thread is None:
            deadline = None if seconds is None else time.monotonic() + seconds
            wait = seconds
            if _exiting:  # nothing may wait beyond the exit deadline
                limit = 0.0 if _is_finalizing() else max(0.0, _exit_deadline - time.monotonic())
                wait = limit if seconds is None else min(seconds, limit)
            self._deliver_queue_here(wait, deadline, what)
        else:
            self._wait_for_thread(seconds, what)

    def when(self, sender: Any, message: Hashable) -> Future:
        """Return a future resolved with the sender of the next matching message sent from now on.

        Messages sent before this call do not count, even if they are still
        waiting for delivery. Call it first, then trigger, then wait -- nothing
        can slip through::

            arrived = dispatcher.when(motor, 'standby')
            motor.move(1 * q.mm)
            arrived.result(timeout=10)

        Cancelling the future removes the subscription; a future nobody waits
        for any more should be cancelled, or its subscription stays (and keeps
        ``sender`` alive) until a matching message arrives.
        """
        future = Future(f"when({sender!r}, {message!r})")
        after = next(self._numbers)

        def resolve(actual_sender: Any) -> None:
            if self._number_now > after and not future.done():
                try:
                    future.set_result(actual_sender)
                except InvalidStateError:  # cancelled just now: nothing to resolve
                    pass

        future.add_done_callback(lambda _: self.unsubscribe(sender, message, resolve))
        self.subscribe(sender, message, resolve)
        return future

    # -- synchronous delivery ----------------------------------------------------------

    def _sync_wait(self) -> Optional[float]:
        """How long a synchronous delivery may wait for the delivery lock now."""
        if _is_finalizing():
            return 0.0  # no other thread runs any more: whoever holds the lock never releases it
        if _exiting:
            return max(0.0, _exit_deadline - time.monotonic())
        return self._sync_timeout

    @protected
    def _take(self, seconds: Optional[float]) -> bool:
        """Take the delivery lock within ``seconds`` (``None``: however long it takes).

        Ctrl-C may end the wait, but never leaves the lock taken or the books wrong.
        """
        lock = self._delivery_lock
        if not lock.acquire(blocking=False):  # so this thread did not hold it
            if seconds is not None and seconds <= 0:
                return False
            try:
                if not interruptibly(lock.acquire, True, -1 if seconds is None else _clamp(seconds)):
                    return False
            except BaseException:  # Ctrl-C: it may have come just after the lock was had
                if getattr(lock, "_is_owned", bool)():
                    lock.release()
                raise
        self._holder = threading.get_ident()
        self._depth += 1
        return True

    def _level(self) -> int:
        """How often the calling thread holds the delivery lock now (what _give() returns to)."""
        return self._depth if self._holder == threading.get_ident() else 0

    @protected
    def _give(self, level: int) -> None:
        """Undo the _take() that brought the calling thread above ``level``, if it took the lock."""
        if self._holder == threading.get_ident() and self._depth > level:
            self._depth -= 1
            if not self._depth:
                self._holder = None
                if self._held_flushes:  # the outermost delivery is over
                    self._set_held_flushes()
            self._delivery_lock.release()

    def _send_here(self, sender: Any, message: Hashable, number: int) -> None:
        wait = self._sync_wait()
        if self._stuck_at is not None and self._stuck_at == self._number_now:
            wait = 0.0  # the delivery that held up an earlier send is still not done
        level = self._level()
        try:
            if self._take(wait):
                self._stuck_at = None
                self._drain()
                self._deliver_own(sender, message, number)
                return
        finally:
            self._give(level)
        self._stuck_at = self._number_now
        what = f"message {_short(message)} from {_short(sender)}"
        if _exiting or _is_finalizing():
            LOG.error(
                "%s: %s, sent during interpreter exit, was not delivered and is lost: %s",
                self._name,
                what,
                self._describe_delivery(),
            )
            return
        self._queue.append((sender, message, number))
        LOG.warning(
            "%s: %s could not be delivered synchronously within %g s because %s; it was queued "
            "behind that delivery and the delivery thread delivers it, in order, once it finishes",
            self._name,
            what,
            wait or 0.0,
            self._describe_delivery(),
        )
        if self._thread is None and not self._start():
            LOG.error(
                "%s: no delivery thread could be started: %s stays queued until a later "
                "synchronous send or flush() delivers it",
                self._name,
                what,
            )
        elif self._sleeping:
            with self._wakeup:
                self._wakeup.notify()

    def _deliver_queue_here(self, wait: Optional[float], deadline: Optional[float], what: str) -> None:
        """Deliver what is queued in the calling thread.

        Waits at most ``wait`` seconds for the delivery lock and stops between
        two messages once ``deadline`` (``time.monotonic()``) has passed.

        :raises WaitError: naming ``what`` and what holds the delivery up.
        """
        level = self._level()
        try:
            if not self._take(wait):
                raise WaitError(
                    f"{self!r}: {what} were not all delivered within {wait:g} s: {self._describe_delivery()}"
                )
            if not self._drain(deadline):
                raise WaitError(
                    f"{self!r}: {what} were not all delivered within the timeout: the handlers "
                    "run for the others in this thread took it up"
                )
        finally:
            self._give(level)

    def _deliver_queue_or_log(self, why: str) -> None:
        try:
            self._deliver_queue_here(self._sync_wait(), None, "queued messages")
        except WaitError:
            count = self.queued()
            if count:
                LOG.error(
                    "%s: %d queued messages could not be delivered (%s) and stay queued, probably "
                    "lost: %s; %s",
                    self._name,
                    count,
                    why,
                    self._describe_queue(),
                    self._describe_delivery(),
                )

    def _describe_delivery(self) -> str:
        """Which delivery holds the lock, as far as it can be told (it is a snapshot)."""
        item, handler = self._item_now, self._handler_now
        if item is None:
            return "another thread is delivering"
        return (
            f"another delivery is still running (the last one started: handler {_short(handler)} "
            f"for message {_short(item[1])} from {_short(item[0])})"
        )

    def _describe_queue(self, limit: int = 5) -> str:
        items = [(sender, message) for sender, message, _ in list(self._queue) if sender is not _FLUSH]
        text = ", ".join(f"{_short(message)} from {_short(sender)}" for sender, message in items[:limit])
        if len(items) > limit:
            text += f" and {len(items) - limit} more"
        return text or "none"

    # -- delivery ----------------------------------------------------------------------

    def _start(self) -> bool:
        """Start the delivery thread unless it runs; return whether it runs."""
        with self._thread_lock:
            if self._thread is not None:
                return True
            if _is_finalizing():
                return False  # start() would wait for ever for a thread that never runs
            thread = threading.Thread(target=self._run, name=f"concert-{self._name}", daemon=True)
            self._thread = thread  # before start(): the thread checks its own identity
            try:
                thread.start()
            except RuntimeError:  # "can't create new thread at interpreter shutdown", or none left
                self._thread = None
                return False
            return True

    def _wait_for_thread(self, seconds: Optional[float], what: str) -> None:
        done = threading.Event()
        self._queue.append((_FLUSH, done, 0))
        if self._sleeping:
            with self._wakeup:
                self._wakeup.notify()
        if not done.wait(_clamp(seconds)):
            raise WaitError(
                f"{self!r}: {what} were not all delivered within {seconds:g} s: {self._describe_delivery()}"
            )

    def _run(self) -> None:
        queue = self._queue
        while True:
            if queue:
                try:
                    self._take(None)
                    self._drain()
                finally:
                    self._give(0)
                continue
            with self._wakeup:
                self._sleeping = True
                while not queue:
                    self._wakeup.wait()
                self._sleeping = False

    def _drain(self, deadline: Optional[float] = None) -> bool:
        """Deliver the queue in order; the caller took the delivery lock.

        Returns ``False`` if ``deadline`` passed with messages left, else ``True``.
        """
        queue = self._queue
        popleft = queue.popleft
        deliver = self._deliver
        held = self._held_flushes
        outermost = self._depth == 1
        while True:
            if deadline is not None and queue and time.monotonic() >= deadline:
                return False
            try:
                item = popleft()
            except IndexError:
                return True
            sender, message, number = item
            if sender is _FLUSH:
                if outermost:
                    message.set()
                else:  # a handler of an earlier message is still running: _give() sets it
                    held.append(message)
                continue
            self._number_now = number
            self._item_now = item
            deliver(sender, message)
            if held and outermost:
                self._set_held_flushes()

    def _deliver_own(self, sender: Any, message: Hashable, number: int) -> None:
        # The caller took the delivery lock and has drained the queue.
        self._number_now = number
        self._item_now = (sender, message, number)
        self._deliver(sender, message)

    def _set_held_flushes(self) -> None:
        held = self._held_flushes
        while held:
            held.pop().set()

    def _deliver(self, sender: Any, message: Hashable) -> None:
        table = self._table
        sender_id = id(sender)
        entry = table.get((sender_id, message))
        if self._wildcard_entries:
            handlers = [] if entry is None else list(entry[1])
            for key in ((sender_id, ANY), (_ANY_ID, message), (_ANY_ID, ANY)):
                other = table.get(key)
                if other is not None:
                    handlers.extend(h for h in other[1] if h not in handlers)
        elif entry is None:
            return
        else:
            handlers = entry[1]
        for handler in handlers:
            self._handler_now = handler
            try:
                handler(sender)
            except BaseException as error:
                if not isinstance(error, Exception) and threading.current_thread() is not self._thread:
                    raise  # Ctrl-C in a synchronous send belongs to the caller
                # Logged, and delivery goes on: even a SystemExit must not end it for everybody.
                LOG.exception(
                    "%s: handler %r for message %r from %r raised", self._name, handler, message, sender
                )

    # -- interpreter exit ----------------------------------------------------------------

    def _deliver_at_exit(self, limit: float) -> None:
        """Deliver what is queued before ``_exit_deadline``; log what is left undelivered."""
        try:
            thread = self._thread
            if self._queue and thread is not None and thread.is_alive():
                # Let the delivery thread deliver (a handler stuck there cannot hang the exit).
                self._wait_for_thread(max(0.0, _exit_deadline - time.monotonic()), "messages queued at exit")
            # Then wait for a delivery still running, and deliver here what was queued meanwhile.
            self._deliver_queue_here(self._sync_wait(), _exit_deadline, "messages queued at exit")
        except WaitError:
            count = self.queued()
            if count:
                LOG.error(
                    "%r: %d messages were still queued at exit after %g s and were not delivered: %s; %s",
                    self,
                    count,
                    limit,
                    self._describe_queue(),
                    self._describe_delivery(),
                )
            else:
                LOG.error(
                    "%r: a delivery had not finished at exit after %g s: %s",
                    self,
                    limit,
                    self._describe_delivery(),
                )


# Every dispatcher, so that queued messages are delivered at interpreter exit.
_instances: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


def _deliver_queued_at_exit() -> None:
    global _exiting, _exit_deadline
    try:
        limit = optional_seconds(config.EXIT_FLUSH_TIMEOUT, "EXIT_FLUSH_TIMEOUT")
    except Exception as error:  # a bad value set at run time must not cost the messages
        LOG.error("concert.config.EXIT_FLUSH_TIMEOUT is invalid (%s): 10 s are used", error)
        limit = 10.0
    if limit is None:
        limit = 3600.0
    _exit_deadline = time.monotonic() + limit
    _exiting = True
    for instance in list(_instances):
        instance._deliver_at_exit(limit)


# Runs after threading's shutdown has joined the pool, so messages sent by
# work that finished at exit are delivered too.
atexit.register(_deliver_queued_at_exit)

#: The dispatcher every device uses.
dispatcher = Dispatcher()
