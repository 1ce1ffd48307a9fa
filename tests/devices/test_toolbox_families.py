"""The toolbox's device families: positioners (also in pixels), detectors, grippers and the selectors.

Positions are checked against the motors (the ground truth), not against
what the positioner reports; refusals must name the device, the call and
the value, and leave every motor where it was. Stopping a positioner --
cancel, Ctrl-C (real SIGINTs), abort() -- must stop all of its motors
part-way.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from concurrent.futures import CancelledError
from typing import Any, Callable, List

import numpy as np
import pytest

from concert.devices.attenuatorboxes.dummy import AttenuatorBox
from concert.devices.cameras.dummy import Camera
from concert.devices.detectors import base as detectors_base
from concert.devices.detectors.dummy import Detector
from concert.devices.grippers.dummy import Gripper
from concert.devices.lenschangers.dummy import LensChanger
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.devices.positioners import dummy, imaging
from concert.devices.positioners.base import ROTATION, TRANSLATION, Axis, Positioner
from concert.devices.samplechangers.dummy import SampleChanger
from concert.dispatcher import dispatcher
from concert.exceptions import (
    ConfigurationError,
    DeviceError,
    HardLimitError,
    LimitError,
    LockError,
    ParameterDefinitionError,
    ReadAccessError,
    SoftLimitError,
    StateError,
    UnitError,
    WaitError,
    WriteAccessError,
)
from concert.parameters import Quantity
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT
from tests.devices.test_families import recording

MAIN = threading.main_thread()
signals = pytest.mark.skipif(threading.current_thread() is not MAIN, reason="signals go to the main thread")
NAN = math.nan


class CountingMotor(LinearMotor):
    """A simulated linear motor that records its hardware moves and fails them while ``broken``."""

    broken = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.moves: List[Any] = []

    def _move_real(self, position: Any) -> None:
        self.moves.append(position)
        if self.broken:
            raise RuntimeError("encoder lost")
        super()._move_real(position)


def counting_positioner(**kwargs: Any) -> Positioner:
    """A positioner on three counting linear motors along x, y and z."""
    return Positioner([Axis(c, CountingMotor(**kwargs)) for c in "xyz"])


def motors(positioner: Positioner, kind: str = TRANSLATION) -> List[Any]:
    return [axis.motor for axis in positioner.axes if axis.kind == kind]


def mm(*values: float) -> Any:
    return q.Quantity(np.array(values, dtype=float), q.mm)


def assert_vector(actual: Any, expected: Any, unit: Any) -> None:
    assert actual.units == unit
    np.testing.assert_allclose(actual.m_as(unit), expected.m_as(unit), atol=1e-6, equal_nan=True)


def started(positioner: Positioner, distance: Any = 100 * q.mm):
    """Start a move by ``distance`` along x, y and z; return the future once every motor moves."""
    future = positioner.move(q.Quantity(np.array([1.0, 1.0, 1.0]) * distance.m_as(q.mm), q.mm))
    busy_wait(
        lambda: all(motor.position > 1 * q.mm for motor in motors(positioner)) or future.done(),
        sleep_time=0.001,
        timeout=TIMEOUT,
    )
    assert not future.done(), "the move ended before all motors were seen moving"
    return future


def assert_all_stopped_part_way(positioner: Positioner, target: Any = 100 * q.mm) -> None:
    for motor in motors(positioner):
        assert motor.state == "standby"
        position = motor.position
        assert 0 * q.mm < position < target, f"{motor!r} at {position}"
        assert motor.position == position  # and it stays there


def interrupt_when(condition: Callable[[], bool]) -> threading.Thread:
    """Send SIGINT to the main thread once ``condition()`` holds; return the (started) thread."""

    def run() -> None:
        busy_wait(condition, sleep_time=0.001, timeout=TIMEOUT)
        signal.pthread_kill(MAIN.ident, signal.SIGINT)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# -- axes and construction ----------------------------------------------------------------


def test_axis_kind_follows_the_motor():
    linear, rotation = LinearMotor(), RotationMotor()
    axis = Axis("y", linear, direction=-1, position=2 * q.mm)
    assert (axis.kind, axis.coordinate, axis.motor, axis.direction) == (TRANSLATION, "y", linear, -1)
    assert axis.position == 2 * q.mm
    assert axis.name == "y axis" and repr(linear) in repr(axis)
    turn = Axis("z", rotation)
    assert turn.kind == ROTATION and turn.position == 0 * q.deg and turn.name == "rotation about z"


class Clock(LinearMotor):
    """Not a motor: its position is a time."""

    position = Quantity(q.s)

    def _get_position(self) -> Any:
        return 0 * q.s


@pytest.mark.parametrize(
    "args, kwargs, error, text",
    [
        (("w", LinearMotor()), {}, ConfigurationError, "'x', 'y' or 'z', not 'w'"),
        (("X", LinearMotor()), {}, ConfigurationError, "not 'X'"),
        (("x", 5), {}, DeviceError, "5 is not a motor"),
        (("x", Camera()), {}, DeviceError, "is not a motor"),
        (("x", Clock()), {}, DeviceError, "neither a length"),
        (("x", LinearMotor()), {"direction": 2}, ConfigurationError, "direction must be 1 or -1, not 2"),
        (("x", LinearMotor()), {"direction": True}, ConfigurationError, "not True"),
        (("x", LinearMotor()), {"position": 1 * q.deg}, UnitError, "position=1 deg"),
        (("x", LinearMotor()), {"position": 3}, UnitError, "position=3"),
        (("x", LinearMotor()), {"position": NAN * q.mm}, LimitError, "not a finite number"),
    ],
)
def test_axis_refuses_what_it_cannot_use(args, kwargs, error, text):
    with pytest.raises(error) as info:
        Axis(*args, **kwargs)
    assert text in str(info.value) and "Axis(" in str(info.value)


def test_positioner_refuses_bad_axes():
    motor = LinearMotor()
    cases = [
        ([], "at least one Axis"),
        (5, "must be a list of Axis objects"),
        ([motor], "is not an Axis"),
        ([Axis("x", LinearMotor()), Axis("x", LinearMotor())], "both the x axis"),
        ([Axis("x", motor), Axis("y", motor)], f"{motor!r} drives two axes"),
    ]
    for axes, text in cases:
        with pytest.raises(ConfigurationError, match=text.replace("(", r"\(").replace(")", r"\)")):
            Positioner(axes)
    with pytest.raises(UnitError, match="position="):
        Positioner([Axis("x", LinearMotor())], position=[1, 2, 3])
    with pytest.raises(LimitError, match="NaN"):
        Positioner([Axis("x", LinearMotor())], position=mm(1, NAN, 0))


# -- reading and writing position and orientation -------------------------------------------


def test_position_reads_the_motors_in_the_laboratory_frame():
    x, y, z = LinearMotor(position=3 * q.mm), LinearMotor(position=5 * q.mm), LinearMotor()
    positioner = Positioner(
        [Axis("x", x, direction=-1, position=1 * q.mm), Axis("y", y), Axis("z", z, position=-2 * q.mm)],
        position=mm(10, 20, 30),
    )
    # x = 10 - (3 - 1), y = 20 + 5, z = 30 + (0 + 2)
    assert_vector(positioner.position, mm(8, 25, 32), q.mm)
    assert_vector(positioner.origin, mm(10, 20, 30), q.mm)
    assert np.isnan(positioner.orientation.m_as(q.deg)).all()


def test_writing_position_moves_every_motor_to_its_own_target():
    x, y, z = LinearMotor(), LinearMotor(), LinearMotor()
    positioner = Positioner(
        [Axis("x", x, direction=-1, position=1 * q.mm), Axis("y", y), Axis("z", z, position=-2 * q.mm)],
        position=mm(10, 20, 30),
    )
    positioner.position = mm(8, 25, 32)
    assert (x.position, y.position, z.position) == (3 * q.mm, 5 * q.mm, 0 * q.mm)
    positioner.position = (9 * q.mm, 2 * q.cm, 30000 * q.um)  # a sequence of quantities, mixed units
    assert (x.position, y.position, z.position) == (2 * q.mm, 0 * q.mm, -2 * q.mm)
    positioner["position"].set(mm(10, 20, 30)).join(TIMEOUT)
    assert (x.position, y.position, z.position) == (1 * q.mm, 0 * q.mm, -2 * q.mm)


def test_orientation_reads_and_turns_the_rotation_motors():
    positioner = dummy.Positioner()
    about_x, about_y, about_z = motors(positioner, ROTATION)
    positioner.orientation = [10, -20, 30] * q.deg
    assert (about_x.position, about_y.position, about_z.position) == (10 * q.deg, -20 * q.deg, 30 * q.deg)
    positioner.rotate([5, 0, 0] * q.deg).join(TIMEOUT)
    assert about_x.position == 15 * q.deg and about_y.position == -20 * q.deg
    assert_vector(positioner.orientation, [15, -20, 30] * q.deg, q.deg)
    with pytest.raises(UnitError, match="cannot be expressed in deg"):
        positioner.rotate(mm(1, 0, 0)).join(TIMEOUT)
    assert_vector(positioner.position, mm(0, 0, 0), q.mm)  # the translations never moved


def test_relative_moves_and_the_directions_of_the_geometry():
    positioner = dummy.Positioner()
    x, y, z = motors(positioner)
    positioner.move(mm(1, 2, 3)).join(TIMEOUT)
    assert (x.position, y.position, z.position) == (1 * q.mm, 2 * q.mm, 3 * q.mm)
    steps = [
        (positioner.right, x, 1),
        (positioner.left, x, -1),
        (positioner.up, y, 1),
        (positioner.down, y, -1),
        (positioner.forward, z, 1),
        (positioner.back, z, -1),
    ]
    for method, motor, sign in steps:
        before = [m.position for m in (x, y, z)]
        method(500 * q.um).join(TIMEOUT)
        after = [m.position for m in (x, y, z)]
        for m, old, new in zip((x, y, z), before, after):
            expected = old + sign * 0.5 * q.mm if m is motor else old
            assert abs(new - expected) < 1e-9 * q.mm, (method.__name__, m, new, expected)
    assert_vector(positioner.position, mm(1, 2, 3), q.mm)


def test_a_reversed_axis_moves_its_motor_the_other_way():
    x = LinearMotor()
    positioner = Positioner([Axis("x", x, direction=-1)])
    positioner.right(2 * q.mm).join(TIMEOUT)
    assert x.position == -2 * q.mm
    assert_vector(positioner.position, mm(2, NAN, NAN), q.mm)


def test_missing_axes_read_nan_and_accept_only_zero_or_nan():
    positioner = counting_positioner()
    planar = Positioner(positioner.axes[:2])
    x, y, z = motors(positioner)
    assert_vector(planar.position, mm(0, 0, NAN), q.mm)
    planar.position = mm(1, 2, 0)
    planar.position = mm(1, 3, NAN)
    planar.move(mm(1, 0, 0)).join(TIMEOUT)
    assert (x.position, y.position, z.position) == (2 * q.mm, 3 * q.mm, 0 * q.mm)
    moves = len(x.moves) + len(y.moves)
    for action in (
        lambda: setattr(planar, "position", mm(0, 0, 5)),
        lambda: planar.move(mm(0, 0, 1)).join(TIMEOUT),
        lambda: planar.forward(1 * q.mm).join(TIMEOUT),
        lambda: planar.rotate([0, 1, 0] * q.deg).join(TIMEOUT),
    ):
        with pytest.raises(WriteAccessError) as info:
            action()
        message = str(info.value)
        assert repr(planar) in message and "has no" in message and "nothing moved" in message
    with pytest.raises(WriteAccessError, match="the z component is 5 mm"):
        planar.position = mm(0, 0, 5)
    assert len(x.moves) + len(y.moves) == moves and z.moves == []
    planar.stash().join(TIMEOUT)  # what reads NaN can be written back
    planar.position = mm(7, 7, 0)
    planar.restore().join(TIMEOUT)
    assert (x.position, y.position) == (2 * q.mm, 3 * q.mm)


@pytest.mark.parametrize(
    "value, error, text",
    [
        ([1, 2, 3], UnitError, "the x component, 1, is not a quantity in mm"),
        (mm(1, 2), UnitError, "is not a 3-vector"),
        (5 * q.mm, UnitError, "is not a 3-vector"),
        ("1 mm", UnitError, "is not a 3-vector"),
        ([1, 2, 3] * q.s, UnitError, "cannot be expressed in mm"),
        ((1 * q.mm, 2 * q.deg, 0 * q.mm), UnitError, "the y component, 2 deg, cannot be expressed"),
        ((1 * q.mm, q.Quantity("5", "mm"), 0 * q.mm), UnitError, "is a string"),
        (mm(1, math.inf, 0), LimitError, "the y component is not a finite number"),
        (mm(NAN, 0, 0), LimitError, "the x component is NaN"),
        (q.Quantity(np.array([10**400, 0, 0], dtype=object), q.mm), LimitError, "too large"),
    ],
)
def test_bad_vectors_are_refused_before_anything_moves(value, error, text):
    positioner = counting_positioner()
    with pytest.raises(error) as info:
        positioner.position = value
    assert text in str(info.value) and repr(positioner) in str(info.value)
    with pytest.raises(error, match=rf"{positioner!r}\.move\("):
        positioner.move(value).join(TIMEOUT)
    assert all(motor.moves == [] for motor in motors(positioner))
    assert_vector(positioner.position, mm(0, 0, 0), q.mm)


@pytest.mark.parametrize("value", [2, 2 * q.s, 2 * q.pixel, q.Quantity(NAN, q.mm)])
def test_steps_refuse_what_is_not_a_length(value):
    positioner = counting_positioner()
    error = LimitError if isinstance(value, q.Quantity) and value.units == q.mm else UnitError
    with pytest.raises(error, match=rf"{positioner!r}\.right\("):
        positioner.right(value).join(TIMEOUT)
    assert all(motor.moves == [] for motor in motors(positioner))


# -- limits, locks and states are respected before anything moves ----------------------------


def test_a_target_beyond_one_axis_hard_limit_moves_no_axis():
    positioner = counting_positioner()
    x, y, z = motors(positioner)
    with pytest.raises(HardLimitError) as info:
        positioner.position = mm(5, 1500, 5)
    message = str(info.value)
    assert f"{positioner!r}.position = [5, 1500, 5] mm" in message
    assert f"the y axis, {y!r}" in message and "1500 mm" in message and "hardware limit 1 m" in message
    with pytest.raises(HardLimitError, match=rf"{positioner!r}\.up\(\+2 m\): the y axis"):
        positioner.up(2 * q.m).join(TIMEOUT)
    assert x.moves == y.moves == z.moves == []
    assert_vector(positioner.position, mm(0, 0, 0), q.mm)


def test_soft_limits_of_a_motor_are_respected_too():
    positioner = counting_positioner()
    x, y, z = motors(positioner)
    z["position"].upper = 10 * q.mm
    positioner.move(mm(1, 1, 9)).join(TIMEOUT)
    with pytest.raises(SoftLimitError, match=rf"the z axis, {z!r}, would have to go to 11 mm"):
        positioner.move(mm(1, 1, 2)).join(TIMEOUT)
    assert [len(m.moves) for m in (x, y, z)] == [1, 1, 1]
    assert_vector(positioner.position, mm(1, 1, 9), q.mm)


def test_a_locked_or_failed_motor_refuses_before_anything_moves():
    positioner = counting_positioner()
    x, y, z = motors(positioner)
    y["position"].lock()
    with pytest.raises(LockError, match=rf"the y axis, {y!r}, has its position locked"):
        positioner.position = mm(1, 1, 1)
    y["position"].unlock()
    z.broken = True
    with pytest.raises(RuntimeError, match="encoder lost"):
        z.move(1 * q.mm).join(TIMEOUT)
    assert z.state == "error" and positioner.state == "error"
    with pytest.raises(StateError) as info:
        positioner.move(mm(1, 1, 1)).join(TIMEOUT)
    assert info.value.error_state == "error" and f"the z axis, {z!r}, is in state 'error'" in str(info.value)
    assert x.moves == y.moves == [] and len(z.moves) == 1


def test_state_follows_the_motors(asynchronous):
    positioner = dummy.Positioner()
    assert positioner.state == "standby"
    with pytest.raises(WriteAccessError):
        positioner.state = "moving"
    future = started(positioner)
    assert positioner.state == "moving"
    positioner.stop().join(TIMEOUT)
    future.join(TIMEOUT)
    assert positioner.state == "standby"


# -- the axes move together, and stop together -------------------------------------------------


def test_the_axes_move_together(asynchronous):
    positioner = dummy.Positioner()
    x, y, z = motors(positioner)
    future = positioner.move(mm(50, 50, 50))  # 0.5 s per axis at 100 mm/s
    busy_wait(lambda: z.position > 1 * q.mm, sleep_time=0.001, timeout=TIMEOUT)
    assert x.position < 50 * q.mm, "x had finished before z started: the axes moved one after the other"
    future.join(TIMEOUT)
    assert (x.position, y.position, z.position) == (50 * q.mm, 50 * q.mm, 50 * q.mm)


def test_motions_queue_and_relative_moves_add_up(asynchronous):
    positioner = dummy.Positioner()
    futures = [positioner.move(mm(0.5, -0.5, 0.25)) for _ in range(20)]
    futures += [positioner.right(1 * q.mm) for _ in range(5)]
    for future in futures:
        future.join(TIMEOUT)
    x, y, z = motors(positioner)
    assert (x.position, y.position, z.position) == (15 * q.mm, -10 * q.mm, 5 * q.mm)


def test_cancel_stops_every_axis_part_way(asynchronous):
    positioner = dummy.Positioner()
    future = started(positioner)
    assert future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError, match=rf"{positioner!r}\.move\(.*\) was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    assert_all_stopped_part_way(positioner)
    positioner.move(mm(1, 1, 1)).join(TIMEOUT)  # and it works normally afterwards


@signals
def test_ctrl_c_while_waiting_stops_every_axis(asynchronous):
    positioner = dummy.Positioner()
    future = started(positioner)
    with pytest.raises(KeyboardInterrupt):
        begin = time.monotonic()
        interrupter = interrupt_when(lambda: time.monotonic() - begin > 0.05)  # while this joins
        future.join(TIMEOUT)
    interrupter.join(TIMEOUT)
    assert future.cancelled()
    assert_all_stopped_part_way(positioner)


@signals
def test_ctrl_c_in_a_blocking_write_stops_every_axis(asynchronous):
    positioner = dummy.Positioner()
    interrupter = interrupt_when(lambda: all(m.position > 1 * q.mm for m in motors(positioner)))
    with pytest.raises(KeyboardInterrupt):
        positioner.position = mm(100, 100, 100)
    interrupter.join(TIMEOUT)
    assert_all_stopped_part_way(positioner)


@signals
def test_ctrl_c_in_synchronous_mode_stops_the_axis_moving_and_starts_no_other(synchronous):
    positioner = dummy.Positioner()
    x, y, z = motors(positioner)
    interrupter = interrupt_when(lambda: x.position > 1 * q.mm)
    with pytest.raises(KeyboardInterrupt):
        positioner.position = mm(100, 100, 100)  # one axis after the other, in this thread
    interrupter.join(TIMEOUT)
    assert 0 * q.mm < x.position < 100 * q.mm and x.state == "standby"
    assert y.position == z.position == 0 * q.mm


def test_abort_from_another_thread_stops_every_axis(asynchronous):
    positioner = dummy.Positioner()
    future = started(positioner)
    stopper = threading.Thread(target=positioner.abort)
    stopper.start()
    stopper.join(TIMEOUT)
    with pytest.raises(CancelledError, match=r"was stopped by abort\(\)"):
        future.result(TIMEOUT)
    assert_all_stopped_part_way(positioner)


def test_abort_of_a_blocking_write_in_synchronous_mode(synchronous):
    positioner = dummy.Positioner()
    x, y, z = motors(positioner)

    def stop() -> None:
        busy_wait(lambda: x.position > 1 * q.mm, sleep_time=0.001, timeout=TIMEOUT)
        positioner.abort()

    stopper = threading.Thread(target=stop)
    stopper.start()
    with pytest.raises(CancelledError, match=r"position = \[100, 100, 100\] mm was stopped by abort\(\)"):
        positioner.position = mm(100, 100, 100)
    stopper.join(TIMEOUT)
    assert 0 * q.mm < x.position < 100 * q.mm and y.position == z.position == 0 * q.mm


def test_emergency_stop_stops_every_axis(asynchronous):
    positioner = dummy.Positioner()
    future = started(positioner)
    positioner.emergency_stop()
    with pytest.raises(CancelledError, match=r"emergency_stop\(\)"):
        future.result(TIMEOUT)
    assert_all_stopped_part_way(positioner)
    positioner.emergency_stop()  # idempotent, and harmless at rest


def test_stop_ends_the_motion_normally_part_way(asynchronous):
    positioner = dummy.Positioner()
    future = started(positioner)
    positioner.stop().join(TIMEOUT)
    future.join(TIMEOUT)  # not cancelled: stopped, as a motor's move is by its stop()
    assert not future.cancelled()
    assert_all_stopped_part_way(positioner)


def test_wait_for_a_position(asynchronous):
    positioner = dummy.Positioner()
    positioner.move(mm(20, 0, 0))
    positioner["position"].wait(mm(20, 0, 0), sleep_time=0.01, timeout=TIMEOUT).join(TIMEOUT)
    assert motors(positioner)[0].position == 20 * q.mm
    with pytest.raises(WaitError):
        positioner["position"].wait(mm(NAN, 5, NAN), eps=1 * q.um, sleep_time=0.01, timeout=0.05).join(
            TIMEOUT
        )


# -- detectors ---------------------------------------------------------------------------------


class OblongCamera(Camera):
    """A simulated camera with sensor pixels 13 µm high (and 6.5 µm wide)."""

    def _get_sensor_pixel_height(self) -> Any:
        return 13 * q.um


def test_detector_pixel_size_is_the_sensor_pixel_over_the_magnification():
    camera = OblongCamera()
    detector = Detector(camera, magnification=10)
    assert detector.camera is camera
    assert detector.pixel_width == camera.sensor_pixel_width / 10
    assert abs(detector.pixel_width - 0.65 * q.um) < 1e-12 * q.um
    assert abs(detector.pixel_height - 1.3 * q.um) < 1e-12 * q.um
    detector.magnification = 2
    assert abs(detector.pixel_width - 3.25 * q.um) < 1e-12 * q.um
    assert Detector().pixel_width == Camera().sensor_pixel_width  # magnification 1 by default


@pytest.mark.parametrize(
    "value, error, text",
    [
        (0, LimitError, "0 is not positive"),
        (-2, SoftLimitError, "below the soft limit"),
        (1 * q.mm, UnitError, "magnification"),
    ],
)
def test_detector_refuses_a_magnification_that_is_not_positive(value, error, text):
    detector = Detector(magnification=5)
    with pytest.raises(error, match=text) as info:
        detector.magnification = value
    assert repr(detector) in str(info.value) and "magnification" in str(info.value)
    assert detector.magnification == 5
    with pytest.raises(error):
        Detector(magnification=value)


def test_detector_needs_a_camera_and_the_base_names_what_is_missing():
    for camera in (None, 5, LinearMotor()):
        with pytest.raises(DeviceError, match="is not a camera"):
            detectors_base.Detector(camera)
    detector = detectors_base.Detector(Camera())
    for name in ("magnification", "pixel_width", "pixel_height"):
        with pytest.raises(ReadAccessError, match="magnification"):
            detector[name].read()
    with pytest.raises(WriteAccessError, match="cannot change its magnification"):
        detector.magnification = 2


# -- positioning in pixels -------------------------------------------------------------------------


def test_imaging_positioner_moves_in_pixels_of_the_detector():
    detector = Detector(OblongCamera(), magnification=10)  # pixels 0.65 µm wide, 1.3 µm high
    positioner = dummy.ImagingPositioner(detector)
    x, y, z = motors(positioner)
    assert positioner.detector is detector
    positioner.right(100 * q.pixel).join(TIMEOUT)
    positioner.up(10 * q.pixel).join(TIMEOUT)
    positioner.back(20 * q.pixel).join(TIMEOUT)  # z uses the pixel width
    assert (x.position, y.position, z.position) == (65 * q.um, 13 * q.um, -13 * q.um)
    assert_vector(positioner.position, [100, 10, -20] * q.pixel, q.pixel)
    positioner.position = [0, -10, 0] * q.pixel
    assert (x.position, y.position, z.position) == (0 * q.mm, -13 * q.um, 0 * q.mm)
    positioner.move([4, 0, 0] * q.pixel).join(TIMEOUT)
    detector.magnification = 5  # pixels twice as large: the same place is half as many pixels away
    assert_vector(positioner.position, [2, -5, 0] * q.pixel, q.pixel)
    positioner.rotate([0, 90, 0] * q.deg).join(TIMEOUT)
    assert motors(positioner, ROTATION)[1].position == 90 * q.deg


def test_imaging_positioner_refuses_lengths_and_non_detectors():
    positioner = dummy.ImagingPositioner()
    with pytest.raises(UnitError, match="not a quantity in pixel"):
        positioner.right(1 * q.mm).join(TIMEOUT)
    with pytest.raises(UnitError, match="cannot be expressed in pixel"):
        positioner.position = mm(1, 0, 0)
    with pytest.raises(HardLimitError, match="the x axis"):
        positioner.right(1e9 * q.pixel).join(TIMEOUT)
    assert all(motor.position == 0 * q.mm for motor in motors(positioner))
    with pytest.raises(DeviceError, match="is not a detector"):
        imaging.Positioner([Axis("x", LinearMotor())], Camera())


# -- grippers ------------------------------------------------------------------------------------


class CountingGripper(Gripper):
    """Records the jaws' motions; fails them while ``broken``."""

    broken = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.motions: List[str] = []

    def _grip_real(self) -> None:
        self.motions.append("grip")
        if self.broken:
            raise RuntimeError("jaw jammed")
        super()._grip_real()

    def _release_real(self) -> None:
        self.motions.append("release")
        if self.broken:
            raise RuntimeError("jaw jammed")
        super()._release_real()


