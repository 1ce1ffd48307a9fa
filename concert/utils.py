"""Small helpers used all over Concert and in user scripts.

What lives here:

* :class:`Bunch` -- attribute access to the items of a dictionary or a list of names;
* :class:`expects` and :class:`Numeric` -- check argument types, shapes and units when a
  function is called;
* :func:`linspace` and :func:`arange` -- :mod:`numpy`'s functions for pint quantities;
* :func:`measure` -- log (and optionally return) how long a function takes;
* :func:`memoize` -- thread-safe memoization that computes each result exactly once;
* :class:`PerformanceTracker` and :class:`Lap` -- a stopwatch reporting data throughput;
* :class:`PrioItem` -- an item for :class:`queue.PriorityQueue` that never compares its data;
* :func:`is_iterable` -- whether ``iter(item)`` works;
* :class:`CommData` and :class:`SocketType` -- where and how a ZeroMQ socket connects.

Importing this module is cheap: neither :mod:`pint` nor :mod:`numpy` nor :mod:`zmq` is
loaded until a helper that needs them is used (pint and numpy are imported by
:func:`linspace`, :func:`arange`, :class:`Numeric` checks and byte quantities given to
:meth:`PerformanceTracker.lap`; zmq never).

Errors follow :mod:`concert.exceptions`: a value with a missing or wrong unit raises
:class:`~concert.exceptions.UnitError` (a :class:`ValueError`), a value of the wrong type or
shape raises :class:`TypeError`, and every message names the function, the argument and the
offending value.
"""

from __future__ import annotations

import enum
import functools
import inspect
import itertools
import logging
import numbers
import threading
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from concert.exceptions import ConfigurationError, LimitError, StateError, UnitError

__all__ = [
    "Bunch",
    "CacheInfo",
    "CommData",
    "Lap",
    "Numeric",
    "PerformanceTracker",
    "PrioItem",
    "SocketType",
    "arange",
    "expects",
    "is_iterable",
    "linspace",
    "measure",
    "memoize",
]

LOG = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])


# -- small private helpers -------------------------------------------------------------------


