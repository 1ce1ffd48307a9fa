"""concert.optimization (issue 12, deliverable 4; SPEC §15): the optimisers on simulated devices.

Every algorithm is run on a real dummy motor whose feedback is a known
function of its position, smallest at a known position, with and without
noise; then units, bounds, wrong input, failing evaluations, cancellation
(a request, ``cancel()``, a real SIGINT) and the progress bar.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest
import scipy.optimize

import concert.processes.optimization as processes_optimization
from concert import config
from concert.devices.dummy import DummyDevice
from concert.devices.motors.dummy import LinearMotor, RotationMotor
from concert.exceptions import (
    HardLimitError,
    LimitError,
    ProcessError,
    SoftLimitError,
    UnitError,
    WriteAccessError,
)
from concert.futures import Future, check_cancelled, current_future, is_async
from concert.optimization import (
    ALGORITHMS,
    bfgs,
    down_hill,
    halver,
    least_squares,
    nonlinear_conjugate,
    optimize,
    optimize_parameter,
    powell,
)
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT

OPTIMUM = 3.2 * q.mm  # where the simulated feedback is smallest
NAMES = list(ALGORITHMS)

#: Options with which each algorithm reaches OPTIMUM within a micrometre on an exact feedback.
EXACT = {
    "halver": {"initial_step": 1 * q.mm, "epsilon": 0.1 * q.um},
    "down_hill": {"initial_step": 1 * q.mm, "xtol": 0.1 * q.um},
    "powell": {"initial_step": 1 * q.mm},
    "nonlinear_conjugate": {"epsilon": 1 * q.um},
    "bfgs": {"epsilon": 1 * q.um},
    "least_squares": {"epsilon": 1 * q.um},
}

#: Options for a feedback with noise of 0.001 (the value changes by that much 32 µm from OPTIMUM).
NOISY = {
    "halver": {"initial_step": 1 * q.mm, "epsilon": 1 * q.um},
    "down_hill": {"initial_step": 1 * q.mm, "xtol": 1 * q.um, "ftol": 1e-3},
    "powell": {"initial_step": 1 * q.mm, "ftol": 1e-3},
    "nonlinear_conjugate": {"epsilon": 0.1 * q.mm, "gtol": 0.05},
    "bfgs": {"epsilon": 0.1 * q.mm, "gtol": 0.05},
    "least_squares": {"epsilon": 0.1 * q.mm, "ftol": 1e-3},
}


pytestmark = pytest.mark.usefixtures("no_progress_bar")  # see tests/conftest.py


def fast_motor(**kwargs):
    return LinearMotor(motion_velocity=10 * q.m / q.s, **kwargs)


def parabola(motor, noise=0.0, seed=0):
    """A feedback smallest (1) with the motor at OPTIMUM: 1 + (distance in mm)², plus Gaussian noise."""
    rng = np.random.default_rng(seed)

    def feedback():
        distance = (motor.position - OPTIMUM).m_as(q.mm)
        return 1 + distance**2 + (rng.normal(0, noise) if noise else 0.0)

    return feedback


class Recorder:
    """A callback keeping every (x, y) of a search."""

    def __init__(self):
        self.points = []

    def __call__(self, x, y):
        self.points.append((x, y))

    @property
    def xs(self):
        return [x for x, _ in self.points]


# -- every algorithm finds the optimum -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_each_algorithm_moves_a_motor_to_the_minimum_of_its_feedback(name):
    motor = fast_motor()
    recorder = Recorder()
    future = optimize_parameter(
        motor["position"],
        parabola(motor),
        0 * q.mm,
        ALGORITHMS[name],
        alg_kwargs=EXACT[name],
        callback=recorder,
    )
    assert isinstance(future, Future)
    x, y = future.result(TIMEOUT)
    assert abs(x - OPTIMUM) < 1 * q.um
    assert str(x.units) == "millimeter"
    assert abs(motor.position - x) <= 1 * q.nm  # left at x (the motor positions in whole nanometres)
    assert y == pytest.approx(1, abs=1e-6)
    assert len(recorder.points) > 2 and recorder.xs[0] == 0 * q.mm


@pytest.mark.parametrize("name", NAMES)
def test_each_algorithm_finds_the_minimum_of_a_noisy_feedback(name):
    motor = fast_motor()
    x, y = optimize_parameter(
        motor["position"], parabola(motor, noise=1e-3, seed=7), 0 * q.mm, name, alg_kwargs=NOISY[name]
    ).result(TIMEOUT)
    assert abs(x - OPTIMUM) < 0.1 * q.mm
    assert abs(motor.position - x) <= 1 * q.nm
    assert y == pytest.approx(1, abs=0.02)


@pytest.mark.parametrize("algorithm", [halver, down_hill, powell, nonlinear_conjugate, bfgs])
def test_a_legacy_script_minimises_a_negative_gradient_measure_with_the_defaults(algorithm):
    from concert.measures import DummyGradientMeasure

    motor = fast_motor()
    feedback = DummyGradientMeasure(motor["position"], 3.75 * q.mm, negative=True)
    future = optimize_parameter(motor["position"], feedback, motor.position, algorithm)
    future.join(TIMEOUT)
    x, _ = future.result()
    assert abs(x - 3.75 * q.mm) < 1 * q.um and abs(motor.position - 3.75 * q.mm) < 1 * q.um


def test_the_algorithms_minimise_and_the_processes_halver_maximises():
    motor = fast_motor()
    lowest = parabola(motor)

    def peak():  # largest at OPTIMUM
        return -lowest()

    x, _ = optimize_parameter(
        motor["position"], parabola(motor), 0 * q.mm, halver, alg_kwargs=EXACT["halver"]
    ).result(TIMEOUT)
    assert abs(x - OPTIMUM) < 1 * q.um
    x, value = processes_optimization.optimize_parameter(
        motor["position"], peak, 0 * q.mm, alg_args=(1 * q.mm, 0.1 * q.um)
    ).result(TIMEOUT)
    assert abs(x - OPTIMUM) < 1 * q.um and value == pytest.approx(-1)
    # The processes' optimize_parameter takes this module's algorithms too: they still minimise.
    x, _ = processes_optimization.optimize_parameter(
        motor["position"], parabola(motor), 0 * q.mm, powell, alg_kwargs={"initial_step": 1 * q.mm}
    ).result(TIMEOUT)
    assert abs(x - OPTIMUM) < 1 * q.um


def test_a_rotation_motor_is_searched_in_the_unit_of_x_0():
    motor = RotationMotor(motion_velocity=36000 * q.deg / q.s)
    recorder = Recorder()

    def misalignment():
        return 1 - np.cos((motor.position - 40 * q.deg).m_as(q.rad))

    x, y = optimize_parameter(
        motor["position"],
        misalignment,
        0.1 * q.rad,
        powell,
        alg_kwargs={"initial_step": 0.1 * q.rad},
        callback=recorder,
    ).result(TIMEOUT)
    assert str(x.units) == "radian" and all(str(point.units) == "radian" for point in recorder.xs)
    assert abs(x - 40 * q.deg) < 0.01 * q.deg and abs(motor.position - 40 * q.deg) < 0.01 * q.deg
    assert y == pytest.approx(0, abs=1e-8)


# -- optimize: functions, units, several coordinates -----------------------------------------------


def test_optimize_runs_as_an_operation_returning_a_future():
    assert is_async(optimize) and is_async(optimize_parameter)
    future = optimize(lambda x: (x - 2) ** 2, 0.0, "halver")
    assert isinstance(future, Future)
    x, y = future.result(TIMEOUT)
    assert x == 2.0 and y == 0.0 and type(x) is float and type(y) is float


def test_quantities_are_stripped_for_the_algorithm_and_restored():
    recorder = Recorder()

    def area(x):
        return (x - 2 * q.mm) ** 2 + 1 * q.mm**2

    x, y = optimize(
        area, 500 * q.um, powell, alg_kwargs={"initial_step": 1 * q.mm}, callback=recorder
    ).result(TIMEOUT)
    assert str(x.units) == "micrometer" and x.magnitude == pytest.approx(2000)
    assert all(str(point.units) == "micrometer" for point in recorder.xs)
    assert y.units == (1 * q.um**2).units and abs(y - 1 * q.mm**2) < 1e-6 * q.mm**2


def test_a_step_and_a_tolerance_in_other_units_are_converted():
    x, _ = optimize(
        lambda x: ((x - 1234 * q.um) / q.um).m_as("") ** 2,
        0 * q.mm,
        halver,
        alg_kwargs={"initial_step": 100 * q.um, "epsilon": 1 * q.nm},
    ).result(TIMEOUT)
    assert str(x.units) == "millimeter" and abs(x - 1234 * q.um) < 2 * q.nm


@pytest.mark.parametrize("name", ["down_hill", "powell", "nonlinear_conjugate", "bfgs", "least_squares"])
def test_the_scipy_algorithms_search_several_coordinates(name):
    target = np.array([1.0, -2.0]) * q.mm

    def distance(x):
        residuals = ((x - target) / q.mm).m_as("")
        return residuals if name == "least_squares" else float(np.sum(residuals**2))

    x, y = optimize(distance, [0 * q.mm, 500 * q.um], name).result(TIMEOUT)
    assert x.shape == (2,) and str(x.units) == "millimeter"
    assert np.allclose(x.m_as(q.mm), [1, -2], atol=1e-4)
    assert np.shape(y) == ((2,) if name == "least_squares" else ())


def test_least_squares_returns_the_residuals_at_x():
    slopes = np.array([1.0, 2.0, 3.0])
    x, residuals = optimize(lambda x: slopes * (x.m_as(q.s) - 0.5), 0 * q.s, least_squares).result(TIMEOUT)
    assert abs(x - 0.5 * q.s) < 1e-6 * q.s
    assert residuals.shape == (3,) and np.allclose(residuals, 0, atol=1e-6)


def test_a_custom_algorithm_gets_the_function_and_its_arguments():
    seen = []

    def twice(function, x_0, factor, offset=0):
        seen.append((x_0, factor, offset))
        x = factor * x_0 + offset
        return x, function(x)

    motor = fast_motor()
    x, y = optimize_parameter(
        motor["position"],
        lambda: motor.position,
        1 * q.mm,
        twice,
        alg_args=(3,),
        alg_kwargs={"offset": 1 * q.mm},
    ).result(TIMEOUT)
    assert (
        x == 4 * q.mm and y == 4 * q.mm and motor.position == 4 * q.mm and seen == [(1 * q.mm, 3, 1 * q.mm)]
    )


def test_a_parameter_without_a_unit_is_optimised_with_bare_numbers():
    device = DummyDevice(value=0.0)
    x, y = optimize_parameter(
        device["value"], lambda: (device.value - 1.5) ** 2, 0.0, halver, alg_kwargs={"epsilon": 1e-6}
    ).result(TIMEOUT)
    assert abs(x - 1.5) < 1e-5 and device.value == x and y < 1e-9


# -- bounds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [0.5 * q.mm, 0 * q.mm], ids=["inside", "on-a-bound"])
@pytest.mark.parametrize("name", ["halver", "down_hill", "powell", "bfgs", "least_squares"])
def test_bounds_keep_the_search_inside_and_it_ends_at_the_nearest_bound(name, start):
    motor = fast_motor(position=start)
    recorder = Recorder()
    options = {"bounds": (0 * q.mm, 2000 * q.um)}
    if name in ("bfgs", "least_squares"):
        options["epsilon"] = 1 * q.um
    x, _ = optimize_parameter(
        motor["position"], parabola(motor), start, name, alg_kwargs=options, callback=recorder
    ).result(TIMEOUT)
    assert abs(x - 2 * q.mm) < 1 * q.um
    assert all(0 * q.mm <= point <= 2 * q.mm for point in recorder.xs)


def test_a_bound_may_be_left_open():
    x, _ = optimize(
        lambda x: (x - 5) ** 2, 0.0, halver, alg_kwargs={"bounds": (None, 3.0), "epsilon": 1e-6}
    ).result(TIMEOUT)
    assert x == pytest.approx(3.0)


# -- wrong input: refused before anything moves --------------------------------------------------------


def refused(motor, x_0=1 * q.mm, algorithm="halver", **kwargs):
    """Run optimize_parameter on ``motor`` expecting a refusal; check that nothing moved or was measured."""
    calls = []
    feedback = kwargs.pop("feedback", lambda: calls.append(1) or 1.0)
    before = motor.position
    future = optimize_parameter(motor["position"], feedback, x_0, algorithm, **kwargs)
    error = future.exception(TIMEOUT)
    assert error is not None, "accepted"
    assert motor.position == before and not calls
    raise error


@pytest.mark.parametrize(
    "x_0, error, message",
    [
        (
            2,
            UnitError,
            r"^optimize_parameter\(\): x_0 = 2 cannot be written: LinearMotor#\d+\['position'\]: "
            r"2 is not a quantity in mm \(write e.g. 2 \* q.mm\)$",
        ),
        (2 * q.s, UnitError, r"x_0 = 2 s cannot be written: .*2 s cannot be expressed in mm"),
        (6 * q.mm, SoftLimitError, r"x_0 = 6 mm cannot be written: .* is above the soft limit 5 mm"),
        (-2 * q.m, HardLimitError, r"x_0 = -2 m cannot be written: .* is below the hardware limit -1 m"),
        (float("nan") * q.mm, LimitError, r"x_0 = nan mm cannot be written: .*not a finite number"),
    ],
)
def test_a_wrong_x_0_is_refused_before_anything_moves(x_0, error, message):
    motor = fast_motor()
    motor["position"].upper = 5 * q.mm
    with pytest.raises(error, match=message):
        refused(motor, x_0)


@pytest.mark.parametrize(
    "bounds, error, message",
    [
        (
            (0 * q.mm, 2 * q.m),
            HardLimitError,
            r"upper bound = 2 m cannot be written: .*above the hardware limit 1 m",
        ),
        (
            (-6 * q.mm, 1 * q.mm),
            SoftLimitError,
            r"lower bound = -6 mm cannot be written: .*below the soft limit -5 mm",
        ),
        ((0 * q.s, 1 * q.s), UnitError, r"lower bound = 0 s cannot be written: .*cannot be expressed in mm"),
        ((0, 3), UnitError, r"lower bound = 0 cannot be written: .*0 is not a quantity in mm"),
        (
            (3 * q.mm, 0 * q.mm),
            LimitError,
            r"halver\(\): bounds \(3 mm, 0 mm\): the lower bound must be below the upper",
        ),
        ((2 * q.mm, 3 * q.mm), LimitError, r"halver\(\): x_0 = 1 mm lies outside the bounds \(2 mm, 3 mm\)"),
        (
            5 * q.mm,
            ProcessError,
            r"halver\(\): bounds must be a pair \(lower, upper\), None for no limit, not 5 mm",
        ),
    ],
)
def test_bounds_out_of_reach_or_wrong_are_refused_before_anything_moves(bounds, error, message):
    motor = fast_motor()
    motor["position"].lower = -5 * q.mm
    with pytest.raises(error, match=message):
        refused(motor, alg_kwargs={"bounds": bounds})


@pytest.mark.parametrize(
    "algorithm, message",
    [
        (
            "simplex",
            r"algorithm 'simplex' is not one of halver, down_hill, powell, nonlinear_conjugate, bfgs or "
            r"least_squares$",
        ),
        (42, r"algorithm must be one of halver, .* \(or its name\), not 42$"),
        (scipy.optimize.fmin, r"algorithm scipy.optimize.fmin is scipy's own function, which knows no units"),
    ],
)
def test_an_algorithm_that_is_not_one_of_these_is_refused(algorithm, message):
    with pytest.raises(ProcessError, match=r"^optimize_parameter\(\): " + message):
        refused(fast_motor(), algorithm=algorithm)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"feedback": 5}, ProcessError, r"^optimize_parameter\(\): feedback must be a callable, not 5$"),
        ({"callback": "plot"}, ProcessError, r"callback must be a callable or None, not 'plot'$"),
        (
            {"alg_kwargs": {"step": 1 * q.mm}},
            ProcessError,
            r"alg_kwargs=\{'step': .*\} do not fit halver\(function, x_0, \.\.\.\): "
            r".*unexpected keyword.*'step'",
        ),
        ({"alg_kwargs": [1]}, ProcessError, r"alg_kwargs must be a dict or None, not \[1\]"),
        ({"alg_args": 1 * q.mm}, ProcessError, r"alg_args must be a tuple, not 1 mm"),
        (
            {"alg_kwargs": {"initial_step": 1}},
            UnitError,
            r"^halver\(\): initial_step = 1 is not a quantity in mm, the unit of x_0 = 1 mm "
            r"\(write e.g. 1 \* q.mm\)$",
        ),
        (
            {"alg_kwargs": {"epsilon": 0 * q.mm}},
            ProcessError,
            r"^halver\(\): epsilon = 0 mm must be above zero$",
        ),
        ({"alg_kwargs": {"initial_step": 0 * q.mm}}, ProcessError, r"initial_step = 0 mm must not be zero"),
        (
            {"alg_kwargs": {"max_iterations": 0}},
            ProcessError,
            r"max_iterations must be a whole number above zero",
        ),
        (
            {"algorithm": "down_hill", "alg_kwargs": {"ftol": 1 * q.mm}},
            UnitError,
            r"ftol = 1 mm must be a bare number",
        ),
        (
            {"algorithm": "bfgs", "alg_kwargs": {"epsilon": 1 * q.s}},
            UnitError,
            r"epsilon = 1 s cannot be expressed",
        ),
        (
            {"algorithm": "nonlinear_conjugate", "alg_kwargs": {"bounds": (0 * q.mm, 2 * q.mm)}},
            ProcessError,
            r"nonlinear_conjugate\(\): bounds = \(0 mm, 2 mm\): "
            r"the conjugate gradient method cannot keep to bounds",
        ),
    ],
)
def test_wrong_arguments_are_refused_before_anything_moves(kwargs, error, message):
    with pytest.raises(error, match=message):
        refused(fast_motor(), **kwargs)


def test_something_that_is_not_a_writable_parameter_is_refused():
    motor = fast_motor()
    with pytest.raises(
        ProcessError,
        match=r"parameter must be a device's parameter, such as motor\['position'\], "
        r"not 0 mm",
    ):
        optimize_parameter(motor.position, lambda: 1, 0 * q.mm, halver).result(TIMEOUT)
    with pytest.raises(WriteAccessError, match=r"LinearMotor#\d+\['state'\] cannot be written"):
        optimize_parameter(motor["state"], lambda: 1, "standby", halver).result(TIMEOUT)


def test_a_parameter_without_a_unit_refuses_a_quantity():
    device = DummyDevice(value=0.0)
    with pytest.raises(
        UnitError, match=r"x_0 = 1 mm has a unit, but DummyDevice#\d+\['value'\] holds bare numbers"
    ):
        optimize_parameter(device["value"], lambda: 1, 1 * q.mm, halver).result(TIMEOUT)
    assert device.value == 0.0


@pytest.mark.parametrize(
    "algorithm, x_0, kwargs, error, message",
    [
        (halver, np.array([1.0, 2.0]) * q.mm, {}, ProcessError, r"^halver\(\): x_0 = .* must be one number"),
        (powell, "3 mm", {}, UnitError, r"^powell\(\): x_0 = '3 mm' is not a number or an array of numbers$"),
        (powell, [1 * q.mm, 2], {}, UnitError, r"mixes quantities with numbers that have no unit"),
        (powell, [1 * q.mm, 2 * q.s], {}, UnitError, r"2 s cannot be expressed in mm"),
        (bfgs, np.array([]), {}, ProcessError, r"^bfgs\(\): x_0 = .* is empty$"),
        (
            down_hill,
            0.0,
            {"initial_step": 1 * q.mm},
            UnitError,
            r"initial_step = 1 mm has a unit, but x_0 = 0.0",
        ),
        (least_squares, 0 * q.mm, {"xtol": -1}, ProcessError, r"xtol must be a number above zero, not -1"),
        (
            nonlinear_conjugate,
            0 * q.mm,
            {"max_iterations": 2.5},
            ProcessError,
            r"whole number above zero, not 2.5",
        ),
    ],
)
def test_optimize_refuses_a_wrong_x_0_or_option_before_evaluating(algorithm, x_0, kwargs, error, message):
    calls = []
    future = optimize(lambda x: calls.append(x) or 1.0, x_0, algorithm, alg_kwargs=kwargs)
    with pytest.raises(error, match=message):
        future.result(TIMEOUT)
    assert not calls


def test_optimize_refuses_a_function_that_cannot_be_called():
    with pytest.raises(ProcessError, match=r"^optimize\(\): function must be a callable, not 'f'$"):
        optimize("f", 0.0, halver).result(TIMEOUT)


# -- evaluations that fail ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_an_evaluation_that_raises_ends_the_search_with_its_exception_and_context(name):
    motor = fast_motor()
    positions = []

    def feedback():
        positions.append(motor.position)
        if len(positions) == 3:
            raise OSError("detector saturated")
        return parabola(motor)()

    future = optimize_parameter(motor["position"], feedback, 0 * q.mm, name, alg_kwargs=EXACT[name])
    with pytest.raises(OSError, match=r"^detector saturated") as caught:
        future.result(TIMEOUT)
    (note,) = caught.value.__notes__
    assert note.startswith(f"optimize_parameter(): raised by evaluation 3 of {name}, at x = ")
    assert motor.position == positions[-1]  # where the failing evaluation put it


def test_a_step_beyond_the_limits_ends_the_search_and_leaves_the_motor_at_the_last_position():
    motor = fast_motor()
    motor["position"].upper = 2.5 * q.mm
    future = optimize_parameter(motor["position"], lambda: -motor.position.m_as(q.mm), 0 * q.mm, halver)
    with pytest.raises(SoftLimitError, match=r"3 mm is above the soft limit 2.5 mm") as caught:
        future.result(TIMEOUT)
    assert caught.value.__notes__ == ["optimize_parameter(): raised by evaluation 4 of halver, at x = 3 mm"]
    assert motor.position == 2 * q.mm


@pytest.mark.parametrize(
    "values, error, message",
    [
        (
            ["high"],
            UnitError,
            r"^powell\(\): the function returned 'high' at x = 0 mm, which is a string, not a number",
        ),
        ([None], UnitError, r"returned None at x = 0 mm, which is not a real number"),
        ([float("nan")], LimitError, r"returned nan at x = 0 mm, not a finite number"),
        ([1.0, 2 * q.s], UnitError, r"returned 2 s at x = .*, but bare numbers before$"),
        ([1 * q.mm, 2 * q.s], UnitError, r"returned 2 s at x = .*, which cannot be compared with the mm"),
        ([1 * q.mm, 2.0], UnitError, r"returned 2.0 at x = .*, a bare number, but quantities in mm before"),
    ],
)
def test_a_function_value_that_is_no_number_of_one_kind_is_refused(values, error, message):
    returned = iter(values * 100)
    with pytest.raises(error, match=message):
        optimize(lambda x: next(returned), 0 * q.mm, powell).result(TIMEOUT)


def test_a_custom_algorithm_must_return_x_and_y():
    def lonely(function, x_0):
        return function(x_0)

    with pytest.raises(ProcessError, match=r"^optimize\(\): algorithm lonely returned 5, not \(x, y\)$"):
        optimize(lambda x: 5, 0.0, lonely).result(TIMEOUT)


# -- not converged -------------------------------------------------------------------------------------


def test_a_search_that_runs_out_of_iterations_warns_and_returns_the_best_point(log_of):
    log = log_of("concert.optimization")
    x, y = optimize(lambda x: -x, 0.0, halver, alg_kwargs={"max_iterations": 3}).result(TIMEOUT)
    assert (x, y) == (3.0, -3.0)
    (record,) = log.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        "halver: the step was still above epsilon = 0.001 after 3 iterations"
    )
    x, _ = optimize(lambda x: (x - 2) ** 2, 0.0, down_hill, alg_kwargs={"max_iterations": 3}).result(TIMEOUT)
    assert "down_hill: Maximum number of iterations has been exceeded; returning the best point found" in (
        log.records[-1].getMessage()
    )


def test_a_gradient_method_that_sees_no_change_says_so(log_of):
    log = log_of("concert.optimization")
    x, _ = optimize(lambda x: 1.0, 2 * q.mm, bfgs).result(TIMEOUT)
    assert x == 2 * q.mm
    assert "bfgs: the function did not change within epsilon of x_0 = 2 mm" in log.records[-1].getMessage()


# -- cancellation --------------------------------------------------------------------------------------


def cancel_from_inside_at(motor, evaluation, reason="abort()"):
    """A feedback asking its own search to stop at ``evaluation`` (works in both modes)."""
    positions = []

    def feedback():
        positions.append(motor.position)
        if len(positions) == evaluation:
            current_future().request_cancel(reason)  # the search goes on to its next check
        return parabola(motor)()

    return feedback, positions


@pytest.mark.parametrize("name", NAMES)
def test_a_cancel_request_stops_every_algorithm_before_its_next_evaluation(name):
    motor = fast_motor()
    feedback, positions = cancel_from_inside_at(motor, 3)
    future = optimize_parameter(motor["position"], feedback, 0 * q.mm, name, alg_kwargs=EXACT[name])
    with pytest.raises(CancelledError, match=r"^optimize_parameter\(.*\) was stopped by abort\(\)$"):
        future.result(TIMEOUT)
    assert future.cancelled() and len(positions) == 3
    assert motor.position == positions[-1] and motor.state == "standby"  # where the last evaluation put it


def test_a_cancel_request_stops_optimize_of_a_function():
    calls = []

    def function(x):
        calls.append(x)
        if len(calls) == 2:
            current_future().request_cancel("cancel()")
        return (x - 2) ** 2

    future = optimize(function, 0.0, powell)
    with pytest.raises(CancelledError, match=r"^optimize\(.*\) was stopped by cancel\(\)$"):
        future.result(TIMEOUT)
    assert len(calls) == 2


def test_cancelling_stops_the_move_in_progress(asynchronous):
    motor = LinearMotor(motion_velocity=1 * q.mm / q.s)  # 5 s to the first step: it must be cut short
    future = optimize_parameter(
        motor["position"], parabola(motor), 0 * q.mm, halver, alg_kwargs={"initial_step": 5 * q.mm}
    )
    busy_wait(lambda: motor.position > 0 * q.mm, sleep_time=0.001, timeout=TIMEOUT)
    assert future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError, match=r"was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    assert motor.state == "standby" and 0 * q.mm < motor.position < 5 * q.mm


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread"
)
def test_ctrl_c_stops_the_search_and_leaves_the_motor_where_the_last_evaluation_put_it():
    motor = fast_motor()
    positions = []

    def cancel_seen():
        try:
            check_cancelled()
        except CancelledError:
            return True
        return False

    def feedback():
        positions.append(motor.position)
        if len(positions) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # synchronous mode: raised right here, in the main thread
            busy_wait(cancel_seen, sleep_time=0.001, timeout=TIMEOUT)  # else: until the main thread asked
        return parabola(motor)()

    future = None
    with pytest.raises(KeyboardInterrupt):
        future = optimize_parameter(motor["position"], feedback, 0 * q.mm, powell, alg_kwargs=EXACT["powell"])
        future.result(TIMEOUT)
    if future is not None:  # asynchronous: the interrupted wait cancelled the search
        assert future.cancelled()
        with pytest.raises(CancelledError, match=r"was stopped by Ctrl-C"):
            future.result(TIMEOUT)
    assert len(positions) == 3 and motor.position == positions[-1] and motor.state == "standby"


# -- progress --------------------------------------------------------------------------------------------


def test_a_progress_bar_counts_the_evaluations_when_progress_bar_is_on(capsys):
    optimize(lambda x: (x - 2) ** 2, 0.0, powell).result(TIMEOUT)
    assert capsys.readouterr().err == ""
    config.PROGRESS_BAR = True
    optimize(lambda x: (x - 2) ** 2, 0.0, powell).result(TIMEOUT)
    assert "optimize (powell)" in capsys.readouterr().err