def test_gripper_grips_and_releases_and_announces_it():
    gripper = Gripper(move_time=0.01 * q.s)
    assert gripper.state == "released"
    with recording(gripper, ("moving", "gripped", "released")) as received:
        gripper.grip().join(TIMEOUT)
        assert gripper.state == "gripped" and gripper._holding
        gripper.release().join(TIMEOUT)
        dispatcher.flush(TIMEOUT)
    assert received == ["moving", "gripped", "moving", "released"]
    assert gripper.state == "released" and not gripper._holding


@pytest.mark.parametrize(
    "method, state", [("grip", "gripped"), ("release", "released"), ("reset", "released")]
)
def test_gripper_refuses_calls_in_the_wrong_state(method, state):
    gripper = CountingGripper(move_time=0 * q.s)
    if state == "gripped":
        gripper.grip().join(TIMEOUT)
        gripper.motions.clear()
    with pytest.raises(StateError) as info:
        getattr(gripper, method)().join(TIMEOUT)
    message = str(info.value)
    assert repr(gripper) in message and method in message and repr(state) in message
    assert info.value.error_state == state and gripper.motions == [] and gripper.state == state


def test_gripper_failure_and_reset():
    gripper = CountingGripper(move_time=0 * q.s)
    gripper.broken = True
    with pytest.raises(RuntimeError, match="jaw jammed"):
        gripper.grip().join(TIMEOUT)
    assert gripper.state == "error" and "jaw jammed" in gripper["state"].error
    with pytest.raises(StateError):
        gripper.release().join(TIMEOUT)
    gripper.broken = False
    gripper.reset().join(TIMEOUT)
    assert gripper.state == "released" and gripper.motions == ["grip", "release"]