def _is_real(value: Any) -> bool:
    """True for a real number (int, float, numpy scalar ...) that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _looks_like_quantity(value: Any) -> bool:
    """Recognise a pint quantity (of any registry) without importing pint."""
    return hasattr(value, "magnitude") and hasattr(value, "units") and hasattr(value, "to")


def _name_of(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


# -- Bunch -----------------------------------------------------------------------------------


class Bunch:
    """Attribute access to the items of a dictionary, or to a list of names.

    ``Bunch({'foo': 123}).foo == 123``; ``Bunch(['foo', 'bar']).foo == 'foo'`` (each name
    is its own value). Besides attribute access a bunch supports ``name in bunch``,
    iteration over the names (in the order given), ``len`` and a readable ``repr``.
    Attributes can be assigned and deleted like on any object, which changes the items.

    Names must be strings; a name that is not a Python identifier is reachable with
    :func:`getattr`. Dunder names cannot shadow the special methods of the class.

    :raises TypeError: for ``values`` that are neither a mapping nor an iterable of names
        (a single string is rejected, it would become a bunch of its letters), and for a
        name that is not a string.
    :raises AttributeError: naming the attribute, when an unknown one is read.
    """

    def __init__(self, values: Union[Mapping[str, Any], Iterable[str]]) -> None:
        if isinstance(values, Mapping):
            items = dict(values)
        elif isinstance(values, (str, bytes)) or not is_iterable(values):
            raise TypeError(
                f"Bunch(values={values!r}): values must be a mapping or an iterable of names, "
                f"not {type(values).__name__}"
            )
        else:
            items = {name: name for name in values}
        for name in items:
            if not isinstance(name, str):
                raise TypeError(f"Bunch(values={values!r}): name {name!r} is not a string")
        self.__dict__.update(items)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup failed, i.e. for names the bunch does not have.
        known = ", ".join(sorted(self.__dict__)) or "nothing"
        raise AttributeError(f"Bunch has no attribute {name!r} (it has {known})")

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.__dict__))

    def __len__(self) -> int:
        return len(self.__dict__)

    def __repr__(self) -> str:
        items = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items())
        return f"Bunch({items})"


# -- expects / Numeric -----------------------------------------------------------------------


class Numeric:
    """What :class:`expects` accepts for a numeric argument.

    ``Numeric(1)`` is one real number; ``Numeric(n)`` with ``n >= 2`` is a sequence or a
    one-dimensional array of ``n`` real numbers. With ``units`` (a pint unit, a quantity or
    a unit name) the argument must be a quantity of that dimension (any compatible unit:
    ``Numeric(2, q.mm)`` accepts ``[4, 5] * q.mm`` and ``[4, 5] * q.m``). Without ``units``
    it must be plain numbers or a dimensionless quantity. Booleans are not numbers here.
    A unit name is looked up at the first check (so that creating a ``Numeric`` does not
    load pint); an unknown name raises :class:`~concert.exceptions.UnitError` then.

    :raises TypeError: (from the constructor) for a ``dimension`` that is not a positive int.
    """

    def __init__(self, dimension: int, units: Any = None) -> None:
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 1:
            raise TypeError(f"Numeric(dimension={dimension!r}): dimension must be a positive int")
        self.dimension = dimension
        self.units = units

    def __repr__(self) -> str:
        if self.units is None:
            return f"Numeric({self.dimension})"
        return f"Numeric({self.dimension}, {self.units!s})"

    def _describe(self) -> str:
        what = "one number" if self.dimension == 1 else f"a sequence of {self.dimension} numbers"
        if self.units is not None:
            what += f" in units of {self.units!s}"
        return what

    def check(self, value: Any, where: str) -> None:
        """Raise if ``value`` does not match; ``where`` starts the message.

        :raises TypeError: for a value of the wrong type or shape.
        :raises UnitError: for a value of the right shape with a missing or wrong unit.
        """
        from concert.quantities import q

        is_quantity = _looks_like_quantity(value)
        if is_quantity and not isinstance(value, q.Quantity):
            raise UnitError(f"{where}={value!r} is a quantity of another pint registry than concert's q")
        magnitude = value.magnitude if is_quantity else value
        if not self._has_shape(magnitude):
            raise TypeError(f"{where}={value!r}: expected {self._describe()}")
        if self.units is None:
            if is_quantity and not value.dimensionless:
                raise UnitError(f"{where}={value!r}: expected plain numbers, got a quantity in {value.units}")
            return
        units = _unit_of(self.units, where)
        if not is_quantity:
            if q.Quantity(1, units).dimensionless:
                return
            raise UnitError(f"{where}={value!r} has no unit, expected {self._describe()}")
        if not value.is_compatible_with(units):
            raise UnitError(f"{where}={value!r} has the wrong unit, expected {self._describe()}")

    def _has_shape(self, magnitude: Any) -> bool:
        import numpy as np

        if self.dimension == 1:
            if isinstance(magnitude, np.ndarray):
                return magnitude.ndim == 0 and _is_real_dtype(magnitude.dtype)
            return _is_real(magnitude)
        if isinstance(magnitude, np.ndarray):
            return magnitude.shape == (self.dimension,) and _is_real_dtype(magnitude.dtype)
        if isinstance(magnitude, (list, tuple)):
            return len(magnitude) == self.dimension and all(_is_real(item) for item in magnitude)
        return False


def _unit_of(units: Any, where: str) -> Any:
    """The pint unit meant by ``units``: a unit, a quantity (its unit) or a unit name."""
    from concert.quantities import q

    if isinstance(units, q.Quantity):
        return units.units
    if isinstance(units, str):
        try:
            return q.Unit(units)
        except Exception as error:  # pint's UndefinedUnitError
            raise UnitError(f"{where}: the expected unit {units!r} is not a unit: {error}") from None
    return units


def _is_real_dtype(dtype: Any) -> bool:
    import numpy as np

    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating))


class expects:  # noqa: N801 -- the historical, documented spelling
    """Decorator checking the arguments of every call against expectations.

    Expectations are given like the arguments themselves -- positionally for the first
    parameters, by keyword for any parameter::

        @expects(Camera, LinearMotor, pixelsize=Numeric(2, q.mm))
        def foo(camera, motor, pixelsize=None): ...

    An expectation is a class or tuple of classes (checked with :func:`isinstance`), a
    :class:`Numeric`, or ``None`` (not checked; use it for ``self`` of a method).
    Arguments that are not passed are not checked, and passing ``None`` to a parameter
    whose default is ``None`` is accepted (it is the same as not passing it). A call that
    does not fit the signature at all is left to the function, which raises as usual.

    Checks happen when the decorated function is called, before its body runs.

    :raises TypeError: (at decoration) for an expectation naming a parameter the function
        does not have, more expectations than parameters, or an expectation of a kind above
        not listed. (At call time) for an argument of the wrong type or shape.
    :raises UnitError: (at call time; a :class:`ValueError`) for a numeric argument with a
        missing or incompatible unit.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __call__(self, func: _F) -> _F:
        name = _name_of(func)
        signature = inspect.signature(func)
        try:
            bound = signature.bind_partial(*self.args, **self.kwargs)
        except TypeError as error:
            raise TypeError(f"@expects on {name}(): expectations do not fit its signature: {error}") from None
        specs: Dict[str, Any] = {}
        for parameter, spec in bound.arguments.items():
            kind = signature.parameters[parameter].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(f"@expects on {name}(): cannot check *args or **kwargs ({parameter!r})")
            _check_spec(spec, name, parameter)
            if spec is not None:
                specs[parameter] = spec

        @functools.wraps(func)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                call = signature.bind(*args, **kwargs)
            except TypeError:
                return func(*args, **kwargs)  # let the function report the bad call itself
            for parameter, value in call.arguments.items():
                spec = specs.get(parameter)
                if spec is None:
                    continue
                if value is None and signature.parameters[parameter].default is None:
                    continue
                where = f"{name}() argument {parameter!r}"
                if isinstance(spec, Numeric):
                    spec.check(value, where)
                elif not isinstance(value, spec):
                    raise TypeError(
                        f"{where}={value!r}: expected {_type_names(spec)}, got {type(value).__name__}"
                    )
            return func(*args, **kwargs)

        checked.__signature__ = signature  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]


