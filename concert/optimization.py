"""Optimisation: find where a function of ``x``, or a measurement over a parameter, is smallest.

The legacy API's module (SPEC §15):

* :func:`optimize` runs an algorithm on a function of ``x``, in the thread
  pool, and returns a :class:`~concert.futures.Future` of ``(x, y)``;
* :func:`optimize_parameter` does the same on a device parameter: every
  evaluation writes ``x`` to the parameter and returns ``feedback()``;
* the algorithms: :func:`halver` (step halving along one coordinate) and,
  on :mod:`scipy.optimize` (imported when first used), :func:`down_hill`
  (Nelder-Mead), :func:`powell`, :func:`nonlinear_conjugate` (CG),
  :func:`bfgs` and :func:`least_squares`.

Every algorithm **minimises**, as the legacy API and scipy do; to maximise a
measurement, return its negative. Each is an ordinary function
``algorithm(function, x_0, **options)`` returning ``(x, y)``, the best point
found and the function's value there. ``x_0`` may be a number, a quantity, or
an array of either; the algorithm works on the magnitudes in ``x_0``'s unit
(so its tolerances and steps are too), calls ``function`` with quantities
of that unit, and returns ``x`` as such a quantity (``y`` as the function
returned it: a quantity if it returned quantities).

The maximising step-halving search of :mod:`concert.processes.optimization`
(:func:`concert.processes.optimization.halver`, today's API) runs on the same
search loop as :func:`halver` here, and
:func:`concert.processes.optimization.optimize_parameter` on the same run as
:func:`optimize_parameter`: one implementation, two faces.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import operator
from concurrent.futures import CancelledError
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from concert.checks import is_integer, is_quantity, is_real
from concert.exceptions import LimitError, ProcessError, UnitError, WriteAccessError
from concert.futures import async_, check_cancelled
from concert.magnitudes import real_number, same_kind
from concert.naming import describe_value
from concert.parameters import ParameterValue
from concert.quantities import q

__all__ = [
    "bfgs",
    "down_hill",
    "halver",
    "least_squares",
    "nonlinear_conjugate",
    "optimize",
    "optimize_parameter",
    "powell",
]

LOG = logging.getLogger(__name__)

_UNSET = object()  # the function's unit before its first value


# -- the view an algorithm has of x and y --------------------------------------------------------


class _Space:
    """One algorithm call's view of ``x`` and ``y``: magnitudes in ``x_0``'s unit and the first ``y``'s.

    ``x`` becomes a flat float vector (what scipy works on) and back a float
    or a quantity of ``x_0``'s shape; the function's values become floats
    (or, for residuals, float vectors). Owned by the one call that made it,
    in one thread: no lock.
    """

    def __init__(self, caller: str, function: Callable[[Any], Any], x_0: Any) -> None:
        if not callable(function):
            raise ProcessError(f"{caller}(): function must be a callable, not {describe_value(function)}")
        self.caller = caller
        self.function = function
        self.x_0 = x_0
        self.unit, magnitudes = _split(caller, "x_0", x_0)
        self.shape = magnitudes.shape
        self.x0 = magnitudes.ravel()
        self.y_unit: Any = _UNSET
        self.y_shape: Optional[Tuple[int, ...]] = None
        # The lowest evaluation so far (the sum of squares, for residuals): returned when scipy gives up.
        self.best: Optional[Tuple[np.ndarray, float, Any]] = None

    @property
    def scalar(self) -> bool:
        return self.shape == ()

    # -- x ----------------------------------------------------------------------------------

    def point(self, vector: Any) -> Any:
        """``x`` as the function gets it: a float or a quantity in ``x_0``'s unit, of ``x_0``'s shape."""
        values = np.array(vector, dtype=float).reshape(self.shape)
        value: Any = float(values) if self.shape == () else values
        return value if self.unit is None else q.Quantity(value, self.unit)

    def like_x(self, name: str, value: Any, step: bool = False, infinite: bool = False) -> np.ndarray:
        """``value`` (a step, a tolerance, a bound) as magnitudes in ``x_0``'s unit, one per coordinate.

        ``step`` marks a difference (a step or a tolerance: degrees Celsius
        become kelvins of difference); ``infinite`` allows infinities (bounds).

        :raises UnitError: ``value`` has a unit and ``x_0`` none, or the other way round, or
            a unit of another kind.
        """
        caller, shown = self.caller, describe_value(value)
        if self.unit is None:
            if is_quantity(value) and not (isinstance(value, q.Quantity) and not value._units):
                raise UnitError(
                    f"{caller}(): {name} = {shown} has a unit, but x_0 = {describe_value(self.x_0)} "
                    "is a bare number"
                )
            magnitude = value.magnitude if is_quantity(value) else value
        elif isinstance(value, q.Quantity):
            if not same_kind(value._units, self.unit._units):
                raise UnitError(
                    f"{caller}(): {name} = {shown} cannot be expressed in {_symbol(self.unit)}, "
                    f"the unit of x_0 = {describe_value(self.x_0)}"
                )
            unit = (q.Quantity(0, self.unit) - q.Quantity(0, self.unit)).units if step else self.unit
            magnitude = value.m_as(unit)
        elif is_quantity(value):
            raise UnitError(f"{caller}(): {name} = {shown} is a quantity of another pint registry (use q)")
        elif not self.unit._units:
            magnitude = value  # x_0 is a plain number with q.dimensionless
        else:
            raise UnitError(
                f"{caller}(): {name} = {shown} is not a quantity in {_symbol(self.unit)}, the unit of "
                f"x_0 = {describe_value(self.x_0)} (write e.g. {_example(value, self.unit)})"
            )
        array = _real_array(caller, name, value, magnitude, infinite)
        try:
            return np.broadcast_to(array, self.shape).ravel().astype(float)
        except ValueError:
            raise ProcessError(
                f"{caller}(): {name} = {shown} does not fit x_0 = {describe_value(self.x_0)}: "
                f"give one value, or one per coordinate (shape {self.shape})"
            ) from None

    def positive_x(self, name: str, value: Any) -> np.ndarray:
        """A step or tolerance of ``x``: like :meth:`like_x`, and every element above zero."""
        array = self.like_x(name, value, step=True)
        if not np.all(array > 0):
            raise ProcessError(f"{self.caller}(): {name} = {describe_value(value)} must be above zero")
        return array

    def nonzero_x(self, name: str, value: Any) -> np.ndarray:
        """A signed step of ``x``: like :meth:`like_x`, and no element zero."""
        array = self.like_x(name, value, step=True)
        if not np.all(array != 0):
            raise ProcessError(f"{self.caller}(): {name} = {describe_value(value)} must not be zero")
        return array

    def bounds(self, bounds: Any) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """``bounds`` as (lower, upper) magnitude vectors (``None`` for none); ``x_0`` must lie inside.

        :raises ProcessError: ``bounds`` is not a pair.
        :raises UnitError: a bound is not of ``x_0``'s kind.
        :raises LimitError: the lower bound is not below the upper one, or ``x_0`` lies outside.
        """
        if bounds is None:
            return None
        caller = self.caller
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise ProcessError(
                f"{caller}(): bounds must be a pair (lower, upper), None for no limit, "
                f"not {_pair_text(bounds)}"
            )
        low, high = bounds
        infinity = np.full(self.x0.shape, np.inf)
        lower = -infinity if low is None else self.like_x("lower bound", low, infinite=True)
        upper = infinity if high is None else self.like_x("upper bound", high, infinite=True)
        shown = _pair_text(bounds)
        if not np.all(lower < upper):
            raise LimitError(f"{caller}(): bounds {shown}: the lower bound must be below the upper one")
        if not np.all((lower <= self.x0) & (self.x0 <= upper)):
            raise LimitError(f"{caller}(): x_0 = {describe_value(self.x_0)} lies outside the bounds {shown}")
        return lower, upper

    # -- y ----------------------------------------------------------------------------------

    def __call__(self, vector: Any) -> float:
        """The function at ``vector`` as one float: what the minimisers work on."""
        x = self.point(vector)
        y = self.function(x)
        magnitude = self._magnitude(y, x)
        try:
            number = real_number(magnitude)
        except (UnitError, LimitError) as error:
            raise type(error)(
                f"{self.caller}(): the function returned {describe_value(y)} at x = {describe_value(x)}, "
                f"which {error}"
            ) from None
        if not np.isfinite(number):
            raise LimitError(
                f"{self.caller}(): the function returned {describe_value(y)} at x = {describe_value(x)}, "
                "not a finite number"
            )
        self._remember(vector, number, number)
        return number

    def residuals(self, vector: Any) -> np.ndarray:
        """The function at ``vector`` as a float vector (one residual or several): what least squares uses."""
        x = self.point(vector)
        y = self.function(x)
        magnitude = self._magnitude(y, x)
        array = np.asarray(magnitude)
        if array.dtype.kind not in "iuf" or array.size == 0:
            raise UnitError(
                f"{self.caller}(): the function returned {describe_value(y)} at x = {describe_value(x)}, "
                "not a number or an array of numbers"
            )
        if self.y_shape is None:
            self.y_shape = array.shape
        elif array.shape != self.y_shape:
            raise ProcessError(
                f"{self.caller}(): the function returned {array.size} residuals at x = {describe_value(x)}, "
                f"but {int(np.prod(self.y_shape))} before"
            )
        if not np.all(np.isfinite(array)):
            raise LimitError(
                f"{self.caller}(): the function returned {describe_value(y)} at x = {describe_value(x)}, "
                "not all finite numbers"
            )
        residuals = array.astype(float).ravel()
        self._remember(vector, float(np.sum(residuals**2)), residuals)
        return residuals

    def _remember(self, vector: Any, cost: float, value: Any) -> None:
        if self.best is None or cost < self.best[1]:
            self.best = (np.array(vector, dtype=float).ravel(), cost, value)

    def central_differences(
        self, steps: np.ndarray, limits: Optional[Tuple[np.ndarray, np.ndarray]], residuals: bool = False
    ) -> Callable[[Any], np.ndarray]:
        """A gradient (or Jacobian) from evaluations ``steps`` either side, one-sided at a bound."""
        evaluate = self.residuals if residuals else self
        infinity = np.full(self.x0.shape, np.inf)
        lower, upper = (-infinity, infinity) if limits is None else limits

        def gradient(vector: Any) -> np.ndarray:
            vector = np.array(vector, dtype=float)
            columns = []
            for index, step in enumerate(steps):
                forward, backward = vector.copy(), vector.copy()
                forward[index] = min(vector[index] + step, upper[index])
                backward[index] = max(vector[index] - step, lower[index])
                difference = np.asarray(evaluate(forward)) - np.asarray(evaluate(backward))
                columns.append(difference / (forward[index] - backward[index]))
            return np.stack(columns, axis=-1)

        return gradient

    def _magnitude(self, y: Any, x: Any) -> Any:
        """``y`` as a magnitude in the unit of the first value (all values must be of one kind)."""
        caller = self.caller
        if is_quantity(y):
            if not isinstance(y, q.Quantity):
                raise UnitError(
                    f"{caller}(): the function returned {describe_value(y)}, a quantity of another "
                    "pint registry (use concert.quantities.q)"
                )
            if self.y_unit is _UNSET:
                self.y_unit = y.units
            elif self.y_unit is None:
                raise UnitError(
                    f"{caller}(): the function returned {describe_value(y)} at x = {describe_value(x)}, "
                    "but bare numbers before"
                )
            elif not same_kind(y._units, self.y_unit._units):
                raise UnitError(
                    f"{caller}(): the function returned {describe_value(y)} at x = {describe_value(x)}, "
                    f"which cannot be compared with the {_symbol(self.y_unit)} it returned before"
                )
            return y.m_as(self.y_unit)
        if self.y_unit is _UNSET:
            self.y_unit = None
        elif self.y_unit is not None:
            raise UnitError(
                f"{caller}(): the function returned {describe_value(y)} at x = {describe_value(x)}, "
                f"a bare number, but quantities in {_symbol(self.y_unit)} before"
            )
        return y

    def y(self, magnitude: Any) -> Any:
        """A value of the function restored from its magnitude: a quantity if the function returned them."""
        value: Any = np.asarray(magnitude, dtype=float)
        if self.y_shape is not None:
            value = value.reshape(self.y_shape)
        value = float(value) if value.shape == () else value
        return value if self.y_unit in (None, _UNSET) else q.Quantity(value, self.y_unit)

    def result(self, vector: Any, magnitude: Any) -> Tuple[Any, Any]:
        return self.point(vector), self.y(magnitude)


def _symbol(unit: Any) -> str:
    return format(unit, "~P") or "dimensionless"


def _pair_text(bounds: Any) -> str:
    """Bounds as a message shows them: ``(0 mm, 5 mm)``."""
    if isinstance(bounds, (tuple, list)):
        return "(" + ", ".join(describe_value(bound) for bound in bounds) + ")"
    return describe_value(bounds)


def _example(value: Any, unit: Any) -> str:
    """How to write ``value`` in ``unit``: ``2 * q.mm``, ``q.Quantity(2, 'mm / s')``."""
    number = describe_value(value) if is_real(value) else "2"
    code = format(unit, "~")
    return f"{number} * q.{code}" if code.isidentifier() else f"q.Quantity({number}, {code!r})"


def _split(caller: str, name: str, value: Any) -> Tuple[Any, np.ndarray]:
    """``x_0`` as its unit (``None`` for bare numbers) and its magnitudes as a float array.

    :raises UnitError: not numbers, quantities of several kinds, or numbers mixed with quantities.
    :raises LimitError: NaN or infinite.
    """
    shown = describe_value(value)
    if isinstance(value, (list, tuple)) and any(is_quantity(item) for item in value):
        if not all(isinstance(item, q.Quantity) for item in value):
            raise UnitError(f"{caller}(): {name} = {shown} mixes quantities with numbers that have no unit")
        unit = value[0].units
        for item in value:
            if not same_kind(item._units, unit._units):
                raise UnitError(
                    f"{caller}(): {name} = {shown}: {describe_value(item)} "
                    f"cannot be expressed in {_symbol(unit)}"
                )
        value = q.Quantity(np.array([item.m_as(unit) for item in value]), unit)
    if is_quantity(value):
        if not isinstance(value, q.Quantity):
            raise UnitError(f"{caller}(): {name} = {shown} is a quantity of another pint registry (use q)")
        return value.units, _real_array(caller, name, value, value.magnitude)
    return None, _real_array(caller, name, value, value)


def _real_array(caller: str, name: str, value: Any, magnitude: Any, infinite: bool = False) -> np.ndarray:
    """``magnitude`` (one number or an array of them) as a float array."""
    shown = describe_value(value)
    if is_real(magnitude):
        try:
            array = np.array(real_number(magnitude))
        except (UnitError, LimitError) as error:
            raise type(error)(f"{caller}(): {name} = {shown} {error}") from None
    else:
        array = np.asarray(magnitude) if isinstance(magnitude, (np.ndarray, list, tuple)) else None
        if array is None or array.dtype.kind not in "iuf":
            raise UnitError(f"{caller}(): {name} = {shown} is not a number or an array of numbers")
        if array.size == 0:
            raise ProcessError(f"{caller}(): {name} = {shown} is empty")
        array = array.astype(float)
    if np.any(np.isnan(array)) or (not infinite and not np.all(np.isfinite(array))):
        raise LimitError(f"{caller}(): {name} = {shown} is not a finite number")
    return array


def _count(caller: str, name: str, value: Any) -> int:
    if not is_integer(value) or value < 1:
        raise ProcessError(
            f"{caller}(): {name} must be a whole number above zero, not {describe_value(value)}"
        )
    return int(value)


def _positive(caller: str, name: str, value: Any) -> float:
    """A tolerance on the function's values (or a relative one): a bare number above zero."""
    if is_quantity(value):
        raise UnitError(
            f"{caller}(): {name} = {describe_value(value)} must be a bare number "
            "(in the units of the function's values, or relative)"
        )
    if not is_real(value) or not value > 0:
        raise ProcessError(f"{caller}(): {name} must be a number above zero, not {describe_value(value)}")
    return float(value)


