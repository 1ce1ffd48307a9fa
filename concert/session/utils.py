"""Session helpers: tables of the session's devices and processes, and stopping everything.

A *session* is the Python file that builds a beamline's devices; these
helpers are what a scientist calls in it, or in the shell started from it:

* :func:`dstate` -- a table of every device, its state and its readable parameters;
* :func:`ddoc` -- a table of every device and its documentation;
* :func:`pdoc` -- a table of the session's processes (its functions), or of
  the parameters and methods of one device;
* :func:`code_of` -- print the source of a function;
* :func:`get_default_table` -- the :class:`~prettytable.PrettyTable` they all use,
  sized to the terminal;
* :func:`abort_awaiting` -- cancel the operations and asyncio tasks Concert
  runs in the background;
* :func:`stop_all` -- cancel all of those and call ``emergency_stop()``
  on every device: what the shell's ``Ctrl-K`` and ``Ctrl-\\`` do;
* :func:`check_emergency_stop` -- poll a condition in the background and
  :func:`stop_all` when it turns true.

They work on a *namespace*: by default the session's, the globals of the
``__main__`` module (a script's globals; in IPython, the shell's names), or
the dictionary (or module) given as ``namespace``. Names starting with
``_`` are never looked at (IPython keeps its output history in ``_``,
``_1``, ...), nor, in the shell, the names IPython defines itself
(``In``, ``Out``, ``exit``, ``open`` ...). A device bound to several names appears once, under all of
them. None of the helpers needs a terminal or IPython: the tables are
returned as :class:`~prettytable.PrettyTable` objects, which ``print`` and
the shell both show as the table (their ``repr`` is the table).

Wrong use raises :class:`SessionError`, naming the helper and the argument.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shutil
import signal
import sys
import threading
import types
import weakref
from collections.abc import Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

# Only light modules here (no numpy, no pint): Ctrl-C handling imports this module to stop what
# runs, perhaps after a Ctrl-C cut a session's `import numpy` short, when numpy cannot be imported
# again. Devices and parameters are found through sys.modules (none exists before its module is).
from concert import executor
from concert.checks import is_integer
from concert.cli import SubCommand as SubCommand  # re-exported: where seed 003 has it
from concert.exceptions import SessionError as SessionError  # re-exported: where the legacy API has it
from concert.futures import (
    Future,
    awaited_by,
    current_future,
    is_async,
    next_order,
    on_cancel,
    request_cancel_logged,
    run_in_thread,
)
from concert.naming import describe_value, instance_name, name_of
from concert.timeouts import to_seconds

if TYPE_CHECKING:
    from prettytable import PrettyTable

    from concert.devices.base import Device
    from concert.parameters import Parameterizable, ParameterValue

__all__ = [
    "BLACKLIST",
    "PROCESS_MODULES",
    "Stopped",
    "abort_awaiting",
    "check_emergency_stop",
    "code_of",
    "ddoc",
    "dstate",
    "get_default_table",
    "pdoc",
    "stop_all",
    "task_name",
]

LOG = logging.getLogger(__name__)

#: What a namespace may be: a mapping of names to objects, a module, or ``None`` (the session's).
Namespace = Union[Mapping, types.ModuleType, None]

#: Modules whose functions :func:`pdoc` does not list as processes (unless
#: ``hide_blacklisted=False``): Concert's own tools -- these helpers,
#: ``async_``, ``wait``, ``broadcast`` ... -- which a session imports but
#: which are not processes, and IPython's. A name stands for the module and
#: its submodules; the modules of :data:`PROCESS_MODULES` are exempt.
BLACKLIST: Tuple[str, ...] = ("concert", "IPython")

#: Concert's modules whose functions are processes, listed by :func:`pdoc`.
PROCESS_MODULES: Tuple[str, ...] = (
    "concert.processes",
    "concert.experiments",
    "concert.optimization",
    "concert.measures",
    "concert.imageprocessing",
)

_MISSING = object()  # no value
_MIN_WIDTH = 10  # narrowest a column is made when the terminal is too narrow for all of them


# -- namespaces and devices ------------------------------------------------------------------


def _resolve(namespace: Namespace, helper: str) -> Mapping:
    """The mapping a ``namespace`` argument stands for (the live ``__main__`` globals for ``None``)."""
    if namespace is None:
        main = sys.modules.get("__main__")
        return {} if main is None else vars(main)
    if isinstance(namespace, types.ModuleType):
        return vars(namespace)
    if isinstance(namespace, Mapping):
        return namespace
    raise SessionError(
        f"{helper}(namespace={describe_value(namespace)}): a namespace is a dict of names or a module"
    )


def _shells_own(mapping: Mapping) -> Mapping:
    """The names IPython put into ``mapping`` if it is a running shell's namespace (``open``, ``exit``)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return {}
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too broken to say: no names to leave out
        return {}
    if shell is None or getattr(shell, "user_ns", None) is not mapping:
        return {}
    hidden = getattr(shell, "user_ns_hidden", None)
    return hidden if isinstance(hidden, Mapping) else {}


