"""The Tango client: :func:`get_tango_device`, and Tango errors turned into Concert exceptions.

Tango is the distributed control system beamlines run on; PyTango is its
Python binding. This module imports PyTango only when a device is first
asked for, so that Concert works without it; without it,
:func:`get_tango_device` raises :class:`~concert.exceptions.ConfigurationError`
saying how to install it (``pip install 'concert[tango]'``).

Every Tango failure (a ``tango.DevFailed``) that goes through this module
becomes a Concert exception by :func:`convert_error`:

* the device cannot be reached -- no server at that address, the server
  died, the call timed out, the device is not exported --:
  :class:`~concert.exceptions.NetworkingError`;
* the device answered with an error -- a command that raised, a value the
  device refuses --: :class:`~concert.exceptions.TangoError` (see there);
* a device name Tango cannot parse: :class:`~concert.exceptions.ConfigurationError`;
* an error a device served by ``concert tango serve``
  (:mod:`concert.networking.tango_export`) raised: the same Concert exception
  (of the same class -- :class:`~concert.exceptions.SoftLimitError`,
  :class:`~concert.exceptions.StateError` ... -- or
  :class:`~concurrent.futures.CancelledError`) with the same message. Such
  a device sends the exception's class name as Tango's reason, its message
  as the description and ``concert:<the device's name>`` as the origin
  (:data:`ORIGIN`); the message names the client's device instead of the
  served one when the caller says how the client calls it (``rename``).

Each such exception keeps what Tango said as attributes: ``reason`` and
``description`` (and ``origin``) of the error that started it all (the first
of Tango's error stack), and ``errors``, the whole stack as
``(reason, description, origin)`` tuples; the message names what was being
done and shows the reason and description.
"""

from __future__ import annotations

import ast
import concurrent.futures
import importlib
import math
import numbers
import re
import threading
from types import ModuleType
from typing import Any, Optional, Tuple

from concert import exceptions
from concert.exceptions import ConcertError, ConfigurationError, NetworkingError, StateError, TangoError
from concert.quantities import q
from concert.timeouts import to_seconds

__all__ = [
    "command_inout",
    "convert_error",
    "decode_value",
    "encode_value",
    "get_tango_device",
    "import_tango",
]

# -- what a device served by `concert tango serve` has besides its own attributes and commands ------------
# (the server side is concert.networking.tango_export, the client side concert.devices.tango)

#: Origin prefix of the Tango errors a served device raises: ``concert:LinearMotor#1``.
ORIGIN = "concert:"
#: Reason of the extra error that carries a :class:`~concert.exceptions.StateError`'s ``error_state``.
ERROR_STATE = "concert:error_state"
#: Read-only string attribute: the device's Concert state, exactly (``'hard-limit'``, ``'recording'``).
STATE_ATTRIBUTE = "ConcertState"
#: Read-only integer attribute: the number of the operation this connection's last write left running
#: on the server (0: the write was over when it returned); read with the write (``write_read_attributes``).
OPERATION_ATTRIBUTE = "ConcertOperation"
#: Command ``(number) -> ([done], [result])``: whether that operation is over, and its result as text
#: (:func:`encode_value`); raises the operation's error once it failed.
WAIT_COMMAND = "ConcertWait"
#: Command ``([number], [reason])``: cancel that operation, as ``Future.cancel()`` does there; returns
#: once it stopped.
CANCEL_COMMAND = "ConcertCancel"


#: Reasons (anywhere in Tango's error stack) that mean the device could not be reached or did not answer.
_UNREACHABLE = frozenset(
    {
        "API_CantConnectToDevice",
        "API_CantConnectToDatabase",
        "API_CommunicationFailed",
        "API_CorbaException",
        "API_CorbaSysException",
        "API_DeviceNotExported",
        "API_DeviceNotDefined",
        "API_DeviceTimedOut",
        "API_ServerNotRunning",
        "API_ConnectionFailed",
    }
)

_tango: Optional[ModuleType] = None
_tango_lock = threading.Lock()  # guards the one import of pytango into _tango


def import_tango() -> ModuleType:
    """Import PyTango and return the ``tango`` module (once; later calls return it at once).

    :raises ConfigurationError: if PyTango is not installed, saying to
        ``pip install 'concert[tango]'``.
    """
    global _tango
    if _tango is None:
        with _tango_lock:
            if _tango is None:
                try:
                    _tango = importlib.import_module("tango")
                except ImportError as error:
                    raise ConfigurationError(
                        "Tango devices need PyTango, which is not installed "
                        f"({error}); install it with: pip install 'concert[tango]'"
                    ) from None
    return _tango


