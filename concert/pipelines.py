"""Data pipelines: producers of frames, fanned out to consumers.

A *producer* is any iterable of items (frames, usually numpy arrays): a
list, a generator, ``camera.stream()``. A *consumer* is a callable taking an
iterable and consuming it: ``write_images``, :class:`Average`, ``null``. A
consumer may also hand the iterable to background work and return its
:class:`~concurrent.futures.Future` (``walker.write`` does): the consumer
then counts as running until that future is done, it is fed meanwhile, and
its own future resolves with that future's result. A push-style consumer
(a primed generator, see :mod:`concert.coroutines`) is accepted as well: it
is sent every item.

The sinks :func:`null`, :class:`Accumulate`, :class:`Average` and
:class:`Result` have two faces: called with an iterable they consume it (a
consumer for :func:`broadcast`); called without, they return a push-style
consumer (``acc = Accumulate(); inject(frames, acc())``).

:func:`broadcast` feeds every item to every consumer. Each consumer runs in
a thread of its own behind a bounded queue, so:

* memory stays bounded: a slow consumer slows the producer down instead of
  letting items pile up (at most ``queue_size`` items wait per consumer);
* end of stream is explicit: each consumer's iterable simply ends;
* a failing consumer neither blocks nor hides the others: it stops receiving
  items, the others carry on, and its exception is in its future;
* a failing producer ends every consumer's iterable with its exception, so
  every future reports it;
* nothing is copied: all consumers get the same objects and must not modify
  them.

Cancellation is Concert's one mechanism (:mod:`concert.futures`): each
consumer's future is the *current future* of its thread, so
:func:`~concert.futures.check_cancelled` and :func:`~concert.futures.on_cancel`
inside a consumer refer to it. A cancel request on that future wakes the
consumer if it waits for an item and stops its intake: no further item is
queued for it, but the items already queued (at most ``queue_size``) are
still handed out -- they were accepted, and nothing accepted is lost --
and then its iterable raises :class:`~concurrent.futures.CancelledError`
(naming the consumer and the reason). An item it was given is always its
to finish. Once no consumer takes items any more, the producer is no
longer pulled and is closed.

Consumers run in threads even when :data:`concert.config.DISABLE_ASYNC` is
on (a broadcast needs them all at once); :func:`broadcast` then waits for
them before returning, so its futures are finished, as synchronous mode
promises.

**Interpreter exit.** The threads are daemon threads, so that a consumer
waiting for ever (on a camera, say) cannot hang the exit. Instead, when the
script's main thread has ended, exit waits for the running consumers of
:func:`broadcast` and :func:`feed_queue` -- at most
:data:`concert.config.EXIT_FLUSH_TIMEOUT` seconds in all -- and logs an
``ERROR`` for each one still running then, naming it and how many of the
items it was handed it had not finished (they are lost). This wait happens
before Concert's pool is shut down, so a consumer may still start
``@async_`` calls meanwhile, and before the dispatchers deliver their last
messages (their own wait comes after it; exit takes at most the two
timeouts more). A script that ends with an uncaught Ctrl-C first asks every
running consumer to stop (reason ``Ctrl-C``): those that check stop after
the item in hand, and their files are closed complete.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import contextvars
import inspect
import itertools
import logging
import math
import queue
import sys
import threading
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Set

import numpy as np

import concert.dispatcher  # noqa: F401 - its exit flush must be registered before ours (see _register_exit_wait)
from concert import config
from concert.checks import is_integer, is_real
from concert.coroutines._errors import shape_of, wrong_dtype, wrong_shape
from concert.exceptions import DataError, LimitError
from concert.futures import Future, _cancel_after_interrupt, _current, request_cancel_logged, resolve
from concert.naming import name_of
from concert.timeouts import optional_seconds

__all__ = ["Accumulate", "Average", "PrioItem", "Result", "broadcast", "feed_queue", "null", "running"]

LOG = logging.getLogger(__name__)

_END = object()  # end of the stream
_WAKE = object()  # what get() returns when woken by a cancel request: look at the request


def _asked_to_stop(future: Future) -> bool:
    """Whether a cancel request stands on ``future`` (what check_cancelled() tests for the current one)."""
    return future._cancel_reason is not None


def _check(future: Future) -> None:
    """check_cancelled() for ``future``, whichever thread iterates: a consumer may hand its stream on."""
    if future._cancel_reason is not None:
        raise CancelledError(future._stopped_text())


class _Failure:
    """Carries the producer's exception to the consumers."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


