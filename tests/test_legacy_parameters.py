"""The legacy API's parameters (SPEC §14): Selection, info_table, target, limits, states, cancel_operation.

Also the legacy module paths of this area: ``concert.typing``,
``concert.base.RunnableParameterizable`` and ``concert.devices.dummy``.
"""

from __future__ import annotations

import concurrent.futures
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import concert.base
import concert.parameters
import concert.typing
from concert.base import (
    AccessorNotImplementedError,
    FSMError,
    HardLimitError,
    LockError,
    Parameter,
    ParameterDefinitionError,
    Quantity,
    ReadAccessError,
    RunnableParameterizable,
    Selection,
    SelectionValue,
    SoftLimitError,
    State,
    StateError,
    TransitionNotAllowed,
    WriteAccessError,
    check,
    transition,
)
from concert.devices.base import Device
from concert.devices.dummy import DummyDevice, SelectionDevice
from concert.exceptions import CancelActionError, ConcertError
from concert.futures import Future, async_, on_cancel
from concert.naming import describe_value
from concert.quantities import q
from tests.conftest import TIMEOUT

# -- Selection ---------------------------------------------------------------------------------


class Chooser(Device):
    """A selection that records every setter call, so tests can prove none happened."""

    state = State(default="standby")
    channel = Selection(range(3), help="Input channel")
    energy = Selection([5 * q.keV, 10 * q.keV])
    guarded = Selection(["a", "b"], check=check(source="standby", target="standby"))

    def __init__(self) -> None:
        self.calls: list = []
        self._channel = 0
        self._energy = 5 * q.keV
        self._guarded = "a"
        super().__init__()

    def _get_channel(self):
        return self._channel

    def _set_channel(self, value):
        self.calls.append(("channel", value))
        self._channel = value

    def _get_energy(self):
        return self._energy

    def _set_energy(self, value):
        self.calls.append(("energy", value))
        self._energy = value

    def _get_guarded(self):
        return self._guarded

    def _set_guarded(self, value):
        self.calls.append(("guarded", value))
        self._guarded = value

    @async_
    @check(source="standby", target="busy")
    @transition(target="busy")
    def occupy(self):
        pass


def test_selection_is_exported_by_both_modules():
    for name in ("Selection", "SelectionValue", "RunnableParameterizable"):
        assert name in concert.parameters.__all__ and name in concert.base.__all__
        assert getattr(concert.base, name) is getattr(concert.parameters, name)
    for name in ("FSMError", "TransitionNotAllowed", "ParameterDefinitionError", "CancelActionError"):
        assert name in concert.base.__all__


def test_selection_accepts_its_values_and_the_setter_gets_the_member():
    chooser = Chooser()
    assert isinstance(chooser["channel"], SelectionValue)
    chooser.channel = 2
    assert chooser.channel == 2
    chooser.channel = 1.0  # equal to 1: the setter receives the member of the set, 1
    chooser.channel = np.int64(0)
    chooser["channel"].set(2).join(TIMEOUT)
    chooser.energy = 5000 * q.eV
    assert chooser.calls == [
        ("channel", 2),
        ("channel", 1),
        ("channel", 0),
        ("channel", 2),
        ("energy", 5 * q.keV),
    ]
    assert type(chooser.calls[1][1]) is int and type(chooser.calls[2][1]) is int
    assert str(chooser.calls[-1][1].units) == "kiloelectron_volt"


def test_selection_values_are_the_allowed_values_in_order_and_a_copy():
    chooser = Chooser()
    assert chooser["channel"].values == [0, 1, 2]
    chooser["channel"].values.append(7)
    assert chooser["channel"].values == [0, 1, 2]
    with pytest.raises(WriteAccessError):
        chooser.channel = 7
    assert Chooser.channel.values == (0, 1, 2)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.integers().filter(lambda number: number not in (0, 1, 2)),
        st.floats(allow_nan=True).filter(lambda number: number not in (0, 1, 2)),
        st.text(max_size=8),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=3),
    )
)
def test_selection_refuses_every_value_outside_its_set(value):
    chooser = Chooser()
    chooser.channel = 1
    before = list(chooser.calls)
    with pytest.raises(WriteAccessError) as info:
        chooser.channel = value
    message = str(info.value)
    assert message.startswith(f"{chooser!r}['channel'] cannot be set to ")
    assert message.endswith("it is not one of the allowed values 0, 1, 2")
    assert chooser.calls == before and chooser.channel == 1


