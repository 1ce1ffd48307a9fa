"""A simulated lens changer: a turret of named objectives that takes ``move_time`` to turn.

``LensChanger()`` needs no arguments: objectives ``'5x'``, ``'10x'`` and
``'20x'``, the first in the beam, 0.1 s per change. Writing the objective
that is in the beam already does not move the turret. A change cannot be
stopped half-way (no objective would be in the beam): cancelling it,
``abort()`` and Ctrl-C let it finish, and a Ctrl-C is raised once it is
over; changes queued behind it when ``abort()`` comes never run.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Optional

from concert.devices.lenschangers import base
from concert.interrupts import protected
from concert.quantities import q
from concert.timeouts import to_seconds

__all__ = ["LensChanger"]


class LensChanger(base.LensChanger):
    """A simulated lens changer with ``objectives``, starting at ``objective`` (default: the first).

    ``move_time`` is a time quantity (default 0.1 s).

    :raises ParameterDefinitionError: ``objectives`` are no list of distinct names.
    :raises WriteAccessError: ``objective`` is not one of them.
    :raises UnitError: ``move_time`` is not a time.
    """

    def __init__(
        self,
        objectives: Iterable[str] = ("5x", "10x", "20x"),
        objective: Optional[str] = None,
        move_time: Any = 0.1 * q.s,
    ) -> None:
        self._move_seconds = to_seconds(move_time, "move_time")
        super().__init__(objectives)
        # The objective in the beam; written only inside the changer's slot.
        self._objective = self.objectives[0] if objective is None else self["objective"]._validate(objective)

    def _turn(self) -> None:
        if self._move_seconds > 0:
            threading.Event().wait(self._move_seconds)

    def _get_objective(self) -> str:
        return self._objective

    @protected  # a Ctrl-C waits until the turret has arrived and the objective is recorded
    def _set_objective_real(self, objective: str) -> None:
        if objective != self._objective:
            self._turn()
            self._objective = objective