# -- the consumers running now, for the exit wait ---------------------------------------------

# Every consumer of broadcast() and feed_queue() whose thread has not ended (an _Outlet or a
# _QueueJob). Guarded by _live_lock (the Condition _live_changed is built on it); an entry is
# added before its thread starts and removed by that thread as its last action.
_live: Set[Any] = set()
_live_lock = threading.Lock()
_live_changed = threading.Condition(_live_lock)


def _enter(job: Any) -> None:
    with _live_lock:
        _live.add(job)


def _leave(job: Any) -> None:
    with _live_lock:
        _live.discard(job)
        _live_changed.notify_all()


def running() -> List[Future]:
    """Return the futures of the consumers of :func:`broadcast` and :func:`feed_queue` running now."""
    with _live_lock:
        return [job.future for job in _live]


class _Channel:
    """A bounded first-in, first-out queue from the distributor to one consumer, which can be closed.

    Everything is guarded by ``_ready`` (a Condition on a lock of its own).
    Once :meth:`close` has been called, :meth:`put` accepts nothing more and
    :meth:`get` hands out what was queued before, then ``_END``: an item
    that got in is never lost.
    """

    def __init__(self, size: int) -> None:
        self._items: Deque[Any] = collections.deque()
        self._size = size
        self._closed = False
        self._woken = False  # a cancel request wants the consumer to look at it
        self._putting = 0  # puts waiting for room: after a close they still queue their item
        self._ready = threading.Condition(threading.Lock())

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: Any) -> bool:
        """Queue ``item``, waiting while the queue is full; ``False`` (not queued) if already closed.

        A put that was waiting for room when the queue was closed still queues
        its item (one over the bound): that item existed before the close.
        """
        with self._ready:
            if self._closed:
                return False
            self._putting += 1
            try:
                while len(self._items) >= self._size and not self._closed:
                    self._ready.wait()
            finally:
                self._putting -= 1
            self._items.append(item)
            self._ready.notify_all()
            return True

    def get(self) -> Any:
        """Return the next item; ``_END`` once closed and empty; ``_WAKE`` after :meth:`wake`."""
        with self._ready:
            while not self._items and (not self._closed or self._putting) and not self._woken:
                self._ready.wait()
            self._woken = False
            if self._items:
                item = self._items.popleft()
                self._ready.notify_all()  # a put waiting for room
                return item
            return _END if self._closed and not self._putting else _WAKE

    def wake(self) -> None:
        """Make a waiting (or the next) :meth:`get` return, so that the consumer checks its request."""
        with self._ready:
            self._woken = True
            self._ready.notify_all()

    def close(self, discard: bool = False) -> None:
        """Accept nothing more (a waiting put returns ``False``); with ``discard``, drop what is queued."""
        with self._ready:
            self._closed = True
            if discard:
                self._items.clear()
            self._ready.notify_all()


class _Stream:
    """The iterable one consumer gets: items from its queue until end of stream or a cancel request.

    A cancel request closes the queue: the items already in it are still
    handed out (they were accepted, and nothing accepted is lost), then the
    iterable raises ``CancelledError``.
    """

    def __init__(self, outlet: _Outlet) -> None:
        self._outlet = outlet

    def __iter__(self) -> Iterator[Any]:
        outlet = self._outlet
        channel, future = outlet.items, outlet.future
        stopping = False
        while True:
            if not stopping and _asked_to_stop(future):
                channel.close()  # between items: no more come in; those queued are still ours
                stopping = True
            item = channel.get()
            if item is _WAKE:
                continue  # the request is looked at above; a withdrawn one goes on
            if item is _END:
                if stopping:
                    raise CancelledError(future._stopped_text())
                _check(future)  # a request at the very end still ends the consumer cancelled
                return
            if type(item) is _Failure:
                raise item.error
            outlet.given += 1
            yield item
            outlet.finished += 1


