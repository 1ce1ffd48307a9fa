"""The Future returned by @async_: results, errors, timeouts, cancellation, naming."""

from __future__ import annotations

import concurrent.futures
import contextvars
import gc
import inspect
import sys
import threading

import pytest

from concert.exceptions import ConcertError, UnitError, WaitError
from concert.futures import (
    CancelledError,
    Future,
    async_,
    current_future,
    is_async,
    on_cancel,
    resolve,
    threaded,
    wait,
)
from concert.quantities import q
from tests.conftest import TIMEOUT


class DeviceError(Exception):
    pass


@async_
def double(value):
    return 2 * value


@async_
def fail(message="boom"):
    raise DeviceError(message)


# -- results and errors ---------------------------------------------------------


def test_result_and_join_return_values():
    future = double(21)
    assert isinstance(future, Future)
    assert isinstance(future, concurrent.futures.Future)
    assert future.join(TIMEOUT) is future
    assert future.wait(TIMEOUT) is future
    assert future.join(TIMEOUT).result() == 42
    assert future.result(TIMEOUT) == 42
    assert future.exception(TIMEOUT) is None


@pytest.mark.parametrize("method", ["wait", "join", "result"])
def test_exception_surfaces_through(method):
    future = fail("surfaced")
    with pytest.raises(DeviceError, match="surfaced"):
        getattr(future, method)(TIMEOUT)
    assert isinstance(future.exception(TIMEOUT), DeviceError)


def test_exception_is_stored_not_raised_at_the_call():
    future = fail()  # must not raise here, in either mode
    assert isinstance(future.exception(TIMEOUT), DeviceError)


def test_wait_error_names_the_operation_and_timeout(asynchronous):
    release = threading.Event()

    @async_
    def stuck_operation():
        assert release.wait(TIMEOUT)

    future = stuck_operation()
    try:
        for method in ("wait", "join", "result", "exception"):
            with pytest.raises(WaitError, match=r"stuck_operation.*0\.05 s") as info:
                getattr(future, method)(0.05)
            assert isinstance(info.value, TimeoutError)
            assert isinstance(info.value, ConcertError)
        with pytest.raises(WaitError, match=r"0\.02 s"):
            future.result(20 * q.ms)
    finally:
        release.set()
    assert future.result(TIMEOUT) is None


def test_bad_timeouts_are_refused():
    future = double(1)
    with pytest.raises(UnitError, match="timeout"):
        future.result(2 * q.m)
    with pytest.raises(UnitError, match="timeout"):
        future.result("soon")
    with pytest.raises(UnitError, match="not a number"):
        future.result(float("nan"))
    assert future.result(1 * q.s) == 2


def test_repr_tells_name_and_state():
    future = double(1)
    future.result(TIMEOUT)
    assert "double" in repr(future) and "finished" in repr(future)
    failed = fail()
    failed.exception(TIMEOUT)
    assert "failed" in repr(failed)


def test_timeout_from_the_function_is_not_mistaken_for_ours():
    @async_
    def raises_timeout():
        raise TimeoutError("from the device")

    with pytest.raises(TimeoutError, match="from the device") as info:
        raises_timeout().result(TIMEOUT)
    assert not isinstance(info.value, WaitError)


# -- decorator --------------------------------------------------------------------


def test_decorator_keeps_name_doc_signature():
    def measure(exposure, *, frames=1):
        """Measure something."""
        return exposure * frames

    decorated = async_(measure)
    assert decorated.__name__ == "measure"
    assert decorated.__doc__ == "Measure something."
    assert inspect.signature(decorated) == inspect.signature(measure)
    assert is_async(decorated) and not is_async(measure)
    assert async_(decorated) is decorated
    assert decorated(2, frames=3).result(TIMEOUT) == 6


def test_methods_and_static_methods():
    class Motor:
        def __init__(self):
            self.position = 0

        @async_
        def move(self, delta):
            self.position += delta
            return self.position

        @async_
        @staticmethod
        def home_position():
            return 0

        @staticmethod
        @async_
        def park_position():
            return -1

    motor = Motor()
    assert motor.move(3).result(TIMEOUT) == 3
    assert Motor.home_position().result(TIMEOUT) == 0
    assert motor.home_position().result(TIMEOUT) == 0
    assert Motor.park_position().result(TIMEOUT) == -1
    assert is_async(Motor.move) and is_async(Motor.__dict__["home_position"])


