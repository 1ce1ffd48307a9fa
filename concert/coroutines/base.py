"""The core of push-style processing: :func:`coroutine`, :func:`inject`, push-style :func:`broadcast`.

A push-style consumer is a generator that receives items with ``yield``::

    @coroutine
    def printer():
        while True:
            item = yield
            print(item)

:func:`coroutine` primes it (advances it to its first ``yield``), so that
``printer().send(item)`` works at once. :func:`inject` sends every item of an
iterable to a consumer; :func:`broadcast` (called with consumers only)
returns a consumer forwarding each item to all of them. Called with a
producer first, :func:`broadcast` is the pull-style one of
:mod:`concert.pipelines`: the two are told apart by their arguments (see
:func:`broadcast` for the rule and its ambiguous cases).

Everything above runs in the calling thread: a push-style chain is as fast as
its slowest member, and an exception a consumer raises propagates to
whoever sent the item.

Between the two styles:

* a pull-style consumer (a callable taking an iterable, such as
  ``walker.write`` or ``write_images``) becomes a push-style one with
  :func:`as_push_consumer`: it runs in a thread of its own, fed one item at a
  time through an :class:`Inbox`;
* a push-style consumer given to the pull-style :func:`broadcast` is sent
  every item in the consumer thread that :func:`broadcast` starts for it.

Closing: :func:`inject` and :func:`broadcast` never close a consumer (it may
be used again). Consumers that hold a thread or a file -- those made by
:func:`as_push_consumer`, the ``queue`` filter, ``walker.write()`` -- finish
when they are closed (``consumer.close()``), when they are garbage
collected, or at the latest when the interpreter exits (within
:data:`concert.config.EXIT_FLUSH_TIMEOUT`; what is still unfinished then is
logged as an ``ERROR``).
"""

from __future__ import annotations

import atexit
import collections
import copy
import functools
import inspect
import logging
import sys
import threading
import time
from typing import Any, Callable, Deque, Generator, Iterable, Iterator, List, Optional, Set

from concert import exceptions, pipelines
from concert._legacy import gather
from concert.coroutines import aio
from concert.naming import name_of

__all__ = [
    "Inbox",
    "as_push_consumer",
    "broadcast",
    "check_consumer",
    "coroutine",
    "inject",
    "is_coroutine",
    # seed 003's asyncio helpers, from their own module (see concert.coroutines.aio)
    *gather(globals(), aio),
]

# Seed 003's spellings of what lives elsewhere (documented there, so not in __all__).
WaitError = exceptions.WaitError
feed_queue = pipelines.feed_queue

LOG = logging.getLogger(__name__)

Coroutine = Generator[Any, Any, Any]


def coroutine(func: Callable[..., Coroutine]) -> Callable[..., Coroutine]:
    """Decorate a generator function so that calling it returns a primed generator.

    Whatever the generator runs before its first ``yield`` (checking its
    arguments, say) runs in the call, so its exceptions are raised there.

    :raises TypeError: from the call, if ``func`` does not return a generator.
    """

    @functools.wraps(func)
    def start(*args: Any, **kwargs: Any) -> Coroutine:
        generator = func(*args, **kwargs)
        if not inspect.isgenerator(generator):
            raise TypeError(
                f"@coroutine: {func.__qualname__}() returned {type(generator).__name__}, not a generator"
            )
        next(generator)
        return generator

    return start


def is_coroutine(value: Any) -> bool:
    """Whether ``value`` is a push-style consumer: a generator that has been started (primed)."""
    return inspect.isgenerator(value) and inspect.getgeneratorstate(value) != inspect.GEN_CREATED


def check_consumer(consumer: Any, who: str, what: str = "consumer") -> Coroutine:
    """Return ``consumer`` if it is a primed generator that can still take items.

    ``who`` names the function for the message (``'downsize'``), ``what`` the
    argument.

    :raises TypeError: naming ``who``, ``what`` and the value otherwise: not a
        generator, a generator not started (decorate its function with
        :func:`coroutine`), or one that has finished.
    """
    if not inspect.isgenerator(consumer):
        hint = ""
        if callable(consumer):
            hint = f"; call it to get its push-style consumer: {name_of(consumer)}()"
        raise TypeError(f"{who}: {what} {consumer!r} is not a push-style consumer (a primed generator){hint}")
    state = inspect.getgeneratorstate(consumer)
    if state == inspect.GEN_CREATED:
        raise TypeError(
            f"{who}: {what} {name_of(consumer)}() is a generator that has not been started "
            "(decorate its function with @coroutine, or call next() on it first)"
        )
    if state == inspect.GEN_CLOSED:
        raise TypeError(f"{who}: {what} {name_of(consumer)}() has finished and takes no more items")
    return consumer


def inject(generator: Iterable[Any], consumer: Coroutine) -> None:
    """Send every item of ``generator`` (any iterable) to the push-style ``consumer``, in the calling thread.

    The consumer is not closed afterwards: it may be given more items.

    :raises TypeError: if ``consumer`` is not a primed generator, or has finished.
    :raises: whatever the consumer raises for an item (the rest is not sent);
        ``StopIteration`` if the consumer finishes before the items do.
    """
    check_consumer(consumer, "inject()")
    for item in generator:
        consumer.send(item)


