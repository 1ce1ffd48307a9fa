"""A simulated gripper whose jaws take ``move_time`` of real time to close or open.

``Gripper()`` needs no arguments: released, 0.1 s per motion. A motion
cannot be stopped half-way -- half-closed jaws could drop the sample --:
cancelling a running ``grip()`` or ``release()``, ``abort()`` and Ctrl-C
let it finish, and the gripper ends ``'gripped'`` (or ``'released'``) as
its state says. A Ctrl-C during the motion is raised once the motion is
over. Calls queued behind the running one when ``abort()`` comes never run.
"""

from __future__ import annotations

import threading
from typing import Any

from concert.devices.grippers import base
from concert.interrupts import protected
from concert.quantities import q
from concert.timeouts import to_seconds

__all__ = ["Gripper"]


class Gripper(base.Gripper):
    """A simulated gripper; motions take ``move_time`` (a time quantity, default 0.1 s).

    :raises UnitError: if ``move_time`` is not a time.
    """

    def __init__(self, move_time: Any = 0.1 * q.s) -> None:
        self._move_seconds = to_seconds(move_time, "move_time")
        self._holding = False  # what the jaws do; written only inside the gripper's slot
        super().__init__()

    def _move(self) -> None:
        if self._move_seconds > 0:
            threading.Event().wait(self._move_seconds)

    # Protected: a Ctrl-C waits until the jaws have finished and the result is recorded.

    @protected
    def _grip_real(self) -> None:
        self._move()
        self._holding = True

    @protected
    def _release_real(self) -> None:
        self._move()
        self._holding = False
