"""The small helpers: Bunch, memoize, is_iterable (concert.utils), expects/Numeric, linspace/arange
(concert.units), measure, PerformanceTracker (concert.timing), PrioItem (concert.pipelines) and
CommData (concert.networking.endpoints)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import pickle
import queue
import threading

import numpy as np
import pint
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from concert.exceptions import ConcertError, ConfigurationError, LimitError, StateError, UnitError
from concert.networking.endpoints import CommData, SocketType
from concert.pipelines import PrioItem
from concert.polling import wait_until
from concert.quantities import q
from concert.timing import Lap, PerformanceTracker, measure
from concert.units import Numeric, arange, expects, linspace
from concert.utils import Bunch, is_iterable, memoize
from tests.conftest import TIMEOUT, run_python


class FakeClock:
    """A clock the test advances by hand: deterministic durations."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def start_threads(target, count):
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def join_all(threads):
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), f"{thread.name} still running after {TIMEOUT} s"


# -- import cost -----------------------------------------------------------------------------


def test_import_loads_neither_pint_nor_numpy_nor_zmq():
    result = run_python(
        "import sys, concert.helpers, concert.utils, concert.units, concert.timing\n"
        "import concert.networking.endpoints as endpoints\n"
        "print(sorted(m for m in ('pint', 'numpy', 'zmq') if m in sys.modules))\n"
        "endpoints.CommData('h', 5555).client_endpoint; concert.timing.PerformanceTracker()\n"
        "concert.utils.Bunch(['a']).a; concert.utils.memoize(len)('ab')\n"
        "print(sorted(m for m in ('pint', 'numpy', 'zmq') if m in sys.modules))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "[]"]


# -- Bunch -----------------------------------------------------------------------------------


def test_bunch_of_dict_gives_its_items_as_attributes():
    bunch = Bunch({"foo": 123, "bar": "baz"})
    assert bunch.foo == 123
    assert bunch.bar == "baz"
    assert "foo" in bunch and "qux" not in bunch
    assert list(bunch) == ["foo", "bar"]
    assert len(bunch) == 2
    assert repr(bunch) == "Bunch(foo=123, bar='baz')"


@pytest.mark.parametrize("names", [["foo", "bar"], ("foo", "bar"), (n for n in ["foo", "bar"])])
def test_bunch_of_names_maps_each_name_to_itself(names):
    bunch = Bunch(names)
    assert bunch.foo == "foo"
    assert bunch.bar == "bar"
    assert list(bunch) == ["foo", "bar"]


def test_bunch_unknown_attribute_is_attribute_error_naming_it():
    bunch = Bunch(["foo"])
    with pytest.raises(AttributeError, match=r"'missing'.*foo"):
        bunch.missing  # noqa: B018
    assert getattr(bunch, "missing", None) is None
    assert not hasattr(bunch, "missing")


def test_bunch_items_can_be_set_and_deleted():
    bunch = Bunch({"a": 1})
    bunch.b = 2
    del bunch.a
    assert list(bunch) == ["b"]
    assert "a" not in bunch


def test_bunch_names_shadow_nothing_special():
    bunch = Bunch(["items", "keys", "__len__"])
    assert bunch.items == "items"
    assert len(bunch) == 3


def test_bunch_survives_copy_and_pickle():
    bunch = Bunch({"a": [1, 2], "b": "x"})
    for clone in (copy.copy(bunch), copy.deepcopy(bunch), pickle.loads(pickle.dumps(bunch))):
        assert clone.a == [1, 2] and clone.b == "x"
        assert list(clone) == ["a", "b"]


@pytest.mark.parametrize("values", ["foo", b"foo", 42, None, {1: "one"}, ["ok", 2]])
def test_bunch_rejects_what_cannot_be_attributes(values):
    with pytest.raises(TypeError, match="Bunch"):
        Bunch(values)


# -- expects / Numeric -----------------------------------------------------------------------


class Camera:
    pass


class LinearMotor:
    pass


@expects(Camera, LinearMotor, pixelsize=Numeric(2, q.mm))
def setup(camera, motor, pixelsize=None):
    """Documentation survives."""
    return camera, motor, pixelsize


def test_expects_accepts_matching_arguments():
    camera, motor = Camera(), LinearMotor()
    assert setup(camera, motor) == (camera, motor, None)
    assert setup(camera, motor, pixelsize=[4, 5] * q.mm)[2] is not None
    assert setup(camera, motor, [4, 5] * q.m)[2][0] == 4 * q.m
    assert setup(camera, motor, np.array([4.0, 5.0]) * q.um)[2] is not None
    assert setup(camera=camera, motor=motor, pixelsize=None)[2] is None


def test_expects_keeps_the_function_metadata():
    import inspect

    assert setup.__name__ == "setup"
    assert setup.__doc__ == "Documentation survives."
    assert list(inspect.signature(setup).parameters) == ["camera", "motor", "pixelsize"]


def test_expects_wrong_class_is_type_error_naming_function_argument_and_value():
    with pytest.raises(TypeError, match=r"setup\(\) argument 'motor'=.*'not a motor'.*LinearMotor.*str"):
        setup(Camera(), "not a motor")


def test_expects_unit_mismatch_is_unit_error_which_is_a_value_error():
    with pytest.raises(UnitError, match=r"setup\(\) argument 'pixelsize'.*wrong unit") as info:
        setup(Camera(), LinearMotor(), [4, 5] * q.s)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ConcertError)
    with pytest.raises(UnitError, match=r"'pixelsize'=\[4, 5\] has no unit"):
        setup(Camera(), LinearMotor(), [4, 5])


