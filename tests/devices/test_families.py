"""What all simple device families share: construction, unimplemented hooks, checked writes.

Covers shutters, pumps, monochromators, X-ray tubes, storage rings, scales,
photodiodes, light sources and IO devices, and the toolbox's positioners,
detectors, grippers, lens changers, sample changers and attenuator boxes
(tested in depth in test_toolbox_families.py). Every refused write must raise the
specific exception, name the device, the parameter and the value, leave the
device as it was and never reach the hardware accessor.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Iterator, List, Optional, Tuple

import pytest

from concert.devices.attenuatorboxes import dummy as attenuatorboxes_dummy
from concert.devices.detectors import dummy as detectors_dummy
from concert.devices.grippers import base as grippers_base
from concert.devices.grippers import dummy as grippers_dummy
from concert.devices.io import base as io_base
from concert.devices.io import dummy as io_dummy
from concert.devices.lenschangers import dummy as lenschangers_dummy
from concert.devices.lightsources import base as lightsources_base
from concert.devices.lightsources import dummy as lightsources_dummy
from concert.devices.monochromators import base as monochromators_base
from concert.devices.monochromators import dummy as monochromators_dummy
from concert.devices.photodiodes import base as photodiodes_base
from concert.devices.photodiodes import dummy as photodiodes_dummy
from concert.devices.positioners import dummy as positioners_dummy
from concert.devices.pumps import base as pumps_base
from concert.devices.pumps import dummy as pumps_dummy
from concert.devices.samplechangers import dummy as samplechangers_dummy
from concert.devices.scales import base as scales_base
from concert.devices.scales import dummy as scales_dummy
from concert.devices.shutters import base as shutters_base
from concert.devices.shutters import dummy as shutters_dummy
from concert.devices.storagerings import base as storagerings_base
from concert.devices.storagerings import dummy as storagerings_dummy
from concert.devices.xraytubes import base as xraytubes_base
from concert.devices.xraytubes import dummy as xraytubes_dummy
from concert.dispatcher import dispatcher
from concert.exceptions import (
    HardLimitError,
    LimitError,
    LockError,
    ReadAccessError,
    SoftLimitError,
    UnitError,
    WriteAccessError,
)
from concert.naming import describe_value
from concert.quantities import q
from tests.conftest import TIMEOUT

DUMMIES = [
    shutters_dummy.Shutter,
    pumps_dummy.Pump,
    monochromators_dummy.Monochromator,
    xraytubes_dummy.XRayTube,
    storagerings_dummy.StorageRing,
    scales_dummy.Scales,
    scales_dummy.TarableScales,
    photodiodes_dummy.PhotoDiode,
    lightsources_dummy.LightSource,
    io_dummy.IO,
    positioners_dummy.Positioner,
    positioners_dummy.ImagingPositioner,
    detectors_dummy.Detector,
    grippers_dummy.Gripper,
    lenschangers_dummy.LensChanger,
    samplechangers_dummy.SampleChanger,
    attenuatorboxes_dummy.AttenuatorBox,
]


def counting(cls: type, accessor: str) -> Tuple[Any, List[tuple]]:
    """Return an instance of a subclass of ``cls`` recording every call of ``accessor``."""
    calls: List[tuple] = []
    original = getattr(cls, accessor)

    def record(self, *args):
        calls.append(args)
        return original(self, *args)

    return type(f"Counting{cls.__name__}", (cls,), {accessor: record})(), calls


@contextmanager
def recording(sender: Any, messages: Iterable[Hashable]) -> Iterator[List[Hashable]]:
    """Within the block, append each of ``messages`` that ``sender`` sends to the yielded list."""
    received: List[Hashable] = []
    handlers = [(message, lambda _sender, message=message: received.append(message)) for message in messages]
    for message, handler in handlers:
        dispatcher.subscribe(sender, message, handler)
    try:
        yield received
    finally:
        for message, handler in handlers:
            dispatcher.unsubscribe(sender, message, handler)


def assert_names(message: str, device: Any, name: str, value: Any) -> None:
    assert repr(device) in message
    assert name in message
    assert describe_value(value) in message


# -- construction -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", DUMMIES)
def test_every_dummy_works_without_arguments(cls):
    device = cls()
    values = list(device)
    assert values, "a device without parameters"
    table = str(device)
    for value in values:
        if value.readable:
            value.get().result(TIMEOUT)  # every readable parameter reads without error
            assert value.name in table
    assert "<" not in table.split("\n", 1)[1], table  # no failing parameter in the table


@pytest.mark.parametrize(
    "cls",
    [
        shutters_base.Shutter,
        pumps_base.Pump,
        monochromators_base.Monochromator,
        xraytubes_base.XRayTube,
        storagerings_base.StorageRing,
        scales_base.Scales,
        scales_base.TarableScales,
        photodiodes_base.PhotoDiode,
        lightsources_base.LightSource,
        io_base.IO,
        grippers_base.Gripper,
    ],
)
def test_base_classes_name_what_the_implementation_lacks(cls):
    device = cls()
    for value in device:
        if value.name == "state":
            continue
        with pytest.raises(ReadAccessError, match=value.name):
            value.read()
        if value.writable:
            unit = getattr(value, "unit", None)
            with pytest.raises(WriteAccessError, match=value.name):
                value.write(1 * unit if unit is not None else 1)


# -- checked writes ---------------------------------------------------------------------


@dataclass
class Case:
    cls: type
    name: str
    accessor: str  # the hardware setter, which a refused write must never reach
    good: Any
    wrong_unit: Any
    below: Any  # below the soft limit
    above: Optional[Any]  # above the hardware limit, where there is one

    def __str__(self) -> str:
        return f"{self.cls.__name__}.{self.name}"


CASES = [
    Case(
        pumps_dummy.Pump,
        "flow_rate",
        "_set_flow_rate",
        2 * q.l / q.min,
        1 * q.mm,
        -1 * q.l / q.min,
        11 * q.l / q.min,
    ),
    Case(xraytubes_dummy.XRayTube, "voltage", "_set_voltage", 30 * q.kV, 1 * q.mA, -1 * q.kV, 61 * q.kV),
    Case(xraytubes_dummy.XRayTube, "current", "_set_current", 0.2 * q.mA, 1 * q.kV, -1 * q.uA, 2 * q.mA),
    Case(
        monochromators_dummy.Monochromator,
        "energy",
        "_set_energy_real",
        12 * q.keV,
        1 * q.nm,
        -1 * q.keV,
        101 * q.keV,
    ),
    Case(
        monochromators_dummy.Monochromator,
        "wavelength",
        "_set_energy_real",
        0.1 * q.nm,
        1 * q.keV,
        -1 * q.nm,
        2 * q.nm,
    ),
    Case(lightsources_dummy.LightSource, "intensity", "_set_intensity", 5 * q.V, 1 * q.A, -1 * q.V, 11 * q.V),
    Case(scales_dummy.TarableScales, "load", "_set_load", 5 * q.g, 1 * q.m, -1 * q.g, 2 * q.kg),
    Case(photodiodes_dummy.PhotoDiode, "light_power", "_set_light_power", 2 * q.mW, 1 * q.V, -1 * q.mW, None),
]


def bad_values(case: Case) -> List[Tuple[str, Any, type]]:
    unit = case.good.units
    values = [
        ("bare number", float(case.good.magnitude), UnitError),
        ("string", str(case.good), UnitError),
        ("wrong unit", case.wrong_unit, UnitError),
        ("nan", q.Quantity(math.nan, unit), LimitError),
        ("inf", q.Quantity(math.inf, unit), LimitError),
        ("-inf", q.Quantity(-math.inf, unit), LimitError),
        ("below", case.below, SoftLimitError),
    ]
    if case.above is not None:
        values.append(("above", case.above, HardLimitError))
    return values


BAD = [
    pytest.param(case, value, error, id=f"{case}-{label}")
    for case in CASES
    for label, value, error in bad_values(case)
]


@pytest.mark.parametrize("case, value, error", BAD)
def test_bad_write_is_refused_before_the_hardware(case, value, error):
    device, calls = counting(case.cls, case.accessor)
    before = device[case.name].read()
    with pytest.raises(error) as info:
        setattr(device, case.name, value)
    assert_names(str(info.value), device, case.name, value)
    future = device[case.name].set(value)
    assert isinstance(future.exception(TIMEOUT), error)
    assert device[case.name].read() == before
    assert calls == []


@pytest.mark.parametrize("case", CASES, ids=str)
def test_good_write_converts_units_and_announces_the_change(case):
    device, calls = counting(case.cls, case.accessor)
    parameter = device[case.name]
    changed = dispatcher.when(parameter, "changed")
    parameter.set(case.good.to_compact()).join(TIMEOUT)
    assert changed.result(TIMEOUT) is parameter
    assert len(calls) == 1
    value = parameter.get().result(TIMEOUT)
    assert value.units == parameter.unit
    assert value.to(case.good.units).magnitude == pytest.approx(case.good.magnitude, rel=1e-12)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_locked_parameter_refuses_writes(case):
    device, calls = counting(case.cls, case.accessor)
    parameter = device[case.name]
    before = parameter.read()
    parameter.lock()
    with pytest.raises(LockError) as info:
        setattr(device, case.name, case.good)
    assert_names(str(info.value), device, case.name, case.good)
    assert parameter.read() == before and calls == []
    parameter.unlock()
    setattr(device, case.name, case.good)
    assert len(calls) == 1


@pytest.mark.parametrize("case", CASES, ids=str)
def test_soft_limits_are_per_instance(case):
    device, calls = counting(case.cls, case.accessor)
    other = case.cls()
    device[case.name].upper = case.good * 0.5
    with pytest.raises(SoftLimitError):
        setattr(device, case.name, case.good)
    assert calls == []
    setattr(other, case.name, case.good)  # the other instance keeps its limits


def frozen_ring() -> storagerings_dummy.StorageRing:
    return storagerings_dummy.StorageRing(clock=lambda: 0.0)


READ_ONLY = [
    (xraytubes_dummy.XRayTube, "power", 1 * q.W),
    (frozen_ring, "current", 100 * q.mA),
    (frozen_ring, "energy", 3 * q.GeV),
    (frozen_ring, "lifetime", 5 * q.h),
    (scales_dummy.Scales, "weight", 5 * q.g),
    (photodiodes_dummy.PhotoDiode, "intensity", 1 * q.V),
    (io_dummy.IO, "ports", [0]),
    (shutters_dummy.Shutter, "state", "open"),
    (pumps_dummy.Pump, "state", "pumping"),
    (xraytubes_dummy.XRayTube, "state", "on"),
    (detectors_dummy.Detector, "pixel_width", 1 * q.um),
    (detectors_dummy.Detector, "pixel_height", 1 * q.um),
    (positioners_dummy.Positioner, "state", "moving"),
    (grippers_dummy.Gripper, "state", "gripped"),
    (lenschangers_dummy.LensChanger, "state", "moving"),
    (samplechangers_dummy.SampleChanger, "state", "moving"),
    (attenuatorboxes_dummy.AttenuatorBox, "state", "moving"),
]


@pytest.mark.parametrize("make, name, value", READ_ONLY, ids=lambda item: getattr(item, "__name__", None))
def test_read_only_parameters_refuse_writes(make, name, value):
    device = make()
    before = device[name].read()
    assert not device[name].writable
    with pytest.raises(WriteAccessError) as info:
        setattr(device, name, value)
    assert_names(str(info.value), device, name, value)
    assert device[name].read() == before