def _scalar_x(space: _Space, name: str, value: Any) -> float:
    """A tolerance of ``x`` that scipy takes as one number (the largest, if one per coordinate is given)."""
    return float(np.max(space.positive_x(name, value)))


# -- the step-halving search -----------------------------------------------------------------------


def _halve(
    function: Callable[[Any], Any],
    x: Any,
    step: Any,
    epsilon: Any,
    max_iterations: int,
    better: Callable[[Any, Any], bool],
    lower: Any = None,
    upper: Any = None,
) -> Tuple[Any, Any, bool]:
    """The step-halving search of both faces: return ``(x, function(x), converged)`` at the best point.

    From ``x`` it steps by ``step`` while ``better(new, best)``; a step that
    does not improve (or that a bound cuts to nothing) turns the search round
    and halves the step. It is done once ``abs(step) < epsilon``; after
    ``max_iterations`` steps it gives up. Works on anything with ``+``,
    ``-``, ``/``, ``abs`` and comparisons: floats or quantities.
    """
    best = function(x)
    for _ in range(max_iterations):
        if abs(step) < epsilon:
            return x, best, True
        candidate = x + step
        if lower is not None and candidate < lower:
            candidate = lower
        if upper is not None and candidate > upper:
            candidate = upper
        if candidate != x:
            value = function(candidate)
            if better(value, best):
                x, best = candidate, value
                continue
        step = -step / 2
    return x, best, abs(step) < epsilon