@pytest.mark.parametrize(
    "value",
    [[1, 2, 3] * q.mm, 4 * q.mm, np.ones((2, 2)) * q.mm, ["a", "b"], [1 * q.mm, 2 * q.mm], "xy", {1, 2}],
)
def test_expects_wrong_shape_is_type_error(value):
    with pytest.raises(TypeError, match=r"(?s)'pixelsize'.*a sequence of 2 numbers in units of millimeter"):
        setup(Camera(), LinearMotor(), value)


def test_expects_none_only_counts_as_absent_where_none_is_the_default():
    @expects(int, Numeric(1))
    def f(a, b=0):
        return a, b

    assert f(1, 2.5) == (1, 2.5)
    with pytest.raises(TypeError, match=r"argument 'b'=None"):
        f(1, None)
    with pytest.raises(TypeError, match=r"argument 'a'=None"):
        f(None)


@pytest.mark.parametrize("good", [1, 2.5, np.float32(1.5), np.int64(3), np.array(4.0), q.Quantity(3)])
def test_numeric_one_accepts_one_plain_number(good):
    @expects(Numeric(1))
    def f(x):
        return x

    assert f(good) is good


@pytest.mark.parametrize("bad", [True, "1", [1], (1, 2), np.array([1.0]), None, 1j])
def test_numeric_one_rejects_what_is_not_one_number(bad):
    @expects(Numeric(1))
    def f(x):
        return x

    with pytest.raises(TypeError, match=r"f\(\) argument 'x'.*expected one number"):
        f(bad)


def test_numeric_without_units_rejects_dimensioned_quantities():
    @expects(x=Numeric(1))
    def f(x):
        return x

    with pytest.raises(UnitError, match=r"'x'=.*expected plain numbers.*millimeter"):
        f(3 * q.mm)


@pytest.mark.parametrize("units", [q.mm, "mm", 1 * q.mm, q.m])
def test_numeric_units_can_be_unit_name_or_quantity(units):
    @expects(Numeric(1, units))
    def f(x):
        return x

    assert f(2 * q.um) == 2 * q.um
    with pytest.raises(UnitError):
        f(2 * q.deg)
    with pytest.raises(UnitError, match="no unit"):
        f(2)


def test_numeric_unknown_unit_name_is_unit_error_at_the_first_check():
    @expects(Numeric(1, "furlongz"))
    def f(x):
        return x

    with pytest.raises(UnitError, match=r"f\(\) argument 'x'.*'furlongz' is not a unit"):
        f(1 * q.mm)


def test_numeric_dimensionless_units_accept_plain_numbers():
    @expects(Numeric(2, q.dimensionless))
    def f(x):
        return x

    assert f((1, 2)) == (1, 2)
    assert f([1, 2] * q.percent)[0] == 1 * q.percent


def test_numeric_rejects_quantities_of_other_registries():
    other = pint.UnitRegistry()

    @expects(Numeric(1, q.mm))
    def f(x):
        return x

    with pytest.raises(UnitError, match="another pint registry"):
        f(1 * other.mm)


