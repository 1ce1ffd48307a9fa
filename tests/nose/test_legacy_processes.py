"""Legacy-style tests of the legacy processes: unittest classes, legacy imports only.

They run with ``nosetests --disable-async tests/nose/test_legacy_processes.py``
and with pytest (``python -m pytest tests/nose/test_legacy_processes.py``),
as a script written for the legacy Concert would use these modules.
"""

from __future__ import annotations

import unittest

import numpy as np

from concert import config
from concert.devices.cameras.dummy import Camera
from concert.devices.motors.dummy import LinearMotor
from concert.helpers import Region
from concert.processes.common import ascan, dscan, focus, scan
from concert.quantities import q

TIMEOUT = 30


def fast_motor():
    return LinearMotor(motion_velocity=10 * q.m / q.s)


class SharpAtTwoMillimetres(Camera):
    """Frames whose spread (std) is largest with the lens motor at 2 mm."""

    def __init__(self, lens):
        self.lens = lens
        super().__init__(sensor_width=16 * q.pixel, sensor_height=16 * q.pixel)

    def _grab_real(self, timeout):
        frame = super()._grab_real(timeout)
        if frame is not None:
            defocus = (self.lens.position - 2 * q.mm).to(q.mm).magnitude
            frame[:] = 100 + 800 * (np.indices(frame.shape).sum(axis=0) % 2) / (1 + defocus**2)
        return frame


class LegacyProcessTest(unittest.TestCase):
    def setUp(self):
        self.progress_bar = config.PROGRESS_BAR
        config.PROGRESS_BAR = False
        self.x_motor, self.y_motor = fast_motor(), fast_motor()

    def tearDown(self):
        config.PROGRESS_BAR = self.progress_bar

    def test_scan_visits_every_point_the_last_region_fastest(self):
        x_region = Region(self.x_motor["position"], np.linspace(0, 1, 2) * q.mm)
        y_region = Region(self.y_motor["position"], np.linspace(0, 2, 3) * q.mm)
        flats = []
        futures = scan(
            lambda: (self.x_motor.position + self.y_motor.position).to(q.mm).magnitude,
            [x_region, y_region],
            callbacks={x_region: lambda: flats.append(self.x_motor.position)},
        )
        results = [future.result(TIMEOUT) for future in futures]
        self.assertEqual([(x.magnitude, y.magnitude) for x, y, _ in results], [
            (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2),
        ])  # fmt: skip
        self.assertEqual([z for _, _, z in results], [0, 1, 2, 1, 2, 3])
        self.assertEqual(len(flats), 2)

    def test_ascan_and_dscan_call_the_handler_at_every_step(self):
        seen = []

        def handler(parameters):
            seen.append(parameters[0].get().result(TIMEOUT).to(q.mm).magnitude)

        ascan([(self.x_motor["position"], 0 * q.mm, 2 * q.mm)], 2, handler).join(TIMEOUT)
        self.assertEqual(seen, [0, 1, 2])
        del seen[:]
        dscan([(self.x_motor["position"], -1 * q.mm, 1 * q.mm)], 2, handler).join(TIMEOUT)
        self.assertEqual(seen, [1, 2, 3])
        self.assertEqual(self.x_motor.position, 2 * q.mm)

    def test_focus_finds_the_sharpest_position(self):
        camera = SharpAtTwoMillimetres(self.x_motor)
        focus(camera, self.x_motor, opt_kwargs={"initial_step": 1 * q.mm, "epsilon": 10 * q.um}).join(TIMEOUT)
        self.assertAlmostEqual(self.x_motor.position.to(q.mm).magnitude, 2, delta=0.03)
        self.assertEqual(camera.state, "standby")

    def test_scan_with_an_empty_region_is_refused(self):
        from concert.exceptions import ConcertError

        with self.assertRaises(ConcertError):
            scan(lambda: 0, Region(self.x_motor["position"], []))


if __name__ == "__main__":
    unittest.main()
