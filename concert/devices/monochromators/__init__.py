"""Monochromators: select the photon energy (or, equivalently, the wavelength) of the beam."""
