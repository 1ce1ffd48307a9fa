"""The legacy API's experiments, and the run engine both experiment APIs share.

The legacy face (``from concert.experiments.base import Acquisition, Experiment``):

* An :class:`Acquisition` is a name, a *producer factory* (a callable
  returning the iterable of frames), push-style *consumers* and an optional
  ``acquire`` callable. Calling the acquisition (``acquisition()``) calls
  ``acquire()``, then :meth:`Acquisition.connect`: the frames of
  ``producer()`` are sent to every consumer, in the calling thread.
* An :class:`Experiment` runs its acquisitions in order: :meth:`Experiment.run`
  returns a future; ``prepare()`` and ``finish()`` are called around
  :meth:`Experiment.acquire`, which subclasses may override.
  It is a :class:`~concert.parameters.Parameterizable` with the parameters
  ``iteration``, ``separate_scans``, ``name_fmt``, ``log_level`` and a
  ``state`` (``'standby'``, ``'running'``, ``'error'``).

:mod:`concert.processes.experiment` is the other face (pull-style consumers,
frames always written through the walker). Both run on :class:`RunEngine`,
which makes one *run*:

* a directory of its own below the walker's current position, named by
  ``name_fmt`` with the first number not taken yet, so that a run never
  writes into an earlier one;
* the messages of the ``concert`` logger (and its children) in
  ``experiment.log`` there;
* a record -- the run's name, start and end times, its outcome, and for
  each acquisition that started its number of frames, duration and
  outcome -- written to ``experiment.json`` there whatever happens, and
  returned as the run's result;
* one way of stopping: cancelling the run's future (``future.cancel()``,
  Ctrl-C, :meth:`Experiment.abort`) raises ``CancelledError`` from
  :func:`~concert.futures.check_cancelled` between acquisitions and between
  frames; the run and the acquisition in progress are recorded as
  ``"cancelled"`` with the reason, and the future ends cancelled.

All wrong use raises :class:`ExperimentError`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from concurrent.futures import CancelledError
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from concert.checks import is_integer
from concert.coroutines.base import is_coroutine
from concert.exceptions import ExperimentError as ExperimentError  # re-exported: where the legacy API has it
from concert.futures import Future, async_, check_cancelled, current_future
from concert.interrupts import protected
from concert.locking import Slot
from concert.naming import describe_value, name_of
from concert.parameters import Parameter, Parameterizable
from concert.states import State, check, transition

__all__ = ["Acquisition", "Experiment", "FrameCount", "Run", "RunEngine"]

LOG = logging.getLogger("concert.experiment")

#: The log levels :attr:`Experiment.log_level` takes, by name.
LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


# -- the checks both faces make --------------------------------------------------------------


def check_acquisition_name(name: Any) -> str:
    """Return ``name`` if it is one plain directory name (acquisitions name directories).

    :raises ExperimentError: for anything else (empty, with a path separator, ``.`` or ``..``).
    """
    if not isinstance(name, str) or not name or "/" in name or os.sep in name or name in (".", ".."):
        raise ExperimentError(
            f"an acquisition needs a non-empty name (one plain directory name), not {name!r}"
        )
    return name


def check_distinct(owner: str, names: Sequence[str]) -> None:
    """Refuse repeated acquisition names (they would share a directory).

    :raises ExperimentError: naming ``owner`` and the repeated names.
    """
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ExperimentError(f"{owner}: acquisition names must differ; repeated: {', '.join(repeated)}")


def check_name_fmt(owner: str, name_fmt: Any) -> str:
    """Return ``name_fmt`` if it makes one plain directory name of each run number.

    :raises ExperimentError: if it is not a str, has no ``{}`` field for the
        number (``name_fmt.format(0) == name_fmt.format(1)``), cannot format a
        number, or makes a path of several levels.
    """
    problem = None
    if not isinstance(name_fmt, str):
        problem = "is not a str"
    else:
        try:
            first, second = name_fmt.format(0), name_fmt.format(1)
        except (ValueError, IndexError, KeyError, TypeError) as error:
            problem = f"cannot format a run number ({type(error).__name__}: {error})"
        else:
            if first == second:
                problem = "has no {} field for the run number"
            elif "/" in name_fmt or os.sep in name_fmt or first in (".", ".."):
                problem = "does not make one plain directory name"
    if problem is not None:
        raise ExperimentError(
            f"{owner}: name_fmt={name_fmt!r} {problem}; it must be one directory name with a {{}} "
            "field for the run, e.g. 'scan_{:>04}'"
        )
    return name_fmt


def stop_text(stop: BaseException) -> str:
    """What stopped a run: a ``CancelledError``'s text, or ``'<run> was stopped by Ctrl-C'``."""
    if isinstance(stop, KeyboardInterrupt):  # Ctrl-C in the caller's thread (DISABLE_ASYNC)
        run = current_future()
        return f"{run.name if run is not None else 'the experiment run'} was stopped by Ctrl-C"
    return str(stop) or "cancelled"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- the run engine ----------------------------------------------------------------------------


