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
  it changes only through methods. A device's ``_get_state()`` (or
  ``_get_<state_name>()``) overrides the software state when reading it.
* :func:`check` raises :class:`~concert.exceptions.StateError` *before* the
  method does anything when the state is not one of ``source``. Checked
  methods of one state machine run one at a time, so the check and what the
  method does are atomic: a call made while another runs fails at once if
  the state is already wrong, and otherwise waits for it and is checked
  again -- of two concurrent ``open()`` calls, the second finds the shutter open.
* In :func:`transition`, an exception puts the device into ``'error'`` and
  keeps its message in ``device[state_name].error``; a cancellation
  (``CancelledError``, Ctrl-C) ends in ``target`` as a normal return does.
  Leaving ``'error'`` takes a method whose ``source`` allows it, e.g. ``reset()``.
* Every change of the software state sends ``dispatcher.send(device, new_state)``.
* Both decorators run the method as an operation on the device's exclusive
  lock (:mod:`concert.locking`): it waits for other owners' ``with device:``
  blocks. They are fenced (:mod:`concert.fences`): a call queued before
  :meth:`~concert.devices.base.Device.abort` does not run after it, and one
  that was running ends with ``CancelledError``, its future cancelled.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

from concert import fences
from concert.dispatcher import dispatcher
from concert.exceptions import StateError, WriteAccessError
from concert.locking import operation
from concert.parameters import Parameter, ParameterValue

__all__ = ["State", "StateValue", "check", "transition"]

States = Union[str, Sequence[str]]


class State(Parameter):
    """A finite-state-machine parameter (read-only from outside, see the module documentation)."""

    def __init__(
        self,
        default: Optional[str] = None,
        fget: Optional[Callable] = None,
        fset: Optional[Callable] = None,
        data: Any = None,
        check: Optional[Callable] = None,
        help: Optional[str] = None,
    ) -> None:
        super().__init__(fget=fget, data=data, check=check, help=help)
        self.default = default

    def __set__(self, instance: Any, value: Any) -> None:
        instance._parameter_values[self.name].write(value)


class StateValue(ParameterValue):
    """The value side of a :class:`State`; :attr:`error` keeps the last error message.

    Device implementations change the software state outside :func:`transition`
    with :meth:`_change` -- an emergency stop, say, which must not wait for
    anything. Users cannot change it.
    """

    _parameter: State

    def __init__(self, instance: Any, parameter: State) -> None:
        self._software = parameter.default
        #: The message of the exception that put the device into ``'error'``, else ``None``.
        self.error: Optional[str] = None
        super().__init__(instance, parameter)
        if self._getter is None:
            self._getter = self._read_software

    def _read_software(self) -> Optional[str]:
        return self._software

    @property
    def writable(self) -> bool:
        return False

    def write(self, value: Any) -> None:
        raise WriteAccessError(
            f"{self._label} cannot be set (to {value!r}): states change only through the device's methods"
        )

    def _change(self, state: str, error: Optional[str] = None) -> None:
        """Set the software state (from :func:`transition`) and announce it."""
        self._software = state
        self.error = error
        dispatcher.send(self._instance, state)


State.value_class = StateValue


def _as_states(states: States) -> Tuple[str, ...]:
    return (states,) if isinstance(states, str) else tuple(states)


@contextmanager
def _device_operation(instance: Any, what: str) -> Iterator[None]:
    """Run the body as an operation on ``instance``'s exclusive lock, if it has one.

    Fenced (see :mod:`concert.fences`): if the device is aborted while this
    waits for the lock, it does not run.
    """
    lock = getattr(instance, "_exclusive", None)
    if lock is None:
        yield
        return
    with fences.fence(instance, what), operation((lock,)):
        fences.check(instance)
        yield


def _state_lock(instance: Any, state_name: str) -> threading.RLock:
    """The lock that makes checked methods of one state machine run one at a time.

    Taken after the device operation (so it never waits while holding what a
    ``with device:`` block needs); created on first use, race-free through
    ``dict.setdefault``.
    """
    locks = instance.__dict__.get("_concert_state_locks")
    if locks is None:
        locks = instance.__dict__.setdefault("_concert_state_locks", {})
    lock = locks.get(state_name)
    if lock is None:
        lock = locks.setdefault(state_name, threading.RLock())
    return lock


def _call_text(func: Callable, args: tuple, kwargs: dict) -> str:
    shown = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    return f"{func.__name__}({', '.join(shown)})"


def check(source: States = "*", target: States = "*", state_name: str = "state") -> Callable:
    """Decorate a method so that it runs only when the device is in one of ``source``.

    ``'*'`` allows every state. ``target`` documents the states the method
    leaves the device in (kept in the method's ``check_info``).

    :raises StateError: before the method runs, naming the device, the call and the state.
    """
    sources, targets = _as_states(source), _as_states(target)

    def decorate(func: Callable) -> Callable:
        def verify(instance: Any, args: tuple, kwargs: dict) -> None:
            if "*" in sources:
                return
            state = instance[state_name].read()
            if state not in sources:
                raise StateError(
                    state,
                    f"{instance!r}: {_call_text(func, args, kwargs)} is not allowed in "
                    f"{state_name} {state!r} (only in {', '.join(map(repr, sources))})",
                )

        @functools.wraps(func)
        def checked(instance: Any, *args: Any, **kwargs: Any) -> Any:
            with _device_operation(instance, f"{func.__name__}()"):
                lock = _state_lock(instance, state_name)
                if not lock.acquire(blocking=False):
                    verify(instance, args, kwargs)  # fail fast while the other call runs
                    lock.acquire()
                try:
                    fences.check(instance)  # aborted while waiting for the other call
                    verify(instance, args, kwargs)
                    return func(instance, *args, **kwargs)
                finally:
                    lock.release()

        checked.check_info = (sources, targets, state_name)
        return checked

    return decorate


def transition(
    immediate: Optional[str] = None, target: Optional[str] = None, state_name: str = "state"
) -> Callable:
    """Decorate a method that changes the software state: ``immediate`` while it runs, ``target`` after.

    An exception puts the state into ``'error'`` (message kept in
    ``device[state_name].error``) and propagates; a cancellation ends in
    ``target``.
    """

    def decorate(func: Callable) -> Callable:
        @functools.wraps(func)
        def transitioning(instance: Any, *args: Any, **kwargs: Any) -> Any:
            state = instance[state_name]
            with _device_operation(instance, f"{func.__name__}()"):
                if immediate is not None:
                    state._change(immediate)
                try:
                    result = func(instance, *args, **kwargs)
                except (CancelledError, KeyboardInterrupt):
                    if target is not None:
                        state._change(target)
                    raise
                except BaseException as error:
                    state._change("error", f"{type(error).__name__}: {error}")
                    raise
                if fences.aborted(instance):
                    # Aborted while it ran: whatever it started after the stop is stopped
                    # again, and the state is left to the abort unless still `immediate`.
                    instance._abort()
                    if immediate is not None and state._software == immediate and target is not None:
                        state._change(target)
                    fences.check(instance)
                if target is not None:
                    state._change(target)
                return result

        return transitioning

    return decorate
