"""State machines of devices: :class:`State`, :func:`check` and :func:`transition`.

A device declares ``state = State(default='standby')``. Methods are guarded
with :func:`check` (which states they may start from) and, when the device
cannot report its state itself, change the software state with
:func:`transition`::

    class Shutter(Device):
        state = State(default='closed')

        @async_
        @check(source='closed', target='open')
        @transition(immediate='opening', target='open')
        def open(self):
            ...

Rules:

* A state cannot be assigned (:class:`~concert.exceptions.WriteAccessError`);
  it changes only through methods. ``State(fset=...)`` and ``State(check=...)``
  -- arguments about writes -- raise :class:`TypeError` when the class is
  defined. A device's ``_get_state()`` (or ``_get_<state_name>()``)
  overrides the software state when reading it.
* A state declared without a default, on a device without ``_get_state()``,
  has no value until a :func:`transition` sets one: reading it raises
  :class:`~concert.exceptions.StateError` naming the device.
* :func:`check` raises :class:`~concert.exceptions.StateError` *before* the
  method does anything when the state is not one of ``source``. Checked
  and transitioning methods of a device run one at a time (one slot per
  device, shared by all its state machines), so the check and what the
  method does are atomic: a call made while another runs fails at once if
  the state is already wrong, and otherwise waits for it and is checked
  again -- of two concurrent ``open()`` calls, the second finds the shutter open.
  The message names the call the user made, not the private method that
  checks: ``LinearMotor#1.move(+5 mm) is not allowed in state 'error' (only
  in 'standby', 'hard-limit')``, ``Camera#1.exposure_time = 2 ms is not
  allowed in state 'recording' (only in 'standby')``.
* In :func:`transition`, an exception puts the device into ``'error'`` and
  keeps its message in ``device[state_name].error``; a cancellation
  (``CancelledError``, Ctrl-C) ends in ``target`` as a normal return does.
  Leaving ``'error'`` takes a method whose ``source`` allows it, e.g. ``reset()``.
* Every change of the software state sends ``dispatcher.send(device, new_state)``;
  setting the state and sending it are one step that Ctrl-C cannot split.
  Only this module changes the software state: in :func:`transition`, and
  after :meth:`~concert.devices.base.Device.abort`, which moves the device to
  the states declared by ``State(after_abort={...})`` (a pump's
  ``{'pumping': 'standby'}``).
* Both decorators run the method as one device call
  (:mod:`concert.operations`), entered once however they nest: it waits for
  other owners' ``with device:`` blocks and for the device's one-at-a-time
  slot, is fenced (a call submitted before ``abort()`` does not run after
  it) and is stopped by ``abort()`` with its reason.
"""

from __future__ import annotations

import functools
from concurrent.futures import CancelledError
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from concert.dispatcher import dispatcher
from concert.exceptions import StateError, WriteAccessError
from concert.interrupts import interruptibly, protected
from concert.naming import calling, current_call, describe_call, describe_value, instance_name
from concert.operations import device_call
from concert.parameters import Parameter, ParameterValue

__all__ = ["State", "StateValue", "check", "transition"]

States = Union[str, Sequence[str]]


class State(Parameter):
    """A finite-state-machine parameter (read-only from outside, see the module documentation).

    ``default`` is the software state a new device starts in; without one
    (and without ``fget`` or ``_get_<name>()``), reading the state raises
    :class:`~concert.exceptions.StateError` until a :func:`transition` has
    set it. ``fget`` (or
    the device's ``_get_<name>()``) reads the state from the hardware
    instead, called with ``data`` when given, as for every parameter.
    ``after_abort`` maps states to the state the device is in once
    ``abort()`` (or ``emergency_stop()``) has stopped it, e.g.
    ``{'pumping': 'standby'}``; other states are kept.

    A state is never written, so ``fset`` and ``check`` -- which apply to
    writes -- are refused when the class is defined.

    :raises TypeError: ``fset`` or ``check`` was given.
    """

    def __init__(
        self,
        default: Optional[str] = None,
        fget: Optional[Callable] = None,
        fset: Optional[Callable] = None,
        data: Any = None,
        check: Optional[Callable] = None,
        help: Optional[str] = None,
        after_abort: Optional[Mapping[str, str]] = None,
    ) -> None:
        refused = [name for name, given in (("fset", fset), ("check", check)) if given is not None]
        if refused:
            arguments = ", ".join(f"{name}=..." for name in refused)
            raise TypeError(
                f"State({arguments}): a State cannot be assigned; "
                "it changes only through transitions (methods decorated with @transition), "
                f"so it takes no {' or '.join(refused)}"
            )
        super().__init__(fget=fget, data=data, help=help)
        self.default = default
        self.after_abort: Dict[str, str] = dict(after_abort or {})

    def __set__(self, instance: Any, value: Any) -> None:
        instance._parameter_values[self.name].write(value)


