"""A positioner that works in pixels of a detector: move the sample by what the image shows.

:class:`Positioner` is a :class:`~concert.devices.positioners.base.Positioner`
whose ``position``, ``move``, ``right``/``left``/``up``/``down``/``forward``/``back``
take and give lengths in pixels (``q.pixel``) of a
:class:`~concert.devices.detectors.base.Detector`. A pixel is as long as
the detector's pixel in the object plane: ``pixel_width`` along x,
``pixel_height`` along y, and ``pixel_width`` along z too (the beam
direction has no pixel of its own; turning the sample by 90° brings z into
x). The pixel size is read from the detector at every call, so the
positioner follows a change of magnification; the motors still move in
their own units.

The directions are those of the laboratory frame (see
:mod:`concert.devices.positioners.base`): +x to the right on the detector
(increasing column), +y **up** -- towards row 0 of the frame, whose rows
increase downwards -- and +z along the beam. So ``up(10 * q.pixel)`` moves
the sample image 10 rows towards the top of the frame.
``orientation`` and ``rotate`` stay in angles.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from concert.devices.positioners import base
from concert.devices.positioners.base import ROTATION, TRANSLATION, Axis, Vector
from concert.exceptions import DeviceError
from concert.naming import describe_value
from concert.parameters import Parameterizable
from concert.quantities import q

__all__ = ["Positioner"]

_DECIMALS = 9  # of a pixel, in readings


class Positioner(base.Positioner):
    """A positioner working in pixels of ``detector`` (see the module documentation).

    ``axes`` and ``position`` are those of the base class; ``position``,
    the origin, is a length (the mechanics do not depend on the optics).

    :raises DeviceError: ``detector`` has no ``pixel_width`` and
        ``pixel_height`` parameters.
    """

    position = Vector(q.pixel, TRANSLATION, help="Position [x, y, z] in pixels of the detector")

    def __init__(self, axes: Iterable[Axis], detector: Any, position: Any = None) -> None:
        for name in ("pixel_width", "pixel_height"):
            if not (isinstance(detector, Parameterizable) and name in detector):
                raise DeviceError(
                    f"{type(self).__name__}: detector={describe_value(detector)} is not a detector "
                    f"(it has no {name!r} parameter)"
                )
        self._detector = detector  # fixed for the positioner's life
        super().__init__(axes, position)

    @property
    def detector(self) -> Any:
        """The detector whose pixels the positioner works in."""
        return self._detector

    def _pixel_size(self) -> np.ndarray:
        """The length of one pixel along x, y and z, in mm, as the detector says now."""
        width = self._detector["pixel_width"].read().m_as(q.mm)
        height = self._detector["pixel_height"].read().m_as(q.mm)
        return np.array([width, height, width])

    def _to_lab(self, kind: str, numbers: np.ndarray) -> np.ndarray:
        if kind == ROTATION:
            return super()._to_lab(kind, numbers)
        return numbers * self._pixel_size()

    def _from_lab(self, kind: str, numbers: np.ndarray) -> np.ndarray:
        if kind == ROTATION:
            return super()._from_lab(kind, numbers)
        # Rounded to 1e-9 pixel -- far below one motor step -- so that 65 µm over 0.65 µm
        # pixels reads 100 pixels, not 99.99999999999999.
        return np.round(numbers / self._pixel_size(), _DECIMALS)
