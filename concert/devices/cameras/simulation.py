"""The simulated beamline the dummy camera images: a sample on a rotation stage, in a beam.

What lives here:

* the sample models :class:`Needle` and :class:`Sphere` (also importable from
  :mod:`concert.devices.cameras.dummy`; their base is :class:`Sample`), placed
  on the stage with length quantities;
* :class:`Beam`, the beam's profile on the detector: flat, or Gaussian with
  its centre anywhere;
* :class:`Simulation`, the projector: it reads the wired devices and makes a
  frame, and it answers for the *ground truth* -- where the needle tip or the
  sphere centre is on the detector, which roll and pitch are in effect.

A :class:`~concert.devices.cameras.dummy.Camera` given any of the keyword
arguments of the simulated beamline (``shutter=``, ``rotation_motor=``,
``sample=`` ... see :class:`Simulation`) images it; its ``simulation``
attribute is the :class:`Simulation`::

    camera = Camera(shutter=shutter, rotation_motor=stage, sample=Needle(1 * q.mm, 0.5 * q.mm))
    camera.simulation.tip_position(90 * q.deg)    # (x, y) = (column, row) on the detector

Geometry (shared with :mod:`concert.imageprocessing` and :mod:`concert.measures`)
---------------------------------------------------------------------------------

Laboratory frame, right-handed: **x** horizontal, perpendicular to the
beam, to the right on the detector; **y** vertical, up; **z** along the
beam, from the source towards the detector. The detector sees the
projection along z (parallel beam). A frame is ``frame[row, column]``:
column = x, increasing to the right; row increases *downwards*. A point on
the detector is ``(x, y)`` = ``(column, row)`` in pixels, sub-pixel floats,
the centre of pixel ``frame[i, j]`` being ``(j, i)``: the centre of a 640 x
480 sensor is ``(319.5, 239.5)``.

Lengths become pixels through ``pixel_size``, the size of one pixel at the
sample (default: the sensor's 6.5 µm, i.e. no magnification).

The rotation axis runs nominally along +y through the *pivot*: the detector
point ``(axis_column, centre row)``, ``axis_column`` by default the centre
column. The stage is tilted by two angles:

* **roll** -- the axis's angle from the vertical in the detector plane (a
  rotation about z), positive when the top of the axis leans towards +x
  (to the right in the image);
* **pitch** -- the axis's angle out of the detector plane (a rotation about
  x), positive when the top of the axis leans towards +z (downstream).

A sample point is given in the *stage frame* (the axis frame at rotation
angle 0), relative to the pivot: ``(x, y, z)`` with ``y`` the height along
the axis. At rotation angle θ (the ``rotation_motor`` position) it is at
``(x cos θ - z sin θ, y, x sin θ + z cos θ)`` -- a point at distance r from
the axis sits at ``r·(cos θ, 0, sin θ)``: θ = 0 towards +x, θ = 90°
towards +z (downstream); it is then tilted by pitch (about x), then by
roll (about z), and projected along z. With pitch ≠ 0 a point off the axis
draws an ellipse on the detector whose vertical extent is ``2 r sin(pitch)``;
for pitch > 0 the half traversed while θ goes from 0 to 180° is the lower
one (larger rows). Roll inclines the ellipse and the projected axis, whose
column at a row is ``axis_column + (centre row - row)·tan(roll)``.

Wiring (keyword arguments of the dummy camera, all optional)
------------------------------------------------------------

* ``shutter`` -- a shutter: while it is not ``'open'`` the frames are dark
  (dark level plus noise). Without one the beam is always on.
* ``rotation_motor`` -- a rotation motor: the angle θ. Without one θ = 0.
* ``x_motor``, ``z_motor`` -- rotation motors turning the axis about x and
  about z: their positions *add* to the stage's fixed ``pitch`` and
  ``roll`` (defaults 0°). A misaligned stage is a non-zero start of these
  motors, or a non-zero ``pitch``/``roll``.
* ``flat_motor`` -- a linear motor moving the whole stage (axis and sample)
  along x, out of the beam for flat fields: at ``in_beam_position``
  (default 0 mm) everything is where the geometry above says; moved by d
  from there the stage appears shifted by ``d / pixel_size`` columns, and
  once ``|d| >= out_of_beam_distance`` (default: the width of the field of
  view) the sample is out of the beam: the frame is a flat field.
* ``focus_motor`` -- a linear motor: its distance from ``best_focus``
  (default 0 mm) blurs the sample's image with a Gaussian of standard
  deviation ``focus_blur · |position - best_focus|`` pixels (``focus_blur``
  default 2 pixel/mm).
* ``sample`` -- a :class:`Needle` or a :class:`Sphere`; without one the
  frames are flat fields.

The devices are read when a frame is made: for a frame triggered in
``SOFTWARE`` or ``EXTERNAL`` mode at the trigger, for an ``AUTO`` frame
and a single frame (a grab outside a recording) when it is read. A motor
moving meanwhile is read where it is.

What a frame shows
------------------

Expected photons per pixel ``λ = flux · exposure · beam(x, y) · T(x, y)``,
``flux`` being photons per pixel per second at the beam's peak (default
200 000/s: 200 per millisecond, the signal of the camera's test pattern)
and ``T = exp(-μ·t)`` the transmission of the sample by Beer-Lambert's law,
``t`` the thickness it has along z at that pixel and ``μ`` its
``attenuation``. The beam profile is 1 everywhere for a flat beam, else a
Gaussian of peak 1 (:class:`Beam`). The counts are ``dark + λ`` plus noise,
rounded and clipped to ``uint16`` (saturation at 65535); frames have the
region of interest's shape, ``(roi_height, roi_width)``, cut from the full
sensor's image.

Noise (on by default; ``noise=False``, or ``simulate=False``, switches it
off and makes every frame exactly reproducible): photon noise, Poisson with
mean λ -- drawn exactly where λ < 20 and from its normal approximation (mean
λ, variance λ) elsewhere -- plus a Gaussian read noise of ``read_noise``
counts (default 2). A dark frame is ``dark`` (default 100) plus read noise.
Each frame's noise comes from a generator seeded with ``(seed, recording,
frame number)``: two cameras with the same ``seed`` give the same frames
for the same sequence of recordings and grabs, whatever the threads.

The focus blur is applied to the sample's absorption ``1 - T`` (the beam is
smooth on the blur's scale), nearest-pixel at the sensor's edges.

The needle is a cylinder of ``radius`` parallel to the axis, standing on
the stage, coming from below the field of view and ending in a half-sphere
at the top; its position is that of its *tip*, the top of the half-sphere.
The sphere's position is its centre. Thickness is computed exactly for the
sphere and for an upright needle; with pitch the needle's body is the chord
of an inclined cylinder, and where the body meets the half-sphere the
thicker of the two is taken (good to a fraction of a per cent for tilts of
a few degrees).

Ground truth
------------

Positions on the detector are ``(x, y)`` = ``(column, row)`` floats in
pixels; an ``angle`` is a quantity (``None``: the rotation motor's current
position); every other device is read now:

* :meth:`Simulation.tip_position` -- the needle's tip as a finder sees it:
  the highest point of the needle's image (the top of the projected
  half-sphere; for an untilted axis the projection of the tip itself);
* :meth:`Simulation.sphere_center` -- the projected centre of the sphere;
* :meth:`Simulation.orbit_center` -- the centre of the ellipse that the tip
  (or the sphere's centre) draws over a turn;
* :meth:`Simulation.project` -- any stage point;
* :meth:`Simulation.axis_position` -- the projected axis's column at a row;
* :attr:`Simulation.roll`, :attr:`Simulation.pitch` -- in effect (fixed
  part plus motor), :attr:`Simulation.angle`;
* :meth:`Simulation.beam_center`, :attr:`Simulation.blur_sigma`,
  :attr:`Simulation.beam_on`, :attr:`Simulation.sample_in_beam`.

Frames of the simulated beamline carry, besides the camera's metadata,
``'angle_deg'``, ``'roll_deg'``, ``'pitch_deg'`` (in effect), ``'beam'``
(whether the beam reached the detector), ``'sample_in_beam'``,
``'blur_px'`` (the blur's standard deviation in pixels) and, when those
motors are wired, ``'flat_position_mm'`` and ``'focus_position_mm'``: the
values the frame was made with.

Threads: a :class:`Simulation` makes frames from any number of threads at
once. Its settings are fixed at construction except :attr:`Simulation.sample`
and :attr:`Simulation.beam`, which are replaced whole (one attribute write,
atomic); a frame uses the values it read when it started.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple, Union

import numpy as np

from concert.checks import is_integer, is_quantity, is_real
from concert.exceptions import CameraError, LimitError, UnitError
from concert.naming import describe_value
from concert.quantities import q

__all__ = ["Beam", "Needle", "Sample", "Simulation", "Sphere"]

Point = Tuple[float, float]

_SATURATION = 65535.0
_POISSON_BELOW = 20.0  # expected photons under which the noise is drawn from the Poisson law itself
_MIN_BLUR = 0.1  # pixels: a blur narrower than this is not applied
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


# -- checking arguments ---------------------------------------------------------------------------


def _magnitude(owner: str, name: str, value: Any, unit: Any, what: str, example: str) -> float:
    """``value`` in ``unit`` as a finite float, or UnitError/LimitError naming ``owner`` and ``name``."""
    if not is_quantity(value):
        raise UnitError(f"{owner}: {name}={describe_value(value)} is not {what} (write e.g. {example})")
    try:
        magnitude = float(value.to(unit).magnitude)
    except Exception:  # another dimension, or a magnitude that is no number
        raise UnitError(
            f"{owner}: {name}={describe_value(value)} is not {what} (write e.g. {example})"
        ) from None
    if not math.isfinite(magnitude):
        raise LimitError(f"{owner}: {name}={describe_value(value)} is not a finite value")
    return magnitude


def _at_least(owner: str, name: str, value: Any, magnitude: float, lowest: float, strict: bool) -> float:
    if magnitude < lowest or (strict and magnitude == lowest):
        relation = "greater than" if strict else "at least"
        raise LimitError(f"{owner}: {name}={describe_value(value)} must be {relation} {lowest:g}")
    return magnitude


def _length(owner: str, name: str, value: Any, positive: bool = False) -> float:
    """A length in mm; ``positive`` refuses zero and less."""
    mm = _magnitude(owner, name, value, q.mm, "a length", "0.5 * q.mm")
    return _at_least(owner, name, value, mm, 0.0, True) if positive else mm


def _angle(owner: str, name: str, value: Any) -> float:
    """An angle in degrees, less than 90° either way."""
    degrees = _magnitude(owner, name, value, q.deg, "an angle", "2 * q.deg")
    if abs(degrees) >= 90:
        raise LimitError(f"{owner}: {name}={describe_value(value)} must be less than 90° either way")
    return degrees


def _counts(owner: str, name: str, value: Any, example: str) -> float:
    """A number of counts >= 0: a real number, or a dimensionless quantity."""
    if is_quantity(value):
        magnitude = _magnitude(owner, name, value, q.dimensionless, "a number of counts", example)
    elif is_real(value):
        magnitude = float(value)
        if not math.isfinite(magnitude):
            raise LimitError(f"{owner}: {name}={describe_value(value)} is not a finite value")
    else:
        raise UnitError(
            f"{owner}: {name}={describe_value(value)} is not a number of counts (write e.g. {example})"
        )
    if magnitude < 0 or magnitude > _SATURATION:
        raise LimitError(f"{owner}: {name}={describe_value(value)} must be between 0 and 65535 counts")
    return magnitude


def _quantity(magnitude: float, unit: Any) -> Any:
    return q.Quantity(magnitude, unit)


# -- the sample models and the beam -----------------------------------------------------------


class Sample:
    """What the sample models :class:`Needle` and :class:`Sphere` share: a position, a radius, an attenuation.

    Not used on its own: a camera's ``sample`` is a :class:`Needle` or a
    :class:`Sphere`. Positions are in the stage frame at rotation angle 0,
    relative to the pivot (see the module documentation); all values are
    kept as given and are immutable.
    """

    def __init__(self, x: Any, y: Any, z: Any, radius: Any, attenuation: Any) -> None:
        owner = type(self).__name__
        self._mm = (_length(owner, "x", x), _length(owner, "y", y), _length(owner, "z", z))
        self._given = (x, y, z, radius, attenuation)  # as given: what the properties and repr show
        self._radius_mm = _length(owner, "radius", radius, positive=True)
        self._per_mm = _at_least(
            owner,
            "attenuation",
            attenuation,
            _magnitude(owner, "attenuation", attenuation, 1 / q.mm, "an inverse length", "20 / q.mm"),
            0.0,
            False,
        )

    @property
    def x(self) -> Any:
        """Position along x on the stage at rotation angle 0, from the axis (as given)."""
        return self._given[0]

    @property
    def y(self) -> Any:
        """Height along the axis, from the pivot at the detector's centre row (as given)."""
        return self._given[1]

    @property
    def z(self) -> Any:
        """Position along z (the beam) on the stage at rotation angle 0, from the axis (as given)."""
        return self._given[2]

    @property
    def radius(self) -> Any:
        """The radius (as given)."""
        return self._given[3]

    @property
    def attenuation(self) -> Any:
        """The linear attenuation coefficient μ of Beer-Lambert's law (as given)."""
        return self._given[4]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(x={describe_value(self.x)}, y={describe_value(self.y)}, "
            f"z={describe_value(self.z)}, radius={describe_value(self.radius)}, "
            f"attenuation={describe_value(self.attenuation)})"
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self._mm, self._radius_mm, self._per_mm) == (other._mm, other._radius_mm, other._per_mm)

    def __hash__(self) -> int:
        return hash((type(self), self._mm, self._radius_mm, self._per_mm))