def halver(
    function: Callable[[Any], Any],
    x_0: Any,
    initial_step: Any = None,
    epsilon: Any = None,
    max_iterations: int = 100,
    bounds: Any = None,
) -> Tuple[Any, Any]:
    """Minimise ``function`` of one variable from ``x_0`` by step halving; return ``(x, function(x))``.

    It walks downhill in steps of ``initial_step`` (default: one unit of
    ``x_0``; its sign is the first direction); whenever a step does not
    lower the value it turns round and halves the step, until the step is
    smaller than ``epsilon`` (default: a thousandth of ``initial_step``),
    both in ``x_0``'s unit. It finds a *local* minimum: start near the one
    you want. With ``bounds=(lower, upper)`` it never steps outside them.
    After ``max_iterations`` steps without converging it logs a warning and
    returns the best point found.

    :raises ProcessError: ``x_0`` is not one number, a zero step, an epsilon or
        ``max_iterations`` that is not above zero, ``bounds`` that is not a pair.
    :raises UnitError: ``x_0``, a step, epsilon or a bound of the wrong kind.
    :raises LimitError: ``x_0`` outside the bounds, or bounds the wrong way round.
    """
    space = _Space("halver", function, x_0)
    if not space.scalar:
        raise ProcessError(
            f"halver(): x_0 = {describe_value(x_0)} must be one number: halver searches along one "
            "coordinate (down_hill or powell search along several)"
        )
    step = 1.0 if initial_step is None else float(space.nonzero_x("initial_step", initial_step)[0])
    eps = abs(step) / 1000 if epsilon is None else float(space.positive_x("epsilon", epsilon)[0])
    iterations = _count("halver", "max_iterations", max_iterations)
    limits = space.bounds(bounds)
    lower, upper = (None, None) if limits is None else (float(limits[0][0]), float(limits[1][0]))
    x, best, converged = _halve(space, float(space.x0[0]), step, eps, iterations, operator.lt, lower, upper)
    if not converged:
        LOG.warning(
            "halver: the step was still above epsilon = %s after %d iterations; returning the best point "
            "found, x = %s",
            describe_value(space.point(eps)),
            iterations,
            describe_value(space.point(x)),
        )
    return space.result(x, best)