class StateValue(ParameterValue):
    """The value side of a :class:`State`; :attr:`error` keeps the last error message.

    Users cannot change it; :func:`transition` and :meth:`after_abort` do.
    """

    _parameter: State

    def __init__(self, instance: Any, parameter: State) -> None:
        self._software = parameter.default
        #: The message of the exception that put the device into ``'error'``, else ``None``.
        self.error: Optional[str] = None
        super().__init__(instance, parameter)
        if self._getter is None:
            self._getter = self._read_software

    def _read_software(self) -> str:
        state = self._software
        if state is None:
            raise StateError(
                None,
                f"{self._label} cannot be read: it has no default (State(default=...)), "
                f"{instance_name(self._instance)} has no _get_{self.name}() "
                "and no transition has set it yet",
            )
        return state

    @property
    def writable(self) -> bool:
        return False

    def write(self, value: Any) -> None:
        raise WriteAccessError(
            f"{self._label} cannot be set (to {describe_value(value)}): "
            "states change only through the device's methods"
        )

    @protected
    def _change(self, state: str, error: Optional[str] = None) -> None:
        """Set the software state and announce it, as one step Ctrl-C cannot split."""
        self._software = state
        self.error = error
        dispatcher.send(self._instance, state)

    def after_abort(self) -> None:
        """Move to the state declared for after an abort, if the current one has one."""
        target = self._parameter.after_abort.get(self._software)
        if target is not None:
            self._change(target)


State.value_class = StateValue


def _as_states(states: States) -> Tuple[str, ...]:
    return (states,) if isinstance(states, str) else tuple(states)


def check(source: States = "*", target: States = "*", state_name: str = "state") -> Callable:
    """Decorate a method so that it runs only when the device is in one of ``source``.

    ``'*'`` allows every state. ``target`` documents the states the method
    leaves the device in (kept in the method's ``check_info``). The method
    runs in the device's one-at-a-time slot: a call made while another one
    runs fails at once if the state is already wrong, and otherwise waits
    for it and is checked again.

    :raises StateError: before the method runs, naming the call the user made
        (``LinearMotor#1.move(+5 mm)``, ``Camera#1.exposure_time = 2 ms``, see
        :func:`concert.naming.calling`) and the state.
    """
    sources, targets = _as_states(source), _as_states(target)

    def decorate(func: Callable) -> Callable:
        def verify(instance: Any, args: tuple, kwargs: dict) -> None:
            if "*" in sources:
                return
            state = instance[state_name].read()
            if state not in sources:
                call = current_call(instance) or describe_call(func, (instance, *args), kwargs)
                raise StateError(
                    state,
                    f"{call} is not allowed in {state_name} {state!r} "
                    f"(only in {', '.join(map(repr, sources))})",
                )

        @functools.wraps(func)
        def checked(instance: Any, *args: Any, **kwargs: Any) -> Any:
            call = (func, (instance, *args), kwargs)
            with calling(instance, lambda: describe_call(*call)):
                slot = getattr(instance, "_slot", None)
                if slot is not None and slot._operation is not None:
                    verify(instance, args, kwargs)  # fail fast while another call runs (a racy peek)
                with device_call(instance, call, slot=True):
                    verify(instance, args, kwargs)
                    return func(instance, *args, **kwargs)

        checked.check_info = (sources, targets, state_name)
        return checked

    return decorate


def transition(
    immediate: Optional[str] = None, target: Optional[str] = None, state_name: str = "state"
) -> Callable:
    """Decorate a method that changes the software state: ``immediate`` while it runs, ``target`` after.

    An exception puts the state into ``'error'`` (message kept in
    ``device[state_name].error``) and propagates; a cancellation
    (``CancelledError``, Ctrl-C) ends in ``target``. The final state is set
    however the method ends, even when Ctrl-C interrupts the announcement
    of ``immediate``.
    """

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        @protected
        def transitioning(instance: Any, *args: Any, **kwargs: Any) -> Any:
            state = instance[state_name]
            with device_call(instance, (func, (instance, *args), kwargs), slot=True):
                final: Optional[str] = target
                error_text = None
                try:
                    if immediate is not None:
                        state._change(immediate)
                    return interruptibly(func, instance, *args, **kwargs)
                except (CancelledError, KeyboardInterrupt):
                    raise
                except BaseException as error:
                    final, error_text = "error", f"{type(error).__name__}: {error}"
                    raise
                finally:
                    if final is not None:
                        state._change(final, error_text)

        return transitioning

    return decorate
