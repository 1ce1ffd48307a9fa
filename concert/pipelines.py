"""Data pipelines: producers of frames, fanned out to consumers.

A *producer* is any iterable of items (frames, usually numpy arrays): a
list, a generator, ``camera.stream()``. A *consumer* is a callable taking an
iterable and consuming it: ``write_images``, :class:`Average`, ``null``. A
consumer may also hand the iterable to background work and return its
:class:`~concurrent.futures.Future` (``walker.write`` does): the consumer
then counts as running until that future is done, it is fed meanwhile, and
its own future resolves with that future's result.

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
from concert.checks import is_real
from concert.exceptions import LimitError
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

    :raises ValueError: if ``queue_size`` is smaller than 1 or there is no consumer.
    """
    if queue_size < 1:
        raise ValueError(f"broadcast: queue_size={queue_size!r} must be at least 1")
    if not consumers:
        raise ValueError("broadcast: no consumer to feed")
    outlets = [_Outlet(consumer, queue_size) for consumer in consumers]

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


def null(producer: Iterable[Any]) -> int:
    """Consume ``producer`` and discard its items; return how many there were."""
    count = 0
    for _ in producer:
        count += 1
    return count


class Accumulate:
    """Collect every item into :attr:`items` (a list); calling returns that list."""

    def __init__(self) -> None:
        self.items: List[Any] = []

    def __call__(self, producer: Iterable[Any]) -> List[Any]:
        self.items = []
        for item in producer:
            self.items.append(item)
        return self.items


class Average:
    """Average frames pixel by pixel; calling returns the average image (float64).

    :attr:`average` holds the result and :attr:`count` the number of frames.
    Unsigned integer frames of up to 16 bits are summed exactly in a 32-bit
    accumulator (spilled into float64 every 65536 frames): half the memory
    traffic of a float64 sum, which matters when a writer shares the memory
    bus. Signed ones are summed in 64 bits, others in float64.

    :raises ValueError: if the producer is empty or frames differ in shape or dtype.
    """

    _SPILL = 65536  # uint16 frames that always fit a uint32 sum

    def __init__(self) -> None:
        self.average: Optional[np.ndarray] = None
        self.count = 0

    def __call__(self, producer: Iterable[Any]) -> np.ndarray:
        total: Optional[np.ndarray] = None  # float64, what has been spilled
        partial: Optional[np.ndarray] = None  # exact integer sum since the last spill
        shape = None
        count = 0
        for frame in producer:
            frame = np.asarray(frame)
            if shape is None:
                shape, first_dtype = frame.shape, frame.dtype
                small_integers = frame.dtype.kind in "ui" and frame.dtype.itemsize <= 2
                dtype = np.int64 if frame.dtype.kind == "i" else np.uint32
                partial = np.zeros(shape, dtype=dtype if small_integers else np.float64)
                total = np.zeros(shape, dtype=np.float64) if small_integers else partial
            elif frame.shape != shape:
                raise ValueError(f"Average: frame {count} has shape {frame.shape}, expected {shape}")
            elif frame.dtype != first_dtype:
                raise ValueError(f"Average: frame {count} is {frame.dtype}, the first was {first_dtype}")
            np.add(partial, frame, out=partial, casting="unsafe")
            count += 1
            if partial is not total and count % self._SPILL == 0:
                total += partial
                partial[...] = 0
        if shape is None:
            raise ValueError("Average: the producer gave no frames")
        if partial is not total:
            total += partial
        self.average, self.count = total / count, count
        return self.average


class Result:
    """Keep the last item in :attr:`result`; calling returns it (``None`` for no items)."""

    def __init__(self) -> None:
        self.result: Any = None

    def __call__(self, producer: Iterable[Any]) -> Any:
        for item in producer:
            self.result = item
        return self.result
