"""Shutters: open and close the beam."""