def _check_spec(spec: Any, function: str, parameter: str) -> None:
    if spec is None or isinstance(spec, Numeric):
        return
    if spec is Numeric:
        raise TypeError(
            f"@expects on {function}(): {parameter!r} expects the class Numeric; "
            "use Numeric(dimension[, units])"
        )
    if isinstance(spec, type) or (
        isinstance(spec, tuple) and spec and all(isinstance(t, type) for t in spec)
    ):
        return
    raise TypeError(
        f"@expects on {function}(): expectation {spec!r} for {parameter!r} is not a class, "
        "a tuple of classes, a Numeric or None"
    )


def _type_names(spec: Union[type, Tuple[type, ...]]) -> str:
    types = spec if isinstance(spec, tuple) else (spec,)
    return " or ".join(t.__name__ for t in types)


# -- linspace / arange -----------------------------------------------------------------------


def _in_start_units(function: str, start: Any, **others: Any) -> Tuple[Any, List[Any], Any]:
    """Return the magnitude of ``start``, those of ``others`` in start's unit, and the unit.

    Values of ``others`` named ``step`` are differences, converted to the difference unit
    of ``start`` (which only matters for offset units such as degrees Celsius).
    """
    from concert.quantities import q

    def magnitude_of(name: str, value: Any) -> Any:
        if _looks_like_quantity(value):
            if not isinstance(value, q.Quantity):
                raise UnitError(f"{function}(): {name}={value!r} is a quantity of another pint registry")
            magnitude = value.magnitude
        else:
            magnitude = value
        if not (_is_real(magnitude) or (_is_ndarray(magnitude) and magnitude.ndim == 0)):
            raise TypeError(f"{function}(): {name}={value!r} is not a real number or a scalar quantity")
        return magnitude

    start_magnitude = magnitude_of("start", start)
    unit = start.units if _looks_like_quantity(start) else q.dimensionless
    magnitudes = []
    for name, value in others.items():
        magnitude_of(name, value)
        target = unit
        if name == "step" and _looks_like_quantity(start):
            target = (start - start).units  # degC -> delta_degC; any other unit stays itself
        if not _looks_like_quantity(value):
            if unit == q.dimensionless:
                magnitudes.append(value)
                continue
            if not q.Quantity(1, unit).dimensionless:
                raise UnitError(f"{function}(): {name}={value!r} has no unit, but start={start!r} has one")
            value = q.Quantity(value, q.dimensionless)
        if value.units == target:
            magnitudes.append(value.magnitude)
            continue
        try:
            magnitudes.append(value.to(target).magnitude)
        except Exception as error:  # pint's DimensionalityError, OffsetUnitCalculusError
            raise UnitError(
                f"{function}(): {name}={value!r} cannot be converted to {target}: {error}"
            ) from None
    return start_magnitude, magnitudes, unit


