"""State machines (seed 003's State, check and transition), with futures."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from concert import states
from concert.base import Quantity, State, StateError, WriteAccessError, check, transition
from concert.devices.base import Device
from concert.dispatcher import dispatcher
from concert.futures import async_, on_cancel
from concert.naming import calling, current_call, describe_call
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT


class SomeObject(Device):
    """Seed 003's example, with futures and a record of what ran."""

    state = State(default="standby")

    def __init__(self) -> None:
        self.ran: list = []
        self.release = threading.Event()
        super().__init__()

    @async_
    @check(source="*", target="moving")
    def anything(self):
        self.ran.append("anything")

    @async_
    @check(source="standby", target="moving")
    @transition(immediate="moving", target="standby")
    def move(self, fail=False, wait=False):
        on_cancel(self.release.set)
        self.ran.append(("move", self.state))
        if wait:
            assert self.release.wait(TIMEOUT)
        if fail:
            raise RuntimeError("motor stalled")

    @async_
    @check(source=["error", "standby"], target="standby")
    @transition(target="standby")
    def reset(self):
        self.ran.append("reset")


def test_default_state_and_no_assignment():
    obj = SomeObject()
    assert obj.state == "standby"
    with pytest.raises(WriteAccessError, match=r"\['state'\] cannot be set \(to 'some_state'\)"):
        obj.state = "some_state"
    assert obj.state == "standby"


def test_transition_sets_immediate_then_target():
    obj = SomeObject()
    obj.move().join(TIMEOUT)
    assert obj.ran == [("move", "moving")] and obj.state == "standby"