class _Outlet:
    """One consumer's end of a broadcast: its queue, thread and future.

    ``dead`` is set (once, by the consumer's thread) when the consumer has
    finished or failed; the distributor then stops feeding it. ``handed``
    counts the items put into its queue (written by the distributor only),
    ``given`` those its iterable handed out and ``finished`` those the
    consumer was done with -- it asked for the next one (both written by the
    consumer's iteration only); the exit wait reports what was not finished.
    """

    def __init__(self, consumer: Callable[[Iterable[Any]], Any], queue_size: int) -> None:
        self.consumer = consumer
        self.items = _Channel(queue_size)
        self.dead = False
        self.ended = False  # the producer's end (or failure) was put into the queue
        self.handed = 0
        self.given = 0
        self.finished = 0
        name = name_of(consumer)
        self.future = Future(f"broadcast consumer {name}")
        self.future.set_running_or_notify_cancel()
        self.future.add_cancel_action(self._wake)
        context = contextvars.copy_context()  # the caller's context, one copy per thread
        self.thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"concert-consumer-{name}", daemon=True
        )

    def _wake(self) -> None:
        # The cancel action: wake the consumer if it waits for an item; its stream then
        # closes its queue, hands out what is queued and raises CancelledError.
        self.items.wake()

    def _run(self) -> None:
        _current.set(self.future)  # check_cancelled()/on_cancel in the consumer refer to its future
        try:
            result = self.consumer(_Stream(self))
            if isinstance(result, concurrent.futures.Future):
                # The consumer handed its stream to background work (``walker.write``): it is
                # still consuming, so keep feeding it until that work is done. A cancel request
                # on this consumer's future is passed on to it (concert.futures' waiting rules).
                result = resolve([result])[0]
        except BaseException as error:
            self.dead = True
            self.future._settle(None, error)
        else:
            self.dead = True
            self.future._settle(result, None)
        finally:
            # It takes nothing more: a distributor blocked on its full queue moves on. What
            # it left queued it chose not to take (it returned or failed before the end).
            self.items.close(discard=True)
            _leave(self)

    def put(self, item: Any) -> None:
        """Hand ``item`` to the consumer, waiting while its queue is full; skip it once it takes no more.

        A blocked put cannot hang on a consumer that has ended or is stopping:
        both close its queue, which ends the wait.
        """
        if not self.dead and self.items.put(item):
            if item is _END or type(item) is _Failure:
                self.ended = True
            else:
                self.handed += 1

    @property
    def closed(self) -> bool:
        """The consumer takes no more items (it ended, or a cancel request stopped its intake)."""
        return self.dead or self.items.closed

    def lost(self) -> str:
        """What the exit wait logs when this consumer is still running."""
        handed, given, finished = self.handed, self.given, self.finished  # a snapshot, maybe off by one
        text = (
            f"{max(0, handed - finished)} of the {handed} items it was handed were not finished and are "
            f"lost ({max(0, given - finished)} being processed, {max(0, handed - given)} still queued)"
        )
        return text if self.ended else text + " (its producer had not ended either)"


