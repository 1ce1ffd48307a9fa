"""Closed feedback loops of the legacy API: measure, compare, control, until the goal is met.

Subclass :class:`ClosedLoop` and implement :meth:`~ClosedLoop.compare`
(and usually :meth:`~ClosedLoop.measure` and :meth:`~ClosedLoop.control`)::

    class KeepFlux(ClosedLoop):
        def measure(self):
            self.flux = diode.intensity
        def compare(self):
            return abs(self.flux - target) < tolerance
        def control(self):
            monochromator.energy += step

    converged = KeepFlux().run(max_iterations=20).result()

:class:`DummyLoop` is a loop whose goal is always met.
"""

from __future__ import annotations

from concert.checks import is_integer
from concert.experiments.base import ExperimentError
from concert.futures import async_, check_cancelled
from concert.naming import describe_value

__all__ = ["ClosedLoop", "DummyLoop"]


class ClosedLoop:
    """A feedback loop: :meth:`initialize`, then :meth:`measure`, :meth:`compare`, :meth:`control` ..."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def initialize(self) -> None:
        """Bring the set-up to a defined state before the loop (does nothing unless overridden)."""

    def measure(self) -> None:
        """Make the measurement :meth:`compare` decides on (does nothing unless overridden)."""

    def control(self) -> None:
        """React to a measurement that did not meet the goal (does nothing unless overridden)."""

    def compare(self) -> bool:
        """Return whether the last measurement meets the goal; subclasses must implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement compare()")

    @async_
    def run(self, max_iterations: int = 10) -> bool:
        """Run the loop; return a future of whether the goal was met within ``max_iterations`` measurements.

        ``initialize()`` once, then up to ``max_iterations`` times:
        ``measure()``, ``compare()`` -- the loop ends with ``True`` as soon
        as it returns true -- and ``control()``. ``False`` means the goal
        was not met after the last measurement (``control()`` was not called
        after it). Cancelling the future stops the loop before its next step
        (:func:`~concert.futures.check_cancelled`).

        :raises ExperimentError: ``max_iterations`` is not a whole number >= 1.
        """
        if not is_integer(max_iterations) or max_iterations < 1:
            raise ExperimentError(
                f"{self!r}.run(): max_iterations={describe_value(max_iterations)} is not a whole number >= 1"
            )
        self.initialize()
        for iteration in range(max_iterations):
            check_cancelled()
            self.measure()
            if self.compare():
                return True
            if iteration + 1 < max_iterations:
                check_cancelled()
                self.control()
        return False


class DummyLoop(ClosedLoop):
    """A loop whose goal is met at the first measurement."""

    def compare(self) -> bool:
        """Always ``True``."""
        return True
