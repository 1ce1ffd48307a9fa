"""A simulated sample changer: a robot that takes ``move_time`` to unmount and as long to mount.

``SampleChanger()`` needs no arguments: samples ``'sample 1'`` to
``'sample 3'``, none mounted, 0.1 s per robot motion. Exchanging a mounted
sample for another takes two motions (unmount, mount); writing the mounted
sample again takes none. An exchange cannot be stopped half-way (the robot
would hold a sample in mid-air): cancelling it, ``abort()`` and Ctrl-C let
it finish, and a Ctrl-C is raised once it is over; exchanges queued behind
it when ``abort()`` comes never run.
"""

from __future__ import annotations

import threading
from typing import Any, Iterable, Optional

from concert.devices.samplechangers import base
from concert.interrupts import protected
from concert.quantities import q
from concert.timeouts import to_seconds

__all__ = ["SampleChanger"]


class SampleChanger(base.SampleChanger):
    """A simulated sample changer for ``samples``, ``sample`` mounted at first (default none).

    ``move_time`` is a time quantity (default 0.1 s), the time of one robot motion.

    :raises ParameterDefinitionError: ``samples`` are no list of distinct names.
    :raises WriteAccessError: ``sample`` is neither ``None`` nor one of them.
    :raises UnitError: ``move_time`` is not a time.
    """

    def __init__(
        self,
        samples: Iterable[str] = ("sample 1", "sample 2", "sample 3"),
        sample: Optional[str] = None,
        move_time: Any = 0.1 * q.s,
    ) -> None:
        self._move_seconds = to_seconds(move_time, "move_time")
        super().__init__(samples)
        # The mounted sample; written only inside the changer's slot.
        self._sample = self["sample"]._validate(sample)

    def _motion(self) -> None:
        if self._move_seconds > 0:
            threading.Event().wait(self._move_seconds)

    def _get_sample(self) -> Optional[str]:
        return self._sample

    @protected  # a Ctrl-C waits until the whole exchange (unmount, mount) is over and recorded
    def _set_sample_real(self, sample: Optional[str]) -> None:
        if sample == self._sample:
            return
        if self._sample is not None:
            self._motion()
            self._sample = None
        if sample is not None:
            self._motion()
            self._sample = sample
