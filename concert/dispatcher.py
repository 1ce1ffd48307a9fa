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
  delivery thread, or a sender while :data:`concert.config.DISABLE_ASYNC` is
  on). That lock is what keeps the order when the switch is flipped.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from concurrent.futures import InvalidStateError
from typing import Any, Callable, Dict, Hashable, Optional, Tuple

from concert import config
from concert.exceptions import MessagingError, WaitError
from concert.futures import Future
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


def _check_message(message: Any) -> None:
    if type(message) is not str:
        try:
            hash(message)
        except TypeError:
            raise MessagingError(f"message {message!r} cannot be used: messages must be hashable") from None


class Dispatcher:
    """Deliver messages from senders to subscribed handlers.

    All methods are thread-safe and may be called from inside handlers
    (except :meth:`flush`, which would wait for itself there).
    """

    def __init__(self, name: str = "dispatcher") -> None:
        self._name = name
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
        self._delivery_lock = threading.RLock()
        self._thread: Optional[threading.Thread] = None
        self._thread_lock = threading.Lock()
        _instances.add(self)

    def __repr__(self) -> str:
        return f"<Dispatcher {self._name!r}, {self.queued()} queued>"

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

        Under :data:`concert.config.DISABLE_ASYNC` the message (and anything
        still queued before it) is delivered before this returns.

        :raises MessagingError: if ``message`` is not hashable.
        """
        if type(message) is not str:
            _check_message(message)
        number = next(self._numbers)
        if config.DISABLE_ASYNC:
            with self._delivery_lock:
                self._drain()
                self._number_now = number
                self._deliver(sender, message)
            return
        self._queue.append((sender, message, number))
        if self._thread is None:
            self._start()
        if self._sleeping:
            with self._wakeup:
                self._wakeup.notify()

    def flush(self, timeout: Any = None) -> None:
        """Return once every message sent before this call has been delivered.

        ``timeout`` is in seconds or a time quantity; ``None`` waits forever.

        Under :data:`concert.config.DISABLE_ASYNC` whatever is still queued is
        delivered in the calling thread before this returns.

        :raises WaitError: if that takes longer than ``timeout``.
        :raises MessagingError: when called from a handler running in this
            dispatcher's delivery thread.
        """
        seconds = optional_seconds(timeout, "timeout")
        if threading.current_thread() is self._thread:
            raise MessagingError(f"{self!r}: flush() called from a handler would wait for itself")
        if config.DISABLE_ASYNC:
            with self._delivery_lock:  # deliver what is left here, as a synchronous send would
                self._drain()
            return
        if self._thread is None:
            return  # only synchronous sends so far (they start no thread): nothing is queued
        done = threading.Event()
        self._queue.append((_FLUSH, done, 0))
        if self._sleeping:
            with self._wakeup:
                self._wakeup.notify()
        if not done.wait(seconds):
            raise WaitError(
                f"{self!r}: messages sent before flush() were not all delivered within {seconds:g} s"
            )

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

    # -- delivery ----------------------------------------------------------------------

    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=f"concert-{self._name}", daemon=True)
                self._thread = thread  # before start(): the thread checks its own identity
                thread.start()

    def _run(self) -> None:
        queue = self._queue
        while True:
            if queue:
                with self._delivery_lock:
                    self._drain()
                continue
            with self._wakeup:
                self._sleeping = True
                while not queue:
                    self._wakeup.wait()
                self._sleeping = False

    def _drain(self) -> None:
        # Caller holds _delivery_lock.
        popleft = self._queue.popleft
        deliver = self._deliver
        while True:
            try:
                sender, message, number = popleft()
            except IndexError:
                return
            if sender is _FLUSH:
                message.set()
            else:
                self._number_now = number
                deliver(sender, message)

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
            try:
                handler(sender)
            except BaseException as error:
                if not isinstance(error, Exception) and threading.current_thread() is not self._thread:
                    raise  # Ctrl-C in a synchronous send belongs to the caller
                # Logged, and delivery goes on: even a SystemExit must not end it for everybody.
                LOG.exception(
                    "%s: handler %r for message %r from %r raised", self._name, handler, message, sender
                )


# Every dispatcher, so that queued messages are delivered at interpreter exit.
_instances: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


def _deliver_queued_at_exit() -> None:
    limit = optional_seconds(config.EXIT_FLUSH_TIMEOUT, "EXIT_FLUSH_TIMEOUT")
    deadline = time.monotonic() + (3600.0 if limit is None else limit)
    for instance in list(_instances):
        try:
            instance.flush(max(0.0, deadline - time.monotonic()))
        except WaitError:
            LOG.error(
                "%r: %d messages were still queued at exit after %g s",
                instance,
                instance.queued(),
                config.EXIT_FLUSH_TIMEOUT,
            )


# Runs after threading's shutdown has joined the pool, so messages sent by
# work that finished at exit are delivered too.
atexit.register(_deliver_queued_at_exit)

#: The dispatcher every device uses.
dispatcher = Dispatcher()