def broadcast(
    producer: Iterable[Any], *consumers: Callable[[Iterable[Any]], Any], queue_size: int = 8
) -> List[Future]:
    """Feed every item of ``producer`` to every consumer; return one future per consumer.

    Each future resolves with what its consumer returned, or fails with what
    it (or the producer) raised. See the module documentation for the rules.

    Cancelling a future (``future.cancel()``, or Ctrl-C while waiting for
    it) stops that consumer's intake: it is handed the items already queued
    for it, then its iterable raises ``CancelledError``, and the future ends
    cancelled with a message naming the consumer and the reason
    (``broadcast consumer write_images was stopped by cancel()``). Once no
    consumer takes items any more, the producer is no longer pulled and is
    closed.

    The producer is pulled in a thread of its own, which runs in a copy of
    the caller's :mod:`contextvars` context outside any operation; each
    consumer runs in a copy too, its future being the current one there.

    A consumer that is a push-style consumer (a primed generator, see
    :mod:`concert.coroutines.base`) is sent every item, in its consumer
    thread; its future's result is the number of items sent. It is not
    closed at the end (it may be used again): do not send it items from
    elsewhere until its future is done.

    :raises ValueError: if ``queue_size`` is smaller than 1 or there is no consumer.
    :raises TypeError: for a consumer that is a generator not started, or finished.
    """
    if queue_size < 1:
        raise ValueError(f"broadcast: queue_size={queue_size!r} must be at least 1")
    if not consumers:
        raise ValueError("broadcast: no consumer to feed")
    outlets = [_Outlet(_pull_face(consumer, index), queue_size) for index, consumer in enumerate(consumers)]

    def distribute() -> None:
        items = iter(producer)
        try:
            for item in items:
                for outlet in outlets:
                    outlet.put(item)
                if all(outlet.closed for outlet in outlets):
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()  # nobody listens any more: stop the producer (a camera stream, say)
                    return
        except BaseException as error:
            for outlet in outlets:
                outlet.put(_Failure(error))
        else:
            for outlet in outlets:
                outlet.put(_END)

    context = contextvars.copy_context()
    context.run(_current.set, None)  # the producer is not part of the caller's operation
    distributor = threading.Thread(
        target=context.run, args=(distribute,), name="concert-broadcast", daemon=True
    )
    started: List[_Outlet] = []
    try:
        for outlet in outlets:
            _enter(outlet)
            outlet.thread.start()
            started.append(outlet)
        distributor.start()
    except BaseException as error:  # no thread to be had (interpreter shutdown): nothing left hanging
        for outlet in outlets:
            if outlet in started:
                outlet.put(_Failure(error))  # its queue is empty: this does not block
            else:
                _leave(outlet)
                outlet.future._settle(None, error)
        raise
    futures = [outlet.future for outlet in outlets]
    if config.DISABLE_ASYNC:
        try:
            for outlet in outlets:
                outlet.thread.join()
        except KeyboardInterrupt:
            _cancel_after_interrupt(futures)  # Ctrl-C stops every consumer, then goes on
            raise
    return futures


class _PushConsumer:
    """A push-style consumer (a primed generator) used as a pull-style one: it is sent every item."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self.__qualname__ = name_of(generator)  # what name_of() and so the messages show

    def __call__(self, items: Iterable[Any]) -> int:
        count = 0
        for item in items:
            self.generator.send(item)
            count += 1
        return count


def _pull_face(consumer: Any, index: int) -> Callable[[Iterable[Any]], Any]:
    """``consumer`` itself, or a :class:`_PushConsumer` for a generator (checked to take items)."""
    if inspect.isgenerator(consumer):
        from concert.coroutines.base import check_consumer

        return _PushConsumer(check_consumer(consumer, "broadcast", f"consumer {index}"))
    return consumer


# -- PrioItem: what feed_queue hands out -----------------------------------------------------

_sequence = itertools.count()
_sequence_lock = threading.Lock()


def _next_sequence() -> int:
    with _sequence_lock:
        return next(_sequence)


@dataclass(order=True, frozen=True)
class PrioItem:
    """An item for :class:`queue.PriorityQueue`: lower ``priority`` comes out first.

    Items are ordered by ``priority`` and, among equal priorities, by creation order (first
    in, first out); ``data`` is never compared, so it can be anything (numpy arrays, dicts).
    Two distinct items are never equal, even with equal priority and data.

    :raises TypeError: for a priority that is not a real number (bools are rejected).
    :raises LimitError: for a NaN priority, which cannot be ordered.
    """

    priority: float
    data: Any = field(compare=False)
    _sequence: int = field(default_factory=_next_sequence, init=False, repr=False)

    def __post_init__(self) -> None:
        if not is_real(self.priority):
            raise TypeError(f"PrioItem(priority={self.priority!r}): priority must be a real number")
        if self.priority != self.priority:
            raise LimitError(f"PrioItem(priority={self.priority!r}): priority must not be NaN")


class _QueueJob:
    """The exit wait's view of one :func:`feed_queue`: its future and what it was handed."""

    def __init__(self, future: Future, items: queue.Queue) -> None:
        self.future = future
        self.items = items
        self.handed = 0  # written by the feeding thread only
        self.ended = False

    def lost(self) -> str:
        queued = self.items.qsize()
        text = (
            f"it was handed {self.handed} items and had not finished: {queued} of them still queued, "
            "what it had taken and not finished is lost"
        )
        return text if self.ended else text + " (its producer had not ended either)"