def test_selection_refusal_names_the_value_in_user_terms_and_also_fails_a_future():
    chooser = Chooser()
    with pytest.raises(
        WriteAccessError, match=r"Chooser#\d+\['energy'\] cannot be set to 7 keV: .* 5 keV, 10 keV$"
    ):
        chooser.energy = 7 * q.keV
    with pytest.raises(WriteAccessError, match=r"cannot be set to 3: it is not one of the allowed values"):
        chooser["channel"].set(3).join(TIMEOUT)
    with pytest.raises(WriteAccessError, match=r"cannot be set to 3"):
        chooser.set_channel(3).join(TIMEOUT)
    assert chooser.calls == []


def test_a_selection_is_checked_after_the_lock_and_before_the_state():
    chooser = Chooser()
    chooser["guarded"].lock()
    with pytest.raises(LockError):
        chooser.guarded = "z"
    chooser["guarded"].unlock()
    chooser.occupy().join(TIMEOUT)
    with pytest.raises(WriteAccessError, match="allowed values 'a', 'b'"):
        chooser.guarded = "z"  # a bad value is refused before the state is looked at
    with pytest.raises(StateError, match=r"guarded = 'b' is not allowed in state 'busy'"):
        chooser.guarded = "b"
    assert chooser.calls == []


def test_a_long_selection_lists_its_first_values_and_how_many_there_are():
    class Wheel(Device):
        slot = Selection(range(100))

        def _set_slot(self, value):
            pass

    with pytest.raises(
        WriteAccessError, match=r"0, 1, 2, 3, 4, 5, 6, 7, 8, 9, \.\.\. \(100 values in all\)$"
    ):
        Wheel().slot = 100


def test_a_selection_reads_an_iterator_once_and_keeps_it():
    class Filters(Device):
        name = Selection(iter(["Al", "Cu"]))

        def _set_name(self, value):
            self.written = value

    first, second = Filters(), Filters()
    first.name = "Cu"
    assert first.written == "Cu" and second["name"].values == ["Al", "Cu"]


@pytest.mark.parametrize(
    "iterable, message",
    [
        ([], r"Selection\(\[\]\): there are no values to select from"),
        (range(0), r"there are no values to select from; give at least one, e\.g\. Selection\(range\(3\)\)"),
        (
            "AUTO",
            r"Selection\('AUTO'\): a string is not a set of values; "
            r"list them instead, e\.g\. Selection\(\['AUTO'\]\)",
        ),
        (5, r"Selection\(5\): the allowed values must be given as an iterable"),
    ],
)
def test_wrongly_declared_selections_are_refused_when_the_class_is_defined(iterable, message):
    with pytest.raises(ParameterDefinitionError, match=message) as info:

        class Broken(Device):
            choice = Selection(iterable)

    assert isinstance(info.value, ConcertError) and isinstance(info.value, ValueError)


def test_reading_a_selection_is_not_checked():
    class Drifting(Device):
        choice = Selection(range(3))

        def _get_choice(self):
            return 7  # hardware may report anything

    assert Drifting().choice == 7


# -- info_table --------------------------------------------------------------------------------


class Stage(Device):
    position = Quantity(
        q.mm,
        lower=-10 * q.mm,
        external_upper_getter=lambda stage: stage.hardware_upper,
        help="Stage position",
    )
    height = Quantity(q.mm, help="Where it goes")
    label = Parameter(help="A name")
    secret = Parameter()
    broken = Parameter()

    def __init__(self) -> None:
        super().__init__()
        self.hardware_upper = 20 * q.mm
        self._position = 1 * q.mm
        self._label = "stage"

    def _get_position(self):
        return self._position

    def _set_position(self, value):
        self._position = value

    def _get_height(self):
        return 3 * q.mm

    def _get_target_height(self):
        return 4 * q.mm

    def _set_height(self, value):
        pass

    def _get_label(self):
        return self._label

    def _set_label(self, value):
        self._label = value

    def _set_secret(self, value):
        pass

    def _get_broken(self):
        raise RuntimeError("sensor unplugged")


def rows(table):
    return {row[0]: row[1] for row in table.rows}


def test_info_table_of_a_quantity():
    stage = Stage()
    table = stage["position"].info_table
    assert table.field_names == ["Attribute", "Value"]
    assert [row[0] for row in table.rows] == ["name", "value", "unit", "lower", "upper", "locked", "help"]
    assert rows(table) == {
        "name": "position",
        "value": "1 mm",
        "unit": "mm",
        "lower": "-10.0 mm",
        "upper": "20.0 mm",
        "locked": "no",
        "help": "Stage position",
    }
    stage["position"].lock()
    assert rows(stage["position"].info_table)["locked"] == "yes"
    assert "| position" in str(stage["position"].info_table)


