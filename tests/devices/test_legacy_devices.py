"""The legacy API of devices (SPEC §14): abort futures, push streams, convert, buffered and
simulated cameras, IO signals, the open dummy shutter."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest

from concert.coroutines.base import coroutine
from concert.devices import base as devices_base
from concert.devices.base import Device, DeviceError, abort
from concert.devices.cameras import base as cameras_base
from concert.devices.cameras.base import CameraError, identity
from concert.devices.cameras.dummy import Base, BufferedCamera, Camera
from concert.devices.io.base import IODeviceError, Signal
from concert.devices.io.dummy import IO
from concert.devices.motors.dummy import LinearMotor
from concert.devices.shutters.dummy import Shutter
from concert.exceptions import (
    AccessorNotImplementedError,
    ConcertError,
    LimitError,
    ParameterError,
    StateError,
    UnitError,
    WaitError,
)
from concert.futures import Future, wait
from concert.imaging import ImageWithMetadata
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT

SOFTWARE = Camera.trigger_sources.SOFTWARE


def numbers(frames):
    return [frame.metadata["frame"] for frame in frames]


def small_camera(cls=Camera, **kwargs):
    return cls(sensor_width=32 * q.pixel, sensor_height=16 * q.pixel, **kwargs)


def software_camera(cls=Camera, **kwargs):
    camera = small_camera(cls, **kwargs)
    camera.trigger_source = SOFTWARE
    return camera


@coroutine
def collect(into, stop_after=None, camera=None):
    """A push-style consumer appending every frame; stops ``camera`` recording after ``stop_after``."""
    while True:
        into.append((yield))
        if stop_after is not None and len(into) == stop_after:
            camera.stop_recording().join(TIMEOUT)


@coroutine
def take(count, into):
    """A consumer that finishes (returns) after ``count`` frames."""
    for _ in range(count):
        into.append((yield))


# -- abort() returns a future -------------------------------------------------------------------


class FailingStop(Device):
    """A device whose hardware stop fails (after it was called)."""

    def __init__(self):
        super().__init__()
        self.stops = 0
        self.emergencies = 0

    def _abort(self):
        self.stops += 1
        raise OSError("controller does not answer")

    def _emergency_stop(self):
        self.emergencies += 1


@pytest.mark.parametrize("mode", ["asynchronous", "synchronous"])
def test_abort_returns_a_future_finished_on_return(mode, request):
    request.getfixturevalue(mode)
    camera = small_camera()
    camera.start_recording().join(TIMEOUT)
    future = camera.abort()
    assert isinstance(future, Future) and future.done() and not future.cancelled()
    assert future.result() is None and future.join() is future
    assert camera.state == "standby"
    assert repr(camera) in future.name and "abort()" in future.name


def test_abort_of_a_moving_motor_is_over_when_it_returns(asynchronous):
    motor = LinearMotor(motion_velocity=10 * q.mm / q.s)
    move = motor.move(100 * q.mm)
    busy_wait(lambda: motor.state == "moving", sleep_time=0.001, timeout=TIMEOUT)
    stopping = motor.abort()
    assert stopping.done() and motor.state == "standby"
    with pytest.raises(CancelledError, match=r"was stopped by abort\(\)"):
        move.result(TIMEOUT)
    at = motor.position
    motor.move(1 * q.mm).join(TIMEOUT)  # work submitted after the abort runs normally
    assert abs(motor.position - at - 1 * q.mm) < 1 * q.nm


def test_a_failing_stop_is_in_the_future_and_every_step_was_taken():
    device = FailingStop()
    future = device.abort()
    assert future.done() and isinstance(future.exception(), OSError)
    with pytest.raises(OSError, match="controller does not answer"):
        future.join()
    assert device.stops == 1


def test_abort_is_idempotent():
    motor = LinearMotor()
    futures = [motor.abort() for _ in range(3)]
    assert all(future.done() and future.result() is None for future in futures)
    assert motor.state == "standby"


def test_emergency_stop_still_blocks_and_raises_and_also_returns_a_future():
    device = FailingStop()
    with pytest.raises(OSError, match="controller does not answer"):
        device.emergency_stop()
    assert device.stops == 1 and device.emergencies == 1  # the emergency part ran despite the failure
    motor = LinearMotor()
    future = motor.emergency_stop()
    assert isinstance(future, Future) and future.done() and future.join() is future


def test_module_abort_stops_every_device_and_returns_their_futures_in_order(asynchronous):
    motors = [LinearMotor(motion_velocity=10 * q.mm / q.s) for _ in range(3)]
    moves = [motor.move(100 * q.mm) for motor in motors]
    busy_wait(lambda: all(motor.state == "moving" for motor in motors), sleep_time=0.001, timeout=TIMEOUT)
    futures = abort(motors)
    assert len(futures) == 3 and all(future.done() for future in futures)
    assert [future.name for future in futures] == [f"{motor!r}.abort()" for motor in motors]
    wait(futures, TIMEOUT)
    assert all(motor.state == "standby" for motor in motors)
    for move in moves:
        with pytest.raises(CancelledError, match=r"stopped by abort\(\)"):
            move.result(TIMEOUT)


@pytest.mark.parametrize("mode", ["asynchronous", "synchronous"])
def test_module_abort_goes_on_past_failures_and_things_that_are_not_devices(mode, request):
    request.getfixturevalue(mode)
    failing, camera = FailingStop(), small_camera()
    camera.start_recording().join(TIMEOUT)
    futures = abort([failing, "motor", camera])
    assert all(future.done() for future in futures)
    assert isinstance(futures[0].exception(), OSError)
    error = futures[1].exception()
    assert isinstance(error, DeviceError) and isinstance(error, ConcertError)
    assert "item 1, 'motor', is not a device" in str(error)
    assert futures[2].result() is None and camera.state == "standby"  # still stopped
    with pytest.raises(OSError):
        wait(futures)  # the first failure, in order
    assert abort([]) == []


def test_module_abort_is_the_legacy_name():
    assert devices_base.abort is abort


# -- stream(consumer) ------------------------------------------------------------------------


def test_stream_pushes_every_frame_until_recording_stops(asynchronous):
    camera = software_camera()
    received = []
    camera.start_recording().join(TIMEOUT)
    pushing = camera.stream(collect(received))
    assert isinstance(pushing, Future)
    for _ in range(5):
        camera.trigger().join(TIMEOUT)
    camera.stop_recording().join(TIMEOUT)  # recorded before the stop: still pushed
    assert pushing.result(TIMEOUT) == 5
    assert numbers(received) == [0, 1, 2, 3, 4]
    assert all(isinstance(frame, ImageWithMetadata) and frame.shape == (16, 32) for frame in received)
    assert camera.state == "standby"
    assert f"{camera!r}.stream(" in pushing.name


def test_stream_into_a_consumer_in_auto_mode_ends_after_a_stop(asynchronous):
    camera = small_camera()
    camera.frame_rate = 500 * q.Hz
    received = []
    with camera.recording():
        pushing = camera.stream(collect(received))
        busy_wait(lambda: len(received) >= 5, sleep_time=0.001, timeout=TIMEOUT)
    sent = pushing.result(TIMEOUT)
    assert sent == len(received) >= 5
    assert numbers(received) == list(range(sent))


def test_cancelling_the_stream_stops_pushing_and_leaves_the_recording(asynchronous):
    camera = software_camera()
    received = []
    with camera.recording():
        pushing = camera.stream(collect(received))
        for _ in range(2):
            camera.trigger().join(TIMEOUT)
        busy_wait(lambda: len(received) == 2, sleep_time=0.001, timeout=TIMEOUT)
        assert pushing.cancel(TIMEOUT)
        with pytest.raises(CancelledError, match=r"stream\(.*was stopped by cancel\(\)"):
            pushing.result(TIMEOUT)
        assert camera.state == "recording"  # left as it was
        camera.trigger().join(TIMEOUT)
        assert camera.grab(TIMEOUT).metadata["frame"] == 2  # nothing was taken after the cancel
        again = []
        second = camera.stream(collect(again))  # the camera can be streamed again
        camera.trigger().join(TIMEOUT)
        busy_wait(lambda: len(again) == 1, sleep_time=0.001, timeout=TIMEOUT)
    assert second.result(TIMEOUT) == 1
    assert numbers(received) == [0, 1] and numbers(again) == [3]


def test_abort_stops_a_running_stream(asynchronous):
    camera = software_camera()
    camera.start_recording().join(TIMEOUT)
    received = []
    pushing = camera.stream(collect(received))
    busy_wait(pushing.running, sleep_time=0.001, timeout=TIMEOUT)
    camera.abort().join(TIMEOUT)
    with pytest.raises(CancelledError, match=r"stopped by abort\(\)"):
        pushing.result(TIMEOUT)
    assert camera.state == "standby" and received == []


@pytest.mark.parametrize("state", ["standby", "error"])
def test_stream_into_a_consumer_needs_a_recording(state):
    camera = software_camera()
    if state == "error":
        camera["state"]._change("error", "simulated failure")
    received = []
    with pytest.raises(
        StateError, match=rf"^{camera!r}: stream\(consumer\) is not allowed in state '{state}'"
    ):
        camera.stream(collect(received))
    assert camera.state == state and received == []


def test_a_second_stream_into_a_consumer_is_refused_while_one_runs(asynchronous):
    camera = software_camera()
    first, second = [], []
    with camera.recording():
        pushing = camera.stream(collect(first))
        with pytest.raises(CameraError, match=rf"^{camera!r}: stream\(consumer\) refused: .*collect\(\)"):
            camera.stream(collect(second))
        camera.trigger().join(TIMEOUT)
        busy_wait(lambda: len(first) == 1, sleep_time=0.001, timeout=TIMEOUT)
    assert pushing.result(TIMEOUT) == 1 and second == []
    other = software_camera()  # other cameras are not concerned
    with other.recording():
        other.stream(collect(second)).cancel(TIMEOUT)


def test_consumers_that_are_no_primed_generators_are_refused():
    camera = software_camera()

    def unprimed():
        while True:
            yield

    finished = take(1, [])
    finished.close()
    with camera.recording():
        with pytest.raises(
            CameraError, match=r"unprimed\(\) is a generator that was never started.*@coroutine"
        ):
            camera.stream(unprimed())
        with pytest.raises(CameraError, match="has finished"):
            camera.stream(finished)
        with pytest.raises(UnitError, match=rf"{camera!r}: stream\(\): timeout="):
            camera.stream("fast")
        camera.trigger().join(TIMEOUT)
        assert camera.grab(TIMEOUT).metadata["frame"] == 0  # nothing was taken by the refusals


def test_timeouts_of_both_forms():
    camera = software_camera()
    with camera.recording():
        with pytest.raises(WaitError, match=r"stream\(consumer\) got no frame within 0.05 s"):
            camera.stream(collect([]), timeout=0.05).result(TIMEOUT)
        with pytest.raises(WaitError, match=r"stream\(\) got no frame within 0.05 s"):
            next(camera.stream(timeout=50 * q.ms))
        with pytest.raises(CameraError, match=r"stream\(1, timeout=2\): the timeout is given twice"):
            camera.stream(1, timeout=2)
        with pytest.raises(UnitError, match=r"stream\(consumer\): timeout="):
            camera.stream(collect([]), timeout=1 * q.m)
        camera.trigger().join(TIMEOUT)
        assert camera.grab(TIMEOUT).metadata["frame"] == 0


def test_a_consumer_that_finishes_ends_the_stream_and_leaves_the_other_frames():
    camera = software_camera()
    received = []
    with camera.recording():
        for _ in range(4):
            camera.trigger().join(TIMEOUT)
        assert camera.stream(take(2, received)).result(TIMEOUT) == 2
        assert numbers(received) == [0, 1]
        assert numbers([camera.grab(TIMEOUT), camera.grab(TIMEOUT)]) == [2, 3]


def test_a_failing_consumer_fails_the_stream_and_frees_the_camera():
    camera = software_camera()

    @coroutine
    def broken():
        yield
        raise ValueError("consumer broke")

    received = []
    with camera.recording():
        for _ in range(2):
            camera.trigger().join(TIMEOUT)
        with pytest.raises(ValueError, match="consumer broke"):
            camera.stream(broken()).result(TIMEOUT)
        pushing = camera.stream(take(1, received))  # no longer claimed by the failed stream
    assert pushing.result(TIMEOUT) == 1
    assert numbers(received) == [1]  # frame 0 went to the consumer that failed on it


def test_an_object_with_send_is_a_consumer_too(asynchronous):
    class Sink:
        def __init__(self):
            self.frames = []

        def send(self, frame):
            self.frames.append(frame)

    camera = software_camera()
    sink = Sink()
    with camera.recording():
        camera.trigger().join(TIMEOUT)
        pushing = camera.stream(sink)
    assert pushing.result(TIMEOUT) == 1 and numbers(sink.frames) == [0]


def test_under_disable_the_stream_runs_in_the_caller_and_the_consumer_can_stop_it(synchronous):
    camera = small_camera()
    camera.frame_rate = 1000 * q.Hz
    received = []
    camera.start_recording().join(TIMEOUT)
    pushing = camera.stream(collect(received, stop_after=3, camera=camera))
    assert pushing.done() and camera.state == "standby"
    assert pushing.result() == len(received) >= 3
    assert numbers(received) == list(range(len(received)))


# -- convert ---------------------------------------------------------------------------------------


def test_convert_is_the_identity_by_default():
    camera = small_camera()
    assert camera.convert is identity
    frame = camera.grab(TIMEOUT)
    assert camera.convert(frame) is frame


def test_convert_is_applied_everywhere_frames_are_read():
    camera = software_camera(BufferedCamera)
    raw = software_camera()
    camera.convert = np.fliplr
    with camera.recording(), raw.recording():
        for _ in range(5):
            camera.trigger().join(TIMEOUT)
            raw.trigger().join(TIMEOUT)
        expected = [raw.grab(TIMEOUT) for _ in range(5)]
        grabbed = camera.grab(TIMEOUT)
        grabbed_async = camera.grab_async(TIMEOUT).result(TIMEOUT)
        iterated = next(camera.stream(TIMEOUT))
        pushed = []
        camera.stream(take(1, pushed)).result(TIMEOUT)
    read_out = list(camera.readout_buffer())
    frames = [grabbed, grabbed_async, iterated, *pushed, *read_out]
    assert numbers(frames) == [0, 1, 2, 3, 4]
    for frame, original in zip(frames, expected):
        np.testing.assert_array_equal(frame, np.fliplr(original))
        assert isinstance(frame, ImageWithMetadata)
    single = camera.grab(TIMEOUT)  # a single frame outside the recording too
    assert single.metadata["trigger_source"] == "SOFTWARE"


def test_a_plain_array_from_convert_keeps_the_metadata_and_other_results_pass():
    camera = software_camera()
    camera.convert = lambda frame: np.asarray(frame, dtype=np.float32) / 2
    frame = camera.grab(TIMEOUT)
    assert isinstance(frame, ImageWithMetadata) and frame.dtype == np.float32
    assert frame.metadata["frame"] == 0
    camera.convert = lambda frame: float(frame.mean())
    assert isinstance(camera.grab(TIMEOUT), float)
    camera.convert = None
    assert camera.convert is identity


@pytest.mark.parametrize("value", [5, "fliplr", np.zeros(3)])
def test_a_convert_that_cannot_be_called_is_refused(value):
    camera = small_camera()
    camera.convert = np.flipud
    with pytest.raises(CameraError, match=rf"^{camera!r}\.convert must be a callable.*not "):
        camera.convert = value
    assert camera.convert is np.flipud


def test_an_exception_of_convert_reaches_the_reader():
    camera = software_camera()
    camera.convert = lambda frame: 1 / 0
    with camera.recording():
        camera.trigger().join(TIMEOUT)
        with pytest.raises(ZeroDivisionError):
            camera.grab(TIMEOUT)
        camera.convert = None
        camera.trigger().join(TIMEOUT)
        assert camera.grab(TIMEOUT).metadata["frame"] == 1  # the failed one counts as read


# -- BufferedCamera -------------------------------------------------------------------------------


def test_readout_buffer_yields_the_recorded_frames_after_the_recording():
    camera = software_camera(BufferedCamera)
    assert isinstance(camera, cameras_base.BufferedCamera) and isinstance(camera, Camera)
    with camera.recording():
        for _ in range(4):
            camera.trigger().join(TIMEOUT)
        with pytest.raises(
            StateError, match=rf"^{camera!r}: readout_buffer\(\) is not allowed in state 'recording'"
        ):
            camera.readout_buffer()
    assert camera.grab(TIMEOUT).metadata["frame"] == 0  # read once: by grab() ...
    assert numbers(camera.readout_buffer()) == [1, 2, 3]  # ... or by the readout
    assert list(camera.readout_buffer()) == []  # it never takes single frames


def test_readout_buffer_in_auto_mode_holds_what_was_complete_before_the_stop(asynchronous):
    camera = small_camera(BufferedCamera)
    camera.frame_rate = 1000 * q.Hz
    camera.start_recording().join(TIMEOUT)
    first = camera.grab(TIMEOUT)
    busy_wait(lambda: time.time() > first.metadata["timestamp"] + 0.02, sleep_time=0.002, timeout=TIMEOUT)
    camera.stop_recording().join(TIMEOUT)
    frames = list(camera.readout_buffer())
    assert len(frames) >= 15 and numbers(frames) == list(range(1, len(frames) + 1))


def test_a_buffered_camera_must_implement_the_readout():
    class NoReadout(cameras_base.BufferedCamera):
        pass

    camera = NoReadout()
    with pytest.raises(AccessorNotImplementedError, match="cannot read out its buffer"):
        list(camera.readout_buffer())


def test_the_error_state_refuses_the_readout():
    camera = software_camera(BufferedCamera)
    camera["state"]._change("error", "simulated failure")
    with pytest.raises(StateError, match="'error'"):
        camera.readout_buffer()


# -- the simulated camera: background, simulate, single frames -------------------------------------


def test_a_background_sets_the_sensor_and_gets_noise():
    background = np.full((20, 30), 400, dtype=np.uint16)
    background[5:10, 5:10] = 9000
    camera = Camera(background=background)
    assert (camera.sensor_width, camera.sensor_height) == (30 * q.pixel, 20 * q.pixel)
    assert (camera.roi_width, camera.roi_height) == (30 * q.pixel, 20 * q.pixel)
    with camera.recording():
        frames = [camera.grab(TIMEOUT) for _ in range(2)]
    for frame in frames:
        assert frame.dtype == np.uint16 and frame.shape == (20, 30)
        assert abs(float(frame[background == 400].mean()) - 400) < 5
        assert 15 < float(frame[background == 400].std()) < 25  # about sqrt(400)
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[0], background)
    assert camera.simulate and camera.background.shape == (20, 30)


def test_without_simulation_a_frame_is_the_background_itself():
    background = np.arange(12.0).reshape(3, 4)
    camera = Camera(background, simulate=False)
    background[0, 0] = 99  # the camera keeps a copy
    frame = camera.grab(TIMEOUT)
    np.testing.assert_array_equal(frame, np.arange(12.0).reshape(3, 4))
    assert frame.dtype == np.float64
    camera.roi_width, camera.roi_height = 2 * q.pixel, 2 * q.pixel
    camera.roi_x0, camera.roi_y0 = 1 * q.pixel, 1 * q.pixel
    np.testing.assert_array_equal(camera.grab(TIMEOUT), [[5.0, 6.0], [9.0, 10.0]])
    with pytest.raises(ValueError):
        camera.background[0, 0] = 1  # read-only


def test_without_simulation_the_built_in_pattern_does_not_drift():
    camera = small_camera(simulate=False)
    camera.frame_rate = 1000 * q.Hz
    with camera.recording():
        frames = [camera.grab(TIMEOUT) for _ in range(3)]
    assert numbers(frames) == [0, 1, 2]
    assert np.array_equal(frames[0], frames[1]) and np.array_equal(frames[1], frames[2])
    drifting = small_camera()
    drifting.frame_rate = 1000 * q.Hz
    with drifting.recording():
        moving = [drifting.grab(TIMEOUT) for _ in range(2)]
    np.testing.assert_array_equal(frames[0], moving[0])
    assert not np.array_equal(moving[0], moving[1])


@pytest.mark.parametrize(
    "background, text",
    [
        (np.zeros((2, 3, 4)), "3-D"),
        (np.zeros((0, 4)), "is not an image"),
        (np.zeros(5), "1-D"),
        (np.array([["a", "b"]]), "dtype <U1"),
        (np.zeros((2, 2), dtype=complex), "complex"),
        (np.zeros((2, 2), dtype=bool), "bool"),
        ([[1, 2], [3]], "is not an image"),
        (5, "0-D"),
        (np.array([[1.0, np.nan]]), "NaN or infinite"),
    ],
)
def test_a_background_that_is_not_an_image_is_refused(background, text):
    with pytest.raises(CameraError, match=r"^Camera: background=") as info:
        Camera(background=background)
    assert text in str(info.value)


def test_a_sensor_size_that_disagrees_with_the_background_is_refused():
    with pytest.raises(
        CameraError, match=r"sensor_width=64 pixel disagrees with the background, 4 x 3 pixels"
    ):
        Camera(np.zeros((3, 4)), sensor_width=64 * q.pixel)
    assert (
        Camera(np.zeros((3, 4)), sensor_width=4 * q.pixel, sensor_height=3 * q.pixel).roi_width == 4 * q.pixel
    )
    with pytest.raises(UnitError, match="sensor_height"):
        Camera(np.zeros((3, 4)), sensor_height=3)


def test_single_frames_come_only_after_every_recorded_frame(asynchronous):
    camera = software_camera()
    with camera.recording():
        for _ in range(3):
            camera.trigger().join(TIMEOUT)
    frames = [camera.grab(TIMEOUT) for _ in range(5)]
    assert [(f.metadata["frame"], f.metadata["trigger_source"]) for f in frames] == [
        (0, "SOFTWARE"),
        (1, "SOFTWARE"),
        (2, "SOFTWARE"),
        (0, "SOFTWARE"),
        (1, "SOFTWARE"),
    ]
    stamps = [frame.metadata["timestamp"] for frame in frames]
    assert stamps[3] >= stamps[2]


def test_a_grab_waiting_when_the_recording_stops_takes_no_single_frame(asynchronous):
    camera = software_camera()
    camera.start_recording().join(TIMEOUT)
    waiting = camera.grab_async()
    busy_wait(waiting.running, sleep_time=0.001, timeout=TIMEOUT)
    camera.stop_recording().join(TIMEOUT)
    with pytest.raises(StateError, match="found no frame"):
        waiting.result(TIMEOUT)
    assert camera.grab(TIMEOUT).metadata["frame"] == 0  # a grab started in standby does


def test_iterators_take_no_single_frames():
    camera = software_camera()
    with camera.recording():
        camera.trigger().join(TIMEOUT)
        stream = camera.stream(TIMEOUT)
    assert numbers(stream) == [0]


# -- subclassing the simulated base --------------------------------------------------------------


def test_base_is_a_camera_to_subclass_with_expose_real():
    class Ramp(Base):
        def _expose_real(self, number):
            return np.full((self.roi_height.magnitude, self.roi_width.magnitude), number, dtype=np.int32)

    camera = Ramp(sensor_width=8 * q.pixel, sensor_height=4 * q.pixel)
    camera.trigger_source = SOFTWARE
    with camera.recording():
        for _ in range(2):
            camera.trigger().join(TIMEOUT)
        frames = [camera.grab(TIMEOUT) for _ in range(2)]
    assert [int(frame[0, 0]) for frame in frames] == [0, 1] and frames[0].shape == (4, 8)
    assert set(frames[0].metadata) == {"frame", "timestamp", "exposure_time", "roi", "trigger_source"}
    assert isinstance(camera, cameras_base.Camera) and not isinstance(camera, Camera)


def test_a_legacy_subclass_implementing_grab_real_without_timeout_works():
    class Legacy(Base):
        def _grab_real(self):
            return np.ones((4, 4), dtype=np.uint8) * 7

    camera = Legacy()
    camera.trigger_source = SOFTWARE
    with camera.recording():
        camera.trigger().join(TIMEOUT)
        frame = camera.grab(TIMEOUT)
        with pytest.raises(WaitError):  # the timing is still the base's: no frame without a trigger
            camera.grab(0.05)
    assert frame.metadata["frame"] == 0 and int(frame[0, 0]) == 7
    assert camera.grab(TIMEOUT).metadata["trigger_source"] == "SOFTWARE"  # single frames too


def test_a_base_subclass_without_content_says_what_is_missing():
    class Empty(Base):
        pass

    class Nothing(Base):
        def _grab_real(self):
            return None

    for cls in (Empty, Nothing):
        camera = cls()
        with pytest.raises(CameraError, match=rf"^{camera!r}(:| cannot) .*(_expose_real|None)"):
            camera.grab(TIMEOUT)


def test_a_subclass_overriding_grab_real_with_a_timeout_keeps_it():
    class Halved(Camera):
        def _grab_real(self, timeout):
            frame = super()._grab_real(timeout)
            return None if frame is None else frame // 2

    camera = software_camera(Halved)
    raw = software_camera()
    for device in (camera, raw):
        with device.recording():
            device.trigger().join(TIMEOUT)
    np.testing.assert_array_equal(camera.grab(TIMEOUT), raw.grab(TIMEOUT) // 2)


# -- IO: IODeviceError, Signal, port_value -------------------------------------------------------------


class WritesIO(IO):
    """Records (port, value, time) of every hardware write."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.writes = []

    def _write_port_real(self, port, value):
        self.writes.append((port, value, time.monotonic()))
        super()._write_port_real(port, value)


