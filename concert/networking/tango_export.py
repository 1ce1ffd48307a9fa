"""Serving a Concert device as a Tango device: :func:`export` builds the PyTango class, :func:`serve` runs it.

``concert tango serve MODULE:FACTORY --name a/b/c --port N``
(:mod:`concert.networking.tango_command`) makes a device and calls
:func:`serve`, which runs a Tango device server without a database
(:func:`concert.networking.tango_server.run_server`) exporting it as the
Tango device ``a/b/c``. A Concert session elsewhere drives it with
:class:`~concert.devices.tango.TangoDevice` as if it were local; any other
Tango client (jive, a script with PyTango) sees an ordinary Tango device.

What becomes what:

* **Parameters → attributes** of the same name. A
  :class:`~concert.parameters.Quantity` is a ``DevDouble`` in the
  parameter's unit, its unit string as pint prints it (``mm``, ``mm / s``,
  ``1 / s``; pint's long name where the short one does not read back as
  the same unit), so that ``TangoDevice`` maps it back to that unit. Its
  *hardware* limits (``external_lower_getter``/``external_upper_getter``)
  are the attribute's ``min_value``/``max_value`` when they are fixed:
  when computing them reads none of the device's parameters (a motor's
  travel range is fixed; the room left for a camera's region of interest
  is not) -- they are computed once, when the device is exported. Soft
  limits are not exported (they may change at any time): the server checks
  them at every write, as it checks every limit. A plain
  :class:`~concert.parameters.Parameter` is exported by the type of the
  value it reads when the device is exported: ``bool`` → ``DevBoolean``,
  an integer → ``DevLong64``, a float → ``DevDouble``, a string →
  ``DevString``, an enum member → ``DevString`` of its name (a written
  name is turned back into the member). Read-only parameters are read-only
  attributes, write-only quantities write-only ones. **Not exported**
  (listed in :attr:`Exported.skipped` and logged as warnings): plain
  parameters that cannot be read, read ``None``, a list, an array, a
  quantity or any other object; names Tango reserves or takes twice (Tango
  names ignore case). A second state machine (``State(...)`` under another
  name) is a read-only ``DevString``.
* **The state**: the Tango ``State`` is the Concert state in Tango's words
  (:data:`TANGO_STATES`, the inverse of
  :data:`concert.devices.tango.STATES`; ``UNKNOWN`` for a state Tango has
  no word for), ``Status`` says it in a sentence (with the error message in
  ``'error'`` and the operations running), and the attribute
  ``ConcertState`` gives the Concert state exactly (``'hard-limit'``).
* **Methods → commands**: every public method of the device decorated with
  :func:`~concert.futures.async_` (``move``, ``stop``, ``home``,
  ``reset``, ``open``, ``start_recording`` ...; not ``stash`` and
  ``restore``, which a client has of its own), plus ``abort`` and
  ``emergency_stop``, named as in Concert. A method without parameters
  takes nothing (``DevVoid``), one with a single required parameter one
  ``DevString``, any other a ``DevVarStringArray`` of its positional
  arguments; methods with required keyword-only parameters are not
  exported. Arguments travel as text (:func:`~concert.networking.tango.decode_value`):
  a quantity as ``"5 mm"`` or ``"5.0 millimeter"`` (parsed by pint), a
  number as ``"5"``, a string quoted (``"'AUTO'"``; unquoted text that is
  no number and no quantity is taken as a string too). A command returns
  ``([number], [result])``: ``number`` is 0 when the operation is over and
  ``result`` its result as text (``"None"`` for most; a result that cannot
  be written as text -- an image -- is sent as ``"None"``), else the number
  of the operation still running (see below).
* **Errors → Tango errors**: a Concert exception (and any other) raised by
  a read, a write or a command becomes a Tango error whose reason is the
  exception's class name (``SoftLimitError``, ``StateError``,
  ``CancelledError``), whose description is its message and whose origin
  is ``concert:`` and the device's name (:data:`~concert.networking.tango.ORIGIN`).
  ``TangoDevice`` raises a Concert exception (or ``CancelledError``) again
  as the same exception, with the same message naming the client's device,
  and any other as a :class:`~concert.exceptions.TangoError` keeping the
  reason (``ValueError``) and description.

**Writes and commands never hold a Tango call for a whole motion.** Each
runs as the device's own asynchronous call -- ``device['position'].set(x)``,
``device.move(x)``, a future of Concert's pool (under
:data:`~concert.config.DISABLE_ASYNC`, in a thread of its own) -- and the
Tango call waits for it at most :data:`CALL_WAIT` (0.1 s). An operation
over by then -- most are, and every refusal (a unit, a limit, a state)
comes at once -- returns its result or raises its error in the call
itself. One still running then (a motor's move) goes on in the
background: the call returns its number (for a write: the attribute
``ConcertOperation``, read with the write), the state is the device's (a
moving motor's is ``MOVING``), and other calls -- a ``stop`` from a second
client, reads of the position -- are served meanwhile (Tango runs one call
at a time per device, ``tango.SerialModel.BY_DEVICE``, and none takes
longer than :data:`CALL_WAIT` but ``ConcertCancel``, which waits for the
stop). ``ConcertWait(number)`` tells whether it is
over (and raises its error once it failed); ``ConcertCancel([number],
[reason])`` cancels it as ``Future.cancel()`` does locally -- the motor
stops part-way -- and returns once it stopped (at most
:data:`CANCEL_WAIT`). ``TangoDevice`` uses both, so that a write blocks
until the motion is over and cancelling its future or Ctrl-C stops the
served motor.

Threads: Tango calls the handlers in its own threads, one call at a time
per device; operations run in Concert's pool (or threads of their own, see
above). The table of operations running in the background is guarded by
one lock (``Exported._lock``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import enum
import inspect
import itertools
import logging
import math
import numbers
import re
import signal
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

from concert import config
from concert.devices.base import Device
from concert.devices.tango import STATES
from concert.exceptions import ConfigurationError, StateError, WaitError
from concert.futures import CancelledError, Future, is_async, run_in_thread
from concert.naming import describe_call, describe_value
from concert.networking import tango as protocol
from concert.networking.tango import decode_value, encode_value, import_tango
from concert.parameters import ParameterValue, QuantityValue
from concert.quantities import q
from concert.states import StateValue

__all__ = ["CALL_WAIT", "CANCEL_WAIT", "TANGO_STATES", "Exported", "check_address", "export", "serve"]

LOG = logging.getLogger(__name__)

#: Seconds a write or command waits for its operation in the Tango call (then it runs on in the background).
CALL_WAIT = 0.1

#: Longest wait, in seconds, of ``ConcertCancel`` for the operation to stop (then the client gets WaitError).
CANCEL_WAIT = 1.0

#: Operations over that no client asked about, kept until this many pile up (then the oldest are forgotten).
KEEP_FINISHED = 256

#: The Tango state (``tango.DevState`` name) of each Concert state; others are ``UNKNOWN``.
TANGO_STATES: Dict[str, str] = {
    **{concert: tango for tango, concert in STATES.items() if tango != "ON"},  # 'standby' is STANDBY
    "on": "ON",
    "hard-limit": "ALARM",
    "recording": "RUNNING",
    "pumping": "RUNNING",
}

#: Attribute and command names Tango has on every device, or that the protocol uses (compared ignoring case).
_RESERVED_ATTRIBUTES = {
    "state",
    "status",
    protocol.STATE_ATTRIBUTE.lower(),
    protocol.OPERATION_ATTRIBUTE.lower(),
}
_RESERVED_COMMANDS = {
    "init",
    "state",
    "status",
    protocol.WAIT_COMMAND.lower(),
    protocol.CANCEL_COMMAND.lower(),
}

#: A Tango device name, as run_server accepts it: three parts, none empty, no blanks, '#' or ':'.
_DEVICE_NAME = re.compile(r"^[^/\s#:]+/[^/\s#:]+/[^/\s#:]+$")

#: Methods of every device that are not exported: a client has its own.
_NOT_EXPORTED = ("stash", "restore")

#: Methods of every device that are exported although they are not ``async_``.
_ALWAYS_EXPORTED = ("abort", "emergency_stop")


class _Attribute:
    """How one parameter is exported: its kind and Tango type, access and limits."""

    def __init__(self, value: ParameterValue, kind: str, tango_type: Any, unit_text: str = "") -> None:
        self.value = value
        self.name = value.name
        self.kind = kind  # 'quantity', 'bool', 'int', 'float', 'str', 'enum' or 'state'
        self.tango_type = tango_type
        self.unit_text = unit_text
        self.enum: Optional[type] = None
        self.lower: Optional[float] = None
        self.upper: Optional[float] = None


class _Command:
    """How one method is exported: the callable and the arguments it takes."""

    def __init__(
        self, name: str, func: Callable, call: Callable, parameters: List[str], least: int, most: Any
    ):
        self.name = name
        self.func = func  # for messages (describe_call)
        self.call = call  # the bound method
        self.parameters = parameters
        self.least = least
        self.most = most  # None: any number
        self.takes = "none" if most == 0 else ("one" if least == most == 1 else "many")


class Exported:
    """A Concert device made into a PyTango high-level ``Device`` class (see the module documentation).

    ``tango_class`` is the class (named as the device's class) to give
    :func:`~concert.networking.tango_server.run_server`; ``attributes`` and
    ``commands`` are the names exported, ``skipped`` maps what was not
    exported to why. ``received`` is the signal (``SIGINT``, ``SIGTERM``)
    that ended the server, once one did, and ``stopped`` the names of the
    operations still running then (stopped by :meth:`shut_down`).
    """

    def __init__(self, device: Device) -> None:
        if not isinstance(device, Device):
            raise ConfigurationError(
                f"{describe_value(device)} is not a Concert device; only devices are served"
            )
        self.device = device
        self._label = repr(device)
        self._tango = import_tango()
        self._lock = threading.Lock()  # guards _operations
        self._operations: collections.OrderedDict[int, Future] = collections.OrderedDict()
        self._numbers = itertools.count(1)
        # The number of the operation the last write of each Tango thread left running: one
        # entry per thread, written and popped only by that thread (single dict operations).
        self._started: Dict[int, int] = {}
        self.received: Optional[int] = None
        self.stopped: List[str] = []
        self.skipped: Dict[str, str] = {}
        self._attributes = self._find_attributes()
        self._commands = self._find_commands()
        for name, why in self.skipped.items():
            LOG.warning("%s: %s is not exported: %s", self._label, name, why)
        self.tango_class = self._build()

    @property
    def attributes(self) -> List[str]:
        """The names of the parameters exported as attributes (but ``state``, which is the Tango state)."""
        return [spec.name for spec in self._attributes]

    @property
    def commands(self) -> List[str]:
        """The names of the methods exported as commands."""
        return [spec.name for spec in self._commands]

    # -- what is exported ---------------------------------------------------------------------------

    def _find_attributes(self) -> List[_Attribute]:
        tango = self._tango
        found: List[_Attribute] = []
        taken = set(_RESERVED_ATTRIBUTES)
        for value in self.device:
            name = value.name
            if name == "state" and isinstance(value, StateValue):
                continue  # the Tango State
            if name.lower() in taken:
                self.skipped[name] = "Tango takes that name already (names ignore case)"
                continue
            spec = self._attribute(value, tango)
            if spec is not None:
                taken.add(name.lower())
                found.append(spec)
        return found

    def _attribute(self, value: ParameterValue, tango: Any) -> Optional[_Attribute]:
        name = value.name
        types = tango.CmdArgType
        if isinstance(value, StateValue):
            return _Attribute(value, "state", types.DevString)
        if isinstance(value, QuantityValue):
            spec = _Attribute(value, "quantity", types.DevDouble, _unit_text(value.unit))
            parameter = value._parameter  # the declaration, for its limit getters (no public accessor)
            spec.lower = self._fixed_limit(value, parameter.external_lower_getter)
            spec.upper = self._fixed_limit(value, parameter.external_upper_getter)
            return spec
        if not value.readable:
            self.skipped[name] = "a plain parameter that cannot be read has no type to export"
            return None
        try:
            sample = value.read()
        except Exception as error:  # whatever the getter raises: the parameter is left out
            self.skipped[name] = f"reading it raised {type(error).__name__}: {error}"
            return None
        if isinstance(sample, bool):
            return _Attribute(value, "bool", types.DevBoolean)
        if isinstance(sample, enum.Enum):
            spec = _Attribute(value, "enum", types.DevString)
            spec.enum = type(sample)
            return spec
        if isinstance(sample, numbers.Integral):
            return _Attribute(value, "int", types.DevLong64)
        if isinstance(sample, numbers.Real) and not isinstance(sample, q.Quantity):
            return _Attribute(value, "float", types.DevDouble)
        if isinstance(sample, str):
            return _Attribute(value, "str", types.DevString)
        self.skipped[name] = (
            f"its value, {describe_value(sample)}, is no bool, number, string or enum member "
            "(only a Quantity parameter is exported with a unit)"
        )
        return None

    def _fixed_limit(self, value: QuantityValue, getter: Optional[Callable]) -> Optional[float]:
        """The hardware limit ``getter`` gives, in the parameter's unit, if it is fixed (see the module)."""
        if getter is None:
            return None
        probe = _Probe(self.device)
        try:
            limit = getter(probe)
            if probe.read or limit is None:
                return None
            magnitude = float(getter(self.device).m_as(value.unit))
        except Exception:  # a getter that needs the device itself, or fails: not taken as fixed
            return None
        return magnitude if math.isfinite(magnitude) else None

    def _find_commands(self) -> List[_Command]:
        found = []
        cls = type(self.device)
        taken = set(_RESERVED_COMMANDS)
        names = sorted(
            name
            for name in dir(cls)
            if not name.startswith("_") and name not in _NOT_EXPORTED and is_async(getattr(cls, name, None))
        )
        for name in [*names, *_ALWAYS_EXPORTED]:
            if name.lower() in taken:
                self.skipped[f"{name}()"] = "Tango takes that command name already (names ignore case)"
                continue
            func = getattr(cls, name)
            try:
                signature = inspect.signature(func)
            except (TypeError, ValueError):
                self.skipped[f"{name}()"] = "its signature cannot be read"
                continue
            parameters = list(signature.parameters.values())[1:]  # without self
            kinds = inspect.Parameter
            positional = [
                p for p in parameters if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
            ]
            if any(p.kind == kinds.KEYWORD_ONLY and p.default is p.empty for p in parameters):
                self.skipped[f"{name}()"] = "it has required keyword-only parameters"
                continue
            least = sum(1 for p in positional if p.default is p.empty)
            most = None if any(p.kind == kinds.VAR_POSITIONAL for p in parameters) else len(positional)
            taken.add(name.lower())
            found.append(
                _Command(name, func, getattr(self.device, name), [p.name for p in positional], least, most)
            )
        return found

    # -- the Tango class ----------------------------------------------------------------------------

    def _build(self) -> type:
        tango = self._tango
        from tango.server import Device as TangoBase
        from tango.server import attribute, command

        exported = self
        access = tango.AttrWriteType
        namespace: Dict[str, Any] = {}

        def init_device(tango_self: Any) -> None:
            TangoBase.init_device(tango_self)
            for number in (signal.SIGINT, signal.SIGTERM):
                tango_self.register_signal(number)

        def signal_handler(tango_self: Any, number: int) -> None:
            exported.received = number

        def dev_state(tango_self: Any) -> Any:
            return getattr(tango.DevState, exported.tango_state())

        def dev_status(tango_self: Any) -> str:
            return exported.status()

        namespace.update(
            init_device=init_device, signal_handler=signal_handler, dev_state=dev_state, dev_status=dev_status
        )
        for spec in self._attributes:
            value = spec.value
            readable = value.readable
            writable = value.writable and spec.kind != "state"
            options: Dict[str, Any] = {
                "name": spec.name,
                "dtype": spec.tango_type,
                "access": access.READ_WRITE
                if readable and writable
                else (access.WRITE if writable else access.READ),
                "doc": value.help or "",
            }
            if spec.unit_text:
                options["unit"] = spec.unit_text
            if spec.lower is not None:
                options["min_value"] = spec.lower
            if spec.upper is not None:
                options["max_value"] = spec.upper
            if readable:
                options["fget"] = self._reader(spec)
            if writable:
                options["fset"] = self._writer(spec)
            namespace[spec.name] = attribute(**options)

        def read_state(tango_self: Any) -> str:
            return exported.concert_state() or ""

        def read_operation(tango_self: Any) -> int:
            return exported._started.pop(threading.get_ident(), 0)

        namespace[protocol.STATE_ATTRIBUTE] = attribute(
            name=protocol.STATE_ATTRIBUTE, dtype=str, fget=read_state, doc="the Concert state, exactly"
        )
        namespace[protocol.OPERATION_ATTRIBUTE] = attribute(
            name=protocol.OPERATION_ATTRIBUTE,
            dtype=int,
            fget=read_operation,
            doc="the operation this connection's last write left running (0: none)",
        )
        for spec in self._commands:
            namespace[spec.name] = self._command(spec, command, tango)

        def wait(tango_self: Any, number: int) -> Tuple[List[int], List[str]]:
            return exported._guarded(lambda: exported.wait(number))

        wait.__name__ = protocol.WAIT_COMMAND
        namespace[protocol.WAIT_COMMAND] = command(
            f=wait,
            dtype_in=int,
            dtype_out=tango.DevVarLongStringArray,
            doc_in="the number of an operation running in the background",
            doc_out="([1 if it is over else 0], [its result as text])",
        )

        def cancel(tango_self: Any, argin: Any) -> None:
            numbers_in, reasons = argin
            reason = reasons[0] if reasons else "a Tango client's cancel request"
            exported._guarded(lambda: [exported.cancel(int(number), reason) for number in numbers_in])

        cancel.__name__ = protocol.CANCEL_COMMAND
        namespace[protocol.CANCEL_COMMAND] = command(
            f=cancel,
            dtype_in=tango.DevVarLongStringArray,
            doc_in="([operation numbers], [the reason])",
        )
        return type(type(self.device).__name__, (TangoBase,), namespace)

    def _reader(self, spec: _Attribute) -> Callable:
        exported = self

        def read(tango_self: Any) -> Any:
            return exported._guarded(lambda: exported.read(spec))

        read.__name__ = f"read_{spec.name}"
        return read

    def _writer(self, spec: _Attribute) -> Callable:
        exported = self

        def write(tango_self: Any, value: Any) -> None:
            exported._guarded(lambda: exported.write(spec, value))

        write.__name__ = f"write_{spec.name}"
        return write

    def _command(self, spec: _Command, command: Callable, tango: Any) -> Any:
        exported = self
        described = ", ".join(spec.parameters) or "no arguments"
        doc_out = "([0 when it is over, else the operation's number], [its result as text])"
        if spec.takes == "none":

            def run_none(tango_self: Any) -> Tuple[List[int], List[str]]:
                return exported._guarded(lambda: exported.call(spec, ()))

            run: Callable = run_none
            dtype_in: Any = None
        elif spec.takes == "one":

            def run_one(tango_self: Any, argin: str) -> Tuple[List[int], List[str]]:
                return exported._guarded(lambda: exported.call(spec, (argin,)))

            run, dtype_in = run_one, str
        else:

            def run_many(tango_self: Any, argin: Sequence[str]) -> Tuple[List[int], List[str]]:
                return exported._guarded(lambda: exported.call(spec, tuple(argin)))

            run, dtype_in = run_many, (str,)
        run.__name__ = spec.name
        options: Dict[str, Any] = {"f": run, "dtype_out": tango.DevVarLongStringArray, "doc_out": doc_out}
        if dtype_in is not None:
            options["dtype_in"] = dtype_in
            options["doc_in"] = f"{described}, as text: '5 mm', '2.5', \"'AUTO'\""
        return command(**options)

    # -- serving calls (in Tango's threads) ----------------------------------------------------------

    def _guarded(self, call: Callable[[], Any]) -> Any:
        """Run ``call``; raise what it raises as a Tango error (reason: its class, origin ``concert:...``)."""
        try:
            return call()
        except Exception as error:
            raise self._tango_error(error) from None

    def _tango_error(self, error: BaseException) -> Exception:
        tango = self._tango
        origin = protocol.ORIGIN + self._label

        def item(reason: str, description: str) -> Any:
            made = tango.DevError()
            made.reason = reason
            made.desc = description
            made.origin = origin
            made.severity = tango.ErrSeverity.ERR
            return made

        if isinstance(error, tango.DevFailed):  # from a device that is itself a Tango client: as it is
            return error
        name = "CancelledError" if isinstance(error, CancelledError) else type(error).__name__
        message = " ".join(str(error).split()) or name
        stack = [item(name, message)]
        if isinstance(error, StateError):
            stack.append(item(protocol.ERROR_STATE, str(error.error_state)))
        return tango.DevFailed(*stack)

    def read(self, spec: _Attribute) -> Any:
        """The value of ``spec``'s parameter as Tango carries it (read in the calling thread)."""
        value = spec.value.read()
        kind = spec.kind
        if kind == "quantity":
            return float(value.m_as(spec.value.unit))
        if kind == "enum":
            if isinstance(value, enum.Enum):
                return value.name
            raise ConfigurationError(
                f"{spec.value!r} reads {describe_value(value)}, not a member of {spec.enum.__name__}"
            )
        wanted = {"bool": bool, "int": numbers.Integral, "float": numbers.Real, "str": str, "state": str}[
            kind
        ]
        if value is None or not isinstance(value, wanted) or (kind != "bool" and isinstance(value, bool)):
            raise ConfigurationError(
                f"{spec.value!r} reads {describe_value(value)}, which its Tango attribute "
                f"({spec.tango_type}) cannot carry"
            )
        return value

    def write(self, spec: _Attribute, raw: Any) -> None:
        """Write ``raw`` (as Tango gave it) to ``spec``'s parameter, as an operation (see the module doc)."""
        ident = threading.get_ident()
        self._started[ident] = 0
        if spec.kind == "quantity":
            value: Any = q.Quantity(raw, spec.value.unit)
        elif spec.kind == "enum" and spec.enum is not None and raw in spec.enum.__members__:
            value = spec.enum[raw]
        else:
            value = raw
        parameter = spec.value
        what = f"{self._label}.{spec.name} = {describe_value(value)}"
        number, _ = self._run(what, lambda: parameter.set(value))
        self._started[ident] = number

    def call(self, spec: _Command, texts: Tuple[str, ...]) -> Tuple[List[int], List[str]]:
        """Run the method of ``spec`` with the arguments ``texts`` stand for, as an operation."""
        args = tuple(decode_value(text) for text in texts)
        if len(args) < spec.least or (spec.most is not None and len(args) > spec.most):
            wanted = (
                f"{spec.least}"
                if spec.least == spec.most
                else (f"{spec.least} to {spec.most}" if spec.most is not None else f"at least {spec.least}")
            )
            raise ConfigurationError(
                f"{self._label}.{spec.name}() takes {wanted} arguments "
                f"({', '.join(spec.parameters) or 'none'}), "
                f"not {len(args)}: {', '.join(map(repr, texts)) or 'none given'}"
            )
        what = describe_call(spec.func, (self.device, *args), {})
        method = spec.call
        number, result = self._run(what, lambda: method(*args))
        return [number], ["" if number else _as_text(result, what)]

    def _run(self, what: str, start: Callable[[], Any]) -> Tuple[int, Any]:
        """Start an operation; its result if over within CALL_WAIT, else the number it is kept under.

        ``start()`` is the device's own asynchronous call (``device['position'].set(x)``,
        ``device.move(x)``): its future, from the module-wide pool, is the operation. Under
        :data:`~concert.config.DISABLE_ASYNC` that would run in the Tango call itself, so then the
        call runs in a thread of its own instead (:func:`~concert.futures.run_in_thread`, named ``what``).
        """
        if config.DISABLE_ASYNC:
            future = run_in_thread(lambda: _outcome(start()), name=what)
        else:
            begun = start()
            if not isinstance(begun, Future):
                return 0, begun  # a plain method: over already
            future = begun
        try:
            return 0, future.result(CALL_WAIT)  # raises its error
        except WaitError:
            if future.done():
                raise  # the operation's own WaitError
        with self._lock:
            number = next(self._numbers)
            self._operations[number] = future
            if len(self._operations) > KEEP_FINISHED:
                for old in [n for n, f in self._operations.items() if f.done()][: -KEEP_FINISHED // 2]:
                    del self._operations[old]
        return number, None

    def wait(self, number: int) -> Tuple[List[int], List[str]]:
        """``([1], [result])`` once operation ``number`` is over (raising its error), else ``([0], [''])``."""
        with self._lock:
            future = self._operations.get(number)
        if future is None:
            raise ConfigurationError(
                f"{self._label} has no operation {number} running or left to report (it was reported already)"
            )
        if not future.done():
            return [0], [""]
        with self._lock:
            self._operations.pop(number, None)
        return [1], [_as_text(future.result(), future.name)]  # raises its error

    def cancel(self, number: int, reason: str) -> None:
        """Cancel operation ``number`` as ``Future.cancel()`` does; return once it stopped (or WaitError).

        Nothing happens for an operation that is over or not known.

        :raises WaitError: it did not stop within :data:`CANCEL_WAIT`.
        """
        with self._lock:
            future = self._operations.get(number)
        if future is not None and not future.done():
            future.cancel(timeout=CANCEL_WAIT, reason=reason)

    def concert_state(self) -> Optional[str]:
        """The device's Concert state (``None`` if it has none; raises what reading it raises)."""
        if "state" not in self.device:
            return None
        return str(self.device["state"].read())

    def tango_state(self) -> str:
        """The ``tango.DevState`` name of the device's state (``ON`` without one, ``UNKNOWN`` unreadable)."""
        try:
            state = self.concert_state()
        except Exception:  # Status says why
            return "UNKNOWN"
        return "ON" if state is None else TANGO_STATES.get(state, "UNKNOWN")

    def status(self) -> str:
        """One sentence: the device's state (and its error), and the operations running in the background."""
        try:
            state = self.concert_state()
        except Exception as error:  # the status must always say something
            text = f"{self._label}: reading its state raised {type(error).__name__}: {error}"
        else:
            text = f"{self._label} is {state}" if state is not None else f"{self._label} has no state"
            error = getattr(self.device["state"], "error", None) if state == "error" else None
            if error:
                text += f" ({error})"
        with self._lock:
            running = [future.name for future in self._operations.values() if not future.done()]
        if running:
            text += "; running: " + ", ".join(running)
        return text

    def shut_down(self, timeout: float = 5.0) -> None:
        """Stop the device (``abort()``) and wait, at most ``timeout`` seconds, for the operations to end.

        The names of those that were running are added to :attr:`stopped`.
        """
        with self._lock:
            self.stopped += [future.name for future in self._operations.values() if not future.done()]
        try:
            self.device.abort().result()
        except Exception:  # a failing stop is logged; the server is going away regardless
            LOG.exception("%s: stopping it when the server ended failed", self._label)
        with self._lock:
            futures = list(self._operations.values())
        concurrent.futures.wait(futures, timeout=timeout)


class _Probe:
    """Stands in for the device while a hardware limit is computed, noting whether it reads a parameter."""

    def __init__(self, device: Device) -> None:
        object.__setattr__(self, "_device", device)
        object.__setattr__(self, "read", [])

    def __getitem__(self, name: str) -> Any:
        self.read.append(name)
        return self._device[name]

    def __getattr__(self, name: str) -> Any:
        device = object.__getattribute__(self, "_device")
        if name in device or name[:4] in ("get_", "set_"):
            self.read.append(name)
        return getattr(device, name)


def _unit_text(unit: Any) -> str:
    """The unit as a Tango attribute shows it: pint's short form if it reads back as the same unit."""
    text = format(unit, "~")
    try:
        if q.Unit(text) == unit:
            text.encode("latin-1")  # what Tango's strings can carry
            return text
    except Exception:  # pint cannot read its own short form, or it is no Latin-1: the long name
        pass
    return str(unit)


def _outcome(result: Any) -> Any:
    """The result of a device call: the result of its future, if it returned one."""
    return result.result() if isinstance(result, concurrent.futures.Future) else result


def _as_text(result: Any, what: str) -> str:
    try:
        return encode_value(result)
    except ConfigurationError:
        LOG.debug("%s returned %s, which cannot be sent as text: sent as None", what, describe_value(result))
        return "None"


def export(device: Device) -> Exported:
    """Make ``device`` into a PyTango ``Device`` class (see the module documentation).

    :raises ConfigurationError: ``device`` is not a Concert device, or PyTango is missing.
    """
    return Exported(device)


def serve(
    device: Device,
    name: str,
    port: int = 0,
    host: str = "",
    announce_host: str = "127.0.0.1",
    stream: Optional[TextIO] = None,
) -> Exported:
    """Serve ``device`` as the Tango device ``name`` until the server is stopped; return what was served.

    Runs :func:`~concert.networking.tango_server.run_server` (which prints
    ``Serving NAME on port N: URI`` once the server is up) in the calling
    thread, listening on ``host`` (``""``: every interface) and ``port``
    (``0``: any free one). ``SIGINT`` and ``SIGTERM`` stop it; the device is
    then stopped (``abort()``) and the operations still running are waited
    for (at most 5 s). Returns the :class:`Exported` device: its
    :attr:`~Exported.received` is the signal that stopped the server
    (``None`` if none did), :attr:`~Exported.stopped` what that stopped.

    :raises ConfigurationError: a bad ``name`` or ``port``, not a device, PyTango missing.
    :raises NetworkingError: the server cannot listen on ``port`` (in use, say).
    """
    from concert.networking.tango_server import run_server

    check_address(name, port, host)
    exported = export(device)
    tango = exported._tango
    try:
        run_server(
            (exported.tango_class,), name, port=port, host=host, announce_host=announce_host, stream=stream
        )
    except (tango.DevFailed, RuntimeError) as error:
        from concert.exceptions import NetworkingError

        text = " ".join(str(error).split())
        if isinstance(error, tango.DevFailed):
            stack = protocol.tango_errors(error)
            text = "; ".join(f"{reason}: {' '.join(desc.split())}" for reason, desc, _ in stack) or text
        raise NetworkingError(
            f"cannot serve {name} on {host or 'every interface'}, port {port}: {text}"
        ) from None
    finally:
        exported.shut_down()
    return exported


def check_address(name: str, port: int, host: str = "") -> None:
    """Refuse what :func:`serve` cannot serve on, before anything is imported or made.

    :raises ConfigurationError: ``name`` is not ``domain/family/member``, ``port`` no TCP port.
    :raises NetworkingError: something listens on ``host``, ``port`` already (omniORB would say
        so only in its own words).
    """
    import socket

    if not isinstance(name, str) or not _DEVICE_NAME.match(name):
        raise ConfigurationError(f"Tango device name {name!r} is not of the form domain/family/member")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigurationError(f"port {port!r} is not a TCP port number (0 to 65535; 0: any free port)")
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as omniORB does
        try:
            sock.bind((host, port))
        except OSError as error:
            from concert.exceptions import NetworkingError

            raise NetworkingError(
                f"cannot serve {name} on {host or 'every interface'}, port {port}: "
                f"{error.strerror or error} (is another server using it?)"
            ) from None