def _public_items(mapping: Mapping) -> List[Tuple[str, Any]]:
    """The ``(name, object)`` pairs of ``mapping`` without ``_`` names, sorted by name.

    In an IPython shell the names IPython defined itself (``In``, ``Out``,
    ``exit``, ``open`` ...) are left out too, unless the session rebound
    them. The session may define names in another thread meanwhile (the
    shell while a background poll looks): a copy that finds the mapping
    changing is made again.
    """
    attempts = 100
    while True:
        try:
            items = list(mapping.items())  # one step for a dict; a Mapping may see changes
            break
        except RuntimeError:  # changed size during iteration
            attempts -= 1
            if not attempts:
                raise
    shells = _shells_own(mapping)
    public = [
        (name, value)
        for name, value in items
        if isinstance(name, str) and not name.startswith("_") and shells.get(name, _MISSING) is not value
    ]
    return sorted(public, key=lambda item: item[0])


def _loaded_class(module: str, name: str) -> Any:
    """The class ``module.name`` if that module was imported, else ``()`` (``isinstance`` is then false).

    No instance of a class can exist before its module was imported, so the
    helpers need not import (and pay for) Concert's devices to look for them.
    """
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else ()


def _devices(mapping: Mapping) -> List[Tuple[str, Device]]:
    """Every device of ``mapping`` once, as ``('name, other_name', device)``, in name order."""
    names: Dict[int, List[str]] = {}
    devices: Dict[int, Device] = {}
    device_class = _loaded_class("concert.devices.base", "Device")
    for name, value in _public_items(mapping):
        if isinstance(value, device_class):
            names.setdefault(id(value), []).append(name)
            devices[id(value)] = value
    return [(", ".join(names[key]), devices[key]) for key in devices]


# -- tables ------------------------------------------------------------------------------------


def _hrules_all() -> Any:
    import prettytable

    style = getattr(prettytable, "HRuleStyle", None)  # prettytable >= 3.12; before, a module constant
    return style.ALL if style is not None else prettytable.ALL


def get_default_table(
    field_names: Sequence[str], widths: Optional[Sequence[Optional[int]]] = None
) -> PrettyTable:
    """Return an empty :class:`~prettytable.PrettyTable` with these columns, styled for the shell.

    Cells are left-aligned, rows separated by rules (cells often hold
    several lines) and long cells wrapped so that the table fits the
    terminal: its width is :func:`shutil.get_terminal_size` (the ``COLUMNS``
    environment variable first, 80 characters without a terminal).
    ``widths`` gives, for each column, its largest width in characters, or
    ``None`` for a column that shares the width left; without ``widths``
    all columns share the terminal's width equally.

    :raises SessionError: if ``field_names`` is not a non-empty sequence of
        distinct strings, or ``widths`` does not give one positive integer
        or ``None`` per column.
    """
    from prettytable import PrettyTable

    if isinstance(field_names, (str, bytes)) or not isinstance(field_names, Iterable):
        raise SessionError(
            f"get_default_table(field_names={describe_value(field_names)}): give a list of column names"
        )
    names = list(field_names)
    if not names or not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise SessionError(
            f"get_default_table(field_names={describe_value(names)}): the column names must be "
            "distinct strings, at least one"
        )
    if widths is None:
        given: List[Optional[int]] = [None] * len(names)
    else:
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Iterable):
            raise SessionError(
                f"get_default_table(widths={describe_value(widths)}): give one width per column"
            )
        given = list(widths)
        bad = [w for w in given if w is not None and not (is_integer(w) and w > 0)]
        if len(given) != len(names) or bad:
            raise SessionError(
                f"get_default_table(widths={describe_value(given)}): give one width per column "
                f"({len(names)} for {', '.join(names)}), each a positive number of characters or None"
            )
    table = PrettyTable(names)
    table.align = "l"
    table.hrules = _hrules_all()
    for name, width in zip(names, _column_widths(given)):
        table.max_width[name] = width
    return table


