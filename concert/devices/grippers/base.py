"""What every gripper offers: ``grip()``, ``release()``, ``reset()`` and a state.

States: ``'released'`` (the default), ``'moving'`` (the jaws are closing or
opening), ``'gripped'`` and ``'error'``. ``grip()`` is allowed only when
released and ``release()`` only when gripped; a call in any other state
raises :class:`~concert.exceptions.StateError` before the jaws move, naming
the gripper, the call and the state. Calls from several threads take
turns: the second of two concurrent ``grip()`` calls finds the gripper
gripped and raises ``StateError``. A failure of the hardware puts the
gripper into ``'error'`` (the message kept in ``gripper['state'].error``);
``reset()`` opens the jaws and returns to ``'released'``. Every state change
is announced with ``dispatcher.send(gripper, state)``.

Implementations provide the hardware side:

* ``_grip_real()``: close the jaws, blocking until the sample is held;
* ``_release_real()``: open them, blocking until they are open (``reset()``
  calls it too, from ``'error'``).

Each runs one at a time, in the gripper's slot, after the state check; an
exception puts the gripper into ``'error'``. A hook the hardware cannot do
raises :class:`~concert.exceptions.AccessorNotImplementedError` (what the
base class does when it is not implemented). The base class registers no
stop action: whether jaws can stop half-way is up to the hardware (the
simulated ones cannot; see :mod:`concert.devices.grippers.dummy`).
"""

from __future__ import annotations

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_
from concert.states import State, check, transition

__all__ = ["Gripper"]


class Gripper(Device):
    """A gripper (see the module documentation)."""

    state = State(default="released", help="released, moving, gripped or error")

    @async_
    @check(source="released", target="gripped")
    @transition(immediate="moving", target="gripped")
    def grip(self) -> None:
        """Return a future of gripping; it finishes once the sample is held.

        :raises StateError: (in the future) if the gripper is not released.
        """
        self._grip_real()

    @async_
    @check(source="gripped", target="released")
    @transition(immediate="moving", target="released")
    def release(self) -> None:
        """Return a future of releasing; it finishes once the jaws are open.

        :raises StateError: (in the future) if the gripper does not grip.
        """
        self._release_real()

    @async_
    @check(source="error", target="released")
    @transition(immediate="moving", target="released")
    def reset(self) -> None:
        """Return a future of leaving ``'error'`` by opening the jaws.

        :raises StateError: (in the future) if the gripper is not in ``'error'``.
        """
        self._release_real()

    # -- what implementations provide ------------------------------------------------

    def _grip_real(self) -> None:
        """Close the jaws; return once the sample is held."""
        raise AccessorNotImplementedError(f"{self!r} cannot grip")

    def _release_real(self) -> None:
        """Open the jaws; return once they are open."""
        raise AccessorNotImplementedError(f"{self!r} cannot release")