def feed_queue(producer: Iterable[Any], func: Callable[..., Any], *args: Any, queue_size: int = 0) -> Future:
    """Run ``func(queue, *args)`` in a thread while another thread fills ``queue`` from ``producer``.

    Items arrive as :class:`PrioItem` with priority 0, in
    producer order; the end of the stream is an item with priority ``inf``
    whose ``data`` is ``None``. ``queue_size`` bounds the queue (0: unbounded).
    Returns the future of ``func``'s result; if the producer fails, the
    future fails with the producer's exception once ``func`` has returned
    (the end item still arrives). Once ``func`` has returned or raised, the
    producer is no longer pulled. Under DISABLE_ASYNC the future is finished
    on return.

    ``func`` runs with the returned future as its current one
    (:func:`~concert.futures.check_cancelled` in it refers to that future).
    Cancelling the future stops the feeding: an end item is put at once (it
    wakes a ``func`` waiting for an item), items already queued come before
    it, and the future ends cancelled when ``func`` returns (or raises
    ``CancelledError``).
    """
    items: queue.PriorityQueue = queue.PriorityQueue(maxsize=queue_size)
    future = Future(f"feed_queue {name_of(func)!r}")
    future.set_running_or_notify_cancel()
    job = _QueueJob(future, items)

    failure: List[BaseException] = []  # written by the feeding thread before the end item
    finished = threading.Event()  # set once func has returned or raised: stop feeding

    def end() -> Any:
        return PrioItem(priority=math.inf, data=None)

    def wake() -> None:  # the cancel action: a func waiting for an item gets the end
        try:
            items.put_nowait(end())
        except queue.Full:
            pass  # the feeder puts the end once there is room

    future.add_cancel_action(wake)

    def put(item: Any) -> bool:
        while not finished.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def feed() -> None:
        stream = iter(producer)
        try:
            while not _asked_to_stop(future):  # checked before taking an item: none taken is dropped
                try:
                    item = next(stream)
                except StopIteration:
                    job.ended = True
                    break
                if not put(PrioItem(priority=0, data=item)):
                    break  # func has returned
                job.handed += 1
        except BaseException as error:
            job.ended = True
            failure.append(error)
            if finished.is_set():
                LOG.error(
                    "%s: the producer failed after the consumer had returned",
                    future.name,
                    exc_info=(type(error), error, error.__traceback__),
                )
        if not job.ended:  # cancelled, or nobody takes items any more: stop the producer
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    LOG.exception("%s: closing the producer failed", future.name)
        put(end())

    def consume() -> None:
        _current.set(future)
        try:
            try:
                result = func(items, *args)
            except BaseException as error:
                finished.set()
                future._settle(None, error)
                return
            finished.set()
            # A failure reaching func is recorded before the end item it got; one after
            # func returned early concerns items it never saw (it is logged by the feeder).
            if failure:
                future._settle(None, failure[0])
            else:
                future._settle(result, None)
        finally:
            _leave(job)

    def start(target: Callable[[], None], name: str) -> threading.Thread:
        context = contextvars.copy_context()
        context.run(_current.set, None)
        thread = threading.Thread(target=context.run, args=(target,), name=name, daemon=True)
        thread.start()
        return thread

    _enter(job)
    try:
        consumer = start(consume, "concert-feed-queue-consumer")
    except BaseException as error:  # no thread to be had (interpreter shutdown)
        _leave(job)
        future._settle(None, error)
        raise
    try:
        start(feed, "concert-feed-queue")
    except BaseException as error:
        failure.append(error)
        items.put(end())  # func ends at once, and its future fails with the error
        raise
    if config.DISABLE_ASYNC:
        try:
            consumer.join()
        except KeyboardInterrupt:
            _cancel_after_interrupt([future])
            raise
    return future


