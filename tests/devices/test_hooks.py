"""Hardware hooks follow one convention: ``_<verb>_real`` (besides the parameter accessors).

A family's base class calls hooks that a driver -- the simulated one in
``dummy``, or one for real hardware -- implements. Each is either a
parameter accessor (``_get_<name>``, ``_set_<name>``, ``_get_target_<name>``)
or a hardware hook named ``_<verb>_real``; the base class documents each.
The only others are :class:`~concert.devices.base.Device`'s stop hooks
``_abort()`` and ``_emergency_stop()``, which :mod:`concert.operations` calls
on every device.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import List, Set, Tuple

import pytest

import concert.devices
from concert.devices.base import Device

REAL = re.compile(r"^_[a-z_]+_real$")
ACCESSOR = re.compile(r"^_(get|set|get_target)_[a-z_]+$")
#: Device-wide stop hooks, called by concert.operations (not by a family's base class).
DEVICE_HOOKS = {"_abort", "_emergency_stop"}
#: The names the hooks had before they were renamed: none may come back.
OLD_NAMES = {
    "_move_hardware",
    "_stop_hardware",
    "_home_hardware",
    "_open",
    "_close",
    "_start",
    "_stop",
    "_on",
    "_off",
    "_tare",
    "_read_port",
    "_write_port",
    "_check_port_value",
}
MARKERS = {"AccessorNotImplementedError", "NotImplementedError"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "devices.rst"

FAMILIES = sorted(info.name for info in pkgutil.iter_modules(concert.devices.__path__) if info.ispkg)

#: Families whose devices are made of other devices and so have no hardware hooks of their own.
COMPOSITE = {"positioners"}  # a positioner drives the motors of its axes


def family_module(family: str, kind: str) -> ModuleType:
    return importlib.import_module(f"concert.devices.{family}.{kind}")


def conventional(name: str) -> bool:
    return bool(REAL.match(name) or ACCESSOR.match(name))


def _raises_marker(function: ast.FunctionDef) -> bool:
    """Whether the body (after a docstring) is only ``raise AccessorNotImplementedError(...)``."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    raised = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(raised, ast.Name) and raised.id in MARKERS


def abstract_hooks(module: ModuleType) -> List[Tuple[str, str]]:
    """(class, method) of every "implement me" method of the module's classes."""
    tree = ast.parse(inspect.getsource(module))
    return [
        (node.name, item.name)
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.FunctionDef) and _raises_marker(item)
    ]


def real_hooks(module: ModuleType) -> Set[str]:
    return {name for _, name in abstract_hooks(module) if REAL.match(name)}


def device_classes(module: ModuleType) -> List[type]:
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, Device) and value.__module__ == module.__name__
    ]


def test_every_family_is_scanned():
    assert {"cameras", "io", "monochromators", "motors", "pumps", "scales", "shutters", "xraytubes"} <= set(
        FAMILIES
    )
    found = set().union(*(real_hooks(family_module(family, "base")) for family in FAMILIES))
    # The scan finds the hooks at all (else the tests below would pass on nothing).
    assert {"_move_real", "_stop_real", "_open_real", "_start_real", "_grab_real", "_tare_real"} <= found


@pytest.mark.parametrize("family", FAMILIES)
def test_abstract_hooks_of_the_base_classes_are_conventional(family):
    hooks = abstract_hooks(family_module(family, "base"))
    if family in COMPOSITE:
        assert not hooks, f"concert.devices.{family}.base is composite but asks {hooks} of an implementation"
        return
    assert hooks, f"concert.devices.{family}.base asks nothing of an implementation"
    wrong = [f"{cls}.{name}" for cls, name in hooks if not conventional(name)]
    assert not wrong, f"hooks not named _<verb>_real nor a parameter accessor: {wrong}"


@pytest.mark.parametrize("family", FAMILIES)
def test_dummies_override_only_conventional_hooks(family):
    """Whatever a dummy overrides of its base classes is a hook of the convention."""
    dummy = family_module(family, "dummy")
    classes = device_classes(dummy)
    assert classes
    wrong = []
    for cls in classes:
        bases = [
            k
            for k in cls.__mro__
            if k.__module__.startswith("concert.devices.") and k.__module__ != dummy.__name__
        ]
        for klass in cls.__mro__:
            if klass.__module__ != dummy.__name__:
                continue
            for name, attribute in vars(klass).items():
                if not inspect.isfunction(attribute) or name == "__init__" or name in DEVICE_HOOKS:
                    continue
                if any(name in vars(base) for base in bases) and not conventional(name):
                    wrong.append(f"{klass.__name__}.{name}")
    assert not wrong, f"overrides not named _<verb>_real nor a parameter accessor: {sorted(set(wrong))}"


@pytest.mark.parametrize("family", FAMILIES)
def test_old_hook_names_are_gone(family):
    for module in (family_module(family, "base"), family_module(family, "dummy")):
        for cls in device_classes(module):
            left = sorted(name for name in OLD_NAMES if hasattr(cls, name))
            assert not left, f"{cls.__module__}.{cls.__name__} still has {left}"


@pytest.mark.parametrize("family", FAMILIES)
def test_every_real_hook_is_documented(family):
    """The base module's documentation and the device docs list every ``_*_real`` hook."""
    base = family_module(family, "base")
    docs = DOCS.read_text(encoding="utf-8")
    for name in sorted(real_hooks(base)):
        assert f"``{name}(" in base.__doc__, f"{base.__name__} does not document {name}"
        assert f"``{name}(" in docs, f"docs/devices.rst does not list {name}"
