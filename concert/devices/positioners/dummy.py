"""Simulated positioners: three linear and three rotation motors, moving in real time.

``Positioner()`` needs no arguments: it has a translation axis along x, y
and z and a rotation axis about each, every one a simulated motor of
:mod:`concert.devices.motors.dummy` at its defaults (100 mm/s between
±1 m; 90°/s between ±3600°), so moves take real time, stop part-way and
respect the motors' hard limits. ``ImagingPositioner()`` is the same in
pixels of a simulated :class:`~concert.devices.detectors.dummy.Detector`.
"""

from __future__ import annotations

from typing import Any, List, Optional

from concert.devices.detectors.dummy import Detector
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.devices.positioners import base, imaging
from concert.devices.positioners.base import Axis

__all__ = ["ImagingPositioner", "Positioner"]


def _axes() -> List[Axis]:
    return [Axis(coordinate, LinearMotor()) for coordinate in "xyz"] + [
        Axis(coordinate, RotationMotor()) for coordinate in "xyz"
    ]


class Positioner(base.Positioner):
    """A positioner on six new simulated motors; ``position`` is its origin (default ``[0, 0, 0]``)."""

    def __init__(self, position: Any = None) -> None:
        super().__init__(_axes(), position)


class ImagingPositioner(imaging.Positioner):
    """An imaging positioner on six new simulated motors and ``detector`` (default: a new simulated one)."""

    def __init__(self, detector: Optional[Any] = None, position: Any = None) -> None:
        super().__init__(_axes(), Detector() if detector is None else detector, position)
