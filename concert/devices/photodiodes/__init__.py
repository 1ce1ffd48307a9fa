"""Photodiodes: measure light (or X-ray) intensity as a voltage."""
