"""Detectors: a camera behind optics, and the size of its pixels in the object plane."""
