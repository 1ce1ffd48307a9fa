"""Monochromators: energy and wavelength as two views of one setting, whichever the hardware speaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concert.devices.monochromators import base
from concert.devices.monochromators.dummy import Monochromator
from concert.dispatcher import dispatcher
from concert.exceptions import HardLimitError, LimitError, ReadAccessError, WriteAccessError
from concert.naming import describe_value
from concert.quantities import q
from tests.conftest import TIMEOUT
from tests.devices.test_families import recording

HC = 1.239841984332  # keV·nm, from the exact SI values of h and c


class WavelengthMonochromator(base.Monochromator):
    """A monochromator whose hardware speaks wavelength; counts the writes it receives."""

    def __init__(self) -> None:
        super().__init__()
        self._wavelength = 0.1 * q.nm
        self.writes = []

    def _get_wavelength_real(self):
        return self._wavelength

    def _set_wavelength_real(self, wavelength):
        self.writes.append(wavelength)
        self._wavelength = wavelength


def test_defaults():
    mono = Monochromator()
    assert mono.energy == 10 * q.keV
    assert mono.wavelength.units == q.nm
    assert mono.wavelength.magnitude == pytest.approx(HC / 10, rel=1e-12)


def test_constant_is_h_times_c():
    assert base.HC.magnitude == pytest.approx(HC, rel=1e-12)
    assert base.energy_to_wavelength(1 * q.keV).magnitude == pytest.approx(HC, rel=1e-12)
    assert base.wavelength_to_energy(HC * q.nm).magnitude == pytest.approx(1, rel=1e-12)


@pytest.mark.parametrize("cls", [Monochromator, WavelengthMonochromator])
def test_either_view_writes_the_other(cls):
    mono = cls()
    mono.wavelength = 0.05 * q.nm
    assert mono.energy.units == q.keV
    assert mono.energy.magnitude == pytest.approx(HC / 0.05, rel=1e-9)
    mono.energy = 20000 * q.eV
    assert mono.energy.magnitude == pytest.approx(20, rel=1e-9)
    assert mono.wavelength.magnitude == pytest.approx(HC / 20, rel=1e-9)


def test_wavelength_hardware_receives_wavelengths():
    mono = WavelengthMonochromator()
    mono.energy = 12.4 * q.keV
    assert len(mono.writes) == 1
    assert mono.writes[0].units == q.nm
    assert mono.writes[0].magnitude == pytest.approx(HC / 12.4, rel=1e-12)


@pytest.mark.parametrize("written, other", [("energy", "wavelength"), ("wavelength", "energy")])
def test_writing_one_view_announces_both(written, other):
    mono = Monochromator()
    value = {"energy": 15 * q.keV, "wavelength": 0.1 * q.nm}[written]
    with recording(mono[written], ["changed"]) as first, recording(mono[other], ["changed"]) as second:
        announced = dispatcher.when(mono[other], "changed")
        mono[written].set(value).join(TIMEOUT)
        assert announced.result(TIMEOUT) is mono[other]
        dispatcher.flush(TIMEOUT)
    assert first == ["changed"] and second == ["changed"]


@pytest.mark.parametrize("name, zero", [("energy", 0 * q.keV), ("wavelength", 0 * q.nm)])
def test_zero_is_refused_before_the_hardware(name, zero):
    mono = WavelengthMonochromator()  # no hardware limits: only the base class stands in the way
    before = mono.wavelength
    with pytest.raises(LimitError) as info:
        setattr(mono, name, zero)
    message = str(info.value)
    assert repr(mono) in message and name in message and f"{describe_value(zero)} is not positive" in message
    mono[name].lower = None  # without the soft limit, negative values meet the same check
    with pytest.raises(LimitError):
        setattr(mono, name, -zero - 1 * zero.units)
    assert mono.writes == [] and mono.wavelength == before


def test_tuning_range_limits_both_views():
    mono = Monochromator(energy_range=(5 * q.keV, 50 * q.keV))
    with pytest.raises(HardLimitError, match="energy"):
        mono.energy = 4 * q.keV
    with pytest.raises(HardLimitError, match="wavelength"):
        mono.wavelength = 1.1 * HC / 5 * q.nm  # 4.5 keV
    with pytest.raises(HardLimitError, match="wavelength"):
        mono.wavelength = 0.9 * HC / 50 * q.nm  # 55 keV
    assert mono.energy == 10 * q.keV


def test_an_implementation_without_accessors_names_both_choices():
    mono = base.Monochromator()
    for name in ("energy", "wavelength"):
        with pytest.raises(ReadAccessError, match="neither _get_energy_real nor _get_wavelength_real"):
            getattr(mono, name)
    with pytest.raises(WriteAccessError, match="neither _set_energy_real nor _set_wavelength_real"):
        mono.energy = 10 * q.keV


@settings(max_examples=200, deadline=None, database=None)
@given(st.floats(min_value=HC / 99.999, max_value=HC / 1.001, allow_nan=False))
def test_wavelength_then_energy_is_consistent(nanometres):
    mono = Monochromator()
    mono.wavelength = nanometres * q.nm
    assert mono.energy.magnitude * nanometres == pytest.approx(HC, rel=1e-9)
    assert mono.wavelength.magnitude == pytest.approx(nanometres, rel=1e-9)


@settings(max_examples=200, deadline=None, database=None)
@given(st.floats(min_value=1e-3, max_value=1e6, allow_nan=False))
def test_conversion_round_trips(kiloelectronvolts):
    energy = kiloelectronvolts * q.keV
    back = base.wavelength_to_energy(base.energy_to_wavelength(energy))
    assert back.magnitude == pytest.approx(kiloelectronvolts, rel=1e-12)
