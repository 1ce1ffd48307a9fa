"""The push-style coroutines of the legacy API: concert.coroutines.base, .sinks and .filters (SPEC §14)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import concert.pipelines
from concert.coroutines import filters
from concert.coroutines.base import Inbox, as_push_consumer, broadcast, coroutine, inject, is_coroutine
from concert.coroutines.filters import (
    PickSlice,
    Timer,
    absorptivity,
    average_images,
    backproject,
    downsize,
    flat_correct,
    process,
    queue,
    reconstruct,
    sinograms,
    stall,
)
from concert.coroutines.sinks import Accumulate, Average, Result, null
from concert.exceptions import LimitError
from concert.futures import Future
from concert.quantities import q
from tests.conftest import TIMEOUT, run_python


@coroutine
def collector(into):
    while True:
        into.append((yield))


def closed_within(generator, timeout=TIMEOUT):
    """Close ``generator`` in a helper thread, failing after ``timeout`` seconds; re-raise its error."""
    errors = []

    def close():
        try:
            generator.close()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "close() did not return in time"
    if errors:
        raise errors[0]


# -- base: coroutine, inject, broadcast -----------------------------------------------------------


def test_coroutine_primes_the_generator_and_runs_its_checks_in_the_call():
    @coroutine
    def checked(limit):
        if limit < 0:
            raise LimitError(f"limit={limit} must not be negative")
        while True:
            yield

    consumer = checked(1)
    assert is_coroutine(consumer)
    consumer.send(1)  # no "can't send non-None value to a just-started generator"
    with pytest.raises(LimitError, match="limit=-1"):
        checked(-1)


def test_coroutine_refuses_a_function_that_is_no_generator():
    @coroutine
    def plain():
        return 1

    with pytest.raises(TypeError, match=r"plain\(\) returned int, not a generator"):
        plain()


def test_inject_sends_every_item_in_order_and_leaves_the_consumer_open():
    seen = []
    consumer = collector(seen)
    inject(range(3), consumer)
    inject(iter([3, 4]), consumer)  # it may be used again
    assert seen == [0, 1, 2, 3, 4]


def test_inject_refuses_consumers_that_cannot_take_items():
    def generator():
        yield

    with pytest.raises(TypeError, match="has not been started"):
        inject([1], generator())
    finished = collector([])
    finished.close()
    with pytest.raises(TypeError, match="has finished"):
        inject([1], finished)
    with pytest.raises(TypeError, match=r"call it to get its push-style consumer: Accumulate\(\)"):
        inject([1], Accumulate())  # the legacy mistake: the sink object instead of acc()


def test_push_broadcast_forwards_each_item_to_every_consumer_in_order():
    first, second, order = [], [], []

    @coroutine
    def tagged(into, tag):
        while True:
            item = yield
            into.append(item)
            order.append(tag)

    fan = broadcast(tagged(first, "a"), tagged(second, "b"))
    assert is_coroutine(fan)
    inject(range(3), fan)
    assert first == second == [0, 1, 2]
    assert order == ["a", "b"] * 3


def test_push_broadcast_propagates_a_consumer_s_exception_to_the_sender():
    @coroutine
    def broken():
        while True:
            item = yield
            if item == 2:
                raise KeyError("no such detector")

    later = []
    fan = broadcast(broken(), collector(later))
    with pytest.raises(KeyError, match="no such detector"):
        inject(range(5), fan)
    assert later == [0, 1]  # the consumer after it did not get item 2


def test_push_broadcast_refuses_a_finished_consumer():
    finished = collector([])
    finished.close()
    with pytest.raises(TypeError, match=r"broadcast: consumer 1 .* has finished"):
        broadcast(collector([]), finished)


def test_broadcast_with_a_producer_first_is_pull_style():
    sink = Accumulate()
    futures = broadcast(range(4), sink, null)
    assert all(isinstance(future, Future) for future in futures)
    assert [future.result(TIMEOUT) for future in futures] == [[0, 1, 2, 3], 4]


def test_a_generator_not_started_is_a_producer_even_with_push_consumers():
    def frames():
        yield from range(3)

    acc = Accumulate()
    (future,) = broadcast(frames(), acc())  # pull style: frames() is the producer
    assert future.result(TIMEOUT) == 3  # the number of items sent to the push consumer
    assert acc.items == [0, 1, 2]


def test_keyword_arguments_make_broadcast_pull_style():
    def numbers():
        yield "skipped"
        yield from range(3)

    started = numbers()
    next(started)  # a started generator, meant as the producer
    result = Result()
    (future,) = broadcast(started, result, queue_size=2)
    assert future.result(TIMEOUT) == 2


def test_pull_broadcast_feeds_push_consumers_and_does_not_close_them():
    seen = []
    consumer = collector(seen)
    futures = concert.pipelines.broadcast(range(5), consumer, null)
    assert [future.result(TIMEOUT) for future in futures] == [5, 5]
    assert seen == [0, 1, 2, 3, 4]
    consumer.send(5)  # still open
    assert seen[-1] == 5


def test_pull_broadcast_names_a_push_consumer_and_refuses_finished_ones():
    (future,) = broadcast(range(2), collector([]))
    future.result(TIMEOUT)
    assert "collector" in future.name
    finished = collector([])
    finished.close()
    with pytest.raises(TypeError, match=r"broadcast: consumer 0 .* has finished"):
        broadcast(range(2), finished)


# -- sinks: one implementation, two faces ---------------------------------------------------------


def test_the_legacy_sinks_are_the_pipeline_sinks():
    assert Accumulate is concert.pipelines.Accumulate
    assert Result is concert.pipelines.Result
    assert null is concert.pipelines.null
    assert Average is concert.pipelines.Average


def test_null_in_both_styles():
    assert null(range(7)) == 7
    discard = null()
    assert is_coroutine(discard)
    inject(range(3), discard)


def test_result_in_both_styles_and_each_call_starts_over():
    result = Result()
    assert result(range(4)) == 3 and result.result == 3
    inject(range(10, 13), result())
    assert result.result == 12
    assert result([]) is None and result.result is None
    result()
    assert result.result is None


def test_accumulate_as_a_list_in_both_styles():
    acc = Accumulate()
    assert acc.items == []
    inject("abc", acc())
    assert acc.items == ["a", "b", "c"]
    first = acc.items
    assert acc(range(2)) == [0, 1]
    assert first == ["a", "b", "c"]  # a new list: the old one is kept as it was


def test_accumulate_preallocated():
    acc = Accumulate(shape=(3, 2, 2), dtype=np.uint16)
    assert acc.items.shape == (3, 2, 2) and acc.items.dtype == np.uint16
    frames = [np.full((2, 2), i, dtype=np.uint8) for i in range(2)]
    inject(frames, acc())
    np.testing.assert_array_equal(acc.items[:2], np.array(frames))
    np.testing.assert_array_equal(acc.items[2], 0)  # not filled yet
    pulled = acc([np.full((2, 2), 7, dtype=np.uint16)] * 3)
    assert pulled is acc.items and (pulled == 7).all()
    default = Accumulate(shape=4)
    inject([1, 2], default())
    assert default.items.dtype == np.float64
    np.testing.assert_array_equal(default.items, [1, 2, 0, 0])


def test_accumulate_refuses_items_that_do_not_fit():
    acc = Accumulate(shape=(2, 3, 4), dtype=np.float32)
    sink = acc()
    with pytest.raises(
        ValueError, match=r"Accumulate\(shape=\(2, 3, 4\)\): item 0 has shape \(4, 3\), expected \(3, 4\)"
    ):
        sink.send(np.zeros((4, 3)))
    sink = acc()
    with pytest.raises(ValueError, match="item 0 is int64, which cannot be stored as float32"):
        sink.send(np.zeros((3, 4), dtype=np.int64))
    acc(np.zeros((2, 3, 4)))  # floats may be narrowed (precision only)
    with pytest.raises(LimitError, match=r"item 2 \(counting from 0\) does not fit, the array holds 2"):
        acc(np.zeros((3, 3, 4)))
    integers = Accumulate(shape=(1, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="uint16, which cannot be stored as uint8"):
        integers([np.zeros(2, dtype=np.uint16)])
    with pytest.raises(ValueError, match="float64, which cannot be stored as uint8"):
        integers([np.zeros(2)])


def test_accumulate_refuses_bad_arguments():
    with pytest.raises(TypeError, match="a dtype needs a shape"):
        Accumulate(dtype=np.float32)
    with pytest.raises(TypeError, match="shape must be a tuple of ints"):
        Accumulate(shape=(2.5, 3))
    with pytest.raises(LimitError, match="must not be negative"):
        Accumulate(shape=(-1, 3))


def test_average_in_push_style_is_the_average_so_far():
    average = Average()
    sink = average()
    assert average.average is None and average.count == 0
    sink.send(np.full((2, 2), 2, dtype=np.uint16))
    sink.send(np.full((2, 2), 4, dtype=np.uint16))
    np.testing.assert_array_equal(average.average, np.full((2, 2), 3.0))
    assert average.count == 2
    with pytest.raises(ValueError, match=r"Average: frame 2 has shape \(3,\), expected \(2, 2\)"):
        sink.send(np.zeros(3, dtype=np.uint16))
    np.testing.assert_array_equal(average([np.ones(2), np.zeros(2)]), [0.5, 0.5])  # pull style


# -- filters ----------------------------------------------------------------------------------------


def frames_of(shape, count, dtype=np.uint16, seed=0):
    generator = np.random.default_rng(seed)
    return [generator.integers(10, 1000, size=shape).astype(dtype) for _ in range(count)]


def test_flat_correct_with_dark_matches_the_formula():
    flat = np.full((4, 5), 900, dtype=np.uint16)
    flat[0, 0] = 500
    dark = np.full((4, 5), 100, dtype=np.uint16)
    frames = frames_of((4, 5), 3)
    out = Accumulate()
    inject(frames, flat_correct(flat, out(), dark=dark))
    for frame, corrected in zip(frames, out.items):
        expected = (frame.astype(np.float64) - dark) / (flat.astype(np.float64) - dark)
        assert corrected.dtype == np.float32
        np.testing.assert_allclose(corrected, expected, rtol=1e-6)


def test_flat_correct_without_dark_and_wide_inputs():
    flat = np.linspace(1, 2, 12).reshape(3, 4)  # float64
    frames = [np.arange(12, dtype=np.float64).reshape(3, 4)]
    out = Result()
    inject(frames, flat_correct(flat, out()))
    assert out.result.dtype == np.float64
    np.testing.assert_allclose(out.result, frames[0] / flat, rtol=1e-12)


def test_flat_correct_refuses_shapes_that_differ():
    with pytest.raises(ValueError, match=r"flat_correct: dark has shape \(3, 4\), expected \(4, 5\)"):
        flat_correct(np.ones((4, 5)), null(), dark=np.ones((3, 4)))
    corrector = flat_correct(np.ones((4, 5)), null())
    with pytest.raises(ValueError, match=r"flat_correct: frame 0 has shape \(3, 5\), expected \(4, 5\)"):
        corrector.send(np.ones((3, 5)))


def test_flat_correct_divides_by_zero_quietly(recwarn):
    out = Result()
    flat_correct(np.array([[0.0, 2.0]]), out()).send(np.array([[1.0, 1.0]]))
    assert np.isinf(out.result[0, 0]) and out.result[0, 1] == 0.5
    assert not [warning for warning in recwarn if issubclass(warning.category, RuntimeWarning)]


def test_absorptivity_is_minus_log():
    frames = [np.array([[1.0, 0.5], [0.25, np.e]], dtype=np.float32)]
    out = Result()
    inject(frames, absorptivity(out()))
    np.testing.assert_allclose(out.result, -np.log(frames[0]), rtol=1e-6)
    assert out.result.dtype == np.float32
    assert frames[0][0, 1] == np.float32(0.5)  # the input is left alone


def test_absorptivity_of_a_flat_corrected_frame():
    flat, dark = np.full((2, 3), 1000.0), np.full((2, 3), 100.0)
    frame = np.full((2, 3), 550.0)
    out = Result()
    flat_correct(flat, absorptivity(out()), dark=dark).send(frame)
    np.testing.assert_allclose(out.result, -np.log(0.5), rtol=1e-6)


def test_sinograms_hold_row_i_of_every_radiograph():
    radiographs = frames_of((3, 5), 4)
    out = Result()
    inject(radiographs, sinograms(4, out()))
    volume = out.result
    assert volume.shape == (3, 4, 5) and volume.dtype == np.float32
    for i in range(3):
        np.testing.assert_array_equal(volume[i], np.array([radio[i] for radio in radiographs]))


def test_sinograms_forward_the_same_volume_after_every_radiograph_and_wrap_around():
    sent = []

    @coroutine
    def record():
        while True:
            volume = yield
            sent.append((volume, volume.copy()))

    radiographs = [np.full((2, 3), i + 1) for i in range(5)]
    inject(radiographs, sinograms(3, record()))
    assert len(sent) == 5
    assert all(volume is sent[0][0] for volume, _ in sent)  # updated in place
    np.testing.assert_array_equal(sent[1][1][0, :, 0], [1, 2, 0])
    np.testing.assert_array_equal(sent[4][1][0, :, 0], [4, 5, 3])  # 4 and 5 replaced 1 and 2


def test_sinograms_into_a_given_volume():
    volume = np.zeros((2, 3, 4))
    out = Result()
    inject(frames_of((2, 4), 3), sinograms(3, out(), sinograms_volume=volume))
    assert out.result is volume and volume.any()
    with pytest.raises(
        ValueError, match=r"sinograms: sinograms_volume has shape \(2, 4, 4\), expected \(height, 3, width\)"
    ):
        sinograms(3, null(), sinograms_volume=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"radiograph 0 has shape \(4, 2\), expected \(2, 4\)"):
        sinograms(3, null(), sinograms_volume=volume).send(np.zeros((4, 2)))


def test_sinograms_refuse_a_radiograph_of_another_shape():
    sorter = sinograms(4, null())
    sorter.send(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"sinograms: radiograph 1 has shape \(5, 3\), expected \(3, 5\)"):
        sorter.send(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"radiograph 0 has shape \(7,\), expected a 2-D image"):
        sinograms(4, null()).send(np.zeros(7))
    with pytest.raises(LimitError, match="num_radiographs=0 must be at least 1"):
        sinograms(0, null())
    with pytest.raises(TypeError, match=r"num_radiographs=2\.0 must be an int"):
        sinograms(2.0, null())


def point_sinogram(width, projections, center, x, y):
    """The sinogram of a point at (x, y) from the axis, in the geometry reconstruct() documents."""
    sinogram = np.zeros((projections, width))
    for k in range(projections):
        theta = k * np.pi / projections
        where = center + x * np.cos(theta) + y * np.sin(theta)
        low = int(np.floor(where))
        sinogram[k, low] += 1 - (where - low)
        sinogram[k, low + 1] += where - low
    return sinogram


@pytest.mark.parametrize("center, x, y", [(32.0, 0.0, 0.0), (30.0, 10.0, -7.0), (36.5, -12.0, 9.0)])
def test_backproject_reconstructs_a_point_where_it_is(center, x, y):
    out = Result()
    backproject(center, out()).send(point_sinogram(64, 120, center, x, y))
    reconstructed = out.result
    assert reconstructed.shape == (64, 64) and reconstructed.dtype == np.float32
    row, column = np.unravel_index(np.argmax(reconstructed), reconstructed.shape)
    assert abs(row - (center + y)) <= 0.5 and abs(column - (center + x)) <= 0.5
    background = np.median(np.abs(reconstructed))
    assert reconstructed[row, column] > 20 * background  # a peak, not a smear


def test_backproject_of_a_sinogram_volume_through_pick_slice():
    radiographs = []
    for k in range(90):  # a point on row 2 of a 3-row detector
        radio = np.zeros((3, 48))
        radio[2] = point_sinogram(48, 90, 24.0, 5.0, 3.0)[k]
        radiographs.append(radio)
    out = Result()
    inject(
        radiographs, sinograms(90, stall(PickSlice(2)(backproject(24.0, out())), per_shot=1000, flush_at=90))
    )
    row, column = np.unravel_index(np.argmax(out.result), out.result.shape)
    assert (row, column) == (27, 29)


def test_backproject_refuses_what_is_no_sinogram():
    with pytest.raises(
        ValueError, match=r"backproject: sinogram 0 has shape \(2, 3, 4\), expected \(projections, width\)"
    ):
        backproject(1.0, null()).send(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="center='1' must be a number of pixels"):
        backproject("1", null())
    with pytest.raises(LimitError, match="center=nan must be finite"):
        backproject(float("nan"), null())


def test_reconstruct_is_linear():
    sinogram = point_sinogram(32, 40, 16.0, 3.0, 2.0)
    np.testing.assert_allclose(reconstruct(2 * sinogram, 16.0), 2 * reconstruct(sinogram, 16.0), rtol=1e-5)


def test_downsize_cuts_and_selects():
    images = [np.arange(30).reshape(5, 6) + 100 * i for i in range(6)]
    out = Accumulate()
    inject(images, downsize(out(), x_slice=(1, 5, 2), y_slice=slice(0, 4), z_slice=(1, 5, 2)))
    assert len(out.items) == 2
    np.testing.assert_array_equal(out.items[0], images[1][0:4, 1:5:2])
    np.testing.assert_array_equal(out.items[1], images[3][0:4, 1:5:2])
    everything = Accumulate()
    inject(images, downsize(everything()))
    assert len(everything.items) == 6 and everything.items[5] is not None
    np.testing.assert_array_equal(everything.items[5], images[5])


def test_downsize_refuses_bad_slices_and_images():
    with pytest.raises(TypeError, match=r"downsize: x_slice='1:2' must be None, a slice or a tuple"):
        downsize(null(), x_slice="1:2")
    with pytest.raises(LimitError, match=r"y_slice=\(0, 4, 0\): the step must be positive"):
        downsize(null(), y_slice=(0, 4, 0))
    with pytest.raises(LimitError, match="bounds must not be negative"):
        downsize(null(), z_slice=(-3, None))
    with pytest.raises(ValueError, match=r"downsize: frame 0 has shape \(4,\), expected a 2-D image"):
        downsize(null()).send(np.zeros(4))


def test_average_images_forwards_the_running_average():
    out = Accumulate()
    inject([np.full((2, 2), value, dtype=np.uint16) for value in (1, 3, 8)], average_images(out()))
    assert [float(average[0, 0]) for average in out.items] == [1.0, 2.0, 4.0]
    assert out.items[0] is not out.items[1]
    with pytest.raises(ValueError, match=r"average_images: frame 1 has shape \(3,\), expected \(2,\)"):
        inject([np.zeros(2), np.zeros(3)], average_images(null()))


def test_stall_forwards_every_per_shot_th_item_and_the_flush_at_th():
    out = Accumulate()
    inject(range(1, 25), stall(out(), per_shot=4, flush_at=10))
    assert out.items == [4, 8, 10, 14, 18, 20, 24]
    plain = Accumulate()
    inject(range(1, 31), stall(plain()))
    assert plain.items == [10, 20, 30]
    with pytest.raises(LimitError, match="stall: per_shot=0 must be at least 1"):
        stall(null(), per_shot=0)
    with pytest.raises(TypeError, match="stall: flush_at='5' must be an int"):
        stall(null(), flush_at="5")


def test_process_applies_the_function_with_its_arguments():
    out = Accumulate()
    inject([1, 2], process(lambda item, factor, offset=0: item * factor + offset, out(), 10, offset=1))
    assert out.items == [11, 21]
    with pytest.raises(TypeError, match="process: func 3 is not callable"):
        process(3, null())


def test_pick_slice_picks_and_follows_its_index():
    picker = PickSlice(1)
    out = Accumulate()
    sink = picker(out())
    volume = np.arange(24).reshape(2, 3, 4)
    sink.send(volume)
    picker.index = -2
    sink.send(volume)
    np.testing.assert_array_equal(out.items[0], volume[1])
    np.testing.assert_array_equal(out.items[1], volume[0])
    with pytest.raises(
        LimitError, match=r"PickSlice\(5\): index 5 lies outside an item of shape \(2, 3, 4\)"
    ):
        PickSlice(5)(null()).send(volume)
    with pytest.raises(TypeError, match="index must be an int"):
        PickSlice(1.5)


def test_timer_measures_what_follows(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(filters.time, "perf_counter", lambda: clock[0])

    @coroutine
    def slow():
        while True:
            seconds = yield
            clock[0] += seconds  # the work downstream takes that long

    timer = Timer()
    inject([0.25, 0.5], timer(slow()))
    assert timer.durations == [0.25 * q.s, 0.5 * q.s]
    assert timer.duration == 0.75 * q.s
    timer.reset()
    assert timer.durations == [] and timer.duration == 0 * q.s


def test_filters_refuse_a_consumer_that_is_not_primed():
    with pytest.raises(
        TypeError, match=r"downsize: consumer .* call it to get its push-style consumer: Result\(\)"
    ):
        downsize(Result())
    for make in (
        lambda c: flat_correct(np.ones(2), c),
        absorptivity,
        lambda c: sinograms(2, c),
        average_images,
        stall,
        lambda c: backproject(1, c),
        queue,
        PickSlice(0),
        Timer(),
    ):
        with pytest.raises(TypeError, match="not a push-style consumer"):
            make([])


# -- queue: another thread ------------------------------------------------------------------------


def test_queue_delivers_every_item_in_order_in_another_thread():
    seen, threads = [], set()

    @coroutine
    def record():
        while True:
            seen.append((yield))
            threads.add(threading.get_ident())

    feeder = queue(record())
    inject(range(100), feeder)
    closed_within(feeder)  # waits until every item was forwarded
    assert seen == list(range(100))
    assert threads and threading.get_ident() not in threads


def test_queue_copies_items_unless_told_not_to():
    received = Accumulate()
    buffer = np.zeros(3)
    feeder = queue(received(), block=True)
    feeder.send(buffer)
    buffer[:] = 7  # the camera reuses its buffer
    closed_within(feeder)
    np.testing.assert_array_equal(received.items[0], 0)
    shared = Accumulate()
    feeder = queue(shared(), block=True, make_deepcopy=False)
    feeder.send(buffer)
    closed_within(feeder)
    assert shared.items[0] is buffer


def test_queue_without_process_all_forwards_the_newest_item():
    seen = []
    took_first, release = threading.Event(), threading.Event()

    @coroutine
    def busy():
        while True:
            item = yield
            seen.append(item)
            if item == 0:
                took_first.set()
                assert release.wait(TIMEOUT)

    feeder = queue(busy(), process_all=False)
    feeder.send(0)
    assert took_first.wait(TIMEOUT)
    for item in range(1, 6):  # all of them arrive while the consumer is busy with 0
        feeder.send(item)
    release.set()
    closed_within(feeder)
    assert seen == [0, 5]


def test_queue_with_block_returns_once_the_item_is_processed():
    seen = []
    feeder = queue(collector(seen), block=True)
    for item in range(5):
        feeder.send(item)
        assert seen[-1] == item  # already there
    closed_within(feeder)


def test_queue_hands_the_consumer_s_exception_to_the_sender():
    @coroutine
    def broken():
        while True:
            item = yield
            if item == 1:
                raise KeyError("detector gone")

    feeder = queue(broken(), block=True)
    feeder.send(0)
    with pytest.raises(KeyError, match="detector gone"):
        feeder.send(1)
    with pytest.raises(StopIteration):
        feeder.send(2)  # the filter is finished
    unblocked = queue(broken())
    unblocked.send(0)
    unblocked.send(1)
    with pytest.raises(KeyError, match="detector gone"):
        closed_within(unblocked)  # not reported by a send: close() raises it


# -- between the styles ---------------------------------------------------------------------------


def test_as_push_consumer_runs_a_pull_consumer_synchronously_for_the_sender():
    seen, threads = [], set()

    def pull(items):
        for item in items:
            threads.add(threading.get_ident())
            seen.append(item)
        return len(seen)

    sink = as_push_consumer(pull)
    for item in range(3):
        sink.send(item)
        assert seen[-1] == item
    closed_within(sink)
    assert threading.get_ident() not in threads


def test_as_push_consumer_raises_the_error_for_the_item_and_then_is_finished():
    def picky(items):
        for item in items:
            if item < 0:
                raise ValueError(f"negative item {item}")

    sink = as_push_consumer(picky)
    sink.send(1)
    with pytest.raises(ValueError, match="negative item -1"):
        sink.send(-1)
    with pytest.raises(StopIteration):
        sink.send(2)


def test_as_push_consumer_whose_consumer_returns_early_finishes():
    def first_two(items):
        iterator = iter(items)
        return [next(iterator), next(iterator)]

    sink = as_push_consumer(first_two)
    sink.send("a")
    sink.send("b")
    with pytest.raises(StopIteration):
        sink.send("c")


def test_an_inbox_is_iterated_once():
    inbox = Inbox()
    iter(inbox)
    with pytest.raises(RuntimeError, match="only once"):
        iter(inbox)


def test_open_push_consumers_finish_at_exit():
    result = run_python(
        """
from concert.coroutines.base import coroutine, inject
from concert.coroutines.filters import queue

@coroutine
def printer():
    while True:
        print("item", (yield), flush=True)

feeder = queue(printer())  # never closed, still referenced at exit
inject(range(3), feeder)
"""
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert "item 0" in lines and "item 1" in lines and "item 2" in lines, result.stdout


def test_a_push_consumer_still_running_at_exit_is_reported():
    result = run_python(
        """
import threading
from concert.coroutines.base import coroutine, inject
from concert.coroutines.filters import queue

@coroutine
def stuck():
    while True:
        yield
        threading.Event().wait(60)

feeder = queue(stuck())
inject(range(3), feeder)
""",
        env={"CONCERT_EXIT_FLUSH_TIMEOUT": "0.5"},
    )
    assert result.returncode == 0, result.stderr
    assert "queue(stuck) was still running at exit after 0.5 s: 3 item(s)" in result.stderr
