"""Abort fences: an operation begun before a device's ``abort()`` must not run after it.

:meth:`concert.devices.base.Device.abort` stops what the device is doing and
bumps the device's *abort generation*. Every device operation -- a parameter
write, a checked or transitioning method, a motor's ``move`` -- enters a
:class:`fence` when it *starts*, before it queues for locks, and records the
generation then. Once it holds what it waited for, :func:`check` refuses to
go on (:class:`~concurrent.futures.CancelledError`) if an abort happened in
between: an emergency stop also stops the moves that were queued behind the
one it interrupted, and a ``start()`` still under way cannot re-arm the
hardware after the stop.

The generation is recorded per thread and device at the outermost entry, so
nested operations (a write inside ``move``, a state check inside a write)
share it. Objects without an abort generation (a plain
:class:`~concert.parameters.Parameterizable`) are never fenced.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError
from typing import Any, Dict, List

__all__ = ["aborted", "check", "fence"]

_local = threading.local()


def _entries() -> Dict[Any, List[Any]]:
    """device -> [generation and operation at the outermost entry, nesting depth], per thread."""
    try:
        return _local.entries
    except AttributeError:
        _local.entries = {}
        return _local.entries


class fence:  # noqa: N801 - used like the function-style context managers of contextlib
    """Mark the body as operation ``what`` of ``device`` for :func:`check` (see the module docs)."""

    __slots__ = ("_device", "_what")

    def __init__(self, device: Any, what: str) -> None:
        self._device = device if hasattr(device, "_aborts") else None
        self._what = what

    def __enter__(self) -> None:
        device = self._device
        if device is not None:
            entries = _entries()
            entry = entries.get(device)
            if entry is None:
                entries[device] = [device._aborts, 1, self._what]
            else:
                entry[1] += 1

    def __exit__(self, *exc_info: object) -> None:
        device = self._device
        if device is not None:
            entries = _entries()
            entry = entries[device]
            entry[1] -= 1
            if not entry[1]:
                del entries[device]


def aborted(device: Any) -> bool:
    """Whether ``device`` was aborted since the calling thread's current operation on it began."""
    entry = _entries().get(device) if hasattr(device, "_aborts") else None
    return entry is not None and device._aborts != entry[0]


def check(device: Any) -> None:
    """Raise CancelledError, naming the outermost operation, if ``device`` was aborted since it began."""
    if aborted(device):
        what = _entries()[device][2]
        raise CancelledError(f"{device!r}: {what} was stopped by abort() (or emergency_stop())")
