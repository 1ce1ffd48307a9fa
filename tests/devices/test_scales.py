"""Scales: the weight of a simulated load, and taring."""

from __future__ import annotations

import contextvars

import pytest

from concert.devices.scales import base
from concert.devices.scales.dummy import Scales, TarableScales
from concert.exceptions import AccessorNotImplementedError, HardLimitError, WaitError, WriteAccessError
from concert.quantities import q
from tests.conftest import TIMEOUT


def test_starts_empty():
    scales = Scales()
    assert scales.weight == 0 * q.g
    assert scales.weight.units == q.g
    assert not hasattr(scales, "tare")


def test_weighs_the_load_in_grams():
    scales = Scales()
    scales.load = 0.25 * q.kg
    assert scales.weight == 250 * q.g
    assert scales.get_weight().result(TIMEOUT) == 250 * q.g


def test_capacity_is_a_hardware_limit():
    scales = Scales(capacity=500 * q.g)
    scales.load = 500 * q.g
    with pytest.raises(HardLimitError, match="load"):
        scales.load = 501 * q.g
    assert scales.weight == 500 * q.g


def test_weight_cannot_be_written():
    scales = Scales()
    with pytest.raises(WriteAccessError, match="weight"):
        scales.weight = 1 * q.g


def test_tare_zeroes_the_reading():
    scales = TarableScales(load=120 * q.g)
    assert isinstance(scales, base.TarableScales)
    assert scales.weight == 120 * q.g
    scales.tare().join(TIMEOUT)
    assert scales.weight == 0 * q.g
    scales.load = 150 * q.g
    assert scales.weight == 30 * q.g
    scales.load = 100 * q.g
    assert scales.weight == -20 * q.g  # less than the tare: negative, as on a real scale
    scales.tare().join(TIMEOUT)
    assert scales.weight == 0 * q.g
    scales.load = 0 * q.g
    assert scales.weight == -100 * q.g


def test_tare_waits_for_another_owners_with_block(asynchronous):
    scales = TarableScales(load=10 * q.g)
    with scales:
        stranger = contextvars.Context().run(scales.tare)  # issued by nobody inside the block
        with pytest.raises(WaitError):
            stranger.wait(0.2)
        assert scales.weight == 10 * q.g
    stranger.join(TIMEOUT)
    assert scales.weight == 0 * q.g


def test_base_tare_names_the_missing_hook():
    with pytest.raises(AccessorNotImplementedError, match="tare"):
        base.TarableScales().tare().join(TIMEOUT)
