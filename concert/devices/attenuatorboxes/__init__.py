"""Attenuator boxes: filters of several materials and thicknesses, one of them (or none) in the beam."""
