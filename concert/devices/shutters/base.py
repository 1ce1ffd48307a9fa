"""What every shutter offers: ``open()``, ``close()``, ``reset()`` and a state.

States: ``'closed'`` (the default), ``'open'`` and ``'error'``. ``open()``
is allowed only when closed and ``close()`` only when open; a call in any
other state raises :class:`~concert.exceptions.StateError` before the shutter
moves. Calls from several threads take turns: the second of two concurrent
``open()`` calls finds the shutter open and raises ``StateError``. A failure
of the hardware puts the shutter into ``'error'``; ``reset()`` closes it
again. Every state change is announced with ``dispatcher.send(shutter, state)``.

Implementations provide the hardware side:

* ``_open_real()``: open the shutter, blocking until it is open;
* ``_close_real()``: close it, blocking until it is closed (``reset()``
  calls it too, from ``'error'``, where the blades may be anywhere).

Each runs one at a time, in the shutter's slot, after the state check; an
exception puts the shutter into ``'error'``. A hook the hardware cannot do
raises :class:`~concert.exceptions.AccessorNotImplementedError` (what the
base class does when it is not implemented). Implementations may also
provide ``_get_state()`` when the hardware reports its position, and
:meth:`~concert.devices.base.Device._abort` when it can stop the blades
half-way (the base class does not override it: a stop does not move the
shutter).
"""

from __future__ import annotations

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_
from concert.states import State, check, transition

__all__ = ["Shutter"]


class Shutter(Device):
    """A beam shutter (see the module documentation)."""

    state = State(default="closed", help="open, closed or error")

    @async_
    @check(source="closed", target="open")
    @transition(target="open")
    def open(self) -> None:
        """Return a future of opening the shutter; it finishes once the shutter is open.

        :raises StateError: (in the future) if the shutter is not closed.
        """
        self._open_real()

    @async_
    @check(source="open", target="closed")
    @transition(target="closed")
    def close(self) -> None:
        """Return a future of closing the shutter; it finishes once the shutter is closed.

        :raises StateError: (in the future) if the shutter is not open.
        """
        self._close_real()

    @async_
    @check(source="error", target="closed")
    @transition(target="closed")
    def reset(self) -> None:
        """Return a future of leaving ``'error'`` by closing the shutter.

        :raises StateError: (in the future) if the shutter is not in ``'error'``.
        """
        self._close_real()

    # -- what implementations provide ------------------------------------------------

    def _open_real(self) -> None:
        """Open the shutter; return once it is open."""
        raise AccessorNotImplementedError(f"{self!r} cannot open")

    def _close_real(self) -> None:
        """Close the shutter; return once it is closed."""
        raise AccessorNotImplementedError(f"{self!r} cannot close")
