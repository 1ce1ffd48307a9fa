"""concert.networking.zmq: frame streams over real ZeroMQ sockets on tcp://127.0.0.1.

Senders bind to ``tcp://127.0.0.1:*`` and the port is read back; receivers
connect to it. Waits are bounded by the senders' and receivers' timeouts
(short ones where a timeout is the point) and by TIMEOUT; nothing
synchronises with sleeps: lossy streams are joined with
``wait_for_receiver``, concurrent sides run in Concert threads
(``run_in_thread``), whose futures are waited on.
"""

from __future__ import annotations

import itertools
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest
import zmq

from concert.exceptions import ConfigurationError, DataError, NetworkingError, UnitError
from concert.futures import run_in_thread
from concert.imaging import ImageWithMetadata
from concert.networking.endpoints import CommData
from concert.networking.zmq import ZmqBroadcaster, ZmqReceiver, ZmqSender, _frame_parts
from concert.pipelines import Accumulate, broadcast, null
from concert.quantities import q
from tests.conftest import TIMEOUT, run_python

LOCAL = "tcp://127.0.0.1:*"
SHORT = 0.3  # seconds: the timeout of tests that expect one


@pytest.fixture
def closing():
    """``closing(obj)`` returns ``obj`` and closes it after the test (errors of close are ignored)."""
    objects = []

    def register(obj):
        objects.append(obj)
        return obj

    yield register
    for obj in reversed(objects):
        try:
            obj.close()
        except Exception:
            pass


@pytest.fixture
def pair(closing):
    """``pair(**options)``: a bound sender and a receiver connected to it (both closed after the test)."""

    def make(reliable=True, sndhwm=None, rcvhwm=1000, timeout=TIMEOUT, receiver_timeout=TIMEOUT, copy=False):
        sender = closing(ZmqSender(LOCAL, reliable=reliable, sndhwm=sndhwm, timeout=timeout, copy=copy))
        receiver = closing(
            ZmqReceiver(sender.endpoint, reliable=reliable, timeout=receiver_timeout, rcvhwm=rcvhwm)
        )
        return sender, receiver

    return make


def numbered(count, shape=(64, 64), dtype=np.uint32):
    """Frames whose every pixel is their number, so that what arrived can be told apart."""
    return [np.full(shape, number, dtype=dtype) for number in range(count)]


def base_object(array):
    while isinstance(array, np.ndarray):
        array = array.base
    return array


FRAMES = {
    "uint16 2-D": np.arange(48, dtype=np.uint16).reshape(6, 8),
    "float64 Fortran order": np.asfortranarray(np.linspace(0, 1, 30).reshape(5, 6)),
    "int64 non-contiguous": np.arange(400, dtype=np.int64).reshape(20, 20)[::3, 1::4],
    "bool": np.array([[True, False], [False, True]]),
    "complex64 3-D": (np.arange(24) + 1j * np.arange(24)).astype(np.complex64).reshape(2, 3, 4),
    "big-endian uint32": np.arange(10, dtype=">u4"),
    "0-d": np.array(2.5),
    "empty": np.zeros((0, 7), dtype=np.int16),
    "datetime64": np.array(["2024-01-01T12:00", "2025-06-30T00:30"], dtype="datetime64[s]"),
    "unicode": np.array(["a", "bcd"]),
    "large (copy=False path)": np.arange(512 * 1024, dtype=np.float32).reshape(512, 1024),
}


# -- frames arrive as they were sent ------------------------------------------------------------


@pytest.mark.parametrize("name", list(FRAMES))
def test_a_frame_arrives_byte_identical_with_dtype_shape_and_order(pair, name):
    frame = FRAMES[name]
    sender, receiver = pair()
    assert sender.send(frame) == 0
    received = receiver.receive_image()
    assert type(received) is np.ndarray
    assert received.dtype == frame.dtype and received.dtype.str == frame.dtype.str
    assert received.shape == frame.shape
    assert received.tobytes() == frame.tobytes()  # the same bytes, in the same logical order
    assert np.array_equal(received, frame)
    fortran = frame.flags.f_contiguous and not frame.flags.c_contiguous
    assert received.flags.f_contiguous if fortran else received.flags.c_contiguous  # memory order kept


