""":class:`TangoDevice`: a Concert device made from a Tango device (its attributes, commands and state).

``TangoDevice('tango://host:port/a/b/c')`` asks the Tango device which
attributes and commands it has and becomes a Concert
:class:`~concert.devices.base.Device` with:

* a **parameter per attribute**, named as the attribute: a
  :class:`~concert.parameters.Quantity` in the attribute's unit when the
  attribute is a number and pint understands its unit string (``mm``,
  ``1/s``, ``degC``); a :class:`~concert.parameters.Selection` of its labels
  when it is a ``DevEnum`` (read and written as the label, ``'FAST'``, sent
  to Tango as the label's index; any other value is refused with
  :class:`~concert.exceptions.WriteAccessError` before the server is asked);
  else a plain :class:`~concert.parameters.Parameter` (no unit, a unit pint
  does not know such as ``steps/s``, strings, booleans, arrays). Read-only
  attributes give read-only parameters, write-only
  ones parameters without a getter; a writable attribute's set point (Tango's
  ``w_value``) is the parameter's target (``device['position'].target``). The
  attribute's ``min_value``/``max_value`` are the quantity's hardware limits, so
  that a value outside them is refused (``HardLimitError``) before the server
  is asked, and so is a value in a wrong unit (``UnitError``). The attribute
  ``State`` is the device state; ``Status`` is a read-only parameter.
* an **``async_`` method per command** (but ``State`` and ``Status``), named
  as the command: ``device.Move(2.5)`` returns a
  :class:`~concert.futures.Future` of the command's result. A command runs
  as a device call (:mod:`concert.operations`): it waits for other owners'
  ``with device:`` blocks and one submitted before ``device.abort()`` does
  not run after it.
* the **state** (``device.state``) read from the Tango state, in Concert's
  words (:data:`STATES`): ``ON`` and ``STANDBY`` are ``'standby'``, ``MOVING``
  is ``'moving'``, ``FAULT`` is ``'error'`` ...
* ``abort()`` runs the command ``Abort`` if the device has one, else ``Stop``,
  else nothing (Tango names ignore case: ``abort`` and ``stop`` count);
  ``emergency_stop()`` then runs ``EmergencyStop`` (or ``emergency_stop``)
  if the device has one.

A device served by ``concert tango serve`` (:mod:`concert.networking.tango_export`)
is recognised by the attributes and commands it has for that
(``ConcertState``, ``ConcertOperation``, ``ConcertWait``, ``ConcertCancel``,
which are not mapped), and driven exactly as if it were local:

* a write, and a command, waits for the operation it started on the
  server until it is over -- ``motor.position = 5 * q.mm`` returns once the
  motor is there -- however long it takes (the Tango call itself returns at
  once and the client asks every few milliseconds, at most every
  :data:`POLL_INTERVAL`); cancelling its future, ``abort()`` or Ctrl-C
  cancels the operation on the server (the motor stops part-way), and the
  future ends cancelled;
* commands take what the method takes, quantities included
  (``motor.move(2 * q.mm)``: arguments travel as text, see
  :func:`~concert.networking.tango.encode_value`), and a future of the
  method's result;
* the state is the served device's Concert state, exactly (``'hard-limit'``);
* the server's errors are raised as the same Concert exceptions, with the
  same messages, naming this device.

Names that would hide what a Concert device has (an attribute or command
called ``abort``, ``lock``, ``state`` ...) or that are taken twice are not
mapped; they are listed in :attr:`TangoDevice.unmapped` and logged, and
stay reachable through :attr:`TangoDevice.proxy`.

Every Tango error becomes a Concert exception keeping Tango's reason and
description (see :mod:`concert.networking.tango`): an unreachable, dead or
hung server a :class:`~concert.exceptions.NetworkingError` within the
device's timeout, an error the device reports a
:class:`~concert.exceptions.TangoError`.

PyTango is imported when the first :class:`TangoDevice` is made, not when
this module is imported.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

from concert.devices.base import Device
from concert.exceptions import ConfigurationError, ReadAccessError, UnitError
from concert.futures import CancelledError, async_, on_cancel
from concert.interrupts import protected
from concert.naming import describe_value
from concert.networking import tango as protocol
from concert.networking.tango import (
    command_inout,
    convert_error,
    decode_value,
    encode_value,
    get_tango_device,
    import_tango,
)
from concert.operations import device_call
from concert.parameters import Parameter, Quantity, Selection
from concert.quantities import q
from concert.states import State

__all__ = ["STATES", "TangoDevice"]

LOG = logging.getLogger(__name__)

#: The Concert state of each Tango state (``tango.DevState`` names).
STATES: Dict[str, str] = {
    "ON": "standby",
    "STANDBY": "standby",
    "OFF": "off",
    "MOVING": "moving",
    "RUNNING": "running",
    "FAULT": "error",
    "ALARM": "alarm",
    "OPEN": "open",
    "CLOSE": "closed",
    "INSERT": "inserted",
    "EXTRACT": "extracted",
    "INIT": "init",
    "DISABLE": "disabled",
    "UNKNOWN": "unknown",
}

#: Tango attributes and commands that are not mapped to parameters or methods of their own name.
_STATE_NAMES = ("State",)
_NOT_COMMANDS = ("State", "Status")

#: What a device served by ``concert tango serve`` has for the protocol (never mapped).
_SERVED_ATTRIBUTES = (protocol.STATE_ATTRIBUTE, protocol.OPERATION_ATTRIBUTE)
_SERVED_COMMANDS = (protocol.WAIT_COMMAND, protocol.CANCEL_COMMAND)

#: Longest pause, in seconds, between two questions whether an operation on a served device is over
#: (the first come sooner: 1 ms, then twice as long each time).
POLL_INTERVAL = 0.02


class TangoDevice(Device):
    """A Concert device made from the Tango device ``uri_or_proxy`` (see the module documentation).

    ``uri_or_proxy`` is a Tango device name (``'a/b/c'``,
    ``'tango://host:port/a/b/c#dbase=no'``) or a ``tango.DeviceProxy``.
    For a name, ``peer`` and ``timeout`` (default 10 s) are passed to
    :func:`~concert.networking.tango.get_tango_device`; a proxy is used
    with its own timeout. ``units`` maps attribute names to the unit to use
    instead of the attribute's unit string (a pint unit or string), or to
    ``None`` for a plain parameter: for unit strings pint reads differently
    than meant (``C`` is coulomb to pint; ``a.u.`` a year times an atomic
    mass unit).

    Reads, writes and commands are blocking calls on the proxy in the
    calling thread (or in the pool, for futures); every one is bounded by
    the device's Tango timeout. The proxy is shared by all threads using the
    device (Tango's client library allows this); the device holds no other
    state that changes after construction.

    :raises ConfigurationError: PyTango is missing, the name is not one
        Tango understands, ``units`` names an attribute the device does not
        have or a unit that is not one.
    :raises NetworkingError: the device cannot be reached within the timeout.
    """

    state = State(help="the Tango state of the device, in Concert's words (see STATES)")

    def __init__(
        self,
        uri_or_proxy: Any,
        peer: Optional[str] = None,
        timeout: Any = 10 * q.s,
        units: Optional[Mapping[str, Any]] = None,
    ) -> None:
        tango = import_tango()
        if isinstance(uri_or_proxy, tango.DeviceProxy):
            if peer is not None:
                raise ConfigurationError(
                    f"TangoDevice({uri_or_proxy!r}, peer={peer!r}): a peer applies to a device name, "
                    "not to a proxy"
                )
            proxy = uri_or_proxy
        elif isinstance(uri_or_proxy, str):
            proxy = get_tango_device(uri_or_proxy, peer=peer, timeout=timeout)
        else:
            raise ConfigurationError(
                f"TangoDevice({describe_value(uri_or_proxy)}): "
                "give a Tango device name or a tango.DeviceProxy"
            )
        self._tango = tango
        self._proxy = proxy
        self._tango_name = _proxy_name(proxy, uri_or_proxy)
        self._commands: Dict[str, Any] = {}
        self._served = False  # a device served by `concert tango serve` (see the module documentation)
        #: Names of Tango attributes and commands not mapped (see the module documentation).
        self.unmapped: List[str] = []
        super().__init__()
        try:
            attributes = proxy.attribute_list_query_ex()
            commands = proxy.command_list_query()
        except tango.DevFailed as error:
            raise convert_error(error, f"{self!r}: asking for its attributes and commands") from None
        # Every command's tango.CommandInfo by name, the ones not mapped too (see command_inout).
        self._command_info: Dict[str, Any] = {info.cmd_name: info for info in commands}
        self._served = set(_SERVED_ATTRIBUTES) <= {info.name for info in attributes} and set(
            _SERVED_COMMANDS
        ) <= {info.cmd_name for info in commands}
        if self._served:
            attributes = [info for info in attributes if info.name not in _SERVED_ATTRIBUTES]
            commands = [info for info in commands if info.cmd_name not in _SERVED_COMMANDS]
        overrides = dict(units or {})
        known = {info.name for info in attributes}
        missing = sorted(set(overrides) - known)
        if missing:
            raise ConfigurationError(
                f"{self!r}: units={overrides!r} names attributes the device does not have: "
                f"{', '.join(missing)} (it has: {', '.join(sorted(known))})"
            )
        parameters: Dict[str, Parameter] = {}
        for info in attributes:
            if info.name in _STATE_NAMES:
                continue
            if not self._free(info.name, parameters):
                continue
            parameters[info.name] = self._parameter(info, overrides)
        self.install_parameters(parameters)
        for info in commands:
            name = info.cmd_name
            if name in _NOT_COMMANDS:
                continue
            self._commands[name] = info
            if not self._free(name, parameters):
                continue
            # On the instance's own class (install_parameters made one), so that futures and
            # messages name the call as for any device method: TangoDevice#1(a/b/c).Move(+4).
            setattr(type(self), name, self._command(name, info))
        for name in self.unmapped:
            if self._served and name in ("abort", "emergency_stop"):
                continue  # what abort() and emergency_stop() run
            LOG.warning("%r: the Tango name %r is not mapped (it is taken); use .proxy", self, name)

    # -- description -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"{super().__repr__()}({getattr(self, '_tango_name', '?')})"

    @property
    def proxy(self) -> Any:
        """The ``tango.DeviceProxy`` this device talks through."""
        return self._proxy

    @property
    def tango_name(self) -> str:
        """The Tango device's name (``a/b/c``), as messages show it: ``TangoDevice#1(a/b/c)``."""
        return self._tango_name

    @property
    def commands(self) -> List[str]:
        """The names of the Tango commands mapped to methods or not (but ``State`` and ``Status``)."""
        return sorted(self._commands)

    @property
    def served(self) -> bool:
        """Whether the Tango device is a Concert device served by ``concert tango serve``."""
        return self._served

    def _free(self, name: str, taken: Mapping[str, Any]) -> bool:
        if name.isidentifier() and not name.startswith("_") and name not in taken:
            if name not in self.__dict__ and not hasattr(type(self), name) and name not in self:
                return True
        self.unmapped.append(name)
        return False

    # -- attributes ----------------------------------------------------------------------------

    def _parameter(self, info: Any, overrides: Mapping[str, Any]) -> Parameter:
        tango = self._tango
        name = info.name
        readable = info.writable != tango.AttrWriteType.WRITE
        writable = info.writable in (tango.AttrWriteType.WRITE, tango.AttrWriteType.READ_WRITE)
        help = None if info.description in ("", "No description") else info.description
        scalar = info.data_format == tango.AttrDataFormat.SCALAR
        enumerated = scalar and info.data_type == tango.CmdArgType.DevEnum and bool(info.enum_labels)
        numeric = (
            scalar
            and not enumerated
            and tango.utils.is_numerical_type(info.data_type)
            and not (tango.utils.is_bool_type(info.data_type))
        )
        integer = numeric and tango.utils.is_int_type(info.data_type)
        if enumerated and name not in overrides:
            # A Selection of the labels: read and written as 'FAST', sent to Tango as its index.
            labels = tuple(str(label) for label in info.enum_labels)
            return Selection(
                labels,
                fget=(lambda device: device._label_of(labels, device._read(name).value, name))
                if readable
                else None,
                fset=(lambda device, label: device._write_raw(info, labels.index(label), label))
                if writable
                else None,
                fget_target=(lambda device: device._label_of(labels, device._read(name).w_value, name))
                if readable and writable
                else None,
                help=help,
            )
        if name in overrides:
            unit = overrides[name]
            if unit is not None:
                unit = _unit(unit)
                if unit is None:
                    raise ConfigurationError(f"{self!r}: units[{name!r}]={overrides[name]!r} is not a unit")
                if not numeric:
                    raise ConfigurationError(
                        f"{self!r}: units[{name!r}]={overrides[name]!r}: the attribute is not one number "
                        f"(Tango type {info.data_type}, format {info.data_format}); it cannot have a unit"
                    )
        else:
            unit = _unit(info.unit) if numeric and info.unit.strip() else None
        if unit is None or not numeric:
            return Parameter(
                fget=(lambda device: device._read(name).value) if readable else None,
                fset=(lambda device, value: device._write_plain(info, value)) if writable else None,
                fget_target=(lambda device: device._read(name).w_value) if readable and writable else None,
                help=help,
            )
        lower, upper = _limit(info.min_value, unit), _limit(info.max_value, unit)
        return Quantity(
            unit,
            fget=(lambda device: q.Quantity(device._read(name).value, unit)) if readable else None,
            fset=(lambda device, value: device._write(info, value, integer)) if writable else None,
            fget_target=(
                (lambda device: q.Quantity(device._read(name).w_value, unit))
                if readable and writable
                else None
            ),
            external_lower_getter=None if lower is None else (lambda device: lower),
            external_upper_getter=None if upper is None else (lambda device: upper),
            help=help,
        )

    def _read(self, name: str) -> Any:
        try:
            reply = self._proxy.read_attribute(name)
        except self._tango.DevFailed as error:
            raise convert_error(error, f"{self!r}: reading {name}", repr(self)) from None
        if reply.value is None:
            raise ReadAccessError(
                f"{self!r}['{name}'] has no value now: Tango reports its quality {reply.quality}"
            )
        return reply

    def _label_of(self, labels: tuple, index: Any, name: str) -> str:
        try:
            return labels[int(index)]
        except (IndexError, TypeError, ValueError):
            raise ReadAccessError(
                f"{self!r}['{name}'] reads {index!r}, which is none of its labels {', '.join(labels)}"
            ) from None

    # A write names the attribute by its AttributeInfoEx: given a name, PyTango asks the server for
    # the attribute's configuration first, a second network round trip on every write.

    def _write(self, info: Any, value: Any, integer: bool) -> None:
        magnitude = float(value.magnitude)  # the Quantity checked unit, limits and finiteness
        if integer:
            if not magnitude.is_integer():
                raise ConfigurationError(
                    f"{self!r}.{info.name} = {describe_value(value)}: the Tango attribute takes whole numbers"
                )
            magnitude = int(magnitude)
        self._write_raw(info, magnitude, value)

    def _write_plain(self, info: Any, value: Any) -> None:
        if isinstance(value, q.Quantity):
            raise UnitError(
                f"{self!r}.{info.name} = {describe_value(value)}: the attribute has no unit Concert knows; "
                "give a plain value (or a unit with TangoDevice(..., units={...}))"
            )
        self._write_raw(info, value, value)

    def _write_raw(self, info: Any, raw: Any, value: Any) -> None:
        def describe() -> str:
            return f"{self!r}.{info.name} = {describe_value(value)}"

        if self._served:
            proxy, wanted = self._proxy, [protocol.OPERATION_ATTRIBUTE]
            self._operation(lambda: proxy.write_read_attributes([(info, raw)], wanted)[0].value, describe)
            return
        try:
            self._proxy.write_attribute(info, raw)
        except self._tango.DevFailed as error:
            raise convert_error(error, describe(), repr(self)) from None
        except (TypeError, ValueError) as error:  # PyTango refuses a value of the wrong type
            raise ConfigurationError(f"{describe()}: {error}") from None

    # -- commands --------------------------------------------------------------------------

    def _command(self, name: str, info: Any) -> Callable:
        takes_input = info.in_type != self._tango.CmdArgType.DevVoid

        def run(device: TangoDevice, *args: Any) -> Any:
            def describe() -> str:
                return f"{device!r}.{name}({', '.join(describe_value(arg) for arg in args)})"

            if device._served:
                sent = device._encoded(args, info, describe)
            else:
                if len(args) != (1 if takes_input else 0):
                    wanted = f"one argument ({info.in_type})" if takes_input else "no argument"
                    raise ConfigurationError(f"{describe()}: the Tango command takes {wanted}")
                if any(isinstance(arg, q.Quantity) for arg in args):
                    raise UnitError(f"{describe()}: Tango commands take plain values, not quantities")
                sent = args
            with device_call(device, describe):
                return device._execute(name, sent, describe)

        run.__name__ = name
        run.__qualname__ = f"{type(self).__name__}.{name}"
        run.__doc__ = (
            f"Run the Tango command {name} ({info.in_type} -> {info.out_type}); "
            "return a Future of its result."
        )
        return async_(run)

    def _execute(self, name: str, args: tuple, describe: Callable[[], str]) -> Any:
        if self._served:
            proxy, info = self._proxy, self._command_info[name]
            replies: List[Any] = []

            def start() -> int:
                numbers, texts = command_inout(proxy, info, *args)
                replies.append(texts[0] if texts else "None")
                return int(numbers[0])

            text = self._operation(start, describe)
            return decode_value(replies[0] if text is None else text)
        try:
            return command_inout(self._proxy, self._command_info[name], *args)
        except self._tango.DevFailed as error:
            raise convert_error(error, describe(), repr(self)) from None
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"{describe()}: {error}") from None

    def _encoded(self, args: tuple, info: Any, describe: Callable[[], str]) -> tuple:
        """The arguments of a served device's command as it takes them: none, one text or a list of texts."""
        types = self._tango.CmdArgType
        try:
            texts = [encode_value(arg) for arg in args]
        except ConfigurationError as error:
            raise ConfigurationError(f"{describe()}: {error}") from None
        if info.in_type == types.DevVoid:
            if texts:
                raise ConfigurationError(f"{describe()}: the command takes no argument")
            return ()
        if info.in_type == types.DevString:
            if len(texts) != 1:
                raise ConfigurationError(f"{describe()}: the command takes one argument, not {len(texts)}")
            return (texts[0],)
        return (texts,)

    # -- operations on a served device ------------------------------------------------------

    def _operation(self, start: Callable[[], int], describe: Callable[[], str]) -> Optional[str]:
        """Make the call ``start`` and wait for the operation it leaves running on the server.

        ``start`` returns the operation's number (0: it is over already).
        Cancelling the calling operation (or Ctrl-C) cancels the server's.
        Returns the result as text of an operation that ran on after the
        call, ``None`` if there was none. Raises the server's errors as
        Concert exceptions (:func:`~concert.networking.tango.convert_error`).
        """
        remote = _Remote(self)
        with on_cancel(remote.stop):
            try:
                number = remote.start(start)
            except self._tango.DevFailed as error:
                raise convert_error(error, describe(), repr(self)) from None
            except (TypeError, ValueError) as error:  # PyTango refuses a value of the wrong type
                raise ConfigurationError(f"{describe()}: {error}") from None
            if not number:
                return None
            pause, wait = 0.001, self._command_info[protocol.WAIT_COMMAND]
            while True:
                try:
                    over, texts = command_inout(self._proxy, wait, number)
                except self._tango.DevFailed as error:
                    raise convert_error(error, describe(), repr(self)) from None
                if over[0]:
                    return texts[0] if texts else "None"
                time.sleep(pause)
                pause = min(2 * pause, POLL_INTERVAL)

    def _cancel_remote(self, number: int) -> None:
        """Cancel operation ``number`` on the server; return once it stopped."""
        try:
            command_inout(
                self._proxy,
                self._command_info[protocol.CANCEL_COMMAND],
                ([number], ["a Tango client's cancel request"]),
            )
        except self._tango.DevFailed as error:
            raise convert_error(error, f"{self!r}: cancelling operation {number}", repr(self)) from None

    # -- state and stopping -------------------------------------------------------------------

    def _get_state(self) -> str:
        try:
            if self._served:
                state = self._proxy.read_attribute(protocol.STATE_ATTRIBUTE).value
                if state:
                    return str(state)
            state = self._proxy.state()
        except self._tango.DevFailed as error:
            raise convert_error(error, f"{self!r}: reading the state", repr(self)) from None
        return STATES.get(state.name, state.name.lower())

    def _named(self, *names: str) -> Optional[str]:
        """The first of the Tango commands ``names`` the device has (Tango names ignore case)."""
        have = {name.lower(): name for name in self._commands}
        for name in names:
            if name.lower() in have:
                return have[name.lower()]
        return None

    def _abort(self) -> None:
        name = self._named("Abort", "Stop")
        if name is not None:
            self._execute(name, (), lambda: f"{self!r}.abort() (Tango command {name})")

    def _emergency_stop(self) -> None:
        name = self._named("EmergencyStop", "emergency_stop")
        if name is not None:
            self._execute(name, (), lambda: f"{self!r}.emergency_stop() (Tango command {name})")


