"""broadcast, feed_queue and the sinks: every item everywhere, bounded memory, isolated failures."""

from __future__ import annotations

import math
import sys
import threading
import tracemalloc
from concurrent.futures import CancelledError

import numpy as np
import pytest

from concert.pipelines import Accumulate, Average, Result, broadcast, feed_queue, null
from concert.polling import busy_wait
from tests.conftest import TIMEOUT


class Counting:
    """A producer that counts how many items were pulled from it."""

    def __init__(self, count, make=lambda i: i, fail_at=None):
        self.count, self.make, self.fail_at = count, make, fail_at
        self.produced = 0

    def __iter__(self):
        for i in range(self.count):
            if i == self.fail_at:
                raise OSError(f"detector lost at frame {i}")
            self.produced += 1
            yield self.make(i)


def results(futures):
    return [future.result(TIMEOUT) for future in futures]


def test_every_item_reaches_every_consumer_in_order():
    sinks = [Accumulate(), Accumulate(), Accumulate()]
    assert results(broadcast(range(1000), *sinks)) == [list(range(1000))] * 3


def test_end_of_stream_and_sinks():
    frames = [np.full((4, 5), i, dtype=np.uint16) for i in range(10)]
    average, last = Average(), Result()
    counted, averaged, final = results(broadcast(frames, null, average, last))
    assert counted == 10
    np.testing.assert_array_equal(averaged, np.full((4, 5), 4.5))
    assert average.count == 10 and final is frames[-1] and last.result is frames[-1]


def test_sink_errors():
    with pytest.raises(ValueError, match="no frames"):
        Average()([])
    with pytest.raises(ValueError, match=r"frame 1 has shape \(3,\), expected \(2,\)"):
        Average()([np.zeros(2), np.zeros(3)])
    assert Result()([]) is None and null([]) == 0 and Accumulate()([]) == []
    with pytest.raises(ValueError, match="queue_size=0"):
        broadcast([], null, queue_size=0)


def test_slow_consumer_keeps_memory_bounded(asynchronous):
    gate = threading.Event()
    producer = Counting(100)
    fast = Accumulate()

    def slow(items):
        seen = []
        for item in items:
            assert gate.wait(TIMEOUT)
            seen.append(item)
        return seen

    futures = broadcast(producer, slow, fast, queue_size=4)
    # The slow consumer holds one item; once its queue (4) is full the
    # distributor waits with one more: exactly 6 items pulled, no more.
    busy_wait(lambda: producer.produced >= 6, sleep_time=0.001, timeout=TIMEOUT)
    busy_wait(lambda: len(fast.items) >= 5, sleep_time=0.001, timeout=TIMEOUT)
    assert producer.produced == 6
    gate.set()
    assert results(futures) == [list(range(100))] * 2


def test_failing_consumer_neither_blocks_nor_hides_the_others():
    def fragile(items):
        for item in items:
            if item == 3:
                raise ValueError("consumer broke at 3")

    healthy = [Accumulate(), Accumulate()]
    futures = broadcast(range(500), healthy[0], fragile, healthy[1], queue_size=1)
    with pytest.raises(ValueError, match="broke at 3"):
        futures[1].result(TIMEOUT)
    assert futures[0].result(TIMEOUT) == list(range(500)) and futures[2].result(TIMEOUT) == list(range(500))


def test_producer_failure_reaches_every_consumer():
    sinks = [Accumulate(), Accumulate()]
    futures = broadcast(Counting(10, fail_at=5), *sinks)
    for future, sink in zip(futures, sinks):
        with pytest.raises(OSError, match="lost at frame 5"):
            future.result(TIMEOUT)
        assert sink.items == [0, 1, 2, 3, 4]


def test_producer_is_not_drained_once_nobody_listens():
    producer = Counting(10_000)

    def first_only(items):
        return next(iter(items))

    assert results(broadcast(producer, first_only, queue_size=1)) == [0]
    assert producer.produced < 10_000


def test_disabled_mode_returns_finished_futures(synchronous):
    futures = broadcast(range(10), Accumulate(), null)
    assert all(future.done() for future in futures)
    assert results(futures) == [list(range(10)), 10]


def test_concurrent_broadcasts_under_fast_switching(asynchronous):
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        runs = [broadcast(range(2000), Accumulate(), Accumulate(), null, queue_size=2) for _ in range(8)]
        for futures in runs:
            assert results(futures) == [list(range(2000)), list(range(2000)), 2000]
    finally:
        sys.setswitchinterval(previous)