def test_image_with_metadata_keeps_its_metadata_and_plain_arrays_stay_plain(pair):
    sender, receiver = pair()
    image = ImageWithMetadata(
        np.arange(6, dtype=np.uint16).reshape(2, 3),
        {"frame": 7, "timestamp": 1.5, "roi": (0, 0, 3, 2), "trigger_source": "AUTO", "gain": np.float32(2)},
    )
    empty = ImageWithMetadata(np.zeros(3), {})
    sender.send(image)
    sender.send(empty)
    sender.send(np.ones(3))
    first, second, third = receiver.receive_image(), receiver.receive_image(), receiver.receive_image()
    assert isinstance(first, ImageWithMetadata)
    assert first.tobytes() == image.tobytes()
    # JSON carries it: the tuple arrives as a list, the numpy number as a number.
    assert first.metadata == {
        "frame": 7,
        "timestamp": 1.5,
        "roi": [0, 0, 3, 2],
        "trigger_source": "AUTO",
        "gain": 2.0,
    }
    assert isinstance(second, ImageWithMetadata) and second.metadata == {}
    assert type(third) is np.ndarray


def test_a_received_frame_is_a_writable_view_on_the_zmq_message_not_a_copy(pair):
    sender, receiver = pair()
    sender.send(np.arange(256 * 1024, dtype=np.uint16).reshape(512, 512))
    received = receiver.receive_image()
    holder = base_object(received)
    assert isinstance(holder, memoryview) and isinstance(holder.obj, zmq.Frame)
    received[0, 0] = 99  # in place, as scientists do (frame -= dark)
    assert received[0, 0] == 99


def test_a_contiguous_frame_is_sent_from_its_own_memory_and_a_strided_one_copied_once():
    for frame in (np.zeros((300, 400), np.uint16), np.asfortranarray(np.zeros((30, 40)))):
        _, payload = _frame_parts("test", frame, 0)
        assert np.shares_memory(payload, frame)
    strided = np.zeros((30, 40))[::2]
    _, payload = _frame_parts("test", strided, 0)
    assert not np.shares_memory(payload, strided) and payload.nbytes == strided.nbytes
    image = ImageWithMetadata(np.zeros((8, 8)), {"frame": 1})
    assert np.shares_memory(_frame_parts("test", image, 0)[1], image)


def test_copy_true_sends_what_the_array_held_when_it_was_sent(pair):
    sender, receiver = pair(copy=True)
    frame = np.zeros((512, 512), np.uint16)
    sender.send(frame)
    frame[:] = 7  # a camera reusing its buffer
    assert not receiver.receive_image().any()


# -- end of stream, indices, the consumer and producer faces ---------------------------------


def test_end_of_stream_ends_iteration_and_the_next_stream_starts_at_zero(pair):
    sender, receiver = pair()
    frames = numbered(3)
    assert [sender.send(frame) for frame in frames] == [0, 1, 2]
    assert sender.index == 3
    assert sender.end() == 3
    assert sender.index == 0
    assert [int(frame[0, 0]) for frame in receiver] == [0, 1, 2]
    assert sender.send(frames[2]) == 0
    assert sender.send(None) is None  # send(None) is end()
    assert receiver.receive_image()[0, 0] == 2
    assert receiver.receive_image() is None
    assert (sender.sent, receiver.received, receiver.lost) == (4, 4, 0)


def test_an_empty_stream_is_just_its_end(pair):
    sender, receiver = pair()
    assert sender([]) == 0
    assert list(receiver) == []


def test_the_sender_is_a_broadcast_consumer_and_the_receiver_a_broadcast_producer(pair):
    sender, receiver = pair()
    frames = numbered(5, shape=(32, 32))
    downstream = run_in_thread(lambda: broadcast(receiver, Accumulate(), null))
    upstream = broadcast(iter(frames), sender)
    assert upstream[0].result(timeout=TIMEOUT) == 5
    collected, counted = downstream.result(timeout=TIMEOUT)
    items = collected.result(timeout=TIMEOUT)
    assert counted.result(timeout=TIMEOUT) == 5
    assert [frame.tobytes() for frame in items] == [frame.tobytes() for frame in frames]


def test_leaving_a_with_block_ends_the_stream(closing):
    with ZmqSender(LOCAL, timeout=TIMEOUT) as sender:
        receiver = closing(ZmqReceiver(sender.endpoint, timeout=TIMEOUT))
        sender.send(np.ones(4))
    assert sender.closed
    assert [frame.sum() for frame in receiver] == [4]


