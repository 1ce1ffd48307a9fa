"""Dispatcher semantics: identity, order, isolation, wildcards, flush, when."""

from __future__ import annotations

import threading
import time

import pytest

from concert import config
from concert.dispatcher import ANY, Dispatcher, dispatcher
from concert.exceptions import MessagingError, WaitError
from tests.conftest import TIMEOUT


@pytest.fixture
def messages():
    return Dispatcher("test")


def test_handler_receives_the_sender(messages):
    sender = object()
    seen = []
    messages.subscribe(sender, "changed", seen.append)
    messages.send(sender, "changed")
    messages.flush(TIMEOUT)
    assert seen == [sender]


def test_senders_are_compared_by_identity_even_unhashable(messages):
    first, equal_twin = {"name": "motor"}, {"name": "motor"}
    seen = []
    messages.subscribe(first, "standby", lambda s: seen.append(("first", s is first)))
    messages.send(equal_twin, "standby")  # equal, but another object
    messages.send(first, "moving")  # other message
    messages.send(first, "standby")
    messages.flush(TIMEOUT)
    assert seen == [("first", True)]


def test_delivery_order_and_thread(messages, asynchronous):
    sender = object()
    seen = []
    threads = set()

    def handler(s):
        seen.append(len(seen))
        threads.add(threading.current_thread().name)

    messages.subscribe(sender, "tick", handler)
    for _ in range(1000):
        messages.send(sender, "tick")
    messages.flush(TIMEOUT)
    assert seen == list(range(1000))
    assert threads == {"concert-test"}


def test_send_never_blocks_on_handlers(messages, asynchronous):
    sender = object()
    gate = threading.Event()
    count = []

    def slow(s):
        assert gate.wait(TIMEOUT)
        count.append(1)

    messages.subscribe(sender, "m", slow)
    sent = threading.Event()

    def send_many():
        for _ in range(10_000):
            messages.send(sender, "m")
        sent.set()

    threading.Thread(target=send_many).start()
    assert sent.wait(TIMEOUT), "send() blocked on a handler"
    gate.set()
    messages.flush(TIMEOUT)
    assert len(count) == 10_000


def test_raising_handler_is_logged_and_isolated(messages, log_of):
    records = log_of("concert.dispatcher").records
    sender = object()
    seen = []

    def broken(s):
        raise RuntimeError("handler failed")

    messages.subscribe(sender, "m", broken)
    messages.subscribe(sender, "m", seen.append)
    messages.send(sender, "m")
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert seen == [sender, sender]
    assert len(records) == 2
    assert records[0].exc_info[0] is RuntimeError
    assert "broken" in records[0].getMessage() and "'m'" in records[0].getMessage()


def test_handler_raising_system_exit_does_not_stop_delivery(messages, asynchronous, log_of):
    records = log_of("concert.dispatcher").records
    sender = object()
    seen = []
    messages.subscribe(sender, "quit", lambda s: (_ for _ in ()).throw(SystemExit(3)))
    messages.subscribe(sender, "after", seen.append)
    messages.send(sender, "quit")
    messages.send(sender, "after")
    messages.flush(TIMEOUT)
    assert seen == [sender] and records[0].exc_info[0] is SystemExit


def test_wildcards(messages):
    motor, camera = object(), object()
    log = []
    messages.subscribe(ANY, "standby", lambda s: log.append(("any sender", s)))
    messages.subscribe(motor, ANY, lambda s: log.append(("any message", s)))
    messages.subscribe(ANY, ANY, lambda s: log.append(("everything", s)))
    messages.send(motor, "standby")
    messages.send(camera, "recording")
    messages.flush(TIMEOUT)
    assert log == [
        ("any message", motor),
        ("any sender", motor),
        ("everything", motor),
        ("everything", camera),
    ]
    assert repr(ANY) == "ANY"


def test_handler_matching_several_subscriptions_is_called_once(messages):
    sender = object()
    calls = []
    messages.subscribe(sender, "m", calls.append)
    messages.subscribe(sender, ANY, calls.append)
    messages.subscribe(ANY, "m", calls.append)
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert calls == [sender]