def test_peak_memory_bounded_by_queue_sizes(asynchronous):
    frame_bytes = 1 << 20
    gate = threading.Event()
    producer = Counting(40, make=lambda i: np.full(frame_bytes, i % 256, dtype=np.uint8))

    def slow(items):
        total = 0
        for item in items:
            assert gate.wait(TIMEOUT)
            total += int(item[0])
        return total

    tracemalloc.start()
    try:
        futures = broadcast(producer, slow, null, queue_size=3)
        busy_wait(lambda: producer.produced >= 5, sleep_time=0.001, timeout=TIMEOUT)
        gate.set()
        assert results(futures) == [sum(i % 256 for i in range(40)), 40]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # queue (3) + one in the slow consumer's hand + one waiting in put + slack for the generator
    assert peak < 7 * frame_bytes


def test_feed_queue_delivers_prioritised_items_then_the_end():
    def drain(items, prefix):
        received = []
        while True:
            item = items.get(timeout=TIMEOUT)
            if item.data is None:
                assert item.priority == math.inf
                return prefix, received
            received.append(item.data)

    assert feed_queue(range(100), drain, "frames").result(TIMEOUT) == ("frames", list(range(100)))


def test_feed_queue_reports_errors():
    def broken(items):
        raise KeyError("no such detector")

    with pytest.raises(KeyError, match="no such detector"):
        feed_queue(range(3), broken).result(TIMEOUT)


def test_average_is_exact_across_spills():
    class Spilling(Average):
        _SPILL = 3  # spill the integer sum into float64 every 3 frames

    frames = [np.full((2, 3), 65535 - i, dtype=np.uint16) for i in range(10)]
    expected = np.mean([f.astype(np.float64) for f in frames], axis=0)
    np.testing.assert_array_equal(Spilling()(frames), expected)
    np.testing.assert_array_equal(Average()(frames), expected)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.int32])
def test_average_of_other_types(dtype):
    frames = [np.array([[-1, 2], [3, 4]]).astype(dtype) * (i + 1) for i in range(4)]
    expected = np.mean([f.astype(np.float64) for f in frames], axis=0)
    np.testing.assert_allclose(Average()(frames), expected, rtol=1e-12)


def test_feed_queue_reports_a_failing_producer():
    def drain(items):
        received = []
        while (item := items.get(timeout=TIMEOUT)).data is not None:
            received.append(item.data)
        return received

    with pytest.raises(OSError, match="lost at frame 2"):
        feed_queue(Counting(5, fail_at=2), drain).result(TIMEOUT)


def test_broadcast_needs_a_consumer():
    with pytest.raises(ValueError, match="no consumer"):
        broadcast(range(3))


def test_cancelling_a_consumer_ends_its_stream_and_closes_an_abandoned_producer(asynchronous):
    import itertools

    closed = threading.Event()

    def endless():
        try:
            yield from itertools.count()
        finally:
            closed.set()

    started = threading.Event()

    def listener(items):
        for _ in items:
            started.set()

    [future] = broadcast(endless(), listener, queue_size=2)
    assert started.wait(TIMEOUT)
    assert future.cancel() and future.cancelled()
    assert closed.wait(TIMEOUT), "the producer was not closed once nobody listened"


def test_feed_queue_never_hangs_on_a_failing_or_early_func():
    import itertools

    def fail(items):
        items.get(timeout=TIMEOUT)
        raise KeyError("consumer gave up")

    def first(items):
        return items.get(timeout=TIMEOUT).data

    with pytest.raises(KeyError):
        feed_queue(itertools.count(), fail, queue_size=2).result(TIMEOUT)
    assert feed_queue(itertools.count(), first, queue_size=2).result(TIMEOUT) == 0


def test_average_refuses_mixed_types():
    with pytest.raises(ValueError, match="frame 1 is float64, the first was uint16"):
        Average()([np.zeros(2, dtype=np.uint16), np.full(2, 0.7)])


# -- cancellation: the consumer's future, check_cancelled() and on_cancel --------------------------


def gated_frames(gate, count=None):
    """A producer whose items come only while ``gate`` is set (endless without ``count``)."""
    import itertools

    for i in itertools.count() if count is None else range(count):
        assert gate.wait(TIMEOUT)
        yield i


def test_cancelling_a_consumer_names_it_and_the_reason(asynchronous):
    started = threading.Event()
    other = Accumulate()

    def listener(items):
        for _ in items:
            started.set()

    futures = broadcast(range(5), other, queue_size=1)  # an unrelated broadcast goes on
    gate = threading.Event()
    gate.set()
    [future] = broadcast(gated_frames(gate), listener, queue_size=2)
    assert started.wait(TIMEOUT)
    assert future.cancel(timeout=TIMEOUT) is True
    with pytest.raises(CancelledError, match=r"^broadcast consumer .*listener was stopped by cancel\(\)$"):
        future.result(TIMEOUT)
    assert results(futures) == [list(range(5))]