def test_io_device_error_is_the_unknown_port_error():
    io = IO()
    assert issubclass(IODeviceError, ParameterError) and issubclass(IODeviceError, ConcertError)
    with pytest.raises(IODeviceError, match=rf"^{io!r} has no port 9"):
        io.read_port(9).result(TIMEOUT)
    with pytest.raises(IODeviceError, match="cannot write 1 to it"):
        io.write_port(9, 1).result(TIMEOUT)


def test_the_dummy_io_takes_port_value():
    assert [IO(port_value=1).read_port(port).result(TIMEOUT) for port in range(4)] == [1, 1, 1, 1]
    io = IO(port_count=2, bits=8, port_value=200)
    assert io.read_port(1).result(TIMEOUT) == 200
    for kwargs, text in [
        ({"port_value": 2}, "port_value=2 cannot be held by the ports: they hold integers from 0 to 1"),
        ({"port_value": 0.5}, "port_value=0.5"),
        ({"port_value": "1"}, "port_value='1'"),
        ({"bits": 0}, "bits=0 is not a whole number >= 1"),
        ({"port_count": -1}, "port_count=-1 is not a whole number >= 0"),
    ]:
        with pytest.raises(LimitError, match=r"^IO: ") as info:
            IO(**kwargs)
        assert text in str(info.value)
    assert IO(port_count=0).ports == []