def get_tango_device(uri: str, peer: Optional[str] = None, timeout: Any = 10 * q.s) -> Any:
    """Return a ``tango.DeviceProxy`` for the Tango device ``uri``, its timeout set to ``timeout``.

    ``uri`` is what Tango accepts: a device name ``domain/family/member``
    (looked up in the database of ``TANGO_HOST``), or a full name
    ``tango://host:port/domain/family/member`` (``#dbase=no`` for a server
    running without a database). ``peer`` (``'host:port'``) names the Tango
    database to ask instead of ``TANGO_HOST``: the device is then
    ``tango://peer/uri``. ``timeout`` (a time quantity or seconds, default
    10 s) is how long every call on the device may take; it is applied with
    ``set_timeout_millis`` (in whole milliseconds, at least 1).

    Making the proxy does not contact the device (Tango connects on first
    use), so a device that cannot be reached is reported by the first call
    on it, as :class:`~concert.exceptions.NetworkingError`.

    :raises ConfigurationError: PyTango is missing, ``uri`` or ``peer`` is
        not a device name Tango understands, ``peer`` is given with a ``uri``
        that names its host already, or ``timeout`` is not longer than zero.
    :raises UnitError: ``timeout`` is not a duration.
    :raises NetworkingError: the database of ``peer`` or ``TANGO_HOST`` cannot be reached.
    """
    seconds = to_seconds(timeout, "timeout")
    if not 0 < seconds < math.inf:
        raise ConfigurationError(
            f"get_tango_device({uri!r}): timeout={timeout!r} must be a duration longer than zero and finite"
        )
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigurationError(f"get_tango_device({uri!r}): the device name must be a non-empty string")
    full = uri
    if peer is not None:
        if not isinstance(peer, str) or not peer.strip() or "/" in peer:
            raise ConfigurationError(
                f"get_tango_device({uri!r}, peer={peer!r}): peer must be 'host:port' of a Tango database"
            )
        if "://" in uri:
            raise ConfigurationError(
                f"get_tango_device({uri!r}, peer={peer!r}): the device name names its host already; "
                "give either a full tango:// name or a peer"
            )
        full = f"tango://{peer}/{uri}"
    tango = import_tango()
    try:
        proxy = tango.DeviceProxy(full)
    except tango.DevFailed as error:
        raise convert_error(error, f"get_tango_device({full!r})") from None
    proxy.set_timeout_millis(max(1, round(seconds * 1000)))
    return proxy


def command_inout(proxy: Any, info: Any, *args: Any) -> Any:
    """Run the command ``info`` (a ``tango.CommandInfo`` of ``proxy``'s device) with ``args``; its result.

    ``args`` is empty or one argument, which is packed in the command's input
    type as ``info`` gives it (a ``tango.DeviceData``): given a bare value,
    PyTango's ``command_inout`` asks the server for that type first, a
    second network round trip on every call. Runs in the calling thread.

    :raises TypeError: the argument does not convert to the command's input
        type (the message names the command, the value and the type).
    :raises tango.DevFailed: as ``DeviceProxy.command_inout``.
    """
    if not args:
        return proxy.command_inout(info.cmd_name)
    (argument,) = args
    data = import_tango().DeviceData()
    try:
        data.insert(info.in_type, argument)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"the command {info.cmd_name} takes {info.in_type}; {argument!r} does not convert to it ({error})"
        ) from None
    return proxy.command_inout(info.cmd_name, data)


def tango_errors(error: BaseException) -> Tuple[Tuple[str, str, str], ...]:
    """Tango's error stack of a ``DevFailed`` as ``(reason, description, origin)`` tuples, first first."""
    stack = []
    for item in getattr(error, "args", ()):
        reason = getattr(item, "reason", None)
        if reason is None:
            continue
        stack.append((str(reason), str(getattr(item, "desc", "")), str(getattr(item, "origin", ""))))
    return tuple(stack)


def convert_error(error: BaseException, doing: str, rename: Optional[str] = None) -> Exception:
    """The Concert exception for the Tango ``error`` raised while ``doing`` (see the module documentation).

    ``doing`` names the device and the operation in user terms
    (``"TangoDevice#1 (a/b/c).Fail()"``); the message is
    ``"<doing>: <reason>: <description>"`` of the first error of Tango's
    stack, followed by the reasons of the others and the description of
    the last (the client's own, e.g. the timeout it waited). Returns the exception;
    the caller raises it (``raise convert_error(error, ...) from None``).

    An error a served Concert device raised (origin ``concert:NAME``, reason
    the name of a Concert exception class or ``CancelledError``) becomes that
    exception, its message the description, in which ``rename`` (the
    client's name for the device, e.g. ``TangoDevice#1(a/b/c)``) replaces
    ``NAME`` when given.
    """
    tango = import_tango()
    stack = tango_errors(error) or (("", str(error), ""),)
    reason, description, _ = stack[0]
    reasons = {item[0] for item in stack}
    served = _served_error(stack, rename)
    if served is not None:
        return served
    if isinstance(error, tango.WrongNameSyntax):
        cls: type = ConfigurationError
    elif isinstance(error, (tango.ConnectionFailed, tango.CommunicationFailed)) or reasons & _UNREACHABLE:
        cls = NetworkingError
    else:
        cls = TangoError
    message = f"{doing}: {_said(reason, description)}"
    if len(stack) > 1:  # the reasons in between, and what the last layer (the client's) said
        then = [item[0] for item in stack[1:-1]] + [_said(*stack[-1][:2])]
        message += " (then: " + "; ".join(then) + ")"
    return _carrying(cls(message), stack)