def test_a_failing_producer_makes_the_receiver_raise_its_reason(pair):
    sender, receiver = pair()

    def frames():
        yield np.ones(3)
        raise ValueError("the camera overheated")

    with pytest.raises(ValueError, match="overheated"):
        sender(frames())
    assert receiver.receive_image().sum() == 3
    with pytest.raises(NetworkingError, match=r"the sender ended the stream after 1 frame.*overheated"):
        receiver.receive_image()
    sender.send(np.zeros(2))  # a new stream starts at frame 0: no gap is reported
    assert sender.end() == 1
    assert len(list(receiver)) == 1


def test_an_error_in_a_with_block_ends_the_stream_as_failed(closing):
    receiver = None
    with pytest.raises(RuntimeError, match="boom"):
        with ZmqSender(LOCAL, timeout=TIMEOUT) as sender:
            receiver = closing(ZmqReceiver(sender.endpoint, timeout=TIMEOUT))
            sender.send(np.ones(2))
            raise RuntimeError("boom")
    assert receiver.receive_image().sum() == 2
    with pytest.raises(NetworkingError, match="boom"):
        receiver.receive_image()


def test_a_cancelled_sending_consumer_makes_the_receiver_raise_cancelled(pair):
    sender, receiver = pair(sndhwm=1, rcvhwm=1)
    gate = threading.Event()

    def frames():
        yield np.ones(3)
        gate.wait(TIMEOUT)  # the stream stalls here until the test cancelled the consumer
        yield np.ones(3)

    future = run_in_thread(sender, frames())
    assert receiver.receive_image().sum() == 3
    future.request_cancel("cancel()")
    gate.set()
    with pytest.raises(CancelledError):
        future.result(timeout=TIMEOUT)
    with pytest.raises(CancelledError, match="the sender ended the stream after 1 frame"):
        receiver.receive_image()


def test_several_threads_sending_on_one_sender_are_serialised(pair):
    sender, receiver = pair()
    threads, per_thread = 4, 25

    def send_from(number):
        for position in range(per_thread):
            sender.send(np.array([number, position, *range(50)], dtype=np.int64))

    futures = [run_in_thread(send_from, number) for number in range(threads)]
    for future in futures:
        future.result(timeout=TIMEOUT)
    sender.end()
    received = list(receiver)  # a reliable receiver raises on any gap in the indices
    assert len(received) == threads * per_thread
    for number in range(threads):
        mine = [int(frame[1]) for frame in received if frame[0] == number]
        assert mine == list(range(per_thread))  # each thread's frames in its order
    assert all(list(frame[2:]) == list(range(50)) for frame in received)


# -- reliable streams: waiting, timing out, never dropping -------------------------------------------


def test_a_reliable_send_without_receiver_times_out_naming_endpoint_and_frame(closing):
    sender = closing(ZmqSender(LOCAL, timeout=SHORT))
    started = time.monotonic()
    with pytest.raises(NetworkingError) as info:
        sender.send(np.zeros(10))
    elapsed = time.monotonic() - started
    assert SHORT - 0.01 <= elapsed < 3
    message = str(info.value)
    assert sender.endpoint in message and "frame 0" in message and "no receiver took it" in message
    assert sender.index == 0 and sender.sent == 0


def test_a_full_reliable_stream_waits_then_times_out_and_loses_nothing(pair):
    sender, receiver = pair(sndhwm=1, rcvhwm=1, timeout=SHORT)
    frames = numbered(200, shape=(512, 1024))  # 2 MiB each: the queues and socket buffers fill up
    sent = 0
    with pytest.raises(NetworkingError, match=r"sending frame (\d+): no receiver took it") as info:
        for frame in frames:
            assert sender.send(frame) == sent
            sent += 1
    assert 0 < sent < len(frames)
    assert f"frame {sent}" in str(info.value)
    assert sender.index == sent  # the frame that timed out was not sent: it goes again under its index
    future = run_in_thread(lambda: [int(frame[0, 0]) for frame in receiver])
    assert sender.send(frames[sent]) == sent
    assert sender.end() == sent + 1
    assert future.result(timeout=TIMEOUT) == list(range(sent + 1))
    assert receiver.lost == 0


def test_a_reliable_send_waits_for_a_slow_receiver_instead_of_dropping(pair):
    sender, receiver = pair(sndhwm=1, rcvhwm=1)
    frames = numbered(40, shape=(512, 1024))
    future = run_in_thread(lambda: [int(frame[0, 0]) for frame in receiver])
    assert sender(frames) == 40  # blocks while the receiver's queues are full
    assert future.result(timeout=TIMEOUT) == list(range(40))