class FrameCount:
    """What an acquisition did with its frames, kept up to date while it records.

    ``taken``: frames taken from the producer (each one taken is handed on
    completely); ``finished``: frames every consumer has finished with;
    ``written``: the writer's own count once it has returned (``None``
    before). The record's ``"frames"`` is ``written`` when known, else
    ``taken`` after a cancellation and ``finished`` after a failure.
    """

    __slots__ = ("finished", "taken", "written")

    def __init__(self) -> None:
        self.taken = 0
        self.finished = 0
        self.written: Optional[int] = None


class Run:
    """One run in progress: its :attr:`record`, and the recording of its acquisitions."""

    def __init__(self, name: str) -> None:
        #: What goes to ``experiment.json`` (and is the run's result).
        self.record: Dict[str, Any] = {
            "run": name,
            "started": _now(),
            "acquisitions": [],
            "outcome": "running",
        }

    def acquisition(self, name: str, body: Callable[[FrameCount], Optional[int]]) -> Optional[int]:
        """Record ``body(count)`` as acquisition ``name``; return what it returned (the frames).

        Appends the acquisition's entry to the record -- ``name``,
        ``frames``, ``outcome`` (``done``, ``cancelled``, ``failed: <error>``),
        a ``reason`` when cancelled, ``seconds`` -- and logs its start and
        end. Whatever stopped ``body`` is raised again.
        """
        entry: Dict[str, Any] = {"name": name}
        self.record["acquisitions"].append(entry)
        count = FrameCount()
        begin = time.monotonic()
        try:
            LOG.info("acquisition %s started", name)
            frames = body(count)
            entry["frames"] = frames
            entry["outcome"] = "done"
            LOG.info("acquisition %s: %s frames", name, frames)
            return frames
        except (CancelledError, KeyboardInterrupt) as stop:
            reason = stop_text(stop)
            LOG.info("acquisition %s cancelled: %s", name, reason)
            entry["frames"] = count.taken if count.written is None else count.written  # complete files
            entry["outcome"] = "cancelled"
            entry["reason"] = reason
            raise
        except BaseException as failure:
            LOG.exception("acquisition %s failed", name)
            entry["frames"] = count.finished if count.written is None else count.written
            entry["outcome"] = f"failed: {type(failure).__name__}: {failure}"
            raise
        finally:
            entry["seconds"] = round(time.monotonic() - begin, 6)


#: The run being made in this context (legacy acquisitions called during it record themselves).
_RUN: contextvars.ContextVar[Optional[Run]] = contextvars.ContextVar("concert_experiment_run", default=None)


def current_run() -> Optional[Run]:
    """The :class:`Run` being made in this context, or ``None``."""
    return _RUN.get()