def test_info_table_of_plain_parameters_selections_and_states():
    stage, chooser = Stage(), Chooser()
    assert rows(stage["label"].info_table) == {
        "name": "label",
        "value": "stage",
        "locked": "no",
        "help": "A name",
    }
    assert rows(stage["secret"].info_table)["value"] == "<cannot be read>"
    assert rows(stage["broken"].info_table)["value"] == "<RuntimeError: sensor unplugged>"
    assert rows(chooser["channel"].info_table) == {
        "name": "channel",
        "value": "0",
        "values": "0, 1, 2",
        "locked": "no",
        "help": "Input channel",
    }
    assert rows(chooser["energy"].info_table)["values"] == "5 keV, 10 keV"
    assert rows(chooser["state"].info_table)["value"] == "standby"


def test_info_table_shows_a_failing_limit_instead_of_failing():
    stage = Stage()
    stage.hardware_upper = 3  # a hardware getter reporting a bare number
    assert rows(stage["position"].info_table)["upper"].startswith("<UnitError: ")


# -- target ------------------------------------------------------------------------------------


def test_target_readable_and_target():
    stage = Stage()
    assert stage["height"].target_readable is True
    assert stage["height"].target == 4 * q.mm
    assert stage["height"].get_target().result(TIMEOUT) == 4 * q.mm
    assert stage["position"].target_readable is False
    with pytest.raises(ReadAccessError) as info:
        _ = stage["position"].target
    assert str(info.value) == (
        f"{stage!r}['position'] has no target value: it has no target getter "
        "(fget_target, or a method _get_target_position())"
    )


def test_a_target_getter_that_is_not_implemented_is_a_read_access_error():
    class Half(Device):
        level = Parameter()

        def _get_target_level(self):
            raise AccessorNotImplementedError("this model reports no target")

    half = Half()
    assert half["level"].target_readable
    with pytest.raises(
        ReadAccessError, match=r"Half#\d+\['level'\] has no target: this model reports no target"
    ):
        _ = half["level"].target


# -- limits that include the hardware's ------------------------------------------------------


class Table(Device):
    height = Quantity(
        q.mm,
        external_lower_getter=lambda table: table.hardware_lower,
        external_upper_getter=lambda table: table.hardware_upper,
    )

    def __init__(self) -> None:
        super().__init__()
        self.hardware_lower, self.hardware_upper = -5 * q.mm, 5 * q.mm
        self.written: list = []

    def _get_height(self):
        return 0 * q.mm

    def _set_height(self, value):
        self.written.append(value)


def test_limits_are_the_hardware_ones_when_no_soft_ones_are_set():
    table = Table()
    assert table["height"].lower == -5 * q.mm and table["height"].upper == 5 * q.mm
    table.hardware_upper = 4 * q.mm  # asked at every read
    assert table["height"].upper == 4 * q.mm


def test_limits_are_the_tighter_of_soft_and_hardware():
    table = Table()
    table["height"].lower = -2 * q.mm  # tighter than the hardware's -5 mm
    table["height"].upper = 100 * q.mm  # looser than the hardware's 5 mm
    assert table["height"].lower == -2 * q.mm and table["height"].upper == 5 * q.mm
    table["height"].lower = None  # the soft limit is off: the hardware's remains
    assert table["height"].lower == -5 * q.mm


def test_limits_are_none_only_without_any_limit():
    table = Table()
    table.hardware_lower = None
    assert table["height"].lower is None and table["height"].upper == 5 * q.mm
    table["height"].lower = -1 * q.mm
    assert table["height"].lower == -1 * q.mm


def test_writes_still_say_which_limit_refused_them():
    table = Table()
    table["height"].upper = 3 * q.mm
    with pytest.raises(SoftLimitError, match="above the soft limit 3 mm"):
        table.height = 4 * q.mm
    table["height"].upper = 10 * q.mm
    with pytest.raises(HardLimitError, match="above the hardware limit 5 mm"):
        table.height = 6 * q.mm
    table.height = table["height"].upper  # the limit itself is allowed
    assert table.written == [5 * q.mm]


def test_a_soft_limit_cannot_cross_the_hardware_one_on_the_other_side():
    table = Table()
    with pytest.raises(concert.base.LimitError, match=r"lower limit 6 mm above the upper limit 5 mm"):
        table["height"].lower = 6 * q.mm
    assert table["height"].lower == -5 * q.mm