# -- interpreter exit ---------------------------------------------------------------------------


def _exit_limit() -> float:
    try:
        limit = optional_seconds(config.EXIT_FLUSH_TIMEOUT, "EXIT_FLUSH_TIMEOUT")
    except Exception as error:  # a bad value set at run time must not cost the frames
        LOG.error("concert.config.EXIT_FLUSH_TIMEOUT is invalid (%s): 10 s are used", error)
        limit = 10.0
    return 3600.0 if limit is None else limit


def _wait_at_exit() -> None:
    """Let the running consumers finish, within EXIT_FLUSH_TIMEOUT; log what each still running loses."""
    if isinstance(getattr(sys, "last_value", None), KeyboardInterrupt):
        _stop_at_exit("Ctrl-C")
    limit = _exit_limit()
    deadline = time.monotonic() + limit
    when = f"after {limit:g} s"
    try:
        with _live_lock:
            while _live:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                _live_changed.wait(remaining)
    except KeyboardInterrupt:  # Ctrl-C during the wait: stop waiting, but say what is lost
        when = "when Ctrl-C ended the wait"
        _stop_at_exit("Ctrl-C")
    with _live_lock:
        late = sorted(_live, key=lambda job: job.future.order)
    for job in late:
        LOG.error("%s was still running at exit %s: %s", job.future.name, when, job.lost())


def _stop_at_exit(reason: str) -> None:
    from concert.exit_hook import report_stopped

    with _live_lock:
        futures = [job.future for job in _live]
    stopped = [future.name for future in futures if request_cancel_logged(future, reason)]
    report_stopped(reason, stopped, "pipeline consumer(s)")


def _register_exit_wait() -> None:
    """Make :func:`_wait_at_exit` run when the main thread has ended.

    ``threading._register_atexit`` (CPython 3.9+) runs it in the interpreter's
    thread shutdown, before non-daemon threads -- the pool's -- are joined, in
    reverse order of registration: concert.executor imported
    ``concurrent.futures.thread`` before us, so the pool still takes calls
    while we wait. It also runs before every :mod:`atexit` handler, hence
    before the dispatchers' exit flush (concert.dispatcher is imported above
    for the case of the fallback: an :mod:`atexit` handler registered after
    the dispatcher's runs before it).
    """
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        try:
            register(_wait_at_exit)
            return
        except RuntimeError:  # imported during shutdown
            pass
    atexit.register(_wait_at_exit)


_register_exit_wait()


# -- sinks ---------------------------------------------------------------------------------
#
# Each sink has two faces and one implementation: called with an iterable it consumes it
# (pull style, a consumer of broadcast()); called without, it returns a primed generator to
# send() items to (push style, concert.coroutines). Calling starts over either way.


def null(producer: Optional[Iterable[Any]] = None) -> Any:
    """Discard items.

    Pull style, ``null(producer)``: consume ``producer``, return how many items it gave.
    Push style, ``null()``: return a primed generator that discards what it is sent.
    """
    if producer is None:
        return _discard()
    count = 0
    for _ in producer:
        count += 1
    return count


def _discard() -> Any:
    def discard() -> Any:
        while True:
            yield

    return _primed(discard())


def _primed(generator: Any) -> Any:
    next(generator)
    return generator


