"""A simulated attenuator box: filters on a slide that takes ``move_time`` per change.

``AttenuatorBox()`` needs no arguments: filters ``'Al 0.5 mm'``,
``'Al 1 mm'`` and ``'Cu 0.1 mm'``, none in the beam, 0.1 s per change.
Writing the filter that is in the beam already moves nothing. A change
cannot be stopped half-way (the beam would be half covered): cancelling
it, ``abort()`` and Ctrl-C let it finish, and a Ctrl-C is raised once it is
over; changes queued behind it when ``abort()`` comes never run.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Optional

from concert.devices.attenuatorboxes import base
from concert.interrupts import protected
from concert.quantities import q
from concert.timeouts import to_seconds

__all__ = ["AttenuatorBox"]


class AttenuatorBox(base.AttenuatorBox):
    """A simulated attenuator box with ``attenuators``, ``attenuator`` in the beam (default none).

    ``move_time`` is a time quantity (default 0.1 s).

    :raises ParameterDefinitionError: ``attenuators`` are no list of distinct names.
    :raises WriteAccessError: ``attenuator`` is neither ``None`` nor one of them.
    :raises UnitError: ``move_time`` is not a time.
    """

    def __init__(
        self,
        attenuators: Iterable[str] = ("Al 0.5 mm", "Al 1 mm", "Cu 0.1 mm"),
        attenuator: Optional[str] = None,
        move_time: Any = 0.1 * q.s,
    ) -> None:
        self._move_seconds = to_seconds(move_time, "move_time")
        super().__init__(attenuators)
        # The filter in the beam; written only inside the box's slot.
        self._attenuator = self["attenuator"]._validate(attenuator)

    def _slide(self) -> None:
        if self._move_seconds > 0:
            threading.Event().wait(self._move_seconds)

    def _get_attenuator(self) -> Optional[str]:
        return self._attenuator

    @protected  # a Ctrl-C waits until the slide has arrived and the filter is recorded
    def _set_attenuator_real(self, attenuator: Optional[str]) -> None:
        if attenuator != self._attenuator:
            self._slide()
            self._attenuator = attenuator
