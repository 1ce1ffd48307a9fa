"""Photodiodes: a read-only output voltage following the simulated light power."""

from __future__ import annotations

import pytest

from concert.devices.photodiodes.dummy import PhotoDiode
from concert.exceptions import WriteAccessError
from concert.quantities import q
from tests.conftest import TIMEOUT


def test_default_reading_is_plausible():
    diode = PhotoDiode()
    assert diode.intensity == 1 * q.V
    assert diode.get_intensity().result(TIMEOUT).units == q.V


def test_intensity_follows_the_light_power():
    diode = PhotoDiode(gain=2 * q.V / q.mW, dark_voltage=10 * q.mV)
    diode.light_power = 0 * q.W
    assert diode.intensity.magnitude == pytest.approx(0.01)
    diode.light_power = 2500 * q.uW
    assert diode.intensity.magnitude == pytest.approx(5.01)


def test_output_saturates():
    diode = PhotoDiode(saturation=5 * q.V)
    diode.light_power = 1 * q.W
    assert diode.intensity == 5 * q.V


def test_intensity_cannot_be_written():
    diode = PhotoDiode()
    with pytest.raises(WriteAccessError, match="intensity"):
        diode.intensity = 2 * q.V
    assert diode.intensity == 1 * q.V