def _carrying(converted: Exception, stack: Tuple[Tuple[str, str, str], ...]) -> Exception:
    """``converted`` with Tango's first error (``reason``, ``description``, ``origin``) and ``errors``."""
    converted.reason, converted.description, converted.origin = stack[0]  # type: ignore[attr-defined]
    converted.errors = stack  # type: ignore[attr-defined]
    return converted


def _said(reason: str, description: str) -> str:
    text = " ".join(description.split())  # one line: Tango's descriptions may span several
    return f"{reason}: {text}" if reason else text


def _served_error(stack: Tuple[Tuple[str, str, str], ...], rename: Optional[str]) -> Optional[Exception]:
    """The exception a served Concert device raised, rebuilt; ``None`` if the error is not one."""
    reason, description, origin = stack[0]
    if not origin.startswith(ORIGIN):
        return None
    if reason == "CancelledError":
        cls: type = concurrent.futures.CancelledError
    else:
        cls = getattr(exceptions, reason, None)
        if not (isinstance(cls, type) and issubclass(cls, ConcertError) and reason in exceptions.__all__):
            return None
    message = description
    served = origin[len(ORIGIN) :]
    if rename is not None and served:
        message = re.sub(re.escape(served) + r"(?![0-9])", lambda match: rename, message)
    if cls is StateError:
        states = [item[1] for item in stack[1:] if item[0] == ERROR_STATE]
        converted: Exception = StateError(states[0] if states else "", message)
    else:
        converted = cls(message)
    return _carrying(converted, stack)


# -- values as text: arguments and results of the commands of a served device ------------------------------


def encode_value(value: Any) -> str:
    """``value`` as the text a served device's command takes or returns: ``'5.0 millimeter'``, ``"'AUTO'"``.

    A quantity is its number and pint's name of its unit (``2.5 millimeter /
    second``); an enum member its name, quoted; anything else that Python
    writes as a literal and reads back equal (numbers, strings, ``True``,
    ``None``, tuples and lists of them) its ``repr``. :func:`decode_value`
    reads all of them back.

    :raises ConfigurationError: for any other value (an array, an image, a device).
    """
    import enum

    if isinstance(value, q.Quantity):
        magnitude = value.magnitude
        if isinstance(magnitude, numbers.Real) and not isinstance(magnitude, bool):
            number = magnitude if type(magnitude) in (int, float) else float(magnitude)
            return f"{number!r} {value.units}"
    elif isinstance(value, enum.Enum):
        return repr(value.name)
    elif not isinstance(value, (bytes, bytearray)):
        text = repr(value)
        try:
            if ast.literal_eval(text) == value:
                return text
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    raise ConfigurationError(f"{_shown(value)} cannot travel to or from a Tango command as text")


def decode_value(text: str) -> Any:
    """The value ``text`` stands for: a literal, else ``NUMBER UNIT`` or a pint expression, else the text.

    ``'5'`` is 5, ``"'AUTO'"`` the string ``AUTO``, ``'5 mm'`` and ``'5.0
    millimeter'`` 5 mm, ``'20 degC'`` 20 °C; a text that is none of them is
    taken as a string (``AUTO``), so a Tango tool may leave the quotes out --
    but then ``m`` is a metre, not the letter.
    """
    stripped = text.strip()
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    head, _, tail = stripped.partition(" ")
    try:
        number = ast.literal_eval(head)
        if isinstance(number, numbers.Real) and not isinstance(number, bool) and tail.strip():
            return q.Quantity(number, q.Unit(tail.strip()))
    except Exception:  # not NUMBER UNIT: pint raises several kinds of errors
        pass
    try:
        parsed = q.Quantity(stripped)
        if not parsed.dimensionless:
            return parsed
    except Exception:  # not a pint expression either: the text itself
        pass
    return text


def _shown(value: Any) -> str:
    from concert.naming import describe_value

    return describe_value(value)