def _is_ndarray(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray) and _is_real_dtype(value.dtype)


def _count(function: str, num: Any) -> int:
    if isinstance(num, bool) or not isinstance(num, numbers.Integral):
        raise TypeError(f"{function}(): num={num!r} is not an int")
    if num < 0:
        raise ValueError(f"{function}(): num={num!r} must not be negative")
    return int(num)


def linspace(start: Any, stop: Any, num: int, endpoint: bool = True) -> Any:
    """:func:`numpy.linspace` for quantities: ``num`` values from ``start`` to ``stop``.

    ``stop`` is converted to the unit of ``start`` and the result is a quantity array in
    that unit. Plain numbers count as dimensionless, so two plain numbers give a
    dimensionless quantity array whose magnitude equals ``numpy.linspace``'s result.

    :raises UnitError: for a ``stop`` whose unit cannot be converted to start's (including
        a bare number where start has a unit, and vice versa).
    :raises TypeError: for a non-scalar or non-numeric ``start``/``stop``, or a ``num``
        that is not an int.
    :raises ValueError: for a negative ``num``.
    """
    import numpy as np

    from concert.quantities import q

    count = _count("linspace", num)
    first, (last,), unit = _in_start_units("linspace", start, stop=stop)
    return q.Quantity(np.linspace(first, last, count, endpoint=endpoint), unit)


def arange(start: Any, stop: Any, step: Any) -> Any:
    """:func:`numpy.arange` for quantities: values from ``start`` up to (not including) ``stop``.

    ``stop`` and ``step`` are converted to the unit of ``start`` (for offset units such as
    ``degC``, ``step`` is a difference like ``delta_degC``) and the result is a quantity
    array in that unit. Plain numbers count as dimensionless, so three plain numbers give
    a dimensionless quantity array whose magnitude equals ``numpy.arange``'s result. As
    with numpy, floating-point steps may make the length differ by one from what exact
    arithmetic would give.

    :raises UnitError: for a ``stop`` or ``step`` whose unit cannot be converted.
    :raises TypeError: for a non-scalar or non-numeric argument.
    :raises ValueError: for a zero or NaN ``step``.
    """
    import numpy as np

    from concert.quantities import q

    first, (last, increment), unit = _in_start_units("arange", start, stop=stop, step=step)
    if not increment or increment != increment:
        raise ValueError(f"arange(): step={step!r} must be a non-zero number")
    return q.Quantity(np.arange(first, last, increment), unit)


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
    name = _name_of(func)

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


# -- memoize ---------------------------------------------------------------------------------


class CacheInfo(NamedTuple):
    """Statistics of a :func:`memoize` d function, from its ``cache_info()``."""

    #: Calls answered from the cache (including those that waited for another thread).
    hits: int
    #: Calls that ran the function (successfully or not).
    misses: int
    #: Number of results cached.
    currsize: int
    #: Threads blocked right now, waiting for another thread computing the same arguments.
    waiting: int


_KWARGS_MARK = object()


