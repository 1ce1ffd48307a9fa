"""Storage rings: the electron beam feeding a synchrotron beamline (read-only)."""
