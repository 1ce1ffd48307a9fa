"""Storage rings: read-only current, energy and lifetime; the current decays with the lifetime."""

from __future__ import annotations

import math

import pytest

from concert.devices.storagerings.dummy import StorageRing
from concert.exceptions import WriteAccessError
from concert.quantities import q
from tests.conftest import TIMEOUT


class Clock:
    """A clock the test advances by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_defaults_are_plausible():
    ring = StorageRing()
    assert 190 * q.mA < ring.current <= 200 * q.mA
    assert ring.energy == 2.5 * q.GeV
    assert ring.lifetime == 10 * q.h
    assert ring.get_energy().result(TIMEOUT).units == q.GeV


def test_current_decays_exponentially_with_the_lifetime():
    clock = Clock()
    ring = StorageRing(current=300 * q.mA, lifetime=5 * q.h, clock=clock)
    assert ring.current == 300 * q.mA
    clock.now += 5 * 3600
    assert ring.current.units == q.mA
    assert ring.current.magnitude == pytest.approx(300 / math.e, rel=1e-12)
    clock.now += 5 * 3600
    assert ring.current.magnitude == pytest.approx(300 / math.e**2, rel=1e-12)
    assert ring.lifetime == 5 * q.h


def test_arguments_are_converted():
    ring = StorageRing(current=0.1 * q.A, energy=6000 * q.MeV, lifetime=30 * q.min, clock=Clock())
    assert ring.current == 100 * q.mA
    assert ring.energy == 6 * q.GeV
    assert ring.lifetime == 0.5 * q.h


@pytest.mark.parametrize("name, value", [("current", 1 * q.mA), ("energy", 1 * q.GeV), ("lifetime", 1 * q.h)])
def test_nothing_can_be_written(name, value):
    ring = StorageRing(clock=Clock())
    with pytest.raises(WriteAccessError, match=name):
        ring[name].set(value).join(TIMEOUT)
    assert not ring[name].writable
