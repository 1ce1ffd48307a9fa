"""Nothing a handler, a sender or a message does can stop delivery (issue 8, item 3).

Handlers are told apart by identity, never by their ``__eq__``; every call
into user objects in the delivering thread is guarded; a message that cannot
be hashed is refused with MessagingError at subscribe/send.
"""

from __future__ import annotations

import threading

import pytest

from concert.dispatcher import ANY, Dispatcher
from concert.exceptions import MessagingError
from tests.conftest import TIMEOUT


@pytest.fixture
def messages():
    return Dispatcher("robust")


class Touchy:
    """A callable whose ``__eq__`` reads an attribute other objects lack, and whose ``__hash__`` raises."""

    def __init__(self, name, seen):
        self.name, self.seen = name, seen

    def __call__(self, sender):
        self.seen.append(self.name)

    def __eq__(self, other):
        return self.name == other.name  # AttributeError for anything but a Touchy

    def __hash__(self):
        raise ValueError("no hashing")


class RaisingEq(Touchy):
    def __eq__(self, other):
        raise RuntimeError("__eq__ must not be called")


@pytest.mark.parametrize("kind", [Touchy, RaisingEq], ids=["eq-reads-attribute", "eq-raises"])
def test_handlers_are_compared_by_identity_and_never_stop_delivery(messages, kind):
    sender, seen = object(), []
    first, second = kind("first", seen), kind("second", seen)
    messages.subscribe(sender, "m", first)
    messages.subscribe(sender, "m", seen.append)  # another kind of handler in the same entry
    messages.subscribe(sender, "m", second)
    messages.subscribe(sender, "m", first)  # the same object again: once
    # The same handler through a wildcard too: merging the groups must not compare them.
    messages.subscribe(ANY, "m", first)
    messages.subscribe(sender, ANY, second)
    messages.send(sender, "m")
    messages.flush(TIMEOUT)  # the delivery thread survived: no hang, no WaitError
    assert seen == ["first", sender, "second"]
    messages.unsubscribe(sender, "m", first)
    messages.unsubscribe(ANY, "m", first)
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert seen[3:] == [sender, "second"]


def test_delivery_thread_survives_merging_handlers_that_cannot_be_compared(messages, asynchronous):
    """The wildcard merge once compared handlers with ==, in the delivery thread, and killed it."""
    sender, seen = object(), []
    messages.subscribe(sender, "m", seen.append)
    messages.subscribe(ANY, "m", Touchy("touchy", seen))  # Touchy == builtin method: AttributeError
    messages.subscribe(sender, ANY, RaisingEq("raising", seen))
    for _ in range(3):
        messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert seen == [sender, "raising", "touchy"] * 3
    assert messages._thread.is_alive()


def test_bound_methods_of_an_object_with_a_raising_eq_are_one_handler(messages):
    class Watcher:
        def __init__(self):
            self.count = 0

        def __eq__(self, other):
            raise RuntimeError("__eq__ must not be called")

        __hash__ = None  # unhashable, as objects defining __eq__ are

        def on_change(self, sender):
            self.count += 1

    sender, watcher = object(), Watcher()
    messages.subscribe(sender, "m", watcher.on_change)
    messages.subscribe(sender, "m", watcher.on_change)  # another bound-method object: the same handler
    messages.subscribe(ANY, "m", watcher.on_change)
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert watcher.count == 1
    messages.unsubscribe(sender, "m", watcher.on_change)
    messages.unsubscribe(ANY, "m", watcher.on_change)
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert watcher.count == 1 and messages._table == {}


def test_senders_are_never_hashed_or_compared(messages):
    class Sender:
        def __eq__(self, other):
            raise RuntimeError("__eq__ must not be called")

        def __hash__(self):
            raise ValueError("__hash__ must not be called")

    sender, seen = Sender(), []
    messages.subscribe(sender, "m", seen.append)
    messages.subscribe(ANY, "m", seen.append)
    messages.send(sender, "m")
    messages.send(Sender(), "m")
    messages.flush(TIMEOUT)
    assert seen[0] is sender and len(seen) == 2


