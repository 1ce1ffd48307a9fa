"""What every X-ray tube offers: ``voltage``, ``current``, ``power``, ``on()``, ``off()``, ``reset()``.

States: ``'off'`` (the default), ``'on'`` and ``'error'``. ``on()`` is allowed
only when off and ``off()`` only when on; a call in any other state raises
:class:`~concert.exceptions.StateError` before the tube is touched. Calls
from several threads take turns. A failure of the hardware puts the tube
into ``'error'``; ``reset()`` switches it off and returns to ``'off'``.
``emergency_stop()`` switches the tube off at once, from any thread, without
waiting for anybody's exclusive access.

``voltage`` (kV) and ``current`` (µA) are never negative (soft limits 0) and
can be changed in either state; ``power`` (W) is read-only, their product.

Implementations provide the hardware side:

* ``_on_real()``: switch the tube on (at the current voltage and current);
  return once it emits;
* ``_off_real()``: switch it off; return once it is off; harmless when it is
  off. ``off()`` and ``reset()`` call it, and so do ``abort()`` and
  ``emergency_stop()``, from any thread while another call may be running, so
  it must not wait for any lock or device call, and may be called several
  times for one stop;
* the accessors ``_get_voltage()``/``_set_voltage(v)`` (kV) and
  ``_get_current()``/``_set_current(i)`` (µA); values arrive converted and
  checked against the limits. ``power`` needs no accessor.

``on()``, ``off()`` and ``reset()`` run one at a time, in the tube's slot,
after the state check; an exception in them puts the tube into ``'error'``.
A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented).
"""

from __future__ import annotations

from typing import Any

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError, ReadAccessError
from concert.futures import async_
from concert.parameters import Quantity
from concert.quantities import q
from concert.states import State, check, transition

__all__ = ["XRayTube"]


class XRayTube(Device):
    """An X-ray tube (see the module documentation)."""

    state = State(default="off", help="on, off or error", after_abort={"on": "off"})
    voltage = Quantity(q.kV, lower=0 * q.kV, help="Acceleration voltage")
    current = Quantity(q.uA, lower=0 * q.uA, help="Tube current")
    power = Quantity(q.W, help="Electrical power, voltage times current")

    @async_
    @check(source="off", target="on")
    @transition(target="on")
    def on(self) -> None:
        """Return a future of switching the tube on.

        :raises StateError: (in the future) if the tube is not off.
        """
        self._on_real()

    @async_
    @check(source="on", target="off")
    @transition(target="off")
    def off(self) -> None:
        """Return a future of switching the tube off.

        :raises StateError: (in the future) if the tube is not on.
        """
        self._off_real()

    @async_
    @check(source="error", target="off")
    @transition(target="off")
    def reset(self) -> None:
        """Return a future of leaving ``'error'``: the tube is switched off.

        :raises StateError: (in the future) if the tube is not in ``'error'``.
        """
        self._off_real()

    def _abort(self) -> None:
        # Must not wait for anybody's locks; the state goes from on to off as declared
        # (an 'error' is kept: leaving it takes reset()).
        self._off_real()

    def _get_power(self) -> Any:
        try:
            return (self["voltage"].read() * self["current"].read()).to(q.W)
        except ReadAccessError as error:
            raise AccessorNotImplementedError(f"power is voltage times current: {error}") from error

    # -- what implementations provide ------------------------------------------------

    def _on_real(self) -> None:
        """Switch the tube on; return once it emits."""
        raise AccessorNotImplementedError(f"{self!r} cannot switch on")

    def _off_real(self) -> None:
        """Switch the tube off, return once off; harmless when off; never waits for locks."""
        raise AccessorNotImplementedError(f"{self!r} cannot switch off")

    def _get_voltage(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read its voltage")

    def _set_voltage(self, voltage: Any) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot set its voltage")

    def _get_current(self) -> Any:
        raise AccessorNotImplementedError(f"{self!r} cannot read its current")

    def _set_current(self, current: Any) -> None:
        raise AccessorNotImplementedError(f"{self!r} cannot set its current")