# -- scipy's minimisers --------------------------------------------------------------------------


def _minimize(
    space: _Space, method: str, options: Dict[str, Any], bounds: Any, epsilon: Any = _UNSET
) -> Tuple[Any, Any]:
    """Run :func:`scipy.optimize.minimize` on ``space``'s magnitudes; restore the units of the result.

    ``epsilon`` (gradient methods only) is the step of the central differences
    that estimate the gradient, ``None`` for scipy's own (relative) one.
    """
    from scipy import optimize as scipy_optimize

    limits = space.bounds(bounds)
    jacobian: Any = None
    if epsilon is not _UNSET:
        jacobian = (
            "3-point"
            if epsilon is None
            else space.central_differences(space.positive_x("epsilon", epsilon), limits)
        )
    result = scipy_optimize.minimize(
        space,
        space.x0,
        method=method,
        jac=jacobian,
        bounds=None if limits is None else scipy_optimize.Bounds(*limits),
        options=options,
    )
    gradient = getattr(result, "jac", None)
    if gradient is not None and getattr(result, "nit", 1) == 0 and not np.any(gradient):
        LOG.warning(
            "%s: the function did not change within epsilon of x_0 = %s, so the search never left it; "
            "set epsilon above the resolution and the noise of what the function measures",
            space.caller,
            describe_value(space.x_0),
        )
    return _outcome(space, result, result.success, result.fun)


