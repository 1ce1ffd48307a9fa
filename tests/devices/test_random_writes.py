"""Random values written to every writable quantity of every simulated device.

Each write is either accepted and read back as the value the specification
says it is (its magnitude as one float, converted to the parameter's unit),
or refused with a Concert exception (one of :mod:`concert.exceptions`)
naming the device and the parameter, the parameter's value and the device's
state unchanged. Values that must be refused -- strings, bools, complex
numbers and arrays of other than one element as magnitudes, numbers too
large for a float, NaN, infinities, bare numbers for parameters with a unit,
units of another kind -- must never be accepted. Values come in every form a
script may produce: Python and numpy numbers of every width, ``Decimal``,
``Fraction``, 0-d and 1-element arrays. The dummies are discovered from
``concert.devices.<family>.dummy``, so a new family is covered without
touching this file.
"""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
import pkgutil
from decimal import Decimal
from typing import Any, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import concert.devices
from concert.devices.base import Device
from concert.exceptions import ConcertError
from concert.parameters import QuantityValue
from concert.quantities import q


def dummies():
    found = []
    for family in pkgutil.iter_modules(concert.devices.__path__):
        if not family.ispkg:
            continue
        try:
            module = importlib.import_module(f"concert.devices.{family.name}.dummy")
        except ModuleNotFoundError:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Device)
                and cls.__module__ == module.__name__
                and not cls.__name__.startswith("_")
            ):
                found.append(cls)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__name__}")


def writable_quantities(cls):
    device = cls()
    return [value.name for value in device if isinstance(value, QuantityValue) and value.writable]


CASES = [(cls, name) for cls in dummies() for name in writable_quantities(cls)]

UNITS = [
    "mm", "m", "nm", "deg", "rad", "s", "ms", "Hz", "1/s", "keV", "eV", "nm", "V", "kV", "mA", "uA",
    "W", "l/min", "ml/s", "g", "kg", "dimensionless", "pixel", "mm/s", "deg/s", "um", "count", "percent",
    "rad/s", "turn",
]  # fmt: skip

NUMPY_INTEGERS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
NUMPY_FLOATS = [np.float16, np.float32, np.float64, np.longdouble]

numpy_integers = st.sampled_from(NUMPY_INTEGERS).flatmap(
    lambda kind: st.integers(int(np.iinfo(kind).min), int(np.iinfo(kind).max)).map(kind)
)
numpy_floats = st.sampled_from(NUMPY_FLOATS).flatmap(
    lambda kind: st.floats(width=16 if kind is np.float16 else 32 if kind is np.float32 else 64).map(kind)
)
huge_integers = st.one_of(st.integers(min_value=10**308), st.integers(max_value=-(10**308)))
numbers_ = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e4, max_value=1e4),
    st.integers(min_value=-(10**6), max_value=10**6),
    numpy_integers,
    numpy_floats,
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=-1000, max_value=1000, places=3),
    st.fractions(),
    st.fractions(min_value=-1000, max_value=1000, max_denominator=100),
    huge_integers,
)
single_element_arrays = numbers_.flatmap(
    lambda number: st.sampled_from([np.array(number), np.array([number])])
)
other_magnitudes = st.one_of(
    st.text(min_size=1, max_size=8),  # pint keeps strings as they are
    st.booleans().map(np.bool_),  # pint refuses Python bools itself
    st.booleans().map(lambda flag: np.array([flag])),
    st.lists(st.floats(min_value=-10, max_value=10), min_size=0, max_size=4).map(np.array),
    st.complex_numbers(max_magnitude=100),
)
magnitudes = st.one_of(numbers_, single_element_arrays, other_magnitudes)
quantities = st.builds(
    lambda magnitude, unit: q.Quantity(magnitude, unit), magnitudes, st.sampled_from(UNITS)
)
values = st.one_of(
    quantities,
    numbers_,
    single_element_arrays,
    st.text(max_size=8),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
)


def real_magnitude(magnitude: Any) -> Optional[float]:
    """What the specification says a magnitude is as a number: one finite real number, as a float, or None."""
    if isinstance(magnitude, np.ndarray):
        if magnitude.size != 1:
            return None
        magnitude = magnitude.reshape(-1)[0]
    if isinstance(magnitude, (bool, np.bool_, str, bytes)):
        return None
    if not isinstance(magnitude, (numbers.Real, Decimal)):
        return None
    try:
        number = float(magnitude)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def expected_magnitude(value: Any, parameter: QuantityValue) -> Optional[float]:
    """The magnitude, in the parameter's unit, a write of ``value`` stores if accepted.

    ``None``: the write must be refused.
    """
    unit = parameter.unit
    if isinstance(value, q.Quantity):
        number = real_magnitude(value.magnitude)
        if number is None:
            return None
        if q.get_root_units(value.units)[1] != q.get_root_units(unit)[1]:
            return None  # not the same kind: an angle is no plain number, rad/s no Hz
        converted = q.Quantity(number, value.units).m_as(unit)
        return converted if math.isfinite(converted) else None
    if unit != q.dimensionless:
        return None  # bare numbers only for plain dimensionless parameters
    return real_magnitude(value)


def quiet(device: Device) -> None:
    """Bring a device back to rest between examples (continuous motion, recording, ...)."""
    device.emergency_stop()
    state = device["state"].read() if "state" in device else None
    if state == "error":
        device.reset().join(30)


def make(cls):
    device = cls()
    if "motion_velocity" in device:  # real-time motion: move as fast as allowed
        device.motion_velocity = device["motion_velocity"].upper
    return device


def state_of(device: Device) -> Any:
    return device["state"].read() if "state" in device else None


@pytest.mark.parametrize("cls, name", CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_random_write_is_accepted_or_refused_cleanly(cls, name, value):
    device = make(cls)
    parameter = device[name]
    before = parameter.read() if parameter.readable else None
    state = state_of(device)
    expected = expected_magnitude(value, parameter)
    try:
        parameter.write(value)
    except ConcertError as error:
        message = str(error)
        assert repr(device) in message and name in message, f"message lacks device/parameter: {message}"
        assert state_of(device) == state, f"a refused write changed the state to {state_of(device)}"
        if parameter.readable:
            after = parameter.read()
            assert after == before or (_is_nan(after) and _is_nan(before)), f"{name} changed to {after}"
    else:
        assert expected is not None, f"{name}: {value!r} was accepted, but it must be refused"
        if parameter.readable:
            got = parameter.read().to(parameter.unit).magnitude
            tolerance = 1e-6 * max(1.0, abs(expected))
            assert abs(got - expected) <= tolerance, f"{name}: wrote {value!r}, read back {got}"
    finally:
        quiet(device)


def _is_nan(value) -> bool:
    try:
        return math.isnan(value.magnitude)
    except (AttributeError, TypeError):
        return False


FAMILIES = {
    "attenuatorboxes", "cameras", "detectors", "grippers", "io", "lenschangers", "lightsources",
    "monochromators", "motors", "photodiodes", "positioners", "pumps", "samplechangers", "scales",
    "shutters", "storagerings", "xraytubes",
}  # fmt: skip


def test_every_family_has_a_dummy():
    assert {cls.__module__.split(".")[2] for cls in dummies()} == FAMILIES