# -- states --------------------------------------------------------------------------------------


class Lamp(Device):
    state = State()

    @async_
    @check(source=["off", "on"], target="on")
    @transition(target="on")
    def switch_on(self):
        pass

    @async_
    @check(source="*", target="off")
    @transition(target="off")
    def initialise(self):
        pass


def test_a_state_without_default_cannot_be_read_until_a_transition_sets_it():
    lamp = Lamp()
    with pytest.raises(StateError) as info:
        _ = lamp.state
    assert str(info.value) == (
        f"{lamp!r}['state'] cannot be read: it has no default (State(default=...)), {lamp!r} has no "
        "_get_state() and no transition has set it yet"
    )
    assert info.value.error_state is None
    with pytest.raises(StateError, match="no transition has set it yet"):
        lamp.switch_on().join(TIMEOUT)  # its check cannot read the state either
    lamp.initialise().join(TIMEOUT)
    assert lamp.state == "off"
    lamp.switch_on().join(TIMEOUT)
    assert lamp.state == "on"


def test_a_state_without_default_but_with_a_getter_reads_the_hardware():
    class Sensor(Device):
        state = State()

        def _get_state(self):
            return "ready"

    assert Sensor().state == "ready"


def test_the_legacy_names_catch_a_refused_transition():
    class Shutter(Device):
        state = State(default="closed")

        @async_
        @check(source="open", target="closed")
        def close(self):
            pass

    assert issubclass(StateError, TransitionNotAllowed) and issubclass(TransitionNotAllowed, FSMError)
    assert str(FSMError("cannot go there")) == "cannot go there"  # as legacy code raises it
    assert str(TransitionNotAllowed("not now")) == "not now"
    shutter = Shutter()
    for legacy in (FSMError, TransitionNotAllowed, StateError, ConcertError):
        with pytest.raises(legacy, match=r"Shutter#\d+\.close\(\) is not allowed in state 'closed'"):
            shutter.close().join(TIMEOUT)
    try:
        shutter.close().join(TIMEOUT)
    except FSMError as error:
        assert error.error_state == "closed"


# -- Future.cancel_operation ----------------------------------------------------------------


@pytest.fixture
def blocked_call(asynchronous):
    """A running call that has no stop action of its own and ends when ``release`` is set."""
    started, release = threading.Event(), threading.Event()

    @async_
    def wait_for_release():
        started.set()
        assert release.wait(TIMEOUT)
        return "finished"

    future = wait_for_release()
    assert started.wait(TIMEOUT)
    yield future, release
    release.set()
    assert concurrent.futures.wait([future], TIMEOUT).not_done == set()