def memoize(func: _F) -> _F:
    """Remember the results of ``func``, which must return the same value for the same arguments.

    The cache key is made of the positional arguments and the keyword arguments (in any
    order), which must be hashable; ``f(1)`` and ``f(x=1)`` are different keys, and equal
    values such as ``1`` and ``1.0`` are the same key. The cache is never emptied except by
    ``func.cache_clear()``; ``func.cache_info()`` returns a :class:`CacheInfo`. Arguments are
    kept alive by the cache (for a method, ``self`` is one of them).

    Thread-safe: when several threads call with the same arguments at once, ``func`` runs
    once and the others wait for its result. Exceptions are not cached: the calling thread
    gets the exception, and each thread that was waiting tries again (one of them runs
    ``func`` anew). Calls with different arguments run concurrently.

    :raises TypeError: naming the function, for unhashable arguments.
    :raises RecursionError: when ``func`` calls itself with the same arguments (which
        would otherwise wait for itself forever).
    """
    name = _name_of(func)
    cache: Dict[Hashable, Any] = {}
    computing: Dict[Hashable, int] = {}  # key -> ident of the thread running func
    condition = threading.Condition(threading.Lock())
    stats = {"hits": 0, "misses": 0, "waiting": 0}

    @functools.wraps(func)
    def memoized(*args: Any, **kwargs: Any) -> Any:
        key: Hashable = args
        if kwargs:
            key = (*args, _KWARGS_MARK, *sorted(kwargs.items()))
        try:
            hash(key)
        except TypeError as error:
            raise TypeError(
                f"memoized {name}() needs hashable arguments, got args={args!r}, kwargs={kwargs!r}: {error}"
            ) from None
        me = threading.get_ident()
        with condition:
            while True:
                if key in cache:
                    stats["hits"] += 1
                    return cache[key]
                owner = computing.get(key)
                if owner is None:
                    computing[key] = me
                    stats["misses"] += 1
                    break
                if owner == me:
                    raise RecursionError(f"memoized {name}() called itself with the same arguments {key!r}")
                stats["waiting"] += 1
                try:
                    condition.wait()
                finally:
                    stats["waiting"] -= 1
        try:
            result = func(*args, **kwargs)
        except BaseException:
            with condition:
                del computing[key]
                condition.notify_all()
            raise
        with condition:
            cache[key] = result
            del computing[key]
            condition.notify_all()
        return result

    def cache_clear() -> None:
        """Forget every remembered result (computations under way still store theirs)."""
        with condition:
            cache.clear()

    def cache_info() -> CacheInfo:
        with condition:
            return CacheInfo(stats["hits"], stats["misses"], len(cache), stats["waiting"])

    memoized.cache_clear = cache_clear  # type: ignore[attr-defined]
    memoized.cache_info = cache_info  # type: ignore[attr-defined]
    return memoized  # type: ignore[return-value]


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
    if _looks_like_quantity(size):
        try:
            count = float(size.to("byte").magnitude)
        except Exception as error:  # DimensionalityError, other registry, array
            raise UnitError(
                f"PerformanceTracker.lap(): size={size!r} is not an amount of bytes: {error}"
            ) from None
    elif _is_real(size):
        count = float(size)
    else:
        raise TypeError(f"PerformanceTracker.lap(): size={size!r} is not a number of bytes or a quantity")
    if not count >= 0:
        raise LimitError(f"PerformanceTracker.lap(): size={size!r} must be a number of bytes >= 0")
    return count


# -- PrioItem --------------------------------------------------------------------------------

_sequence = itertools.count()
_sequence_lock = threading.Lock()


def _next_sequence() -> int:
    with _sequence_lock:
        return next(_sequence)


@dataclass(order=True, frozen=True)
class PrioItem:
    """An item for :class:`queue.PriorityQueue`: lower ``priority`` comes out first.

    Items are ordered by ``priority`` and, among equal priorities, by creation order (first
    in, first out); ``data`` is never compared, so it can be anything (numpy arrays, dicts).
    Two distinct items are never equal, even with equal priority and data.

    :raises TypeError: for a priority that is not a real number (bools are rejected).
    :raises LimitError: for a NaN priority, which cannot be ordered.
    """

    priority: int
    data: Any = field(compare=False)
    _sequence: int = field(default_factory=_next_sequence, init=False, repr=False)

    def __post_init__(self) -> None:
        if not _is_real(self.priority):
            raise TypeError(f"PrioItem(priority={self.priority!r}): priority must be a real number")
        if self.priority != self.priority:
            raise LimitError(f"PrioItem(priority={self.priority!r}): priority must not be NaN")