def test_signal_switches_one_port_on_and_off():
    io = WritesIO()
    signal = Signal(2, io)
    assert signal.port == 2 and signal.device is io
    assert signal.state == "off"
    signal.on().join(TIMEOUT)
    assert signal.state == "on" and io.read_port(2).result(TIMEOUT) == 1
    signal.on().join(TIMEOUT)  # harmless
    signal.off().join(TIMEOUT)
    assert signal.state == "off"
    assert [(port, value) for port, value, _ in io.writes] == [(2, 1), (2, 1), (2, 0)]
    assert io.read_port(1).result(TIMEOUT) == 0  # the other ports are untouched


def test_signal_trigger_is_a_pulse_of_the_duration(asynchronous):
    io = WritesIO()
    signal = Signal(0, io)
    signal.trigger(50 * q.ms).join(TIMEOUT)
    (_, on, started), (_, off, ended) = io.writes
    assert (on, off) == (1, 0) and ended - started >= 0.045
    assert signal.state == "off"
    signal.trigger().join(TIMEOUT)  # 10 ms by default
    assert [value for _, value, _ in io.writes] == [1, 0, 1, 0]


def test_signal_with_other_values():
    io = WritesIO(bits=4)
    signal = Signal(1, io, on_value=0, off_value=15)
    signal.trigger(0).join(TIMEOUT)
    assert [value for _, value, _ in io.writes] == [0, 15] and signal.state == "off"


