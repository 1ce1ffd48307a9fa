"""What every sample changer offers: ``sample``, the mounted sample (``None`` for none), and a state.

``sample`` is a :class:`~concert.parameters.Selection` of ``None`` and the
names of the samples in the magazine, given to the constructor
(``SampleChanger(['A1', 'A2'])``), made for each instance;
``changer['sample'].values`` lists them and :attr:`SampleChanger.samples`
the names alone. Writing a name mounts that sample (the mounted one, if
any, goes back to the magazine first); writing ``None`` unmounts the
mounted one; the write returns once that is done. Writing anything else
raises :class:`~concert.exceptions.WriteAccessError` naming the changer, the
value and the choices, before the robot moves.

States: ``'standby'`` (the default), ``'moving'`` while samples are
exchanged, and ``'error'``. Exchanges from several threads take turns: a
write made during one waits for it and then makes its own. In ``'error'`` a
write raises :class:`~concert.exceptions.StateError`; ``reset()`` returns to
``'standby'``. A failure of the hardware puts the changer into ``'error'``.

Implementations provide the hardware side:

* ``_get_sample()``: the name of the mounted sample, or ``None``;
* ``_set_sample_real(sample)``: mount ``sample`` (one of the names, or
  ``None`` to unmount; already checked), blocking until done; it runs one at
  a time, in the changer's slot, with the state ``'moving'``;
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

__all__ = ["SampleChanger"]

# A write made during an exchange passes the first look at the state and then waits for
# the slot, where the state is 'standby' again: so writes queue instead of being refused.
_WRITABLE = ("standby", "moving")


class SampleChanger(Device):
    """A sample changer for the named ``samples`` (see the module documentation).

    :raises ParameterDefinitionError: ``samples`` is not a non-empty list of
        distinct, non-empty strings.
    """

    state = State(default="standby", help="standby, moving or error")

    def __init__(self, samples: Iterable[str]) -> None:
        names = named_choices(type(self).__name__, "samples", samples)
        super().__init__()
        self.install_parameters(
            {
                "sample": Selection(
                    [None, *names],
                    check=check(source=_WRITABLE, target="standby"),
                    help="The mounted sample (None: none)",
                )
            }
        )

    @property
    def samples(self) -> List[str]:
        """The names of the samples in the magazine, in the order given (a new list on every read)."""
        return self["sample"].values[1:]

    @transition(immediate="moving", target="standby")
    def _set_sample(self, sample: Optional[str]) -> None:
        self._set_sample_real(sample)

    @async_
    @check(source="error", target="standby")
    @transition(target="standby")
    def reset(self) -> None:
        """Return a future of leaving ``'error'`` for ``'standby'``.

        :raises StateError: (in the future) if the changer is not in ``'error'``.
        """
        self._reset_real()

    # -- what implementations provide ------------------------------------------------

    def _get_sample(self) -> Optional[str]:
        """Return the name of the mounted sample, or ``None``."""
        raise AccessorNotImplementedError(f"{self!r} cannot tell which sample is mounted")

    def _set_sample_real(self, sample: Optional[str]) -> None:
        """Mount ``sample`` (``None``: unmount); return once done."""
        raise AccessorNotImplementedError(f"{self!r} cannot exchange samples")

    def _reset_real(self) -> None:
        """What ``reset()`` does to the hardware (nothing here)."""