def _column_widths(given: List[Optional[int]]) -> List[int]:
    """Widths for the columns: the given ones, the rest sharing what the terminal has left."""
    columns = shutil.get_terminal_size().columns
    content = columns - (3 * len(given) + 1)  # each column has a space either side and a border
    fixed = sum(width for width in given if width is not None)
    shared = sum(1 for width in given if width is None)
    share = max(_MIN_WIDTH, (content - fixed) // shared) if shared else 0
    return [share if width is None else int(width) for width in given]


def _shown(value: Any) -> str:
    """A value as a table shows it: ``5 mm``, ``standby``, ``Mode.AUTO``, ``<array 4x4 uint16>``."""
    if isinstance(value, str):
        return value
    return describe_value(value)


def _read(value: ParameterValue) -> str:
    try:
        return _shown(value.read())
    except Exception as error:  # the table shows every device, even one that fails to answer
        return f"<{type(error).__name__}: {error}>"


def _summary(obj: Any) -> str:
    """The first paragraph of ``obj``'s documentation, on one line ('' if it has none)."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def _signature(func: Any, name: str) -> str:
    """``name(arguments)`` as the user calls it: names and defaults, without annotations."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # builtins and the like may have none
        return f"{name}(...)"
    plain = [parameter.replace(annotation=parameter.empty) for parameter in signature.parameters.values()]
    return f"{name}{signature.replace(parameters=plain, return_annotation=signature.empty)}"


def dstate(namespace: Namespace = None) -> PrettyTable:
    """Return a table of every device in the session: its name, state and readable parameters.

    A row per device (see the module documentation for what a namespace
    is), sorted by name: its ``state`` (empty for a device without one)
    and a line ``name = value`` for every other readable parameter, values
    with their units (``position = 0 mm``). Parameters are read one after
    the other in the calling thread; one that fails shows the error
    (``<ReadAccessError: ...>``) instead of a value.

    :raises SessionError: for a ``namespace`` that is neither mapping nor module.
    """
    mapping = _resolve(namespace, "dstate")
    table = get_default_table(["Name", "State", "Parameters"], widths=[24, 16, None])
    for names, device in _devices(mapping):
        state = _read(device["state"]) if "state" in device and device["state"].readable else ""
        lines = [
            f"{value.name} = {_read(value)}" for value in device if value.readable and value.name != "state"
        ]
        table.add_row([names, state, "\n".join(lines)])
    return table


def ddoc(namespace: Namespace = None) -> PrettyTable:
    """Return a table of every device in the session and its documentation.

    A row per device, sorted by name: its class and the first paragraph of
    its documentation, and a line per parameter, ``name [unit]: help``.
    Nothing is read from the hardware.

    :raises SessionError: for a ``namespace`` that is neither mapping nor module.
    """
    mapping = _resolve(namespace, "ddoc")
    table = get_default_table(["Name", "Description", "Parameters"], widths=[24, None, None])
    for names, device in _devices(mapping):
        summary = _summary(type(device))
        description = type(device).__name__ + (f": {summary}" if summary else "")
        table.add_row([names, description, "\n".join(_parameter_line(value) for value in device)])
    return table


def _unit(value: ParameterValue) -> str:
    unit = getattr(value, "unit", None)
    if unit is None:
        return ""
    try:
        return format(unit, "~P") or str(unit)
    except Exception:
        return str(unit)


def _parameter_line(value: ParameterValue) -> str:
    unit = _unit(value)
    line = value.name + (f" [{unit}]" if unit else "")
    return line + (f": {value.help}" if value.help else "")


def _in(module: str, names: Tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in names)


def _is_blacklisted(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    module = getattr(func, "__module__", None) or ""
    return _in(module, BLACKLIST) and not _in(module, PROCESS_MODULES)


def _is_process(value: Any) -> bool:
    return inspect.isfunction(value) or isinstance(value, functools.partial)


def pdoc(obj: Any = None, hide_blacklisted: bool = True, namespace: Namespace = None) -> PrettyTable:
    """Return a table documenting the session's processes, or one device or function.

    ``pdoc()`` lists every *process* of the session -- its public functions
    (``async_`` ones included) and :func:`functools.partial` objects -- with
    its signature and the first paragraph of its documentation, sorted by
    name. With ``hide_blacklisted`` (the default), functions of the modules
    in :data:`BLACKLIST` (Concert's tools, such as these helpers, and
    IPython's; not those of :data:`PROCESS_MODULES`) are left out. A bool
    given as the only positional argument is ``hide_blacklisted``, as in
    the legacy ``pdoc(False)``.

    ``pdoc(device)`` summarises one device (any
    :class:`~concert.parameters.Parameterizable`): a row per parameter
    (kind, unit, whether it can be read and written, its help) and per
    public method (its signature, whether it returns a Future, the first
    paragraph of its documentation). ``pdoc(function)`` shows one function.

    :raises SessionError: for an ``obj`` that is neither device nor function,
        or a ``namespace`` that is neither mapping nor module.
    """
    if obj is None or isinstance(obj, bool):
        hide = hide_blacklisted if obj is None else obj
        return _processes_table(_resolve(namespace, "pdoc"), bool(hide))
    if isinstance(obj, _loaded_class("concert.parameters", "Parameterizable")):
        return _device_table(obj)
    if callable(obj) and not isinstance(obj, type):
        table = get_default_table(["Name", "Description"], widths=[24, None])
        name = name_of(obj)
        table.add_row([name, _signature(obj, name) + "\n" + (inspect.getdoc(obj) or "")])
        return table
    raise SessionError(
        f"pdoc({describe_value(obj)}): give a device or a function, or nothing for the session's processes"
    )


def _processes_table(mapping: Mapping, hide: bool) -> PrettyTable:
    table = get_default_table(["Name", "Description"], widths=[24, None])
    for name, value in _public_items(mapping):
        if _is_process(value) and not (hide and _is_blacklisted(value)):
            summary = _summary(value.func if isinstance(value, functools.partial) else value)
            table.add_row([name, _described(value, name, summary)])
    return table


def _access(value: ParameterValue) -> str:
    if value.readable and value.writable:
        return "read-write"
    return "read-only" if value.readable else "write-only" if value.writable else "no access"


def _device_table(device: Parameterizable) -> PrettyTable:
    table = get_default_table(["Name", "Kind", "Description"], widths=[20, 22, None])
    for value in device:
        kind = type(value).__name__
        kind = (
            kind[: -len("Value")] if kind.endswith("Value") and kind != "ParameterValue" else "Parameter"
        ).lower()
        unit = _unit(value)
        kind += f" [{unit}]" if unit else ""
        table.add_row([value.name, f"{kind}\n{_access(value)}", value.help or ""])
    cls = type(device)
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in device:
            continue
        attribute = inspect.getattr_static(cls, name)
        if isinstance(attribute, (staticmethod, classmethod)):
            attribute = attribute.__func__
        if not inspect.isfunction(attribute):
            continue
        kind = "method, returns a Future" if is_async(attribute) else "method"
        bound = getattr(device, name)
        table.add_row([name, kind, _described(bound, name, _summary(attribute))])
    return table


def _described(func: Any, name: str, summary: str) -> str:
    """A table cell: the signature, and the docstring's summary line below it."""
    return _signature(func, name) + (f"\n{summary}" if summary else "")


# -- code ------------------------------------------------------------------------------------------


def _highlighted(source: str) -> str:
    try:
        from pygments import highlight
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pygments is optional: plain text then
        return source
    return highlight(source, PythonLexer(), TerminalFormatter())


def code_of(func: Any) -> None:
    """Print the source code of ``func`` (a function, method, class or module) to standard output.

    Decorated functions (``async_`` ones) show the function they decorate; a
    :func:`functools.partial` the function it wraps. The code is
    syntax-highlighted only when standard output is a terminal and Pygments
    is installed; otherwise it is printed as plain text.

    :raises SessionError: naming ``func`` if its source is not available (a
        builtin, an object that is not code, a function typed into the shell).
    """
    target = func
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.isfunction(target) or inspect.ismethod(target):
        target = inspect.unwrap(target)
    try:
        source = inspect.getsource(target)
    except (TypeError, OSError) as error:
        shown = name_of(func) if callable(func) else instance_name(func)
        raise SessionError(f"code_of({shown}): its source code is not available ({error})") from None
    stream = sys.stdout
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        source = _highlighted(source)
    stream.write(source if source.endswith("\n") else source + "\n")


# -- stopping ----------------------------------------------------------------------------------------

# The futures of the background polls of check_emergency_stop(): never cancelled by abort_awaiting().
# A WeakSet, thread-safe for add and membership tests; written by check_emergency_stop().
_monitors: weakref.WeakSet = weakref.WeakSet()


def _end_polls(reason: str) -> None:
    """End every poll of :func:`check_emergency_stop` (the session is over); do not wait for them."""
    for future in list(_monitors):
        request_cancel_logged(future, reason)


def _skip_names(skip: Any, helper: str = "abort_awaiting") -> Tuple[str, ...]:
    if skip is None:
        return ()
    if isinstance(skip, str):
        return (skip,)
    if isinstance(skip, Iterable):
        names = tuple(skip)
        if all(isinstance(name, str) for name in names):
            return names
    raise SessionError(
        f"{helper}(skip={describe_value(skip)}): skip is a name or a list of names of operations"
    )


def _is_skipped(future: Future, names: Tuple[str, ...]) -> bool:
    if not names:
        return False
    full = future.name
    call = full.split("(", 1)[0]
    return full in names or call in names or call.rsplit(".", 1)[-1] in names


def _awaited() -> List[Any]:
    """The futures Concert's pool runs or has queued, and those any thread waits for, once each."""
    found: Dict[int, Any] = {}
    for call in executor.running():
        found.setdefault(id(call.future), call.future)
    for thread in threading.enumerate():
        if thread.ident is not None:
            for future in awaited_by(thread.ident):
                found.setdefault(id(future), future)
    return list(found.values())


def _running_on(device: Any) -> List[Any]:
    """The futures of the calls running on ``device`` now (see :mod:`concert.operations`), a snapshot."""
    calls = getattr(device, "__dict__", {}).get("_calls")
    if not calls:
        return []
    for _ in range(100):
        try:
            return list(calls)  # one step for a dict keyed by futures (identity hashes: no Python code runs)
        except RuntimeError:  # changed size meanwhile
            continue
    return []


def _abort(names: Tuple[str, ...], reason: str, before: Optional[int] = None) -> List[Future]:
    """Ask the operations of :func:`_awaited` to stop (not ``names``; only those submitted ``before``)."""
    current = current_future()
    stopped = []
    for future in _awaited():
        if future.done() or future is current or future in _monitors or _is_skipped(future, names):
            continue
        if before is not None and getattr(future, "order", 0) >= before:
            continue  # submitted after the stop began: new work, which runs
        if request_cancel_logged(future, reason):
            stopped.append(future)
    return stopped


def task_name(task: Any) -> str:
    """The name of an asyncio task for messages.

    The name it was given (:func:`concert.coroutines.aio.start` names a task
    that waits for a Concert future after it, ``LinearMotor#1.move(+5 mm)``),
    else its coroutine's, ``ramp()``.
    """
    given = task.get_name()
    if not given.startswith("Task-"):
        return given
    coroutine = task.get_coro()
    name = getattr(coroutine, "__qualname__", None) or getattr(coroutine, "__name__", None)
    if not isinstance(name, str):
        return given
    return name.rsplit("<locals>.", 1)[-1] + "()"


def _task_is_skipped(task: Any, names: Tuple[str, ...]) -> bool:
    if not names:
        return False
    shown = task_name(task)
    return task.get_name() in names or shown in names or shown[:-2] in names


def _running_tasks() -> List[Any]:
    """The tasks of :func:`concert.coroutines.aio.start` not ended yet (none before it was imported)."""
    aio = sys.modules.get("concert.coroutines.aio")
    running_tasks = getattr(aio, "running_tasks", None)
    if "asyncio" not in sys.modules or running_tasks is None:
        return []
    return [task for task in running_tasks() if not task.done()]


def _cancel_tasks(names: Tuple[str, ...], reason: str, tasks: Optional[List[Any]] = None) -> List[Any]:
    """Cancel the asyncio tasks :func:`concert.coroutines.aio.start` made (not ``names``); return them.

    A task is cancelled in its loop's thread: directly when that is this
    thread's running loop, else through ``loop.call_soon_threadsafe`` (it
    happens when the loop next runs). The task calling this is left alone.
    ``tasks`` are those running when the stop began (all running now by
    default): one of them that has ended cancelled since -- the Concert
    future it awaited was stopped first -- is among those returned too.
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:  # no task can exist before asyncio is imported
        return []
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    current = asyncio.current_task() if here is not None else None
    cancelled = []
    for task in _running_tasks() if tasks is None else tasks:
        if task is current or _task_is_skipped(task, names):
            continue
        if task.done():
            if task.cancelled():  # its future was stopped meanwhile: stopped by this all the same
                cancelled.append(task)
            continue
        loop = task.get_loop()
        if loop is here:
            task.cancel(reason)
        else:
            try:
                loop.call_soon_threadsafe(task.cancel, reason)
            except RuntimeError:  # its loop is closed: the task can never run again
                continue
        cancelled.append(task)
    return cancelled


def abort_awaiting(skip: Union[str, Iterable[str], None] = None) -> List[Any]:
    """Cancel the operations and tasks Concert runs in the background; return those asked to stop.

    The operations are the calls the pool runs or has queued (every
    ``async_`` call not finished yet) and the futures any thread is waiting
    for. Each gets a cancel request with reason ``abort_awaiting()``: queued
    ones never run; running ones have their stop actions run in the calling
    thread (a moving motor is stopped before this returns) and end
    cancelled. The tasks are the asyncio tasks started with
    :func:`concert.coroutines.aio.start` (or a ``@background`` function)
    that have not ended: each is cancelled in its own loop's thread, when
    that loop next runs (at once if it is the caller's). It does not wait
    for any of them to end. The list returned holds the
    futures first, then the tasks.

    ``skip`` is a name, or a list of names, of operations left running: an
    operation is skipped if a name is its full name
    (``'LinearMotor#1.move(+5 mm)'``), the call without arguments
    (``'LinearMotor#1.move'``) or the function's name (``'move'``); a task
    if a name is its coroutine's name (``'ramp'`` or ``'ramp()'``) or the
    task's name. The operation or task calling this, and the polls of
    :func:`check_emergency_stop`, are never cancelled. A stop action that
    fails is logged, and the others are still asked. Callable from any
    thread.

    :raises SessionError: if ``skip`` is neither a name nor a list of names.
    """
    names = _skip_names(skip)
    tasks = _running_tasks()  # before their futures are stopped, which may end them
    futures: List[Any] = _abort(names, "abort_awaiting()")
    return futures + _cancel_tasks(names, "abort_awaiting()", tasks)


class Stopped(NamedTuple):
    """What :func:`stop_all` stopped, as names for messages (each list in the order stopped)."""

    #: The Concert operations asked to stop (``LinearMotor#1.move(+5 mm)``).
    operations: List[str]
    #: The asyncio tasks cancelled (``ramp()``).
    tasks: List[str]
    #: The devices whose ``emergency_stop()`` ran, by their names in the session (``motor``).
    devices: List[str]
    #: The devices whose ``emergency_stop()`` raised (logged with the traceback).
    failed: List[str]

    def summary(self, reason: str) -> str:
        """The line saying what ``reason`` stopped: ``concert: Ctrl-K stopped 1 device(s): motor; ...``."""
        parts = []
        if self.devices:
            parts.append(f"stopped {len(self.devices)} device(s): {_listed(self.devices)}")
        if self.operations:
            parts.append(f"cancelled {len(self.operations)} operation(s): {_listed(self.operations)}")
        if self.tasks:
            parts.append(f"cancelled {len(self.tasks)} task(s): {_listed(self.tasks)}")
        if self.failed:
            parts.append(f"emergency_stop() FAILED for {_listed(self.failed)} (see the log)")
        if not parts:
            return f"concert: {reason}: nothing to stop (no device in the session, nothing running)"
        return f"concert: {reason} " + "; ".join(parts)


def _listed(names: List[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def stop_all(
    namespace: Namespace = None,
    reason: str = "stop_all()",
    report: bool = True,
    progress: Optional[Callable[[List[str]], None]] = None,
) -> Stopped:
    """Stop everything the session does: what ``Ctrl-K``, ``Ctrl-\\`` and a tripped emergency check do.

    In this order: every Concert operation submitted before this call
    that the pool runs or has queued, and every future a thread waits for,
    gets a cancel request with ``reason`` (stop actions run in the calling
    thread; the operation's :class:`~concurrent.futures.CancelledError`
    then says ``... was stopped by <reason>``); every asyncio task started
    with :func:`concert.coroutines.aio.start` is cancelled (in its loop's
    thread, see :func:`abort_awaiting`); ``emergency_stop()`` is called on
    every device of ``namespace`` (the session's by default, see the module
    documentation), all at once, each in a thread of its own (a single
    device in the calling thread), so that a device slow to stop holds
    none of the others up -- that also stops the calls running on the
    device outside any future, such as a blocking ``motor.position = ...``
    typed at the prompt, which are listed with the operations; last, the
    operations submitted before this call that the first look missed are
    asked to stop too. Work submitted after this call began is new work
    and runs (a device's own fence, see
    :meth:`~concert.devices.base.Device.emergency_stop`, still refuses
    what was submitted before *its* stop). The polls of
    :func:`check_emergency_stop` and the operation calling this are left
    running. A device whose ``emergency_stop()`` raises is logged with its
    traceback and the others are still stopped; nothing here raises for a
    device.

    ``progress``, if given, is called in the calling thread with the names
    of the devices whose ``emergency_stop()`` has not returned yet: first
    with all of them, then each time one returns (last with ``[]``).

    With ``report`` one line on standard error and a log warning say what
    was stopped (:meth:`Stopped.summary`); without, the caller says it, and
    the log has it at level ``INFO``. Returns once every
    device's ``emergency_stop()`` has returned; it does not wait for the
    operations to end. Callable from any thread, at any time; a Ctrl-C
    while it waits for the devices ends the wait (they go on stopping).

    :raises SessionError: for a ``namespace`` that is neither mapping nor module.
    """
    mapping = _resolve(namespace, "stop_all")
    began = next_order()  # what is submitted from now on is new work
    devices = _devices(mapping)
    running_tasks = _running_tasks()  # before their futures are stopped, which may end them
    # First: the operations' CancelledError then names the reason, not the device's stop or a task's end.
    operations = _abort((), reason, before=began)
    # The calls running on the devices outside any future (a blocking `motor.position = ...`) are
    # stopped by the devices' emergency_stop() below, which asks every call running on it to stop.
    # (Asking them here first would name the reason in their CancelledError, but the device's call
    # can then end before its stop actions have, and return as if it had not been stopped.)
    current = current_future()
    calls = [
        future
        for _, device in devices
        for future in _running_on(device)
        if not future.done() and future is not current and getattr(future, "order", 0) < began
    ]
    tasks = [task_name(task) for task in _cancel_tasks((), reason, running_tasks)]
    stopped, failed = _emergency_stop_all(devices, reason, progress)
    again = _abort((), reason, before=began)  # submitted before, missed by the first look
    for future in again + calls:
        if all(future is not other for other in operations):
            operations.append(future)
    result = Stopped([future.name for future in operations], tasks, stopped, failed)
    if report:
        line = result.summary(reason)
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # no standard error any more: the log still has it
            pass
    LOG.log(
        logging.WARNING if report else logging.INFO,
        "%s: stopped %d device(s) (%s) and cancelled %d operation(s) (%s) and %d task(s) (%s)",
        reason,
        len(stopped),
        ", ".join(stopped) or "none",
        len(result.operations),
        ", ".join(result.operations) or "none",
        len(tasks),
        ", ".join(tasks) or "none",
    )
    return result


def _emergency_stop_all(
    devices: List[Tuple[str, Any]], reason: str, progress: Optional[Callable[[List[str]], None]]
) -> Tuple[List[str], List[str]]:
    """Call ``emergency_stop()`` on every device at once; return the names stopped and those that failed.

    Both lists are in the order of ``devices``. Each device stops in a
    thread of its own (a single one in the calling thread); this returns
    when all have returned.
    """
    outcome: Dict[str, bool] = {}  # names -> whether emergency_stop() returned; guarded by `changed`
    changed = threading.Condition()

    def stop(names: str, device: Any) -> None:
        ok = False
        try:
            device.emergency_stop()
            ok = True
        except Exception:  # the other devices must still be stopped
            LOG.exception("%s: emergency_stop() of %s failed", reason, names)
        finally:
            with changed:
                outcome[names] = ok
                changed.notify_all()

    def report() -> int:
        with changed:
            still = [names for names, _ in devices if names not in outcome]
        if progress is not None:
            try:
                progress(still)
            except Exception:
                LOG.exception("%s: the progress callback of stop_all() raised", reason)
        return len(still)

    report()
    if len(devices) == 1:
        stop(*devices[0])
    else:
        for names, device in devices:
            thread = threading.Thread(target=stop, args=(names, device), name=f"concert-stop-{names}")
            thread.daemon = True
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (interpreter shutdown): stop it here
                stop(names, device)
    waiting = report()
    while waiting:
        with changed:
            while len(outcome) == len(devices) - waiting:
                changed.wait(0.1)
        waiting = report()
    stopped = [names for names, _ in devices if outcome.get(names)]
    failed = [names for names, _ in devices if not outcome.get(names)]
    return stopped, failed


def _emergency(mapping: Mapping, reason: str, exit_session: bool) -> None:
    """What a tripped check does: :func:`stop_all` on the check's namespace, then maybe exit."""
    stop_all(mapping, reason)
    if exit_session:
        _exit_session(reason)


#: Why the session is asked to end, set by ``check_emergency_stop(..., exit_session=True)`` just before
#: it sends SIGTERM (the shell names it in its last line); written once, by that poll's thread.
exit_reason: Optional[str] = None


def _exit_session(reason: str) -> None:
    """End the session's process with SIGTERM, after flushing what it wrote.

    In ``concert start`` the shell's SIGTERM handler ends the shell as
    ``exit`` does (:mod:`concert.session.shell`); elsewhere SIGTERM ends
    the process, unless the session handles that signal itself.
    """
    global exit_reason
    exit_reason = reason
    LOG.critical("%s: exiting the session (exit_session=True)", reason)
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def check_emergency_stop(
    check: Callable[[], Any],
    poll_interval: Any = 0.1,
    exit_session: bool = False,
    namespace: Namespace = None,
) -> Future:
    """Poll ``check()`` in the background; when it turns true, stop everything; return the poll's Future.

    Every ``poll_interval`` (a time quantity or seconds, > 0; 0.1 s by default) ``check()`` is
    called in a thread of its own (in either mode of
    :data:`concert.config.DISABLE_ASYNC`: it is a monitor, not an operation).
    When it returns something true, the emergency stop happens once:
    :func:`stop_all` with reason ``emergency stop (<check>() became
    true)`` -- every background operation and task is cancelled,
    ``emergency_stop()`` is called on every device of the namespace (the
    session's by default, looked at when the stop happens), and one line
    on standard error and a log warning say what was stopped. Then nothing
    more is done while ``check()`` stays true; once it has returned
    something false the poll is armed again, and the next time it turns
    true everything is stopped again.

    With ``exit_session`` the session's process ends after the stop: it
    is sent ``SIGTERM`` (logs and standard streams flushed first). In the
    shell (``concert start``) that ends the shell as ``exit`` does, with its
    terminal restored, its leftovers stopped and its log closed, whatever
    the shell is doing; in any other process SIGTERM ends it at once,
    unless the session installed a handler for that signal.

    A ``check`` that raises is logged (once until it returns again) and
    counts as neither true nor false: polling goes on. A device whose
    ``emergency_stop()`` raises is logged and the others are stopped.

    The returned :class:`~concert.futures.Future` runs until cancelled:
    ``future.cancel()`` ends the poll (and returns ``True`` once it has
    ended); :func:`abort_awaiting` never cancels it.

    :raises SessionError: if ``check`` is not callable or ``poll_interval`` is not positive.
    :raises UnitError: if ``poll_interval`` is not a duration.
    """
    if not callable(check):
        raise SessionError(
            f"check_emergency_stop(check={describe_value(check)}): check must be a callable "
            "returning whether to stop"
        )
    interval = to_seconds(poll_interval, "check_emergency_stop(poll_interval)")
    if interval <= 0:
        raise SessionError(
            f"check_emergency_stop(poll_interval={describe_value(poll_interval)}): "
            "the poll interval must be longer than zero"
        )
    mapping = _resolve(namespace, "check_emergency_stop")
    name = f"check_emergency_stop({name_of(check)})"
    reason = f"emergency stop ({name_of(check)}() became true)"
    ended = threading.Event()

    def poll() -> None:
        with on_cancel(ended.set):
            tripped = failing = False
            while not ended.is_set():
                try:
                    value = bool(check())
                except Exception:
                    if not failing:
                        LOG.exception("%s: check %s() raised; polling goes on", name, name_of(check))
                    failing = True
                else:
                    failing = False
                    if value and not tripped:
                        _emergency(mapping, reason, exit_session)
                    tripped = value
                ended.wait(interval)

    future = run_in_thread(poll, name=name)
    _monitors.add(future)
    return future