def test_cancelling_a_trigger_ends_the_pulse_at_once_and_switches_off(asynchronous):
    io = WritesIO()
    signal = Signal(0, io)
    pulse = signal.trigger(30 * q.s)
    busy_wait(lambda: signal.state == "on", sleep_time=0.001, timeout=TIMEOUT)
    began = time.monotonic()
    assert pulse.cancel(TIMEOUT)
    assert time.monotonic() - began < 5
    with pytest.raises(CancelledError):
        pulse.result(TIMEOUT)
    assert signal.state == "off"


def test_abort_of_a_signal_switches_it_off(asynchronous):
    io = WritesIO()
    signal = Signal(3, io)
    pulse = signal.trigger(30 * q.s)
    busy_wait(lambda: signal.state == "on", sleep_time=0.001, timeout=TIMEOUT)
    signal.abort().join(TIMEOUT)
    with pytest.raises(CancelledError, match=r"stopped by abort\(\)"):
        pulse.result(TIMEOUT)
    assert signal.state == "off" and io.read_port(3).result(TIMEOUT) == 0


def test_signal_on_a_port_that_does_not_exist_is_refused():
    io = IO()
    with pytest.raises(
        IODeviceError, match=rf"^Signal\(port=7, device={io!r}\): {io!r} has no port 7 \(it has: 0, 1, 2, 3\)"
    ):
        Signal(7, io)
    with pytest.raises(IODeviceError, match=r"device='io'\): the device is not an IO device"):
        Signal(0, "io")


