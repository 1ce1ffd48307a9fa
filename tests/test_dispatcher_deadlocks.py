"""Waits that only a delivery could end, made where no delivery can go on (issue 8, item 5).

They raise MessagingError at once instead of blocking the dispatcher until
their timeout; what cannot be detected honours its timeout, and a flush
without one warns.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from concert import config
from concert.dispatcher import Dispatcher
from concert.exceptions import MessagingError
from concert.futures import async_
from tests.conftest import TIMEOUT

# Waits inside handlers: short enough that the code before the fix fails fast, where
# they ran into their timeout instead of being refused.
INNER = 5


@pytest.fixture
def messages():
    return Dispatcher("deadlocks")


def run_handler(messages, body):
    """Deliver one message to a handler running ``body()``; return what it returned or raised."""
    sender, outcome = object(), []

    def handler(s):
        try:
            outcome.append(("returned", body()))
        except Exception as error:
            outcome.append(("raised", error))

    messages.subscribe(sender, "go", handler)
    begin = time.monotonic()
    messages.send(sender, "go")
    messages.flush(TIMEOUT)
    assert len(outcome) == 1
    return outcome[0], time.monotonic() - begin


def test_waiting_for_a_when_future_in_a_handler_is_refused(messages):
    """In either mode: in the delivery thread, or in a synchronous delivery (holding the lock)."""
    arrived = messages.when(object(), "never")
    (kind, error), took = run_handler(messages, lambda: arrived.result(INNER))
    assert kind == "raised" and isinstance(error, MessagingError), error
    assert "when(<object object" in str(error) and "in a handler would wait for ever" in str(error)
    assert took < INNER
    assert not arrived.done()
    arrived.cancel()


@pytest.mark.parametrize("how", ["result", "wait", "exception"])
def test_every_wait_on_a_when_future_in_a_handler_is_refused(messages, how):
    arrived = messages.when(object(), "never")
    (kind, error), _ = run_handler(messages, lambda: getattr(arrived, how)(INNER))
    assert kind == "raised" and isinstance(error, MessagingError)
    arrived.cancel()


def test_a_resolved_when_future_can_be_read_in_a_handler(messages):
    motor = object()
    arrived = messages.when(motor, "standby")
    messages.send(motor, "standby")
    messages.flush(TIMEOUT)
    (kind, value), _ = run_handler(messages, lambda: arrived.result(INNER))
    assert (kind, value) == ("returned", motor)


def test_waiting_for_a_when_future_elsewhere_still_works(messages, asynchronous):
    motor = object()
    arrived = messages.when(motor, "standby")
    threading.Thread(target=messages.send, args=(motor, "standby")).start()
    assert arrived.result(TIMEOUT) is motor


def test_flush_in_a_future_a_handler_waits_for_is_refused(messages, asynchronous):
    @async_
    def flushing():
        messages.flush(INNER)

    (kind, error), took = run_handler(messages, lambda: flushing().result(INNER))
    assert kind == "raised" and isinstance(error, MessagingError), error
    assert "flush() in test_flush_in_a_future_a_handler_waits_for_is_refused.<locals>.flushing()" in str(
        error
    ) and "would wait for ever" in str(error)
    assert "run_handler.<locals>.handler" in str(error)  # names the handler that waits
    assert took < INNER


def test_flush_in_a_future_a_handler_waits_for_through_others_is_refused(messages, asynchronous):
    @async_
    def inner():
        messages.flush(INNER)

    @async_
    def outer():
        return inner().result(INNER)

    (kind, error), took = run_handler(messages, lambda: outer().result(INNER))
    assert kind == "raised" and isinstance(error, MessagingError), error
    assert "<locals>.inner() would wait for ever" in str(error)
    assert took < INNER


def test_waiting_for_a_when_future_in_a_future_a_handler_waits_for_is_refused(messages, asynchronous):
    motor = object()

    @async_
    def move_and_wait():
        arrived = messages.when(motor, "standby")
        messages.send(motor, "standby")  # queued behind the handler waiting for us
        return arrived.result(INNER)

    (kind, error), took = run_handler(messages, lambda: move_and_wait().result(INNER))
    assert kind == "raised" and isinstance(error, MessagingError), error
    assert "waiting for when(<object object" in str(error) and "<locals>.move_and_wait() would wait" in str(
        error
    )
    assert took < INNER


def test_flush_refused_once_the_handler_begins_to_wait_for_it(messages, asynchronous):
    """The flush began before the handler waited for its future: the watch finds it later."""
    about_to_flush = threading.Event()

    @async_
    def flushing():
        about_to_flush.set()
        messages.flush(INNER)

    def body():
        future = flushing()
        assert about_to_flush.wait(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while not any(item[1] is not None and item[2] == 0 for item in list(messages._queue)):
            assert time.monotonic() < deadline  # until the flush's marker is queued: it waits
        return future.result(INNER)

    (kind, error), took = run_handler(messages, body)
    assert kind == "raised" and isinstance(error, MessagingError), error
    assert took < INNER


def test_flush_in_a_future_nobody_in_a_handler_waits_for_just_waits(messages, asynchronous):
    """A handler that only starts the work: the flush waits for that handler to return, and succeeds."""
    sender, done, release = object(), [], threading.Event()

    @async_
    def flushing():
        messages.flush(TIMEOUT)
        done.append("flushed")

    def starter(s):
        started.append(flushing())
        assert release.wait(TIMEOUT)  # still in the handler while the flush waits

    started = []
    messages.subscribe(sender, "go", starter)
    messages.send(sender, "go")
    deadline = time.monotonic() + TIMEOUT
    while not started:
        assert time.monotonic() < deadline
    release.set()
    started[0].result(TIMEOUT)
    assert done == ["flushed"]


class Signalling(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []
        self.arrived = threading.Event()

    def emit(self, record):
        self.records.append(record)
        self.arrived.set()


def test_flush_without_timeout_behind_a_blocked_handler_warns(messages, asynchronous, monkeypatch):
    """An undetectable wait (an Event) must not be a silent deadlock: the flush says what it waits for."""
    import concert.dispatcher

    monkeypatch.setattr(concert.dispatcher, "FLUSH_WARNING", 0.05)
    signalling = Signalling()
    logger = logging.getLogger("concert.dispatcher")
    logger.addHandler(signalling)
    try:
        sender, gate, flushed = object(), threading.Event(), threading.Event()

        def blocked(s):
            assert gate.wait(TIMEOUT)

        messages.subscribe(sender, "m", blocked)
        messages.send(sender, "m")

        def flush():
            messages.flush()  # no timeout
            flushed.set()

        flusher = threading.Thread(target=flush)
        flusher.start()
        assert signalling.arrived.wait(TIMEOUT), "no warning from a flush stuck behind a handler"
        text = signalling.records[0].getMessage()
        assert signalling.records[0].levelname == "WARNING"
        assert "flush() has waited 0.05 s and goes on waiting" in text and "blocked" in text
        assert not flushed.is_set()
        gate.set()
        flusher.join(TIMEOUT)
        assert flushed.is_set() and len(signalling.records) == 1
    finally:
        logger.removeHandler(signalling)


def test_flush_in_a_synchronous_handler_after_async_was_switched_on_delivers_here(messages, asynchronous):
    """The thread holding the delivery lock cannot wait for the delivery thread: it delivers itself."""
    sender, seen = object(), []
    messages.send(object(), "warm-up")  # start the delivery thread
    messages.flush(TIMEOUT)

    def switching(s):
        config.DISABLE_ASYNC = False
        messages.send(sender, "queued")  # queued: asynchronous again
        begin = time.monotonic()
        messages.flush(INNER)
        seen.append(("flushed", time.monotonic() - begin < INNER))

    messages.subscribe(sender, "switch", switching)
    messages.subscribe(sender, "queued", lambda s: seen.append("queued"))
    config.DISABLE_ASYNC = True
    messages.send(sender, "switch")  # delivered here, holding the lock
    assert seen == ["queued", ("flushed", True)]