def test_gripper_motion_takes_time_and_concurrent_grips_take_turns(asynchronous):
    gripper = CountingGripper(move_time=0.2 * q.s)
    begin = time.monotonic()
    futures = [gripper.grip() for _ in range(5)]
    gripper["state"].wait("moving", sleep_time=0.001, timeout=TIMEOUT).join(TIMEOUT)
    errors = [future.exception(TIMEOUT) for future in futures]
    assert time.monotonic() - begin >= 0.19
    assert sum(error is None for error in errors) == 1
    assert all(isinstance(error, StateError) for error in errors if error is not None)
    assert gripper.motions == ["grip"] and gripper.state == "gripped"


def test_a_grip_cannot_be_cancelled_half_way(asynchronous):
    gripper = Gripper(move_time=0.2 * q.s)
    future = gripper.grip()
    gripper["state"].wait("moving", sleep_time=0.001, timeout=TIMEOUT).join(TIMEOUT)
    assert future.cancel(timeout=TIMEOUT) is False  # it finished: jaws never stop half-closed
    assert gripper.state == "gripped" and gripper._holding


@signals
def test_ctrl_c_during_a_grip_comes_once_the_jaws_are_closed(synchronous):
    gripper = Gripper(move_time=0.3 * q.s)
    interrupter = interrupt_when(lambda: gripper["state"]._software == "moving")
    with pytest.raises(KeyboardInterrupt):
        gripper.grip()
    interrupter.join(TIMEOUT)
    assert gripper.state == "gripped" and gripper._holding


