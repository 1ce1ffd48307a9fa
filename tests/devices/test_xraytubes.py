"""X-ray tubes: voltage, current, derived power, the on/off state machine and emergency stops."""

from __future__ import annotations

import pytest

from concert.devices.xraytubes.dummy import XRayTube
from concert.dispatcher import dispatcher
from concert.exceptions import HardLimitError, StateError
from concert.quantities import q
from tests.conftest import TIMEOUT
from tests.devices.test_families import recording


class CountingTube(XRayTube):
    """Records hardware commands; fails switching on while ``broken`` is set."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.commands = []
        self.broken = False

    def _on_real(self) -> None:
        self.commands.append("on")
        if self.broken:
            raise RuntimeError("filament broken")
        super()._on_real()

    def _off_real(self) -> None:
        self.commands.append("off")
        super()._off_real()


def test_defaults():
    tube = XRayTube()
    assert tube.state == "off"
    assert tube.voltage == 40 * q.kV
    assert tube.current == 100 * q.uA
    assert tube.power == 4 * q.W


def test_power_is_voltage_times_current():
    tube = XRayTube()
    tube.voltage = 50000 * q.V
    tube.current = 0.5 * q.mA
    assert tube.power.units == q.W
    assert tube.power.magnitude == pytest.approx(25)
    assert tube.get_power().result(TIMEOUT).magnitude == pytest.approx(25)


def test_on_and_off_are_announced():
    tube = CountingTube()
    with recording(tube, ("on", "off", "error")) as received:
        switched_on = dispatcher.when(tube, "on")
        tube.on().join(TIMEOUT)
        assert switched_on.result(TIMEOUT) is tube
        assert tube.state == "on" and tube._emitting
        tube.off().join(TIMEOUT)
        dispatcher.flush(TIMEOUT)
    assert received == ["on", "off"]
    assert tube.state == "off" and not tube._emitting
    assert tube.commands == ["on", "off"]


@pytest.mark.parametrize("method, state", [("on", "on"), ("off", "off"), ("reset", "off")])
def test_wrong_state_raises_before_the_hardware_is_touched(method, state):
    tube = CountingTube()
    if state == "on":
        tube.on().join(TIMEOUT)
        tube.commands.clear()
    with pytest.raises(StateError) as info:
        getattr(tube, method)().join(TIMEOUT)
    assert repr(tube) in str(info.value) and method in str(info.value) and repr(state) in str(info.value)
    assert tube.commands == [] and tube.state == state


def test_settings_can_change_while_on():
    tube = XRayTube()
    tube.on().join(TIMEOUT)
    tube.voltage = 20 * q.kV
    tube.current = 50 * q.uA
    assert tube.power == 1 * q.W and tube.state == "on"


def test_maxima_are_hardware_limits():
    tube = XRayTube(max_voltage=50 * q.kV, max_current=200 * q.uA)
    with pytest.raises(HardLimitError, match="voltage"):
        tube.voltage = 51 * q.kV
    with pytest.raises(HardLimitError, match="current"):
        tube.current = 0.3 * q.mA
    assert tube.power == 4 * q.W


def test_failure_puts_it_into_error_and_reset_switches_it_off():
    tube = CountingTube()
    tube.broken = True
    with pytest.raises(RuntimeError, match="filament"):
        tube.on().join(TIMEOUT)
    assert tube.state == "error" and "filament" in tube["state"].error
    with pytest.raises(StateError):
        tube.off().join(TIMEOUT)
    tube.commands.clear()
    tube.reset().join(TIMEOUT)
    assert tube.state == "off" and tube.commands == ["off"]


def test_emergency_stop_switches_off():
    tube = CountingTube()
    tube.on().join(TIMEOUT)
    switched_off = dispatcher.when(tube, "off")
    tube.emergency_stop()
    assert switched_off.result(TIMEOUT) is tube
    assert tube.state == "off" and not tube._emitting
    tube.emergency_stop()  # idempotent
    assert tube.state == "off"


def test_concurrent_switching_takes_turns(asynchronous):
    tube = CountingTube()
    futures = [tube.on() for _ in range(10)] + [tube.off() for _ in range(10)]
    errors = [future.exception(TIMEOUT) for future in futures]
    assert all(error is None or isinstance(error, StateError) for error in errors)
    successes = tube.commands
    # Each success alternated the state; nothing ran twice in a row.
    assert all(first != second for first, second in zip(successes, successes[1:]))
    assert len(successes) == sum(error is None for error in errors)