def test_runs_in_a_pool_worker(asynchronous):
    @async_
    def where():
        return threading.current_thread().name

    assert where().result(TIMEOUT).startswith("concert-worker-")


# -- wait / resolve ------------------------------------------------------------


def test_resolve_returns_results_in_order():
    assert resolve([double(i) for i in range(50)], TIMEOUT) == [2 * i for i in range(50)]


def test_wait_waits_for_all_then_raises_first_failure_in_order(asynchronous):
    release = threading.Event()
    finished = []

    @async_
    def slow(tag):
        assert release.wait(TIMEOUT)
        finished.append(tag)
        return tag

    first = fail("first")
    second = fail("second")
    late = slow("late")
    threading.Timer(0.05, release.set).start()
    with pytest.raises(DeviceError, match="first"):
        wait([late, first, second], TIMEOUT)
    # wait() did not leave 'late' running: it had finished before the error surfaced
    assert finished == ["late"] and late.done()


def test_wait_timeout_names_unfinished(asynchronous):
    release = threading.Event()

    @async_
    def blocked():
        assert release.wait(TIMEOUT)

    stuck = blocked()
    try:
        with pytest.raises(WaitError, match=r"1 of 2 futures not done.*blocked"):
            wait([double(1), stuck], 0.05)
    finally:
        release.set()
    stuck.result(TIMEOUT)


def test_wait_accepts_plain_concurrent_futures():
    plain = concurrent.futures.Future()
    plain.set_exception(DeviceError("plain"))
    with pytest.raises(DeviceError, match="plain"):
        wait([double(1), plain], TIMEOUT)


def test_wait_reports_cancelled():
    cancelled = Future("never run")
    assert cancelled.cancel()
    with pytest.raises(CancelledError):
        wait([double(1), cancelled], TIMEOUT)


# -- cancellation -----------------------------------------------------------------


def test_cancel_pending_future():
    future = Future("pending")
    assert future.cancel() and future.cancelled()
    with pytest.raises(CancelledError):
        future.result(TIMEOUT)


def test_cancel_running_future_runs_cancel_action(asynchronous):
    started, stop = threading.Event(), threading.Event()

    @async_
    def move():
        on_cancel(stop.set)
        started.set()
        assert stop.wait(TIMEOUT)
        return "arrived"

    future = move()
    assert started.wait(TIMEOUT)
    assert future.cancel() is True
    assert stop.is_set() and future.cancelled() and future.done()
    with pytest.raises(CancelledError):
        future.join(TIMEOUT)
    assert future.cancel() is True  # idempotent


def test_cancel_of_a_future_that_never_checks_waits_for_it_and_says_it_finished(asynchronous):
    started, release = threading.Event(), threading.Event()

    @async_
    def uninterruptible():
        started.set()
        assert release.wait(TIMEOUT)
        return 1

    future = uninterruptible()
    assert started.wait(TIMEOUT)
    with pytest.raises(WaitError, match=r"did not stop within 0\.05 s after cancel"):
        future.cancel(timeout=0.05)  # cancel() waits for the operation, bounded by its timeout
    release.set()
    assert future.result(TIMEOUT) == 1  # no stop action, never checked: it finished, result kept
    assert future.cancel() is False  # finished futures cannot be cancelled


def test_failing_cancel_action_propagates_and_operation_continues(asynchronous):
    started, release = threading.Event(), threading.Event()

    def broken_stop():
        raise DeviceError("stop failed")

    @async_
    def move():
        on_cancel(broken_stop)
        started.set()
        assert release.wait(TIMEOUT)
        return "arrived"

    future = move()
    assert started.wait(TIMEOUT)
    with pytest.raises(DeviceError, match="stop failed"):
        future.cancel()
    release.set()
    assert future.result(TIMEOUT) == "arrived"