def broadcast(*args: Any, **kwargs: Any) -> Any:
    """Push style: ``broadcast(*consumers)`` returns a primed consumer that sends each item to every consumer.

    Pull style (:func:`concert.pipelines.broadcast`): ``broadcast(producer,
    *consumers, queue_size=8)`` returns one future per consumer.

    **The rule.** The call is push style when it has at least one positional
    argument, no keyword argument, and every positional argument is a
    generator that has been started (a primed generator, or a finished one,
    which is then refused). Anything else is pull style: the first argument
    is the producer, the others consumers -- callables taking an iterable,
    or primed generators, which are then sent every item in the consumer
    thread the pull-style broadcast gives them (they are not closed at the
    end).

    Ambiguous cases, and how they fall:

    * a generator that has not been started is a *producer*: ``broadcast(
      frames(), acc())`` is pull style (``frames`` is a generator function);
    * a started generator meant as a producer, with push-style consumers
      only, is taken for a consumer: write ``broadcast((x for x in
      started), consumer)`` or pass ``queue_size=`` to get pull style;
    * ``broadcast(consumer)`` with a single primed generator is push style
      (a consumer forwarding to that one).

    Push style sends each item to the consumers in the order given, in the
    sender's thread; an exception a consumer raises propagates to the
    sender, and the consumers after it do not get that item. Closing the
    returned consumer does not close the consumers.

    :raises TypeError: push style, if a consumer has finished.
    :raises ValueError: pull style, as :func:`concert.pipelines.broadcast`.
    """
    if args and not kwargs and all(is_coroutine(arg) for arg in args):
        consumers = [check_consumer(arg, "broadcast", f"consumer {index}") for index, arg in enumerate(args)]
        return _forward(consumers)
    from concert.pipelines import broadcast as pull

    return pull(*args, **kwargs)


@coroutine
def _forward(consumers: List[Coroutine]) -> Coroutine:
    while True:
        item = yield
        for consumer in consumers:
            consumer.send(item)


# -- between the styles: a pull-style consumer fed from push style -----------------------------

# Inboxes whose consumer thread runs, for the exit flush. Guarded by _open_lock; an inbox is
# added before its thread starts and removed by that thread as its last action.
_open: Set[Inbox] = set()
_open_lock = threading.Lock()