def test_close_reports_frames_still_queued_when_its_timeout_is_up(closing):
    sender = ZmqSender(LOCAL, sndhwm=100, timeout=SHORT)
    closing(ZmqReceiver(sender.endpoint, rcvhwm=1, timeout=TIMEOUT))  # connected, never reading
    sender.wait_for_receiver()
    for frame in numbered(12, shape=(1024, 1024)):  # 48 MiB: more than the receiver and the sockets hold
        sender.send(frame)
    with pytest.raises(NetworkingError, match=r"still queued after 0\.3 s were dropped"):
        sender.close()
    assert sender.closed


def test_a_gap_in_a_reliable_stream_raises_and_the_frame_after_it_comes_next(closing):
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    try:
        push.bind(LOCAL)
        receiver = closing(ZmqReceiver(push.getsockopt_string(zmq.LAST_ENDPOINT), timeout=TIMEOUT))
        for index in (0, 3):  # frames 1 and 2 never sent
            header, payload = _frame_parts("test", np.full(4, index, np.uint8), index)
            push.send_multipart([header, payload])
        push.send_multipart([b'{"concert":"end","version":1,"frames":6}'])
        assert receiver.receive_image()[0] == 0
        with pytest.raises(NetworkingError, match=r"frame\(s\) 1\.\.2 never arrived \(frame 3 came next\)"):
            receiver.receive_image()
        assert receiver.receive_image()[0] == 3
        with pytest.raises(
            NetworkingError, match=r"ended after 6 frame\(s\) but frame\(s\) 4\.\.5 never arrived"
        ):
            receiver.receive_image()
        assert receiver.receive_image() is None
        assert receiver.lost == 4
    finally:
        push.close(0)
        context.term()


# -- lossy streams ---------------------------------------------------------------------------------


def test_a_slow_subscriber_misses_frames_and_counts_exactly_the_missing_ones(pair, log_of):
    log = log_of("concert.networking.zmq")
    sender, receiver = pair(reliable=False, sndhwm=1, rcvhwm=1)
    sender.wait_for_receiver()
    count = 50
    started = time.monotonic()
    for frame in numbered(count, shape=(512, 1024)):  # 2 MiB frames, offered far faster than they travel
        sender.send(frame)
    assert time.monotonic() - started < TIMEOUT  # lossy: sending never waited for the subscriber
    future = run_in_thread(lambda: [int(frame[0, 0]) for frame in receiver])
    assert sender.end() == count  # the end of stream waits for room: it is not lost
    received = future.result(timeout=TIMEOUT)
    missing = set(range(count)) - set(received)
    assert received == sorted(received) and received[0] == 0
    assert missing and receiver.lost == len(missing) == sender.dropped == count - sender.sent
    reported = set()
    for record in log.records:
        assert record.levelname == "WARNING"
        span = re.search(r"frame\(s\) (\d+)(?:\.\.(\d+))? never arrived", record.getMessage())
        first = int(span.group(1))
        reported |= set(range(first, int(span.group(2) or first) + 1))
    assert reported == missing  # one warning per gap, naming the missing frames


def test_a_late_subscriber_sees_the_stream_from_where_it_joined(closing):
    sender = closing(ZmqSender(LOCAL, reliable=False, timeout=TIMEOUT))
    for frame in numbered(5):
        sender.send(frame)  # nobody subscribed: they go to nobody
    receiver = closing(ZmqReceiver(sender.endpoint, reliable=False, timeout=TIMEOUT))
    sender.wait_for_receiver()
    for frame in numbered(10)[5:]:
        sender.send(frame)
    sender.end()
    assert [int(frame[0, 0]) for frame in receiver] == [5, 6, 7, 8, 9]
    assert receiver.lost == 0


def test_wait_for_receiver_times_out(closing):
    for reliable in (True, False):
        sender = closing(ZmqSender(LOCAL, reliable=reliable, timeout=TIMEOUT))
        with pytest.raises(
            NetworkingError, match=r"no receiver came to tcp://127\.0\.0\.1:\d+ within 0\.1 s"
        ):
            sender.wait_for_receiver(0.1)


# -- broadcaster --------------------------------------------------------------------------------------


