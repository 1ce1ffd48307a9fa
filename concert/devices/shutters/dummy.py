"""A simulated shutter: starts open, as the legacy one did, and takes ``move_time`` of real time to move.

``Shutter()`` needs no arguments (and then moves instantly). It starts
``'open'`` (the base class's default is ``'closed'``): close it first
where a script needs it closed. A move cannot be stopped half-way, as with
real shutter blades: cancelling a running ``open()`` leaves it to finish.
"""

from __future__ import annotations

import threading
from typing import Any

from concert.devices.shutters import base
from concert.quantities import q
from concert.states import State
from concert.timeouts import to_seconds

__all__ = ["Shutter"]


class Shutter(base.Shutter):
    """A simulated shutter, open at first; moves take ``move_time`` (a time quantity, default 0 s).

    :raises UnitError: if ``move_time`` is not a time.
    """

    state = State(default="open", help="open (at first), closed or error")

    def __init__(self, move_time: Any = 0 * q.s) -> None:
        self._move_seconds = to_seconds(move_time, "move_time")
        super().__init__()

    def _move(self) -> None:
        if self._move_seconds > 0:
            threading.Event().wait(self._move_seconds)

    def _open_real(self) -> None:
        self._move()

    def _close_real(self) -> None:
        self._move()
