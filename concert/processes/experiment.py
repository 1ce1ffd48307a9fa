"""Experiments: named acquisitions run in order, their frames written through a walker.

An :class:`Acquisition` is a name (``'darks'``, ``'flats'``, ``'projections'``)
and a *producer factory*, a callable returning the iterable of frames to
record (it is called when the acquisition runs, so it can close a shutter
or move a motor first). An :class:`Experiment` runs its acquisitions in
order. Each run:

* gets a directory of its own below the walker's current position, named by
  ``name_fmt`` with the first index not taken yet (``scan_0000``,
  ``scan_0001`` ...): a run never writes into an earlier one;
* writes each acquisition's frames through the walker into a directory named
  after the acquisition (the walker itself stays at the run's directory),
  while feeding them to the acquisition's extra consumers (an
  :class:`~concert.pipelines.Average`, say) with
  :func:`~concert.pipelines.broadcast`;
* logs what happens (logger ``concert``) to ``experiment.log`` in the run's
  directory;
* ends by writing ``experiment.json`` there: the acquisitions, their frame
  counts, times and outcome -- also when an acquisition failed, in which
  case the run stops there and the error is raised from its future.

Every acquisition that started has an entry with ``"frames"``, the number
of frames the walker wrote for it, whatever the outcome: all of them when
it is ``"done"``; when it was cancelled, the frames the writer had taken
(each one taken is written); when it failed, the frames the writer had
finished with before the failure (all of them if only another consumer
failed). A run that did not end ``"done"`` says why in ``"reason"``.

Cancelling a run's future (``future.cancel()``, Ctrl-C while waiting for it,
``abort()``) stops it with Concert's one mechanism: the run calls
:func:`~concert.futures.check_cancelled` between acquisitions, and while an
acquisition is being recorded its stop action passes the request on to
every consumer of the broadcast (the walker's writer included), which stop
after the frame in hand. What was written stays, in complete files; the
acquisition's entry says how many frames that was, ``"outcome":
"cancelled"`` and the ``"reason"`` (the text of the ``CancelledError``,
e.g. ``"Experiment(darks, projections).run() was stopped by Ctrl-C"``), as
does the run's record, and the future ends cancelled with a
``CancelledError`` naming the run and the reason. With
:data:`~concert.config.DISABLE_ASYNC` on, the run is made in the caller's
thread, so Ctrl-C interrupts it directly: it is recorded the same way
(reason ``"... was stopped by Ctrl-C"``) and the ``KeyboardInterrupt`` goes
on to the caller once ``experiment.json`` is written.

The run itself -- its directory, log, record and the recording of
cancellations and failures -- is made by
:class:`concert.experiments.base.RunEngine`, which the legacy
:class:`concert.experiments.base.Experiment` shares; this module adds how an
acquisition is recorded here: pull-style, through
:func:`~concert.pipelines.broadcast`, the walker's writer first. Wrong use
raises :class:`~concert.experiments.base.ExperimentError` (a
:class:`ValueError`).
"""

from __future__ import annotations

import contextlib
import functools
from concurrent.futures import CancelledError
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from concert.experiments.base import (
    FrameCount,
    Run,
    RunEngine,
    check_acquisition_name,
    check_distinct,
    check_name_fmt,
)
from concert.futures import Future, async_, check_cancelled, current_future, on_cancel
from concert.pipelines import broadcast

__all__ = ["Acquisition", "Experiment"]


class Acquisition:
    """One named part of an experiment.

    ``producer`` is called with no arguments when the acquisition runs and
    returns an iterable of frames. ``consumers`` get every frame too, next to
    the walker (see :func:`~concert.pipelines.broadcast`).

    :raises ExperimentError: (a :class:`ValueError`) for a name that is not
        one plain directory name.
    """

    def __init__(
        self,
        name: str,
        producer: Callable[[], Iterable[Any]],
        consumers: Sequence[Callable[[Iterable[Any]], Any]] = (),
    ) -> None:
        self.name = check_acquisition_name(name)
        self.producer = producer
        self.consumers = tuple(consumers)

    def __repr__(self) -> str:
        return f"Acquisition({self.name!r})"


