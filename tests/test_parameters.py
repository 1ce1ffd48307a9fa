"""Parameters, quantities and collections of parameters (seed 003's examples, with futures)."""

from __future__ import annotations

import pytest

from concert.base import (
    AccessorNotImplementedError,
    HardLimitError,
    LimitError,
    LockError,
    Parameter,
    ParameterError,
    Parameterizable,
    ParameterValue,
    Quantity,
    QuantityValue,
    ReadAccessError,
    SoftLimitError,
    State,
    StateError,
    UnitError,
    WriteAccessError,
    check,
)
from concert.devices.base import Device
from concert.dispatcher import dispatcher
from concert.exceptions import ConcertError, WaitError
from concert.futures import Future
from concert.quantities import q
from tests.conftest import TIMEOUT


class Stage(Device):
    """A device that records every accessor call, so tests can prove none happened."""

    state = State(default="standby")
    position = Quantity(q.mm, lower=-10 * q.mm, upper=10 * q.mm, help="Stage position")
    speed = Quantity(
        q.mm / q.s,
        external_lower_getter=lambda stage: 0 * q.mm / q.s,
        external_upper_getter=lambda stage: stage._fastest,
    )
    label = Parameter(help="A name for the stage")
    gain = Quantity(q.dimensionless)
    guarded = Quantity(q.mm, check=check(source="standby", target="standby"))

    def __init__(self) -> None:
        self.calls: list = []
        self._position = 0 * q.mm
        self._speed = 1 * q.mm / q.s
        self._fastest = 5 * q.mm / q.s
        self._label = "stage"
        self._gain = 1 * q.dimensionless
        self._guarded = 0 * q.mm
        super().__init__()

    def _get_position(self):
        return self._position

    def _set_position(self, value):
        self.calls.append(("position", value))
        self._position = value

    def _get_speed(self):
        return self._speed

    def _set_speed(self, value):
        self.calls.append(("speed", value))
        self._speed = value

    def _get_label(self):
        return self._label

    def _set_label(self, value):
        self.calls.append(("label", value))
        self._label = value

    def _get_gain(self):
        return self._gain

    def _set_gain(self, value):
        self.calls.append(("gain", value))
        self._gain = value

    def _get_guarded(self):
        return self._guarded

    def _set_guarded(self, value):
        self.calls.append(("guarded", value))
        self._guarded = value


@pytest.fixture
def stage():
    return Stage()


# -- seed 003: Parameters ---------------------------------------------------------------


def test_seed_parameter_with_state_check():
    class SomeClass(Parameterizable):
        state = State(default="standby")
        param = Parameter(check=check(source="standby", target=["standby", "moving"]))

        def __init__(self):
            self.written = []
            super().__init__()

        def _set_param(self, value):
            self.written.append(value)

        def _get_param(self):
            return self.written[-1] if self.written else None

    obj = SomeClass()
    assert isinstance(obj["param"], ParameterValue)
    obj.param = 1
    assert obj.param == 1
    assert obj["param"].set(2).join(TIMEOUT).result() is None
    assert obj["param"].get().result(TIMEOUT) == 2


def test_seed_collection_of_parameters():
    class Thing(Parameterizable):
        def get_something(self):
            return "something"

        something = Parameter(get_something)

    thing = Thing()
    assert thing.something == "something"
    assert [param.name for param in thing] == ["something"]
    with pytest.raises(ParameterError, match=r"Thing#\d+ has no parameter 'position'"):
        thing["position"]


def test_iteration_sorted_by_name(stage):
    assert [p.name for p in stage] == ["gain", "guarded", "label", "position", "speed", "state"]
    assert "position" in stage and "nothing" not in stage


def test_attribute_access_is_blocking_and_futures_are_futures(stage):
    stage.position = 2 * q.mm
    assert stage.position == 2 * q.mm
    future = stage.set_position(3 * q.mm)
    assert isinstance(future, Future)
    future.join(TIMEOUT)
    assert stage.get_position().result(TIMEOUT) == 3 * q.mm
    assert stage["position"].get().result(TIMEOUT) == 3 * q.mm
    with pytest.raises(AttributeError):
        stage.get_nothing  # noqa: B018


def test_value_objects_are_unique_and_described(stage):
    assert stage["position"] is stage["position"]
    assert isinstance(stage["position"], QuantityValue)
    assert stage["position"].name == "position"
    assert stage["position"].help == "Stage position"
    assert stage["position"].unit == q.mm
    assert stage["position"].writable and stage["state"].writable is False


def test_values_are_converted_to_the_parameter_unit(stage):
    stage.position = 25 * q.um
    assert stage.calls[-1] == ("position", 0.025 * q.mm)
    assert str(stage.calls[-1][1].units) == "millimeter"