# -- is_iterable -----------------------------------------------------------------------------


def is_iterable(item: Any) -> bool:
    """Whether ``item`` is iterable, i.e. whether ``iter(item)`` succeeds.

    Strings and bytes *are* iterable (over their characters), so this returns True for
    them; test ``isinstance(item, (str, bytes))`` first to treat them as single values.
    Scalars, 0-d arrays and scalar quantities are not iterable. ``iter`` is called, so an
    iterator passed here is not consumed, but a class whose ``__iter__`` has side effects
    runs them.
    """
    try:
        iter(item)
    except TypeError:
        return False
    return True


# -- CommData --------------------------------------------------------------------------------


class SocketType(enum.IntEnum):
    """ZeroMQ socket types; the values are libzmq's, so ``context.socket(SocketType.PUSH)`` works."""

    PUB = 1
    SUB = 2
    REQ = 3
    REP = 4
    PULL = 7
    PUSH = 8


_PROTOCOLS = ("tcp", "ipc", "inproc")


@dataclass(frozen=True)
class CommData:
    """Where and how a ZeroMQ socket binds or connects (immutable, hashable).

    ``host`` is a host name or address for ``tcp``, a file path for ``ipc`` and a name for
    ``inproc``. ``tcp`` needs a ``port`` (1..65535); ``ipc`` and ``inproc`` take none.
    ``socket_type`` may also be given as a :class:`SocketType` name (``'pull'``) or value;
    it is stored as a :class:`SocketType`. ``sndhwm`` is the send high-water mark (0 means
    no limit in ZeroMQ).

    :raises ConfigurationError: (a :class:`ValueError`) naming the field and the value, for
        any invalid field.
    """

    host: str
    port: Optional[int] = None
    protocol: str = "tcp"
    socket_type: SocketType = SocketType.PUSH
    sndhwm: int = 1000

    def __post_init__(self) -> None:
        def invalid(reason: str) -> ConfigurationError:
            return ConfigurationError(f"{self!r}: {reason}")

        if not isinstance(self.host, str) or not self.host or self.host != self.host.strip():
            raise invalid(f"host={self.host!r} must be a non-empty string without surrounding spaces")
        if self.protocol not in _PROTOCOLS:
            raise invalid(f"protocol={self.protocol!r} must be one of {', '.join(_PROTOCOLS)}")
        if self.port is not None:
            if not isinstance(self.port, int) or isinstance(self.port, bool) or not 1 <= self.port <= 65535:
                raise invalid(f"port={self.port!r} must be an int in 1..65535")
            if self.protocol != "tcp":
                raise invalid(f"port={self.port!r} makes no sense for protocol {self.protocol!r}")
        elif self.protocol == "tcp":
            raise invalid("protocol 'tcp' needs a port")
        if not isinstance(self.sndhwm, int) or isinstance(self.sndhwm, bool) or self.sndhwm < 0:
            raise invalid(f"sndhwm={self.sndhwm!r} must be an int >= 0")
        object.__setattr__(self, "socket_type", _socket_type(self.socket_type, invalid))

    @property
    def server_endpoint(self) -> str:
        """The address to bind to: ``tcp://*:PORT`` (all interfaces), else the client endpoint."""
        if self.protocol == "tcp":
            return f"tcp://*:{self.port}"
        return self.client_endpoint

    @property
    def client_endpoint(self) -> str:
        """The address to connect to: ``tcp://HOST:PORT``, ``ipc://PATH`` or ``inproc://NAME``."""
        if self.protocol == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"{self.protocol}://{self.host}"


def _socket_type(value: Any, invalid: Callable[[str], ConfigurationError]) -> SocketType:
    if isinstance(value, SocketType):
        return value
    if isinstance(value, str) and value.upper() in SocketType.__members__:
        return SocketType[value.upper()]
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return SocketType(value)
        except ValueError:
            pass
    names = ", ".join(SocketType.__members__)
    raise invalid(f"socket_type={value!r} must be a SocketType or one of {names}")
