"""Parameters, quantities and collections of parameters (seed 003's examples, with futures)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
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
from concert.exceptions import ConcertError, ParameterNameError, WaitError
from concert.futures import Future
from concert.naming import describe_value
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
    (3 * q.s, UnitError, r"\['position'\]: 3 s cannot be expressed in mm"),
    (float("nan") * q.mm, LimitError, r"nan.*not a finite number"),
    (float("inf") * q.mm, LimitError, r"inf.*not a finite number"),
    (11 * q.mm, SoftLimitError, r"11.*above the soft limit 10"),
    (-2 * q.m, SoftLimitError, r"-2 m \(= -2000 mm\) is below the soft limit -10 mm"),
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
    message = r"^Stage#\d+\.guarded = 1 mm is not allowed in state 'moving' \(only in 'standby'\)$"
    with pytest.raises(StateError, match=message):
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


# -- issue 8: magnitudes are normalised or refused in one place ------------------------------

NUMPY_INTEGERS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]

GOOD_MAGNITUDES = [
    *[(kind(7), 7.0) for kind in NUMPY_INTEGERS],
    (np.float16(0.5), 0.5),
    (np.float32(0.25), 0.25),
    (np.longdouble(1.5), 1.5),
    (7, 7.0),
    (Fraction(1, 4), 0.25),
    (Decimal("0.01"), 0.01),
    (np.array(3), 3.0),
    (np.array([4.5]), 4.5),
    (np.array([[2]], dtype=np.uint8), 2.0),
]


@pytest.mark.parametrize(
    "magnitude, number", GOOD_MAGNITUDES, ids=[f"{type(m).__name__}-{m!r}" for m, _ in GOOD_MAGNITUDES]
)
def test_real_magnitudes_become_floats_before_the_accessor(stage, magnitude, number):
    stage.position = q.Quantity(magnitude, q.mm)
    ((name, written),) = stage.calls
    assert name == "position" and type(written.magnitude) is float and written.magnitude == number
    assert written.units == q.mm
    stage.gain = magnitude  # a bare number, for a dimensionless parameter
    assert type(stage.calls[-1][1].magnitude) is float and stage.gain.magnitude == number


def test_converted_magnitudes_become_floats_too(stage):
    stage.position = q.Quantity(np.uint8(255), q.um)  # 255 * 1000 would overflow a uint8
    assert stage.calls[-1][1] == 0.255 * q.mm and type(stage.calls[-1][1].magnitude) is float
    stage.speed = q.Quantity(Decimal("0.5"), q.cm / q.s)
    assert stage.calls[-1][1] == 5 * q.mm / q.s


BAD_MAGNITUDES = [
    (q.Quantity("5", "mm"), UnitError, r"'5' mm is a string, not a number"),
    (q.Quantity(np.array([True]), "mm"), UnitError, r"\[True\] mm is a bool, not a number"),
    (q.Quantity(np.bool_(False), "mm"), UnitError, r"False mm is a bool"),
    (q.Quantity(1 + 2j, "mm"), UnitError, r"\(1\+2j\) mm is not a real number"),
    (
        q.Quantity(np.array([]), "mm"),
        UnitError,
        r"<array 0 float64> mm is not a single number \(an array of shape 0\)",
    ),
    (q.Quantity(np.zeros((2, 2)), "mm"), UnitError, r"<array 2x2 float64> mm is not a single number"),
    (q.Quantity(10**400, "mm"), LimitError, r"1e\+400 mm is too large to be a floating-point number"),
    (q.Quantity(-(10**400), "um"), LimitError, r"-1e\+400 µm is too large"),
    (
        q.Quantity(Fraction(10**400, 3), "mm"),
        LimitError,
        r"Fraction\(1000.* mm is too large to be a floating-point",
    ),
    (q.Quantity(Decimal("1e400"), "mm"), LimitError, r"1E\+400 mm is too large"),
    (q.Quantity(Decimal("NaN"), "mm"), LimitError, r"NaN mm is not a finite number"),
    (q.Quantity(Decimal("sNaN"), "mm"), LimitError, r"sNaN mm is not a usable number"),
    (q.Quantity(np.longdouble("1e4000"), "mm"), LimitError, r"np.longdouble\('1e\+4000'\) mm is too large"),
    (1e306 * q.km, LimitError, r"1e\+306 km is not a finite number"),  # inf once in mm
    (True, UnitError, r"True is not a quantity in mm"),
    (np.int32(5), UnitError, r"5 is not a quantity in mm \(write e.g. 5 \* q.mm\)"),
    (Decimal("0.5"), UnitError, r"Decimal\('0.5'\) is not a quantity in mm \(write e.g. 0.5 \* q.mm\)"),
    (10**400, UnitError, r"1e\+400 is not a quantity in mm"),
]


@pytest.mark.parametrize("value, error, message", BAD_MAGNITUDES, ids=[m for _, _, m in BAD_MAGNITUDES])
def test_bad_magnitudes_are_refused_before_the_accessor(stage, value, error, message):
    stage.position = 1 * q.mm
    stage.calls.clear()
    with pytest.raises(error, match=rf"^Stage#\d+\['position'\]: {message}") as info:
        stage.position = value
    assert isinstance(info.value, ConcertError)
    with pytest.raises(error):
        stage["position"].set(value).join(TIMEOUT)
    with pytest.raises(error):
        stage["position"].lower = value
    assert stage.calls == [] and stage.position == 1 * q.mm and stage.state == "standby"
    assert stage["position"].lower == -10 * q.mm


@pytest.mark.parametrize("value", [True, np.bool_(True), "3", 1 + 0j, None, [3], np.array([1, 2])])
def test_dimensionless_parameters_refuse_what_is_not_one_real_number(stage, value):
    with pytest.raises(UnitError, match=r"Stage#\d+\['gain'\]"):
        stage.gain = value
    assert stage.calls == [] and stage.gain == 1 * q.dimensionless


def test_quantities_of_another_registry_are_named_as_such(stage):
    import pint

    other = pint.UnitRegistry()
    with pytest.raises(UnitError, match="another pint registry"):
        stage.position = 1 * other.mm
    with pytest.raises(UnitError, match="another pint registry"):
        stage.gain = 1 * other.dimensionless
    assert stage.calls == []


# -- issue 8: NaN limits, limits of the wrong kind -----------------------------------------


@pytest.mark.parametrize("side", ["lower", "upper"])
def test_a_nan_limit_is_refused_and_the_old_limit_kept(stage, side):
    value = stage["position"]
    before = getattr(value, side)
    with pytest.raises(LimitError, match=rf"\['position'\]: {side} limit nan mm is not a finite number"):
        setattr(value, side, float("nan") * q.mm)
    with pytest.raises(LimitError):
        setattr(value, side, q.Quantity(np.float32("nan"), q.m))
    assert getattr(value, side) == before
    with pytest.raises(SoftLimitError):
        stage.position = -500 * q.mm if side == "lower" else 500 * q.mm
    assert stage.calls == []


@pytest.mark.parametrize(
    "limit, error",
    [
        (5, UnitError),
        (5.0, UnitError),
        (1 * q.s, UnitError),
        (q.Quantity("1", "mm"), UnitError),
        ("1 mm", UnitError),
    ],
)
def test_limits_of_the_wrong_kind_are_refused(stage, limit, error):
    with pytest.raises(error, match=r"Stage#\d+\['position'\]: lower limit"):
        stage["position"].lower = limit
    assert stage["position"].lower == -10 * q.mm


def test_infinite_limits_mean_what_they_say(stage):
    stage["position"].upper = float("inf") * q.mm
    stage.position = 500 * q.mm
    stage["position"].lower = -float("inf") * q.mm
    stage.position = -500 * q.mm
    assert stage.position == -500 * q.mm


def test_a_nan_limit_from_a_getter_refuses_every_write():
    class Drifting(Parameterizable):
        position = Quantity(
            q.mm,
            fget=lambda self: 0 * q.mm,
            fset=lambda self, value: self.written.append(value),
            user_lower_getter=lambda self: float("nan") * q.mm,
            external_upper_getter=lambda self: self.hardware_upper,
        )

        def __init__(self):
            self.written = []
            self.hardware_upper = None
            super().__init__()

    drifting = Drifting()
    with pytest.raises(LimitError, match=r"soft lower limit nan mm is not a finite number"):
        drifting.position = 1 * q.mm
    drifting["position"].lower = None  # no user setter: only the stored limit changes; still NaN
    drifting.hardware_upper = float("nan") * q.mm
    with pytest.raises(LimitError):
        drifting.position = 1 * q.mm
    assert drifting.written == []


# -- issue 8: angles are not plain numbers --------------------------------------------------


class Goniometer(Parameterizable):
    angle = Quantity(
        q.deg, fget=lambda self: self._angle, fset=lambda self, value: setattr(self, "_angle", value)
    )
    spin = Quantity(
        q.Hz, fget=lambda self: self._spin, fset=lambda self, value: setattr(self, "_spin", value)
    )

    def __init__(self):
        self._angle = 0 * q.deg
        self._spin = 0 * q.Hz
        super().__init__()


@pytest.mark.parametrize(
    "value, message",
    [
        (90, r"90 is not a quantity in deg \(write e.g. 90 \* q.deg\)"),
        (90.0, r"90.0 is not a quantity in deg \(write e.g. 90 \* q.deg\)"),
        (np.float64(1.5), r"np.float64\(1.5\) is not a quantity in deg \(write e.g. 1.5 \* q.deg\)"),
        (2 * q.dimensionless, r"2 is not a quantity in deg \(write e.g. 2 \* q.deg\)"),
        (50 * q.percent, r"50 % cannot be expressed in deg"),
        (3 * q.count, r"3 count cannot be expressed in deg"),
    ],
)
def test_angles_refuse_plain_numbers(value, message):
    goniometer = Goniometer()
    with pytest.raises(UnitError, match=rf"^Goniometer#\d+\['angle'\]: {message}$"):
        goniometer.angle = value
    assert goniometer.angle == 0 * q.deg


def test_angles_convert_between_angle_units_only():
    goniometer = Goniometer()
    goniometer.angle = 0.5 * q.turn
    assert goniometer.angle == 180 * q.deg
    goniometer.angle = np.pi / 2 * q.rad
    assert goniometer.angle.magnitude == pytest.approx(90)
    with pytest.raises(UnitError, match=r"\['spin'\]: 1 rad/s cannot be expressed in Hz"):
        goniometer.spin = 1 * q.rad / q.s  # pint would take it for 1 Hz
    goniometer.spin = 2 / q.s
    assert goniometer.spin == 2 * q.Hz


# -- issue 8: a misspelt attribute write raises, suggesting the parameter ---------------------


def test_a_misspelt_parameter_write_raises_and_changes_nothing(stage):
    with pytest.raises(
        AttributeError, match=r"Stage#\d+ has no parameter 'positon'; did you mean 'position'\?"
    ) as info:
        stage.positon = 4 * q.mm
    assert isinstance(info.value, ParameterNameError) and isinstance(info.value, ParameterError)
    assert "4 mm" in str(info.value)
    assert not hasattr(stage, "positon") and "positon" not in vars(stage)
    assert stage.calls == [] and stage.position == 0 * q.mm
    with pytest.raises(ParameterNameError, match="did you mean 'speed'"):
        stage.sped = 1 * q.mm / q.s


def test_misspelt_reads_and_lookups_suggest_the_parameter(stage):
    with pytest.raises(AttributeError, match="has no attribute 'positon'; did you mean 'position'"):
        stage.positon  # noqa: B018
    with pytest.raises(AttributeError, match="did you mean 'set_position'"):
        stage.set_positon  # noqa: B018
    with pytest.raises(ParameterError, match="no parameter 'positon'; did you mean 'position'"):
        stage["positon"]
    assert getattr(stage, "positon", None) is None and not hasattr(stage, "positon")
    with pytest.raises(AttributeError) as info:
        stage.nothing_like_it  # noqa: B018
    assert "did you mean" not in str(info.value)


def test_attributes_a_class_defines_keep_working():
    class Logged(Device):
        position = Quantity(q.mm, fget=lambda self: 0 * q.mm, fset=lambda self, value: None)
        positions = None  # declared in the class body, close to 'position'

        def __init__(self):
            super().__init__()
            self.positons = []  # set in __init__ after super().__init__(): allowed, however close
            self._positon = 1  # private: always allowed

        @property
        def positio(self):
            return self._positon

        @positio.setter
        def positio(self, value):
            self._positon = value

    class Subclass(Logged):
        def __init__(self):
            super().__init__()
            self.positiom = "set after the base class's __init__"

    logged = Subclass()
    logged.positions = [1]
    logged.positons = [2]
    logged.positio = 3
    logged._positon_too = 4
    logged.notes = "not close to any parameter"
    logged.positiom = "again"
    assert (logged.positions, logged.positons, logged.positio, logged.notes) == ([1], [2], 3, logged.notes)
    with pytest.raises(ParameterNameError):
        logged.positoin = 5 * q.mm


def test_a_device_can_also_be_an_abc():
    import abc

    class Abstract(Device, abc.ABC):
        @abc.abstractmethod
        def shape(self): ...

    class Concrete(Abstract):
        gain = Quantity(q.dimensionless, fget=lambda self: 1, fset=lambda self, value: None)

        def shape(self):
            return "round"

    with pytest.raises(TypeError):
        Abstract()
    concrete = Concrete()
    with pytest.raises(ParameterNameError):
        concrete.gainn = 2


# -- issue 8: messages in user terms ----------------------------------------------------------


def test_value_objects_are_named_as_messages_show_them(stage):
    assert repr(stage["position"]) == f"{stage!r}['position']"
    refused = stage["position"].set(20 * q.mm)
    with pytest.raises(SoftLimitError):
        refused.join(TIMEOUT)
    assert refused.name == f"{stage!r}['position'].set(+20 mm)"


def test_refusals_show_values_in_user_terms(stage):
    stage["position"].lock()
    with pytest.raises(LockError, match=r"is locked for writing; refusing to set it to 2 ms$"):
        stage.position = 2 * q.ms
    stage["position"].unlock()
    with pytest.raises(SoftLimitError, match=r": 10.0000001 mm is above the soft limit 10 mm$"):
        stage.position = 10.0000001 * q.mm
    with pytest.raises(UnitError, match=r": 5 mm/s cannot be expressed in mm$"):
        stage.position = 5 * q.mm / q.s
    stage["position"].lock_limits()
    with pytest.raises(LockError, match=r"refusing to set the upper limit to 1 m$"):
        stage["position"].upper = 1 * q.m


@pytest.mark.parametrize(
    "value, signed, text",
    [
        (2 * q.ms, False, "2 ms"),
        (5 * q.mm, True, "+5 mm"),
        (-5 * q.mm, True, "-5 mm"),
        (0.002 * q.s, False, "0.002 s"),
        (1000.0000001 * q.mm, False, "1000.0000001 mm"),
        (5 * q.mm / q.s, False, "5 mm/s"),
        (3 * q.dimensionless, False, "3"),
        (float("nan") * q.mm, True, "nan mm"),
        (q.Quantity("5", "mm"), False, "'5' mm"),
        (q.Quantity(np.array([True]), "mm"), False, "[True] mm"),
        (q.Quantity(10**400, "mm"), False, "1e+400 mm"),
        (q.Quantity(Decimal("0.01"), "s"), False, "0.01 s"),
        (q.Quantity(np.array(4), "mm"), False, "4 mm"),
        (q.Quantity(np.arange(3), "mm"), False, "[0, 1, 2] mm"),
        (np.zeros((4, 4), dtype=np.uint16), False, "<array 4x4 uint16>"),
        (1.0, False, "1.0"),
        (10**400, False, "1e+400"),
        ("text", False, "'text'"),
        ("x" * 100, False, "'" + "x" * 36 + "..."),
    ],
)
def test_values_are_described_in_user_terms(value, signed, text):
    assert describe_value(value, signed=signed) == text


def test_a_shortened_parameter_name_is_refused_too():
    from concert.devices.cameras.dummy import Camera
    from concert.devices.motors.dummy import LinearMotor
    from concert.exceptions import ParameterNameError

    camera, motor = Camera(), LinearMotor()
    for device, name, meant, value in (
        (camera, "exposure", "exposure_time", 4 * q.ms),
        (camera, "Exposure_Time", "exposure_time", 4 * q.ms),
        (motor, "pos", "position", 4 * q.mm),
        (motor, "velo", "velocity", 1 * q.mm / q.s),
    ):
        before = device[meant].get().result(30)
        with pytest.raises(ParameterNameError, match=f"did you mean {meant!r}"):
            setattr(device, name, value)
        assert name not in vars(device)
        assert device[meant].get().result(30) == before
    motor.note = "kept as any attribute"  # not a shortening of a parameter: allowed
    assert motor.note == "kept as any attribute"


def test_a_length_for_a_dimensionless_quantity_names_the_unit_it_needs():
    class Lens(Device):
        magnification = Quantity(q.dimensionless, help="how much larger")

        def _get_magnification(self):
            return 2 * q.dimensionless

        def _set_magnification(self, value):
            pass

    with pytest.raises(UnitError, match=r"1 mm cannot be expressed in dimensionless$"):
        Lens().magnification = 1 * q.mm