def test_a_cancelled_consumer_finishes_what_was_queued_and_takes_nothing_produced_later(asynchronous):
    holding, release = threading.Event(), threading.Event()
    produced, done = [], []

    def frames():
        for index in range(100):
            produced.append(index)
            yield index

    def careful(items):
        for item in items:
            if item == 2:
                holding.set()
                assert release.wait(TIMEOUT)
            done.append(item)

    [future] = broadcast(frames(), careful, queue_size=4)
    assert holding.wait(TIMEOUT)
    # Item 2 in hand, 3..6 queued, 7 produced and waiting for room in the queue.
    busy_wait(lambda: produced[-1:] == [7], sleep_time=0.001, timeout=TIMEOUT)
    assert future.request_cancel("abort()")  # recorded; the consumer is busy with item 2
    release.set()
    with pytest.raises(CancelledError, match=r"careful was stopped by abort\(\)"):
        future.result(TIMEOUT)
    # Everything produced before the request was finished: the item in hand, the queued
    # ones and the one waiting for room; nothing produced after it was taken.
    assert done == list(range(8))
    assert produced[-1] <= 8


def test_a_waiting_consumer_is_woken_by_the_request(asynchronous):
    gate = threading.Event()  # never set: the producer yields nothing
    waiting = threading.Event()

    def patient(items):
        waiting.set()
        return list(items)

    [future] = broadcast(gated_frames(gate), patient)
    try:
        assert waiting.wait(TIMEOUT)
        assert future.cancel(timeout=TIMEOUT)
        assert future.cancelled()
    finally:
        gate.set()  # let the producer thread notice that nobody listens any more


def test_a_consumer_runs_with_its_future_as_the_current_one():
    from concert.futures import check_cancelled, current_future, on_cancel

    seen, stops = [], []

    def consumer(items):
        future = current_future()
        seen.append(future)
        with on_cancel(lambda: stops.append("stopped")):
            for item in items:
                if item == 3:
                    future.request_cancel("the consumer itself")  # from inside: no waiting
                    check_cancelled()
        return "not reached"

    [future] = broadcast(range(10), consumer)
    with pytest.raises(CancelledError, match="consumer was stopped by the consumer itself"):
        future.result(TIMEOUT)
    assert seen == [future] and stops == ["stopped"]


def test_a_consumer_waiting_for_an_operation_passes_the_request_on(asynchronous):
    from concert.futures import async_, on_cancel

    started, stopped = threading.Event(), threading.Event()

    @async_
    def slow_step(item):
        with on_cancel(stopped.set):  # the hardware's stop action
            started.set()
            assert stopped.wait(TIMEOUT)

    def stepping(items):
        for item in items:
            slow_step(item).result(TIMEOUT)

    [future] = broadcast(range(3), stepping)
    assert started.wait(TIMEOUT)
    assert future.cancel(timeout=TIMEOUT)
    assert stopped.is_set()
    with pytest.raises(CancelledError, match="stepping was stopped"):
        future.result(TIMEOUT)


def test_a_failing_stop_action_withdraws_the_request_and_the_consumer_goes_on(asynchronous):
    from concert.futures import on_cancel

    started, release = threading.Event(), threading.Event()

    def broken_stop():
        raise OSError("the stop button is stuck")

    def consumer(items):
        on_cancel(broken_stop)
        received = []
        for item in items:
            started.set()
            assert release.wait(TIMEOUT)
            received.append(item)
        return received

    [future] = broadcast(range(20), consumer, queue_size=2)
    assert started.wait(TIMEOUT)
    with pytest.raises(OSError, match="stuck"):
        future.cancel(timeout=TIMEOUT)
    release.set()
    assert future.result(TIMEOUT) == list(range(20))  # nothing lost, the spurious wake-up ignored


def test_cancelling_every_consumer_stops_and_closes_the_producer(asynchronous):
    closed, gate = threading.Event(), threading.Event()
    gate.set()

    def producer():
        try:
            yield from gated_frames(gate)
        finally:
            closed.set()

    futures = broadcast(producer(), null, Accumulate(), queue_size=2)
    for future in futures:
        assert future.cancel(timeout=TIMEOUT)
    assert closed.wait(TIMEOUT)
    assert all(future.cancelled() for future in futures)


