"""Legacy-style tests of the push-style coroutines: unittest classes, legacy imports only.

They run with ``nosetests --disable-async tests/nose/test_legacy_coroutines.py``
and with pytest (``python -m pytest tests/nose/test_legacy_coroutines.py``),
as a legacy script would use these modules.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import unittest

import numpy as np

from concert.coroutines.base import broadcast, coroutine, inject
from concert.coroutines.filters import (
    PickSlice,
    Timer,
    absorptivity,
    average_images,
    backproject,
    downsize,
    flat_correct,
    process,
    queue,
    sinograms,
    stall,
)
from concert.coroutines.sinks import Accumulate, Result, null
from concert.storage import DirectoryWalker, DummyWalker, read_image
from concert.writers import TiffWriter


@coroutine
def collect(items):
    while True:
        item = yield
        items.append(item)


class TestCoroutines(unittest.TestCase):
    def test_coroutine_and_inject(self):
        items = []
        inject(range(5), collect(items))
        self.assertEqual(items, [0, 1, 2, 3, 4])

    def test_broadcast_to_several_consumers(self):
        first, second = [], []
        inject(range(3), broadcast(collect(first), collect(second)))
        self.assertEqual(first, [0, 1, 2])
        self.assertEqual(second, [0, 1, 2])

    def test_broadcast_with_null(self):
        items = []
        inject(range(3), broadcast(null(), collect(items)))
        self.assertEqual(items, [0, 1, 2])

    def test_a_consumer_exception_reaches_the_sender(self):
        @coroutine
        def broken():
            while True:
                yield
                raise RuntimeError("broken consumer")

        self.assertRaises(RuntimeError, inject, range(3), broken())


class TestSinks(unittest.TestCase):
    def test_result(self):
        result = Result()
        inject(range(4), result())
        self.assertEqual(result.result, 3)

    def test_accumulate_list(self):
        accumulate = Accumulate()
        inject(range(4), accumulate())
        self.assertEqual(accumulate.items, [0, 1, 2, 3])

    def test_accumulate_preallocated(self):
        accumulate = Accumulate(shape=(3, 2, 2), dtype=np.float32)
        inject((np.ones((2, 2)) * i for i in range(3)), accumulate())
        self.assertEqual(accumulate.items.shape, (3, 2, 2))
        self.assertEqual(accumulate.items.dtype, np.float32)
        np.testing.assert_array_equal(accumulate.items[:, 0, 0], [0, 1, 2])

    def test_accumulate_refuses_too_many_items(self):
        accumulate = Accumulate(shape=(1, 2))
        consumer = accumulate()
        consumer.send(np.zeros(2))
        self.assertRaises(ValueError, consumer.send, np.zeros(2))  # LimitError is a ValueError

    def test_accumulate_is_reset_by_each_call(self):
        accumulate = Accumulate()
        inject(range(2), accumulate())
        inject(range(3), accumulate())
        self.assertEqual(accumulate.items, [0, 1, 2])


class TestFilters(unittest.TestCase):
    def setUp(self):
        self.data = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4) + 1

    def test_downsize(self):
        accumulate = Accumulate()
        inject(self.data, downsize(accumulate(), x_slice=(0, 4, 2), y_slice=(1, 3, 1), z_slice=(1, 2, 1)))
        self.assertEqual(len(accumulate.items), 1)
        np.testing.assert_array_equal(accumulate.items[0], self.data[1, 1:3, 0:4:2])

    def test_flat_correct(self):
        flat = np.full((3, 4), 4.0)
        dark = np.ones((3, 4))
        result = Result()
        inject(self.data, flat_correct(flat, result(), dark=dark))
        np.testing.assert_allclose(result.result, (self.data[1] - dark) / (flat - dark), rtol=1e-6)

    def test_flat_correct_refuses_a_frame_of_another_shape(self):
        consumer = flat_correct(np.ones((3, 4)), null())
        self.assertRaises(ValueError, consumer.send, np.ones((4, 3)))

    def test_absorptivity(self):
        result = Result()
        inject(self.data, absorptivity(result()))
        np.testing.assert_allclose(result.result, -np.log(self.data[1]), rtol=1e-6)

    def test_average_images(self):
        result = Result()
        inject(self.data, average_images(result()))
        np.testing.assert_allclose(result.result, self.data.mean(axis=0))

    def test_sinograms(self):
        result = Result()
        inject(self.data, sinograms(2, result()))
        self.assertEqual(result.result.shape, (3, 2, 4))
        np.testing.assert_array_equal(result.result[1], self.data[:, 1, :])

    def test_stall(self):
        accumulate = Accumulate()
        inject(range(1, 11), stall(accumulate(), per_shot=3, flush_at=10))
        self.assertEqual(accumulate.items, [3, 6, 9, 10])

    def test_pick_slice(self):
        result = Result()
        inject([self.data], PickSlice(1)(result()))
        np.testing.assert_array_equal(result.result, self.data[1])

    def test_process(self):
        accumulate = Accumulate()
        inject(range(3), process(lambda x, y: x + y, accumulate(), 10))
        self.assertEqual(accumulate.items, [10, 11, 12])

    def test_timer(self):
        timer = Timer()
        inject(range(3), timer(null()))
        self.assertEqual(len(timer.durations), 3)
        self.assertGreaterEqual(timer.duration.to("s").magnitude, 0)

    def test_queue(self):
        items, threads = [], []

        @coroutine
        def record():
            while True:
                items.append((yield))
                threads.append(threading.current_thread())

        consumer = queue(record())
        inject(range(10), consumer)
        consumer.close()  # waits for every item
        self.assertEqual(items, list(range(10)))
        self.assertNotIn(threading.current_thread(), threads)

    def test_backproject_a_point(self):
        width, projections, center = 32, 60, 16.0
        sinogram = np.zeros((projections, width))
        for k in range(projections):
            angle = k * np.pi / projections
            sinogram[k, round(center + 4 * np.cos(angle))] = 1
        result = Result()
        backproject(center, result()).send(sinogram)
        row, column = np.unravel_index(np.argmax(result.result), result.result.shape)
        self.assertEqual((row, column), (16, 20))


class TestWalkerSinks(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_write_coroutine(self):
        walker = DirectoryWalker(root=self.root, writer=TiffWriter, dsetname="frame_{:>04}.tif")
        consumer = walker.write()
        inject((np.ones((4, 4), dtype=np.uint16) * i for i in range(3)), consumer)
        consumer.close()
        self.assertTrue(walker.exists("frame_0002.tif"))
        np.testing.assert_array_equal(read_image(f"{self.root}/frame_0002.tif"), 2)

    def test_write_data(self):
        walker = DirectoryWalker(root=self.root)
        walker.write(data=[np.ones((2, 2))]).join()
        self.assertTrue(walker.exists("frame_000000.tif"))

    def test_dummy_walker(self):
        walker = DummyWalker()
        consumer = walker.write(dsetname="frames")
        inject([np.zeros((2, 2))] * 2, consumer)
        consumer.close()
        self.assertEqual(len(walker.data["frames"]), 2)


if __name__ == "__main__":
    unittest.main()


class TestSeed003AsyncioHelpers(unittest.TestCase):
    """The asyncio-era names of concert.coroutines.base, used as seed 003 shows them."""

    def test_run_in_loop_with_awaited_device_futures(self):
        from concert.coroutines.base import run_in_loop, wait_until
        from concert.devices.motors.dummy import LinearMotor
        from concert.quantities import q

        motor = LinearMotor(position=0 * q.mm, motion_velocity=1000 * q.mm / q.s)

        async def main():
            await motor.set_position(3 * q.mm)
            await wait_until(lambda: motor.state == "standby", sleep_time=0.001, timeout=10)
            return motor.position

        self.assertEqual(run_in_loop(main()), 3 * q.mm)

    def test_background_starts_a_task(self):
        from concert.coroutines.base import background, run_in_loop

        @background
        async def answer():
            return 42

        async def main():
            return await answer()

        self.assertEqual(run_in_loop(main()), 42)