def _outcome(space: _Space, result: Any, success: bool, cost: float) -> Tuple[Any, Any]:
    """``(x, y)`` of scipy's ``result``; if it gave up, the best evaluation (logged as a warning)."""
    vector, value = result.x, result.fun
    if not success:
        if space.best is not None and space.best[1] < cost:
            vector, _, value = space.best
        LOG.warning(
            "%s: %s; returning the best point found, x = %s",
            space.caller,
            str(result.message).rstrip("."),
            describe_value(space.point(vector)),
        )
    return space.result(vector, value)


def down_hill(
    function: Callable[[Any], Any],
    x_0: Any,
    initial_step: Any = None,
    xtol: Any = None,
    ftol: Any = None,
    max_iterations: Optional[int] = None,
    bounds: Any = None,
) -> Tuple[Any, Any]:
    """Minimise ``function`` with the downhill simplex (Nelder-Mead) method; return ``(x, function(x))``.

    :func:`scipy.optimize.minimize` with ``method='Nelder-Mead'``, needing no
    derivatives -- the choice for noisy measurements. ``initial_step`` (in
    ``x_0``'s unit, one value or one per coordinate) is the size of the
    first simplex (default scipy's: 5 % of each non-zero coordinate,
    0.00025 for zeros); ``xtol`` (in ``x_0``'s unit) and ``ftol`` (a bare
    number, in the function's units) are the absolute changes below which
    it stops (default 1e-4 each); ``max_iterations`` defaults to 200 per
    coordinate. ``bounds=(lower, upper)`` keeps it inside. Not converged, it
    logs a warning and returns the best point found.

    :raises ProcessError, UnitError, LimitError: as :func:`halver`, for its arguments.
    """
    space = _Space("down_hill", function, x_0)
    options: Dict[str, Any] = {}
    if initial_step is not None:
        step = space.nonzero_x("initial_step", initial_step)
        options["initial_simplex"] = np.vstack([space.x0, space.x0 + np.diag(step)])
    if xtol is not None:
        options["xatol"] = _scalar_x(space, "xtol", xtol)
    if ftol is not None:
        options["fatol"] = _positive("down_hill", "ftol", ftol)
    if max_iterations is not None:
        options["maxiter"] = _count("down_hill", "max_iterations", max_iterations)
    return _minimize(space, "Nelder-Mead", options, bounds)


def powell(
    function: Callable[[Any], Any],
    x_0: Any,
    initial_step: Any = None,
    xtol: Any = None,
    ftol: Any = None,
    max_iterations: Optional[int] = None,
    bounds: Any = None,
) -> Tuple[Any, Any]:
    """Minimise ``function`` with Powell's conjugate direction method; return ``(x, function(x))``.

    :func:`scipy.optimize.minimize` with ``method='Powell'``: line searches
    along each coordinate and then along the directions that helped, no
    derivatives. ``initial_step`` (in ``x_0``'s unit, one value or one per
    coordinate; default one unit) scales the first directions; ``xtol`` and
    ``ftol`` are scipy's *relative* tolerances (bare numbers, default 1e-4)
    of the line searches and of the function's value; ``max_iterations``
    defaults to 1000 per coordinate. ``bounds=(lower, upper)`` keeps it
    inside. Not converged, it logs a warning and returns the best point found.

    :raises ProcessError, UnitError, LimitError: as :func:`halver`, for its arguments.
    """
    space = _Space("powell", function, x_0)
    options: Dict[str, Any] = {}
    if initial_step is not None:
        options["direc"] = np.diag(space.nonzero_x("initial_step", initial_step))
    if xtol is not None:
        options["xtol"] = _positive("powell", "xtol", xtol)
    if ftol is not None:
        options["ftol"] = _positive("powell", "ftol", ftol)
    if max_iterations is not None:
        options["maxiter"] = _count("powell", "max_iterations", max_iterations)
    return _minimize(space, "Powell", options, bounds)


def _gradient_options(space: _Space, gtol: Any, max_iterations: Optional[int]) -> Dict[str, Any]:
    options: Dict[str, Any] = {}
    if gtol is not None:
        options["gtol"] = _positive(space.caller, "gtol", gtol)
    if max_iterations is not None:
        options["maxiter"] = _count(space.caller, "max_iterations", max_iterations)
    return options