@pytest.mark.parametrize("dimension", [0, -1, 1.0, True, "2"])
def test_numeric_dimension_must_be_positive_int(dimension):
    with pytest.raises(TypeError, match="dimension"):
        Numeric(dimension)


def test_expects_none_skips_self_of_methods():
    class Stage:
        @expects(None, Numeric(1, q.deg))
        def rotate(self, angle):
            return angle

    assert Stage().rotate(3 * q.deg) == 3 * q.deg
    with pytest.raises(UnitError, match=r"Stage.rotate\(\) argument 'angle'"):
        Stage().rotate(3 * q.mm)


def test_expects_tuple_of_classes():
    @expects((int, str))
    def f(x):
        return x

    assert f(1) == 1 and f("a") == "a"
    with pytest.raises(TypeError, match="int or str"):
        f(1.0)


def test_expects_leaves_calls_not_fitting_the_signature_to_the_function():
    @expects(int)
    def f(x):
        return x

    with pytest.raises(TypeError, match="positional argument"):
        f(1, 2)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((int, int), {}, "do not fit its signature"),
        ((), {"y": int}, "do not fit its signature"),
        ((Numeric,), {}, r"use Numeric\(dimension"),
        ((5,), {}, "is not a class"),
        (((),), {}, "is not a class"),
    ],
)
def test_expects_rejects_bad_expectations_at_decoration(args, kwargs, match):
    def f(x):
        return x

    with pytest.raises(TypeError, match=match):
        expects(*args, **kwargs)(f)


def test_expects_refuses_to_check_star_args():
    def f(*values):
        return values

    with pytest.raises(TypeError, match=r"\*args or \*\*kwargs"):
        expects(int)(f)


# -- linspace / arange -----------------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
integers = st.integers(min_value=-1000, max_value=1000)


@settings(max_examples=200, deadline=None)
@given(start=finite | integers, stop=finite | integers, num=st.integers(0, 50), endpoint=st.booleans())
def test_linspace_matches_numpy(start, stop, num, endpoint):
    result = linspace(start * q.mm, stop * q.mm, num, endpoint=endpoint)
    assert isinstance(result, q.Quantity) and result.units == q.mm
    np.testing.assert_array_equal(result.magnitude, np.linspace(start, stop, num, endpoint=endpoint))
    plain = linspace(start, stop, num, endpoint=endpoint)
    assert plain.units == q.dimensionless
    np.testing.assert_array_equal(plain.magnitude, np.linspace(start, stop, num, endpoint=endpoint))


@settings(max_examples=200, deadline=None)
@given(start=finite, stop=finite, num=st.integers(0, 50))
def test_linspace_converts_stop_to_the_unit_of_start(start, stop, num):
    result = linspace(start * q.m, stop * q.mm, num)
    assert result.units == q.m
    np.testing.assert_allclose(result.magnitude, np.linspace(start, stop / 1000, num), rtol=1e-12, atol=1e-9)


@st.composite
def ranges(draw, values):
    start = draw(values)
    step = draw(values.filter(lambda x: abs(x) > 1e-3))
    count = draw(st.integers(0, 200))
    stop = start + step * count + draw(st.floats(-0.9, 0.9)) * step
    return start, stop, step


@settings(max_examples=200, deadline=None)
@given(ranges(finite) | ranges(integers))
def test_arange_matches_numpy(values):
    start, stop, step = values
    expected = np.arange(start, stop, step)
    result = arange(start * q.deg, stop * q.deg, step * q.deg)
    assert isinstance(result, q.Quantity) and result.units == q.deg
    np.testing.assert_array_equal(result.magnitude, expected)
    np.testing.assert_array_equal(arange(start, stop, step).magnitude, expected)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(-1000, 1000), count=st.integers(0, 200), step=st.integers(1, 100))
def test_arange_converts_stop_and_step_to_the_unit_of_start(start, count, step):
    stop = start + count * step
    result = arange(start * q.mm, stop * q.um * 1000, step * q.um * 1000)
    assert result.units == q.mm
    assume(len(result) == count)  # float conversion may round the length, as numpy does
    np.testing.assert_allclose(result.magnitude, np.arange(start, stop, step), rtol=1e-12)