@pytest.mark.parametrize(
    "kwargs, text",
    [({"on_value": 2}, "cannot take 2"), ({"on_value": 0}, "on_value and off_value are both 0")],
)
def test_signal_values_the_port_cannot_hold_are_refused(kwargs, text):
    io = WritesIO()
    with pytest.raises(LimitError, match=repr(io)) as info:
        Signal(0, io, **kwargs)
    assert text in str(info.value) and io.writes == []


@pytest.mark.parametrize(
    "duration, error",
    [(5 * q.mm, UnitError), ("long", UnitError), (-1 * q.s, LimitError), (float("inf") * q.s, LimitError)],
)
def test_signal_trigger_needs_a_finite_time(duration, error):
    io = WritesIO()
    signal = Signal(0, io)
    with pytest.raises(error, match="duration"):
        signal.trigger(duration).result(TIMEOUT)
    assert io.writes == []


# -- the dummy shutter starts open ------------------------------------------------------------------


def test_the_dummy_shutter_starts_open():
    shutter = Shutter()
    assert shutter.state == "open"
    shutter.close().join(TIMEOUT)
    assert shutter.state == "closed"


def test_nothing_waits_for_threads_left_by_module_abort():
    before = {thread.name for thread in threading.enumerate()}
    abort([LinearMotor(), LinearMotor()])
    assert not [
        name for name in {t.name for t in threading.enumerate()} - before if name.startswith("concert-abort")
    ]