def test_subscribe_twice_and_unsubscribe(messages):
    class Watcher:
        def __init__(self):
            self.count = 0

        def on_change(self, sender):
            self.count += 1

    sender, watcher = object(), Watcher()
    messages.subscribe(sender, "m", watcher.on_change)
    messages.subscribe(sender, "m", watcher.on_change)  # equal bound method: once
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    messages.unsubscribe(sender, "m", watcher.on_change)  # another bound-method object
    messages.unsubscribe(sender, "m", watcher.on_change)  # not subscribed: no-op
    messages.unsubscribe(object(), "x", print)  # never subscribed: no-op
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert watcher.count == 1


def test_subscribe_and_unsubscribe_from_inside_handlers(messages):
    sender = object()
    log = []

    def late(s):
        log.append("late")

    def once(s):
        log.append("once")
        messages.unsubscribe(sender, "m", once)
        messages.subscribe(sender, "m", late)

    messages.subscribe(sender, "m", once)
    for _ in range(3):
        messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert log == ["once", "late", "late"]


def test_bad_arguments_are_refused(messages):
    sender = {"device": "motor"}
    with pytest.raises(MessagingError, match=r"42.*'changed'.*motor.*not callable"):
        messages.subscribe(sender, "changed", 42)
    with pytest.raises(MessagingError, match=r"\['un', 'hashable'\].*hashable"):
        messages.subscribe(sender, ["un", "hashable"], print)
    with pytest.raises(MessagingError, match="hashable"):
        messages.send(sender, {"not": "hashable"})
    assert isinstance(MessagingError("x"), TypeError)


def test_flush_from_a_handler_is_refused(messages, asynchronous):
    sender = object()
    errors = []

    def handler(s):
        try:
            messages.flush(TIMEOUT)
        except MessagingError as error:
            errors.append(error)

    messages.subscribe(sender, "m", handler)
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert len(errors) == 1 and "would wait for itself" in str(errors[0])


def test_flush_timeout(messages, asynchronous):
    sender = object()
    gate = threading.Event()
    messages.subscribe(sender, "m", lambda s: gate.wait(TIMEOUT))
    messages.send(sender, "m")
    with pytest.raises(WaitError, match=r"not all delivered within 0\.05 s"):
        messages.flush(0.05)
    gate.set()
    messages.flush(TIMEOUT)


def test_when_resolves_with_the_sender(messages):
    motor = object()
    arrived = messages.when(motor, "standby")
    anyone = messages.when(ANY, "standby")
    assert not arrived.done()
    messages.send(motor, "moving")
    messages.send(motor, "standby")
    assert arrived.result(TIMEOUT) is motor
    assert anyone.result(TIMEOUT) is motor
    messages.flush(TIMEOUT)
    assert messages._table == {}  # one-shot subscriptions removed themselves


def test_cancelled_when_unsubscribes(messages):
    motor = object()
    arrived = messages.when(motor, "standby")
    assert arrived.cancel()
    messages.send(motor, "standby")
    messages.flush(TIMEOUT)
    assert arrived.cancelled() and messages._table == {}


def test_global_dispatcher_is_a_dispatcher():
    assert isinstance(dispatcher, Dispatcher)
    sender = object()
    seen = []
    dispatcher.subscribe(sender, "hello", seen.append)
    try:
        dispatcher.send(sender, "hello")
        dispatcher.flush(TIMEOUT)
    finally:
        dispatcher.unsubscribe(sender, "hello", seen.append)
    assert seen == [sender]


def test_flush_inside_a_synchronous_handler_delivers_what_is_queued(asynchronous):
    messages = Dispatcher("sync-flush")
    sender = object()
    gate = threading.Event()
    order = []

    def first(s):
        order.append("first")
        assert gate.wait(TIMEOUT)

    def later(s):
        order.append("later")

    def flushing(s):
        order.append("flushing")
        messages.flush(TIMEOUT)  # must neither hang nor raise under DISABLE

    messages.subscribe(sender, "a", first)
    messages.subscribe(sender, "b", later)
    messages.subscribe(sender, "c", flushing)
    messages.send(sender, "a")  # occupies the delivery thread
    messages.send(sender, "b")  # queued behind it
    config.DISABLE_ASYNC = True
    sync = threading.Thread(target=messages.send, args=(sender, "c"))
    sync.start()
    gate.set()
    sync.join(TIMEOUT)
    assert not sync.is_alive()
    assert order == ["first", "later", "flushing"]
    assert messages.queued() == 0