def test_cancel_races_with_completion(asynchronous):
    """Whoever wins, cancel()'s answer agrees with the final state and nothing hangs."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(2000):
            stops = []

            @async_
            def quick(stops=stops):
                on_cancel(lambda: stops.append(1))
                return 1

            future = quick()
            cancelled = future.cancel()
            if cancelled:
                assert future.cancelled() and future.done()
            else:
                assert future.result(TIMEOUT) == 1 and not future.cancelled()
            assert len(stops) <= 1
    finally:
        sys.setswitchinterval(previous)


def test_concurrent_cancels_run_the_action_once(asynchronous):
    started, stop = threading.Event(), threading.Event()
    calls = []

    def action():
        calls.append(1)
        stop.set()

    @async_
    def move():
        on_cancel(action)
        started.set()
        assert stop.wait(TIMEOUT)

    future = move()
    assert started.wait(TIMEOUT)
    results = []
    threads = [threading.Thread(target=lambda: results.append(future.cancel())) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert results == [True] * 16 and calls == [1]


def test_current_future_and_on_cancel_outside_a_call():
    on_cancel(lambda: None)  # does nothing outside a decorated call
    assert current_future() is None

    @async_
    def who_am_i():
        return current_future()

    future = who_am_i()
    assert future.result(TIMEOUT) is future


# -- context, threads, logging -------------------------------------------------------

request = contextvars.ContextVar("request", default="none")


def test_context_travels_into_calls_and_nested_calls():
    @async_
    def inner():
        return request.get()

    @async_
    def outer():
        seen = request.get()
        request.set("changed inside")
        return seen, inner().result(TIMEOUT)

    token = request.set("from caller")
    try:
        assert outer().result(TIMEOUT) == ("from caller", "changed inside")
        assert request.get() == "from caller"  # the call's change did not leak back
    finally:
        request.reset(token)


def test_threaded_runs_in_a_new_daemon_thread_with_context():
    seen = []

    @threaded
    def background(value):
        seen.append((value, request.get(), threading.current_thread().name))

    token = request.set("ctx")
    try:
        thread = background(7)
    finally:
        request.reset(token)
    thread.join(TIMEOUT)
    assert not thread.is_alive() and thread.daemon
    assert seen == [(7, "ctx", thread.name)] and thread is not threading.current_thread()


def test_unretrieved_failure_is_logged_on_collection(log_of):
    records = log_of("concert.futures").records
    future = fail("nobody looked")
    concurrent.futures.wait([future], TIMEOUT)  # done, but nobody asked for the result
    assert future.done()
    del future
    gc.collect()
    [record] = records
    assert "nobody retrieved" in record.getMessage() and "fail" in record.getMessage()
    assert record.exc_info[0] is DeviceError and "nobody looked" in str(record.exc_info[1])


def test_retrieved_failure_is_not_logged(log_of):
    records = log_of("concert.futures").records
    future = fail()
    future.exception(TIMEOUT)
    del future
    gc.collect()
    assert records == []


def test_an_error_raised_while_stopping_is_the_outcome(asynchronous):
    started, stop = threading.Event(), threading.Event()

    @async_
    def move():
        on_cancel(stop.set)
        started.set()
        assert stop.wait(TIMEOUT)
        raise DeviceError("while stopping")

    future = move()
    assert started.wait(TIMEOUT)
    assert future.cancel(TIMEOUT) is False  # what really happened is what the future says
    assert isinstance(future.exception(TIMEOUT), DeviceError)


def test_class_methods():
    class Camera:
        frames = 3

        @async_
        @classmethod
        def default_frames(cls):
            return cls.frames

    assert Camera.default_frames().result(TIMEOUT) == 3
    assert is_async(Camera.__dict__["default_frames"])


def test_wait_logs_every_failure_besides_the_first(log_of):
    records = log_of("concert.futures").records
    with pytest.raises(DeviceError, match="one"):
        wait([fail("one"), double(1), fail("two"), fail("three")], TIMEOUT)
    gc.collect()
    logged = [str(r.exc_info[1]) for r in records]
    assert logged == ["two", "three"]  # reported once each, by wait(), not at collection


def test_cancel_actions_stack_and_scoped_ones_go_away(asynchronous):
    started, release = threading.Event(), threading.Event()
    calls = []

    @async_
    def process():
        on_cancel(lambda: calls.append("process"))
        with on_cancel(lambda: calls.append("finished step")):
            pass  # a step that is over: its action must not run
        with on_cancel(lambda: (calls.append("current step"), release.set())):
            started.set()
            assert release.wait(TIMEOUT)

    future = process()
    assert started.wait(TIMEOUT)
    assert future.cancel()
    assert calls == ["current step", "process"]  # most recent first, finished step gone


def test_every_cancel_action_runs_even_if_one_fails(asynchronous):
    started, release = threading.Event(), threading.Event()
    calls = []

    def failing():
        calls.append("failing")
        raise DeviceError("stop refused")

    @async_
    def process():
        on_cancel(lambda: (calls.append("outer"), release.set()))
        on_cancel(failing)
        started.set()
        assert release.wait(TIMEOUT)

    future = process()
    assert started.wait(TIMEOUT)
    with pytest.raises(DeviceError, match="stop refused"):
        future.cancel()
    assert calls == ["failing", "outer"]
    future.result(TIMEOUT)  # the failed cancel left it running to its end


def test_infinite_timeout_means_wait_for_ever():
    import math

    assert double(2).result(math.inf) == 4
    assert double(2).result(float("inf") * q.s) == 4
    resolve([double(1)], math.inf)


def test_threaded_code_is_not_part_of_the_calling_call(asynchronous):
    seen = []

    @async_
    def outer():
        thread = threaded(lambda: seen.append(current_future()))()
        thread.join(TIMEOUT)
        return current_future()

    me = outer().result(TIMEOUT)
    assert me is not None and seen == [None]


@pytest.mark.usefixtures("asynchronous")
def test_a_wait_error_names_the_call_in_user_terms():
    from concert.devices.motors.dummy import LinearMotor
    from concert.exceptions import WaitError
    from concert.quantities import q

    motor = LinearMotor(position=0 * q.mm, motion_velocity=1 * q.mm / q.s)
    future = motor.move(100 * q.mm)
    try:
        with pytest.raises(WaitError) as raised:
            future.join(timeout=0.01)
        assert (
            str(raised.value) == f"{motor!r}.move(+100 mm) did not finish within 0.01 s (it goes on running)"
        )
    finally:
        future.cancel(timeout=30)


def test_run_in_thread_runs_in_a_thread_of_its_own_and_cancels_like_a_call():
    from concert.futures import check_cancelled, current_future, run_in_thread

    seen = {}
    started = threading.Event()

    def poll(step):
        seen["thread"] = threading.current_thread().name
        seen["current"] = current_future()
        started.set()
        while True:
            check_cancelled()
            threading.Event().wait(step)  # the poll's own pace, not synchronisation

    future = run_in_thread(poll, 0.001, name="beam monitor")
    assert started.wait(TIMEOUT)
    assert seen["thread"].startswith("concert-thread-poll") and seen["current"] is future
    assert future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError, match="beam monitor was stopped by cancel"):
        future.result(TIMEOUT)


# -- the scope of a blocking call -----------------------------------------------------------


def test_a_blocking_calls_scope_is_running_and_takes_cancel_requests():
    from concert.futures import _Scope

    scope = _Scope(lambda: "LinearMotor#1.move(+5 mm)")
    stopped = []
    scope.add_cancel_action(lambda: stopped.append(True))
    assert scope.running() and not scope.done() and scope.name == "LinearMotor#1.move(+5 mm)"
    assert scope.request_cancel("abort()") and stopped == [True]
    assert scope._stopped_text() == "LinearMotor#1.move(+5 mm) was stopped by abort()"


def test_a_blocking_calls_scope_makes_one_condition_however_many_threads_first_ask():
    from concert.futures import _Scope

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            scope = _Scope("scope")
            barrier = threading.Barrier(6, timeout=TIMEOUT)
            seen = []

            def ask(scope=scope, barrier=barrier, seen=seen):
                barrier.wait()
                seen.append(scope._condition)

            threads = [threading.Thread(target=ask) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(TIMEOUT)
                assert not thread.is_alive()
            assert len(seen) == 6 and all(condition is scope._condition for condition in seen)
    finally:
        sys.setswitchinterval(previous)
