"""Shutters: the open/closed state machine, messages, errors, real-time moves and exclusive access."""

from __future__ import annotations

import contextvars
import time

import pytest

from concert.devices.shutters.dummy import Shutter
from concert.dispatcher import dispatcher
from concert.exceptions import StateError, UnitError, WaitError
from concert.quantities import q
from tests.conftest import TIMEOUT
from tests.devices.test_families import recording


class CountingShutter(Shutter):
    """Counts hardware moves; fails them while ``broken`` is set. Closed at first (the dummy starts open)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.moves = []
        self.broken = False
        self.close().join(TIMEOUT)
        self.moves.clear()

    def _open_real(self) -> None:
        self.moves.append("open")
        if self.broken:
            raise RuntimeError("blade stuck")
        super()._open_real()

    def _close_real(self) -> None:
        self.moves.append("close")
        if self.broken:
            raise RuntimeError("blade stuck")
        super()._close_real()


def closed_shutter(**kwargs) -> Shutter:
    shutter = Shutter(**kwargs)
    shutter.close().join(TIMEOUT)
    dispatcher.flush(TIMEOUT)  # its 'closed' message is not one of the test's
    return shutter


def test_starts_open_as_the_legacy_dummy_did_and_closes_and_opens():
    shutter = Shutter()
    assert shutter.state == "open"
    with pytest.raises(StateError, match=r"open\(\) is not allowed in state 'open' \(only in 'closed'\)"):
        shutter.open().join(TIMEOUT)
    shutter.close().join(TIMEOUT)
    assert shutter.state == "closed"
    shutter.open().join(TIMEOUT)
    assert shutter.state == "open"


def test_the_base_class_still_starts_closed():
    from concert.devices.shutters.base import Shutter as ShutterBase

    assert ShutterBase().state == "closed"


@pytest.mark.parametrize("method, state", [("open", "open"), ("close", "closed"), ("reset", "closed")])
def test_wrong_state_raises_before_the_hardware_moves(method, state):
    shutter = CountingShutter()
    if state == "open":
        shutter.open().join(TIMEOUT)
        shutter.moves.clear()
    with pytest.raises(StateError) as info:
        getattr(shutter, method)().join(TIMEOUT)
    message = str(info.value)
    assert repr(shutter) in message and method in message and repr(state) in message
    assert info.value.error_state == state
    assert shutter.moves == [] and shutter.state == state


def test_state_changes_are_announced():
    shutter = closed_shutter()
    opened = dispatcher.when(shutter, "open")
    shutter.open()
    assert opened.result(TIMEOUT) is shutter
    closed = dispatcher.when(shutter, "closed")
    shutter.close()
    assert closed.result(TIMEOUT) is shutter


def test_every_change_is_announced_once_and_in_order():
    shutter = closed_shutter()
    with recording(shutter, ("open", "closed", "error")) as received:
        shutter.open().join(TIMEOUT)
        shutter.close().join(TIMEOUT)
        shutter.open().join(TIMEOUT)
        shutter.close().join(TIMEOUT)
        dispatcher.flush(TIMEOUT)
    assert received == ["open", "closed"] * 2


def test_failure_puts_it_into_error_and_reset_closes_it():
    shutter = CountingShutter()
    shutter.broken = True
    failed = dispatcher.when(shutter, "error")
    with pytest.raises(RuntimeError, match="blade stuck"):
        shutter.open().join(TIMEOUT)
    assert failed.result(TIMEOUT) is shutter
    assert shutter.state == "error"
    assert "blade stuck" in shutter["state"].error
    for method in ("open", "close"):
        with pytest.raises(StateError):
            getattr(shutter, method)().join(TIMEOUT)
    with pytest.raises(RuntimeError):  # still broken: reset fails and keeps the error
        shutter.reset().join(TIMEOUT)
    assert shutter.state == "error"
    shutter.broken = False
    shutter.moves.clear()
    shutter.reset().join(TIMEOUT)
    assert shutter.state == "closed" and shutter.moves == ["close"]
    assert shutter["state"].error is None


def test_move_time_must_be_a_time():
    with pytest.raises(UnitError, match="move_time"):
        Shutter(move_time=1 * q.mm)


def test_moves_take_the_move_time(asynchronous):
    shutter = closed_shutter(move_time=0.2 * q.s)
    begin = time.monotonic()
    future = shutter.open()
    future.join(TIMEOUT)
    assert time.monotonic() - begin >= 0.19
    assert shutter.state == "open"


def test_concurrent_opens_take_turns_and_the_second_is_refused(asynchronous):
    shutter = CountingShutter(move_time=0.2 * q.s)
    futures = [shutter.open() for _ in range(5)]
    errors = [future.exception(TIMEOUT) for future in futures]
    assert sum(error is None for error in errors) == 1
    assert all(isinstance(error, StateError) for error in errors if error is not None)
    assert shutter.moves == ["open"] and shutter.state == "open"


def test_another_owner_waits_for_the_with_block(asynchronous):
    shutter = closed_shutter()
    with shutter:
        stranger = contextvars.Context().run(shutter.open)  # issued by nobody inside the block
        with pytest.raises(WaitError):
            stranger.wait(0.2)
        assert shutter.state == "closed"
        shutter.open().join(TIMEOUT)  # the block's own work proceeds
        shutter.close().join(TIMEOUT)
    stranger.join(TIMEOUT)
    assert shutter.state == "open"