class Needle(Sample):
    """A needle standing on the stage, its tip at ``(x, y, z)``: a cylinder of ``radius`` with a round top.

    ``x`` and ``z`` place the tip on the stage at rotation angle 0 relative
    to the rotation axis (``x`` to the right, ``z`` downstream), ``y`` is
    its height along the axis above the pivot (the detector's centre row):
    lengths. The needle is parallel to the axis and comes from below the
    field of view. ``attenuation`` is its linear attenuation coefficient
    (an inverse length; the default, 20/mm, is steel at about 20 keV, so the
    default needle, 0.1 mm thick, lets 13 % through its middle). Immutable.

    :raises UnitError: a position or the radius is not a length, or the
        attenuation not an inverse length.
    :raises LimitError: a value is not finite, the radius not positive, the
        attenuation negative.
    """

    def __init__(
        self, x: Any, y: Any, z: Any = 0 * q.mm, radius: Any = 50 * q.um, attenuation: Any = 20 / q.mm
    ) -> None:
        super().__init__(x, y, z, radius, attenuation)


class Sphere(Sample):
    """A sphere of ``radius`` on the stage, its centre at ``(x, y, z)`` (lengths, as for :class:`Needle`).

    ``attenuation``: its linear attenuation coefficient (an inverse length,
    default 20/mm). Immutable.

    :raises UnitError: a position or the radius is not a length, or the
        attenuation not an inverse length.
    :raises LimitError: a value is not finite, the radius not positive, the
        attenuation negative.
    """

    def __init__(
        self, x: Any, y: Any, z: Any = 0 * q.mm, radius: Any = 100 * q.um, attenuation: Any = 20 / q.mm
    ) -> None:
        super().__init__(x, y, z, radius, attenuation)


