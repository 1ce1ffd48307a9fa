"""Simulated camera: settings with units and limits, states, real-time frames, triggers, streams."""

from __future__ import annotations

import collections
import re
import threading
import time
from concurrent.futures import CancelledError
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concert.devices.cameras import base
from concert.devices.cameras.dummy import Camera
from concert.dispatcher import dispatcher
from concert.exceptions import (
    AccessorNotImplementedError,
    HardLimitError,
    LimitError,
    ReadAccessError,
    SoftLimitError,
    StateError,
    UnitError,
    WaitError,
    WriteAccessError,
)
from concert.imaging import ImageWithMetadata
from concert.naming import describe_value
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT

SETTINGS = ("exposure_time", "frame_rate", "trigger_source", "roi_x0", "roi_y0", "roi_width", "roi_height")
HOOKS = ("_record_real", "_stop_real", "_trigger_real", "_grab_real")
SOFTWARE = Camera.trigger_sources.SOFTWARE
EXTERNAL = Camera.trigger_sources.EXTERNAL


class CountingCamera(Camera):
    """A dummy camera counting the calls of its setters and hardware hooks (in ``calls``)."""

    def __init__(self, **kwargs):
        self.calls = collections.Counter()
        super().__init__(**kwargs)


def _counted(name):
    original = getattr(Camera, name)

    def counted(self, *args):
        self.calls[name] += 1
        return original(self, *args)

    counted.__name__ = name
    return counted


for _name in [f"_set_{setting}" for setting in SETTINGS] + list(HOOKS):
    setattr(CountingCamera, _name, _counted(_name))


def snapshot(camera):
    return {value.name: value.read() for value in camera if value.readable}


def small_camera(**kwargs):
    """A camera with a small sensor: quick frames for timing tests."""
    return Camera(sensor_width=64 * q.pixel, sensor_height=48 * q.pixel, **kwargs)


class SnaplessCamera(Camera):
    """A simulated camera that, like most hardware, cannot take a frame outside a recording."""

    def _snap_real(self):
        return base.Camera._snap_real(self)


def numbers(frames):
    return [frame.metadata["frame"] for frame in frames]


# -- defaults, units -----------------------------------------------------------------------


def test_works_without_arguments():
    camera = Camera()
    assert camera.state == "standby"
    assert camera.exposure_time == 1 * q.ms
    assert camera.frame_rate == 100 / q.s
    assert camera.trigger_source is Camera.trigger_sources.AUTO
    assert (camera.sensor_width, camera.sensor_height) == (640 * q.pixel, 480 * q.pixel)
    assert (camera.roi_x0, camera.roi_y0) == (0 * q.pixel, 0 * q.pixel)
    assert (camera.roi_width, camera.roi_height) == (640 * q.pixel, 480 * q.pixel)
    assert camera.sensor_pixel_width == 6.5 * q.um and camera.sensor_pixel_height == 6.5 * q.um
    assert {value.name for value in camera} >= set(SETTINGS) | {"state", "sensor_width", "sensor_pixel_width"}
    with camera.recording():
        frame = camera.grab_async().result(TIMEOUT)
    assert isinstance(frame, ImageWithMetadata)
    assert frame.shape == (480, 640) and frame.dtype == np.uint16
    assert set(frame.metadata) >= {"frame", "timestamp", "exposure_time", "roi"}


def test_trigger_sources():
    assert [source.name for source in Camera.trigger_sources] == ["AUTO", "SOFTWARE", "EXTERNAL"]
    assert base.Camera.trigger_sources is Camera.trigger_sources
    assert Camera.trigger_sources.SOFTWARE == "SOFTWARE"  # compares equal to its name


def test_writes_are_converted_to_the_parameters_unit():
    camera = Camera()
    camera.exposure_time = 20 * q.ms
    assert camera.exposure_time.units == q.s and camera.exposure_time.magnitude == pytest.approx(0.02)
    camera.frame_rate = 2 * q.kHz
    assert camera.frame_rate == 2000 / q.s
    camera.roi_width = 100.0 * q.pixel  # whole, though a float
    camera.roi_x0 = 10 * q.pixel  # the sensor has room for it now
    camera["roi_height"].set(30 * q.pixel).join(TIMEOUT)
    camera.set_roi_y0(20 * q.pixel).join(TIMEOUT)
    assert [camera.roi_x0, camera.roi_y0, camera.roi_width, camera.roi_height] == [
        10 * q.pixel,
        20 * q.pixel,
        100 * q.pixel,
        30 * q.pixel,
    ]
    camera.trigger_source = "SOFTWARE"  # a name is accepted and becomes the member
    assert camera.trigger_source is SOFTWARE