class RunEngine:
    """What both experiment classes share: making one run (see the module documentation).

    Subclasses set :attr:`walker` (or ``None``: no files) and call
    :meth:`_execute` from their ``run``.
    """

    walker: Any = None

    def _free_run(self, name_fmt: str, start: int) -> Tuple[int, str]:
        """The first run number from ``start`` whose directory does not exist yet, and that name."""
        index = start
        while self.walker is not None and self.walker.exists(name_fmt.format(index)):
            index += 1
        return index, name_fmt.format(index)

    def _execute(
        self,
        run_name: str,
        names: Sequence[str],
        body: Callable[[Run], None],
        log_level: int = logging.INFO,
        own_directory: bool = True,
    ) -> Dict[str, Any]:
        """Make a run called ``run_name`` of the acquisitions ``names`` by calling ``body(run)``.

        With a walker: descends into ``run_name`` (when ``own_directory``),
        logs at ``log_level`` and above to ``experiment.log`` there, and
        finally writes the record to ``experiment.json`` there and goes back.
        Returns the record; raises what stopped ``body`` after recording it.
        """
        walker = self.walker
        run = Run(run_name)
        record = run.record
        descended = False
        if walker is not None and own_directory:
            walker.descend(run_name)
            descended = True
        closer = None
        token = _RUN.set(run)
        try:
            if walker is not None:
                closer = walker.register_logger("concert", log_level, "experiment.log")
            LOG.info("run %s: %s", run_name, ", ".join(names))
            body(run)
            record["outcome"] = "done"
        except (CancelledError, KeyboardInterrupt) as stop:
            record["outcome"] = "cancelled"
            record["reason"] = stop_text(stop)
            raise
        except BaseException as failure:
            record["outcome"] = "failed"  # the acquisition's entry says more
            record["reason"] = f"{type(failure).__name__}: {failure}"
            raise
        finally:
            _RUN.reset(token)
            self._end_run(record, closer, descended)
        return record

    @protected  # a Ctrl-C meanwhile waits: the record is written and the walker goes back
    def _end_run(self, record: Dict[str, Any], closer: Any, descended: bool) -> None:
        record["finished"] = _now()
        try:
            LOG.info("run %s %s", record["run"], record["outcome"])
            if closer is not None:
                closer.close()
            if self.walker is not None:
                try:
                    self.walker.log_to_json(record)
                except Exception:  # must not hide what ended the run
                    LOG.exception("run %s: experiment.json could not be written", record["run"])
        finally:
            if descended:
                self.walker.ascend()


# -- the legacy face -----------------------------------------------------------------------------


