"""The processes of the legacy API: ``from concert.processes.common import scan, ascan, dscan, focus``.

* :func:`scan` -- a multi-dimensional scan over :class:`~concert.regions.Region`
  objects (``from concert.helpers import Region``): a generator of futures,
  one per point; :func:`scan_param_feedback` measures a parameter at each point;
* :func:`ascan`, :func:`dscan` -- several parameters moved together, with a
  ``handler`` called at each step;
* :func:`focus` -- put a camera in focus with a motor;
* the beamline processes of the toolbox, defined and documented in
  :mod:`concert.processes.beamline` and importable from here as the legacy
  API had them: :func:`~concert.processes.beamline.acquire_frames_360`,
  :func:`~concert.processes.beamline.align_rotation_axis`,
  :func:`~concert.processes.beamline.find_beam`,
  :func:`~concert.processes.beamline.drift_to_beam`,
  :func:`~concert.processes.beamline.center_to_beam`,
  :func:`~concert.processes.beamline.acquire_dark`,
  :func:`~concert.processes.beamline.acquire_image_with_beam`,
  :func:`~concert.processes.beamline.determine_rotation_axis`, and
  :class:`~concert.processes.beamline.AlignmentError`.

The scans and ``focus`` are the legacy spellings of :mod:`concert.processes`: :func:`ascan`,
:func:`dscan` and :func:`focus` run :func:`concert.processes.scan.ascan`,
:func:`concert.processes.scan.dscan` and
:func:`concert.processes.optimization.focus`, so they set, stop, put back
and report exactly as those do. Wrong use raises :class:`ProcessError`.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from concert.checks import is_integer
from concert.exceptions import ProcessError as ProcessError  # re-exported: where the legacy API has it
from concert.exceptions import ReadAccessError
from concert.futures import Future, async_, resolve
from concert.naming import describe_value
from concert.parameters import ParameterValue
from concert.processes import beamline as _beamline
from concert.processes.beamline import *  # noqa: F403 - re-exported (its __all__): where the legacy API has them
from concert.processes.optimization import focus as _focus
from concert.processes.scan import ascan as _ascan
from concert.processes.scan import dscan as _dscan
from concert.regions import Region

__all__ = sorted({"ascan", "dscan", "focus", "scan", "scan_param_feedback", *_beamline.__all__})


# -- scan -------------------------------------------------------------------------------------


class _Point:
    """One point of a :func:`scan`: what to set there and what to call; its future is named after it."""

    def __init__(
        self,
        number: int,
        total: int,
        regions: Sequence[Region],
        point: Tuple[Any, ...],
        changed: Sequence[int],
        callbacks: Dict[Region, Callable[[], Any]],
        feedback: Callable[[], Any],
    ) -> None:
        self._number, self._total = number, total
        self._regions, self._point, self._changed = regions, point, changed
        self._callbacks, self._feedback = callbacks, feedback

    def __repr__(self) -> str:
        where = ", ".join(
            f"{self._regions[index].parameter!r} = {describe_value(self._point[index])}"
            for index in self._changed
        )
        return f"scan point {self._number + 1}/{self._total} ({where})"

    @async_
    def measure(self) -> Tuple[Any, ...]:
        """Set the parameters that change here (in parallel), call their callbacks, then ``feedback()``."""
        regions, point = self._regions, self._point
        resolve([regions[index].parameter.set(point[index]) for index in self._changed])
        for index in self._changed:
            callback = self._callbacks.get(regions[index])
            if callback is not None:
                callback()
        return (*point, self._feedback())


def _check_regions(function: str, regions: Any) -> Tuple[List[Region], List[List[Any]]]:
    """The regions as a list, and the values of each, checked."""
    if isinstance(regions, Region):
        regions = [regions]
    elif not isinstance(regions, (list, tuple)):
        raise ProcessError(
            f"{function}: regions must be a Region or a list of them, not {describe_value(regions)}"
        )
    if not regions:
        raise ProcessError(f"{function}: no regions to scan (give at least one Region)")
    values: List[List[Any]] = []
    seen: List[ParameterValue] = []
    for index, region in enumerate(regions):
        if not isinstance(region, Region):
            raise ProcessError(f"{function}: regions[{index}] = {describe_value(region)} is not a Region")
        parameter = region.parameter
        if not isinstance(parameter, ParameterValue):
            raise ProcessError(
                f"{function}: the parameter of {region!r} must be a parameter value such as "
                f"motor['position'], not {describe_value(parameter)}"
            )
        if any(parameter is other for other in seen):
            raise ProcessError(f"{function}: {parameter!r} is the parameter of more than one region")
        seen.append(parameter)
        try:
            points = list(region.values)
        except TypeError:
            raise ProcessError(
                f"{function}: the values of the region of {parameter!r} are not iterable: "
                f"{describe_value(region.values)}"
            ) from None
        if not points:
            raise ProcessError(f"{function}: the region of {parameter!r} has no values")
        values.append(points)
    return list(regions), values


def _check_callbacks(
    function: str, callbacks: Any, regions: Sequence[Region]
) -> Dict[Region, Callable[[], Any]]:
    if callbacks is None:
        return {}
    if not isinstance(callbacks, dict):
        raise ProcessError(
            f"{function}: callbacks must be a dict {{region: callable}}, not {describe_value(callbacks)}"
        )
    for region, callback in callbacks.items():
        if not any(region is known for known in regions):
            raise ProcessError(
                f"{function}: callbacks has {describe_value(region)}, which is not one of the regions"
            )
        if not callable(callback):
            raise ProcessError(
                f"{function}: the callback of {region!r} is {describe_value(callback)}, not a callable"
            )
    return dict(callbacks)


def scan(
    feedback: Callable[[], Any],
    regions: Any,
    callbacks: Optional[Dict[Region, Callable[[], Any]]] = None,
) -> Iterator[Future]:
    """Scan the parameters of ``regions``; return a generator of futures, one per point.

    ``regions`` is a :class:`~concert.regions.Region` or a list of them; the
    points are every combination of their values, the *last* region
    changing fastest (``[Region(x, [0, 1]), Region(y, [5, 6])]`` visits
    ``(0, 5), (0, 6), (1, 5), (1, 6)``). At each point the parameters whose
    value changes there are set (in parallel; at the first point all of
    them), the ``callbacks`` of their regions are called (``{region:
    callable}``, with no arguments, outer regions first) -- to take a flat
    field whenever the rotation changes, say -- and then ``feedback()``. Each
    future's result is the tuple ``(x_1, ..., x_n, feedback())``.

    Points run one after the other, when the generator is advanced: asking
    for the next future first waits until the previous point has ended. A
    point that fails or is cancelled ends the scan -- the generator stops,
    no later point is started -- and its future holds the error. So::

        for future in scan(diode.get_intensity_value, Region(motor['position'], positions)):
            x, y = future.result()

    :raises ProcessError: at the call, for regions that are not a Region or a
        list of them, an empty list, a region whose parameter is not a
        parameter value or that has no values, a parameter in two regions,
        ``feedback`` that cannot be called, or callbacks for other regions.
    """
    if not callable(feedback):
        raise ProcessError(f"scan(): feedback must be a callable, not {describe_value(feedback)}")
    regions, values = _check_regions("scan()", regions)
    return _scan(feedback, regions, values, _check_callbacks("scan()", callbacks, regions))


def _scan(
    feedback: Callable[[], Any],
    regions: List[Region],
    values: List[List[Any]],
    callbacks: Dict[Region, Callable[[], Any]],
) -> Iterator[Future]:
    total = 1
    for points in values:
        total *= len(points)
    previous: Optional[Tuple[int, ...]] = None
    for number, indices in enumerate(itertools.product(*(range(len(points)) for points in values))):
        point = tuple(points[index] for points, index in zip(values, indices))
        changed = [i for i, index in enumerate(indices) if previous is None or previous[i] != index]
        future = _Point(number, total, regions, point, changed, callbacks, feedback).measure()
        yield future
        if not _ended_well(future):
            return
        previous = indices


def _ended_well(future: Future) -> bool:
    """Wait for ``future`` (Ctrl-C cancels it); whether it finished without an error.

    Its outcome is not *retrieved*: a failure nobody looks at is still logged.
    """
    future._block(None)
    if future.cancelled():
        return False
    return concurrent.futures.Future.exception(future, 0) is None


def scan_param_feedback(
    scan_param_regions: Any,
    feedback_param: ParameterValue,
    callbacks: Optional[Dict[Region, Callable[[], Any]]] = None,
) -> Iterator[Future]:
    """:func:`scan` with a parameter's value as the feedback: ``(x_1, ..., x_n, feedback_param value)``.

    ``feedback_param`` is a parameter value (``diode['intensity']``), read
    at each point in the point's thread.

    :raises ProcessError: for the reasons :func:`scan` gives, or if
        ``feedback_param`` is not a parameter value.
    :raises ReadAccessError: if it cannot be read.
    """
    if not isinstance(feedback_param, ParameterValue):
        raise ProcessError(
            f"scan_param_feedback(): feedback_param must be a parameter value such as diode['intensity'], "
            f"not {describe_value(feedback_param)}"
        )
    if not feedback_param.readable:
        raise ReadAccessError(f"scan_param_feedback(): {feedback_param!r} cannot be read: it has no getter")
    return scan(feedback_param.read, scan_param_regions, callbacks)


# -- ascan, dscan ---------------------------------------------------------------------------------


def _check_steps(
    function: str, param_list: Any, n_intervals: Any, handler: Any
) -> List[Tuple[ParameterValue, Any, Any]]:
    if not isinstance(param_list, (list, tuple)) or not param_list:
        raise ProcessError(
            f"{function}: param_list must be a non-empty list of (parameter, start, stop), "
            f"not {describe_value(param_list)}"
        )
    triples = []
    for index, entry in enumerate(param_list):
        triple = isinstance(entry, (list, tuple)) and len(entry) == 3
        if not (triple and isinstance(entry[0], ParameterValue)):
            raise ProcessError(
                f"{function}: param_list[{index}] = {describe_value(entry)} is not (parameter, start, stop) "
                "with a parameter value such as motor['position']"
            )
        triples.append((entry[0], entry[1], entry[2]))
    if not is_integer(n_intervals) or n_intervals < 1:
        raise ProcessError(
            f"{function}: n_intervals={describe_value(n_intervals)} must be a whole number >= 1"
        )
    if not callable(handler):
        raise ProcessError(f"{function}: handler must be a callable, not {describe_value(handler)}")
    return triples


@async_
def ascan(
    param_list: Sequence[Tuple[ParameterValue, Any, Any]],
    n_intervals: int,
    handler: Callable[[List[ParameterValue]], Any],
    initial_values: Optional[Sequence[Any]] = None,
) -> Tuple[List[Any], Any]:
    """Move the ``(parameter, start, stop)`` of ``param_list`` together in ``n_intervals`` steps.

    At each of the ``n_intervals + 1`` points all parameters are set in
    parallel, then ``handler`` is called with the list of the parameters.
    With ``initial_values`` (one per parameter) the parameters are first
    set to them -- approaching the start from one side, say -- and the scan
    begins afterwards. Returns a future of ``(positions, results)`` as
    :func:`concert.processes.scan.ascan` does (``results``: what ``handler``
    returned at each point).

    :raises ProcessError: from the future, for a ``param_list`` that is not a
        non-empty list of ``(parameter value, start, stop)``, ``n_intervals``
        that is not a whole number >= 1, a ``handler`` that cannot be called,
        or ``initial_values`` of another length.
    """
    triples = _check_steps("ascan()", param_list, n_intervals, handler)
    parameters = [parameter for parameter, _, _ in triples]
    if initial_values is not None:
        initial_values = list(initial_values)
        if len(initial_values) != len(parameters):
            raise ProcessError(
                f"ascan(): {len(initial_values)} initial_values for {len(parameters)} parameters"
            )
        resolve([parameter.set(value) for parameter, value in zip(parameters, initial_values)])
    return _ascan(triples, n_intervals, lambda: handler(parameters)).result()


@async_
def dscan(
    parameter_list: Sequence[Tuple[ParameterValue, Any, Any]],
    n_intervals: int,
    handler: Callable[[List[ParameterValue]], Any],
) -> Tuple[List[Any], Any]:
    """:func:`ascan` with ``start`` and ``stop`` relative to where the parameters are; they go back after.

    The parameters are set back to where they were at the end -- also
    after a failure or a cancellation -- as :func:`concert.processes.scan.dscan` does.

    :raises ProcessError: from the future, as :func:`ascan`.
    """
    triples = _check_steps("dscan()", parameter_list, n_intervals, handler)
    parameters = [parameter for parameter, _, _ in triples]
    return _dscan(triples, n_intervals, lambda: handler(parameters)).result()


# -- focus --------------------------------------------------------------------------------------------

_FOCUS_OPTIONS = ("initial_step", "epsilon", "max_iterations")


@async_
def focus(
    camera: Any,
    motor: Any,
    measure: Callable[[np.ndarray], float] = np.std,
    opt_kwargs: Optional[Dict[str, Any]] = None,
    plot_callback: Optional[Callable[[Any, float], Any]] = None,
) -> Tuple[Any, float]:
    """Move ``motor`` to where ``measure(frame)`` of ``camera``'s frames is largest; return a future.

    :func:`concert.processes.optimization.focus` with the legacy arguments:
    ``opt_kwargs`` are the options of the search, ``initial_step``,
    ``epsilon`` (in the motor's units) and ``max_iterations`` (defaults: one
    unit of the motor, a thousandth of the step, 100); ``plot_callback``,
    if given, is called after each frame with the motor position and the
    measure, to plot the search. The future's result is ``(position,
    measure)``; the motor is left there.

    :raises ProcessError: from the future, for options it does not know or a
        ``measure`` or ``plot_callback`` that cannot be called.
    :raises StateError: from the future, when the camera is not in standby.
    """
    options = {} if opt_kwargs is None else opt_kwargs
    if not isinstance(options, dict):
        raise ProcessError(f"focus(): opt_kwargs must be a dict or None, not {describe_value(opt_kwargs)}")
    unknown = sorted(str(key) for key in options if key not in _FOCUS_OPTIONS)
    if unknown:
        raise ProcessError(
            f"focus(): opt_kwargs has unknown options {', '.join(map(repr, unknown))} "
            f"(it takes {', '.join(map(repr, _FOCUS_OPTIONS))})"
        )
    if not callable(measure):
        raise ProcessError(f"focus(): measure must be a callable, not {describe_value(measure)}")
    if plot_callback is not None and not callable(plot_callback):
        raise ProcessError(
            f"focus(): plot_callback must be a callable or None, not {describe_value(plot_callback)}"
        )

    def measured(frame: np.ndarray) -> float:
        value = measure(frame)
        if plot_callback is not None:
            plot_callback(motor.position, value)
        return value

    return _focus(camera, motor, measured, **options).result()
