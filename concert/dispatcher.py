"""Publish-subscribe messaging between devices and whoever watches them.

A :class:`Dispatcher` calls ``handler(sender)`` -- or ``handler(sender,
message)`` for a handler subscribed ``with_message=True`` -- for every
message a sender sends, in a thread of its own and in the order the messages
were sent. :data:`dispatcher` is the instance every device uses.

Design, in short:

* Senders are compared by identity, so any object -- a dict, a device, a
  parameter value -- can send. A subscription keeps its sender alive until it
  is unsubscribed (an identity key must never be reused by a new object).
* Handlers are compared by identity too (as blinker does), never with their
  ``__eq__``: a handler is known by ``id(handler)``, a bound method by the
  identities of its object and its function, so that ``obj.method`` names
  the same handler every time it is written. The subscription keeps the
  handler, hence those objects, alive, so these identities stay unique.
* Nothing a handler, a sender or a message does can stop delivery: every call
  into them in the delivering thread (the handler itself, the message's
  ``__hash__`` and ``__eq__`` in the table look-ups, ``repr`` for the log) is
  guarded, and what fails is logged. A message that cannot be hashed is
  refused at :meth:`~Dispatcher.subscribe` and :meth:`~Dispatcher.send` with
  :class:`~concert.exceptions.MessagingError`.
* ``send`` appends to an unbounded :class:`collections.deque` and wakes the
  delivery thread only if it sleeps: it never blocks on a handler and never
  drops a message. A message nobody is subscribed to when it is sent (a
  string message, no wildcard subscription anywhere) is delivered to nobody
  right there, in the sending thread: it is not queued and wakes no thread
  -- a parameter write sends ``'changed'`` every time, mostly to no one, and
  waking a thread costs a write about as much as the write itself. A handler
  gets the messages sent after its :meth:`~Dispatcher.subscribe` returned
  (and may get one sent while it was subscribing).
* The subscription table is a dict mutated only under ``_subscribe_lock``; its
  values are immutable ``(sender, subscriptions)`` tuples, replaced whole, so
  the delivering thread reads it without a lock. Which handlers receive a
  message is fixed when its delivery starts.
* Exactly one thread delivers at a time: whoever holds ``_delivery_lock`` (the
  delivery thread, or a thread delivering synchronously: a ``send`` or
  ``flush`` while :data:`concert.config.DISABLE_ASYNC` is on, a ``send`` at
  interpreter exit). That lock is what keeps the order when the switch is
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
* Waits that only a delivery could end, made where that delivery cannot go
  on, raise :class:`~concert.exceptions.MessagingError` instead of hanging:
  ``flush()`` in the delivery thread; waiting for a :meth:`~Dispatcher.when`
  future in the thread that holds the delivery lock (inside a handler); and
  both of these in a Concert future that the delivering thread is (through
  other futures) waiting for. The last is found with
  :func:`concert.futures.awaited_by` (which futures a thread waits for, and
  what their functions wait for in turn), and checked again every
  ``WATCH_INTERVAL`` while the wait lasts.
  What cannot be seen that way (a handler waiting for an
  :class:`threading.Event`, say) ends at the wait's timeout; a ``flush()``
  without one logs a ``WARNING`` after ``FLUSH_WARNING`` seconds.
* Interpreter exit (``_deliver_queued_at_exit``, an :mod:`atexit` hook) sets
  ``_exiting`` and runs the *exit flush* (``_exit_flushing`` is set while it
  runs): it delivers until nothing is queued, no delivery runs and no
  ``@async_`` call started by a handler (directly or not: the pool's calls
  copy their caller's context, and ``_from_handler`` is set in the
  delivering threads' contexts) is running any more -- within
  :data:`concert.config.EXIT_FLUSH_TIMEOUT` in all. Meanwhile a send from
  any thread is queued for the delivery thread while that thread is alive,
  so that a handler waiting for work that sends cannot deadlock with it.
  From the end of the exit flush on, every ``send`` delivers in the sending
  thread -- the delivery thread does not outlive the exit, and starting one
  at shutdown raises ``RuntimeError`` (3.12: in atexit functions; 3.13+:
  once finalizing) or hangs for ever (before 3.12, ``Thread.start`` waits
  for a thread the finalizing interpreter never lets run). During the whole
  exit, a send from a handler running in the delivering thread is queued,
  and the loop running the handler delivers it next (nesting there would
  recurse once per queued message).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextvars
import itertools
import logging
import sys
import threading
import time
import types
import weakref
from collections import deque
from concurrent.futures import InvalidStateError
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

from concert import config, executor
from concert.exceptions import MessagingError, WaitError
from concert.futures import Future, awaited_by, current_future
from concert.interrupts import interruptibly, protected
from concert.timeouts import optional_seconds

__all__ = ["ANY", "Dispatcher", "dispatcher"]

LOG = logging.getLogger(__name__)

#: A handler: called as ``handler(sender)``, or ``handler(sender, message)`` when
#: subscribed with ``with_message=True``.
Handler = Callable[..., Any]

#: Seconds after which a :meth:`Dispatcher.flush` without a timeout that is still
#: waiting for the delivery thread logs a ``WARNING`` naming the handler it waits for.
FLUSH_WARNING = 10.0

#: Seconds between two checks, while a ``flush()`` or a wait for a
#: :meth:`Dispatcher.when` future runs in a Concert future, that the delivering
#: thread has not begun to wait for that future (a deadlock, then refused).
WATCH_INTERVAL = 0.05

#: How deep synchronous deliveries nest (a handler sending, whose handler sends, ...) before
#: a further send from a handler is queued and delivered when that handler has returned.
MAX_NESTING = 32


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

# Written only by _deliver_queued_at_exit (the exiting thread), read lock-free: _exiting
# once set stays set; _exit_flushing is set while that hook delivers what is queued and
# what handlers send meanwhile; sends in other threads are then queued, not delivered
# synchronously. _exit_deadline (time.monotonic()) bounds every wait from then on.
_exiting = False
_exit_flushing = False
_exit_deadline = 0.0
_exit_limit = 10.0  # the EXIT_FLUSH_TIMEOUT in force (seconds)
_is_finalizing = sys.is_finalizing

# Set in the delivery thread for its lifetime, and in the exiting thread while it delivers:
# @async_ calls and threaded functions copy their caller's context, so it tells the exit
# flush which of the pool's calls were started by handlers (and may still send).
_from_handler: contextvars.ContextVar[bool] = contextvars.ContextVar("concert_from_handler", default=False)

# One subscription: (identity of the handler, the handler, whether it gets the message too).
_Subscription = Tuple[Hashable, Handler, bool]


def _log(level: int, *args: Any, exc_info: bool = False) -> None:
    """``LOG.log(level, *args)`` that never raises: logging may be torn down at exit, or a handler broken."""
    try:
        LOG.log(level, *args, exc_info=exc_info)
    except Exception:
        pass


def _short(value: Any, limit: int = 100) -> str:
    """``repr(value)`` for a log line: never raises (objects may be broken or half torn down), never huge."""
    try:
        text = repr(value)
    except Exception:
        try:
            name = type(value).__name__
        except Exception:
            name = "?"
        text = f"<{name} object, repr() failed>"
    if type(text) is not str:  # a __repr__ returning a str subclass with odd methods
        text = str.__str__(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _name(future: Future) -> str:
    """``future.name`` for a message: never raises (naming a call may call its arguments' ``repr``)."""
    try:
        name = str.__str__(future.name)
    except Exception:
        return _short(future, 200)
    return name if len(name) <= 200 else name[:197] + "..."


def _check_message(message: Any) -> None:
    """Refuse a message that cannot be a dictionary key, naming what is wrong with it."""
    if type(message) is str:
        return
    try:
        hash(message)
    except Exception as error:
        if isinstance(error, TypeError) and "unhashable" in _short(error):
            why = ""
        else:
            why = f", and its __hash__ raised {_short(error)}"
        raise MessagingError(
            f"message {_short(message)} cannot be used: messages must be hashable{why}"
        ) from None


def _identity(handler: Handler) -> Hashable:
    """What tells two handlers apart: never the handler's own ``__eq__`` or ``__hash__``.

    A bound method is a new object every time ``obj.method`` is evaluated, so
    it is known by the identities of what it binds; anything else by its own
    identity. Only attributes implemented in C are read: no user code runs.
    """
    kind = type(handler)
    if kind is types.MethodType:
        return (id(handler.__self__), id(handler.__func__))
    if kind is types.BuiltinMethodType or kind is types.MethodWrapperType:  # list.append, obj.__call__
        return (id(handler.__self__), handler.__name__)
    return id(handler)


def _clamp(seconds: Optional[float]) -> Optional[float]:
    """A timeout every blocking call accepts (they refuse more than ``threading.TIMEOUT_MAX``)."""
    return None if seconds is None else min(max(seconds, 0.0), threading.TIMEOUT_MAX)


class Dispatcher:
    """Deliver messages from senders to subscribed handlers.

    ``sync_timeout`` (seconds or a time quantity, ``None`` for no limit; also an
    attribute that can be changed at any time) bounds how long a synchronous
    :meth:`send` waits for a delivery that runs in another thread before it
    queues its message instead (see :meth:`send`).

    All methods are thread-safe and may be called from inside handlers
    (except :meth:`flush`, which would wait for itself in the delivery thread
    and raises :class:`~concert.exceptions.MessagingError` there).
    """

    def __init__(self, name: str = "dispatcher", sync_timeout: Any = 10.0) -> None:
        self._name = name
        self.sync_timeout = sync_timeout
        # Written only under _subscribe_lock (values replaced whole, never mutated), read
        # lock-free by whoever delivers; _wildcard_entries likewise.
        self._table: Dict[Tuple[int, Hashable], Tuple[Any, Tuple[_Subscription, ...]]] = {}
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
        # Written only under _thread_lock (once, unless the thread cannot be started).
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

    def subscribe(self, sender: Any, message: Hashable, handler: Handler, with_message: bool = False) -> None:
        """Call ``handler(sender)`` whenever ``sender`` sends ``message``.

        With ``with_message=True`` the handler is called as
        ``handler(sender, message)`` instead, which tells a handler subscribed
        to :data:`ANY` message which one arrived.

        ``sender`` and ``message`` may be :data:`ANY`. Senders and handlers are
        compared by identity (a bound method by its object and function, so
        ``obj.method`` is the same handler each time); messages by equality.
        Subscribing a handler that is already subscribed to this sender and
        message does nothing. The subscription holds a reference to ``sender``
        and to ``handler``.

        :raises MessagingError: if ``handler`` is not callable, if ``message``
            cannot be hashed (or compared with the messages already
            subscribed to), or if ``handler`` is already subscribed to this
            sender and message with the other ``with_message``.
        """
        if not callable(handler):
            raise MessagingError(
                f"cannot subscribe {_short(handler)} to message {_short(message)} from {_short(sender)}: "
                "the handler is not callable"
            )
        _check_message(message)
        with_message = bool(with_message)
        key = (id(sender), message)
        identity = _identity(handler)
        with self._subscribe_lock:
            entry = self._lookup_for_update(key, message)
            if entry is None:
                self._store(key, message, (sender, ((identity, handler, with_message),)))
                if key[0] == _ANY_ID or message is ANY:
                    self._wildcard_entries += 1
            else:
                for known, _, known_with_message in entry[1]:
                    if known == identity:  # our own ints and tuples: no user code
                        if known_with_message != with_message:
                            raise MessagingError(
                                f"{_short(handler)} is already subscribed to message {_short(message)} "
                                f"from {_short(sender)} with with_message={known_with_message}; "
                                "unsubscribe it first"
                            )
                        return
                self._store(key, message, (sender, entry[1] + ((identity, handler, with_message),)))

    def unsubscribe(self, sender: Any, message: Hashable, handler: Handler) -> None:
        """Stop calling ``handler`` for ``message`` from ``sender``.

        Unsubscribing what is not subscribed does nothing.

        :raises MessagingError: if ``message`` cannot be hashed (or compared
            with the messages subscribed to).
        """
        _check_message(message)
        key = (id(sender), message)
        identity = _identity(handler)
        with self._subscribe_lock:
            entry = self._lookup_for_update(key, message)
            if entry is None or entry[0] is not sender:
                return
            subscriptions = tuple(s for s in entry[1] if s[0] != identity)
            if len(subscriptions) == len(entry[1]):
                return
            if subscriptions:
                self._store(key, message, (sender, subscriptions))
            else:
                self._store(key, message, None)
                if key[0] == _ANY_ID or message is ANY:
                    self._wildcard_entries -= 1

    def _lookup_for_update(self, key: Tuple[int, Hashable], message: Hashable) -> Any:
        # The caller holds _subscribe_lock.
        try:
            return self._table.get(key)
        except Exception as error:  # the message's __eq__, called on a hash collision
            raise MessagingError(
                f"message {_short(message)} cannot be used: comparing it with the messages "
                f"subscribed to raised {_short(error)}"
            ) from None

    def _store(self, key: Tuple[int, Hashable], message: Hashable, value: Any) -> None:
        # The caller holds _subscribe_lock; value None removes the entry.
        try:
            if value is None:
                del self._table[key]
            else:
                self._table[key] = value
        except Exception as error:
            raise MessagingError(
                f"message {_short(message)} cannot be used: comparing it with the messages "
                f"subscribed to raised {_short(error)}"
            ) from None

    # -- sending -------------------------------------------------------------------

    def send(self, sender: Any, message: Hashable) -> None:
        """Queue ``message`` from ``sender`` for delivery and return at once.

        The message is instead delivered *synchronously*, in the calling
        thread and after anything still queued before it, while
        :data:`concert.config.DISABLE_ASYNC` is on, and at interpreter exit
        once the exit flush is over, or during it when no delivery thread
        runs (no delivery thread can be relied on or started then). While
        the exit flush runs and the delivery thread is alive, messages are
        queued as usual, and that flush delivers them, within
        :data:`concert.config.EXIT_FLUSH_TIMEOUT`. During the whole exit, a
        handler running in the delivering thread still queues, and its
        message is delivered right after the messages queued before it.
        Synchronous deliveries nest at most :data:`MAX_NESTING` deep: a
        handler sending from that depth queues its message, and it is
        delivered, in order, once that handler has returned -- so a chain of
        handlers sending from handlers never exhausts the stack.
        To keep the order, a synchronous send first waits for a delivery running in
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

        :raises MessagingError: if ``message`` cannot be hashed.
        """
        if type(message) is not str:
            _check_message(message)
        number = next(self._numbers)
        if config.DISABLE_ASYNC:
            self._send_here(sender, message, number)
            return
        if _exiting:
            self._send_at_exit(sender, message, number)
            return
        if not self._listened_to(sender, message):
            return  # delivered to nobody, here and now (see the module documentation)
        self._queue.append((sender, message, number))
        if self._thread is None and not self._start():
            self._deliver_queue_or_log("no delivery thread could be started")
        elif self._sleeping:
            with self._wakeup:
                self._wakeup.notify()
        if _exiting and not _exit_flushing and self._holder != threading.get_ident():
            self._deliver_queue_or_log("sent while the interpreter began to exit")  # raced with the exit

    def _listened_to(self, sender: Any, message: Hashable) -> bool:
        """Whether a handler may be subscribed to ``message`` from ``sender`` now (if unsure: yes).

        Reads the subscription table without its lock (a dict lookup; the
        table's values are replaced whole under ``_subscribe_lock``). Only
        string messages are looked up, so no user code runs in the sending
        thread.
        """
        if type(message) is not str or self._wildcard_entries:
            return True
        try:
            return (id(sender), message) in self._table
        except Exception:  # a subscribed message's __eq__ on a hash collision
            return True

    def _send_at_exit(self, sender: Any, message: Hashable, number: int) -> None:
        if self._holder == threading.get_ident():
            # A handler running in this thread: the loop delivering it delivers this next.
            self._queue.append((sender, message, number))
            return
        if _exit_flushing and self._alive():
            # The exit flush waits for the delivery thread to deliver it: queueing never
            # waits for the delivery lock, which a handler waiting for this thread may hold.
            self._queue.append((sender, message, number))
            if self._sleeping:
                with self._wakeup:
                    self._wakeup.notify()
            if not _exit_flushing:  # the exit flush ended meanwhile: nobody else delivers it
                self._deliver_queue_or_log("sent as the exit flush ended")
            return
        self._send_here(sender, message, number)

    def flush(self, timeout: Any = None) -> None:
        """Return once every message sent before this call has been delivered.

        ``timeout`` is in seconds or a time quantity; ``None`` waits forever.
        It is honoured in every mode.

        Under :data:`concert.config.DISABLE_ASYNC`, when no delivery thread
        runs, inside a handler that this thread runs synchronously, and once
        the interpreter's exit flush is over, whatever is still queued is
        delivered in the calling thread, as a synchronous :meth:`send` would:
        ``timeout`` then bounds the wait for a delivery running in another
        thread and is checked between messages (a handler running in the
        calling thread is not interrupted). During exit every wait also ends
        at the exit deadline.

        A flush without a timeout that is still waiting for the delivery
        thread after ``FLUSH_WARNING`` seconds logs a ``WARNING`` naming
        the handler it waits for, and goes on waiting.

        :raises WaitError: if that takes longer than ``timeout`` (the message
            says which delivery holds it up); messages not delivered yet stay
            queued.
        :raises MessagingError: when called from a handler running in this
            dispatcher's delivery thread, or from a Concert future that such
            a handler is waiting for (directly or through other futures): the
            flush would wait for that handler, which waits for it.
        """
        seconds = optional_seconds(timeout, "timeout")
        thread = self._thread
        if thread is not None and threading.current_thread() is thread:
            raise MessagingError(f"{self!r}: flush() called from a handler would wait for itself")
        what = "messages sent before flush()"
        deadline = None if seconds is None else time.monotonic() + seconds
        if self._holder == threading.get_ident():
            # In a handler this thread runs synchronously: nobody else can deliver now.
            self._deliver_queue_here(seconds, deadline, what)
            return
        wait = seconds
        if _exiting:  # nothing may wait beyond the exit deadline
            limit = 0.0 if _is_finalizing() else max(0.0, _exit_deadline - time.monotonic())
            wait = limit if seconds is None else min(seconds, limit)
        if config.DISABLE_ASYNC or not self._alive() or (_exiting and not _exit_flushing):
            self._deliver_queue_here(wait, deadline, what)
            return
        watch = None
        if current_future() is not None:

            def watch() -> None:
                self._refuse_wait("flush()")

            watch()
        self._wait_for_thread(wait, what, watch=watch, warn=not _exiting)

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

        Waiting for the future (``result()``, ``wait()``, ``join()``,
        ``exception()``, :func:`concert.futures.wait`) before it is resolved
        raises :class:`~concert.exceptions.MessagingError` at once where it
        could never be resolved: in a handler of this dispatcher, and in a
        Concert future that such a handler is waiting for.

        :raises MessagingError: if ``message`` cannot be hashed.
        """
        future = _WhenFuture(self, f"when({_short(sender)}, {_short(message)})")
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

    # -- waits that would deadlock ---------------------------------------------------

    def _refuse_wait(self, what: str, in_handler: bool = False) -> None:
        """Raise MessagingError if ``what`` (a wait only a delivery can end) would wait for ever.

        With ``in_handler``, a wait in the thread holding the delivery lock is
        refused too (the flush has a path of its own for that thread). In any
        case, so is one made by a Concert future that the delivering thread
        waits for, directly or through other futures.
        """
        me = threading.get_ident()
        holder = self._holder
        thread = self._thread
        if in_handler and (holder == me or (thread is not None and thread.ident == me)):
            raise MessagingError(
                f"{self!r}: {what} in a handler would wait for ever: only a delivery of this dispatcher "
                "can end it, and none can go on before the handler returns"
            )
        target = current_future()
        if target is None or holder is None or holder == me:
            return
        if any(future is target for future in awaited_by(holder)):
            handler, item = self._handler_now, self._item_now
            message = "" if item is None else f" for message {_short(item[1])} from {_short(item[0])}"
            raise MessagingError(
                f"{self!r}: {what} in {_name(target)} would wait for ever: the handler "
                f"{_short(handler, 200)}{message} is waiting for it (directly or through other "
                "futures), and no delivery of this dispatcher can go on before the handler returns"
            )

    # -- synchronous delivery ----------------------------------------------------------

    def _alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

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
        level = self._level()
        if level >= MAX_NESTING:
            # Handlers sending from handlers, this deep: queue it; the delivery below this one
            # delivers it in order when its handler returns (a chain never exhausts the stack).
            self._queue.append((sender, message, number))
            return
        wait = self._sync_wait()
        if self._stuck_at is not None and self._stuck_at == self._number_now:
            wait = 0.0  # the delivery that held up an earlier send is still not done
        try:
            if self._take(wait):
                self._stuck_at = None
                self._drain()
                self._deliver_own(sender, message, number)
                if self._queue and self._depth == MAX_NESTING:
                    self._drain()  # what handlers queued one level deeper (see above)
                if _exiting and self._queue:  # what its handlers sent (they queue during exit)
                    self._drain_at_exit()
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

    def _drain_at_exit(self) -> None:
        # The caller holds the delivery lock. After the exit deadline, what the handlers of
        # one synchronous send send in turn still gets EXIT_FLUSH_TIMEOUT of its own.
        if not self._drain(max(_exit_deadline, time.monotonic() + _exit_limit)):
            LOG.error(
                "%s: %d messages sent by handlers during interpreter exit were not delivered and are "
                "lost: %s",
                self._name,
                self.queued(),
                self._describe_queue(),
            )

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

    def _wait_for_thread(
        self,
        seconds: Optional[float],
        what: str,
        watch: Optional[Callable[[], None]] = None,
        warn: bool = False,
    ) -> None:
        """Wait until the delivery thread has delivered what is queued now.

        ``watch`` is called every ``WATCH_INTERVAL`` while the wait lasts
        (it raises to end it); with ``warn``, an unbounded wait logs a
        ``WARNING`` once it has lasted ``FLUSH_WARNING`` seconds.
        """
        done = threading.Event()
        self._queue.append((_FLUSH, done, 0))
        if self._sleeping:
            with self._wakeup:
                self._wakeup.notify()
        begin = time.monotonic()
        deadline = None if seconds is None else begin + seconds
        warn_at = begin + FLUSH_WARNING if warn and seconds is None else None
        while True:
            ends = [t for t in (deadline, warn_at) if t is not None]
            step = None if not ends else min(ends) - time.monotonic()
            if watch is not None:
                step = WATCH_INTERVAL if step is None else min(step, WATCH_INTERVAL)
            if done.wait(_clamp(step)):
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                held_up_by = self._describe_delivery()
                raise WaitError(f"{self!r}: {what} were not all delivered within {seconds:g} s: {held_up_by}")
            if watch is not None:
                watch()
            if warn_at is not None and now >= warn_at:
                warn_at = None
                LOG.warning(
                    "%s: flush() has waited %g s and goes on waiting, because %s; if that handler waits "
                    "for the thread calling flush(), this is a deadlock",
                    self._name,
                    FLUSH_WARNING,
                    self._describe_delivery(),
                )

    def _run(self) -> None:
        _from_handler.set(True)  # the thread's own context: work its handlers start inherits it
        queue = self._queue
        while True:
            if queue:
                try:
                    self._take(None)
                    self._drain()
                except Exception:  # a bug here must not end delivery for everybody
                    _log(
                        logging.ERROR,
                        "%s: delivery failed; the delivery thread goes on",
                        self._name,
                        exc_info=True,
                    )
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

    def _find(self, key: Tuple[int, Hashable], sender: Any, message: Hashable) -> Any:
        """``self._table.get(key)``, guarded: a message's ``__eq__`` may raise on a hash collision."""
        try:
            return self._table.get(key)
        except Exception as error:
            _log(
                logging.ERROR,
                "%s: looking up the handlers of message %s from %s raised %s: some handlers get "
                "no copy of it",
                self._name,
                _short(message),
                _short(sender),
                _short(error),
            )
            return None

    def _deliver(self, sender: Any, message: Hashable) -> None:
        sender_id = id(sender)
        if type(message) is not str:
            try:
                hash(message)
            except Exception as error:  # accepted by send(), but its __hash__ raises now
                _log(
                    logging.ERROR,
                    "%s: message %s from %s was not delivered: its __hash__ raised %s",
                    self._name,
                    _short(message),
                    _short(sender),
                    _short(error),
                )
                return
        entry = self._find((sender_id, message), sender, message)
        if self._wildcard_entries:
            groups = [] if entry is None else [entry[1]]
            for key in ((sender_id, ANY), (_ANY_ID, message), (_ANY_ID, ANY)):
                other = self._find(key, sender, message)
                if other is not None:
                    groups.append(other[1])
            if not groups:
                return
            if len(groups) == 1:
                subscriptions = groups[0]
            else:  # a handler matching in several ways is called once
                seen = set()
                subscriptions = []
                for group in groups:
                    for subscription in group:
                        if subscription[0] not in seen:
                            seen.add(subscription[0])
                            subscriptions.append(subscription)
        elif entry is None:
            return
        else:
            subscriptions = entry[1]
        for _, handler, with_message in subscriptions:
            self._handler_now = handler
            try:
                if with_message:
                    handler(sender, message)
                else:
                    handler(sender)
            except BaseException as error:
                if not isinstance(error, Exception) and threading.current_thread() is not self._thread:
                    raise  # Ctrl-C in a synchronous send belongs to the caller
                # Logged, and delivery goes on: even a SystemExit must not end it for everybody.
                _log(
                    logging.ERROR,
                    "%s: handler %s for message %s from %s raised",
                    self._name,
                    _short(handler),
                    _short(message),
                    _short(sender),
                    exc_info=True,
                )

    # -- interpreter exit ----------------------------------------------------------------

    def _busy(self) -> bool:
        return bool(self._queue) or self._holder is not None

    def _flush_at_exit(self) -> bool:
        """Deliver what is queued and wait for the delivery in progress; ``False`` at the deadline."""
        remaining = _exit_deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            if self._alive():
                # Let the delivery thread deliver (a handler stuck there cannot hang the exit).
                self._wait_for_thread(remaining, "messages queued at exit")
            else:
                self._deliver_queue_here(remaining, _exit_deadline, "messages queued at exit")
        except WaitError:
            return False
        return True

    def _finish_at_exit(self, limit: float) -> None:
        """Deliver here what came in as the exit flush ended; log what is left undelivered."""
        if not self._busy():
            return
        try:
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


class _WhenFuture(Future):
    """The future of :meth:`Dispatcher.when`: a wait that could never end raises MessagingError."""

    def __init__(self, owner: Dispatcher, name: str) -> None:
        super().__init__(name)
        self._dispatcher = owner

    @protected
    def _block(self, timeout: Any) -> None:
        seconds = None if timeout is None else optional_seconds(timeout, "timeout")
        if self.done():
            return
        what = f"waiting for {self.name}"
        owner = self._dispatcher
        owner._refuse_wait(what, in_handler=True)
        if current_future() is None:  # no Concert future here: none the delivery could wait for
            super()._block(seconds)
            return
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:  # in slices: the delivery may begin to wait for this future later
            step = WATCH_INTERVAL if deadline is None else min(WATCH_INTERVAL, deadline - time.monotonic())
            try:
                super()._block(max(0.0, step))
                return
            except WaitError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise WaitError(f"{self!r} did not finish within {seconds:g} s") from None
            owner._refuse_wait(what)


# Every dispatcher, so that queued messages are delivered at interpreter exit.
_instances: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


def _work_of_handlers() -> List[concurrent.futures.Future]:
    """The futures of the pool's calls that handlers started (directly or not) and that are not done."""
    try:
        calls = executor.running()
    except Exception:
        return []
    futures = []
    for call in calls:
        context = getattr(call, "context", None)
        future = getattr(call, "future", None)
        if (
            isinstance(context, contextvars.Context)
            and context.get(_from_handler, False)
            and future is not None
            and not future.done()
        ):
            futures.append(future)
    return futures


def _settle_at_exit() -> None:
    """Deliver until all is quiet or the exit deadline has passed (see the module documentation)."""
    while time.monotonic() < _exit_deadline:
        busy = False
        for instance in list(_instances):
            if instance._busy():
                busy = True
                if not instance._flush_at_exit():
                    return
        work = _work_of_handlers()
        if work:
            busy = True
            concurrent.futures.wait(
                work,
                timeout=_clamp(_exit_deadline - time.monotonic()),
                return_when=concurrent.futures.FIRST_COMPLETED,
            )
        if not busy:
            return


def _deliver_queued_at_exit() -> None:
    global _exiting, _exit_deadline, _exit_flushing, _exit_limit
    try:
        limit = optional_seconds(config.EXIT_FLUSH_TIMEOUT, "EXIT_FLUSH_TIMEOUT")
    except Exception as error:  # a bad value set at run time must not cost the messages
        LOG.error("concert.config.EXIT_FLUSH_TIMEOUT is invalid (%s): 10 s are used", error)
        limit = 10.0
    if limit is None:
        limit = 3600.0
    _exit_limit = limit
    _exit_deadline = time.monotonic() + limit
    _exit_flushing = True
    _exiting = True
    token = _from_handler.set(True)  # handlers may run here: mark the work they start
    try:
        _settle_at_exit()
    finally:
        _exit_flushing = False
        _from_handler.reset(token)
    for instance in list(_instances):
        instance._finish_at_exit(limit)
    late = _work_of_handlers()
    if late:
        LOG.error(
            "%d calls started by handlers were still running at exit after %g s; what they send "
            "from now on may be lost: %s",
            len(late),
            limit,
            ", ".join(_name(future) for future in late[:5]) + (" and more" if len(late) > 5 else ""),
        )


# Runs after threading's shutdown has joined the pool, so messages sent by
# work that finished at exit are delivered too.
atexit.register(_deliver_queued_at_exit)

#: The dispatcher every device uses.
dispatcher = Dispatcher()