def test_wait_on_runs_after_the_future(stage):
    first = stage["position"].set(1 * q.mm)
    second = stage["position"].get(wait_on=first)
    assert second.result(TIMEOUT) == 1 * q.mm
    assert stage["position"].set(4 * q.mm, wait_on=second).join(TIMEOUT)
    assert stage.position == 4 * q.mm


def test_changed_message_after_every_write(stage):
    changed = dispatcher.when(stage["position"], "changed")
    stage.position = 1 * q.mm
    assert changed.result(TIMEOUT) is stage["position"]


# -- bad input: the specific error, nothing called, nothing changed ------------------------


BAD_POSITIONS = [
    (5, UnitError, r"Stage#\d+\['position'\].*5.*not a quantity in mm"),
    ("5 mm", UnitError, r"'5 mm'"),
    (None, UnitError, r"None"),
    (3 * q.s, UnitError, r"3.*second.*cannot be expressed in mm"),
    (float("nan") * q.mm, LimitError, r"nan.*not a finite number"),
    (float("inf") * q.mm, LimitError, r"inf.*not a finite number"),
    (11 * q.mm, SoftLimitError, r"11.*above the soft limit 10"),
    (-2 * q.m, SoftLimitError, r"-2.*meter.*below the soft limit -10"),
    ([1, 2] * q.mm, UnitError, r"not a single number"),
]


@pytest.mark.parametrize("value, error, message", BAD_POSITIONS)
def test_bad_positions_refused_before_the_accessor(stage, value, error, message):
    stage.position = 1 * q.mm
    stage.calls.clear()
    with pytest.raises(error, match=message):
        stage.position = value
    with pytest.raises(error) as through_future:
        stage["position"].set(value).join(TIMEOUT)
    assert isinstance(through_future.value, ConcertError)
    assert stage.calls == [] and stage.position == 1 * q.mm


def test_external_limits_refused_before_the_accessor(stage):
    with pytest.raises(HardLimitError, match=r"\['speed'\].*6.*above the hardware limit 5"):
        stage.speed = 6 * q.mm / q.s
    with pytest.raises(HardLimitError, match="below the hardware limit"):
        stage.speed = -1 * q.mm / q.s
    assert stage.calls == [] and stage.speed == 1 * q.mm / q.s
    assert issubclass(HardLimitError, LimitError) and issubclass(SoftLimitError, LimitError)


def test_dimensionless_quantities_accept_numbers(stage):
    stage.gain = 3
    assert stage.gain == 3 * q.dimensionless
    with pytest.raises(UnitError):
        stage.gain = 3 * q.mm


def test_locked_parameter_refuses_writes(stage):
    stage["position"].lock()
    assert stage["position"].locked
    with pytest.raises(LockError, match=r"\['position'\] is locked.*7"):
        stage.position = 7 * q.mm
    assert stage.calls == []
    stage["position"].unlock()
    stage.position = 7 * q.mm
    assert stage.position == 7 * q.mm


def test_permanent_lock_cannot_be_undone(stage):
    stage["label"].lock(permanent=True)
    with pytest.raises(LockError, match="permanently"):
        stage["label"].unlock()
    with pytest.raises(LockError):
        stage.label = "other"
    assert stage.label == "stage" and stage.calls == []


def test_device_lock_applies_to_all_parameters(stage):
    stage.lock()
    assert all(value.locked for value in stage)
    with pytest.raises(LockError):
        stage.gain = 2
    stage.unlock()
    stage.gain = 2
    stage.lock(permanent=True)
    with pytest.raises(LockError):
        stage.unlock()


def test_state_check_on_parameter_write(stage):
    stage["state"]._change("moving")
    with pytest.raises(
        StateError, match=r"Stage#\d+: _set_guarded\(<Quantity\(1, 'millimeter'\)>\).*'moving'"
    ):
        stage.guarded = 1 * q.mm
    assert stage.calls == [] and stage.guarded == 0 * q.mm


def test_missing_accessors():
    class Partial(Parameterizable):
        write_only = Parameter(fset=lambda self, value: None)
        read_only = Parameter(fget=lambda self: 1)
        unfinished = Parameter()

        def _get_unfinished(self):
            raise AccessorNotImplementedError("the driver does not report it")

    partial = Partial()
    with pytest.raises(ReadAccessError, match=r"\['write_only'\] cannot be read"):
        partial.write_only  # noqa: B018
    with pytest.raises(WriteAccessError, match=r"\['read_only'\] cannot be written \(to 5\)"):
        partial.read_only = 5
    with pytest.raises(ReadAccessError, match="does not report it") as info:
        partial.unfinished  # noqa: B018
    assert isinstance(info.value.__cause__, AccessorNotImplementedError)
    with pytest.raises(ReadAccessError):
        partial["write_only"].get().result(TIMEOUT)