class _Remote:
    """The operation a call on a served device started on the server, and the stop action of the call.

    :meth:`stop` may run in any thread at any time (a ``cancel()``, Ctrl-C):
    before the server said which operation it started, it notes the stop
    for :meth:`start` to send. ``_number`` and ``_stop_wanted`` are guarded by ``_lock``.
    """

    def __init__(self, device: TangoDevice) -> None:
        self._device = device
        self._lock = threading.Lock()
        self._number = 0
        self._stop_wanted = False

    @protected  # the call and noting what it started are one step for Ctrl-C
    def start(self, call: Callable[[], int]) -> int:
        number = int(call() or 0)
        with self._lock:
            self._number = number
            wanted = self._stop_wanted
        if number and wanted:
            self._device._cancel_remote(number)
            raise CancelledError(f"{self._device!r}: stopped while starting operation {number}")
        return number

    def stop(self) -> None:
        with self._lock:
            self._stop_wanted = True
            number = self._number
        if number:
            self._device._cancel_remote(number)


def _proxy_name(proxy: Any, given: Any) -> str:
    try:
        return str(proxy.dev_name())  # a/b/c, without host and options: short enough for messages
    except Exception:  # whatever the proxy raises, a name is only for messages
        return given if isinstance(given, str) else "?"


def _unit(text: Any) -> Any:
    """The pint unit ``text`` names, or ``None`` if pint does not understand it."""
    if isinstance(text, q.Unit):
        return text
    if isinstance(text, q.Quantity):
        return text.units
    try:
        return q.Unit(str(text).strip())
    except Exception:  # pint raises several kinds of errors for what it cannot parse
        return None


def _limit(text: str, unit: Any) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):  # 'Not specified'
        return None
    return q.Quantity(value, unit) if math.isfinite(value) else None