# -- lens changers, sample changers, attenuator boxes ------------------------------------------


class Family:
    """How one selector family is driven in these tests."""

    def __init__(self, cls: type, name: str, hook: str, choices: str, default: Any, none: bool) -> None:
        self.cls, self.name, self.hook, self.choices, self.default, self.none = (
            cls,
            name,
            hook,
            choices,
            default,
            none,
        )

    def __repr__(self) -> str:
        return self.cls.__name__

    def counting(self, **kwargs: Any) -> Any:
        """An instance of a subclass that records (and, while ``broken``, fails) hardware changes."""
        original = getattr(self.cls, self.hook)

        def record(device: Any, value: Any) -> None:
            device.changes.append(value)
            if device.broken:
                raise RuntimeError("motor stalled")
            original(device, value)

        subclass = type(f"Counting{self.cls.__name__}", (self.cls,), {self.hook: record, "broken": False})
        device = subclass(**kwargs)
        device.changes = []
        return device


FAMILIES = [
    Family(LensChanger, "objective", "_set_objective_real", "objectives", "5x", none=False),
    Family(SampleChanger, "sample", "_set_sample_real", "samples", None, none=True),
    Family(AttenuatorBox, "attenuator", "_set_attenuator_real", "attenuators", None, none=True),
]


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_selector_defaults_and_choices(family):
    device = family.cls()
    names = getattr(device, family.choices)
    assert len(names) == 3 and all(isinstance(name, str) for name in names)
    assert getattr(device, family.name) == family.default and device.state == "standby"
    assert device[family.name].values == ([None] if family.none else []) + names
    custom = family.cls(**{family.choices: ["a", "b"], family.name: "b"})
    assert getattr(custom, family.name) == "b" and getattr(custom, family.choices) == ["a", "b"]
    assert "b" in str(custom)


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_selector_changes_take_time_and_show_moving(family, asynchronous):
    device = family.counting(move_time=0.2 * q.s)
    target = getattr(device, family.choices)[1]
    begin = time.monotonic()
    future = device[family.name].set(target)
    device["state"].wait("moving", sleep_time=0.001, timeout=TIMEOUT).join(TIMEOUT)
    future.join(TIMEOUT)
    assert time.monotonic() - begin >= 0.19
    assert getattr(device, family.name) == target and device.state == "standby"
    assert device.changes == [target]


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_selector_refuses_an_unknown_name_naming_the_choices(family):
    device = family.counting(move_time=0 * q.s)
    for value in ("nonsense", 1, None) if not family.none else ("nonsense", 1):
        with pytest.raises(WriteAccessError) as info:
            setattr(device, family.name, value)
        message = str(info.value)
        assert repr(device) in message and family.name in message and repr(value) in message
        assert all(repr(name) in message for name in getattr(device, family.choices))
    assert device.changes == [] and getattr(device, family.name) == family.default
    with pytest.raises(WriteAccessError, match="nonsense"):
        family.cls(**{family.name: "nonsense"})


