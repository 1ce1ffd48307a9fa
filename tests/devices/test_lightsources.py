"""Light sources: a settable intensity between 0 V and the hardware maximum."""

from __future__ import annotations

import pytest

from concert.devices.lightsources.dummy import LightSource
from concert.dispatcher import dispatcher
from concert.exceptions import HardLimitError, SoftLimitError
from concert.quantities import q
from tests.conftest import TIMEOUT


def test_starts_dark():
    source = LightSource()
    assert source.intensity == 0 * q.V
    assert source["intensity"].lower == 0 * q.V


def test_intensity_is_set_and_announced():
    source = LightSource()
    changed = dispatcher.when(source["intensity"], "changed")
    source.set_intensity(2500 * q.mV).join(TIMEOUT)
    assert changed.result(TIMEOUT) is source["intensity"]
    assert source.intensity == 2.5 * q.V


def test_limits():
    source = LightSource(max_intensity=5 * q.V)
    source.intensity = 5 * q.V
    source.intensity = 0 * q.V
    with pytest.raises(HardLimitError, match="intensity"):
        source.intensity = 5.5 * q.V
    with pytest.raises(SoftLimitError, match="intensity"):
        source.intensity = -0.1 * q.V
    assert source.intensity == 0 * q.V


def test_stash_and_restore():
    source = LightSource(intensity=3 * q.V)
    source.stash().join(TIMEOUT)
    source.intensity = 7 * q.V
    source.restore().join(TIMEOUT)
    assert source.intensity == 3 * q.V