class BadHash:
    def __hash__(self):
        raise ValueError("cannot hash me")

    def __repr__(self):
        return "<BadHash>"


def test_message_whose_hash_raises_is_refused_with_messaging_error(messages):
    sender, seen = object(), []
    messages.subscribe(sender, "ok", seen.append)
    with pytest.raises(
        MessagingError, match=r"<BadHash> cannot be used: .*__hash__ raised ValueError\('cannot hash me'\)"
    ):
        messages.send(sender, BadHash())
    with pytest.raises(MessagingError, match=r"BadHash.*ValueError"):
        messages.subscribe(sender, BadHash(), print)
    with pytest.raises(MessagingError, match=r"BadHash.*ValueError"):
        messages.unsubscribe(sender, BadHash(), print)
    with pytest.raises(MessagingError, match=r"BadHash.*ValueError"):
        messages.when(sender, BadHash())
    messages.send(sender, "ok")  # the dispatcher keeps working
    messages.flush(TIMEOUT)
    assert seen == [sender]


class CollidingMessage:
    """Hashes like the string 'm' and compares attributes strings lack."""

    def __init__(self, name):
        self.name = name

    def __hash__(self):
        return hash("m")

    def __eq__(self, other):
        return self.name == other.name

    def __repr__(self):
        return f"CollidingMessage({self.name!r})"


def test_message_whose_eq_raises_in_a_look_up_is_logged_and_delivery_goes_on(messages, log_of):
    records = log_of("concert.dispatcher").records
    sender, seen = object(), []
    messages.subscribe(sender, "m", seen.append)
    messages.subscribe(ANY, ANY, lambda s: seen.append("any"))
    # Subscribing it compares it with 'm' (same hash): refused, and nothing changed.
    with pytest.raises(
        MessagingError, match=r"CollidingMessage\('x'\) cannot be used: comparing it .*AttributeError"
    ):
        messages.subscribe(sender, CollidingMessage("x"), print)
    messages.send(sender, CollidingMessage("x"))  # its look-up raises in the delivering thread
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert seen == ["any", sender, "any"]  # (ANY, ANY) still got it; delivery went on
    assert [r.levelname for r in records] == ["ERROR"]
    assert "CollidingMessage('x')" in records[0].getMessage() and "AttributeError" in records[0].getMessage()


def test_message_whose_hash_fails_only_at_delivery_is_logged_and_skipped(messages, asynchronous, log_of):
    records = log_of("concert.dispatcher").records

    class Flaky:
        armed = False

        def __hash__(self):
            if Flaky.armed:
                raise ValueError("not any more")
            return 1

    sender, seen, gate = object(), [], threading.Event()
    messages.subscribe(sender, "hold", lambda s: gate.wait(TIMEOUT))
    messages.subscribe(sender, "m", seen.append)
    messages.send(sender, "hold")
    messages.send(sender, Flaky())  # hashable now, queued behind "hold"
    messages.send(sender, "m")
    Flaky.armed = True
    gate.set()
    messages.flush(TIMEOUT)
    assert seen == [sender]
    assert (
        len(records) == 1 and "was not delivered: its __hash__ raised ValueError" in records[0].getMessage()
    )


def test_handler_whose_repr_raises_is_logged_and_delivery_goes_on(messages, log_of):
    records = log_of("concert.dispatcher").records

    class Broken:
        def __call__(self, sender):
            raise KeyError("handler failed")

        def __repr__(self):
            raise RuntimeError("no repr either")

    sender, seen = object(), []
    messages.subscribe(sender, "m", Broken())
    messages.subscribe(sender, "m", seen.append)
    messages.send(sender, "m")
    messages.send(sender, "m")
    messages.flush(TIMEOUT)
    assert seen == [sender, sender]
    assert len(records) == 2 and "<Broken object, repr() failed>" in records[0].getMessage()
    assert records[0].exc_info[0] is KeyError