@pytest.mark.parametrize("family", [f for f in FAMILIES if f.none], ids=repr)
def test_none_means_nothing_in_place(family):
    device = family.cls(move_time=0 * q.s)
    first = getattr(device, family.choices)[0]
    setattr(device, family.name, first)
    assert getattr(device, family.name) == first
    setattr(device, family.name, None)
    assert getattr(device, family.name) is None


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize(
    "names, text",
    [
        ("abc", "not one string"),
        ([], "is empty"),
        (["a", "a"], "given twice"),
        (["a", 3], "3 is not a name"),
        (5, "list"),
    ],
)
def test_selector_choices_must_be_distinct_names(family, names, text):
    with pytest.raises(ParameterDefinitionError, match=text):
        family.cls(**{family.choices: names})


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_selector_failure_puts_it_into_error_until_reset(family):
    device = family.counting(move_time=0 * q.s)
    names = getattr(device, family.choices)
    device.broken = True
    with pytest.raises(RuntimeError, match="motor stalled"):
        setattr(device, family.name, names[1])
    assert device.state == "error"
    device.broken = False
    with pytest.raises(StateError, match=r"not allowed in state 'error'"):
        setattr(device, family.name, names[2])
    device.reset().join(TIMEOUT)
    assert device.state == "standby"
    with pytest.raises(StateError):
        device.reset().join(TIMEOUT)
    setattr(device, family.name, names[2])
    assert getattr(device, family.name) == names[2]


