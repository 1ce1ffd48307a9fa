"""Random values written to every writable quantity of every simulated device.

Each write is either accepted and read back, or refused with a documented
Concert exception, the parameter unchanged. The dummies are discovered from
``concert.devices.<family>.dummy``, so a new family is covered without
touching this file.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import concert.devices
from concert.devices.base import Device
from concert.exceptions import LimitError, LockError, StateError, UnitError, WriteAccessError
from concert.parameters import QuantityValue
from concert.quantities import q

DOCUMENTED = (UnitError, LimitError, LockError, StateError, WriteAccessError)


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
    "W", "l/min", "ml/s", "g", "kg", "dimensionless", "pixel", "mm/s", "deg/s", "um", "count",
]  # fmt: skip

magnitudes = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e4, max_value=1e4),
    st.integers(min_value=-(10**6), max_value=10**6),
)
arrays = st.lists(st.floats(min_value=-10, max_value=10), min_size=0, max_size=4).map(np.array)
quantities = st.builds(
    lambda magnitude, unit: q.Quantity(magnitude, unit), st.one_of(magnitudes, arrays), st.sampled_from(UNITS)
)
values = st.one_of(
    quantities,
    magnitudes,
    st.text(max_size=8),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
)


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


@pytest.mark.parametrize("cls, name", CASES, ids=[f"{c.__name__}.{n}" for c, n in CASES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_random_write_is_accepted_or_refused_cleanly(cls, name, value):
    device = make(cls)
    parameter = device[name]
    before = parameter.read() if parameter.readable else None
    try:
        parameter.write(value)
    except DOCUMENTED as error:
        assert repr(device) in str(error) and name in str(error), f"message lacks device/parameter: {error}"
        if parameter.readable:
            after = parameter.read()
            assert after == before or (_is_nan(after) and _is_nan(before)), f"{name} changed to {after}"
    else:
        expected = parameter._convert(value)
        if parameter.readable:
            got = parameter.read().to(parameter.unit).magnitude
            want = expected.magnitude
            tolerance = 1e-6 * max(1.0, abs(want))
            assert abs(got - want) <= tolerance, f"{name}: wrote {value!r}, read back {got}"
    finally:
        quiet(device)


def _is_nan(value) -> bool:
    try:
        return math.isnan(value.magnitude)
    except (AttributeError, TypeError):
        return False


FAMILIES = {
    "cameras", "io", "lightsources", "monochromators", "motors", "photodiodes", "pumps", "scales",
    "shutters", "storagerings", "xraytubes",
}  # fmt: skip


def test_every_family_has_a_dummy():
    assert {cls.__module__.split(".")[2] for cls in dummies()} == FAMILIES
