"""Legacy-style tests of devices: abort futures, cameras, IO signals, the shutter (SPEC §14).

Written as a script of the futures era would be: ``unittest.TestCase``
classes importing only the legacy names. They pass under
``nosetests --disable-async tests/nose/test_legacy_devices.py`` and under
pytest, in either mode: every stream ends by itself (its consumer finishes
or stops the recording), so it also works when it runs in the caller's thread.
"""

from __future__ import annotations

import unittest

import numpy as np

from concert.base import StateError
from concert.coroutines.base import coroutine
from concert.devices.base import Device, abort
from concert.devices.cameras.base import CameraError
from concert.devices.cameras.dummy import Base, BufferedCamera, Camera
from concert.devices.io.base import IODeviceError, Signal
from concert.devices.io.dummy import IO
from concert.devices.motors.dummy import LinearMotor
from concert.devices.shutters.dummy import Shutter
from concert.helpers import wait
from concert.quantities import q

TIMEOUT = 30


@coroutine
def frames_into(frames, count, camera=None):
    """Append ``count`` frames to ``frames``; then stop ``camera`` recording, or finish."""
    while True:
        frames.append((yield))
        if len(frames) == count:
            if camera is None:
                return
            camera.stop_recording().join(TIMEOUT)


def small_camera(**kwargs):
    camera = Camera(sensor_width=16 * q.pixel, sensor_height=8 * q.pixel, **kwargs)
    camera.trigger_source = camera.trigger_sources.SOFTWARE
    return camera


class AbortTest(unittest.TestCase):
    def test_abort_returns_a_finished_future(self):
        motor = LinearMotor()
        future = motor.abort()
        self.assertTrue(future.done())
        self.assertIsNone(future.join().result())
        self.assertEqual(motor.state, "standby")

    def test_abort_of_many_devices_returns_their_futures(self):
        devices = [LinearMotor(), small_camera(), Shutter()]
        devices[1].start_recording().join(TIMEOUT)
        futures = abort(devices)
        self.assertEqual(len(futures), 3)
        wait(futures)
        self.assertEqual(devices[1].state, "standby")

    def test_a_failing_stop_is_kept_in_its_future(self):
        class Stubborn(Device):
            def _abort(self):
                raise OSError("no answer")

        futures = abort([Stubborn(), LinearMotor()])
        self.assertIsInstance(futures[0].exception(), OSError)
        self.assertIsNone(futures[1].result())
        self.assertRaises(OSError, wait, futures)


class CameraTest(unittest.TestCase):
    def test_grab_blocks_and_returns_the_frame(self):
        camera = small_camera()
        camera.start_recording().join(TIMEOUT)
        camera.trigger().join(TIMEOUT)
        frame = camera.grab()
        camera.stop_recording().join(TIMEOUT)
        self.assertEqual(frame.shape, (8, 16))
        self.assertEqual(frame.metadata["frame"], 0)
        self.assertEqual(camera.grab_async().result(TIMEOUT).metadata["trigger_source"], "SOFTWARE")

    def test_stream_pushes_into_a_consumer_until_recording_stops(self):
        camera = small_camera()
        frames = []
        camera.start_recording().join(TIMEOUT)
        for _ in range(3):
            camera.trigger().join(TIMEOUT)
        future = camera.stream(frames_into(frames, 3, camera))
        self.assertEqual(future.result(TIMEOUT), 3)
        self.assertEqual([frame.metadata["frame"] for frame in frames], [0, 1, 2])
        self.assertEqual(camera.state, "standby")

    def test_stream_needs_a_recording_camera(self):
        camera = small_camera()
        self.assertRaises(StateError, camera.stream, frames_into([], 1))

    def test_convert_is_applied_to_every_frame(self):
        camera = Camera(np.arange(6, dtype=np.uint16).reshape(2, 3), simulate=False)
        camera.convert = np.fliplr
        self.assertEqual(camera.grab().tolist(), [[2, 1, 0], [5, 4, 3]])
        with self.assertRaises(CameraError):
            camera.convert = "fliplr"

    def test_a_background_and_noise(self):
        background = np.full((4, 5), 100.0)
        camera = Camera(background=background)
        self.assertEqual(camera.sensor_width, 5 * q.pixel)
        frame = camera.grab()
        self.assertFalse(np.array_equal(frame, background))
        self.assertLess(abs(frame.mean() - 100), 10)

    def test_buffered_camera_reads_out_after_the_recording(self):
        camera = BufferedCamera(sensor_width=4 * q.pixel, sensor_height=4 * q.pixel)
        camera.trigger_source = camera.trigger_sources.SOFTWARE
        with camera.recording():
            camera.trigger().join(TIMEOUT)
            camera.trigger().join(TIMEOUT)
        self.assertEqual([frame.metadata["frame"] for frame in camera.readout_buffer()], [0, 1])

    def test_subclassing_the_base_the_legacy_way(self):
        class Constant(Base):
            def _grab_real(self):
                return np.full((2, 2), 42)

        camera = Constant()
        self.assertEqual(camera.grab().tolist(), [[42, 42], [42, 42]])


class IOTest(unittest.TestCase):
    def test_signal_on_off_and_trigger(self):
        io = IO(port_value=0)
        signal = Signal(1, io)
        signal.on().join(TIMEOUT)
        self.assertEqual(io.read_port(1).result(TIMEOUT), 1)
        self.assertEqual(signal.state, "on")
        signal.trigger(1 * q.ms).join(TIMEOUT)
        self.assertEqual(io.read_port(1).result(TIMEOUT), 0)

    def test_unknown_ports_raise_io_device_error(self):
        io = IO()
        self.assertRaises(IODeviceError, Signal, 10, io)
        self.assertRaises(IODeviceError, io.read_port(10).result, TIMEOUT)

    def test_port_value_sets_every_port(self):
        io = IO(port_value=1)
        self.assertEqual([io.read_port(port).result(TIMEOUT) for port in io.ports], [1, 1, 1, 1])


class ShutterTest(unittest.TestCase):
    def test_the_shutter_starts_open(self):
        shutter = Shutter()
        self.assertEqual(shutter.state, "open")
        shutter.close().join(TIMEOUT)
        self.assertEqual(shutter.state, "closed")