class Acquisition:
    """A named part of a legacy experiment: ``acquire()``, then ``producer()``'s frames into the consumers.

    ``producer`` is called with no arguments when the acquisition runs and
    returns an iterable of frames (e.g. ``lambda: frames(10, camera)``).
    ``consumers`` is a list -- addons append to it -- of push-style
    consumers: a callable returning a primed coroutine when called with no
    arguments (a *consumer factory*, called anew at every run, such as an
    :class:`~concert.experiments.addons.Accumulator`'s), or a primed
    coroutine itself (used as it is, every run). ``acquire``, if given, is
    called with no arguments before the producer.

    :raises ExperimentError: for a name that is not one plain directory
        name, a ``producer`` or ``acquire`` that cannot be called.
    """

    def __init__(
        self,
        name: str,
        producer: Callable[[], Iterable[Any]],
        consumers: Optional[Sequence[Any]] = None,
        acquire: Optional[Callable[[], Any]] = None,
    ) -> None:
        self.name = check_acquisition_name(name)
        if not callable(producer):
            raise ExperimentError(
                f"{self!r}: producer must be a callable returning the frames (e.g. lambda: "
                f"frames(10, camera)), not {describe_value(producer)}"
            )
        if acquire is not None and not callable(acquire):
            raise ExperimentError(
                f"{self!r}: acquire must be a callable or None, not {describe_value(acquire)}"
            )
        self.producer = producer
        self.consumers: List[Any] = [] if consumers is None else list(consumers)
        self.acquire = acquire

    def __repr__(self) -> str:
        return f"Acquisition({self.name!r})"

    def __call__(self) -> int:
        """Run the acquisition: ``acquire()``, then :meth:`connect`; return the number of frames.

        During an experiment's run the acquisition is recorded in its
        ``experiment.json`` (frames, time, outcome), however it was called.
        """
        run = _RUN.get()
        if run is None:
            return self._run(FrameCount())
        return run.acquisition(self.name, self._run)

    def _run(self, count: FrameCount) -> int:
        if self.acquire is not None:
            self.acquire()
        return self._connect(count)

    def connect(self) -> int:
        """Send every frame of ``producer()`` to every consumer, in this thread; return how many.

        Consumer factories are called first (a fresh coroutine each), and
        the coroutines they made are closed at the end of the frames, so
        that writers finish their files; coroutines given as such are not
        closed. Before each frame is taken from the producer,
        :func:`~concert.futures.check_cancelled` is called, so a cancelled
        run stops here after the frame in hand, which every consumer has
        got. The producer's iterator is closed at the end (a generator's
        ``finally`` runs: a camera stops), also after a failure.

        :raises ExperimentError: a consumer is neither a factory of primed
            coroutines nor one, or has finished and takes no more frames, or
            the producer returned no iterable.
        :raises: what the producer or a consumer raised (push style: the
            consumers after the failing one do not get that frame).
        """
        return self._connect(FrameCount())

    def _start_consumers(self) -> List[Tuple[Any, bool]]:
        started: List[Tuple[Any, bool]] = []  # (coroutine, whether we made it and close it)
        try:
            for index, consumer in enumerate(list(self.consumers)):
                if is_coroutine(consumer):
                    started.append((consumer, False))
                    continue
                if not callable(consumer):
                    raise ExperimentError(
                        f"{self!r}: consumers[{index}] = {describe_value(consumer)} is neither a primed "
                        "coroutine nor a callable returning one"
                    )
                coroutine = consumer()
                if not is_coroutine(coroutine):
                    raise ExperimentError(
                        f"{self!r}: consumers[{index}] ({name_of(consumer)}) returned "
                        f"{describe_value(coroutine)}, not a primed coroutine (decorate the generator "
                        "function with @coroutine)"
                    )
                started.append((coroutine, True))
        except BaseException:
            _close_all([coroutine for coroutine, ours in started if ours], None)
            raise
        return started

    def _connect(self, count: FrameCount) -> int:
        started = self._start_consumers()
        targets = [coroutine for coroutine, _ in started]
        ours = [coroutine for coroutine, made in started if made]
        error: Optional[BaseException] = None
        iterator: Any = None
        try:
            frames = self.producer()
            try:
                iterator = iter(frames)
            except TypeError:
                raise ExperimentError(
                    f"{self!r}: producer() returned {describe_value(frames)}, not an iterable of frames"
                ) from None
            while True:
                check_cancelled()  # between frames: the frame in hand has reached every consumer
                try:
                    frame = next(iterator)
                except StopIteration:
                    break
                count.taken += 1
                for index, target in enumerate(targets):
                    try:
                        target.send(frame)
                    except StopIteration:
                        raise ExperimentError(
                            f"{self!r}: consumer {index} ({name_of(target)}) has finished and takes no "
                            f"more frames (frame {count.taken - 1} was not sent to it)"
                        ) from None
                count.finished += 1
        except BaseException as failure:
            error = failure
            raise
        finally:
            close = getattr(iterator, "close", None)
            try:
                if callable(close):
                    close()
            except Exception:
                if error is None:
                    raise
                LOG.exception("%r: closing the producer failed", self)
            finally:
                _close_all(ours, error)
        count.written = count.finished
        return count.finished


