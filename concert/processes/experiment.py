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
  after the acquisition, while feeding them to the acquisition's extra
  consumers (an :class:`~concert.pipelines.Average`, say) with
  :func:`~concert.pipelines.broadcast`;
* logs what happens (logger ``concert``) to ``experiment.log`` in the run's
  directory;
* ends by writing ``experiment.json`` there: the acquisitions, their frame
  counts, times and outcome -- also when an acquisition failed, in which
  case the run stops there and the error is raised from its future.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from concert.futures import async_
from concert.pipelines import broadcast
from concert.processes.progress import Steps

__all__ = ["Acquisition", "Experiment"]

LOG = logging.getLogger("concert.experiment")


class Acquisition:
    """One named part of an experiment.

    ``producer`` is called with no arguments when the acquisition runs and
    returns an iterable of frames. ``consumers`` get every frame too, next to
    the walker (see :func:`~concert.pipelines.broadcast`).
    """

    def __init__(
        self,
        name: str,
        producer: Callable[[], Iterable[Any]],
        consumers: Sequence[Callable[[Iterable[Any]], Any]] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an acquisition needs a non-empty name, not {name!r}")
        self.name = name
        self.producer = producer
        self.consumers = tuple(consumers)

    def __repr__(self) -> str:
        return f"Acquisition({self.name!r})"


class Experiment:
    """Run :class:`Acquisition` objects in order, writing through ``walker`` (see the module docs).

    :raises ValueError: for duplicate acquisition names (they would share a directory).
    """

    def __init__(
        self, acquisitions: Sequence[Acquisition], walker: Any, name_fmt: str = "scan_{:>04}"
    ) -> None:
        names = [acquisition.name for acquisition in acquisitions]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"acquisition names must differ; repeated: {', '.join(duplicates)}")
        self.acquisitions = list(acquisitions)
        self.walker = walker
        self.name_fmt = name_fmt

    def _next_run_name(self) -> str:
        index = 0
        while self.walker.exists(self.name_fmt.format(index)):
            index += 1
        return self.name_fmt.format(index)

    @async_
    def run(self) -> Dict[str, Any]:
        """Run every acquisition once; return a future of the run's record (what goes to JSON)."""
        walker = self.walker
        run_name = self._next_run_name()
        walker.descend(run_name)
        record: Dict[str, Any] = {
            "run": run_name,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "acquisitions": [],
            "outcome": "running",
        }
        closer = walker.register_logger("concert", logging.INFO, "experiment.log")
        failure: Optional[BaseException] = None
        try:
            record["outcome"] = "cancelled"
            LOG.info("run %s: %s", run_name, ", ".join(a.name for a in self.acquisitions))
            steps = Steps()
            for acquisition in self.acquisitions:
                steps.check()  # cancelling stops the run between acquisitions
                entry = self._acquire(acquisition)
                record["acquisitions"].append(entry)
                if entry["outcome"] != "done":
                    failure = entry.pop("_error")
                    break
            record["outcome"] = "failed" if failure is not None else "done"
        finally:
            record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            LOG.info("run %s %s", run_name, record["outcome"])
            closer.close()
            walker.log_to_json(record)
            walker.ascend()
        if failure is not None:
            raise failure
        return record

    def _acquire(self, acquisition: Acquisition) -> Dict[str, Any]:
        walker = self.walker
        entry: Dict[str, Any] = {"name": acquisition.name}
        begin = time.monotonic()
        walker.descend(acquisition.name)
        try:
            LOG.info("acquisition %s started", acquisition.name)
            frames = acquisition.producer()
            futures = broadcast(frames, _written_through(walker), *acquisition.consumers)
            errors: List[BaseException] = []
            for future in futures:
                error = future.exception()
                if error is not None:
                    errors.append(error)
            entry["frames"] = futures[0].result() if futures[0].exception() is None else None
            if errors:
                raise errors[0]
            entry["outcome"] = "done"
            LOG.info("acquisition %s: %s frames", acquisition.name, entry["frames"])
        except Exception as error:
            LOG.exception("acquisition %s failed", acquisition.name)
            entry["outcome"] = f"failed: {type(error).__name__}: {error}"
            entry["_error"] = error
        finally:
            entry["seconds"] = round(time.monotonic() - begin, 6)
            walker.ascend()
        return entry


def _written_through(walker: Any) -> Callable[[Iterable[Any]], Any]:
    """A broadcast consumer writing its stream as the walker's dataset at its current position."""

    def write(frames: Iterable[Any]) -> Any:
        return walker.write(frames).result()

    return write