def test_an_assigned_cancel_operation_is_run_once_by_cancel(blocked_call):
    future, release = blocked_call
    calls = []

    def stop():
        calls.append("stop")
        release.set()

    assert future.cancel_operation is None
    future.cancel_operation = stop
    assert future.cancel_operation is stop
    assert future.cancel(timeout=TIMEOUT) is True
    assert calls == ["stop"] and future.cancelled()
    with pytest.raises(CancelledError, match=r"was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    assert future.cancel(timeout=TIMEOUT) is True and calls == ["stop"]  # a second cancel runs nothing


def test_a_raising_cancel_operation_withdraws_the_request(blocked_call):
    future, release = blocked_call

    def broken_stop():
        raise RuntimeError("controller does not answer")

    future.cancel_operation = broken_stop
    with pytest.raises(RuntimeError, match="controller does not answer"):
        future.cancel(timeout=TIMEOUT)
    release.set()
    assert future.result(TIMEOUT) == "finished" and not future.cancelled()


def test_assigning_again_replaces_and_none_unregisters(blocked_call):
    future, release = blocked_call
    calls = []
    first, second = (lambda: calls.append("first")), (lambda: (calls.append("second"), release.set()))
    future.cancel_operation = first
    future.cancel_operation = second
    assert future.cancel(timeout=TIMEOUT) is True
    assert calls == ["second"]


def test_none_unregisters_the_cancel_operation(blocked_call):
    future, release = blocked_call
    calls = []
    future.cancel_operation = lambda: calls.append("stop")
    future.cancel_operation = None
    assert future.cancel_operation is None
    with pytest.raises(concert.base.WaitError, match=r"did not stop within 0\.05 s"):
        future.cancel(timeout=0.05)  # nothing stops it: it has no stop action any more
    release.set()
    assert future.result(TIMEOUT) == "finished" and calls == []


def test_cancel_operation_is_a_registered_cancel_action(blocked_call):
    future, _ = blocked_call
    calls = []

    def stop():
        calls.append("stop")

    future.cancel_operation = stop
    future.remove_cancel_action(stop)  # the one registry: removing it there removes it
    with pytest.raises(concert.base.WaitError):
        future.cancel(timeout=0.05)
    assert calls == []


def test_cancel_operation_runs_together_with_the_call_s_own_stop_actions(asynchronous):
    started, release, order = threading.Event(), threading.Event(), []

    @async_
    def move():
        on_cancel(lambda: (order.append("own"), release.set()))
        started.set()
        assert release.wait(TIMEOUT)

    future = move()
    assert started.wait(TIMEOUT)
    future.cancel_operation = lambda: order.append("assigned")
    assert future.cancel(timeout=TIMEOUT) is True
    assert order == ["assigned", "own"]  # the most recent first, as for every stop action


@pytest.mark.parametrize("value", [5, "motor.stop", [print]])
def test_cancel_operation_refuses_what_cannot_be_called(value):
    future = Future("LinearMotor#1.move(+5 mm)")
    future.cancel_operation = print
    with pytest.raises(CancelActionError) as info:
        future.cancel_operation = value
    assert str(info.value).startswith("LinearMotor#1.move(+5 mm): cancel_operation must be a callable")
    assert str(info.value).endswith(f"or None, not {describe_value(value)}")
    assert isinstance(info.value, TypeError)
    assert future.cancel_operation is print  # the previous one stays


def test_cancel_operation_on_a_finished_future_does_nothing():
    future = DummyDevice().do_nothing()
    future.join(TIMEOUT)
    calls = []
    future.cancel_operation = lambda: calls.append("stop")
    assert future.cancel() is False and calls == []


# -- concert.typing, RunnableParameterizable, concert.devices.dummy -------------------------------


def test_concert_typing_names_the_types_of_concert_values():
    from concert.typing import ArrayLike, Frame, NDArray, Number, QuantityType, TimeLike, UnitType

    assert isinstance(2 * q.mm, QuantityType) and isinstance(q.mm, UnitType)
    assert Frame is np.ndarray and ArrayLike is not None and NDArray is not None
    assert QuantityType in TimeLike.__args__ and float in TimeLike.__args__
    assert Number is not None
    assert set(concert.typing.__all__) == {
        "ArrayLike",
        "Frame",
        "NDArray",
        "Number",
        "QuantityType",
        "TimeLike",
        "UnitType",
    }


def test_runnable_parameterizable_runs_its_job_as_a_future():
    class Scan(RunnableParameterizable):
        points = Parameter()

        def __init__(self):
            super().__init__()
            self._points = 3

        def _get_points(self):
            return self._points

        def _run(self):
            return list(range(self.points))

    scan = Scan()
    future = scan.run()
    assert isinstance(future, Future)
    assert future.result(TIMEOUT) == [0, 1, 2]
    assert future.name == f"{scan!r}.run()"
    assert [value.name for value in scan] == ["points"]


def test_a_runnable_without_a_job_says_so_when_waited_for():
    class Nothing(RunnableParameterizable):
        pass

    future = Nothing().run()
    with pytest.raises(
        AccessorNotImplementedError, match=r"Nothing#\d+ cannot be run: Nothing does not implement _run\(\)"
    ):
        future.join(TIMEOUT)


def test_dummy_device_keeps_any_value_and_does_nothing_asynchronously():
    device = DummyDevice()
    assert device.value == 0 and DummyDevice(value=3).value == 3
    device.value = "anything"
    assert device.value == "anything"
    device["value"].set(5 * q.mm).join(TIMEOUT)
    assert device.get_value().result(TIMEOUT) == 5 * q.mm
    future = device.do_nothing()
    assert isinstance(future, Future) and future.result(TIMEOUT) is None
    assert [value.name for value in device] == ["value"]
    assert type(DummyDevice.value) is Parameter


def test_selection_device_selects_out_of_range_3():
    device = SelectionDevice()
    assert device.selection == 0 and device["selection"].values == [0, 1, 2]
    device.selection = 2
    assert device.selection == 2
    with pytest.raises(
        WriteAccessError, match=r"SelectionDevice#\d+\['selection'\] cannot be set to 3: .* 0, 1, 2$"
    ):
        device.selection = 3
    assert device.selection == 2