def test_sensor_parameters_are_read_only():
    camera = Camera()
    for name in ("sensor_width", "sensor_height", "sensor_pixel_width", "sensor_pixel_height"):
        assert not camera[name].writable
        with pytest.raises(WriteAccessError, match=name):
            camera[name].write(camera[name].read())


def test_constructor_checks_the_sensor_size():
    assert small_camera().roi_width == 64 * q.pixel
    with pytest.raises(UnitError, match="sensor_width"):
        Camera(sensor_width=64)
    with pytest.raises(LimitError, match="sensor_height"):
        Camera(sensor_height=0 * q.pixel)


# -- bad values: refused before the setter, camera unchanged ------------------------------------

NAN, INF = float("nan"), float("inf")

BAD_VALUES = [
    ("exposure_time", 5, UnitError),
    ("exposure_time", 5 * q.m, UnitError),
    ("exposure_time", NAN * q.s, LimitError),
    ("exposure_time", INF * q.ms, LimitError),
    ("exposure_time", 0 * q.s, HardLimitError),
    ("exposure_time", -1 * q.ms, HardLimitError),
    ("exposure_time", 2000 * q.s, HardLimitError),
    ("frame_rate", 100, UnitError),
    ("frame_rate", 100 * q.s, UnitError),
    ("frame_rate", NAN / q.s, LimitError),
    ("frame_rate", 0 * q.Hz, HardLimitError),
    ("frame_rate", 1 * q.MHz, HardLimitError),
    ("roi_x0", 10, UnitError),
    ("roi_x0", 10 * q.mm, UnitError),
    ("roi_x0", INF * q.pixel, LimitError),
    ("roi_x0", 10.5 * q.pixel, LimitError),
    ("roi_x0", -1 * q.pixel, HardLimitError),
    ("roi_x0", 1 * q.pixel, HardLimitError),  # with the full width, no room to move right
    ("roi_y0", 1 * q.pixel, HardLimitError),
    ("roi_width", 0 * q.pixel, HardLimitError),
    ("roi_width", 641 * q.pixel, HardLimitError),
    ("roi_height", 481 * q.pixel, HardLimitError),
    ("roi_height", 0.5 * q.pixel, HardLimitError),
    ("trigger_source", "auto", LimitError),
    ("trigger_source", "NONE", LimitError),
    ("trigger_source", 3, LimitError),
    ("trigger_source", None, LimitError),
]


@pytest.mark.parametrize(("name", "value", "error"), BAD_VALUES, ids=[f"{n}={v!r}" for n, v, _ in BAD_VALUES])
def test_bad_values_are_refused_before_the_setter(name, value, error):
    camera = CountingCamera()
    before = snapshot(camera)
    with pytest.raises(error) as info:
        setattr(camera, name, value)
    message = str(info.value)
    assert f"{camera!r}[{name!r}]" in message and describe_value(value) in message
    with pytest.raises(error):  # the same through the future
        camera[name].set(value).result(TIMEOUT)
    assert snapshot(camera) == before
    assert camera.calls == {}


def test_roi_must_stay_on_the_sensor_together():
    camera = CountingCamera()
    camera.roi_width = 100 * q.pixel
    camera.roi_x0 = 540 * q.pixel  # 540 + 100 = 640: just fits
    with pytest.raises(HardLimitError, match=r"roi_width.*101.*hardware limit 100 pixel"):
        camera.roi_width = 101 * q.pixel
    with pytest.raises(HardLimitError, match="roi_x0"):
        camera.roi_x0 = 541 * q.pixel
    assert (camera.roi_x0, camera.roi_width) == (540 * q.pixel, 100 * q.pixel)
    assert camera.calls["_set_roi_width"] == 1 and camera.calls["_set_roi_x0"] == 1


