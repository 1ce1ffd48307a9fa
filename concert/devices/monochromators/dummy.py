"""A simulated monochromator: 10 keV, tunable from 1 keV to 100 keV, instantly.

``Monochromator()`` needs no arguments. It stores the energy (the base class
derives the wavelength). The tuning range is a hardware limit of both
parameters: outside it, :class:`~concert.exceptions.HardLimitError` is raised
before the monochromator is touched.
"""

from __future__ import annotations

from typing import Any

from concert.devices.monochromators import base
from concert.devices.monochromators.base import energy_to_wavelength
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["Monochromator"]


def _lowest_energy(mono: Monochromator) -> Any:
    return mono._energy_range[0]


def _highest_energy(mono: Monochromator) -> Any:
    return mono._energy_range[1]


def _shortest_wavelength(mono: Monochromator) -> Any:
    return energy_to_wavelength(mono._energy_range[1])


def _longest_wavelength(mono: Monochromator) -> Any:
    return energy_to_wavelength(mono._energy_range[0])


class Monochromator(base.Monochromator):
    """A simulated monochromator; ``energy`` and the two ends of ``energy_range`` are energies."""

    energy = Quantity(
        q.keV,
        lower=0 * q.keV,
        external_lower_getter=_lowest_energy,
        external_upper_getter=_highest_energy,
        help="Photon energy",
    )
    wavelength = Quantity(
        q.nm,
        lower=0 * q.nm,
        external_lower_getter=_shortest_wavelength,
        external_upper_getter=_longest_wavelength,
        help="Photon wavelength, h·c / energy",
    )

    def __init__(self, energy: Any = 10 * q.keV, energy_range: Any = (1 * q.keV, 100 * q.keV)) -> None:
        self._energy = energy.to(q.keV)
        self._energy_range = (energy_range[0].to(q.keV), energy_range[1].to(q.keV))
        super().__init__()

    def _get_energy_real(self) -> Any:
        return self._energy

    def _set_energy_real(self, energy: Any) -> None:
        self._energy = energy
