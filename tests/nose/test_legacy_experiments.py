"""Legacy-style tests of the legacy experiments: unittest classes, legacy imports only.

They run with ``nosetests --disable-async tests/nose/test_legacy_experiments.py``
and with pytest (``python -m pytest tests/nose/test_legacy_experiments.py``),
as a script written for the legacy Concert would use these modules.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import unittest

import numpy as np

from concert.coroutines.base import coroutine
from concert.devices.cameras.dummy import Camera
from concert.experiments.addons import Accumulator, AddonError, ImageWriter
from concert.experiments.base import Acquisition, Experiment, ExperimentError
from concert.experiments.imaging import frames
from concert.quantities import q
from concert.storage import DirectoryWalker, DummyWalker, read_image

TIMEOUT = 30


def produce(count, value=0):
    def producer():
        for i in range(count):
            yield np.full((4, 4), value + i, dtype=np.uint16)

    return producer


class LegacyExperimentTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.walker = DirectoryWalker(root=self.root)
        self.darks = Acquisition("darks", produce(2))
        self.flats = Acquisition("flats", produce(3, 100))
        self.experiment = Experiment([self.darks, self.flats], self.walker)

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_run_writes_one_directory_per_run(self):
        writer = ImageWriter(self.experiment.acquisitions, self.walker)
        accumulator = Accumulator(self.experiment.acquisitions)
        self.experiment.run().join(TIMEOUT)
        self.experiment.run().join(TIMEOUT)
        self.assertEqual(sorted(os.listdir(self.root)), ["scan_0001", "scan_0002"])
        flats = os.path.join(self.root, "scan_0002", "flats")
        values = [read_image(os.path.join(flats, name))[0, 0] for name in sorted(os.listdir(flats))]
        self.assertEqual(values, [100, 101, 102])
        self.assertEqual(len(accumulator.items[self.darks]), 2)
        with open(os.path.join(self.root, "scan_0001", "experiment.json")) as stream:
            self.assertEqual(json.load(stream)["outcome"], "done")
        self.assertEqual(self.experiment.iteration, 3)
        writer.detach()

    def test_acquisitions_by_name_and_their_consumers(self):
        seen = []

        @coroutine
        def count():
            while True:
                yield
                seen.append(1)

        self.assertIs(self.experiment.flats, self.flats)
        self.assertIs(self.experiment.get_acquisition("darks"), self.darks)
        self.flats.consumers.append(count)
        self.experiment.swap(self.darks, self.flats)
        self.assertEqual([a.name for a in self.experiment.acquisitions], ["flats", "darks"])
        self.experiment.run().join(TIMEOUT)
        self.assertEqual(len(seen), 3)
        self.assertEqual(self.experiment.state, "standby")

    def test_frames_of_the_camera(self):
        camera = Camera(sensor_width=8 * q.pixel, sensor_height=4 * q.pixel)
        accumulator_target = Acquisition("projections", lambda: frames(3, camera))
        accumulator = Accumulator([accumulator_target], shapes=[(3, 4, 8)], dtype=np.uint16)
        Experiment([accumulator_target], DummyWalker()).run().join(TIMEOUT)
        self.assertEqual(accumulator.items[accumulator_target].shape, (3, 4, 8))
        self.assertEqual(camera.trigger_source, camera.trigger_sources.AUTO)

    def test_wrong_use_is_refused(self):
        with self.assertRaises(ExperimentError):
            Experiment([self.darks, Acquisition("darks", produce(1))])
        with self.assertRaises(ExperimentError):
            self.experiment.get_acquisition("missing")
        with self.assertRaises(ExperimentError):
            self.experiment.remove(Acquisition("radios", produce(1)))
        accumulator = Accumulator([self.darks])
        with self.assertRaises(AddonError):
            accumulator.attach()


if __name__ == "__main__":
    unittest.main()