def test_a_broadcaster_forwards_a_stream_to_two_receivers(closing):
    source = closing(ZmqSender(LOCAL, timeout=TIMEOUT))
    broadcaster = closing(ZmqBroadcaster(source.endpoint, [LOCAL, LOCAL], timeout=TIMEOUT))
    receivers = [closing(ZmqReceiver(endpoint, timeout=TIMEOUT)) for endpoint in broadcaster.endpoints]
    frames = [ImageWithMetadata(frame, {"frame": number}) for number, frame in enumerate(numbered(6))]
    futures = [run_in_thread(list, receiver) for receiver in receivers]
    assert source(frames) == 6
    for future in futures:
        received = future.result(timeout=TIMEOUT)
        assert [frame.tobytes() for frame in received] == [frame.tobytes() for frame in frames]
        assert [frame.metadata for frame in received] == [{"frame": n} for n in range(6)]
    broadcaster.close()
    assert broadcaster.future.result(timeout=TIMEOUT) == 6 == broadcaster.forwarded


def test_a_broadcaster_feeds_a_writer_reliably_and_a_viewer_lossily(closing):
    source = closing(ZmqSender(LOCAL, timeout=TIMEOUT))
    viewer_out = ZmqSender(LOCAL, reliable=False, timeout=TIMEOUT)
    broadcaster = closing(ZmqBroadcaster(source.endpoint, [LOCAL, viewer_out], timeout=TIMEOUT))
    writer = closing(ZmqReceiver(broadcaster.endpoints[0], timeout=TIMEOUT))
    viewer = closing(ZmqReceiver(broadcaster.endpoints[1], reliable=False, timeout=TIMEOUT))
    broadcaster.wait_for_receivers()
    futures = [run_in_thread(list, writer), run_in_thread(list, viewer)]
    source(numbered(8))
    assert len(futures[0].result(timeout=TIMEOUT)) == 8
    assert len(futures[1].result(timeout=TIMEOUT)) + viewer.lost == 8
    broadcaster.close()
    assert viewer_out.closed  # the broadcaster owns its outputs


def test_a_failing_output_is_dropped_reported_and_the_others_carry_on(closing, log_of):
    log = log_of("concert.networking.zmq")
    source = closing(ZmqSender(LOCAL, timeout=TIMEOUT))
    broadcaster = closing(ZmqBroadcaster(source.endpoint, [LOCAL, LOCAL], timeout=SHORT))
    receiver = closing(ZmqReceiver(broadcaster.endpoints[1], timeout=TIMEOUT))  # nobody at output 0
    future = run_in_thread(list, receiver)
    source(numbered(3))
    assert len(future.result(timeout=TIMEOUT)) == 3
    dead = broadcaster.endpoints[0]
    with pytest.raises(NetworkingError, match=f"{re.escape(dead)}.*forwarding frame 0: no receiver took it"):
        broadcaster.close()
    assert any(record.levelname == "ERROR" and dead in record.getMessage() for record in log.records)


def test_bad_input_stops_the_broadcaster_and_fails_the_stream_downstream(closing, log_of):
    log_of("concert.networking.zmq")
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    try:
        push.bind(LOCAL)
        broadcaster = closing(
            ZmqBroadcaster(push.getsockopt_string(zmq.LAST_ENDPOINT), [LOCAL], timeout=TIMEOUT)
        )
        receiver = closing(ZmqReceiver(broadcaster.endpoints[0], timeout=TIMEOUT))
        header, payload = _frame_parts("test", np.ones(4), 0)
        push.send_multipart([header, payload])
        push.send(b"not a Concert message")
        assert receiver.receive_image().sum() == 4
        with pytest.raises(NetworkingError, match="not part of a Concert frame stream"):
            receiver.receive_image()  # the broadcaster told it the stream failed, and why
        with pytest.raises(NetworkingError, match="not part of a Concert frame stream"):
            broadcaster.future.result(timeout=TIMEOUT)
        with pytest.raises(NetworkingError, match="not part of a Concert frame stream"):
            broadcaster.close()
    finally:
        push.close(0)
        context.term()


def test_a_cancelled_broadcaster_ends_cancelled(closing):
    source = closing(ZmqSender(LOCAL, timeout=TIMEOUT))
    broadcaster = closing(ZmqBroadcaster(source.endpoint, [LOCAL], timeout=TIMEOUT))
    assert broadcaster.future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError):
        broadcaster.future.result(timeout=TIMEOUT)
    broadcaster.close()


