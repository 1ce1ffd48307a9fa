"""What every attenuator box offers: ``attenuator``, the filter in the beam (``None`` for none), and a state.

``attenuator`` is a :class:`~concert.parameters.Selection` of ``None`` (no
filter: the open beam) and the names of the filters given to the
constructor (``AttenuatorBox(['Al 1 mm', 'Cu 0.1 mm'])``), made for each
instance; ``box['attenuator'].values`` lists them and
:attr:`AttenuatorBox.attenuators` the names alone. Writing a name puts that
filter into the beam (taking the one there out), ``None`` takes it out; the
write returns once the filter is in place. Writing anything else raises
:class:`~concert.exceptions.WriteAccessError` naming the box, the value and
the choices, before anything moves.

States: ``'standby'`` (the default), ``'moving'`` while filters change, and
``'error'``. Changes from several threads take turns: a write made during
one waits for it and then makes its own. In ``'error'`` a write raises
:class:`~concert.exceptions.StateError`; ``reset()`` returns to
``'standby'``. A failure of the hardware puts the box into ``'error'``.

Implementations provide the hardware side:

* ``_get_attenuator()``: the name of the filter in the beam, or ``None``;
* ``_set_attenuator_real(attenuator)``: put ``attenuator`` (one of the
  names, or ``None``; already checked) into the beam, blocking until it is
  there; it runs one at a time, in the box's slot, with the state
  ``'moving'``;
* optionally ``_reset_real()``: what ``reset()`` does to the hardware
  before returning to ``'standby'`` (the base class does nothing).

A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented).
"""

from __future__ import annotations

from typing import Iterable, List, Optional

from concert.devices.base import Device
from concert.devices.lenschangers.base import named_choices
from concert.exceptions import AccessorNotImplementedError
from concert.futures import async_
from concert.parameters import Selection
from concert.states import State, check, transition

__all__ = ["AttenuatorBox"]

# A write made during a change passes the first look at the state and then waits for
# the slot, where the state is 'standby' again: so writes queue instead of being refused.
_WRITABLE = ("standby", "moving")


class AttenuatorBox(Device):
    """An attenuator box with the named ``attenuators`` (see the module documentation).

    :raises ParameterDefinitionError: ``attenuators`` is not a non-empty
        list of distinct, non-empty strings.
    """

    state = State(default="standby", help="standby, moving or error")

    def __init__(self, attenuators: Iterable[str]) -> None:
        names = named_choices(type(self).__name__, "attenuators", attenuators)
        super().__init__()
        self.install_parameters(
            {
                "attenuator": Selection(
                    [None, *names],
                    check=check(source=_WRITABLE, target="standby"),
                    help="The filter in the beam (None: none)",
                )
            }
        )

    @property
    def attenuators(self) -> List[str]:
        """The names of the filters, in the order given (a new list on every read)."""
        return self["attenuator"].values[1:]

    @transition(immediate="moving", target="standby")
    def _set_attenuator(self, attenuator: Optional[str]) -> None:
        self._set_attenuator_real(attenuator)

    @async_
    @check(source="error", target="standby")
    @transition(target="standby")
    def reset(self) -> None:
        """Return a future of leaving ``'error'`` for ``'standby'``.

        :raises StateError: (in the future) if the box is not in ``'error'``.
        """
        self._reset_real()

    # -- what implementations provide ------------------------------------------------

    def _get_attenuator(self) -> Optional[str]:
        """Return the name of the filter in the beam, or ``None``."""
        raise AccessorNotImplementedError(f"{self!r} cannot tell which attenuator is in the beam")

    def _set_attenuator_real(self, attenuator: Optional[str]) -> None:
        """Put ``attenuator`` (``None``: none) into the beam; return once it is there."""
        raise AccessorNotImplementedError(f"{self!r} cannot change its attenuator")

    def _reset_real(self) -> None:
        """What ``reset()`` does to the hardware (nothing here)."""
