"""Scans: set parameters through a series of values and measure at each one.

``scan`` moves one parameter; ``ascan`` moves several at once (set in
parallel at every step); ``dscan`` does the same relative to where the
parameters are, and puts them back afterwards.

``intervals`` counts the steps *between* the first and last value, so a scan
visits ``intervals + 1`` points, both ends included. Cancelling a scan's
future (or Ctrl-C while waiting for it) stops it after the current step:
the loop calls :func:`~concert.futures.check_cancelled` before each one, and
a move in progress is stopped by the motor's own stop action. The future
ends cancelled, its ``CancelledError`` naming the scan and the reason.
"""

from __future__ import annotations

from typing import Any, Callable, List, Sequence, Tuple

import numpy as np

from concert.checks import is_integer
from concert.futures import async_, check_cancelled, resolve
from concert.parameters import ParameterValue, QuantityValue
from concert.processes.progress import progress_bar

__all__ = ["ascan", "dscan", "scan"]


def _points(value: ParameterValue, start: Any, stop: Any, intervals: int) -> Any:
    if not is_integer(intervals) or intervals < 1:
        raise ValueError(f"scan of {value!r}: intervals={intervals!r} must be a whole number >= 1")
    if isinstance(value, QuantityValue):
        start, stop = value._convert(start, "start"), value._convert(stop, "stop")
        return np.linspace(start.magnitude, stop.magnitude, intervals + 1) * value.unit
    return np.linspace(start, stop, intervals + 1)


def _stack(values: List[Any]) -> Any:
    """Measurements as one array (a quantity array for quantities), or the list if they do not stack."""
    if values and all(hasattr(value, "units") for value in values):
        unit = values[0].units
        try:
            return np.array([value.to(unit).magnitude for value in values]) * unit
        except Exception:  # mixed dimensions or shapes: keep them as they are
            return values
    try:
        return np.array(values)
    except (ValueError, TypeError):  # tuples of quantities, ragged sequences ...
        return values


@async_
def scan(
    param: ParameterValue, feedback: Callable[[], Any], minimum: Any, maximum: Any, intervals: int = 64
) -> Tuple[Any, Any]:
    """Set ``param`` to ``intervals + 1`` values from ``minimum`` to ``maximum``; call ``feedback()`` at each.

    Returns a future of ``(xs, ys)``: the values set and what ``feedback``
    returned at each (arrays, quantity arrays for quantities). Each value is
    written as a normal write, so limits, locks and states apply.
    """
    xs = _points(param, minimum, maximum, intervals)
    ys = []
    with progress_bar(len(xs), f"scan {param.name}") as bar:
        for x in xs:
            check_cancelled()
            param.write(x)
            ys.append(feedback())
            bar.update()
    return xs, _stack(ys)


def _check_params(param_list: Sequence[Tuple[ParameterValue, Any, Any]]) -> None:
    if not param_list:
        raise ValueError("ascan needs at least one (parameter, start, stop)")


@async_
def ascan(
    param_list: Sequence[Tuple[ParameterValue, Any, Any]], intervals: int, feedback: Callable[[], Any]
) -> Tuple[List[Any], Any]:
    """Move several parameters together: at each step all are set in parallel, then ``feedback()``.

    ``param_list`` holds ``(parameter value, start, stop)`` triples. Returns a
    future of ``(positions, ys)`` where ``positions[i]`` are the values of the
    i-th parameter.
    """
    _check_params(param_list)
    positions = [_points(value, start, stop, intervals) for value, start, stop in param_list]
    ys = []
    with progress_bar(intervals + 1, "ascan " + ", ".join(value.name for value, _, _ in param_list)) as bar:
        for step in range(intervals + 1):
            check_cancelled()
            resolve([value.set(points[step]) for (value, _, _), points in zip(param_list, positions)])
            ys.append(feedback())
            bar.update()
    return positions, _stack(ys)


@async_
def dscan(
    param_list: Sequence[Tuple[ParameterValue, Any, Any]], intervals: int, feedback: Callable[[], Any]
) -> Tuple[List[Any], Any]:
    """Like :func:`ascan`, with ``start``/``stop`` relative to the current values.

    Afterwards -- also after a failure or cancellation -- every parameter is
    set back to where it was.
    """
    _check_params(param_list)
    initial = [value.read() for value, _, _ in param_list]
    absolute = [(value, here + start, here + stop) for (value, start, stop), here in zip(param_list, initial)]
    try:
        return ascan(absolute, intervals, feedback).result()  # cancelling this cancels the ascan
    finally:
        resolve([value.set(here) for (value, _, _), here in zip(param_list, initial)])
