"""Exclusive access (seeds 000-002): ownership follows work, others wait, deadlocks raise."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest

from concert import config
from concert.base import LockError, Quantity
from concert.devices.base import Device
from concert.futures import async_, resolve
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT


class Simple(Device):
    """A device with two plain quantities and a record of writes."""

    position = Quantity(q.mm)
    foo = Quantity(q.s)

    def __init__(self) -> None:
        self.writes: list = []
        self._position, self._foo = 0 * q.mm, 0 * q.s
        super().__init__()

    def _get_position(self):
        return self._position

    def _set_position(self, value):
        self.writes.append(("position", value, threading.current_thread().name))
        self._position = value

    def _get_foo(self):
        return self._foo

    def _set_foo(self, value):
        self.writes.append(("foo", value, threading.current_thread().name))
        self._foo = value


@pytest.fixture
def motor():
    return Simple()


@pytest.fixture
def pump():
    return Simple()


def in_thread(function, *args):
    """Start ``function`` in a thread; return (thread, outcome) where outcome fills when it ends."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(*args)
        except BaseException as error:  # handed to the test through `outcome`
            outcome["error"] = error
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_seed_example_with_device_and_parameter(motor, pump):
    with motor, pump["foo"]:
        motor.position = 2 * q.mm
        pump.foo = 1 * q.s
    assert motor.position == 2 * q.mm and pump.foo == 1 * q.s


def test_reentrant(motor):
    with motor:
        with motor:
            motor.position = 1 * q.mm
        motor.position = 2 * q.mm
    assert motor._exclusive.holder is None


def test_futures_issued_inside_the_block_proceed(motor, pump):
    with motor, pump["position"]:
        futures = [motor.set_position(i * q.mm) for i in range(5)]
        futures.append(pump["position"].set(3 * q.mm))
        resolve(futures, TIMEOUT)

        @async_
        def nested():
            motor.foo = 4 * q.s  # a decorated call inside the block acts as its owner
            return motor.set_position(9 * q.mm).join(TIMEOUT)

        nested().join(TIMEOUT)
    assert motor.position == 9 * q.mm and motor.foo == 4 * q.s and pump.position == 3 * q.mm


def test_others_wait_until_the_block_ends_and_reads_never_wait(motor):
    with motor:
        motor.position = 1 * q.mm
        writer, written = in_thread(setattr, motor, "position", 5 * q.mm)
        busy_wait(lambda: motor._exclusive.waiters() == 1, sleep_time=0.001, timeout=TIMEOUT)
        reader, read = in_thread(getattr, motor, "position")
        reader.join(TIMEOUT)
        assert read["result"] == 1 * q.mm  # the read went through while the block holds the device
        assert not written and motor.position == 1 * q.mm  # the write is still waiting
        block_end = time.monotonic()
    writer.join(TIMEOUT)
    assert "error" not in written and written["at"] >= block_end
    assert motor.position == 5 * q.mm


def test_parameter_block_holds_only_that_parameter(motor):
    with motor["position"]:
        other, done = in_thread(setattr, motor, "foo", 2 * q.s)
        other.join(TIMEOUT)
        assert "error" not in done and motor.foo == 2 * q.s
        blocked, waited = in_thread(setattr, motor, "position", 2 * q.mm)
        busy_wait(lambda: motor["position"]._lock.waiters() == 1, sleep_time=0.001, timeout=TIMEOUT)
        assert not waited
    blocked.join(TIMEOUT)
    assert motor.position == 2 * q.mm


def test_block_waits_for_running_operations(motor, asynchronous):
    release, started = threading.Event(), threading.Event()

    class Slow(Simple):
        def _set_position(self, value):
            started.set()
            assert release.wait(TIMEOUT)
            super()._set_position(value)

    slow = Slow()
    write = slow.set_position(1 * q.mm)
    assert started.wait(TIMEOUT)
    entered, leave = threading.Event(), threading.Event()

    def hold():
        with slow:
            entered.set()
            assert leave.wait(TIMEOUT)

    holder, outcome = in_thread(hold)
    busy_wait(lambda: slow._exclusive.waiters() == 1, sleep_time=0.001, timeout=TIMEOUT)
    assert not entered.is_set()  # exclusive access waits for the running write to finish
    release.set()
    write.join(TIMEOUT)
    assert entered.wait(TIMEOUT) and slow._exclusive.holder is not None
    leave.set()  # the block ends: nothing stays held for the tests after this one
    holder.join(TIMEOUT)
    assert not holder.is_alive() and "error" not in outcome and slow._exclusive.holder is None