def test_arange_steps_offset_units_by_differences():
    celsius = arange(q.Quantity(20, q.degC), q.Quantity(23, q.degC), 1 * q.delta_degC)
    assert celsius.units == q.degC
    np.testing.assert_array_equal(celsius.magnitude, [20, 21, 22])
    np.testing.assert_allclose(arange(q.Quantity(0, q.degC), q.Quantity(274.15, q.K), 1 * q.K).magnitude, [0])
    np.testing.assert_array_equal(
        linspace(q.Quantity(0, q.degC), q.Quantity(10, q.degC), 3).magnitude, [0.0, 5.0, 10.0]
    )


def test_plain_numbers_mix_with_dimensionless_quantities():
    np.testing.assert_allclose(linspace(0 * q.percent, 1, 3).magnitude, [0, 50, 100])
    np.testing.assert_allclose(arange(0, 50 * q.percent, 25 * q.percent).magnitude, [0, 0.25])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: linspace(0 * q.mm, 1 * q.s, 3), r"linspace\(\): stop=.*second.*millimeter"),
        (lambda: linspace(0 * q.mm, 1, 3), r"linspace\(\): stop=1 has no unit"),
        (lambda: linspace(0, 1 * q.mm, 3), r"linspace\(\): stop=.*millimeter.*dimensionless"),
        (lambda: arange(0 * q.mm, 1 * q.mm, 1 * q.s), r"arange\(\): step=.*second"),
        (lambda: arange(0 * q.mm, 1 * q.mm, 0.1), r"arange\(\): step=0.1 has no unit"),
        (lambda: linspace(0 * pint.UnitRegistry().mm, 1 * q.mm, 3), "another pint registry"),
    ],
)
def test_unit_mismatch_is_unit_error(call, match):
    with pytest.raises(UnitError, match=match):
        call()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: linspace(0 * q.mm, 1 * q.mm, -1), ValueError, "num=-1"),
        (lambda: linspace(0 * q.mm, 1 * q.mm, 2.0), TypeError, "num=2.0"),
        (lambda: linspace([0, 1] * q.mm, 1 * q.mm, 2), TypeError, "start="),
        (lambda: linspace("0", 1, 2), TypeError, "start='0'"),
        (lambda: arange(0 * q.mm, 1 * q.mm, 0 * q.mm), ValueError, "step=.*non-zero"),
        (lambda: arange(0, 1, float("nan")), ValueError, "step=nan"),
        (lambda: arange(0, None, 1), TypeError, "stop=None"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


# -- measure ---------------------------------------------------------------------------------


def test_measure_bare_logs_duration_and_returns_result(log_of):
    log = log_of("concert.timing")

    @measure
    def work(x):
        """Doc."""
        return 2 * x

    assert work(21) == 42
    assert work.__name__ == "work" and work.__doc__ == "Doc."
    (record,) = log.records
    assert record.levelno == logging.INFO
    assert "work took" in record.getMessage()


def test_measure_return_result_gives_result_and_seconds(log_of):
    log = log_of("concert.timing")
    clock = FakeClock()

    @measure(return_result=True, clock=clock)
    def work():
        clock.advance(1.5)
        return "done"

    assert work() == ("done", 1.5)
    assert log.records[-1].getMessage().endswith("took 1.5 s")


def test_measure_with_parentheses_and_real_clock():
    @measure()
    def work():
        return 7

    assert work() == 7
    result, seconds = measure(return_result=True)(lambda: 7)()
    assert result == 7 and isinstance(seconds, float) and seconds >= 0


def test_measure_logs_and_propagates_failures(log_of):
    log = log_of("concert.timing")

    @measure(return_result=True)
    def broken():
        raise OSError("unplugged")

    with pytest.raises(OSError, match="unplugged"):
        broken()
    assert "broken failed after" in log.records[-1].getMessage()


# -- memoize ---------------------------------------------------------------------------------


def test_memoize_computes_once_per_arguments():
    calls = []

    @memoize
    def square(x, scale=1):
        """Doc."""
        calls.append((x, scale))
        return x * x * scale

    assert square(3) == 9 and square(3) == 9
    assert square(3, scale=2) == 18 and square(3, scale=2) == 18
    assert square(4) == 16
    assert calls == [(3, 1), (3, 2), (4, 1)]
    assert square.__name__ == "square" and square.__doc__ == "Doc."
    info = square.cache_info()
    assert (info.hits, info.misses, info.currsize, info.waiting) == (2, 3, 3, 0)
    square.cache_clear()
    assert square(3) == 9
    assert len(calls) == 4


def test_memoize_keyword_order_does_not_matter():
    calls = []

    @memoize
    def f(**kwargs):
        calls.append(kwargs)
        return sorted(kwargs)

    assert f(a=1, b=2) == f(b=2, a=1) == ["a", "b"]
    assert len(calls) == 1
    assert f() == [] and f() == []
    assert len(calls) == 2


def test_memoize_does_not_cache_exceptions():
    attempts = []

    @memoize
    def flaky(x):
        attempts.append(x)
        if len(attempts) == 1:
            raise OSError("transient")
        return x

    with pytest.raises(OSError, match="transient"):
        flaky(1)
    assert flaky(1) == 1 and flaky(1) == 1
    assert attempts == [1, 1]


def test_memoize_unhashable_arguments_are_type_error_naming_function():
    @memoize
    def total(values):
        return sum(values)

    with pytest.raises(TypeError, match=r"memoized .*total\(\) needs hashable arguments.*\[1, 2\]"):
        total([1, 2])
    assert total((1, 2)) == 3


def test_memoize_recursion_with_other_arguments_works_and_with_same_raises():
    @memoize
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert fib(80) == 23416728348467685

    @memoize
    def loop(n):
        return loop(n)

    with pytest.raises(RecursionError, match=r"loop\(\) called itself"):
        loop(1)
    assert loop.cache_info().currsize == 0


def test_memoize_concurrent_first_calls_compute_exactly_once():
    threads_count = 32
    calls = []
    release = threading.Event()
    barrier = threading.Barrier(threads_count, timeout=TIMEOUT)
    results = []

    @memoize
    def expensive(x):
        calls.append(threading.get_ident())
        assert release.wait(TIMEOUT)
        return object()

    def worker():
        barrier.wait()
        results.append(expensive(1))

    threads = start_threads(worker, threads_count)
    try:
        # The first caller is inside ``expensive``; everyone else must be waiting for it.
        wait_until(lambda: expensive.cache_info().waiting == threads_count - 1, 1 * q.ms, TIMEOUT * q.s)
    finally:
        release.set()
        join_all(threads)
    assert len(calls) == 1
    assert len(results) == threads_count
    assert all(result is results[0] for result in results)
    info = expensive.cache_info()
    assert (info.misses, info.hits, info.waiting) == (1, threads_count - 1, 0)


def test_memoize_waiters_retry_when_the_computation_fails():
    threads_count = 8
    calls = []
    release = threading.Event()
    errors, results = [], []

    @memoize
    def sometimes(x):
        calls.append(x)
        if len(calls) == 1:
            assert release.wait(TIMEOUT)
            raise OSError("first attempt fails")
        return "ok"

    def worker():
        try:
            results.append(sometimes(1))
        except OSError as error:
            errors.append(error)

    first = start_threads(worker, 1)
    wait_until(lambda: len(calls) == 1, 1 * q.ms, TIMEOUT * q.s)
    others = start_threads(worker, threads_count - 1)
    try:
        wait_until(lambda: sometimes.cache_info().waiting == threads_count - 1, 1 * q.ms, TIMEOUT * q.s)
    finally:
        release.set()
        join_all(first + others)
    assert len(errors) == 1
    assert results == ["ok"] * (threads_count - 1)
    assert len(calls) == 2


def test_memoize_different_arguments_compute_concurrently():
    both_inside = threading.Barrier(2, timeout=TIMEOUT)

    @memoize
    def f(x):
        both_inside.wait()  # breaks (and fails) if the two computations were serialised
        return x

    results = []
    threads = [threading.Thread(target=lambda x=x: results.append(f(x)), daemon=True) for x in (1, 2)]
    for thread in threads:
        thread.start()
    join_all(threads)
    assert sorted(results) == [1, 2]


# -- PerformanceTracker ----------------------------------------------------------------------


def test_tracker_records_laps_and_throughput_and_logs_each(log_of):
    log = log_of("concert.timing")
    clock = FakeClock()
    with PerformanceTracker(clock=clock) as tracker:
        clock.advance(2)
        first = tracker.lap(4_000_000)
        clock.advance(0.5)
        second = tracker.lap(3 * q.MB)
        clock.advance(1)
        third = tracker.lap()
        clock.advance(4)
    assert first == Lap(1, 2.0, 2.0, 4e6, 2e6)
    assert second == Lap(2, 0.5, 2.5, 3e6, 6e6)
    assert third == Lap(3, 1.0, 3.5, None, None)
    assert tracker.laps == [first, second, third]
    assert tracker.duration == 7.5
    assert not tracker.running
    messages = [record.getMessage() for record in log.records]
    assert messages == ["lap 1: 2 s, 4 MB, 2 MB/s", "lap 2: 0.5 s, 3 MB, 6 MB/s", "lap 3: 1 s"]
    assert all(record.levelno == logging.DEBUG for record in log.records)


def test_tracker_summary_logs_once_at_exit(log_of):
    log = log_of("concert.timing")
    clock = FakeClock()
    with PerformanceTracker(summary=True, loglevel=logging.INFO, clock=clock) as tracker:
        for _ in range(3):
            clock.advance(1)
            tracker.lap(1000 * q.kB)
        assert log.records == []
        clock.advance(1)
    (record,) = log.records
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert message.splitlines()[0] == "3 laps in 4 s"
    assert "lap 2: 1 s, 1 MB, 1 MB/s" in message
    assert message.splitlines()[-1] == "  total 3 MB, 750 kB/s"


def test_tracker_summary_is_logged_when_the_block_fails(log_of):
    log = log_of("concert.timing")
    with pytest.raises(OSError), PerformanceTracker(summary=True) as tracker:
        tracker.lap(10)
        raise OSError("disk full")
    assert "1 laps" in log.records[0].getMessage()


def test_tracker_zero_duration_lap_has_no_throughput():
    clock = FakeClock()
    with PerformanceTracker(clock=clock) as tracker:
        assert tracker.lap(100).throughput is None
        assert tracker.lap(0).size == 0


def test_tracker_restarts_when_entered_again():
    clock = FakeClock()
    tracker = PerformanceTracker(clock=clock)
    with tracker:
        tracker.lap()
    with tracker:
        clock.advance(1)
        assert tracker.lap().index == 1
    assert len(tracker.laps) == 1


def test_tracker_real_clock_and_explicit_start_stop():
    tracker = PerformanceTracker().start()
    assert tracker.running
    lap = tracker.lap(1 * q.kB)
    assert lap.duration >= 0 and lap.size == 1000
    assert tracker.stop() >= lap.elapsed


def test_tracker_lap_needs_a_running_stopwatch():
    tracker = PerformanceTracker()
    assert tracker.duration is None
    with pytest.raises(StateError, match=r"lap\(\).*not started"):
        tracker.lap()
    with tracker:
        pass
    with pytest.raises(StateError, match="stopped"):
        tracker.lap()
    with pytest.raises(StateError, match=r"stop\(\)"):
        tracker.stop()


@pytest.mark.parametrize(
    "size, error",
    [
        (-1, LimitError),
        (float("nan"), LimitError),
        ("10", TypeError),
        (True, TypeError),
        (3 * q.s, UnitError),
    ],
)
def test_tracker_rejects_bad_sizes(size, error):
    with PerformanceTracker() as tracker, pytest.raises(error, match=r"lap\(\): size="):
        tracker.lap(size)
    assert tracker.laps == []


def test_tracker_laps_from_many_threads():
    threads_count, laps_each = 8, 100
    with PerformanceTracker() as tracker:

        def worker():
            for _ in range(laps_each):
                tracker.lap(1)

        join_all(start_threads(worker, threads_count))
    assert sorted(lap.index for lap in tracker.laps) == list(range(1, threads_count * laps_each + 1))


# -- PrioItem --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False), max_size=50))
def test_prioitems_leave_a_priority_queue_by_priority_then_fifo(priorities):
    items = [PrioItem(priority, np.array([index, index])) for index, priority in enumerate(priorities)]
    fifo = queue.PriorityQueue()
    for item in items:
        fifo.put(item)
    out = [fifo.get_nowait() for _ in items]
    expected = sorted(items, key=lambda item: item.priority)  # sorted() is stable: FIFO among equals
    assert [item.data[0] for item in out] == [item.data[0] for item in expected]


def test_prioitem_never_compares_data():
    first, second = PrioItem(1, np.zeros(3)), PrioItem(1, np.zeros(3))
    assert first < second and not second < first
    assert first != second and first == first
    assert PrioItem(0, {"a": 1}) < PrioItem(1, {"a": 0})
    assert "_sequence" not in repr(first)
    assert hash(first) != hash(second)


def test_prioitem_is_frozen():
    item = PrioItem(1, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.priority = 0


@pytest.mark.parametrize("priority, error", [("1", TypeError), (None, TypeError), (True, TypeError)])
def test_prioitem_priority_must_be_a_number(priority, error):
    with pytest.raises(error, match="PrioItem"):
        PrioItem(priority, "x")


def test_prioitem_priority_must_not_be_nan():
    with pytest.raises(LimitError, match="NaN"):
        PrioItem(math.nan, "x")
    assert PrioItem(-math.inf, "first") < PrioItem(0, "x")


# -- is_iterable -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item", [[], (1,), {}, set(), range(3), iter([]), np.zeros(3), [1, 2] * q.mm, "text", b"bytes"]
)
def test_is_iterable_true(item):
    assert is_iterable(item) is True


@pytest.mark.parametrize("item", [1, 1.5, None, object(), np.float64(1), np.array(1.0), 3 * q.mm, len])
def test_is_iterable_false(item):
    assert is_iterable(item) is False


def test_is_iterable_does_not_consume_generators():
    generator = (x for x in [1, 2])
    assert is_iterable(generator)
    assert list(generator) == [1, 2]


# -- CommData --------------------------------------------------------------------------------


def test_commdata_defaults_and_tcp_endpoints():
    data = CommData("localhost", 5555)
    assert (data.protocol, data.socket_type, data.sndhwm) == ("tcp", SocketType.PUSH, 1000)
    assert data.server_endpoint == "tcp://*:5555"
    assert data.client_endpoint == "tcp://localhost:5555"


@pytest.mark.parametrize("protocol, host", [("ipc", "/tmp/concert-frames"), ("inproc", "frames")])
def test_commdata_ipc_and_inproc_endpoints(protocol, host):
    data = CommData(host, protocol=protocol, socket_type=SocketType.PUB)
    assert data.server_endpoint == data.client_endpoint == f"{protocol}://{host}"


def test_commdata_is_frozen_hashable_and_normalises_socket_type():
    data = CommData("h", 1, socket_type="pull")
    assert data.socket_type is SocketType.PULL
    assert CommData("h", 1, socket_type=7) == data
    assert {data: 1}[CommData("h", 1, socket_type=SocketType.PULL)] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.port = 2


def test_socket_types_have_libzmq_values():
    assert {t.name: int(t) for t in SocketType} == {
        "PUB": 1,
        "SUB": 2,
        "REQ": 3,
        "REP": 4,
        "PULL": 7,
        "PUSH": 8,
    }
    zmq = pytest.importorskip("zmq")
    for socket_type in SocketType:
        assert getattr(zmq, socket_type.name) == socket_type


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"host": "h", "port": 0}, "port=0"),
        ({"host": "h", "port": 65536}, "port=65536"),
        ({"host": "h", "port": True}, "port=True"),
        ({"host": "h", "port": "5555"}, "port='5555'"),
        ({"host": "h"}, "'tcp' needs a port"),
        ({"host": "/tmp/x", "port": 5, "protocol": "ipc"}, "port=5 makes no sense"),
        ({"host": "h", "port": 1, "protocol": "udp"}, "protocol='udp'"),
        ({"host": "h", "port": 1, "protocol": "TCP"}, "protocol='TCP'"),
        ({"host": "h", "port": 1, "sndhwm": -1}, "sndhwm=-1"),
        ({"host": "h", "port": 1, "sndhwm": 1.5}, "sndhwm=1.5"),
        ({"host": "", "port": 1}, "host=''"),
        ({"host": None, "port": 1}, "host=None"),
        ({"host": "h", "port": 1, "socket_type": "DEALER"}, "socket_type='DEALER'"),
        ({"host": "h", "port": 1, "socket_type": 5}, "socket_type=5"),
    ],
)
def test_commdata_validation(kwargs, match):
    with pytest.raises(ConfigurationError, match=match) as info:
        CommData(**kwargs)
    assert isinstance(info.value, ValueError)
    assert "CommData(" in str(info.value)
