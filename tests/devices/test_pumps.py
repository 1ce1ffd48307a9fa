"""Pumps: flow rate, the standby/pumping state machine, messages, errors and emergency stops."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest

from concert.devices.pumps.dummy import Pump
from concert.dispatcher import dispatcher
from concert.exceptions import HardLimitError, LimitError, StateError
from concert.quantities import q
from tests.conftest import TIMEOUT
from tests.devices.test_families import recording


class CountingPump(Pump):
    """Records hardware commands; fails them while ``broken`` is set."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.commands = []
        self.broken = False

    def _start_real(self) -> None:
        self.commands.append("start")
        if self.broken:
            raise RuntimeError("motor overheated")
        super()._start_real()

    def _stop_real(self) -> None:
        self.commands.append("stop")
        super()._stop_real()


def test_defaults():
    pump = Pump()
    assert pump.state == "standby"
    assert pump.flow_rate == 1 * q.l / q.min
    assert pump["flow_rate"].lower == 0 * q.l / q.min


def test_start_and_stop_are_announced():
    pump = CountingPump()
    with recording(pump, ("pumping", "standby", "error")) as received:
        pumping = dispatcher.when(pump, "pumping")
        pump.start().join(TIMEOUT)
        assert pumping.result(TIMEOUT) is pump
        assert pump.state == "pumping" and pump._pumping
        pump.stop().join(TIMEOUT)
        assert pump.state == "standby" and not pump._pumping
        dispatcher.flush(TIMEOUT)
    assert received == ["pumping", "standby"]
    assert pump.commands == ["start", "stop"]


@pytest.mark.parametrize("method, state", [("start", "pumping"), ("stop", "standby"), ("reset", "standby")])
def test_wrong_state_raises_before_the_hardware_is_touched(method, state):
    pump = CountingPump()
    if state == "pumping":
        pump.start().join(TIMEOUT)
        pump.commands.clear()
    with pytest.raises(StateError) as info:
        getattr(pump, method)().join(TIMEOUT)
    assert repr(pump) in str(info.value) and method in str(info.value) and repr(state) in str(info.value)
    assert pump.commands == [] and pump.state == state


def test_flow_rate_can_change_while_pumping():
    pump = Pump()
    pump.start().join(TIMEOUT)
    pump.flow_rate = 500 * q.ml / q.min
    assert pump.flow_rate == 0.5 * q.l / q.min
    assert pump.state == "pumping"


def test_maximum_flow_rate_is_a_hardware_limit():
    pump = Pump(max_flow_rate=2 * q.l / q.min)
    pump.flow_rate = 2 * q.l / q.min
    with pytest.raises(HardLimitError, match="flow_rate"):
        pump.flow_rate = 2.1 * q.l / q.min
    assert pump.flow_rate == 2 * q.l / q.min


def test_failure_puts_it_into_error_and_reset_stops_it():
    pump = CountingPump()
    pump.broken = True
    with pytest.raises(RuntimeError, match="overheated"):
        pump.start().join(TIMEOUT)
    assert pump.state == "error" and "overheated" in pump["state"].error
    with pytest.raises(StateError):
        pump.start().join(TIMEOUT)
    pump.commands.clear()
    pump.reset().join(TIMEOUT)
    assert pump.state == "standby" and pump.commands == ["stop"]


def test_emergency_stop_stops_pumping():
    pump = CountingPump()
    pump.start().join(TIMEOUT)
    stopped = dispatcher.when(pump, "standby")
    pump.emergency_stop()
    assert stopped.result(TIMEOUT) is pump
    assert pump.state == "standby" and not pump._pumping
    pump.emergency_stop()  # idempotent
    assert pump.state == "standby"


def test_emergency_stop_keeps_an_error():
    pump = CountingPump()
    pump.broken = True
    pump.start().exception(TIMEOUT)
    pump.emergency_stop()
    assert pump.state == "error" and pump.commands[-1] == "stop"


def test_emergency_stop_does_not_wait_for_a_with_block(asynchronous):
    pump = Pump()
    pump.start().join(TIMEOUT)
    with pump:
        thread = threading.Thread(target=pump.emergency_stop)  # a thread of another owner
        thread.start()
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert pump.state == "standby"


def test_concurrent_starts_take_turns_and_only_one_starts(asynchronous):
    pump = CountingPump()
    futures = [pump.start() for _ in range(20)]
    errors = [future.exception(TIMEOUT) for future in futures]
    assert sum(error is None for error in errors) == 1
    assert all(isinstance(error, StateError) for error in errors if error is not None)
    assert pump.commands == ["start"]


def test_a_flow_rate_too_large_for_a_float_is_refused():
    pump = CountingPump()
    with pytest.raises(LimitError, match=r"Pump#\d+\['flow_rate'\]: 1e\+400 l/min is too large"):
        pump.flow_rate = q.Quantity(10**400, "l/min")
    with pytest.raises(LimitError, match=r"Pump#\d+\['flow_rate'\]: .* is too large"):
        pump.flow_rate = q.Quantity(Fraction(10**400, 7), "l/min")
    assert pump.flow_rate == 1 * q.l / q.min and pump.state == "standby" and pump.commands == []
    pump.flow_rate = q.Quantity(np.uint8(200), "ml/min")
    assert pump.flow_rate == 0.2 * q.l / q.min