def test_when_ignores_messages_sent_before_it(messages, asynchronous):
    motor, gate = object(), threading.Event()
    messages.subscribe("blocker", "slow", lambda s: gate.wait(TIMEOUT))
    messages.send("blocker", "slow")  # holds the delivery thread
    messages.send(motor, "standby")  # sent before when(), still queued
    arrived = messages.when(motor, "standby")
    gate.set()
    messages.flush(TIMEOUT)
    assert not arrived.done()
    messages.send(motor, "standby")
    assert arrived.result(TIMEOUT) is motor


def test_flush_timeout_is_honoured_under_disable_behind_a_busy_delivery(messages, asynchronous):
    sender, started, gate = object(), threading.Event(), threading.Event()

    def blocked(s):
        started.set()
        assert gate.wait(TIMEOUT)

    messages.subscribe(sender, "m", blocked)
    messages.send(sender, "m")  # runs in the delivery thread
    assert started.wait(TIMEOUT)
    messages.send(sender, "m")  # queued behind it
    config.DISABLE_ASYNC = True
    begin = time.monotonic()
    with pytest.raises(WaitError, match=r"not all delivered within 0\.05 s.*handler <function .*blocked"):
        messages.flush(0.05)
    assert time.monotonic() - begin < TIMEOUT / 2
    assert messages.queued() == 1  # a timeout loses nothing
    gate.set()
    messages.flush(TIMEOUT)
    assert messages.queued() == 0


def test_synchronous_send_waits_at_most_sync_timeout_then_queues_in_order(asynchronous, log_of):
    records = log_of("concert.dispatcher").records
    messages = Dispatcher("sync-timeout", sync_timeout=0.05)
    sender, started, gate = object(), threading.Event(), threading.Event()
    order = []

    def blocked(s):
        started.set()
        assert gate.wait(TIMEOUT)
        order.append(("a", threading.current_thread().name))

    def recorder(name):
        return lambda s: order.append((name, threading.current_thread().name))

    messages.subscribe(sender, "a", blocked)
    for name in "bcd":
        messages.subscribe(sender, name, recorder(name))
    messages.send(sender, "a")
    assert started.wait(TIMEOUT)
    config.DISABLE_ASYNC = True
    begin = time.monotonic()
    messages.send(sender, "b")  # waits 0.05 s, then queues
    messages.send(sender, "c")  # the same delivery is still stuck: queues at once
    assert time.monotonic() - begin < TIMEOUT / 2
    assert order == [] and messages.queued() == 2
    assert [r.levelname for r in records] == ["WARNING", "WARNING"]
    assert all("could not be delivered synchronously" in r.getMessage() for r in records)
    assert "'b'" in records[0].getMessage() and "blocked" in records[0].getMessage()
    gate.set()
    messages.flush(TIMEOUT)
    messages.send(sender, "d")  # the delivery moved on: synchronous again
    assert order == [
        ("a", "concert-sync-timeout"),
        ("b", "concert-sync-timeout"),
        ("c", "concert-sync-timeout"),
        ("d", threading.current_thread().name),
    ]
    assert len(records) == 2


def test_sync_timeout_takes_seconds_or_a_time_quantity():
    from concert.exceptions import UnitError
    from concert.quantities import q

    assert Dispatcher("x").sync_timeout == 10
    assert Dispatcher("x", sync_timeout=None).sync_timeout is None
    assert Dispatcher("x", sync_timeout=250 * q.ms).sync_timeout == pytest.approx(0.25)
    with pytest.raises(UnitError, match="sync_timeout"):
        Dispatcher("x", sync_timeout=3 * q.mm)


def test_flush_waits_for_a_handler_that_sends_synchronously(messages, asynchronous):
    """A nested synchronous delivery must not release a flush before the outer handler returns."""
    sender, started, gate, flushed = object(), threading.Event(), threading.Event(), threading.Event()
    seen = []

    def outer(s):
        started.set()
        assert gate.wait(TIMEOUT)
        messages.send(s, "nested")  # DISABLE is on by now: delivered here, after the queue
        seen.append(("flush returned early", flushed.wait(0.2)))

    messages.subscribe(sender, "outer", outer)
    messages.subscribe(sender, "nested", lambda s: seen.append("nested"))
    messages.send(sender, "outer")
    assert started.wait(TIMEOUT)

    def flush():
        messages.flush(TIMEOUT)
        flushed.set()

    flusher = threading.Thread(target=flush)
    flusher.start()
    deadline = time.monotonic() + TIMEOUT
    while not messages._queue:  # until the flusher's marker is queued
        assert time.monotonic() < deadline
    config.DISABLE_ASYNC = True
    gate.set()
    flusher.join(TIMEOUT)
    assert flushed.is_set()
    assert seen == ["nested", ("flush returned early", False)]