class Beam:
    """The beam's profile on the detector: flat, or Gaussian, its centre anywhere.

    ``x`` and ``y`` (lengths) put the beam's centre that far from the
    detector's centre (``x`` to the right, ``y`` up); ``width`` and
    ``height`` are its full widths at half maximum (lengths), ``None``
    meaning flat in that direction. ``Beam()`` is a flat beam. The profile
    is 1 at the centre (the camera's ``flux`` gives the photons there).
    Immutable.

    :raises UnitError: a value is not a length.
    :raises LimitError: a value is not finite, a width or height not positive.
    """

    def __init__(self, x: Any = 0 * q.mm, y: Any = 0 * q.mm, width: Any = None, height: Any = None) -> None:
        self._given = (x, y, width, height)  # as given: what the properties and repr show
        self._mm = (_length("Beam", "x", x), _length("Beam", "y", y))
        self._fwhm_mm = (
            None if width is None else _length("Beam", "width", width, positive=True),
            None if height is None else _length("Beam", "height", height, positive=True),
        )

    @property
    def x(self) -> Any:
        """The centre's distance to the right of the detector's centre (as given)."""
        return self._given[0]

    @property
    def y(self) -> Any:
        """The centre's height above the detector's centre (as given)."""
        return self._given[1]

    @property
    def width(self) -> Any:
        """Full width at half maximum (as given), or ``None``: flat horizontally."""
        return self._given[2]

    @property
    def height(self) -> Any:
        """Full height at half maximum (as given), or ``None``: flat vertically."""
        return self._given[3]

    def __repr__(self) -> str:
        sizes = "".join(
            f", {name}={describe_value(value)}"
            for name, value in (("width", self.width), ("height", self.height))
            if value is not None
        )
        return f"Beam(x={describe_value(self.x)}, y={describe_value(self.y)}{sizes})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Beam):
            return NotImplemented
        return (self._mm, self._fwhm_mm) == (other._mm, other._fwhm_mm)

    def __hash__(self) -> int:
        return hash((self._mm, self._fwhm_mm))


# -- the devices of the simulated stage ------------------------------------------------------------


def _position_unit(device: Any) -> Any:
    """The unit of ``device['position']``, or ``None`` if it has no such quantity."""
    try:
        value = device["position"]
    except Exception:  # not a device, or no position
        return None
    return getattr(value, "unit", None)


def _motor(owner: str, name: str, device: Any, kind: str) -> Any:
    """``device`` if it is a motor of ``kind`` ('rotation': degrees, 'linear': a length), else CameraError."""
    if device is None:
        return None
    unit = _position_unit(device)
    dimension = q.deg.dimensionality if kind == "rotation" else q.mm.dimensionality
    if unit is None or q.Quantity(1, unit).dimensionality != dimension:
        if unit is None:
            has = "it has no position"
        else:
            has = f"its position is in {format(q.Quantity(1, unit).units, '~P')}"
        wanted = "an angle" if kind == "rotation" else "a length"
        raise CameraError(
            f"{owner}: {name}={describe_value(device)} is not a {kind} motor ({has}, not {wanted}; "
            f"give a {'RotationMotor' if kind == 'rotation' else 'LinearMotor'})"
        )
    return device


def _shutter(owner: str, device: Any) -> Any:
    if device is None:
        return None
    try:
        device["state"]
        usable = callable(getattr(device, "open", None)) and callable(getattr(device, "close", None))
    except Exception:  # not a device
        usable = False
    if not usable:
        raise CameraError(
            f"{owner}: shutter={describe_value(device)} is not a shutter "
            "(it needs a state and open()/close())"
        )
    return device


