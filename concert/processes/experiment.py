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
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import CancelledError
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from concert.futures import Future, async_, check_cancelled, current_future, on_cancel
from concert.interrupts import protected
from concert.pipelines import broadcast

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
        if not isinstance(name, str) or not name or "/" in name or os.sep in name or name in (".", ".."):
            raise ValueError(
                f"an acquisition needs a non-empty name (one plain directory name), not {name!r}"
            )
        self.name = name
        self.producer = producer
        self.consumers = tuple(consumers)

    def __repr__(self) -> str:
        return f"Acquisition({self.name!r})"


class Experiment:
    """Run :class:`Acquisition` objects in order, writing through ``walker`` (see the module docs).

    :raises ValueError: for duplicate acquisition names (they would share a
        directory), or a ``name_fmt`` that is not one directory name with a
        ``{}`` field for the run's number.
    """

    def __init__(
        self, acquisitions: Sequence[Acquisition], walker: Any, name_fmt: str = "scan_{:>04}"
    ) -> None:
        names = [acquisition.name for acquisition in acquisitions]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"acquisition names must differ; repeated: {', '.join(duplicates)}")
        if "{" not in name_fmt or "/" in name_fmt or os.sep in name_fmt:
            raise ValueError(
                f"name_fmt={name_fmt!r} must be one directory name with a {{}} field for the run"
            )
        self.acquisitions = list(acquisitions)
        self.walker = walker
        self.name_fmt = name_fmt

    def __repr__(self) -> str:
        return f"Experiment({', '.join(acquisition.name for acquisition in self.acquisitions)})"

    def _next_run_name(self) -> str:
        index = 0
        while self.walker.exists(self.name_fmt.format(index)):
            index += 1
        return self.name_fmt.format(index)

    @async_
    def run(self) -> Dict[str, Any]:
        """Run every acquisition once; return a future of the run's record (what goes to JSON).

        Cancelling the future stops the run: between acquisitions, or the
        acquisition being recorded after its current frame (see the module
        documentation). Whatever happens, the walker ends where it started
        and ``experiment.json`` is written with the outcome (``done``,
        ``failed`` or ``cancelled``, the last two with a ``reason``).
        """
        walker = self.walker
        run_name = self._next_run_name()
        record: Dict[str, Any] = {
            "run": run_name,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "acquisitions": [],
            "outcome": "running",
        }
        walker.descend(run_name)
        closer = None
        try:
            closer = walker.register_logger("concert", logging.INFO, "experiment.log")
            LOG.info("run %s: %s", run_name, ", ".join(a.name for a in self.acquisitions))
            for acquisition in self.acquisitions:
                check_cancelled()  # cancelling stops the run between acquisitions
                entry, error = self._acquire(acquisition)
                record["acquisitions"].append(entry)
                if error is not None:
                    raise error
            record["outcome"] = "done"
        except (CancelledError, KeyboardInterrupt) as stop:
            record["outcome"] = "cancelled"
            record["reason"] = _stop_text(stop)
            raise
        except BaseException as failure:
            record["outcome"] = "failed"  # the acquisition's entry says more
            record["reason"] = f"{type(failure).__name__}: {failure}"
            raise
        finally:
            self._end_run(record, closer)
        return record

    @protected  # a Ctrl-C meanwhile waits: the record is written and the walker goes back
    def _end_run(self, record: Dict[str, Any], closer: Any) -> None:
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        try:
            if closer is not None:
                LOG.info("run %s %s", record["run"], record["outcome"])
                closer.close()
            try:
                self.walker.log_to_json(record)
            except Exception:  # must not hide what ended the run
                LOG.exception("run %s: experiment.json could not be written", record["run"])
        finally:
            self.walker.ascend()

    def _acquire(self, acquisition: Acquisition) -> Tuple[Dict[str, Any], Optional[BaseException]]:
        walker = self.walker
        entry: Dict[str, Any] = {"name": acquisition.name}
        error: Optional[BaseException] = None
        begin = time.monotonic()
        # What the writer did with the broadcast's frames: it writes every frame it
        # takes (a cancel request stops it before it takes the next one), and it has
        # finished with a frame when it comes back for the next one.
        taken, finished = [0], [0]
        written: Optional[int] = None  # the writer's own count, once it has returned
        try:
            LOG.info("acquisition %s started", acquisition.name)
            frames = acquisition.producer()
            check_cancelled()  # asked to stop while the producer was being made: record nothing

            def counted(stream: Iterable[Any]) -> Iterator[Any]:
                for frame in stream:
                    taken[0] += 1
                    yield frame
                    finished[0] += 1

            def write(stream: Iterable[Any]) -> int:
                # Runs in its own broadcast thread, holding no pool worker; writes
                # into the acquisition's directory without moving the walker.
                return walker.create_writer(counted(stream), name=acquisition.name)()

            futures = broadcast(frames, write, *acquisition.consumers)
            errors = _outcomes(futures)
            check_cancelled()  # the run's own request names the run and its reason
            if errors[0] is None:
                written = futures[0].result()
            error = next((e for e in errors if e is not None), None)
            if error is not None:
                raise error
            entry["frames"] = written
            entry["outcome"] = "done"
            LOG.info("acquisition %s: %s frames", acquisition.name, written)
        except (CancelledError, KeyboardInterrupt) as stop:
            reason = _stop_text(stop)
            LOG.info("acquisition %s cancelled: %s", acquisition.name, reason)
            entry["frames"] = taken[0] if written is None else written  # all in complete files
            entry["outcome"] = "cancelled"
            entry["reason"] = reason
            error = stop
        except Exception as failure:
            LOG.exception("acquisition %s failed", acquisition.name)
            entry["frames"] = finished[0] if written is None else written
            entry["outcome"] = f"failed: {type(failure).__name__}: {failure}"
            error = failure
        finally:
            entry["seconds"] = round(time.monotonic() - begin, 6)
        return entry, error


def _stop_text(stop: BaseException) -> str:
    """What stopped a run: a ``CancelledError``'s text, or ``'<run> was stopped by Ctrl-C'``."""
    if isinstance(stop, KeyboardInterrupt):  # Ctrl-C in the caller's thread (DISABLE_ASYNC)
        run = current_future()
        return f"{run.name if run is not None else 'the experiment run'} was stopped by Ctrl-C"
    return str(stop) or "cancelled"


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
