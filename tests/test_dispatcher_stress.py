"""The Dispatcher under load and under races: nothing lost, order kept per sender."""

from __future__ import annotations

import sys
import threading

import pytest

from concert.dispatcher import ANY, Dispatcher
from tests.conftest import TIMEOUT


class Message:
    """A sender that carries which thread sent it and its sequence number."""

    __slots__ = ("seq", "thread")

    def __init__(self, thread: int, seq: int) -> None:
        self.thread = thread
        self.seq = seq


@pytest.fixture
def fast_switching():
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def test_million_messages_four_senders_three_subscribers(asynchronous, log_of):
    records = log_of("concert.dispatcher").records
    messages = Dispatcher("stress")
    senders, per_sender = 4, 250_000
    received = [[[] for _ in range(senders)] for _ in range(3)]

    def recorder(index):
        lists = received[index]

        def record(message):
            lists[message.thread].append(message.seq)

        return record

    calls = [0]
    record_raising = recorder(2)

    def raising(message):
        record_raising(message)
        calls[0] += 1
        if calls[0] % 100 == 0:
            raise ValueError("every hundredth call fails")

    messages.subscribe(ANY, "frame", recorder(0))
    messages.subscribe(ANY, "frame", recorder(1))
    messages.subscribe(ANY, "frame", raising)

    def produce(thread):
        send = messages.send
        for seq in range(per_sender):
            send(Message(thread, seq), "frame")

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 4)
        assert not thread.is_alive()
    messages.flush(TIMEOUT * 4)

    expected = list(range(per_sender))
    for index in range(3):
        for thread in range(senders):
            assert received[index][thread] == expected, f"subscriber {index}, sender {thread}"
    assert calls[0] == senders * per_sender
    assert len(records) == senders * per_sender // 100
    assert all(r.exc_info[0] is ValueError for r in records[:10])


def test_subscription_churn_during_sends(asynchronous, fast_switching):
    """Handlers come and go from other threads; a steady subscriber still gets everything."""
    messages = Dispatcher("churn")
    sender = object()
    steady = []
    messages.subscribe(sender, "m", steady.append)
    stop = threading.Event()

    def churn():
        handlers = [(lambda s, i=i: None) for i in range(20)]
        while not stop.is_set():
            for handler in handlers:
                messages.subscribe(sender, "m", handler)
                messages.subscribe(ANY, "m", handler)
            for handler in handlers:
                messages.unsubscribe(sender, "m", handler)
                messages.unsubscribe(ANY, "m", handler)

    churners = [threading.Thread(target=churn) for _ in range(3)]
    for thread in churners:
        thread.start()
    try:
        for _ in range(20_000):
            messages.send(sender, "m")
    finally:
        stop.set()
        for thread in churners:
            thread.join(TIMEOUT)
    messages.flush(TIMEOUT)
    assert len(steady) == 20_000
    messages.unsubscribe(sender, "m", steady.append)
    assert messages._table == {} and messages._wildcard_entries == 0


def test_concurrent_flushes_and_sends(asynchronous, fast_switching):
    messages = Dispatcher("flushes")
    counts = {}
    lock = threading.Lock()

    def count(sender):
        with lock:
            counts[sender] = counts.get(sender, 0) + 1

    messages.subscribe(ANY, "m", count)
    errors = []

    def work(tag):
        try:
            for i in range(2_000):
                messages.send(tag, "m")
                if i % 100 == 0:
                    expected = i + 1
                    messages.flush(TIMEOUT)
                    with lock:  # everything this thread sent before flush() is delivered
                        assert counts.get(tag, 0) >= expected
        except Exception as error:  # reported below, with the thread's tag
            errors.append((tag, error))

    tags = [f"sender-{i}" for i in range(8)]
    threads = [threading.Thread(target=work, args=(tag,)) for tag in tags]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert errors == []
    messages.flush(TIMEOUT)
    assert counts == {tag: 2_000 for tag in tags}


def test_identity_keyed_churn_with_bound_methods_and_with_message(asynchronous, fast_switching):
    """Fresh bound-method objects of watchers whose __eq__ raises come and go; nothing is lost."""

    class Watcher:
        def __eq__(self, other):
            raise RuntimeError("handlers must never be compared with ==")

        __hash__ = None

        def on_message(self, sender, message):
            pass

    messages = Dispatcher("identity-churn")
    sender = object()
    steady = []
    messages.subscribe(ANY, ANY, lambda s, m: steady.append(m), with_message=True)
    stop = threading.Event()
    errors = []

    def churn():
        watchers = [Watcher() for _ in range(10)]
        try:
            while not stop.is_set():
                for watcher in watchers:  # each attribute access is a new bound-method object
                    messages.subscribe(sender, "m", watcher.on_message, with_message=True)
                    messages.subscribe(ANY, "m", watcher.on_message, with_message=True)
                for watcher in watchers:
                    messages.unsubscribe(sender, "m", watcher.on_message)
                    messages.unsubscribe(ANY, "m", watcher.on_message)
        except Exception as error:  # reported below
            errors.append(error)

    churners = [threading.Thread(target=churn) for _ in range(3)]
    for thread in churners:
        thread.start()
    try:
        for number in range(20_000):
            messages.send(sender, number)
            messages.send(sender, "m")
    finally:
        stop.set()
        for thread in churners:
            thread.join(TIMEOUT)
    messages.flush(TIMEOUT)
    assert errors == []
    expected = []
    for number in range(20_000):
        expected += [number, "m"]
    assert steady == expected
    assert len(messages._table) == 1  # only the steady subscription is left
