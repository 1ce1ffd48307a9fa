"""What every monochromator offers: ``energy`` (keV) and ``wavelength`` (nm).

The two parameters are two views of one setting, related by
λ = h·c / E with the exact SI values of the Planck constant and the speed of
light. An implementation provides one pair of accessors, whichever its
hardware speaks:

* ``_get_energy_real()``/``_set_energy_real(energy)`` (keV), or
* ``_get_wavelength_real()``/``_set_wavelength_real(wavelength)`` (nm),

and this base class converts for the other parameter. The setter receives a
positive value, converted and checked against the limits of the parameter
written, and returns once the monochromator is tuned; an exception
propagates to the writer. With neither pair, reads and writes raise
:class:`~concert.exceptions.ReadAccessError` or
:class:`~concert.exceptions.WriteAccessError` naming both. Writing either one
sends ``'changed'`` for both. Energies and wavelengths must be positive: a
negative value raises :class:`~concert.exceptions.SoftLimitError` (the soft
lower limit is 0), zero raises :class:`~concert.exceptions.LimitError`, in
both cases before the hardware is touched.
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.dispatcher import dispatcher
from concert.exceptions import AccessorNotImplementedError, LimitError
from concert.naming import describe_value
from concert.parameters import Quantity
from concert.quantities import q

__all__ = ["Monochromator", "energy_to_wavelength", "wavelength_to_energy"]

#: h·c, the product that relates photon energy and wavelength.
HC = (1 * q.planck_constant * q.speed_of_light).to(q.keV * q.nm)


_NEITHER = "{0!r} implements neither _{1}_energy_real nor _{1}_wavelength_real"


def energy_to_wavelength(energy: Any) -> Any:
    """Return the wavelength (nm) of photons of ``energy`` (an energy quantity, not zero)."""
    return (HC / energy).to(q.nm)


def wavelength_to_energy(wavelength: Any) -> Any:
    """Return the energy (keV) of photons of ``wavelength`` (a length quantity, not zero)."""
    return (HC / wavelength).to(q.keV)


class Monochromator(Device):
    """A monochromator (see the module documentation)."""

    energy = Quantity(q.keV, lower=0 * q.keV, help="Photon energy")
    wavelength = Quantity(q.nm, lower=0 * q.nm, help="Photon wavelength, h·c / energy")

    def _uses(self, accessor: str, alternative: str) -> bool:
        """Whether to call ``accessor`` rather than convert the result of ``alternative``.

        True when the implementation overrides ``accessor``, and also when it
        overrides neither (so that the base accessor raises, naming both).
        """
        return self._overrides(accessor) or not self._overrides(alternative)

    def _overrides(self, accessor: str) -> bool:
        return getattr(type(self), accessor) is not getattr(Monochromator, accessor)

    def _refuse_zero(self, name: str, value: Any) -> None:
        # Negative values are refused by the soft limits already (unless a user removed them).
        if value.magnitude <= 0:
            raise LimitError(f"{self!r}[{name!r}]: {describe_value(value)} is not positive")

    def _get_energy(self) -> Any:
        if self._uses("_get_energy_real", "_get_wavelength_real"):
            return self._get_energy_real()
        return wavelength_to_energy(self._get_wavelength_real())

    def _set_energy(self, energy: Any) -> None:
        self._refuse_zero("energy", energy)
        if self._uses("_set_energy_real", "_set_wavelength_real"):
            self._set_energy_real(energy)
        else:
            self._set_wavelength_real(energy_to_wavelength(energy))
        dispatcher.send(self["wavelength"], "changed")

    def _get_wavelength(self) -> Any:
        if self._uses("_get_wavelength_real", "_get_energy_real"):
            return self._get_wavelength_real()
        return energy_to_wavelength(self._get_energy_real())

    def _set_wavelength(self, wavelength: Any) -> None:
        self._refuse_zero("wavelength", wavelength)
        if self._uses("_set_wavelength_real", "_set_energy_real"):
            self._set_wavelength_real(wavelength)
        else:
            self._set_energy_real(wavelength_to_energy(wavelength))
        dispatcher.send(self["energy"], "changed")

    # -- what implementations provide (one pair of the two) ------------------------------

    def _get_energy_real(self) -> Any:
        raise AccessorNotImplementedError(_NEITHER.format(self, "get"))

    def _set_energy_real(self, energy: Any) -> None:
        raise AccessorNotImplementedError(_NEITHER.format(self, "set"))

    def _get_wavelength_real(self) -> Any:
        raise AccessorNotImplementedError(_NEITHER.format(self, "get"))

    def _set_wavelength_real(self, wavelength: Any) -> None:
        raise AccessorNotImplementedError(_NEITHER.format(self, "set"))
