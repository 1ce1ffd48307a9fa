"""What every detector offers: ``magnification`` and the pixel size in the object plane.

A :class:`Detector` is a camera behind optics (a scintillator and an
objective, say) that magnify the object onto the sensor. One sensor pixel
then sees a smaller patch of the object:

* ``pixel_width`` = the camera's ``sensor_pixel_width`` / ``magnification``,
* ``pixel_height`` = the camera's ``sensor_pixel_height`` / ``magnification``,

both read-only lengths in µm, computed from the camera and the
magnification at every read (so they follow a change of either). Pixels of
the frame are pixels of the sensor: a region of interest crops the frame
but does not change the pixel size.

``magnification`` (a plain number, no unit) must be positive: a negative
value raises :class:`~concert.exceptions.SoftLimitError` (the soft lower
limit is 0), zero raises :class:`~concert.exceptions.LimitError`, in both
cases before the hardware is touched.

Implementations provide the hardware side:

* ``_get_magnification_real()``: the magnification now, a number or a
  dimensionless quantity;
* ``_set_magnification_real(magnification)``: change it (a dimensionless
  quantity, positive, already checked), returning once it is in effect;
  optics that cannot change leave it out, and writes raise
  :class:`~concert.exceptions.WriteAccessError`.

A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented); reads and writes of the parameter
then raise :class:`~concert.exceptions.ReadAccessError` or
:class:`~concert.exceptions.WriteAccessError` naming it.
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError, DeviceError, LimitError
from concert.naming import describe_value
from concert.parameters import Parameterizable, Quantity, QuantityValue
from concert.quantities import q

__all__ = ["Detector"]


class Detector(Device):
    """A camera behind magnifying optics (see the module documentation).

    ``camera`` is the camera the detector reads out: any device with the
    length quantities ``sensor_pixel_width`` and ``sensor_pixel_height``
    (every :class:`~concert.devices.cameras.base.Camera`).

    :raises DeviceError: ``camera`` has no such parameters.
    """

    magnification = Quantity(
        q.dimensionless, lower=0 * q.dimensionless, help="Magnification of the optics in front of the camera"
    )
    pixel_width = Quantity(
        q.um, help="Width of one pixel in the object plane: sensor pixel width / magnification"
    )
    pixel_height = Quantity(
        q.um, help="Height of one pixel in the object plane: sensor pixel height / magnification"
    )

    def __init__(self, camera: Any) -> None:
        for name in ("sensor_pixel_width", "sensor_pixel_height"):
            if not (isinstance(camera, Parameterizable) and name in camera and _is_length(camera[name])):
                raise DeviceError(
                    f"{type(self).__name__}: camera={describe_value(camera)} is not a camera "
                    f"(it has no length quantity {name!r})"
                )
        self._camera = camera  # fixed for the detector's life
        super().__init__()

    @property
    def camera(self) -> Any:
        """The camera the detector reads out."""
        return self._camera

    def _pixel(self, name: str) -> Any:
        size = self._camera[name].read()
        return (size / self["magnification"].read()).to(q.um)

    def _get_pixel_width(self) -> Any:
        return self._pixel("sensor_pixel_width")

    def _get_pixel_height(self) -> Any:
        return self._pixel("sensor_pixel_height")

    def _get_magnification(self) -> Any:
        return self._get_magnification_real()

    def _set_magnification(self, magnification: Any) -> None:
        # Negative values are refused by the soft limit already (unless a user removed it).
        if not magnification.magnitude > 0:
            raise LimitError(
                f"{self!r}['magnification']: {describe_value(magnification)} is not positive "
                "(a magnification is a positive number)"
            )
        self._set_magnification_real(magnification)

    # -- what implementations provide ------------------------------------------------

    def _get_magnification_real(self) -> Any:
        """Return the magnification now (a number or a dimensionless quantity)."""
        raise AccessorNotImplementedError(f"{self!r} cannot read its magnification")

    def _set_magnification_real(self, magnification: Any) -> None:
        """Change the magnification (positive, dimensionless); return once it is in effect."""
        raise AccessorNotImplementedError(f"{self!r} cannot change its magnification")


def _is_length(value: Any) -> bool:
    return isinstance(value, QuantityValue) and value.unit.dimensionality == q.mm.dimensionality