def _close_all(coroutines: Sequence[Any], error: Optional[BaseException]) -> None:
    """Close every coroutine; raise the first failure unless ``error`` is already on its way (log it then)."""
    first: Optional[BaseException] = None
    for coroutine in coroutines:
        try:
            coroutine.close()
        except Exception as failure:  # a writer reports its failure when closed
            if error is None and first is None:
                first = failure
            else:
                exc_info = (type(failure), failure, failure.__traceback__)
                LOG.error("closing %r failed", coroutine, exc_info=exc_info)
    if first is not None:
        raise first


def _level_of(owner: Any, value: Any) -> int:
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        return LOG_LEVELS[value.lower()]
    if is_integer(value) and value in LOG_LEVELS.values():
        return int(value)
    raise ExperimentError(
        f"{owner!r}['log_level']: {describe_value(value)} is not a log level (use one of "
        f"{', '.join(map(repr, LOG_LEVELS))})"
    )


def _is_walker(walker: Any) -> bool:
    return all(
        callable(getattr(walker, method, None))
        for method in ("descend", "ascend", "exists", "log_to_json", "register_logger", "create_writer")
    )


_NOT_RUNNING = check(source=("standby", "error"), target=("standby", "error"))


class Experiment(RunEngine, Parameterizable):
    """Acquisitions run in order (see the module documentation), the legacy way.

    ``walker`` (a :class:`~concert.storage.walkers.Walker`, or ``None``: no
    files) is where runs go: with ``separate_scans`` each run gets a
    directory of its own below the walker's position, named by
    ``name_fmt.format(iteration)``; without, everything goes to the walker's
    position (each run's JSON record to the first free ``experiment.json``,
    ``experiment-1.json`` ...). ``experiment.log`` and ``experiment.json``
    are written as described in the module documentation. Frames are
    written only by consumers -- an
    :class:`~concert.experiments.addons.ImageWriter` -- not by the walker
    itself.

    Each acquisition is reachable as an attribute by its name
    (``experiment.darks``).

    Parameters (writes refused with :class:`~concert.exceptions.StateError`
    while running):

    * ``iteration`` -- the number of the next run: at first the first one
      from 1 whose directory does not exist; after a run, its number + 1. A
      run whose directory exists already takes the next free number.
    * ``separate_scans`` -- whether each run gets its own directory.
    * ``name_fmt`` -- the run directories' name, with a field for the number.
    * ``log_level`` -- of ``experiment.log``: ``'debug'``, ``'info'``
      (default), ``'warning'``, ``'error'``, ``'critical'`` (a standard
      level number is accepted too; reading gives the name).
    * ``state`` -- ``'standby'``, ``'running'``, or ``'error'`` after a failed run.

    :raises ExperimentError: for repeated acquisition names, a name that
        clashes with an attribute, something that is not a legacy
        :class:`Acquisition`, a ``name_fmt`` without a number field, a
        ``separate_scans`` that is not a bool, or a walker that is not one.
    """

    state = State(default="standby", help="standby, running, or error after a failed run")
    iteration = Parameter(check=_NOT_RUNNING, help="Number of the next run")
    separate_scans = Parameter(check=_NOT_RUNNING, help="Whether each run gets a directory of its own")
    name_fmt = Parameter(check=_NOT_RUNNING, help="Name of the run directories, with a field for the number")
    log_level = Parameter(check=_NOT_RUNNING, help="Level of experiment.log: debug, info, warning, ...")

    def __init__(
        self,
        acquisitions: Sequence[Acquisition],
        walker: Any = None,
        separate_scans: bool = True,
        name_fmt: str = "scan_{:>04}",
    ) -> None:
        super().__init__()
        self._slot = Slot(repr(self))  # run() and the parameter writes: one at a time
        if walker is not None and not _is_walker(walker):
            raise ExperimentError(f"{self!r}: walker must be a Walker or None, not {describe_value(walker)}")
        self.walker = walker
        self._acquisitions: List[Acquisition] = []
        self._separate_scans = self._check_separate(separate_scans)
        self._name_fmt = check_name_fmt(repr(self), name_fmt)
        self._log_level = logging.INFO
        self._running: Optional[Future] = None  # the run in progress (set by it, in its thread)
        self._runs: List[Future] = []  # runs submitted and not done yet, guarded by _runs_lock
        self._runs_lock = threading.Lock()
        for acquisition in acquisitions:
            self.add(acquisition)
        self._iteration = self._first_iteration(1)

    def __getattr__(self, name: str) -> Any:
        if name[:1] != "_":
            for acquisition in self.__dict__.get("_acquisitions", ()):
                if acquisition.name == name:
                    return acquisition
        return super().__getattr__(name)

    # -- parameters ------------------------------------------------------------------------

    def _check_separate(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ExperimentError(f"{self!r}['separate_scans']: {describe_value(value)} is not True or False")
        return value

    def _first_iteration(self, start: int) -> int:
        if self._separate_scans:
            return self._free_run(self._name_fmt, start)[0]
        return start

    def _get_iteration(self) -> int:
        return self._iteration

    def _set_iteration(self, value: Any) -> None:
        if not is_integer(value) or value < 0:
            raise ExperimentError(
                f"{self!r}['iteration']: {describe_value(value)} is not a whole number >= 0"
            )
        self._iteration = int(value)

    def _get_separate_scans(self) -> bool:
        return self._separate_scans

    def _set_separate_scans(self, value: Any) -> None:
        self._separate_scans = self._check_separate(value)

    def _get_name_fmt(self) -> str:
        return self._name_fmt

    def _set_name_fmt(self, value: Any) -> None:
        self._name_fmt = check_name_fmt(repr(self), value)

    def _get_log_level(self) -> str:
        return logging.getLevelName(self._log_level).lower()

    def _set_log_level(self, value: Any) -> None:
        self._log_level = _level_of(self, value)

    # -- the acquisitions ----------------------------------------------------------------------

    @property
    def acquisitions(self) -> Tuple[Acquisition, ...]:
        """The acquisitions, in the order they run (a tuple: change it with add, remove and swap)."""
        return tuple(self._acquisitions)

    def add(self, acquisition: Acquisition) -> None:
        """Append ``acquisition``; it becomes reachable as ``experiment.<its name>``.

        :raises ExperimentError: it is not a legacy :class:`Acquisition`, the
            experiment has one of that name, or the name is an attribute of
            the experiment (``run``, ``walker`` ...).
        """
        if not isinstance(acquisition, Acquisition):
            raise ExperimentError(
                f"{self!r}.add(): {describe_value(acquisition)} is not an Acquisition of "
                "concert.experiments.base"
            )
        name = acquisition.name
        check_distinct(repr(self), [*(a.name for a in self._acquisitions), name])
        if hasattr(type(self), name) or name in self.__dict__ or name in self:
            raise ExperimentError(
                f"{self!r}.add(): the acquisition name {name!r} is taken by an attribute of the experiment"
            )
        self._acquisitions.append(acquisition)

    def remove(self, acquisition: Acquisition) -> None:
        """Remove ``acquisition``.

        :raises ExperimentError: it is not in the experiment.
        """
        del self._acquisitions[self._index(acquisition, "remove")]

    def swap(self, first: Acquisition, second: Acquisition) -> None:
        """Exchange the places of two acquisitions in the running order.

        :raises ExperimentError: one of them is not in the experiment.
        """
        i, j = self._index(first, "swap"), self._index(second, "swap")
        self._acquisitions[i], self._acquisitions[j] = second, first

    def get_acquisition(self, name: str) -> Acquisition:
        """Return the acquisition called ``name``.

        :raises ExperimentError: there is none (the message lists the names there are).
        """
        for acquisition in self._acquisitions:
            if acquisition.name == name:
                return acquisition
        known = ", ".join(repr(a.name) for a in self._acquisitions) or "none"
        raise ExperimentError(f"{self!r} has no acquisition {name!r} (it has: {known})")

    def _index(self, acquisition: Any, what: str) -> int:
        for index, candidate in enumerate(self._acquisitions):
            if candidate is acquisition:
                return index
        raise ExperimentError(
            f"{self!r}.{what}(): {describe_value(acquisition)} is not one of its acquisitions"
        )

    # -- running ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Called at the start of every run, before :meth:`acquire`; does nothing unless overridden."""

    def finish(self) -> None:
        """Called at the end of every run, also after a failure; does nothing unless overridden."""

    def acquire(self) -> None:
        """Run the acquisitions in order; override it for anything else (loops, conditions).

        Stops between acquisitions when the run was asked to stop
        (:func:`~concert.futures.check_cancelled`).
        """
        for acquisition in self.acquisitions:
            check_cancelled()
            acquisition()

    def run(self) -> Future:
        """Run the experiment once; return a future of the run's record (what goes to ``experiment.json``).

        ``prepare()``, ``acquire()``, ``finish()`` (the last one however the
        others ended). The state is ``'running'`` meanwhile, then
        ``'standby'`` (also after a cancellation) or ``'error'`` after a
        failure; ``iteration`` is then the next number. The future is named
        ``Experiment#1.run()`` in messages.

        :raises StateError: from the future, when the experiment is running already.
        """
        future = self._submit_run()
        if not future.done():  # (with DISABLE_ASYNC it has run already)
            with self._runs_lock:
                self._runs.append(future)
            future.add_done_callback(self._forget_run)
        return future

    def _forget_run(self, future: Future) -> None:
        with self._runs_lock:
            if future in self._runs:
                self._runs.remove(future)

    def _run(self) -> Dict[str, Any]:
        self._running = current_future()
        try:
            own = self.walker is not None and self._separate_scans
            if own:  # a run never writes into an earlier one
                index, name = self._free_run(self._name_fmt, self._iteration)
            else:
                index, name = self._iteration, self._name_fmt.format(self._iteration)
            try:
                names = [acquisition.name for acquisition in self._acquisitions]
                return self._execute(name, names, self._make, self._log_level, own)
            finally:
                self._iteration = index + 1
        finally:
            self._running = None

    # Named run(), so that its future and messages say Experiment#1.run(), as the user called it.
    _run.__name__, _run.__qualname__ = "run", "Experiment.run"
    _submit_run = async_(
        check(source=("standby", "error"), target="standby")(
            transition(immediate="running", target="standby")(_run)
        )
    )

    def _make(self, run: Run) -> None:
        failure: Optional[BaseException] = None
        try:
            self.prepare()
            self.acquire()
        except BaseException as error:
            failure = error
            raise
        finally:
            try:
                self.finish()
            except Exception:
                if failure is None:
                    raise
                LOG.exception("%r.finish() failed after the run had stopped", self)

    def abort(self) -> Future:
        """Ask the run in progress to stop, with reason ``abort()``; return a future at once.

        The future's result is ``True`` once the stopped runs have ended, or
        ``False`` at once if nothing runs. A run submitted and not started yet
        is cancelled and never starts. The run stops between frames or
        acquisitions and is recorded as cancelled (see the module
        documentation); its own future ends cancelled. Do not wait for the
        returned future inside the run itself (it ends after the run).

        :raises: what a stop action of the run raised (the run then goes on).
        """
        done = Future(f"{self!r}.abort()")
        done.set_running_or_notify_cancel()
        with self._runs_lock:
            runs = [run for run in self._runs if not run.done()]
        running = self._running
        if running is not None and not running.done() and running not in runs:
            runs.append(running)  # (with DISABLE_ASYNC, stopped from inside: not listed)
        if not runs:
            done.set_result(False)
            return done
        LOG.info("%r: run asked to stop by abort()", self)
        for run in runs:  # a run not started yet never starts
            run.request_cancel("abort()")
        remaining = [len(runs)]

        def ended(_: Any) -> None:
            with self._runs_lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                done.set_result(True)

        for run in runs:
            run.add_done_callback(ended)
        return done