def test_keyboard_interrupt_from_a_synchronous_handler_leaves_the_dispatcher_usable(messages, asynchronous):
    sender, seen = object(), []

    def interrupted(s):
        raise KeyboardInterrupt

    messages.subscribe(sender, "ctrl-c", interrupted)
    messages.subscribe(sender, "after", seen.append)
    config.DISABLE_ASYNC = True
    with pytest.raises(KeyboardInterrupt):
        messages.send(sender, "ctrl-c")  # Ctrl-C in a synchronous send belongs to the caller
    assert not messages._delivery_lock._is_owned() and messages._depth == 0
    other = threading.Thread(target=messages.send, args=(sender, "after"))
    other.start()  # another thread can take over delivery at once
    other.join(TIMEOUT)
    assert seen == [sender]


def test_with_message_handler_gets_sender_and_message(messages):
    motor, camera = object(), object()
    both, only_sender = [], []
    messages.subscribe(ANY, ANY, lambda sender, message: both.append((sender, message)), with_message=True)
    messages.subscribe(motor, ANY, only_sender.append)  # the classic form still works alongside
    messages.send(motor, "moving")
    messages.send(camera, "recording")
    messages.send(motor, "standby")
    messages.flush(TIMEOUT)
    assert both == [(motor, "moving"), (camera, "recording"), (motor, "standby")]
    assert only_sender == [motor, motor]


def test_with_message_is_part_of_the_subscription(messages):
    sender, seen = object(), []

    def handler(s, message=None):
        seen.append(message)

    messages.subscribe(sender, "m", handler, with_message=True)
    messages.subscribe(sender, "m", handler, with_message=True)  # again: nothing changes
    with pytest.raises(MessagingError, match=r"already subscribed .*with_message=True"):
        messages.subscribe(sender, "m", handler)
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    messages.unsubscribe(sender, "m", handler)  # whatever the calling convention
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert seen == ["m"] and messages._table == {}
    messages.subscribe(sender, "m", handler)  # now without the message
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert seen == ["m", None]


@pytest.mark.parametrize("mode", ["asynchronous", "synchronous"])
def test_a_long_chain_of_handlers_sending_from_handlers_loses_nothing(mode, request):
    request.getfixturevalue(mode)
    dispatcher = Dispatcher()
    sender, received = object(), []

    def relay(source, number):
        received.append(number)
        if number < 2000:  # far deeper than the interpreter's recursion limit allows nesting
            dispatcher.send(sender, number + 1)

    dispatcher.subscribe(sender, ANY, relay, with_message=True)
    dispatcher.send(sender, 0)
    dispatcher.flush(TIMEOUT)
    assert received == list(range(2001))


# -- messages nobody is subscribed to (delivered to nobody at once, never queued) -----------------


def test_a_message_nobody_listens_to_is_not_queued_and_not_delivered_later(messages, asynchronous):
    motor, seen = object(), []
    messages.send(motor, "changed")  # nobody listens: delivered to nobody, now
    assert messages.queued() == 0
    messages.subscribe(motor, "changed", seen.append)
    messages.flush(TIMEOUT)
    assert seen == []  # a handler gets only what is sent after it subscribed
    messages.send(motor, "changed")
    messages.flush(TIMEOUT)
    assert seen == [motor]


def test_messages_to_nobody_do_not_disturb_the_order_of_the_others(messages, asynchronous):
    listened, quiet = object(), object()
    received = []
    messages.subscribe(listened, "n", lambda s: received.append(len(received)))
    for number in range(1000):
        messages.send(quiet, str(number))  # nobody listens
        messages.send(listened, "n")
    messages.flush(TIMEOUT)
    assert received == list(range(1000))
    assert messages.queued() == 0


def test_a_wildcard_subscriber_gets_every_message(messages, asynchronous):
    from concert.dispatcher import ANY

    quiet, seen = object(), []
    messages.subscribe(quiet, ANY, lambda s, m: seen.append(m), with_message=True)
    messages.send(quiet, "changed")
    messages.flush(TIMEOUT)
    assert seen == ["changed"]