def _check_shape(shape: Any) -> Optional[tuple]:
    if shape is None:
        return None
    if is_integer(shape):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not shape or not all(is_integer(n) for n in shape):
        raise TypeError(f"Accumulate(shape={shape!r}): shape must be a tuple of ints, or an int")
    if any(n < 0 for n in shape):
        raise LimitError(f"Accumulate(shape={tuple(shape)!r}): dimensions must not be negative")
    return tuple(int(n) for n in shape)


def _storable(item: np.dtype, target: np.dtype) -> bool:
    """Whether values of ``item`` fit ``target`` without wrapping or truncating (floats may be narrowed)."""
    if np.can_cast(item, target, casting="safe"):
        return True
    return (item.kind == "f" and target.kind in "fc") or (item.kind == "c" and target.kind == "c")


class Accumulate:
    """Collect items into :attr:`items`: a list, or a preallocated array of ``shape`` and ``dtype``.

    Without ``shape``, :attr:`items` is a list of the items, as given. With
    ``shape``, it is a numpy array of that shape (``dtype`` default float64,
    numpy's; zeros until filled) and item ``i`` is stored into ``items[i]``:
    every item must have the shape ``shape[1:]`` and a dtype whose values
    fit ``dtype`` (a cast that could wrap or truncate, floats into integers
    or wider integers into narrower ones, is refused; floats may be
    narrowed). Each call starts over with a new list or array.

    Pull style, ``acc(producer)``: store every item of ``producer``, return :attr:`items`.
    Push style, ``acc()``: return a primed generator that stores what it is sent.

    :raises TypeError: for a ``shape`` that is not ints, or a ``dtype`` without ``shape``.
    :raises LimitError: for negative dimensions, and (from the call, or
        ``send``) for more items than ``shape[0]``; the item is not stored.
    :raises ValueError: (from the call, or ``send``) for an item of another
        shape or a dtype that does not fit; the item is not stored.
    """

    def __init__(self, shape: Any = None, dtype: Any = None) -> None:
        self.shape = _check_shape(shape)
        if dtype is not None and self.shape is None:
            raise TypeError(f"Accumulate(dtype={dtype!r}): a dtype needs a shape to preallocate")
        self.dtype = np.dtype(dtype)  # None: float64
        self.items: Any = self._fresh()
        self._count = 0

    def _fresh(self) -> Any:
        return [] if self.shape is None else np.zeros(self.shape, dtype=self.dtype)

    def _add(self, item: Any) -> None:
        if self.shape is None:
            self.items.append(item)
            return
        if self._count >= self.shape[0]:
            raise LimitError(
                f"Accumulate(shape={self.shape}): item {self._count} (counting from 0) does not fit, "
                f"the array holds {self.shape[0]}"
            )
        array = np.asanyarray(item)
        what = f"item {self._count}"
        if array.shape != self.shape[1:]:
            raise wrong_shape(f"Accumulate(shape={self.shape})", what, self.shape[1:], shape_of(array))
        if not _storable(array.dtype, self.dtype):
            raise wrong_dtype(f"Accumulate(shape={self.shape})", what, self.dtype, array.dtype)
        self.items[self._count] = array
        self._count += 1

    def __call__(self, producer: Optional[Iterable[Any]] = None) -> Any:
        self.items = self._fresh()
        self._count = 0
        if producer is None:
            return _primed(self._collect())
        for item in producer:
            self._add(item)
        return self.items

    def _collect(self) -> Any:
        while True:
            self._add((yield))