class Inbox:
    """Items sent from push style, read by one pull-style consumer running in a thread of its own.

    :meth:`start` starts the thread, which runs ``target()`` -- a callable
    that iterates over this inbox (once) -- and returns the push-style end:
    a primed generator; each item sent to it is queued here for the
    consumer, in order.

    * ``wait=True``: ``send()`` returns once the consumer is done with the
      item (it asked for the next one, or returned), so from the sender's
      side the consumer is synchronous, and its exception for that item is
      raised by that ``send()``.
    * ``wait=False``: ``send()`` queues the item and returns at once (the
      queue is unbounded); an exception of the consumer is raised by the
      next ``send()``, or by ``close()``.
    * ``deepcopy=True``: each item is deep-copied when it is sent (in the
      sender's thread), so the sender may reuse or change it afterwards.
    * ``newest_only=True``: each time the consumer asks for an item, it gets
      the newest one and those queued before it are dropped (counted in
      :attr:`dropped`).

    Closing the push-style end ends the iteration and waits for the
    consumer to return (without a time limit: nothing accepted is lost);
    an exception the consumer raised and that no ``send()`` reported is
    raised by ``close()``. Once the consumer has returned, the next
    ``send()`` ends the push-style end (``StopIteration``, the push-style
    way to say "finished"). Garbage collection closes it too; so does the
    interpreter's exit (see the module's documentation).

    The state shared by the two threads is guarded by ``_ready`` (a
    Condition on a lock of its own); :attr:`result`, what ``target()``
    returned, is written by the consumer's thread before it counts as done.
    """

    def __init__(self, wait: bool = True, newest_only: bool = False, deepcopy: bool = False) -> None:
        self._wait = wait
        self._newest_only = newest_only
        self._deepcopy = deepcopy
        self._ready = threading.Condition(threading.Lock())
        self._items: Deque[Any] = collections.deque()
        self._accepted = 0  # items queued by the sender
        self._settled = 0  # items the consumer is done with, or that were dropped
        self._holding = False  # the consumer has an item and has not asked for the next
        self._ended = False  # the sender closed its end
        self._done = False  # target() returned or raised
        self._error: Optional[BaseException] = None
        self._reported = False  # the error was raised to the sender
        self._iterated = False
        self._thread: Optional[threading.Thread] = None
        self.name = "consumer"
        self.dropped = 0
        self.result: Any = None

    # -- the consumer's side (its thread) ------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        with self._ready:
            if self._iterated:
                raise RuntimeError(f"Inbox of {self.name}: it can be iterated only once")
            self._iterated = True
        return self._stream()

    def _stream(self) -> Iterator[Any]:
        # The item handed out last is settled when the next is asked for, or when target()
        # returns (see _run): not when this generator is closed, which also happens when the
        # consumer fails on that item.
        while True:
            with self._ready:
                self._settle()
                while not self._items and not self._ended:
                    self._ready.wait()
                if not self._items:
                    return
                if self._newest_only and len(self._items) > 1:
                    skipped = len(self._items) - 1
                    for _ in range(skipped):
                        self._items.popleft()
                    self.dropped += skipped
                    self._settled += skipped
                item = self._items.popleft()
                self._holding = True
            yield item

    def _settle(self) -> None:
        if self._holding:
            self._holding = False
            self._settled += 1
            self._ready.notify_all()

    def _run(self, target: Callable[[], Any]) -> None:
        try:
            self.result = target()
        except BaseException as error:  # handed to the sender
            with self._ready:
                self._error = error
        finally:
            with self._ready:
                if self._error is None:
                    self._settle()  # it returned: done with what it had taken
                self._done = True
                self._ready.notify_all()
            with _open_lock:
                _open.discard(self)

    # -- the sender's side ----------------------------------------------------------------------

    def start(self, target: Callable[[], Any], name: Optional[str] = None) -> Coroutine:
        """Run ``target()`` in a new daemon thread; return the primed push-style end.

        ``name`` names the consumer in messages and in the thread's name.
        """
        with self._ready:
            if self._thread is not None:
                raise RuntimeError(f"Inbox of {self.name}: already started")
            self.name = name or name_of(target)
            self._thread = threading.Thread(
                target=self._run, args=(target,), name=f"concert-inbox-{self.name}", daemon=True
            )
        with _open_lock:
            _open.add(self)
        try:
            self._thread.start()
        except BaseException:
            with _open_lock:
                _open.discard(self)
            raise
        sender = self._sender()
        next(sender)
        return sender

    def _sender(self) -> Coroutine:
        try:
            while True:
                item = yield
                if not self.put(item):
                    return  # the consumer has returned: this consumer is finished
        finally:
            self.end()

    def put(self, item: Any) -> bool:
        """Queue ``item`` (and with ``wait``, wait until the consumer is done with it).

        Return ``False`` if the consumer has returned without taking ``item``.

        :raises: the consumer's exception, once.
        """
        if self._deepcopy:
            item = copy.deepcopy(item)
        with self._ready:
            self._raise_unreported()
            if self._done or self._ended:
                return False
            self._items.append(item)
            self._accepted += 1
            ticket = self._accepted
            self._ready.notify_all()
            if self._wait:
                while self._settled < ticket and not self._done:
                    self._ready.wait()
                if self._settled < ticket:
                    self._raise_unreported()
                    return False  # the consumer returned without taking it
            return True

    def end(self, timeout: Optional[float] = None) -> bool:
        """End the items and wait (at most ``timeout`` seconds) for the consumer to return.

        Returns whether it has returned. Calling it again only waits again.
        During the interpreter's finalisation it does not wait (the thread
        may be gone).

        :raises: the consumer's exception, if no ``send()`` raised it.
        """
        with self._ready:
            self._ended = True
            self._ready.notify_all()
            thread = self._thread
        if thread is None or thread is threading.current_thread() or sys.is_finalizing():
            return self._done
        thread.join(timeout)
        with self._ready:
            self._raise_unreported()
            return self._done

    def _raise_unreported(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    @property
    def unfinished(self) -> int:
        """How many items were queued that the consumer has not finished (nor dropped)."""
        with self._ready:
            return self._accepted - self._settled


def as_push_consumer(func: Callable[[Iterable[Any]], Any], name: Optional[str] = None) -> Coroutine:
    """Return a primed push-style consumer that runs the pull-style ``func`` in a thread of its own.

    ``func`` is called once, in that thread, with an iterable of the items
    sent; each ``send()`` returns once ``func`` is done with the item (it
    asked for the next one), and raises ``func``'s exception for it.
    ``close()`` ends the iterable and waits for ``func`` to return. See
    :class:`Inbox`.
    """
    inbox = Inbox(wait=True)
    return inbox.start(lambda: func(inbox), name or name_of(func))


def _flush_at_exit() -> None:
    """End every open inbox and wait for its consumer, within EXIT_FLUSH_TIMEOUT in all."""
    from concert import config
    from concert.timeouts import optional_seconds

    with _open_lock:
        inboxes = list(_open)
    if not inboxes:
        return
    try:
        limit = optional_seconds(config.EXIT_FLUSH_TIMEOUT, "EXIT_FLUSH_TIMEOUT")
    except Exception:
        limit = 10.0
    limit = 3600.0 if limit is None else limit
    deadline = time.monotonic() + limit
    for inbox in inboxes:
        try:
            finished = inbox.end(max(0.0, deadline - time.monotonic()))
        except Exception:
            LOG.exception("push-style consumer %s failed while finishing at exit", inbox.name)
            continue
        if not finished:
            LOG.error(
                "push-style consumer %s was still running at exit after %g s: %d item(s) it was sent "
                "are not finished and are lost",
                inbox.name,
                limit,
                inbox.unfinished,
            )


atexit.register(_flush_at_exit)