def test_check_refuses_wrong_state_before_doing_anything(asynchronous):
    obj = SomeObject()
    moving = obj.move(wait=True)
    busy_wait(lambda: obj.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    second = obj.move()
    with pytest.raises(
        StateError, match=r"^SomeObject#\d+\.move\(\) is not allowed in state 'moving' \(only in 'standby'\)$"
    ) as info:
        second.join(TIMEOUT)
    assert info.value.error_state == "moving"
    obj.release.set()
    moving.join(TIMEOUT)
    assert obj.ran == [("move", "moving")]  # the refused call did nothing


def test_wildcard_source():
    obj = SomeObject()
    obj.anything().join(TIMEOUT)
    assert obj.ran == ["anything"]


def test_exception_puts_device_into_error_and_reset_leaves_it():
    obj = SomeObject()
    with pytest.raises(RuntimeError, match="stalled"):
        obj.move(fail=True).join(TIMEOUT)
    assert obj.state == "error"
    assert obj["state"].error == "RuntimeError: motor stalled"
    with pytest.raises(StateError, match="'error'"):
        obj.move().join(TIMEOUT)
    obj.reset().join(TIMEOUT)
    assert obj.state == "standby" and obj["state"].error is None
    obj.move().join(TIMEOUT)


def test_cancellation_ends_in_target(asynchronous):
    obj = SomeObject()
    future = obj.move(wait=True)
    busy_wait(lambda: obj.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    assert future.cancel()
    with pytest.raises(CancelledError):
        future.result(TIMEOUT)
    assert obj.state == "standby"


def test_state_changes_are_messages():
    obj = SomeObject()
    moving = dispatcher.when(obj, "moving")
    standby = dispatcher.when(obj, "standby")
    obj.move().join(TIMEOUT)
    assert moving.result(TIMEOUT) is obj and standby.result(TIMEOUT) is obj


def test_hardware_state_overrides_software_state():
    class Hardware(SomeObject):
        def _get_state(self):
            return "reported by hardware"

    hardware = Hardware()
    assert hardware.state == "reported by hardware"
    with pytest.raises(StateError, match="reported by hardware"):
        hardware.move().join(TIMEOUT)


def test_several_state_machines():
    class TwoStates(Device):
        state = State(default="standby")
        shutter = State(default="closed")

        @async_
        @check(source="closed", target="open", state_name="shutter")
        @transition(immediate="opening", target="open", state_name="shutter")
        def open(self):
            pass

    device = TwoStates()
    device.open().join(TIMEOUT)
    assert (device.state, device.shutter) == ("standby", "open")
    with pytest.raises(StateError, match="shutter 'open'"):
        device.open().join(TIMEOUT)


def test_concurrent_checked_calls_are_atomic(asynchronous):
    """Two concurrent calls: the second waits, then finds the state the first left."""

    class Shutter(Device):
        state = State(default="closed")

        def __init__(self):
            self.entered = threading.Event()
            self.release = threading.Event()
            self.opened = 0
            super().__init__()

        @async_
        @check(source="closed", target="open")
        @transition(target="open")
        def open(self):
            self.entered.set()
            assert self.release.wait(TIMEOUT)
            self.opened += 1

    shutter = Shutter()
    first = shutter.open()
    assert shutter.entered.wait(TIMEOUT)
    second = shutter.open()
    shutter.release.set()
    first.join(TIMEOUT)
    with pytest.raises(StateError, match="'open'"):
        second.join(TIMEOUT)
    assert shutter.opened == 1


class Oven(Device):
    """A public method that delegates to a private checked one, and a checked parameter."""

    state = State(default="standby")
    setpoint = Quantity(q.K, check=check(source="standby", target="standby"))

    def __init__(self) -> None:
        self._setpoint = 300 * q.K
        super().__init__()

    def _get_setpoint(self):
        return self._setpoint

    def _set_setpoint(self, value):
        self._setpoint = value

    @async_
    def bake(self, temperature, minutes=1):
        with calling(self, lambda: describe_call(Oven.bake, (self, temperature), {"minutes": minutes})):
            self._heat(temperature)

    @check(source="standby", target="standby")
    def _heat(self, temperature):
        self._setpoint = temperature


def test_state_errors_name_the_call_the_user_made():
    oven = Oven()
    oven["state"]._change("error")
    with pytest.raises(
        StateError,
        match=r"^Oven#\d+\.bake\(\+500 K, minutes=1\) is not allowed in state 'error' \(only in 'standby'\)$",
    ):
        oven.bake(500 * q.K).join(TIMEOUT)
    with pytest.raises(StateError, match=r"^Oven#\d+\.setpoint = 0.5 kK is not allowed in state 'error'"):
        oven.setpoint = 0.5 * q.kK
    with pytest.raises(StateError, match=r"^Oven#\d+\._heat\(\+500 K\) is not allowed"):
        oven._heat(500 * q.K)  # called directly: the private method is what was called
    assert oven.setpoint == 300 * q.K
    assert not hasattr(states, "_call_text")  # one naming, in concert.naming


def test_recorded_calls_end_with_their_block():
    oven = Oven()
    with calling(oven, lambda: "outer"):
        with calling(oven, lambda: "inner"):
            assert current_call(oven) == "outer"
        assert current_call(oven) == "outer"
        assert current_call(Oven()) is None
    assert current_call(oven) is None
    with pytest.raises(RuntimeError):
        with calling(oven, lambda: "failing"):
            raise RuntimeError("inside")
    assert current_call(oven) is None


@pytest.mark.parametrize("argument", ["fset", "check"])
def test_a_state_with_a_setter_is_refused_when_the_class_is_defined(argument):
    """A state changes only through transitions: ``fset`` (or a write ``check``) is not dropped silently."""
    with pytest.raises(TypeError) as info:

        class Oven(Device):
            door = State(default="closed", **{argument: lambda *args: None})

    message = str(info.value)
    assert message.startswith(f"State({argument}=...): ")
    assert "State cannot be assigned; it changes only through transitions" in message
    assert argument in message.rsplit("takes no", 1)[1]


def test_a_state_made_outside_a_class_body_is_refused_too():
    with pytest.raises(TypeError, match=r"^State\(fset=\.\.\., check=\.\.\.\): a State cannot be assigned"):
        State(fset=print, check=print)


def test_a_state_without_setter_arguments_is_accepted():
    class Valve(Device):
        state = State(default="closed", fget=lambda valve: "open", help="from the limit switch")

    assert Valve().state == "open"