def test_data_is_passed_to_accessors():
    class Multi(Parameterizable):
        def read_channel(self, channel):
            return f"channel {channel}"

        first = Parameter(fget=read_channel, data=1)
        second = Parameter(fget=read_channel, data=2)

    multi = Multi()
    assert (multi.first, multi.second) == ("channel 1", "channel 2")
    assert multi["second"].data == 2


# -- soft limits --------------------------------------------------------------------------


def test_soft_limits_per_instance(stage):
    other = Stage()
    stage["position"].upper = 2 * q.mm
    assert stage["position"].upper == 2 * q.mm and other["position"].upper == 10 * q.mm
    with pytest.raises(SoftLimitError):
        stage.position = 3 * q.mm
    other.position = 3 * q.mm
    with pytest.raises(UnitError):
        stage["position"].lower = 1 * q.s
    with pytest.raises(LimitError, match="above the upper limit"):
        stage["position"].lower = 5 * q.mm


def test_limits_can_be_locked(stage):
    stage["position"].lock_limits()
    with pytest.raises(LockError, match="limits are locked"):
        stage["position"].upper = 1 * q.mm
    stage["position"].unlock_limits()
    stage["position"].upper = 1 * q.mm
    stage["position"].lock_limits(permanent=True)
    with pytest.raises(LockError, match="permanently"):
        stage["position"].unlock_limits()
    assert stage["position"].upper == 1 * q.mm


def test_user_limit_accessors():
    stored = {"lower": -1 * q.mm}

    class Remote(Parameterizable):
        position = Quantity(
            q.mm,
            fget=lambda self: 0 * q.mm,
            fset=lambda self, value: None,
            user_lower_getter=lambda self: stored["lower"],
            user_lower_setter=lambda self, value: stored.__setitem__("lower", value),
        )

    remote = Remote()
    assert remote["position"].lower == -1 * q.mm
    remote["position"].lower = -2 * q.mm
    assert stored["lower"] == -2 * q.mm
    with pytest.raises(SoftLimitError):
        remote.position = -3 * q.mm


# -- stash / restore, install, wait, str ----------------------------------------------------


def test_stash_and_restore_a_stack(stage):
    stage.position = 1 * q.mm
    stage["position"].stash().join(TIMEOUT)
    stage.position = 2 * q.mm
    stage["position"].stash().join(TIMEOUT)
    stage.position = 3 * q.mm
    stage["position"].restore().join(TIMEOUT)
    assert stage.position == 2 * q.mm
    stage["position"].restore().join(TIMEOUT)
    assert stage.position == 1 * q.mm
    stage["position"].restore().join(TIMEOUT)  # nothing stashed: does nothing
    assert stage.position == 1 * q.mm


def test_stash_and_restore_the_whole_device(stage):
    stage.position, stage.label = 1 * q.mm, "before"
    stage.stash().join(TIMEOUT)
    stage.position, stage.label = 5 * q.mm, "after"
    stage.restore().join(TIMEOUT)
    assert (stage.position, stage.label) == (1 * q.mm, "before")


def test_install_parameters_per_instance(stage):
    other = Stage()
    stage._tilt = 0 * q.deg
    stage.install_parameters(
        {
            "tilt": Quantity(
                q.deg,
                fget=lambda self: self._tilt,
                fset=lambda self, value: setattr(self, "_tilt", value),
            )
        }
    )
    stage.tilt = 3 * q.deg
    assert stage.tilt == 3 * q.deg and "tilt" in [p.name for p in stage]
    assert isinstance(stage, Stage)
    assert "tilt" not in other and not hasattr(other, "tilt")
    assert "tilt" not in Stage()
    with pytest.raises(ParameterError, match="already has"):
        stage.install_parameters({"position": Parameter()})


def test_wait_for_a_value(stage):
    stage.position = 2 * q.mm
    stage["position"].wait(2 * q.mm, timeout=TIMEOUT).join(TIMEOUT)
    stage["position"].wait(2.0004 * q.mm, eps=1 * q.um, timeout=TIMEOUT).join(TIMEOUT)
    with pytest.raises(WaitError, match=r"still false after 0\.05 s"):
        stage["position"].wait(3 * q.mm, sleep_time=0.01 * q.s, timeout=0.05 * q.s).join(TIMEOUT)


def test_str_is_a_table_of_readable_parameters(stage):
    text = str(stage)
    assert text.startswith(repr(stage))
    for row in ("position", "0 mm", "speed", "1.0 mm / s", "state", "standby", "label"):
        assert row in text