def test_broadcaster_wrong_use(closing):
    source = closing(ZmqSender(LOCAL, reliable=False, timeout=TIMEOUT))
    with pytest.raises(ConfigurationError, match="the lossy input cannot feed the reliable output"):
        ZmqBroadcaster(source.endpoint, [LOCAL, CommData("127.0.0.1", _free_port())], reliable=False)
    with pytest.raises(ConfigurationError, match="endpoints_out is empty"):
        ZmqBroadcaster(source.endpoint, [])
    with pytest.raises(ConfigurationError, match="output 5 must be"):
        ZmqBroadcaster(source.endpoint, [5])
    lossy = ZmqBroadcaster(source.endpoint, LOCAL, reliable=False, timeout=TIMEOUT)  # one output, given alone
    assert len(lossy.endpoints) == 1 and not lossy.outputs[0].reliable
    lossy.close()


# -- bad messages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts, why",
    [
        ([b"hello"], "its header is not JSON"),
        ([b"[1, 2]"], "its header is not Concert's"),
        ([b'{"concert": "frame", "version": 99}', b"x"], "version 99 of the format"),
        ([b'{"concert": "frame", "version": 1}'], "a frame without its data"),
        (
            [
                b'{"concert":"frame","version":1,"index":0,"dtype":"<u2","shape":[3],"order":"C","metadata":null}',
                b"abc",
            ],
            "3 bytes of data for 6 bytes",
        ),
        (
            [
                b'{"concert":"frame","version":1,"index":0,"dtype":"|O","shape":[1],"order":"C","metadata":null}',
                b"x",
            ],
            "dtype '|O'",
        ),
        (
            [
                b'{"concert":"frame","version":1,"index":-1,"dtype":"<u2","shape":[1],"order":"C","metadata":null}',
                b"xx",
            ],
            "frame index -1",
        ),
        ([b'{"concert": "end", "version": 1}'], "a malformed end of stream"),
        ([b"a", b"b", b"c"], "wrong number of parts"),
    ],
)
def test_a_message_that_is_not_concerts_raises_naming_the_endpoint_and_is_discarded(closing, parts, why):
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    try:
        push.bind(LOCAL)
        endpoint = push.getsockopt_string(zmq.LAST_ENDPOINT)
        receiver = closing(ZmqReceiver(endpoint, timeout=TIMEOUT))
        push.send_multipart(parts)
        header, payload = _frame_parts("test", np.arange(3), 0)
        push.send_multipart([header, payload])
        with pytest.raises(NetworkingError, match=re.escape(why)) as info:
            receiver.receive_image()
        assert endpoint in str(info.value) and "discarded" in str(info.value)
        assert list(receiver.receive_image()) == [0, 1, 2]  # the receiver goes on
    finally:
        push.close(0)
        context.term()


# -- cancellation, closing from another thread, Ctrl-C --------------------------------------------


def test_cancelling_a_blocked_receive_ends_it_cancelled_and_the_receiver_goes_on(pair):
    sender, receiver = pair(receiver_timeout=None)
    future = run_in_thread(receiver.receive_image)
    started = time.monotonic()
    assert future.cancel(timeout=TIMEOUT)
    assert time.monotonic() - started < 2
    with pytest.raises(CancelledError, match=r"was stopped by cancel\(\)"):
        future.result(timeout=TIMEOUT)
    sender.send(np.ones(2))
    assert receiver.receive_image().sum() == 2


def test_cancelling_a_blocked_send_ends_it_cancelled_without_sending(closing):
    sender = closing(ZmqSender(LOCAL, timeout=None))
    future = run_in_thread(sender.send, np.ones(2))
    assert future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError):
        future.result(timeout=TIMEOUT)
    assert sender.index == 0 and sender.sent == 0


def test_close_from_another_thread_ends_a_blocked_receive(closing):
    sender = closing(ZmqSender(LOCAL, timeout=TIMEOUT))
    receiver = ZmqReceiver(sender.endpoint, timeout=None)
    future = run_in_thread(receiver.receive_image)
    started = time.monotonic()
    receiver.close()
    assert time.monotonic() - started < 2
    error = future.exception(timeout=TIMEOUT) if not future.cancelled() else CancelledError()
    # Blocked when close() came: stopped by close(); not started yet: the receiver was closed.
    assert isinstance(error, (CancelledError, NetworkingError))
    assert re.search("stopped by close|it is closed", str(error)) or isinstance(error, CancelledError)
    with pytest.raises(NetworkingError, match="it is closed"):
        receiver.receive_image()
    receiver.close()  # harmless