def _read(device: Any, unit: Any) -> float:
    return float(device["position"].read().m_as(unit))


class _Scene(NamedTuple):
    """The devices' readings one frame is made with."""

    angle: float  # degrees
    roll: float  # degrees, in effect
    pitch: float  # degrees, in effect
    shift: float  # pixels the stage is moved along x by the flat motor
    beam_on: bool
    sample_in_beam: bool
    sigma: float  # pixels of focus blur
    flat_mm: Optional[float]
    focus_mm: Optional[float]


class _OpenBeam(NamedTuple):
    """One ROI's frame without a sample, before noise (float32 arrays of the ROI's shape)."""

    photons: np.ndarray  # expected photons per pixel
    mean: np.ndarray  # photons + dark + 0.5 (the 0.5 rounds when truncated to integers)
    spread: np.ndarray  # standard deviation of the noise: sqrt(photons + read noise²)
    low: Optional[np.ndarray]  # where photons < _POISSON_BELOW (bool), None if nowhere


# -- the projector ------------------------------------------------------------------------------


class Simulation:
    """The simulated beamline one dummy camera images (see the module documentation).

    Made by :class:`~concert.devices.cameras.dummy.Camera` from its keyword
    arguments; reach it as ``camera.simulation``. ``owner`` names the camera
    in messages (a string, or a callable returning one); ``sensor`` is
    ``(columns, rows)``. The other arguments are those of the camera, each
    optional, ``None`` standing for its default:

    ``shutter``, ``rotation_motor``, ``x_motor``, ``z_motor``,
    ``flat_motor``, ``focus_motor``, ``sample`` -- the wiring (module
    documentation); ``beam`` a :class:`Beam` (flat);
    ``pixel_size`` (length, 6.5 µm); ``flux`` (photons per pixel per second
    at the beam's peak, ``200000 / q.s``); ``dark`` (counts, 100);
    ``read_noise`` (counts, 2); ``noise`` (bool, True); ``seed`` (an
    integer >= 0, default: a fresh random one); ``axis_column`` (pixels, the
    sensor's centre); ``roll``, ``pitch`` (fixed tilts, angles, 0°);
    ``in_beam_position`` (length, 0 mm); ``out_of_beam_distance`` (length,
    the field of view's width); ``best_focus`` (length, 0 mm);
    ``focus_blur`` (pixels per length, ``2 * q.pixel / q.mm``).

    :raises CameraError: a device of the wrong kind (a linear motor as
        ``rotation_motor``, something that is not a shutter ...), a sample
        that is no :class:`Needle` or :class:`Sphere`, a beam that is no
        :class:`Beam`.
    :raises UnitError: a value in the wrong unit (or none).
    :raises LimitError: a value out of range (a pixel size not positive,
        negative counts, a tilt of 90° or more, an axis column off the
        sensor, a seed that is no integer >= 0), or a sample whose tip (or
        centre) would leave the sensor during a turn.
    """

    def __init__(
        self,
        owner: Union[str, Callable[[], str]],
        sensor: Tuple[int, int],
        *,
        shutter: Any = None,
        rotation_motor: Any = None,
        x_motor: Any = None,
        z_motor: Any = None,
        flat_motor: Any = None,
        focus_motor: Any = None,
        sample: Any = None,
        beam: Any = None,
        pixel_size: Any = None,
        flux: Any = None,
        dark: Any = None,
        read_noise: Any = None,
        noise: Any = None,
        seed: Any = None,
        axis_column: Any = None,
        roll: Any = None,
        pitch: Any = None,
        in_beam_position: Any = None,
        out_of_beam_distance: Any = None,
        best_focus: Any = None,
        focus_blur: Any = None,
    ) -> None:
        self._owner = owner
        name = self._name()
        self._sensor = (int(sensor[0]), int(sensor[1]))
        columns, rows = self._sensor
        self._centre = ((columns - 1) / 2.0, (rows - 1) / 2.0)
        self._shutter = _shutter(name, shutter)
        self._rotation_motor = _motor(name, "rotation_motor", rotation_motor, "rotation")
        self._x_motor = _motor(name, "x_motor", x_motor, "rotation")
        self._z_motor = _motor(name, "z_motor", z_motor, "rotation")
        self._flat_motor = _motor(name, "flat_motor", flat_motor, "linear")
        self._focus_motor = _motor(name, "focus_motor", focus_motor, "linear")

        self._pixel_size = 6.5 * q.um if pixel_size is None else pixel_size
        self._pixel_mm = _length(name, "pixel_size", self._pixel_size, positive=True)
        per_second = 2e5 if flux is None else self._flux(name, flux)
        self._flux_per_s = per_second
        self._dark = 100.0 if dark is None else _counts(name, "dark", dark, "100")
        self._read_noise = 2.0 if read_noise is None else _counts(name, "read_noise", read_noise, "2")
        self._noise = True if noise is None else bool(noise)
        self._seed = self._seed_of(name, seed)
        if axis_column is None:
            self._axis_column = self._centre[0]
        else:
            self._axis_column = _magnitude(
                name, "axis_column", axis_column, q.pixel, "in pixels", "320 * q.pixel"
            )
            if not -0.5 <= self._axis_column <= columns - 0.5:
                raise LimitError(
                    f"{name}: axis_column={describe_value(axis_column)} is off the sensor "
                    f"(columns -0.5 to {columns - 0.5:g})"
                )
        self._roll = 0.0 if roll is None else _angle(name, "roll", roll)
        self._pitch = 0.0 if pitch is None else _angle(name, "pitch", pitch)
        self._in_beam_mm = (
            0.0 if in_beam_position is None else _length(name, "in_beam_position", in_beam_position)
        )
        if out_of_beam_distance is None:
            self._out_mm = columns * self._pixel_mm
        else:
            self._out_mm = _length(name, "out_of_beam_distance", out_of_beam_distance, positive=True)
        self._best_focus_mm = 0.0 if best_focus is None else _length(name, "best_focus", best_focus)
        if focus_blur is None:
            self._blur_per_mm = 2.0
        else:
            self._blur_per_mm = _at_least(
                name,
                "focus_blur",
                focus_blur,
                _magnitude(
                    name, "focus_blur", focus_blur, q.pixel / q.mm, "pixels per length", "2 * q.pixel / q.mm"
                ),
                0.0,
                False,
            )
        # Replaced whole (one attribute write), never changed in place: read without a lock.
        self._beam: Beam = self._checked_beam(name, Beam() if beam is None else beam)
        self._sample: Optional[Sample] = self._checked_sample(name, sample)
        self._beam_cache: Optional[Tuple[tuple, _OpenBeam]] = None  # (key, the ROI's open beam)

    # -- construction helpers ---------------------------------------------------------------------

    def _name(self) -> str:
        return self._owner() if callable(self._owner) else str(self._owner)

    @staticmethod
    def _flux(name: str, flux: Any) -> float:
        per_second = _magnitude(name, "flux", flux, 1 / q.s, "photons per pixel per second", "2e5 / q.s")
        return _at_least(name, "flux", flux, per_second, 0.0, False)

    @staticmethod
    def _seed_of(name: str, seed: Any) -> int:
        if seed is None:
            return int(np.random.SeedSequence().entropy)
        if not is_integer(seed) or seed < 0:
            raise LimitError(f"{name}: seed={describe_value(seed)} is not a whole number >= 0")
        return int(seed)

    @staticmethod
    def _checked_beam(name: str, beam: Any) -> Beam:
        if not isinstance(beam, Beam):
            raise CameraError(
                f"{name}: beam={describe_value(beam)} is not a Beam (write e.g. Beam(width=2 * q.mm))"
            )
        return beam

    def _checked_sample(self, name: str, sample: Any) -> Optional[Sample]:
        if sample is None:
            return None
        if not isinstance(sample, Sample):
            raise CameraError(
                f"{name}: sample={describe_value(sample)} is not a sample model "
                "(give a Needle(...) or a Sphere(...))"
            )
        roll, pitch = self._tilts()
        angles = np.radians(np.arange(0.0, 360.0, 1.0))
        xs, ys = self._orbit_points(sample, angles, roll, pitch, 0.0)
        columns, rows = self._sensor
        off = (xs < -0.5) | (xs > columns - 0.5) | (ys < -0.5) | (ys > rows - 0.5)
        if off.any():
            first = int(np.argmax(off))
            what = "tip" if isinstance(sample, Needle) else "centre"
            raise LimitError(
                f"{name}: sample={sample!r} is outside the field of view: its {what} would be at "
                f"({xs[first]:.1f}, {ys[first]:.1f}) px at {math.degrees(angles[first]):g}°, off the "
                f"{columns} x {rows} sensor of {self._pixel_mm * 1000:g} µm pixels"
            )
        return sample

    # -- settings and devices ---------------------------------------------------------------------

    @property
    def sample(self) -> Optional[Sample]:
        """The sample imaged (:class:`Needle`, :class:`Sphere` or ``None``); settable.

        :raises CameraError: for something that is no sample model.
        :raises LimitError: for a sample that would leave the sensor during a turn
            (checked with the tilts in effect now); the sample is then unchanged.
        """
        return self._sample

    @sample.setter
    def sample(self, sample: Any) -> None:
        self._sample = self._checked_sample(f"{self._name()}.simulation", sample)

    @property
    def beam(self) -> Beam:
        """The beam's profile (:class:`Beam`); settable (a frame started meanwhile uses the old one).

        :raises CameraError: for something that is no :class:`Beam`.
        """
        return self._beam

    @beam.setter
    def beam(self, beam: Any) -> None:
        self._beam = self._checked_beam(f"{self._name()}.simulation", beam)

    shutter = property(lambda self: self._shutter, doc="The shutter wired, or ``None``.")
    rotation_motor = property(lambda self: self._rotation_motor, doc="The rotation motor wired, or ``None``.")
    x_motor = property(lambda self: self._x_motor, doc="The motor adding to the pitch, or ``None``.")
    z_motor = property(lambda self: self._z_motor, doc="The motor adding to the roll, or ``None``.")
    flat_motor = property(lambda self: self._flat_motor, doc="The flat-field motor wired, or ``None``.")
    focus_motor = property(lambda self: self._focus_motor, doc="The focus motor wired, or ``None``.")

    @property
    def pixel_size(self) -> Any:
        """The size of one pixel at the sample (as given; default 6.5 µm)."""
        return self._pixel_size

    @property
    def flux(self) -> Any:
        """Photons per pixel per second at the beam's peak (1/s)."""
        return _quantity(self._flux_per_s, 1 / q.s)

    @property
    def dark(self) -> float:
        """The dark level (counts)."""
        return self._dark

    @property
    def read_noise(self) -> float:
        """The read noise's standard deviation (counts)."""
        return self._read_noise

    @property
    def noise(self) -> bool:
        """Whether frames have photon and read noise."""
        return self._noise

    @property
    def seed(self) -> int:
        """The seed of the noise (given, or drawn at construction)."""
        return self._seed

    @property
    def axis_column(self) -> float:
        """The pivot's column: where the axis crosses the centre row with the flat motor in the beam."""
        return self._axis_column

    @property
    def in_beam_position(self) -> Any:
        """The flat motor's position with the sample in the beam (mm)."""
        return _quantity(self._in_beam_mm, q.mm)

    @property
    def out_of_beam_distance(self) -> Any:
        """How far from :attr:`in_beam_position` the flat motor takes the sample out of the beam (mm)."""
        return _quantity(self._out_mm, q.mm)

    @property
    def best_focus(self) -> Any:
        """The focus motor's position of a sharp image (mm)."""
        return _quantity(self._best_focus_mm, q.mm)

    @property
    def focus_blur(self) -> Any:
        """The blur's standard deviation per mm from :attr:`best_focus` (pixel/mm)."""
        return _quantity(self._blur_per_mm, q.pixel / q.mm)

    # -- ground truth -----------------------------------------------------------------------------

    @property
    def angle(self) -> Any:
        """The rotation angle now (deg): the rotation motor's position, 0° without one."""
        return _quantity(self._angle_now(), q.deg)

    @property
    def roll(self) -> Any:
        """The roll in effect now (deg): the fixed roll plus the z motor's position."""
        return _quantity(self._tilts()[0], q.deg)

    @property
    def pitch(self) -> Any:
        """The pitch in effect now (deg): the fixed pitch plus the x motor's position."""
        return _quantity(self._tilts()[1], q.deg)

    @property
    def beam_on(self) -> bool:
        """Whether the beam reaches the detector now (no shutter, or it is open)."""
        return self._shutter is None or self._shutter["state"].read() == "open"

    @property
    def sample_in_beam(self) -> bool:
        """Whether a sample is imaged now (there is one and the flat motor has not taken it out)."""
        return self._sample is not None and abs(self._flat_offset_mm()) < self._out_mm

    @property
    def blur_sigma(self) -> float:
        """The focus blur's standard deviation now, in pixels (0 without a focus motor)."""
        return self._sigma_now()

    def project(self, x: Any, y: Any, z: Any = 0 * q.mm, angle: Any = None) -> Point:
        """Return where the stage point ``(x, y, z)`` (lengths, stage frame) is on the detector.

        ``(column, row)`` floats in pixels at rotation ``angle`` (``None``:
        the motor's position now), with the tilts and the flat motor as they
        are now.

        :raises UnitError: a position is not a length, ``angle`` not an angle.
        """
        owner = f"{self._name()}.simulation.project()"
        point = np.array([_length(owner, n, v) for n, v in (("x", x), ("y", y), ("z", z))]) / self._pixel_mm
        theta = self._angle_of(angle)
        roll, pitch = self._tilts()
        xs, ys = self._project(point, np.array([theta]), roll, pitch, self._shift_now())
        return float(xs[0]), float(ys[0])

    def tip_position(self, angle: Any = None) -> Point:
        """Return the needle's tip on the detector at rotation ``angle``: ``(column, row)`` floats, pixels.

        The tip as a tip finder sees it: the highest point of the needle's
        image, the top of its projected round end (for an untilted axis the
        projection of the tip itself). ``angle`` ``None``: the motor's
        position now; tilts and flat motor as they are now.

        :raises CameraError: the sample is no :class:`Needle`.
        :raises UnitError: ``angle`` is not an angle.
        """
        sample = self._sample_of(Needle, "tip_position()")
        roll, pitch = self._tilts()
        xs, ys = self._orbit_points(sample, np.array([self._angle_of(angle)]), roll, pitch, self._shift_now())
        return float(xs[0]), float(ys[0])

    def sphere_center(self, angle: Any = None) -> Point:
        """Return the sphere's centre on the detector at rotation ``angle``: ``(column, row)`` floats, pixels.

        ``angle`` ``None``: the motor's position now; tilts and flat motor as they are now.

        :raises CameraError: the sample is no :class:`Sphere`.
        :raises UnitError: ``angle`` is not an angle.
        """
        sample = self._sample_of(Sphere, "sphere_center()")
        roll, pitch = self._tilts()
        xs, ys = self._orbit_points(sample, np.array([self._angle_of(angle)]), roll, pitch, self._shift_now())
        return float(xs[0]), float(ys[0])

    def orbit_center(self) -> Point:
        """Return the centre of the ellipse the tip (needle) or the centre (sphere) draws over a turn.

        ``(column, row)`` floats in pixels, with the tilts and the flat motor as they are now.

        :raises CameraError: there is no sample.
        """
        sample = self._sample_of(Sample, "orbit_center()")
        roll, pitch = self._tilts()
        height = sample._mm[1] / self._pixel_mm
        lift = 0.0
        if isinstance(sample, Needle):
            radius = sample._radius_mm / self._pixel_mm
            height, lift = height - radius, radius
        xs, ys = self._project(np.array([0.0, height, 0.0]), np.array([0.0]), roll, pitch, self._shift_now())
        return float(xs[0]), float(ys[0]) - lift

    def axis_position(self, row: Optional[float] = None) -> float:
        """Return the column (float, pixels) where the projected rotation axis crosses ``row``.

        ``row`` (pixels, a float; ``None``: the centre row) -- with the roll
        and the flat motor as they are now: ``axis_column + shift +
        (centre row - row)·tan(roll)``.
        """
        row = self._centre[1] if row is None else float(row)
        roll = math.radians(self._tilts()[0])
        return self._axis_column + self._shift_now() + (self._centre[1] - row) * math.tan(roll)

    def beam_center(self) -> Point:
        """Return the beam's centre on the detector: ``(column, row)`` floats in pixels."""
        beam = self._beam
        return (
            self._centre[0] + beam._mm[0] / self._pixel_mm,
            self._centre[1] - beam._mm[1] / self._pixel_mm,
        )

    # -- reading the devices ------------------------------------------------------------------------

    def _angle_now(self) -> float:
        return 0.0 if self._rotation_motor is None else _read(self._rotation_motor, q.deg)

    def _angle_of(self, angle: Any) -> float:
        """Radians of ``angle`` (a quantity), or of the motor's position now."""
        if angle is None:
            return math.radians(self._angle_now())
        return math.radians(_magnitude(self._name(), "angle", angle, q.deg, "an angle", "90 * q.deg"))

    def _tilts(self) -> Tuple[float, float]:
        """(roll, pitch) in effect now, degrees."""
        roll = self._roll + (0.0 if self._z_motor is None else _read(self._z_motor, q.deg))
        pitch = self._pitch + (0.0 if self._x_motor is None else _read(self._x_motor, q.deg))
        return roll, pitch

    def _flat_offset_mm(self) -> float:
        return 0.0 if self._flat_motor is None else _read(self._flat_motor, q.mm) - self._in_beam_mm

    def _shift_now(self) -> float:
        return self._flat_offset_mm() / self._pixel_mm

    def _sigma_now(self) -> float:
        if self._focus_motor is None:
            return 0.0
        return self._blur_per_mm * abs(_read(self._focus_motor, q.mm) - self._best_focus_mm)

    def _sample_of(self, kind: type, what: str) -> Any:
        sample = self._sample
        if not isinstance(sample, kind):
            wanted = {Needle: "a Needle as sample", Sphere: "a Sphere as sample"}.get(kind, "a sample")
            raise CameraError(
                f"{self._name()}.simulation.{what} needs {wanted}, but the sample is {sample!r}"
            )
        return sample

    def scene(self) -> _Scene:
        """Read the wired devices now: what a frame made now shows (called by the camera)."""
        flat_mm = None if self._flat_motor is None else _read(self._flat_motor, q.mm)
        focus_mm = None if self._focus_motor is None else _read(self._focus_motor, q.mm)
        offset = 0.0 if flat_mm is None else flat_mm - self._in_beam_mm
        roll, pitch = self._tilts()
        sigma = 0.0 if focus_mm is None else self._blur_per_mm * abs(focus_mm - self._best_focus_mm)
        return _Scene(
            angle=self._angle_now(),
            roll=roll,
            pitch=pitch,
            shift=offset / self._pixel_mm,
            beam_on=self.beam_on,
            sample_in_beam=abs(offset) < self._out_mm,
            sigma=sigma,
            flat_mm=flat_mm,
            focus_mm=focus_mm,
        )

    # -- geometry -------------------------------------------------------------------------------------

    def _project(
        self, point: np.ndarray, thetas: np.ndarray, roll: float, pitch: float, shift: float
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Detector (columns, rows) of the stage point ``point`` (pixels) at angles ``thetas`` (radians)."""
        x, y, z = point
        cos_t, sin_t = np.cos(thetas), np.sin(thetas)
        x1, y1, z1 = x * cos_t - z * sin_t, np.full_like(thetas, y), x * sin_t + z * cos_t
        p, r = math.radians(pitch), math.radians(roll)
        y2 = y1 * math.cos(p) - z1 * math.sin(p)  # pitch: about x, the top towards +z
        x3 = x1 * math.cos(r) + y2 * math.sin(r)  # roll: about z, the top towards +x
        y3 = -x1 * math.sin(r) + y2 * math.cos(r)
        return self._axis_column + shift + x3, self._centre[1] - y3

    def _orbit_points(
        self, sample: Sample, thetas: np.ndarray, roll: float, pitch: float, shift: float
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Where the tip (needle: the top of its image) or the centre (sphere) is at ``thetas``."""
        point = np.array(sample._mm) / self._pixel_mm
        if isinstance(sample, Needle):
            radius = sample._radius_mm / self._pixel_mm
            point[1] -= radius  # the centre of the round end
            xs, ys = self._project(point, thetas, roll, pitch, shift)
            return xs, ys - radius
        return self._project(point, thetas, roll, pitch, shift)

    # -- making frames ----------------------------------------------------------------------------------

    def render(
        self, exposure: float, roi: Tuple[int, int, int, int], key: Tuple[int, ...] = (), scene: Any = None
    ) -> Tuple[np.ndarray, Dict[str, Any]]:
        """Make one frame: return ``(image, metadata)``.

        ``exposure`` in seconds; ``roi`` ``(x0, y0, width, height)`` in
        pixels on the sensor; ``key`` the integers that, with the seed,
        seed the frame's noise; ``scene`` the devices' readings
        (:meth:`scene`; ``None``: read now). The image is ``uint16`` of shape
        ``(height, width)``; the metadata has the keys listed in the module
        documentation. Callable from any number of threads at once.
        """
        scene = self.scene() if scene is None else scene
        sample, beam = self._sample, self._beam
        shape = (roi[3], roi[2])
        offset = np.float32(self._dark + 0.5)  # the dark level, and +0.5: truncating then rounds
        rng = np.random.default_rng([self._seed, *key]) if self._noise else None
        if not scene.beam_on:
            if rng is None:
                counts = np.full(shape, offset, dtype=np.float32)
            else:
                counts = rng.standard_normal(shape, dtype=np.float32)
                counts *= np.float32(self._read_noise)
                counts += offset
        else:
            base = self._open_beam(beam, exposure, roi)
            region = None
            if sample is not None and scene.sample_in_beam:
                region = self._transmission(sample, roi, scene)
            if rng is None:
                counts = base.mean.copy()
                if region is not None:
                    window, transmission = region
                    counts[window] = base.photons[window] * transmission + offset
            else:
                counts = rng.standard_normal(shape, dtype=np.float32)  # the noise, then the counts, in place
                patch = exact = None
                if region is not None:
                    window, transmission = region
                    patch = self._noisy(base.photons[window] * transmission, counts[window], rng) + offset
                if base.low is not None:  # few photons: the Poisson law itself
                    normal = counts[base.low]
                    exact = (
                        rng.poisson(base.photons[base.low]) + np.float32(self._read_noise) * normal + offset
                    )
                counts *= base.spread
                counts += base.mean
                if exact is not None:
                    counts[base.low] = exact
                if patch is not None:
                    counts[window] = patch
        np.clip(counts, 0, _SATURATION, out=counts)
        metadata: Dict[str, Any] = {
            "angle_deg": scene.angle,
            "roll_deg": scene.roll,
            "pitch_deg": scene.pitch,
            "beam": scene.beam_on,
            "sample_in_beam": bool(sample is not None and scene.sample_in_beam),
            "blur_px": scene.sigma,
        }
        if scene.flat_mm is not None:
            metadata["flat_position_mm"] = scene.flat_mm
        if scene.focus_mm is not None:
            metadata["focus_position_mm"] = scene.focus_mm
        return counts.astype(np.uint16), metadata

    def _noisy(self, photons: np.ndarray, normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``photons`` with photon and read noise, drawn with the standard normal values ``normal``."""
        read = np.float32(self._read_noise)
        noisy = photons + np.sqrt(photons + read * read) * normal
        low = photons < _POISSON_BELOW
        if low.any():
            noisy[low] = rng.poisson(photons[low]) + read * normal[low]
        return noisy

    def _open_beam(self, beam: Beam, exposure: float, roi: Tuple[int, int, int, int]) -> _OpenBeam:
        """The ROI's frame without a sample, before noise (read-only float32 arrays, cached per settings)."""
        key = (beam, exposure, roi, self._flux_per_s)
        cached = self._beam_cache  # (key, open beam); replaced whole, so read without a lock
        if cached is not None and cached[0] == key:
            return cached[1]
        x0, y0, width, height = roi
        peak = np.float32(self._flux_per_s * exposure)
        centre_x, centre_y = self.beam_center()
        profiles = []
        for start, count, centre, fwhm in (
            (x0, width, centre_x, beam._fwhm_mm[0]),
            (y0, height, centre_y, beam._fwhm_mm[1]),
        ):
            if fwhm is None:
                profiles.append(np.ones(count, dtype=np.float32))
            else:
                sigma = fwhm / self._pixel_mm / _FWHM_PER_SIGMA
                offsets = (np.arange(start, start + count) - centre) / sigma
                profiles.append(np.exp(-0.5 * offsets**2).astype(np.float32))
        photons = np.outer(profiles[1] * peak, profiles[0]).astype(np.float32)
        mean = photons + np.float32(self._dark + 0.5)
        spread = np.sqrt(photons + np.float32(self._read_noise**2))
        low = photons < _POISSON_BELOW
        opened = _OpenBeam(photons, mean, spread, low if low.any() else None)
        for array in opened:
            if array is not None:
                array.flags.writeable = False
        self._beam_cache = (key, opened)
        return opened

    def _transmission(
        self, sample: Sample, roi: Tuple[int, int, int, int], scene: _Scene
    ) -> Optional[Tuple[Tuple[slice, slice], np.ndarray]]:
        """Where in the ROI the sample is, and its transmission there (blurred); ``None``: nowhere."""
        x0, y0, width, height = roi
        columns, rows = self._sensor
        sigma = scene.sigma if scene.sigma >= _MIN_BLUR else 0.0
        margin = math.ceil(4 * sigma) + 1 if sigma else 0
        box = self._bounding_box(sample, scene)
        if box is None:
            return None
        # The region computed: the sample's box widened by the blur's reach, on the sensor, and
        # within the blur's reach of the ROI (so that a ROI's frame is the full frame's crop).
        c0 = max(box[0] - margin, 0, x0 - margin)
        c1 = min(box[1] + margin, columns, x0 + width + margin)
        r0 = max(box[2] - margin, 0, y0 - margin)
        r1 = min(box[3] + margin, rows, y0 + height + margin)
        # The part of it inside the ROI.
        k0, k1 = max(c0, x0), min(c1, x0 + width)
        l0, l1 = max(r0, y0), min(r1, y0 + height)
        if k0 >= k1 or l0 >= l1:
            return None
        thickness = self._thickness(sample, scene, c0, c1, r0, r1)
        absorbed = -np.expm1(np.float32(-sample._per_mm * self._pixel_mm) * thickness)
        if sigma:
            absorbed = _gaussian_blur(absorbed, sigma)
        transmission = 1.0 - absorbed[l0 - r0 : l1 - r0, k0 - c0 : k1 - c0]
        np.clip(transmission, 0.0, 1.0, out=transmission)
        return (slice(l0 - y0, l1 - y0), slice(k0 - x0, k1 - x0)), transmission

    def _placement(self, sample: Sample, scene: _Scene) -> Tuple[float, float, float]:
        """(column, row, radius) in pixels of the sphere's centre or the needle's round end's centre."""
        point = np.array(sample._mm) / self._pixel_mm
        radius = sample._radius_mm / self._pixel_mm
        if isinstance(sample, Needle):
            point[1] -= radius
        xs, ys = self._project(
            point, np.array([math.radians(scene.angle)]), scene.roll, scene.pitch, scene.shift
        )
        return float(xs[0]), float(ys[0]), radius

    def _bounding_box(self, sample: Sample, scene: _Scene) -> Optional[Tuple[int, int, int, int]]:
        """(first column, end column, first row, end row) of the sample's image, or None if off the sensor."""
        columns, rows = self._sensor
        column, row, radius = self._placement(sample, scene)
        c0, c1 = column - radius, column + radius
        r0, r1 = row - radius, row + radius
        if isinstance(sample, Needle):  # the body, from the round end down past the sensor's bottom
            roll = math.radians(scene.roll)
            drop = max(rows - row, 0.0)
            if math.cos(roll) > 0.05:
                bottom = column - drop * math.tan(roll)
                c0, c1 = min(c0, bottom - radius / math.cos(roll)), max(c1, bottom + radius / math.cos(roll))
            else:  # practically horizontal: anywhere along the row
                c0, c1 = -1.0, columns + 1.0
            r1 = rows + 1.0
        box = (
            max(math.floor(c0) - 1, 0),
            min(math.ceil(c1) + 2, columns),
            max(math.floor(r0) - 1, 0),
            min(math.ceil(r1) + 2, rows),
        )
        return box if box[0] < box[1] and box[2] < box[3] else None

    def _thickness(self, sample: Sample, scene: _Scene, c0: int, c1: int, r0: int, r1: int) -> np.ndarray:
        """The sample's thickness along z (pixels, float32) over sensor columns c0:c1, rows r0:r1."""
        column, row, radius = self._placement(sample, scene)
        dx = (np.arange(c0, c1, dtype=np.float32) - np.float32(column))[np.newaxis, :]
        dy = (np.float32(row) - np.arange(r0, r1, dtype=np.float32))[:, np.newaxis]  # physical y is up
        radius2 = np.float32(radius * radius)
        cap = radius2 - dx * dx - dy * dy
        np.maximum(cap, 0, out=cap)
        np.sqrt(cap, out=cap)
        cap *= 2
        if isinstance(sample, Sphere):
            return cap
        roll, pitch = math.radians(scene.roll), math.radians(scene.pitch)
        ex, ey = np.float32(math.sin(roll)), np.float32(math.cos(roll))  # the axis's direction, projected
        across = dx * ey - dy * ex
        body = radius2 - across * across
        np.maximum(body, 0, out=body)
        np.sqrt(body, out=body)
        body *= np.float32(2 / max(math.cos(pitch), 1e-3))  # the chord of a cylinder inclined by the pitch
        body[(dx * ex + dy * ey) > 0] = 0  # above the round end's centre: only the half-sphere
        return np.maximum(cap, body, out=cap)


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` filtered by a Gaussian of ``sigma`` pixels along both axes; nearest-pixel at the edges.

    Padding by the filter's reach, then the exact Gaussian in the Fourier
    domain: the cost does not grow with ``sigma``.
    """
    reach = math.ceil(4 * sigma) + 1
    result = image
    for axis in (0, 1):
        length = result.shape[axis]
        widths = [(0, 0), (0, 0)]
        widths[axis] = (reach, reach)
        padded = np.pad(result, widths, mode="edge")
        size = padded.shape[axis]
        spectrum = np.fft.rfft(padded, axis=axis)
        frequencies = np.fft.rfftfreq(size)
        response = np.exp(-2.0 * (math.pi * sigma * frequencies) ** 2).astype(np.float32)
        spectrum *= response[:, np.newaxis] if axis == 0 else response[np.newaxis, :]
        filtered = np.fft.irfft(spectrum, n=size, axis=axis)
        result = filtered[reach : reach + length] if axis == 0 else filtered[:, reach : reach + length]
    return np.ascontiguousarray(result, dtype=np.float32)