def test_cancelling_feed_queue_wakes_its_func_and_names_the_reason(asynchronous):
    waiting = threading.Event()
    gate = threading.Event()  # never set: nothing is fed

    def drain(items):
        waiting.set()
        while items.get(timeout=TIMEOUT).data is not None:
            pass
        return "drained"

    future = feed_queue(gated_frames(gate), drain)
    try:
        assert waiting.wait(TIMEOUT)
        assert future.cancel(timeout=TIMEOUT)
        with pytest.raises(CancelledError, match=r"^feed_queue 'drain' was stopped by cancel\(\)$"):
            future.result(TIMEOUT)
    finally:
        gate.set()


def test_feed_queue_func_checks_its_own_future():
    from concert.futures import check_cancelled, current_future

    def drain(items):
        count = 0
        while items.get(timeout=TIMEOUT).data is not None:
            count += 1
            if count == 3:
                current_future().request_cancel("abort()")
            check_cancelled()
        return count

    future = feed_queue(range(100), drain)
    with pytest.raises(CancelledError, match=r"feed_queue 'drain' was stopped by abort\(\)"):
        future.result(TIMEOUT)


def test_feed_queue_does_not_wait_for_a_stuck_producer_once_func_returned():
    gate = threading.Event()  # in both modes: DISABLE_ASYNC waits for func, not for the producer

    def first(items):
        return items.get(timeout=TIMEOUT).data

    def stuck_after_one():
        yield "first"
        assert gate.wait(TIMEOUT)  # a camera that stopped sending
        yield "second"

    try:
        assert feed_queue(stuck_after_one(), first).result(TIMEOUT) == "first"
    finally:
        gate.set()


def test_broadcast_does_not_wait_for_a_stuck_producer_once_every_consumer_returned():
    gate, closed = threading.Event(), threading.Event()

    def stuck_after_one():
        try:
            yield "first"
            assert gate.wait(TIMEOUT)  # a camera that stopped sending
            yield "second"
        finally:
            closed.set()

    try:
        assert results(broadcast(stuck_after_one(), lambda items: next(iter(items)))) == ["first"]
    finally:
        gate.set()
    assert closed.wait(TIMEOUT)  # closed once it handed over its next item


def test_consumers_are_named_after_what_they_call():
    import functools

    futures = broadcast(range(3), functools.partial(Accumulate()), Average(), null)
    assert [future.name for future in futures] == [
        "broadcast consumer Accumulate",
        "broadcast consumer Average",
        "broadcast consumer null",
    ]
    assert [future.result(TIMEOUT) for future in futures][::2] == [[0, 1, 2], 3]


# -- a consumer returning a future (issue 8, item 1) ------------------------------------------


def test_a_walker_write_as_consumer_writes_every_frame(tmp_path):
    from concert.storage.files import read_image
    from concert.storage.walkers import DirectoryWalker

    walker = DirectoryWalker(root=str(tmp_path))
    frames = [np.full((4, 4), index, dtype=np.uint16) for index in range(7)]
    written, average = broadcast(frames, walker.write, Average())
    assert written.result(TIMEOUT) == 7
    assert average.result(TIMEOUT).mean() == 3
    files = sorted(path for path in tmp_path.iterdir() if path.suffix == ".tif")
    assert [int(read_image(str(path))[0, 0]) for path in files] == list(range(7))


def test_a_consumer_future_that_fails_fails_the_consumer():
    from concert.futures import async_

    @async_
    def write(frames):
        for frame in frames:
            if frame == 3:
                raise OSError("disk gone at frame 3")

    def consumer(frames):
        return write(frames)

    (future,) = broadcast(range(10), consumer)
    with pytest.raises(OSError, match="disk gone at frame 3"):
        future.result(TIMEOUT)


def test_a_plain_concurrent_future_is_resolved_too():
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        (future,) = broadcast(range(100), lambda frames: pool.submit(sum, frames))
        assert future.result(TIMEOUT) == sum(range(100))
    finally:
        pool.shutdown()


@pytest.mark.skipif("config.getoption('--disable-async')", reason="needs the write running in the background")
def test_cancelling_the_consumer_stops_the_background_write():
    from concert.futures import async_

    started = threading.Event()
    seen = []

    @async_
    def write(frames):
        for frame in frames:
            seen.append(frame)
            started.set()

    def endless():
        index = 0
        while True:
            yield index
            index += 1

    (future,) = broadcast(endless(), lambda frames: write(frames), queue_size=1)
    assert started.wait(TIMEOUT)
    future.cancel(timeout=TIMEOUT)
    assert future.cancelled()
    with pytest.raises(CancelledError, match="was stopped by cancel"):
        future.result(TIMEOUT)
    count = len(seen)
    assert not future.running()
    assert len(seen) == count  # nothing is written after the cancel returned