@pytest.mark.parametrize(
    "make, call",
    [
        ("ZmqReceiver('tcp://127.0.0.1:*', timeout=None)", "stream.receive_image()"),
        ("ZmqSender('tcp://127.0.0.1:*', timeout=None)", "stream.send(b'frame')"),
    ],
)
def test_ctrl_c_ends_a_blocked_call_in_the_main_thread_at_once(make, call):
    # A helper thread says "waiting" once the main thread holds the stream's lock, i.e. is in the
    # call (it takes the lock first); the SIGINT then finds it waiting, not about to.
    code = (
        "import threading, time\n"
        "from concert.networking.zmq import ZmqReceiver, ZmqSender\n"
        f"stream = {make}\n"
        "def announce():\n"
        "    while not stream._lock.locked():\n"
        "        time.sleep(0.001)\n"
        "    print('waiting', flush=True)\n"
        "threading.Thread(target=announce, daemon=True).start()\n"
        "try:\n"
        f"    {call}\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "stream.close()\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready and process.stdout.readline() == "waiting\n"
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, err = process.communicate(timeout=TIMEOUT)
        elapsed = time.monotonic() - interrupted
    finally:
        process.kill()
    assert out == "interrupted\n", err
    assert elapsed < 2  # at once: not after 10 s of a held-back signal
    assert process.returncode == 0, err


# -- endpoints and wrong use --------------------------------------------------------------------------


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_commdata_endpoints_bind_the_sender_and_connect_the_receiver(closing):
    port = _free_port()
    sender = closing(ZmqSender(CommData("127.0.0.1", port, socket_type="push", sndhwm=5), timeout=TIMEOUT))
    assert sender.endpoint == f"tcp://0.0.0.0:{port}" and sender.binds and sender.reliable
    receiver = closing(ZmqReceiver(CommData("127.0.0.1", port, socket_type="pull"), timeout=TIMEOUT))
    assert receiver.endpoint == f"tcp://127.0.0.1:{port}" and not receiver.binds
    sender.send(np.ones(3))
    assert receiver.receive_image().sum() == 3
    lossy = closing(ZmqSender(CommData("127.0.0.1", _free_port(), socket_type="pub"), timeout=TIMEOUT))
    assert not lossy.reliable and repr(lossy).endswith(", lossy)")


def test_a_receiver_can_bind_and_a_sender_connect_to_it(closing):
    receiver = closing(ZmqReceiver(LOCAL, timeout=TIMEOUT))  # a '*' binds
    assert receiver.binds and re.fullmatch(r"tcp://127\.0\.0\.1:\d+", receiver.endpoint)
    sender = closing(ZmqSender(receiver.endpoint, bind=False, timeout=TIMEOUT))
    assert not sender.binds
    sender.send(np.arange(4))
    assert list(receiver.receive_image()) == [0, 1, 2, 3]


def test_timeouts_take_quantities(closing):
    sender = closing(ZmqSender(LOCAL, timeout=250 * q.ms))
    assert sender.timeout == pytest.approx(0.25)
    assert closing(ZmqReceiver(sender.endpoint, timeout=None)).timeout is None


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: ZmqSender("udp://127.0.0.1:5555"),
            r"endpoint='udp://127.0.0.1:5555' must be 'tcp://HOST:PORT'",
        ),
        (lambda: ZmqSender("tcp://127.0.0.1"), r"PORT in 1..65535 or '\*'"),
        (lambda: ZmqSender("tcp://127.0.0.1:0"), r"PORT in 1..65535"),
        (lambda: ZmqSender("tcp://127.0.0.1:70000"), r"PORT in 1..65535"),
        (lambda: ZmqSender(5555), r"endpoint=5555 must be a CommData or a string"),
        (lambda: ZmqReceiver(LOCAL, bind=False), r"cannot connect to 'tcp://127.0.0.1:\*'"),
        (
            lambda: ZmqSender(CommData("h", 1, socket_type="pull"), reliable=False),
            "contradicts socket_type PULL",
        ),
        (lambda: ZmqSender(CommData("h", 1, socket_type="req")), "socket_type REQ .* is not a stream"),
        (lambda: ZmqSender(CommData("x", protocol="inproc")), "protocol 'inproc' .* is not supported"),
        (lambda: ZmqSender(LOCAL, sndhwm=-1), r"sndhwm=-1 must be an int >= 0"),
        (lambda: ZmqReceiver(LOCAL, rcvhwm=1.5), r"rcvhwm=1.5 must be an int >= 0"),
        (lambda: ZmqSender(LOCAL, reliable="yes"), "reliable='yes' must be True, False or None"),
        (lambda: ZmqSender(LOCAL, copy=1), "copy=1 must be True or False"),
        (lambda: ZmqSender(LOCAL, bind="no"), "bind='no' must be True, False or None"),
        (lambda: ZmqSender("tcp://127.0.0.1:abc"), r"PORT in 1..65535"),
    ],
)
def test_wrong_configuration_raises_configuration_error_naming_the_value(make, match):
    with pytest.raises(ConfigurationError, match=match):
        make()


