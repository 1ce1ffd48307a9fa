"""What every pump offers: ``flow_rate``, ``start()``, ``stop()``, ``reset()`` and a state.

States: ``'standby'`` (the default), ``'pumping'`` and ``'error'``.
``start()`` is allowed only in standby and ``stop()`` only while pumping; a
call in any other state raises :class:`~concert.exceptions.StateError`
before the pump is touched. Calls from several threads take turns. A failure
of the hardware puts the pump into ``'error'``; ``reset()`` stops it and
returns to standby. ``emergency_stop()`` stops pumping at once, from any
thread, without waiting for anybody's exclusive access.

``flow_rate`` is in l/min and never negative (soft limit 0 l/min, so a
negative rate raises :class:`~concert.exceptions.SoftLimitError`); it can be
changed in either state.

Implementations provide the hardware side:

* ``_start_real()``: start pumping at the current ``flow_rate``; return once
  the pump runs;
* ``_stop_real()``: stop pumping; return once the pump has stopped; harmless
  when it is not pumping. ``stop()`` and ``reset()`` call it, and so do
  ``abort()`` and ``emergency_stop()``, from any thread while another call
  may be running, so it must not wait for any lock or device call, and may be
  called several times for one stop;
* the accessors ``_get_flow_rate()``/``_set_flow_rate(rate)``, in l/min (the
  rate arrives converted and checked against the limits).

``start()``, ``stop()`` and ``reset()`` run one at a time, in the pump's
slot, after the state check; an exception in them puts the pump into
``'error'``. A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented).
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_
from concert.parameters import Quantity
from concert.quantities import q
from concert.states import State, check, transition

__all__ = ["Pump"]


class Pump(Device):
    """A pump (see the module documentation)."""

    state = State(default="standby", help="standby, pumping or error", after_abort={"pumping": "standby"})
    flow_rate = Quantity(q.l / q.min, lower=0 * q.l / q.min, help="Flow rate")

    @async_
    @check(source="standby", target="pumping")
    @transition(target="pumping")
    def start(self) -> None:
        """Return a future of starting to pump at ``flow_rate``.

        :raises StateError: (in the future) if the pump is not in standby.
        """
        self._start_real()

    @async_
    @check(source="pumping", target="standby")
    @transition(target="standby")
    def stop(self) -> None:
        """Return a future of stopping the pump.

        :raises StateError: (in the future) if the pump is not pumping.
        """
        self._stop_real()

    @async_
    @check(source="error", target="standby")
    @transition(target="standby")
    def reset(self) -> None:
        """Return a future of leaving ``'error'``: the pump is stopped and goes to standby.

        :raises StateError: (in the future) if the pump is not in ``'error'``.
        """
        self._stop_real()

    def _abort(self) -> None:
        # Must not wait for anybody's locks; the state goes from pumping to standby as
        # declared (an 'error' is kept: leaving it takes reset()).
        self._stop_real()

    # -- what implementations provide ------------------------------------------------

    def _start_real(self) -> None:
        """Start pumping at ``flow_rate``; return once the pump runs."""
        raise AccessorNotImplementedError(f"{self!r} cannot start")

    def _stop_real(self) -> None:
        """Stop pumping, return once stopped; harmless when stopped; never waits for locks."""
        raise AccessorNotImplementedError(f"{self!r} cannot stop")

    def _get_flow_rate(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read its flow rate")

    def _set_flow_rate(self, rate: Any) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot set its flow rate")