class Experiment(RunEngine):
    """Run :class:`Acquisition` objects in order, writing through ``walker`` (see the module docs).

    :raises ExperimentError: (a :class:`ValueError`) for duplicate
        acquisition names (they would share a directory), or a ``name_fmt``
        that is not one directory name with a ``{}`` field for the run's number.
    """

    def __init__(
        self, acquisitions: Sequence[Acquisition], walker: Any, name_fmt: str = "scan_{:>04}"
    ) -> None:
        self.acquisitions = list(acquisitions)
        check_distinct(repr(self), [acquisition.name for acquisition in self.acquisitions])
        self.name_fmt = check_name_fmt(repr(self), name_fmt)
        self.walker = walker

    def __repr__(self) -> str:
        return f"Experiment({', '.join(acquisition.name for acquisition in self.acquisitions)})"

    def _next_run_name(self) -> str:
        return self._free_run(self.name_fmt, 0)[1]

    @async_
    def run(self) -> Dict[str, Any]:
        """Run every acquisition once; return a future of the run's record (what goes to JSON).

        Cancelling the future stops the run: between acquisitions, or the
        acquisition being recorded after its current frame (see the module
        documentation). Whatever happens, the walker ends where it started
        and ``experiment.json`` is written with the outcome (``done``,
        ``failed`` or ``cancelled``, the last two with a ``reason``).
        """
        acquisitions = list(self.acquisitions)
        return self._execute(
            self._next_run_name(), [a.name for a in acquisitions], functools.partial(self._all, acquisitions)
        )

    def _all(self, acquisitions: List[Acquisition], run: Run) -> None:
        for acquisition in acquisitions:
            check_cancelled()  # cancelling stops the run between acquisitions
            run.acquisition(acquisition.name, functools.partial(self._record, acquisition))

    def _record(self, acquisition: Acquisition, count: FrameCount) -> Optional[int]:
        walker = self.walker
        frames = acquisition.producer()
        check_cancelled()  # asked to stop while the producer was being made: record nothing

        # What the writer did with the broadcast's frames: it writes every frame it
        # takes (a cancel request stops it before it takes the next one), and it has
        # finished with a frame when it comes back for the next one.
        def counted(stream: Iterable[Any]) -> Iterator[Any]:
            for frame in stream:
                count.taken += 1
                yield frame
                count.finished += 1

        def write(stream: Iterable[Any]) -> int:
            # Runs in its own broadcast thread, holding no pool worker; writes
            # into the acquisition's directory without moving the walker.
            return walker.create_writer(counted(stream), name=acquisition.name)()

        futures = broadcast(frames, write, *acquisition.consumers)
        errors = _outcomes(futures)
        check_cancelled()  # the run's own request names the run and its reason
        if errors[0] is None:
            count.written = futures[0].result()
        error = next((e for e in errors if e is not None), None)
        if error is not None:
            raise error
        return count.written


def _outcomes(futures: Sequence[Future]) -> List[Optional[BaseException]]:
    """Wait for every consumer's future; return the exception of each (``None``: it succeeded).

    While it waits, a cancel request on the run (or Ctrl-C) is passed on to
    every consumer, with the run's reason, so the whole acquisition stops.
    """
    run = current_future()

    def stop_consumers() -> None:
        reason = getattr(run, "_cancel_reason", None) or "cancellation of the experiment run"
        for future in futures:
            future.request_cancel(reason)

    try:
        registration: Any = on_cancel(stop_consumers)  # Ctrl-C in the block runs it too
    except CancelledError:  # asked to stop just before: the consumers are stopped all the same
        stop_consumers()
        registration = contextlib.nullcontext()
    errors: List[Optional[BaseException]] = []
    with registration:
        for future in futures:
            try:
                errors.append(future.exception())
            except CancelledError as error:
                errors.append(error)
    return errors
