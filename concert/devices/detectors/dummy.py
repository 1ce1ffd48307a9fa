"""A simulated detector: the simulated camera behind optics of a settable magnification.

``Detector()`` needs no arguments: it reads out a new simulated
:class:`~concert.devices.cameras.dummy.Camera` (6.5 µm sensor pixels) at a
magnification of 1, so its pixels are 6.5 µm wide and high. Writing
``magnification`` takes effect at once (a turret of objectives is a
:class:`~concert.devices.lenschangers.dummy.LensChanger`).
"""

from __future__ import annotations

from typing import Any, Optional

from concert.devices.cameras.dummy import Camera
from concert.devices.detectors import base
from concert.exceptions import LimitError, UnitError
from concert.naming import describe_value

__all__ = ["Detector"]


class Detector(base.Detector):
    """A simulated detector over ``camera`` (default: a new simulated camera) at ``magnification``.

    ``magnification`` is a positive number (or dimensionless quantity).

    :raises DeviceError: ``camera`` is not a camera.
    :raises UnitError: ``magnification`` has a unit.
    :raises LimitError: ``magnification`` is not a positive finite number.
    """

    def __init__(self, camera: Optional[Any] = None, magnification: Any = 1) -> None:
        super().__init__(Camera() if camera is None else camera)
        try:
            value = self["magnification"]._validate(magnification)
        except (UnitError, LimitError) as error:
            raise type(error)(f"Detector: magnification={describe_value(magnification)}: {error}") from None
        if not value.magnitude > 0:
            raise LimitError(f"Detector: magnification={describe_value(magnification)} is not positive")
        # Replaced whole by the setter (one attribute write, atomic); read without a lock.
        self._magnification = value

    def _get_magnification_real(self) -> Any:
        return self._magnification

    def _set_magnification_real(self, magnification: Any) -> None:
        self._magnification = magnification