def test_concurrent_roi_writes_cannot_leave_the_sensor_together():
    """x0 = 600 and width = 100 each fit alone but not together: exactly one write fails."""
    for _ in range(20):
        camera = Camera()
        camera.roi_width = 40 * q.pixel
        barrier = threading.Barrier(2, timeout=TIMEOUT)
        errors = []

        def write(name, value, camera=camera, barrier=barrier, errors=errors):
            barrier.wait()
            try:
                setattr(camera, name, value)
            except HardLimitError as error:
                errors.append(error)

        threads = [
            threading.Thread(target=write, args=("roi_x0", 600 * q.pixel)),
            threading.Thread(target=write, args=("roi_width", 100 * q.pixel)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert len(errors) == 1
        assert camera.roi_x0 + camera.roi_width <= camera.sensor_width


def test_soft_limits_set_by_the_user():
    camera = CountingCamera()
    camera["exposure_time"].upper = 10 * q.ms
    message = r"exposure_time'\]: 20 ms \(= 0.02 s\) is above the soft limit 0.01 s"
    with pytest.raises(SoftLimitError, match=message):
        camera.exposure_time = 20 * q.ms
    assert camera.exposure_time == 1 * q.ms and camera.calls == {}


@settings(max_examples=60, deadline=None)
@given(
    x0=st.integers(-2, 70),
    y0=st.integers(-2, 50),
    width=st.integers(-1, 70),
    height=st.integers(-1, 50),
)
def test_any_roi_on_the_sensor_is_accepted_and_sets_the_frame_shape(x0, y0, width, height):
    camera = small_camera()
    camera.trigger_source = SOFTWARE
    fits = x0 >= 0 and y0 >= 0 and width >= 1 and height >= 1 and x0 + width <= 64 and y0 + height <= 48
    try:
        camera.roi_width, camera.roi_height = width * q.pixel, height * q.pixel
        camera.roi_x0, camera.roi_y0 = x0 * q.pixel, y0 * q.pixel
    except HardLimitError:
        assert not fits
        roi = [camera.roi_x0, camera.roi_y0, camera.roi_width, camera.roi_height]
        assert roi[0] + roi[2] <= 64 * q.pixel and roi[1] + roi[3] <= 48 * q.pixel
        return
    assert fits
    with camera.recording():
        camera.trigger().join(TIMEOUT)
        frame = camera.grab_async(TIMEOUT).result(TIMEOUT)
    assert frame.shape == (height, width)
    assert frame.metadata["roi"] == (x0, y0, width, height)


# -- states ----------------------------------------------------------------------------------------

WHILE_RECORDING = {
    "exposure_time": 2 * q.ms,
    "frame_rate": 50 * q.Hz,
    "trigger_source": SOFTWARE,
    "roi_x0": 0 * q.pixel,
    "roi_y0": 0 * q.pixel,
    "roi_width": 10 * q.pixel,
    "roi_height": 10 * q.pixel,
}


@pytest.mark.parametrize(("name", "value"), WHILE_RECORDING.items())
def test_settings_cannot_change_while_recording(name, value):
    camera = CountingCamera()
    with camera.recording():
        before = snapshot(camera)
        with pytest.raises(
            StateError,
            match=rf"^{camera!r}\.{name} = {re.escape(describe_value(value))} is not allowed in state "
            r"'recording' \(only in 'standby'\)$",
        ):
            setattr(camera, name, value)
        assert snapshot(camera) == before
    assert camera.calls[f"_set_{name}"] == 0
    setattr(camera, name, value)  # fine in standby
    assert camera.calls[f"_set_{name}"] == 1


def test_state_checks_of_the_methods():
    camera = CountingCamera()
    with pytest.raises(StateError, match=r"trigger\(\).*standby"):
        camera.trigger().result(TIMEOUT)
    with pytest.raises(StateError, match=r"stop_recording\(\).*standby"):
        camera.stop_recording().result(TIMEOUT)
    with pytest.raises(StateError, match=r"stream\(\).*standby"):
        camera.stream()
    camera.start_recording().join(TIMEOUT)
    with pytest.raises(StateError, match=r"start_recording\(\).*recording"):
        camera.start_recording().result(TIMEOUT)
    with pytest.raises(StateError, match="trigger_source SOFTWARE, but it is AUTO"):
        camera.trigger().result(TIMEOUT)
    camera.stop_recording().join(TIMEOUT)
    assert camera.state == "standby"
    assert camera.calls["_trigger_real"] == 0 and camera.calls["_record_real"] == 1


def test_grab_before_any_recording_is_a_state_error_without_single_frames():
    camera = SnaplessCamera()
    with pytest.raises(StateError, match=rf"{camera!r}: grab\(\) found no frame.*'standby'"):
        camera.grab_async(TIMEOUT).result(TIMEOUT)
    with pytest.raises(StateError, match="found no frame"):
        camera.grab(TIMEOUT)


def test_the_simulated_camera_grabs_single_frames_outside_a_recording():
    camera = small_camera()
    camera.exposure_time = 2 * q.ms
    frames = [camera.grab(TIMEOUT), camera.grab_async(TIMEOUT).result(TIMEOUT)]
    assert numbers(frames) == [0, 1] and camera.state == "standby"
    assert all(frame.shape == (48, 64) and frame.dtype == np.uint16 for frame in frames)
    assert {frame.metadata["trigger_source"] for frame in frames} == {"SOFTWARE"}
    assert frames[0].metadata["exposure_time"] == pytest.approx(0.002)


def test_error_state_and_reset():
    class Broken(Camera):
        def _record_real(self):
            raise OSError("sensor too hot")

    camera = Broken()
    with pytest.raises(OSError, match="sensor too hot"):
        camera.start_recording().result(TIMEOUT)
    assert camera.state == "error" and "sensor too hot" in camera["state"].error
    for call in (camera.start_recording, camera.grab_async):
        with pytest.raises(StateError, match="'error'"):
            call().result(TIMEOUT)
    with pytest.raises(StateError):
        camera.exposure_time = 2 * q.ms
    camera.reset().join(TIMEOUT)
    assert camera.state == "standby"
    with pytest.raises(StateError, match=r"reset\(\).*standby"):
        camera.reset().result(TIMEOUT)


def test_base_camera_needs_an_implementation():
    camera = base.Camera()
    with pytest.raises(ReadAccessError, match="exposure_time"):
        camera.exposure_time  # noqa: B018
    with pytest.raises(AccessorNotImplementedError, match="cannot start recording"):
        camera.start_recording().result(TIMEOUT)
    assert camera.state == "error"


# -- frames in AUTO mode: real time, consecutive, never skipped --------------------------------------


def test_frames_come_at_the_frame_rate():
    camera = small_camera()
    camera.frame_rate = 200 * q.Hz
    period = 1 / 200
    before = time.time()
    with camera.recording():
        started = time.time()
        frames, returned = [], []
        for _ in range(20):
            frames.append(camera.grab_async(TIMEOUT).result(TIMEOUT))
            returned.append(time.time())
    assert numbers(frames) == list(range(20))
    stamps = np.array([frame.metadata["timestamp"] for frame in frames])
    assert np.diff(stamps).mean() == pytest.approx(period, rel=0.2)
    assert before <= stamps[0] - period <= started  # frame 0 is complete one period after the start
    # No frame is handed out before it is complete: real time is honoured.
    assert all(back >= stamp - 0.002 for back, stamp in zip(returned, stamps))
    assert returned[-1] - started >= 20 * period * 0.8


def test_frame_content_follows_the_roi_and_differs_between_frames():
    full = small_camera()
    full.frame_rate = 1000 * q.Hz
    with full.recording():
        whole = [full.grab_async(TIMEOUT).result(TIMEOUT) for _ in range(2)]
    cropped = small_camera()
    cropped.frame_rate = 1000 * q.Hz
    cropped.roi_width, cropped.roi_height = 20 * q.pixel, 15 * q.pixel
    cropped.roi_x0, cropped.roi_y0 = 10 * q.pixel, 5 * q.pixel
    with cropped.recording():
        part = cropped.grab_async(TIMEOUT).result(TIMEOUT)
    assert part.shape == (15, 20) and part.metadata["roi"] == (10, 5, 20, 15)
    np.testing.assert_array_equal(part, whole[0][5:20, 10:30])
    assert not np.array_equal(whole[0], whole[1])
    assert whole[0].min() >= 100  # the dark level
    assert whole[0].std() > 10  # a pattern, not a flat field


def test_exposure_time_sets_brightness_and_metadata():
    camera = small_camera()
    camera.frame_rate = 1000 * q.Hz
    means = []
    for exposure in (1 * q.ms, 4 * q.ms, 1000 * q.s):
        camera.exposure_time = exposure
        with camera.recording():
            frame = camera.grab_async(TIMEOUT).result(TIMEOUT)
        assert frame.metadata["exposure_time"] == pytest.approx(exposure.to(q.s).magnitude)
        means.append(frame.mean())
    assert means[0] < means[1] < means[2] == 65535  # saturated


def test_slow_reader_gets_every_frame_numbered_consecutively():
    camera = SnaplessCamera(sensor_width=64 * q.pixel, sensor_height=48 * q.pixel)
    camera.frame_rate = 1000 * q.Hz
    camera.start_recording().join(TIMEOUT)
    first = camera.grab_async(TIMEOUT).result(TIMEOUT)
    # A reader busy for 50 ms: some 50 frames are recorded meanwhile.
    busy_wait(lambda: time.time() > first.metadata["timestamp"] + 0.05, sleep_time=0.005, timeout=TIMEOUT)
    before_stop = time.time()
    camera.stop_recording().join(TIMEOUT)
    after_stop = time.time()
    rest = []
    while True:  # frames recorded before the stop can still be read
        try:
            rest.append(camera.grab_async(TIMEOUT).result(TIMEOUT))
        except StateError:
            break
    frames = [first, *rest]
    assert numbers(frames) == list(range(len(frames)))
    stamps = np.array([frame.metadata["timestamp"] for frame in frames])
    assert np.diff(stamps) == pytest.approx(0.001, rel=1e-2)
    # Every frame complete before the stop was kept, none after it was made up
    # (1 ms of slack for the two clocks the camera uses).
    assert stamps[-1] <= after_stop + 0.001
    assert stamps[-1] + 0.001 > before_stop - 0.001
    assert len(frames) >= 50


def test_concurrent_grabs_get_distinct_consecutive_frames():
    camera = small_camera()
    camera.frame_rate = 2000 * q.Hz
    barrier = threading.Barrier(8, timeout=TIMEOUT)
    grabbed, errors = [], []

    def grab_ten():
        try:
            barrier.wait()
            for _ in range(10):
                grabbed.append(camera.grab_async(TIMEOUT).result(TIMEOUT).metadata["frame"])
        except Exception as error:  # collected and asserted below
            errors.append(error)

    with camera.recording():
        threads = [threading.Thread(target=grab_ten) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
    assert errors == []
    assert sorted(grabbed) == list(range(80))


def test_concurrent_grab_futures(asynchronous):
    camera = small_camera()
    camera.frame_rate = 2000 * q.Hz
    with camera.recording():
        futures = [camera.grab_async(TIMEOUT) for _ in range(40)]
        frames = [future.result(TIMEOUT) for future in futures]
    assert sorted(numbers(frames)) == list(range(40))


def test_restarting_begins_again_at_frame_zero():
    camera = small_camera()
    camera.frame_rate = 1000 * q.Hz
    for _ in range(2):
        with camera.recording():
            assert numbers([camera.grab_async(TIMEOUT).result(TIMEOUT) for _ in range(3)]) == [0, 1, 2]


# -- SOFTWARE and EXTERNAL triggers --------------------------------------------------------------------


def test_software_trigger_makes_one_frame_each():
    camera = CountingCamera()
    camera.trigger_source = SOFTWARE
    with camera.recording():
        for _ in range(3):
            camera.trigger().join(TIMEOUT)
        frames = [camera.grab_async(TIMEOUT).result(TIMEOUT) for _ in range(3)]
        assert numbers(frames) == [0, 1, 2]
        assert all(frame.metadata["trigger_source"] == "SOFTWARE" for frame in frames)
        with pytest.raises(WaitError, match=rf"{camera!r}: grab\(\) got no frame within 0.05 s"):
            camera.grab_async(0.05).result(TIMEOUT)
        camera.trigger().join(TIMEOUT)
        assert camera.grab_async(50 * q.ms).result(TIMEOUT).metadata["frame"] == 3  # the timeout took none
    assert camera.calls["_trigger_real"] == 4


@pytest.mark.parametrize("cls", [Camera, SnaplessCamera])
def test_triggered_frames_can_be_read_after_stopping(cls):
    camera = cls()
    camera.trigger_source = SOFTWARE
    camera.start_recording().join(TIMEOUT)
    camera.trigger().join(TIMEOUT)
    camera.trigger().join(TIMEOUT)
    camera.stop_recording().join(TIMEOUT)
    assert numbers([camera.grab_async().result(TIMEOUT) for _ in range(2)]) == [0, 1]
    if cls is SnaplessCamera:
        with pytest.raises(StateError, match="every frame it recorded has been read"):
            camera.grab_async().result(TIMEOUT)
    else:  # the recorded frames first, then a single frame: none is dropped
        single = camera.grab(TIMEOUT)
        assert single.metadata["frame"] == 0 and single.metadata["trigger_source"] == "SOFTWARE"


def test_external_trigger():
    camera = Camera()
    assert not camera.simulate_external_trigger()  # ignored in standby
    camera.trigger_source = EXTERNAL
    assert not camera.simulate_external_trigger()
    with camera.recording():
        assert camera.simulate_external_trigger()
        frame = camera.grab_async(TIMEOUT).result(TIMEOUT)
        assert frame.metadata["frame"] == 0 and frame.metadata["trigger_source"] == "EXTERNAL"
        with pytest.raises(StateError, match="but it is EXTERNAL"):
            camera.trigger().result(TIMEOUT)
    camera.trigger_source = SOFTWARE
    with camera.recording():
        assert not camera.simulate_external_trigger()  # pulses count only in EXTERNAL mode


def test_external_trigger_from_another_thread_wakes_a_waiting_grab():
    camera = Camera()
    camera.trigger_source = EXTERNAL
    with camera.recording():
        pulses = threading.Thread(target=lambda: [camera.simulate_external_trigger() for _ in range(5)])
        pulses.start()
        frames = [camera.grab_async(TIMEOUT).result(TIMEOUT) for _ in range(5)]
        pulses.join(TIMEOUT)
    assert numbers(frames) == list(range(5))


def test_cancelling_a_waiting_grab_takes_no_frame(asynchronous):
    camera = Camera()
    camera.trigger_source = SOFTWARE
    with camera.recording():
        waiting = camera.grab_async()
        busy_wait(waiting.running, sleep_time=0.001, timeout=TIMEOUT)
        assert waiting.cancel()
        with pytest.raises(CancelledError):
            waiting.result(TIMEOUT)
        assert camera.state == "recording"
        camera.trigger().join(TIMEOUT)
        assert camera.grab_async(TIMEOUT).result(TIMEOUT).metadata["frame"] == 0


def test_an_exclusive_owner_gets_the_frames(asynchronous):
    """A grab from outside a ``with camera:`` block waits until the block ends."""
    camera = Camera()
    camera.trigger_source = SOFTWARE
    with camera.recording():
        outsider = camera.grab_async(1)
        try:
            busy_wait(outsider.running, sleep_time=0.001, timeout=TIMEOUT)
            with camera:
                camera.trigger().join(TIMEOUT)
                assert camera.grab_async(TIMEOUT).result(TIMEOUT).metadata["frame"] == 0
                assert not outsider.done()
            camera.trigger().join(TIMEOUT)
            assert outsider.result(TIMEOUT).metadata["frame"] == 1
        finally:
            outsider.exception(TIMEOUT)  # retrieved in any case: no "nobody retrieved" log


class PollingCamera(Camera):
    """Records the slices of waiting grabs: how many ``_grab_real`` calls began, how many run now."""

    def __init__(self, **kwargs):
        self.polls = 0
        self.polling = 0
        self._poll_lock = threading.Lock()
        super().__init__(**kwargs)

    def _grab_real(self, timeout):
        with self._poll_lock:
            self.polls += 1
            self.polling += 1
        try:
            return super()._grab_real(timeout)
        finally:
            with self._poll_lock:
                self.polling -= 1


def test_waiting_with_blocks_get_in_between_the_slices_of_a_waiting_grab(asynchronous):
    """While a grab waits for a frame, the camera is free between its 50 ms slices.

    Twenty owners asking for ``with camera:`` meanwhile all get in, one after
    the other, while the grab still waits; no slice of the grab runs while a
    block holds the camera; the grab goes on afterwards and gets its frame.
    """
    camera = PollingCamera()
    camera.trigger_source = SOFTWARE
    owners = 20
    inside = []  # (slices running at entry, slices begun at entry, slices begun at exit, grab done)
    with camera.recording():
        waiting = camera.grab_async(TIMEOUT)
        try:
            busy_wait(lambda: camera.polls > 0, sleep_time=0.001, timeout=TIMEOUT)
            start = threading.Barrier(owners)

            def owner():
                start.wait(TIMEOUT)
                with camera:
                    entered = (camera.polling, camera.polls)
                    time.sleep(0.005)  # some work inside the block
                    inside.append((*entered, camera.polls, waiting.done()))

            threads = [threading.Thread(target=owner) for _ in range(owners)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(TIMEOUT)
            assert len(inside) == owners, "some `with camera:` never got in while the grab waited"
            assert not waiting.done()
            for running, begun, begun_at_exit, done in inside:
                assert running == 0, "a slice of the grab ran while a block held the camera"
                assert begun == begun_at_exit, "a slice of the grab began while a block held the camera"
                assert not done
            camera.trigger().join(TIMEOUT)
            assert waiting.result(TIMEOUT).metadata["frame"] == 0
        finally:
            waiting.exception(TIMEOUT)  # retrieved in any case


def test_abort_stops_recording_and_wakes_a_waiting_grab(asynchronous):
    camera = Camera()
    camera.trigger_source = SOFTWARE
    camera.start_recording().join(TIMEOUT)
    waiting = camera.grab_async()
    busy_wait(waiting.running, sleep_time=0.001, timeout=TIMEOUT)
    stopped = dispatcher.when(camera, "standby")
    aborter = threading.Thread(target=camera.emergency_stop)
    aborter.start()
    aborter.join(TIMEOUT)
    assert stopped.result(TIMEOUT) is camera
    assert camera.state == "standby"
    with pytest.raises(CancelledError, match=r"grab_async\(\) was stopped by emergency_stop\(\)"):
        waiting.result(TIMEOUT)
    camera.abort().join(TIMEOUT)  # idempotent, harmless in standby
    assert camera.state == "standby"


# -- recording(), stream(), messages ------------------------------------------------------------------


def test_recording_context_stops_even_on_an_exception():
    camera = Camera()
    with pytest.raises(ZeroDivisionError):
        with camera.recording() as recording:
            assert recording is camera and camera.state == "recording"
            1 / 0  # noqa: B018
    assert camera.state == "standby"


def test_recording_context_tolerates_a_stop_inside():
    camera = Camera()
    with camera.recording():
        camera.stop_recording().join(TIMEOUT)
    assert camera.state == "standby"


def test_stream_yields_consecutive_frames():
    camera = small_camera()
    camera.frame_rate = 1000 * q.Hz
    with camera.recording():
        stream = camera.stream(TIMEOUT)
        frames = [next(stream) for _ in range(10)]
    assert numbers(frames) == list(range(10))
    assert all(frame.shape == (48, 64) for frame in frames)
    rest = list(stream)  # what was recorded before the stop, then the end
    assert numbers(frames + rest) == list(range(len(frames) + len(rest)))


def test_stream_ends_when_recording_stops_from_another_thread():
    camera = small_camera()
    camera.trigger_source = SOFTWARE
    camera.start_recording().join(TIMEOUT)
    received, errors = [], []
    three = threading.Event()

    def consume():
        try:
            for frame in camera.stream(TIMEOUT):
                received.append(frame)
                if len(received) == 3:
                    three.set()
        except Exception as error:  # collected and asserted below
            errors.append(error)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for _ in range(3):
        camera.trigger().join(TIMEOUT)
    assert three.wait(TIMEOUT)
    camera.stop_recording().join(TIMEOUT)  # the consumer waits for a fourth frame now
    consumer.join(TIMEOUT)
    assert not consumer.is_alive() and errors == []
    assert numbers(received) == [0, 1, 2]


def test_stream_in_auto_mode_ends_after_a_stop_from_another_thread():
    camera = small_camera()
    camera.frame_rate = 500 * q.Hz
    camera.start_recording().join(TIMEOUT)
    received = []
    five = threading.Event()

    def consume():
        for frame in camera.stream(TIMEOUT):
            received.append(frame.metadata["frame"])
            if len(received) == 5:
                five.set()

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert five.wait(TIMEOUT)
    camera.stop_recording().join(TIMEOUT)
    consumer.join(TIMEOUT)
    assert not consumer.is_alive()
    assert received == list(range(len(received))) and len(received) >= 5


def test_stream_timeout():
    camera = Camera()
    camera.trigger_source = SOFTWARE
    with camera.recording():
        with pytest.raises(WaitError, match=r"stream\(\) got no frame within 0.05 s"):
            next(camera.stream(0.05))
        with pytest.raises(UnitError, match=rf"{camera!r}: stream\(\): timeout=.*meter"):
            camera.stream(1 * q.m)
        with pytest.raises(UnitError, match=rf"{camera!r}: grab\(\): timeout=.*meter"):
            camera.grab_async(1 * q.m).result(TIMEOUT)


def test_messages_announce_recording_and_standby():
    camera = Camera()
    recording = dispatcher.when(camera, "recording")
    changed = dispatcher.when(camera["exposure_time"], "changed")
    camera.exposure_time = 2 * q.ms
    assert changed.result(TIMEOUT) is camera["exposure_time"]
    camera.start_recording().join(TIMEOUT)
    assert recording.result(TIMEOUT) is camera
    standby = dispatcher.when(camera, "standby")
    camera.stop_recording().join(TIMEOUT)
    assert standby.result(TIMEOUT) is camera


# -- issue 8 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exposure",
    [
        Decimal("0.01") * q.s,
        Fraction(1, 100) * q.s,
        np.float32(10) * q.ms,
        np.uint16(10) * q.ms,
        np.array([10]) * q.ms,
    ],
    ids=["Decimal", "Fraction", "float32", "uint16", "array"],
)
def test_exotic_exposure_times_are_normalised_and_frames_still_come(exposure):
    camera = small_camera()
    camera.exposure_time = exposure
    assert type(camera.exposure_time.magnitude) is float
    assert camera.exposure_time.to(q.s).magnitude == pytest.approx(0.01)
    with camera.recording():
        frame = camera.grab_async().result(TIMEOUT)
    assert frame.metadata["exposure_time"] == pytest.approx(0.01) and camera.state == "standby"


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("exposure_time", q.Quantity("2", "ms"), UnitError),
        ("exposure_time", 0.002, UnitError),
        ("frame_rate", q.Quantity(10**400, "Hz"), LimitError),
        ("roi_width", q.Quantity(np.array([True]), "pixel"), UnitError),
        ("roi_x0", q.Quantity(Decimal("NaN"), "pixel"), LimitError),
    ],
)
def test_bad_magnitudes_leave_the_camera_as_it_was(name, value, error):
    camera = CountingCamera()
    before = snapshot(camera)
    with pytest.raises(error, match=rf"{camera!r}\['{name}'\]"):
        setattr(camera, name, value)
    assert snapshot(camera) == before and camera.calls == {}


def test_a_write_while_recording_is_named_in_user_terms():
    camera = small_camera()
    with camera.recording():
        refusal = (
            rf"^{camera!r}\.exposure_time = 2 ms is not allowed in state 'recording' \(only in 'standby'\)$"
        )
        with pytest.raises(StateError, match=refusal):
            camera.exposure_time = 2 * q.ms
        with pytest.raises(
            StateError, match=rf"^{camera!r}\.start_recording\(\) is not allowed in state 'recording'"
        ):
            camera.start_recording().join(TIMEOUT)
    assert camera.exposure_time == 1 * q.ms


def test_grab_blocks_and_returns_the_frame_itself():
    camera = Camera()
    with camera.recording():
        first = camera.grab(TIMEOUT)
        second = camera.grab(timeout=TIMEOUT)
    assert isinstance(first, np.ndarray) and first.metadata["frame"] == 0
    assert second.metadata["frame"] == 1