def test_opposite_order_raises_lock_error_instead_of_hanging(motor, pump):
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    outcomes = {}

    def lock_both(first, second, tag):
        try:
            with first:
                barrier.wait()
                with second:
                    outcomes[tag] = "ok"
        except LockError as error:
            outcomes[tag] = error

    threads = [
        threading.Thread(target=lock_both, args=(motor, pump, "a")),
        threading.Thread(target=lock_both, args=(pump, motor, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a thread hangs"
    errors = [o for o in outcomes.values() if isinstance(o, LockError)]
    assert len(errors) == 1 and list(outcomes.values()).count("ok") == 1
    message = str(errors[0])
    assert "deadlock" in message and repr(motor) in message and repr(pump) in message


def test_lock_timeout(motor):
    previous = config.LOCK_TIMEOUT
    config.LOCK_TIMEOUT = 0.05
    try:
        with motor:
            writer, written = in_thread(setattr, motor, "position", 1 * q.mm)
            writer.join(TIMEOUT)
            assert isinstance(written["error"], LockError)
            assert "0.05 s (LOCK_TIMEOUT)" in str(written["error"]) and repr(motor) in str(written["error"])
    finally:
        config.LOCK_TIMEOUT = previous
    assert motor.writes == []


def test_async_with_does_not_block_the_loop(motor, pump, asynchronous):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.ensure_future(ticker())
        with_thread = threading.Event()
        holder, _ = in_thread(lambda: _hold_until(motor, with_thread))
        busy_wait(lambda: motor._exclusive.holder is not None, sleep_time=0.001, timeout=TIMEOUT)
        before = ticks
        entering = asyncio.ensure_future(_async_block(motor, pump))
        while motor._exclusive.waiters() == 0:
            await asyncio.sleep(0.001)
        assert ticks > before  # the loop kept running while `async with` waited
        with_thread.set()
        await asyncio.wait_for(entering, TIMEOUT)
        ticking.cancel()
        holder.join(TIMEOUT)

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert motor.position == 7 * q.mm and pump.position == 8 * q.mm


def _hold_until(device, event):
    with device:
        assert event.wait(TIMEOUT)


async def _async_block(motor, pump):
    async with motor, pump["position"]:
        await motor.set_position(7 * q.mm)
        await pump["position"].set(8 * q.mm)


def test_exclusive_blocks_are_really_exclusive_under_races(asynchronous):
    """Many threads, fast switching: no foreign write ever lands inside a block."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    device = Simple()
    violations = []

    def block_worker(tag):
        for i in range(200):
            with device:
                value = (tag * 1000 + i) * q.mm
                device.position = value
                if device.position != value:
                    violations.append((tag, i))

    def plain_writer():
        for i in range(400):
            device.position = -i * q.mm

    try:
        threads = [threading.Thread(target=block_worker, args=(t,)) for t in range(4)]
        threads += [threading.Thread(target=plain_writer) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT * 2)
            assert not thread.is_alive()
    finally:
        sys.setswitchinterval(previous)
    assert violations == []
    assert len(device.writes) == 4 * 200 + 4 * 400


def test_seed_example_with_simulated_shutter_and_motor():
    from concert.devices.motors.dummy import LinearMotor
    from concert.devices.shutters.dummy import Shutter

    shutter, motor = Shutter(), LinearMotor(motion_velocity=1 * q.m / q.s)
    shutter.close().join(TIMEOUT)  # the simulated shutter starts open, as the legacy one did

    async def main():
        async with shutter, motor["position"]:
            await motor.set_position(2 * q.mm)
            await shutter.open()

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert motor.position == 2 * q.mm and shutter.state == "open"

    with shutter, motor["position"]:  # and the thread-based spelling of the same
        motor.position = 3 * q.mm
        shutter.close().join(TIMEOUT)
    assert motor.position == 3 * q.mm and shutter.state == "closed"


def test_a_waiting_block_is_not_starved_by_back_to_back_operations(motor, asynchronous):
    stop = threading.Event()
    writes = []

    def busy():
        i = 0
        while not stop.is_set():
            motor.position = (i % 2) * q.mm
            writes.append(i)
            i += 1

    writer = threading.Thread(target=busy)
    writer.start()
    try:
        busy_wait(lambda: len(writes) > 10, sleep_time=0.001, timeout=TIMEOUT)
        entered, outcome = in_thread(lambda: _hold_briefly(motor))
        entered.join(TIMEOUT)
        assert not entered.is_alive() and "error" not in outcome, "the block never got in"
    finally:
        stop.set()
        writer.join(TIMEOUT)


def _hold_briefly(device):
    with device:
        return device.position


def test_restore_retries_linked_parameters_and_keeps_refused_values():
    class Window(Device):
        """x0 + width must stay within 10 mm."""

        x0 = Quantity(q.mm, external_upper_getter=lambda w: 10 * q.mm - w._width)
        width = Quantity(q.mm, external_upper_getter=lambda w: 10 * q.mm - w._x0)

        def __init__(self):
            self._x0, self._width = 0 * q.mm, 10 * q.mm
            super().__init__()

        def _get_x0(self):
            return self._x0

        def _set_x0(self, value):
            self._x0 = value

        def _get_width(self):
            return self._width

        def _set_width(self, value):
            self._width = value

    window = Window()
    window.stash().join(TIMEOUT)
    window.width = 2 * q.mm
    window.x0 = 8 * q.mm
    window.restore().join(TIMEOUT)  # width first fails (8 + 10 > 10), x0 then width succeed
    assert (window.x0, window.width) == (0 * q.mm, 10 * q.mm)

    window["width"].stash().join(TIMEOUT)
    window.width = 2 * q.mm
    window.x0 = 8 * q.mm
    with pytest.raises(Exception, match="hardware limit"):
        window["width"].restore().join(TIMEOUT)
    assert window["width"]._stashed == [10 * q.mm]  # still there for a later restore


def test_cancelled_async_with_never_leaves_the_lock_held(motor, asynchronous):
    """A task cancelled while waiting for the lock gives it back once the wait succeeds."""
    release = threading.Event()
    holder, _ = in_thread(lambda: _hold_until(motor, release))
    busy_wait(lambda: motor._exclusive.holder is not None, sleep_time=0.001, timeout=TIMEOUT)

    async def main():
        waiting = asyncio.ensure_future(_async_block(motor, Simple()))
        while motor._exclusive.waiters() == 0:
            await asyncio.sleep(0.001)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, TIMEOUT)  # the task ends at once, lock or not

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    release.set()
    holder.join(TIMEOUT)
    busy_wait(lambda: motor._exclusive.holder is None, sleep_time=0.001, timeout=TIMEOUT)
    with motor:  # and anybody can have it again
        motor.position = 1 * q.mm


def test_lock_timeout_accepts_a_quantity(motor):
    previous = config.LOCK_TIMEOUT
    config.LOCK_TIMEOUT = 50 * q.ms
    try:
        with motor:
            writer, written = in_thread(setattr, motor, "position", 1 * q.mm)
            writer.join(TIMEOUT)
        assert isinstance(written["error"], LockError) and "0.05 s" in str(written["error"])
    finally:
        config.LOCK_TIMEOUT = previous


# -- fairness (SPEC §4 revised, issue 8 item 15) -----------------------------------------------


@pytest.mark.usefixtures("asynchronous")
def test_a_thread_re_entering_a_block_in_a_loop_cannot_starve_another_owner():
    device = Simple()
    entries = {"loop": 0, "other": 0}
    other_done = threading.Event()
    deadline = time.monotonic() + TIMEOUT

    def loop():
        while not other_done.is_set() and time.monotonic() < deadline:
            with device:
                entries["loop"] += 1

    def other():
        for _ in range(200):
            with device:
                entries["other"] += 1
        other_done.set()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=loop), threading.Thread(target=other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    finally:
        sys.setswitchinterval(previous)
    assert entries["other"] == 200, entries
    # First come, first served: while the other owner waits, the loop gets at most one turn.
    # (Without fairness the loop got ~98 000 entries to the other's 0; the slack is for the
    # moments the other owner is between two blocks and not waiting.)
    assert entries["loop"] <= 4 * entries["other"] + 10, entries


def _wait_for_waiters(lock, count):
    busy_wait(lambda: lock.waiters() >= count, sleep_time=0.001, timeout=TIMEOUT)


@pytest.mark.usefixtures("asynchronous")
def test_owners_get_a_lock_in_the_order_they_asked():
    device = Simple()
    order = []

    def block(name):
        with device:
            order.append(name)

    threads = []
    with device:
        for index, name in enumerate("abcde"):
            thread = threading.Thread(target=block, args=(name,))
            thread.start()
            threads.append(thread)
            _wait_for_waiters(device._exclusive, index + 1)
    block("again")  # at once, before any waiter could run: it queues up behind them
    for thread in threads:
        thread.join(TIMEOUT)
    assert order == [*"abcde", "again"]


@pytest.mark.usefixtures("asynchronous")
def test_operations_get_a_device_slot_in_the_order_they_asked():
    from concert.devices.motors.dummy import LinearMotor

    motor = LinearMotor(position=0 * q.mm, motion_velocity=1 * q.mm / q.s)
    order = []

    def move(name, target):
        motor.position = target
        order.append(name)

    first = motor.move(1000 * q.mm)  # holds the slot until it is stopped
    busy_wait(lambda: motor.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    threads = []
    for index, name in enumerate("abcd"):
        thread = threading.Thread(target=move, args=(name, (index + 1) * 0.001 * q.mm))
        thread.start()
        threads.append(thread)
        _wait_for_waiters(motor._slot, index + 1)
    motor.stop().join(TIMEOUT)
    for thread in threads:
        thread.join(TIMEOUT)
    first.exception(TIMEOUT)
    assert order == list("abcd")


@pytest.mark.usefixtures("asynchronous")
def test_an_operation_queued_behind_a_block_does_not_hold_up_the_blocks_own_calls(monkeypatch):
    from concert.devices.motors.dummy import LinearMotor

    monkeypatch.setattr(config, "LOCK_TIMEOUT", 5 * q.s)
    motor = LinearMotor(position=0 * q.mm, motion_velocity=1000 * q.mm / q.s)
    outside = {}

    def intruder():
        motor.position = 7 * q.mm
        outside["done"] = motor.position

    with motor:
        thread = threading.Thread(target=intruder)
        thread.start()
        _wait_for_waiters(motor._exclusive, 1)
        motor.position = 3 * q.mm  # neither a deadlock nor a wait for the intruder
        assert motor.position == 3 * q.mm
    thread.join(TIMEOUT)
    assert outside["done"] == 7 * q.mm
