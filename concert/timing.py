"""Timing: :func:`measure` (how long a function takes) and :class:`PerformanceTracker`/:class:`Lap`.

Both log on the ``concert.timing`` logger. :class:`PerformanceTracker` also
reports data throughput when given byte counts (numbers or pint byte
quantities; pint is imported only for the latter).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    List,
    Optional,
    TypeVar,
)

from concert.checks import is_quantity, is_real
from concert.exceptions import LimitError, StateError, UnitError
from concert.naming import name_of

__all__ = ["Lap", "PerformanceTracker", "measure"]

LOG = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])


# -- measure ---------------------------------------------------------------------------------


def measure(
    func: Optional[Callable[..., Any]] = None,
    return_result: bool = False,
    clock: Optional[Callable[[], float]] = None,
) -> Any:
    """Measure how long each call of ``func`` takes and log it.

    Usable bare (``@measure``) and with options (``@measure(return_result=True)``). Every
    call logs ``"<function> took <seconds> s"`` at INFO level on the logger
    ``concert.utils`` (also when the function raises; the exception then propagates).
    With ``return_result`` the decorated function returns ``(result, seconds)`` instead of
    ``result``; ``seconds`` is a float. ``clock`` (default :func:`time.perf_counter`)
    returns the current time in seconds and exists for tests.

    Only the call itself is timed: for an ``@async_`` function that is the submission,
    not the work; time ``f().join()`` for that.
    """
    if func is None:
        return functools.partial(measure, return_result=return_result, clock=clock)
    name = name_of(func)

    @functools.wraps(func)
    def measured(*args: Any, **kwargs: Any) -> Any:
        now = clock or time.perf_counter
        started = now()
        try:
            result = func(*args, **kwargs)
        except BaseException:
            LOG.info("%s failed after %.6g s", name, now() - started)
            raise
        seconds = now() - started
        LOG.info("%s took %.6g s", name, seconds)
        return (result, seconds) if return_result else result

    return measured


# -- PerformanceTracker ----------------------------------------------------------------------


@dataclass(frozen=True)
class Lap:
    """One lap of a :class:`PerformanceTracker`."""

    #: 1 for the first lap.
    index: int
    #: Seconds since the previous lap (or the start).
    duration: float
    #: Seconds since the start.
    elapsed: float
    #: Bytes processed during the lap, or None when no size was given.
    size: Optional[float] = None
    #: Bytes per second during the lap; None without a size or when the lap took no time.
    throughput: Optional[float] = None

    def __str__(self) -> str:
        text = f"lap {self.index}: {self.duration:.6g} s"
        if self.size is not None:
            text += f", {_format_bytes(self.size)}"
            if self.throughput is not None:
                text += f", {_format_bytes(self.throughput)}/s"
        return text


def _format_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.4g} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


class PerformanceTracker:
    """A stopwatch that also reports data throughput.

    Use it as a context manager (entering starts it and forgets earlier laps, leaving stops
    it) or call :meth:`start` and :meth:`stop`::

        with PerformanceTracker(summary=True) as tracker:
            for frame in frames:
                write(frame)
                tracker.lap(frame.nbytes)

    Each :meth:`lap` is appended to :attr:`laps`. With ``summary=False`` every lap is logged
    as it is recorded; with ``summary=True`` nothing is logged until the stopwatch stops,
    which logs all laps and the totals in one record. Records go to the logger
    ``concert.utils`` at ``loglevel``. ``clock`` (default :func:`time.perf_counter`) returns
    the current time in seconds and exists for tests. Laps may be recorded from several
    threads.
    """

    def __init__(
        self,
        summary: bool = False,
        loglevel: int = logging.DEBUG,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self.summary = summary
        self.loglevel = loglevel
        self.laps: List[Lap] = []
        self._clock = clock or time.perf_counter
        self._lock = threading.Lock()
        self._started: Optional[float] = None
        self._last: Optional[float] = None
        self._stopped: Optional[float] = None

    def start(self) -> PerformanceTracker:
        """Start (or restart) the stopwatch, forgetting earlier laps; returns the tracker."""
        with self._lock:
            self.laps = []
            self._started = self._last = self._clock()
            self._stopped = None
        return self

    def stop(self) -> float:
        """Stop the stopwatch, log the summary if asked for, and return the total seconds.

        :raises StateError: if the stopwatch is not running.
        """
        with self._lock:
            self._require_running("stop")
            self._stopped = self._clock()
            total = self._stopped - self._started  # type: ignore[operator]
            laps = list(self.laps)
        if self.summary:
            LOG.log(self.loglevel, "%s", self._summary(laps, total))
        return total

    @property
    def running(self) -> bool:
        """Whether the stopwatch has been started and not stopped."""
        return self._started is not None and self._stopped is None

    @property
    def duration(self) -> Optional[float]:
        """Seconds from the start to the stop (or to now while running); None if never started."""
        if self._started is None:
            return None
        end = self._stopped if self._stopped is not None else self._clock()
        return end - self._started

    def lap(self, size: Any = None) -> Lap:
        """Record the time since the previous lap and, with ``size``, the throughput.

        ``size`` is a number of bytes or a pint quantity of information (``3 * q.MB``).

        :raises StateError: if the stopwatch is not running.
        :raises UnitError: for a quantity that is not an amount of information.
        :raises TypeError: for a size that is neither number nor quantity.
        :raises LimitError: for a negative or NaN size.
        """
        count = None if size is None else _bytes_of(size)
        with self._lock:
            self._require_running("lap")
            now = self._clock()
            duration = now - self._last  # type: ignore[operator]
            throughput = None
            if count is not None and duration > 0:
                throughput = count / duration
            record = Lap(len(self.laps) + 1, duration, now - self._started, count, throughput)  # type: ignore[operator]
            self.laps.append(record)
            self._last = now
        if not self.summary:
            LOG.log(self.loglevel, "%s", record)
        return record

    def _require_running(self, what: str) -> None:
        if not self.running:
            state = "stopped" if self._started is not None else "not started"
            raise StateError(state, f"PerformanceTracker.{what}() needs a running stopwatch, it is {state}")

    @staticmethod
    def _summary(laps: List[Lap], total: float) -> str:
        lines = [f"{len(laps)} laps in {total:.6g} s"]
        lines.extend(f"  {lap}" for lap in laps)
        sizes = [lap.size for lap in laps if lap.size is not None]
        if sizes:
            amount = sum(sizes)
            text = f"  total {_format_bytes(amount)}"
            if total > 0:
                text += f", {_format_bytes(amount / total)}/s"
            lines.append(text)
        return "\n".join(lines)

    def __enter__(self) -> PerformanceTracker:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        if self.running:
            self.stop()


def _bytes_of(size: Any) -> float:
    if is_quantity(size):
        try:
            count = float(size.to("byte").magnitude)
        except Exception as error:  # DimensionalityError, other registry, array
            raise UnitError(
                f"PerformanceTracker.lap(): size={size!r} is not an amount of bytes: {error}"
            ) from None
    elif is_real(size):
        count = float(size)
    else:
        raise TypeError(f"PerformanceTracker.lap(): size={size!r} is not a number of bytes or a quantity")
    if not count >= 0:
        raise LimitError(f"PerformanceTracker.lap(): size={size!r} must be a number of bytes >= 0")
    return count