@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_selector_writes_from_several_threads_queue(family, asynchronous):
    device = family.counting(move_time=0.05 * q.s)
    names = getattr(device, family.choices)
    futures = [device[family.name].set(name) for name in names * 2]
    for future in futures:
        future.join(TIMEOUT)  # none refused: each waits for the change before it
    assert len(device.changes) == 6 and getattr(device, family.name) in names


def test_sample_exchange_unmounts_first_and_the_same_sample_moves_nothing(asynchronous):
    changer = SampleChanger(move_time=0.1 * q.s)
    begin = time.monotonic()
    changer.sample = "sample 1"  # one motion: mount
    changer.sample = "sample 2"  # two: unmount, mount
    changer.sample = "sample 2"  # none
    elapsed = time.monotonic() - begin
    assert 0.29 <= elapsed < 0.29 + 1.0 and changer.sample == "sample 2"
    begin = time.monotonic()
    changer.sample = None  # one: unmount
    assert 0.09 <= time.monotonic() - begin and changer.sample is None


def test_a_lens_change_cannot_be_cancelled_half_way(asynchronous):
    changer = LensChanger(move_time=0.2 * q.s)
    future = changer.set_objective("20x")
    changer["state"].wait("moving", sleep_time=0.001, timeout=TIMEOUT).join(TIMEOUT)
    assert future.cancel(timeout=TIMEOUT) is False
    assert changer.objective == "20x" and changer.state == "standby"