def test_a_timeout_that_is_not_a_duration_raises_unit_error_naming_the_sender():
    with pytest.raises(
        UnitError, match=r"ZmqSender\('tcp://127.0.0.1:\*'\): timeout=.*millimeter.* is not a time"
    ):
        ZmqSender(LOCAL, timeout=3 * q.mm)
    with pytest.raises(UnitError, match="timeout='soon' is neither a number of seconds nor a time quantity"):
        ZmqReceiver(LOCAL, timeout="soon")


def test_an_address_in_use_or_not_of_this_machine_raises_networking_error(closing):
    sender = closing(ZmqSender(LOCAL))
    with pytest.raises(
        NetworkingError, match=f"cannot bind to '{re.escape(sender.endpoint)}': Address already in use"
    ):
        ZmqSender(sender.endpoint)
    with pytest.raises(NetworkingError, match=re.escape("cannot bind to 'tcp://192.0.2.1:5555'")):
        ZmqSender("tcp://192.0.2.1:5555")  # TEST-NET-1: never an address of this machine


def test_frames_that_cannot_be_sent_raise_data_error_and_leave_the_stream_as_it_was(pair):
    sender, receiver = pair()
    with pytest.raises(DataError, match=r"frame 0 has dtype object"):
        sender.send(np.array([1, "a", None], dtype=object))
    with pytest.raises(DataError, match=r"frame 0 has dtype"):
        sender.send(np.zeros(3, dtype=[("x", "<f4"), ("y", "<i2")]))
    with pytest.raises(DataError, match="the metadata of frame 0 cannot be sent as JSON"):
        sender.send(ImageWithMetadata(np.zeros(2), {("a", 1): "tuple key"}))
    with pytest.raises(DataError, match="frame 1 of the stream is None"):
        sender([np.zeros(1), None])
    assert receiver.receive_image() is not None
    with pytest.raises(NetworkingError, match="the sender ended the stream after 1 frame"):
        receiver.receive_image()
    assert sender.send(np.ones(1)) == 0


def test_a_closed_sender_refuses_to_send_and_closing_twice_is_harmless(closing):
    sender = ZmqSender(LOCAL, timeout=SHORT)
    sender.close()
    sender.close()
    with pytest.raises(
        NetworkingError, match=r"ZmqSender\('tcp://127.0.0.1:\d+', reliable\): sending a frame: it is closed"
    ):
        sender.send(np.zeros(1))


def test_importing_the_networking_modules_does_not_import_pyzmq():
    result = run_python(
        "import sys\n"
        "import concert.networking, concert.networking.base, concert.networking.zmq\n"
        "from concert.networking.base import ZmqSender, ZmqReceiver, ZmqBroadcaster\n"
        "from concert.networking import ZmqSender as again\n"
        "assert again is ZmqSender is concert.networking.zmq.ZmqSender\n"
        "print('zmq' in sys.modules)\n"
        "ZmqSender('tcp://127.0.0.1:*').close()\n"
        "print('zmq' in sys.modules, sys.modules['zmq'].__name__, hasattr(sys.modules['zmq'], 'PUSH'))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["False", "True zmq True"]


def test_unknown_names_are_still_attribute_errors():
    import concert.networking
    import concert.networking.base

    for module in (concert.networking, concert.networking.base):
        with pytest.raises(AttributeError, match="has no attribute 'ZmqSenderr'"):
            module.ZmqSenderr  # noqa: B018


def test_many_short_streams_in_a_row(pair):
    sender, receiver = pair()
    for length in itertools.chain(range(4), range(4)):
        sender(numbered(length, shape=(4,)))
        assert len(list(receiver)) == length
    assert receiver.lost == 0