class _Mean:
    """The pixel-wise mean of frames added one at a time: what :class:`Average` computes, in one place.

    ``who`` names the sink or filter in messages. See :class:`Average` for
    the sums; ``spill`` is the number of frames after which the exact
    integer sum is added into the float64 one.
    """

    def __init__(self, who: str, spill: int) -> None:
        self.who = who
        self.spill = spill
        self.count = 0
        self._shape: Optional[tuple] = None
        self._dtype: Any = None
        self._total: Optional[np.ndarray] = None  # float64, what has been spilled
        self._partial: Optional[np.ndarray] = None  # exact integer sum since the last spill
        self._mean: Optional[np.ndarray] = None  # computed on demand, dropped by add()

    def add(self, frame: Any) -> None:
        frame = np.asarray(frame)
        if self._shape is None:
            self._shape, self._dtype = frame.shape, frame.dtype
            small_integers = frame.dtype.kind in "ui" and frame.dtype.itemsize <= 2
            dtype = np.int64 if frame.dtype.kind == "i" else np.uint32
            self._partial = np.zeros(self._shape, dtype=dtype if small_integers else np.float64)
            self._total = np.zeros(self._shape, dtype=np.float64) if small_integers else self._partial
        elif frame.shape != self._shape:
            raise wrong_shape(self.who, f"frame {self.count}", self._shape, frame.shape)
        elif frame.dtype != self._dtype:
            raise DataError(f"{self.who}: frame {self.count} is {frame.dtype}, the first was {self._dtype}")
        np.add(self._partial, frame, out=self._partial, casting="unsafe")
        self.count += 1
        self._mean = None
        if self._partial is not self._total and self.count % self.spill == 0:
            self._total += self._partial
            self._partial[...] = 0

    def mean(self) -> Optional[np.ndarray]:
        """The mean so far (float64, a new array after each :meth:`add`); ``None`` before the first frame."""
        if self.count == 0:
            return None
        if self._mean is None:
            total = self._total if self._partial is self._total else self._total + self._partial
            self._mean = total / self.count
        return self._mean


class Average:
    """Average frames pixel by pixel (float64).

    Pull style, ``avg(producer)``: return the average image of ``producer``'s
    frames; :attr:`average` holds it (and stays ``None`` until the call
    returns) and :attr:`count` the number of frames.
    Push style, ``avg()``: return a primed generator to send frames to;
    :attr:`average` is then the average of the frames sent so far
    (``None`` before the first) and :attr:`count` their number.

    Unsigned integer frames of up to 16 bits are summed exactly in a 32-bit
    accumulator (spilled into float64 every 65536 frames): half the memory
    traffic of a float64 sum, which matters when a writer shares the memory
    bus. Signed ones are summed in 64 bits, others in float64.

    :raises ValueError: if the producer is empty (pull style), or frames
        differ in shape or dtype (the frame is not counted).
    """

    _SPILL = 65536  # uint16 frames that always fit a uint32 sum

    def __init__(self) -> None:
        self._average: Optional[np.ndarray] = None
        self._count = 0
        self._running: Optional[_Mean] = None  # push style

    @property
    def average(self) -> Optional[np.ndarray]:
        """The average image (see the class), or ``None``."""
        return self._running.mean() if self._running is not None else self._average

    @property
    def count(self) -> int:
        """The number of frames averaged (see the class)."""
        return self._running.count if self._running is not None else self._count

    def __call__(self, producer: Optional[Iterable[Any]] = None) -> Any:
        self._average, self._count, self._running = None, 0, None
        if producer is None:
            self._running = _Mean("Average", self._SPILL)
            return _primed(self._collect(self._running))
        mean = _Mean("Average", self._SPILL)
        for frame in producer:
            mean.add(frame)
        if mean.count == 0:
            raise ValueError("Average: the producer gave no frames")
        self._average, self._count = mean.mean(), mean.count
        return self._average

    @staticmethod
    def _collect(mean: _Mean) -> Any:
        while True:
            mean.add((yield))


class Result:
    """Keep the last item in :attr:`result` (``None`` for no items); each call starts over.

    Pull style, ``res(producer)``: consume ``producer`` and return its last item.
    Push style, ``res()``: return a primed generator; :attr:`result` is the last item it was sent.
    """

    def __init__(self) -> None:
        self.result: Any = None

    def __call__(self, producer: Optional[Iterable[Any]] = None) -> Any:
        self.result = None
        if producer is None:
            return _primed(self._collect())
        for item in producer:
            self.result = item
        return self.result

    def _collect(self) -> Any:
        while True:
            self.result = yield