def nonlinear_conjugate(
    function: Callable[[Any], Any],
    x_0: Any,
    epsilon: Any = None,
    gtol: Any = None,
    max_iterations: Optional[int] = None,
    bounds: Any = None,
) -> Tuple[Any, Any]:
    """Minimise ``function`` with the nonlinear conjugate gradient method; return ``(x, function(x))``.

    :func:`scipy.optimize.minimize` with ``method='CG'``. The gradient is
    estimated by central differences, from evaluations ``epsilon`` either
    side (in ``x_0``'s unit, one value or one per coordinate). By default
    scipy chooses the step, about 6e-6 of each coordinate (at least 6e-6 of
    the unit), which suits exact functions: for a measurement set
    ``epsilon`` well above its resolution and its noise. It stops when the
    gradient's largest component is below ``gtol`` (a bare number, in the
    function's units per unit of ``x_0``; default 1e-5) or after
    ``max_iterations`` (default 200 per coordinate), then logging a warning
    and returning the best point found.

    :raises ProcessError: for ``bounds``: the method cannot keep to them (use
        :func:`bfgs`, :func:`powell`, :func:`down_hill` or :func:`halver`),
        and as :func:`halver` for its other arguments.
    :raises UnitError, LimitError: as :func:`halver`, for its arguments.
    """
    space = _Space("nonlinear_conjugate", function, x_0)
    if bounds is not None:
        raise ProcessError(
            f"nonlinear_conjugate(): bounds = {_pair_text(bounds)}: the conjugate gradient method "
            "cannot keep to bounds (bfgs, powell, down_hill, halver and least_squares can)"
        )
    return _minimize(space, "CG", _gradient_options(space, gtol, max_iterations), None, epsilon)


def bfgs(
    function: Callable[[Any], Any],
    x_0: Any,
    epsilon: Any = None,
    gtol: Any = None,
    max_iterations: Optional[int] = None,
    bounds: Any = None,
) -> Tuple[Any, Any]:
    """Minimise ``function`` with the BFGS quasi-Newton method; return ``(x, function(x))``.

    :func:`scipy.optimize.minimize` with ``method='BFGS'``, or
    ``'L-BFGS-B'`` (BFGS that keeps to bounds) when ``bounds=(lower,
    upper)`` are given. ``epsilon``, ``gtol`` and ``max_iterations`` as for
    :func:`nonlinear_conjugate`; with bounds, ``gtol`` is the projected
    gradient's, ``max_iterations`` defaults to 15000 and the differences are
    one-sided at a bound. Not converged, it logs a warning and returns the
    best point found.

    :raises ProcessError, UnitError, LimitError: as :func:`halver`, for its arguments.
    """
    space = _Space("bfgs", function, x_0)
    options = _gradient_options(space, gtol, max_iterations)
    return _minimize(space, "BFGS" if bounds is None else "L-BFGS-B", options, bounds, epsilon)


def least_squares(
    function: Callable[[Any], Any],
    x_0: Any,
    epsilon: Any = None,
    xtol: Any = None,
    ftol: Any = None,
    gtol: Any = None,
    max_evaluations: Optional[int] = None,
    bounds: Any = None,
) -> Tuple[Any, Any]:
    """Minimise the sum of squares of what ``function`` returns; return ``(x, function(x))``.

    :func:`scipy.optimize.least_squares` (trust region reflective).
    ``function(x)`` returns the residuals: one number or an array of them,
    always of the same length; ``y`` of the result is those residuals at
    ``x``. Given one measurement, least squares finds where its *square* is
    smallest: where it is zero, if it can be. The Jacobian is estimated by
    central differences, ``epsilon`` as for :func:`nonlinear_conjugate`.
    ``xtol``, ``ftol`` and ``gtol`` are scipy's relative tolerances (bare
    numbers, default 1e-8); ``max_evaluations`` defaults to 100 per
    coordinate (not counting those of the differences).
    ``bounds=(lower, upper)`` keeps it inside (from ``x_0`` on a bound it
    starts 1 % of the way in, at most 0.01 unit: scipy's trust region cannot
    start on one). Its first step is at most about one unit of ``x_0``. Not
    converged, it logs a warning and returns the best point found.

    :raises ProcessError, UnitError, LimitError: as :func:`halver`, for its arguments.
    """
    from scipy import optimize as scipy_optimize

    space = _Space("least_squares", function, x_0)
    options: Dict[str, Any] = {}
    for name, value in (("xtol", xtol), ("ftol", ftol), ("gtol", gtol)):
        if value is not None:
            options[name] = _positive("least_squares", name, value)
    if max_evaluations is not None:
        options["max_nfev"] = _count("least_squares", "max_evaluations", max_evaluations)
    limits = space.bounds(bounds)
    jacobian: Any = "3-point"
    if epsilon is not None:
        jacobian = space.central_differences(space.positive_x("epsilon", epsilon), limits, residuals=True)
    # scipy searches the offsets from x_0: its first trust region is then one unit of x_0 wherever
    # x_0 lies (not |x_0|). It cannot start on a bound (its region would be nothing): from one, the
    # search starts 1 % of the way in (of one unit at most).
    origin = space.x0
    start = np.zeros_like(origin)
    offsets: Any = (-np.inf, np.inf)
    if limits is not None:
        lower, upper = limits
        span = np.minimum(upper - lower, 1.0)
        start = np.where(origin <= lower, span / 100, np.where(origin >= upper, -span / 100, start))
        offsets = (lower - origin, upper - origin)
    if callable(jacobian):
        differences = jacobian

        def jacobian(offset: np.ndarray) -> np.ndarray:  # the same derivative, at x_0 + offset
            return differences(origin + offset)

    result = scipy_optimize.least_squares(
        lambda offset: space.residuals(origin + offset), start, jac=jacobian, bounds=offsets, **options
    )
    result.x = origin + result.x
    return _outcome(space, result, result.status > 0, float(np.sum(result.fun**2)))


