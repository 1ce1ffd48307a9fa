"""Optimisation as processes: find the value of a parameter that *maximises* a measurement.

:func:`halver` is a one-dimensional step-halving search for a maximum: it
walks uphill with a step, and whenever a step does not improve, it turns
round and halves the step, until the step is smaller than ``epsilon``.
:func:`optimize_parameter` applies an algorithm to a parameter, and
:func:`focus` uses it to put a camera in focus with a motor.

These are the maximising face of :mod:`concert.optimization` (the legacy
API's module, whose algorithms all *minimise*): :func:`halver` runs the same
search loop, and :func:`optimize_parameter` the same checks and run, as
:func:`concert.optimization.halver` and
:func:`concert.optimization.optimize_parameter`. Any algorithm of that
module can be given to :func:`optimize_parameter` here too; it then
minimises, as it always does.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Optional, Tuple

import numpy as np

from concert.exceptions import StateError, WaitError
from concert.futures import async_
from concert.optimization import _halve, _run_parameter
from concert.parameters import ParameterValue
from concert.processes.progress import progress_bar

__all__ = ["focus", "halver", "optimize_parameter"]


def halver(
    function: Callable[[Any], float], x0: Any, initial_step: Any, epsilon: Any, max_iterations: int = 100
) -> Tuple[Any, float]:
    """Maximise ``function`` from ``x0``; return ``(x, function(x))`` at the maximum found.

    ``initial_step`` and ``epsilon`` are in the units of ``x0``. Finds a
    *local* maximum: start near the one you want. (The minimising search of
    the legacy API is :func:`concert.optimization.halver`.)

    :raises WaitError: if ``max_iterations`` steps (``max_iterations + 1``
        evaluations, counting the one at ``x0``) do not get the step below ``epsilon``.
    """
    with progress_bar(max_iterations + 1, "halver") as bar:

        def counted(x: Any) -> float:
            value = function(x)
            bar.update()
            return value

        x, best, converged = _halve(counted, x0, initial_step, epsilon, max_iterations, operator.gt)
    if not converged:
        raise WaitError(f"halver: no maximum within {epsilon} after {max_iterations} evaluations (at x={x})")
    return x, best


@async_
def optimize_parameter(
    parameter: ParameterValue,
    feedback: Callable[[], float],
    x0: Any,
    algorithm: Callable[..., Tuple[Any, float]] = halver,
    alg_args: tuple = (),
    alg_kwargs: Optional[dict] = None,
) -> Tuple[Any, float]:
    """Set ``parameter`` to the value maximising ``feedback()``, found by ``algorithm``.

    ``algorithm(function, x0, *alg_args, **alg_kwargs)`` must return ``(x,
    value)``; ``function(x)`` writes ``x`` and returns ``feedback()``. Returns
    a future of ``(x, value)``; the parameter is left at ``x``. (Whether the
    search maximises is the algorithm's: :func:`halver` here does, the
    algorithms of :mod:`concert.optimization` minimise.)

    ``x0`` is checked as a write would be before anything moves, and wrong
    arguments raise what :func:`concert.optimization.optimize_parameter`
    raises, from the future. An exception of an evaluation reaches the
    future unchanged, with a note naming the evaluation and ``x``.

    Cancelling the future stops the search before the next evaluation
    (:func:`~concert.futures.check_cancelled`; a write in progress is stopped
    by the device's stop action): the future ends cancelled and the
    parameter stays where the search left it.
    """
    return _run_parameter(
        "optimize_parameter", parameter, feedback, x0, algorithm, alg_args, alg_kwargs, None, False
    )


@async_
def focus(
    camera: Any,
    motor: Any,
    measure: Callable[[np.ndarray], float] = np.std,
    initial_step: Any = None,
    epsilon: Any = None,
    max_iterations: int = 100,
) -> Tuple[Any, float]:
    """Move ``motor`` to where ``measure(frame)`` of the camera's frames is largest.

    The camera records in SOFTWARE trigger mode for the duration (its trigger
    source is restored afterwards) and takes one frame per position.
    ``initial_step`` defaults to 1 mm (1° for rotation) and ``epsilon`` to a
    thousandth of it. Returns a future of ``(position, measure)``.

    Cancelling the future passes the request on to the search it waits for
    (see :func:`optimize_parameter`); the camera stops recording and its
    trigger source is restored all the same.
    """
    if camera.state != "standby":
        raise StateError(
            camera.state, f"focus needs {camera!r} in standby to set its trigger source, not {camera.state!r}"
        )
    unit = motor["position"].unit
    step = initial_step if initial_step is not None else 1 * unit
    epsilon = epsilon if epsilon is not None else abs(step) / 1000
    trigger = camera["trigger_source"]
    trigger.stash().join()
    try:
        camera.trigger_source = camera.trigger_sources.SOFTWARE
        with camera.recording():

            def sharpness() -> float:
                camera.trigger().join()
                return float(measure(camera.grab()))

            return optimize_parameter(
                motor["position"], sharpness, motor.position, halver, (step, epsilon, max_iterations)
            ).result()
    finally:
        trigger.restore().join()
