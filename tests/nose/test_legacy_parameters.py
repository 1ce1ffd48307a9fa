"""Legacy-style tests of parameters, selections, states and cancel_operation (SPEC §14).

Written as a script of the futures era would be: ``unittest.TestCase``
classes importing only the legacy names. They pass under
``nosetests --disable-async tests/nose/test_legacy_parameters.py`` and under
pytest, in either mode; the one test that needs a running operation switches
asynchronous execution on for its duration through the legacy
``concert.helpers.DISABLE``.
"""

from __future__ import annotations

import threading
import unittest
from concurrent.futures import CancelledError

import concert.helpers
from concert.base import (
    FSMError,
    LimitError,
    Parameter,
    Quantity,
    ReadAccessError,
    RunnableParameterizable,
    Selection,
    State,
    StateError,
    TransitionNotAllowed,
    WriteAccessError,
    check,
    transition,
)
from concert.devices.base import Device
from concert.devices.dummy import DummyDevice, SelectionDevice
from concert.helpers import async_
from concert.quantities import q

TIMEOUT = 30


class Motor(Device):
    state = State(default="standby")
    position = Quantity(q.mm, external_lower_getter=lambda motor: -5 * q.mm)
    filter = Selection(["Al", "Cu", "none"])

    def __init__(self):
        super().__init__()
        self._position = 0 * q.mm
        self._filter = "none"

    def _get_position(self):
        return self._position

    def _set_position(self, position):
        self._position = position

    def _get_target_position(self):
        return self._position

    def _get_filter(self):
        return self._filter

    def _set_filter(self, name):
        self._filter = name

    @async_
    @check(source="moving", target="standby")
    @transition(target="standby")
    def stop(self):
        pass


class TestSelection(unittest.TestCase):
    def setUp(self):
        self.device = SelectionDevice()

    def test_values(self):
        self.assertEqual(self.device["selection"].values, list(range(3)))

    def test_write_allowed_values(self):
        for value in range(3):
            self.device.selection = value
            self.assertEqual(self.device.selection, value)
        self.device.set_selection(1).join()
        self.assertEqual(self.device.get_selection().result(), 1)

    def test_write_other_values(self):
        self.device.selection = 2
        for value in (-1, 3, "0", None, 1.5):
            self.assertRaises(WriteAccessError, setattr, self.device, "selection", value)
        self.assertRaises(WriteAccessError, self.device["selection"].set(3).join)
        self.assertEqual(self.device.selection, 2)

    def test_message_names_the_allowed_values(self):
        motor = Motor()
        with self.assertRaises(WriteAccessError) as context:
            motor.filter = "Pb"
        self.assertIn("['filter'] cannot be set to 'Pb'", str(context.exception))
        self.assertIn("'Al', 'Cu', 'none'", str(context.exception))


class TestParameterValue(unittest.TestCase):
    def setUp(self):
        self.motor = Motor()

    def test_target(self):
        self.assertTrue(self.motor["position"].target_readable)
        self.motor.position = 2 * q.mm
        self.assertEqual(self.motor["position"].target, 2 * q.mm)
        self.assertFalse(self.motor["filter"].target_readable)
        self.assertRaises(ReadAccessError, getattr, self.motor["filter"], "target")

    def test_info_table(self):
        text = str(self.motor["position"].info_table)
        for shown in ("position", "0 mm", "-5.0 mm", "None"):
            self.assertIn(shown, text)
        self.assertIn("Al, Cu, none", str(self.motor["filter"].info_table))

    def test_external_limits(self):
        self.assertEqual(self.motor["position"].lower, -5 * q.mm)
        self.assertEqual(self.motor["position"].upper, None)
        self.motor["position"].lower = -1 * q.mm
        self.assertEqual(self.motor["position"].lower, -1 * q.mm)
        self.assertRaises(LimitError, setattr, self.motor, "position", -2 * q.mm)


class TestStates(unittest.TestCase):
    def test_no_default(self):
        class Lamp(Device):
            state = State()

        self.assertRaises(StateError, getattr, Lamp(), "state")

    def test_legacy_names(self):
        motor = Motor()
        for error in (FSMError, TransitionNotAllowed, StateError):
            self.assertRaises(error, motor.stop().join)
        self.assertEqual(motor.state, "standby")


class TestCancelOperation(unittest.TestCase):
    def test_cancel_runs_it(self):
        disabled = concert.helpers.DISABLE
        concert.helpers.DISABLE = False  # a running operation is needed to cancel one
        try:
            started, stopped, calls = threading.Event(), threading.Event(), []

            @async_
            def long_operation():
                started.set()
                self.assertTrue(stopped.wait(TIMEOUT))

            def stop():
                calls.append("stop")
                stopped.set()

            future = long_operation()
            self.assertTrue(started.wait(TIMEOUT))
            future.cancel_operation = stop
            self.assertIs(future.cancel_operation, stop)
            self.assertTrue(future.cancel(timeout=TIMEOUT))
            self.assertEqual(calls, ["stop"])
            self.assertRaises(CancelledError, future.result, TIMEOUT)
        finally:
            concert.helpers.DISABLE = disabled

    def test_refuses_what_cannot_be_called(self):
        future = DummyDevice().do_nothing()
        with self.assertRaises(TypeError):
            future.cancel_operation = "stop"
        self.assertIsNone(future.cancel_operation)


class TestDevicesAndRunnables(unittest.TestCase):
    def test_dummy_device(self):
        device = DummyDevice()
        device.value = 15
        self.assertEqual(device.value, 15)
        self.assertEqual(device.get_value().result(), 15)
        self.assertIsNone(device.do_nothing().result(TIMEOUT))

    def test_runnable(self):
        class Counter(RunnableParameterizable):
            count = Parameter()

            def __init__(self):
                super().__init__()
                self._count = 0

            def _get_count(self):
                return self._count

            def _run(self):
                self._count += 1
                return self._count

        counter = Counter()
        self.assertEqual(counter.run().result(TIMEOUT), 1)
        self.assertEqual(counter.count, 1)

    def test_typing(self):
        from concert.typing import ArrayLike, QuantityType

        self.assertIsNotNone(ArrayLike)
        self.assertIsInstance(1 * q.mm, QuantityType)