#: The algorithms of this module, by name (``optimize(f, x_0, "powell")`` works too).
ALGORITHMS: Dict[str, Callable[..., Tuple[Any, Any]]] = {
    algorithm.__name__: algorithm
    for algorithm in (halver, down_hill, powell, nonlinear_conjugate, bfgs, least_squares)
}
_NAMES = ", ".join(list(ALGORITHMS)[:-1]) + " or " + list(ALGORITHMS)[-1]


# -- the runs ---------------------------------------------------------------------------------------


def _note(error: BaseException, text: str) -> None:
    """Add ``text`` to the notes a traceback shows under ``error`` (``add_note`` on Python 3.11+)."""
    if hasattr(error, "add_note"):
        error.add_note(text)
    else:  # Python 3.9, 3.10: kept where 3.11's traceback would look for it
        error.__notes__ = [*getattr(error, "__notes__", []), text]


class _Plan:
    """An algorithm and its arguments, checked before anything is evaluated."""

    def __init__(self, caller: str, algorithm: Any, alg_args: Any, alg_kwargs: Any) -> None:
        self.caller = caller
        self.algorithm = _algorithm(caller, algorithm)
        self.name = getattr(self.algorithm, "__name__", None) or describe_value(self.algorithm)
        if not isinstance(alg_args, (tuple, list)):
            raise ProcessError(f"{caller}(): alg_args must be a tuple, not {describe_value(alg_args)}")
        if alg_kwargs is None:
            alg_kwargs = {}
        if not isinstance(alg_kwargs, dict):
            raise ProcessError(
                f"{caller}(): alg_kwargs must be a dict or None, not {describe_value(alg_kwargs)}"
            )
        self.args, self.kwargs = tuple(alg_args), dict(alg_kwargs)
        self.arguments: Dict[str, Any] = {}
        try:
            signature = inspect.signature(self.algorithm)
        except (TypeError, ValueError):  # a callable without a signature: nothing to check
            return
        try:
            bound = signature.bind(None, None, *self.args, **self.kwargs)
        except TypeError as error:
            given = [f"alg_args={describe_value(self.args)}"] if self.args else []
            given += [f"alg_kwargs={describe_value(self.kwargs)}"] if self.kwargs else []
            raise ProcessError(
                f"{caller}(): {' and '.join(given) or 'no arguments'} do not fit "
                f"{self.name}(function, x_0, ...): {error}"
            ) from None
        self.arguments = dict(bound.arguments)

    def run(
        self,
        function: Callable[[Any], Any],
        x_0: Any,
        callback: Optional[Callable[[Any, Any], Any]],
        progress: bool,
    ) -> Tuple[Any, Any]:
        """Run the algorithm on ``function``, checking for a cancel request before each evaluation."""
        from concert.processes.progress import progress_bar  # here: concert.processes imports this module

        caller, name = self.caller, self.name
        evaluations = 0
        bar_context: Any = progress_bar(None, f"{caller} ({name})") if progress else contextlib.nullcontext()
        with bar_context as bar:

            def evaluate(x: Any) -> Any:
                nonlocal evaluations
                check_cancelled()  # the one check: a cancel request or Ctrl-C stops the search here
                evaluations += 1
                try:
                    y = function(x)
                    if callback is not None:
                        callback(x, y)
                except CancelledError:
                    raise
                except Exception as error:
                    _note(
                        error,
                        f"{caller}(): raised by evaluation {evaluations} of {name}, "
                        f"at x = {describe_value(x)}",
                    )
                    raise
                if bar is not None:
                    bar.update()
                return y

            result = self.algorithm(evaluate, x_0, *self.args, **self.kwargs)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ProcessError(f"{caller}(): algorithm {name} returned {describe_value(result)}, not (x, y)")
        return result[0], result[1]


def _algorithm(caller: str, algorithm: Any) -> Callable[..., Tuple[Any, Any]]:
    if isinstance(algorithm, str):
        found = ALGORITHMS.get(algorithm)
        if found is None:
            raise ProcessError(f"{caller}(): algorithm {algorithm!r} is not one of {_NAMES}")
        return found
    if not callable(algorithm):
        raise ProcessError(
            f"{caller}(): algorithm must be one of {_NAMES} (or its name), not {describe_value(algorithm)}"
        )
    module = getattr(algorithm, "__module__", None) or ""
    if module == "scipy" or module.startswith("scipy."):
        public = module.split("._")[0]  # scipy.optimize._optimize -> scipy.optimize
        raise ProcessError(
            f"{caller}(): algorithm {public}.{getattr(algorithm, '__name__', '')} is scipy's own function, "
            f"which knows no units and returns no (x, y): use one of {_NAMES}"
        )
    return algorithm


def _check_callable(caller: str, name: str, value: Any, optional: bool = False) -> None:
    if not (callable(value) or (optional and value is None)):
        alternative = " or None" if optional else ""
        raise ProcessError(f"{caller}(): {name} must be a callable{alternative}, not {describe_value(value)}")


def _check_reachable(caller: str, parameter: ParameterValue, what: str, value: Any) -> None:
    """Refuse ``value`` if writing it to ``parameter`` would be refused (nothing is written).

    :raises UnitError: a bare number for a parameter with a unit, a quantity
        for one without, or a unit of another kind.
    :raises LimitError: outside the parameter's soft or hardware limits (or NaN).
    """
    if getattr(parameter, "unit", None) is None and is_quantity(value):
        raise UnitError(
            f"{caller}(): {what} = {describe_value(value)} has a unit, but {parameter!r} holds bare numbers"
        )
    try:
        parameter._validate(value)  # the checks of a write, without writing
    except (UnitError, LimitError) as error:
        raise type(error)(
            f"{caller}(): {what} = {describe_value(value)} cannot be written: {error}"
        ) from None


