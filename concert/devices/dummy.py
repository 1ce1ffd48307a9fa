"""The legacy API's small test devices: :class:`DummyDevice` and :class:`SelectionDevice`.

Both keep their values in memory and need no arguments::

    device = DummyDevice()
    device.value = 42                     # any value: a plain Parameter
    device.do_nothing().join()            # a Future of None

    chooser = SelectionDevice()
    chooser.selection = 2                 # one of 0, 1, 2; others raise WriteAccessError
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.futures import async_
from concert.parameters import Parameter, Selection

__all__ = ["DummyDevice", "SelectionDevice"]


class DummyDevice(Device):
    """A device with one plain :class:`~concert.parameters.Parameter`, ``value``, and ``do_nothing()``.

    ``value`` holds whatever is written to it (no unit, no check); it starts
    as the ``value`` given to the constructor, 0 by default.
    """

    value = Parameter(help="A value of any kind, kept in memory")

    def __init__(self, value: Any = 0) -> None:
        super().__init__()
        self._value = value

    def _get_value(self) -> Any:
        return self._value

    def _set_value(self, value: Any) -> None:
        self._value = value

    @async_
    def do_nothing(self) -> None:
        """Do nothing, asynchronously: return a :class:`~concert.futures.Future` that ends with ``None``."""


class SelectionDevice(Device):
    """A device with a :class:`~concert.parameters.Selection` ``selection`` out of ``range(3)``.

    It starts at 0. Writing anything but 0, 1 or 2 raises
    :class:`~concert.exceptions.WriteAccessError` and keeps the selection.
    """

    selection = Selection(range(3), help="One of 0, 1 and 2")

    def __init__(self) -> None:
        super().__init__()
        self._selection = 0

    def _get_selection(self) -> int:
        return self._selection

    def _set_selection(self, selection: int) -> None:
        self._selection = selection
