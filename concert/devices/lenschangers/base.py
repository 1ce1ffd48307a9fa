"""What every lens changer offers: ``objective``, the named objective in the beam, and a state.

``objective`` is a :class:`~concert.parameters.Selection` of the names
given to the constructor (``LensChanger(['5x', '10x'])``), made for each
instance; ``changer['objective'].values`` and :attr:`LensChanger.objectives`
list them. Writing it brings that objective into the beam and returns once
it is there. Writing a name that is not one of them raises
:class:`~concert.exceptions.WriteAccessError` naming the changer, the value
and the names there are, before the turret moves.

States: ``'standby'`` (the default), ``'moving'`` while the objective
changes, and ``'error'``. Changes from several threads take turns: a write
made during a change waits for it and then makes its own. In ``'error'`` a
write raises :class:`~concert.exceptions.StateError`; ``reset()`` returns to
``'standby'``. A failure of the hardware puts the changer into ``'error'``.

Implementations provide the hardware side:

* ``_get_objective()``: the name of the objective in the beam;
* ``_set_objective_real(objective)``: bring the objective (one of the
  names, already checked) into the beam, blocking until it is there; it
  runs one at a time, in the changer's slot, with the state ``'moving'``;
* optionally ``_reset_real()``: what ``reset()`` does to the hardware
  before returning to ``'standby'`` (the base class does nothing).

A hook the hardware cannot do raises
:class:`~concert.exceptions.AccessorNotImplementedError` (what the base
class does when it is not implemented).
"""

from __future__ import annotations

from typing import Any, Iterable, List

from concert.devices.base import Device
from concert.exceptions import AccessorNotImplementedError, ParameterDefinitionError
from concert.futures import async_
from concert.naming import describe_value
from concert.parameters import Selection
from concert.states import State, check, transition

__all__ = ["LensChanger", "named_choices"]

# A write made while a change runs passes the first look at the state and then waits for
# the slot, where the state is 'standby' again: so writes queue instead of being refused.
_WRITABLE = ("standby", "moving")


def named_choices(owner: str, what: str, names: Iterable[Any]) -> List[str]:
    """Return ``names`` as a list of distinct, non-empty strings (the choices of a selection device).

    Also used by the sample changers and attenuator boxes. ``owner`` and
    ``what`` name the class and the argument in messages.

    :raises ParameterDefinitionError: ``names`` is a string, not iterable,
        empty, or holds something that is not a non-empty string, or a name twice.
    """
    if isinstance(names, (str, bytes)):
        raise ParameterDefinitionError(f"{owner}: {what}={names!r} must be a list of names, not one string")
    try:
        listed = list(names)
    except TypeError:
        raise ParameterDefinitionError(
            f"{owner}: {what}={describe_value(names)} must be a list of names"
        ) from None
    if not listed:
        raise ParameterDefinitionError(f"{owner}: {what} is empty; give at least one name")
    for name in listed:
        if not isinstance(name, str) or not name:
            raise ParameterDefinitionError(
                f"{owner}: {what}: {describe_value(name)} is not a name (a non-empty string)"
            )
    if len(set(listed)) != len(listed):
        twice = sorted({name for name in listed if listed.count(name) > 1})
        raise ParameterDefinitionError(f"{owner}: {what}: {', '.join(map(repr, twice))} given twice")
    return listed


class LensChanger(Device):
    """A lens changer with the named ``objectives`` (see the module documentation).

    :raises ParameterDefinitionError: ``objectives`` is not a non-empty list
        of distinct, non-empty strings.
    """

    state = State(default="standby", help="standby, moving or error")

    def __init__(self, objectives: Iterable[str]) -> None:
        names = named_choices(type(self).__name__, "objectives", objectives)
        super().__init__()
        self.install_parameters(
            {
                "objective": Selection(
                    names, check=check(source=_WRITABLE, target="standby"), help="The objective in the beam"
                )
            }
        )

    @property
    def objectives(self) -> List[str]:
        """The names of the objectives, in the order given (a new list on every read)."""
        return self["objective"].values

    @transition(immediate="moving", target="standby")
    def _set_objective(self, objective: str) -> None:
        self._set_objective_real(objective)

    @async_
    @check(source="error", target="standby")
    @transition(target="standby")
    def reset(self) -> None:
        """Return a future of leaving ``'error'`` for ``'standby'``.

        :raises StateError: (in the future) if the changer is not in ``'error'``.
        """
        self._reset_real()

    # -- what implementations provide ------------------------------------------------

    def _get_objective(self) -> str:
        """Return the name of the objective in the beam."""
        raise AccessorNotImplementedError(f"{self!r} cannot tell its objective")

    def _set_objective_real(self, objective: str) -> None:
        """Bring ``objective`` into the beam; return once it is there."""
        raise AccessorNotImplementedError(f"{self!r} cannot change its objective")

    def _reset_real(self) -> None:
        """What ``reset()`` does to the hardware (nothing here)."""