def _run_parameter(
    caller: str,
    parameter: Any,
    feedback: Any,
    x_0: Any,
    algorithm: Any,
    alg_args: Any,
    alg_kwargs: Any,
    callback: Any,
    progress: bool,
) -> Tuple[Any, Any]:
    """Optimise ``parameter`` (both faces): check everything, search, leave the parameter at ``x``."""
    if not isinstance(parameter, ParameterValue):
        raise ProcessError(
            f"{caller}(): parameter must be a device's parameter, such as motor['position'], "
            f"not {describe_value(parameter)}"
        )
    if not parameter.writable:
        raise WriteAccessError(f"{caller}(): {parameter!r} cannot be written: it has no setter")
    _check_callable(caller, "feedback", feedback)
    _check_callable(caller, "callback", callback, optional=True)
    plan = _Plan(caller, algorithm, alg_args, alg_kwargs)
    _check_reachable(caller, parameter, "x_0", x_0)
    bounds = plan.arguments.get("bounds")
    if isinstance(bounds, (tuple, list)) and len(bounds) == 2:  # other forms: the algorithm refuses them
        for side, bound in zip(("lower bound", "upper bound"), bounds):
            if bound is not None:
                _check_reachable(caller, parameter, side, bound)

    def function(x: Any) -> Any:
        parameter.write(x)
        return feedback()

    x, y = plan.run(function, x_0, callback, progress)
    check_cancelled()
    parameter.write(x)
    return x, y


@async_
def optimize(
    function: Callable[[Any], Any],
    x_0: Any,
    algorithm: Any,
    alg_args: tuple = (),
    alg_kwargs: Optional[dict] = None,
    callback: Optional[Callable[[Any, Any], Any]] = None,
) -> Tuple[Any, Any]:
    """Minimise ``function`` from ``x_0`` with ``algorithm``; return a future of ``(x, y)``.

    Runs ``algorithm(evaluate, x_0, *alg_args, **alg_kwargs)``, where
    ``evaluate(x)`` returns ``function(x)`` and then calls ``callback(x, y)``
    if given (to plot the search, say). ``algorithm`` is one of this module's
    (:func:`halver`, :func:`down_hill`, :func:`powell`,
    :func:`nonlinear_conjugate`, :func:`bfgs`, :func:`least_squares`), its
    name, or any function with their signature returning ``(x, y)``.
    Shows a progress bar counting evaluations when
    :data:`concert.config.PROGRESS_BAR` is on.

    Before each evaluation the search checks for a cancel request
    (``future.cancel()``, Ctrl-C while waiting for it, a parent that was
    cancelled; :func:`~concert.futures.check_cancelled`): the future then
    ends cancelled. An exception of an evaluation ends the search and
    reaches the future unchanged, with a note saying which evaluation, at
    which ``x``, raised it.

    :raises ProcessError: from the future: ``function`` or ``callback``
        cannot be called, ``algorithm`` is not one of these, ``alg_args``/
        ``alg_kwargs`` do not fit it, or what the algorithm refuses.
    :raises UnitError, LimitError: from the future: what the algorithm
        refuses (see :func:`halver`).
    """
    _check_callable("optimize", "function", function)
    _check_callable("optimize", "callback", callback, optional=True)
    return _Plan("optimize", algorithm, alg_args, alg_kwargs).run(function, x_0, callback, progress=True)


@async_
def optimize_parameter(
    parameter: ParameterValue,
    feedback: Callable[[], Any],
    x_0: Any,
    algorithm: Any,
    alg_args: tuple = (),
    alg_kwargs: Optional[dict] = None,
    callback: Optional[Callable[[Any, Any], Any]] = None,
) -> Tuple[Any, Any]:
    """Find the value of ``parameter`` where ``feedback()`` is smallest; return a future of ``(x, y)``.

    :func:`optimize` on the function that writes ``x`` to ``parameter``
    (e.g. ``motor['position']``: the motor moves there and the write returns
    once it has arrived) and returns ``feedback()``. ``x_0`` and any
    ``bounds`` of the algorithm are checked as writes would be, before
    anything moves. On success the parameter is left at ``x``.

    A cancel request stops the search before its next evaluation; a move in
    progress is stopped by the motor's stop action. The parameter is then
    left where the last evaluation put it, as it is when an evaluation
    raises.

    :raises ProcessError: from the future: ``parameter`` is not a parameter
        (``motor.position`` instead of ``motor['position']``), ``feedback``
        cannot be called, and as :func:`optimize`.
    :raises WriteAccessError: from the future: the parameter cannot be written.
    :raises UnitError: from the future: ``x_0`` or a bound is a bare number
        for a parameter with a unit, a quantity for one without, or of
        another unit.
    :raises LimitError: from the future: ``x_0`` or a bound lies outside the
        parameter's limits (or ``x_0`` outside the bounds).
    """
    return _run_parameter(
        "optimize_parameter", parameter, feedback, x_0, algorithm, alg_args, alg_kwargs, callback, True
    )
