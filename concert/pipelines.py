"""Data pipelines: producers of frames, fanned out to consumers.

A *producer* is any iterable of items (frames, usually numpy arrays): a
list, a generator, ``camera.stream()``. A *consumer* is a callable taking an
iterable and consuming it: ``write_images``, :class:`Average`, ``null``.

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

Consumers run in threads even when :data:`concert.config.DISABLE_ASYNC` is
on (a broadcast needs them all at once); :func:`broadcast` then waits for
them before returning, so its futures are finished, as synchronous mode
promises.
"""

from __future__ import annotations

import math
import queue
import threading
from typing import Any, Callable, Iterable, Iterator, List, Optional

import numpy as np

from concert import config
from concert.futures import Future

__all__ = ["Accumulate", "Average", "Result", "broadcast", "feed_queue", "null"]

_END = object()


class _Failure:
    """Carries the producer's exception to the consumers."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Stream:
    """The iterable one consumer gets: items from its queue until end of stream (or cancellation)."""

    def __init__(self, outlet: _Outlet) -> None:
        self._outlet = outlet

    def __iter__(self) -> Iterator[Any]:
        get = self._outlet.items.get
        cancelled = self._outlet.cancelled
        while True:
            item = get()
            if item is _END or cancelled.is_set():
                return
            if type(item) is _Failure:
                raise item.error
            yield item


class _Outlet:
    """One consumer's end of a broadcast: its queue, thread and future.

    ``dead`` is set (once, by the consumer's thread) when the consumer has
    finished or failed; the distributor then stops feeding it.
    """

    def __init__(self, consumer: Callable[[Iterable[Any]], Any], queue_size: int) -> None:
        self.consumer = consumer
        self.items: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.dead = False
        self.cancelled = threading.Event()
        name = getattr(consumer, "__qualname__", None) or type(consumer).__qualname__
        self.future = Future(f"broadcast consumer {name}")
        self.future.set_running_or_notify_cancel()
        self.future.add_cancel_action(self._cancel)
        self.thread = threading.Thread(target=self._run, name=f"concert-consumer-{name}", daemon=True)

    def _cancel(self) -> None:
        # The consumer's stream ends at the next item; wake it if it waits for one.
        self.cancelled.set()
        try:
            self.items.put_nowait(_END)
        except queue.Full:
            pass

    def _run(self) -> None:
        try:
            result = self.consumer(_Stream(self))
        except BaseException as error:
            self.dead = True
            self.future._settle(None, error)
        else:
            self.dead = True
            self.future._settle(result, None)
        finally:
            self._discard_queued()

    def _discard_queued(self) -> None:
        # Make room so that a distributor blocked on this full queue moves on.
        while True:
            try:
                self.items.get_nowait()
            except queue.Empty:
                return

    def put(self, item: Any) -> None:
        """Hand ``item`` to the consumer, waiting while its queue is full; skip it once dead.

        A blocked put cannot hang on a dead consumer: the consumer's thread sets
        ``dead`` first and then empties its queue.
        """
        if not self.dead:
            self.items.put(item)


def broadcast(
    producer: Iterable[Any], *consumers: Callable[[Iterable[Any]], Any], queue_size: int = 8
) -> List[Future]:
    """Feed every item of ``producer`` to every consumer; return one future per consumer.

    Each future resolves with what its consumer returned, or fails with what
    it (or the producer) raised. See the module documentation for the rules.

    Cancelling a future (or Ctrl-C while waiting for it) ends that
    consumer's stream; once every consumer has ended, the producer is no
    longer pulled and is closed.

    :raises ValueError: if ``queue_size`` is smaller than 1 or there is no consumer.
    """
    if queue_size < 1:
        raise ValueError(f"broadcast: queue_size={queue_size!r} must be at least 1")
    if not consumers:
        raise ValueError("broadcast: no consumer to feed")
    outlets = [_Outlet(consumer, queue_size) for consumer in consumers]
    for outlet in outlets:
        outlet.thread.start()

    def distribute() -> None:
        items = iter(producer)
        try:
            for item in items:
                for outlet in outlets:
                    outlet.put(item)
                if all(outlet.dead for outlet in outlets):
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

    distributor = threading.Thread(target=distribute, name="concert-broadcast", daemon=True)
    distributor.start()
    if config.DISABLE_ASYNC:
        distributor.join()
        for outlet in outlets:
            outlet.thread.join()
    return [outlet.future for outlet in outlets]


def feed_queue(producer: Iterable[Any], func: Callable[..., Any], *args: Any, queue_size: int = 0) -> Future:
    """Run ``func(queue, *args)`` in a thread while another thread fills ``queue`` from ``producer``.

    Items arrive as :class:`concert.utils.PrioItem` with priority 0, in
    producer order; the end of the stream is an item with priority ``inf``
    whose ``data`` is ``None``. ``queue_size`` bounds the queue (0: unbounded).
    Returns the future of ``func``'s result; if the producer fails, the
    future fails with the producer's exception once ``func`` has returned
    (the end item still arrives). Once ``func`` has returned or raised, the
    producer is no longer pulled. Under DISABLE_ASYNC the future is finished
    on return.
    """
    from concert.utils import PrioItem

    items: queue.PriorityQueue = queue.PriorityQueue(maxsize=queue_size)
    future = Future(f"feed_queue {getattr(func, '__qualname__', func)!r}")
    future.set_running_or_notify_cancel()

    failure: List[BaseException] = []  # written by the feeding thread before the end item
    finished = threading.Event()  # set once func has returned or raised: stop feeding

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
            for item in stream:
                if not put(PrioItem(priority=0, data=item)):
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()
                    return
        except BaseException as error:
            failure.append(error)
        put(PrioItem(priority=math.inf, data=None))

    def consume() -> None:
        try:
            result = func(items, *args)
        except BaseException as error:
            finished.set()
            future.set_exception(error)
            return
        finished.set()
        feeder.join()
        if failure:
            future.set_exception(failure[0])
        else:
            future.set_result(result)

    feeder = threading.Thread(target=feed, name="concert-feed-queue", daemon=True)
    threads = [feeder, threading.Thread(target=consume, name="concert-feed-queue-consumer", daemon=True)]
    for thread in threads:
        thread.start()
    if config.DISABLE_ASYNC:
        for thread in threads:
            thread.join()
    return future


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
