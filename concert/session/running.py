"""``concert run``, and what it shares with ``concert start``: finding a session, running it as ``__main__``.

A session is found by name in the store (:mod:`concert.session.store`) or
given as a file (:func:`find_session`); :func:`run_source` executes it in a
namespace that is the ``__main__`` module's, so that the session helpers'
default namespace (:mod:`concert.session.utils`) is the session's.
Top-level ``await`` works in a session file: such a session runs as a
coroutine on the calling thread's Concert loop
(:func:`concert.coroutines.aio.get_event_loop`), which in the shell is the
loop its prompt runs.

``concert run NAME|FILE [ARGS...]`` runs a session without a shell: the
session sees ``sys.argv == [FILE, *ARGS]`` exactly as given (a ``--``
among them included) and its directory first on ``sys.path``
(:func:`as_script`, which ``concert start`` uses too); the exit status is
0 when it ends normally, 1 when it raises (its traceback is printed,
without Concert's frames, then one line saying so, :func:`one_line`), what
it passes to ``sys.exit()``, and 130 after Ctrl-C, which stops every
operation still running (stop actions run: motors stop where they are)
and prints one line saying what was stopped (:func:`interrupted`). A
session that ends normally waits for the operations and tasks it started
in the background, as a script does.

Nothing heavy is imported with this module (``concert --help`` loads every
command's module): Concert's devices, asyncio and IPython are imported
when a session needs them -- and never by the handling of a Ctrl-C, which
may have cut a session's ``import numpy`` short (:func:`stop_running`).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import logging
import os
import signal
import sys
import threading
import types
from pathlib import Path
from typing import Any, Callable, Iterator, List, MutableMapping, Optional, Sequence, TextIO, Tuple

from concert.cli import SubCommand
from concert.exceptions import ConfigurationError, SessionStoreError
from concert.session import store

__all__ = [
    "LEVELS",
    "Interrupt",
    "RunCommand",
    "Session",
    "add_logging_arguments",
    "as_main",
    "as_script",
    "compile_session",
    "find_session",
    "find_target",
    "interrupted",
    "logging_to",
    "one_line",
    "print_failure",
    "run_source",
    "session_lock",
    "stop_running",
]

LOG = logging.getLogger(__name__)

#: The values ``--loglevel`` takes (in any case), least to most severe.
LEVELS = ("debug", "info", "warning", "error", "critical")

#: The log file of a session that is not in the store, in the session directory
#: (``concert log`` without a name shows it).
UNNAMED_LOG = "concert.log"

_CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, set for code using top-level await (inspect imports slowly)

_LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"


class Session:
    """A session to run: its source, where it comes from, and what messages call it.

    ``name`` is its name in the store, or ``None`` for a file outside the
    store (or no session at all, ``path`` ``None`` and ``source`` empty).
    """

    def __init__(self, name: Optional[str], path: Optional[Path], source: str) -> None:
        self.name = name
        self.path = path
        self.source = source

    @property
    def label(self) -> str:
        """What the prompt and messages call the session: its name, else its file's stem, else ``concert``."""
        if self.name is not None:
            return self.name
        return self.path.stem if self.path is not None else "concert"

    @property
    def filename(self) -> str:
        """The file name its code is compiled under (tracebacks show it)."""
        return str(self.path) if self.path is not None else "<session>"

    @property
    def log_path(self) -> Path:
        """Its log: ``<name>.log`` in the store, ``concert.log`` in the session directory for any other."""
        if self.name is not None:
            return store.log_path(self.name)
        return store.session_dir() / UNNAMED_LOG

    @property
    def multiinstance(self) -> bool:
        """Whether it sets ``MULTIINSTANCE = True`` (read from the source, not run).

        :raises SessionStoreError: its source is not valid Python.
        """
        return bool(self.source) and store.wants_multiinstance(self.source, self.filename)

    def __repr__(self) -> str:
        return f"Session({self.label!r}, {self.filename})"


def _stored(name: str) -> Session:
    path = store.path_of(name)
    if not path.is_file():
        raise SessionStoreError(
            f"there is no session {name!r} (in {store.session_dir()}); `concert ls` lists them"
        )
    return Session(name, path, store.read_source(path))


def _from_file(filename: str) -> Session:
    given = Path(filename).expanduser()
    if given.is_dir():
        raise SessionStoreError(f"cannot run {filename}: it is a directory, not a Python file")
    source = store.read_source(given)  # raises for a missing or unreadable file, named as given
    path = given.absolute()
    stem = path.stem
    if stem.isidentifier():  # the file of a stored session is that session
        with contextlib.suppress(SessionStoreError, OSError):
            if store.path_of(stem).resolve() == path.resolve():
                return Session(stem, path, source)
    return Session(None, path, source)


def _looks_like_a_file(target: str) -> bool:
    separated = os.sep in target or (os.altsep is not None and os.altsep in target)
    return target.endswith(".py") or separated or os.path.isfile(target)


def _checked(session: Session) -> Session:
    if session.source:  # parsed, not run: a syntax error is refused before anything runs
        store.wants_multiinstance(session.source, session.filename)
    return session


def find_session(name: Optional[str] = None, filename: Optional[str] = None) -> Session:
    """Return the session to run: ``name`` from the store, else the file ``filename``, else an empty one.

    A ``filename`` that is the file of a stored session is that session.

    :raises SessionStoreError: both given, a bad or unknown name, a file that cannot be read or that
        is not valid Python (the message names the file and the line).
    """
    if name is not None and filename is not None:
        raise SessionStoreError(f"give a session name or --filename, not both ({name!r} and {filename!r})")
    if name is not None:
        return _checked(_stored(store.validate_name(name)))
    if filename is not None:
        return _checked(_from_file(filename))
    return Session(None, None, "")


def find_target(target: str) -> Session:
    """The session ``concert run`` was given: a file if ``target`` looks like one, else a stored name.

    ``target`` is a file when it ends in ``.py``, contains a path separator,
    or names an existing file; otherwise it is a session name.

    :raises SessionStoreError: a bad or unknown name, a file that cannot be read or is not valid Python.
    """
    if _looks_like_a_file(target):
        return _checked(_from_file(target))
    return _checked(_stored(store.validate_name(target)))


# -- logging -----------------------------------------------------------------------------------------------


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--loglevel LEVEL`` and ``--logto stderr|file`` to a command's parser."""
    parser.add_argument(
        "--loglevel",
        default="info",
        metavar="LEVEL",
        help=f"the least severe messages logged: {', '.join(LEVELS)} (default: info)",
    )
    parser.add_argument(
        "--logto",
        default="file",
        metavar="stderr|file",
        help="where the log goes: the session's log file (default; `concert log` shows it) or stderr",
    )


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at each record (the shell's prompt replaces it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler sets it; sys.stderr is always used
        pass


@contextlib.contextmanager
def logging_to(session: Session, loglevel: str = "info", logto: str = "file") -> Iterator[Optional[Path]]:
    """Send the log to the session's log file (appended to) or stderr while the block runs.

    The root logger gets one handler at ``loglevel``; both are put back when
    the block ends. Yields the log file's path, or ``None`` for stderr.

    :raises ConfigurationError: ``loglevel`` or ``logto`` is not one of the values they take.
    :raises SessionStoreError: the log file cannot be opened.
    """
    level = str(loglevel).lower()
    if level not in LEVELS:
        raise ConfigurationError(f"--loglevel {loglevel!r}: give one of {', '.join(LEVELS)}")
    where = str(logto).lower()
    if where not in ("stderr", "file"):
        raise ConfigurationError(f"--logto {logto!r}: give stderr or file")
    path = None
    if where == "file":
        path = session.log_path
        store.session_dir(create=True)
        try:
            handler: logging.Handler = logging.FileHandler(path, encoding="utf-8", delay=False)
        except OSError as error:
            raise SessionStoreError(f"cannot write the log {path}: {error.strerror or error}") from None
    else:
        handler = _Stderr()
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


@contextlib.contextmanager
def session_lock(session: Session) -> Iterator[None]:
    """Hold the session's lock while the block runs, unless it allows several instances.

    A stored session without ``MULTIINSTANCE = True`` takes its lock
    (:func:`concert.session.store.lock`), refused while another live process
    holds it; a stale lock left by a dead process is taken over. A
    ``MULTIINSTANCE`` session takes the lock if it is free (so that ``rm``
    and ``mv`` still see it running) and runs without it otherwise. A file
    outside the store takes no lock.

    :raises SessionStoreError: another process runs the session (the message gives its PID), or
        its source is not valid Python.
    """
    if session.name is None:
        yield
        return
    if session.multiinstance:
        try:
            held = store.lock(session.name)
        except SessionStoreError:
            yield
            return
    else:
        held = store.lock(session.name)
    with held:
        yield


# -- running a session's code ---------------------------------------------------------------------------


def compile_session(session: Session) -> types.CodeType:
    """Compile the session's source (top-level ``await`` allowed).

    :raises SyntaxError: it is not valid Python.
    """
    flags = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
    return compile(session.source, session.filename, "exec", flags=flags, dont_inherit=True)


def run_source(
    session: Session,
    namespace: MutableMapping[str, Any],
    on_interrupt: Optional[Callable[[Optional[int]], None]] = None,
) -> None:
    """Run the session's code in ``namespace`` (its ``__file__`` set); raise what it raises.

    A session using top-level ``await`` runs as a task on the calling
    thread's Concert loop (:func:`concert.coroutines.aio.get_event_loop`)
    until it ends. Ctrl-C then calls ``on_interrupt(line)`` (``line``: the
    session's line the task was suspended at, or ``None``), cancels the
    task -- and with it the Concert future it awaits -- runs it until it
    has ended, and raises the ``KeyboardInterrupt`` again.

    :raises SyntaxError: the source is not valid Python.
    :raises RuntimeError: it uses top-level ``await`` and the loop is running already.
    """
    if session.path is not None:
        namespace["__file__"] = str(session.path)
    code = compile_session(session)
    if not code.co_flags & _CO_COROUTINE:
        exec(code, namespace)  # the session is the user's own code
        return
    from concert.coroutines.aio import get_event_loop

    loop = get_event_loop()
    if loop.is_running():
        raise RuntimeError(f"{session.label} uses top-level await, but the event loop is running already")
    coroutine = eval(code, namespace)
    task = loop.create_task(coroutine)
    try:
        loop.run_until_complete(task)
    except KeyboardInterrupt:
        if task.done():
            raise
        frame = coroutine.cr_frame
        if on_interrupt is not None:
            on_interrupt(None if frame is None else frame.f_lineno)
        task.cancel("Ctrl-C")
        try:
            loop.run_until_complete(task)
        except BaseException:  # its CancelledError, or what its clean-up raised: Ctrl-C wins
            pass
        raise


def _trimmed(error: BaseException, filename: str) -> Optional[types.TracebackType]:
    """The error's traceback from the first frame of the session's file on (``None`` if none is there)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


_CONCERT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # Concert's package


def _is_concerts(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_CONCERT)


def print_failure(error: BaseException, session: Session, stream: Optional[TextIO] = None) -> None:
    """Print ``error``'s traceback from the session's first frame on (Concert's runner frames left out).

    After a Ctrl-C (:class:`KeyboardInterrupt`) the frames of Concert's
    own code it was caught in last (a wait, the signal handler) are left
    out too: what matters is the session's line it stopped; one that
    arrived while a top-level ``await`` waited shows no frame at all (the
    event loop's are of no use, the caller says the line).
    """
    import traceback

    stream = sys.stderr if stream is None else stream
    tb = _trimmed(error, session.filename)
    if tb is None and not isinstance(error, (SyntaxError, KeyboardInterrupt)):  # raised before it ran
        tb = error.__traceback__
    shown = traceback.TracebackException(type(error), error, tb)
    if isinstance(error, KeyboardInterrupt):
        frames = list(shown.stack)
        while len(frames) > 1 and _is_concerts(frames[-1].filename):
            frames.pop()
        shown.stack = traceback.StackSummary.from_list(frames)
    stream.write("".join(shown.format()))
    stream.flush()


def one_line(error: BaseException) -> str:
    """The error on one line: ``ValueError: bad value`` (a message of several lines joined)."""
    kind = type(error)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    text = error.msg if isinstance(error, SyntaxError) and error.msg else str(error)
    text = " ".join(text.split())
    return f"{name}: {text}" if text else name


def _where(error: BaseException, session: Session) -> str:
    """``' at demo.py, line 7'``: the last line of the session the error passed through ('' if none)."""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == session.filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None:
        return ""
    return f" at {os.path.basename(session.filename)}, line {line}"


def _waited_for(error: BaseException, session: Session) -> List[str]:
    """The Concert futures the interrupted code was waiting for or running (now cancelled), outermost first.

    Found in the local variables of the frames the interrupt passed through,
    those of the session's own file left out (a future it stored earlier
    was not interrupted).
    """
    future_class = getattr(sys.modules.get("concert.futures"), "Future", None)
    if not isinstance(future_class, type):  # no future exists before concert.futures was imported
        return []
    found: List[str] = []
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename != session.filename:
            for value in list(frame.f_locals.values()):
                if isinstance(value, future_class) and value.cancelled() and value.name not in found:
                    found.append(value.name)
        tb = tb.tb_next
    return found


@contextlib.contextmanager
def as_script(session: Session, argv: Sequence[str] = ()) -> Iterator[None]:
    """``sys.argv`` and ``sys.path`` as ``python FILE ARGS...`` has them, while the block runs.

    ``sys.argv`` is ``[session file, *argv]`` (``['', *argv]`` without a
    file, as for ``python``) and the session file's directory comes first on
    ``sys.path``, so that a session imports the modules beside it. Both are
    put back afterwards. ``concert run`` and ``concert start`` both use it.
    """
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [str(session.path) if session.path is not None else "", *argv]
    if session.path is not None:
        sys.path.insert(0, str(session.path.parent))
    try:
        yield
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path


@contextlib.contextmanager
def as_main(session: Session, argv: Sequence[str]) -> Iterator[MutableMapping[str, Any]]:
    """A fresh ``__main__`` module for the session while the block runs; yields its namespace.

    ``sys.argv`` and ``sys.path`` are set by :func:`as_script`; all three
    are put back afterwards.
    """
    module = types.ModuleType("__main__")  # the session's docstring becomes its __doc__ when it runs
    module.__dict__.update({"__builtins__": builtins, "__spec__": None, "__loader__": None})
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    try:
        with as_script(session, argv):
            yield module.__dict__
    finally:
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


def _wait_for_background() -> None:
    """Wait, as a script's end does, for the operations and tasks the session left running."""
    if "concert.executor" not in sys.modules and "concert.coroutines.aio" not in sys.modules:
        return  # the session never ran anything of Concert's in the background
    import concurrent.futures

    from concert import executor
    from concert.coroutines import aio

    while True:
        loop = aio.get_event_loop() if "asyncio" in sys.modules else None
        tasks = [task for task in aio.running_tasks() if not task.done() and task.get_loop() is loop]
        if tasks:
            import asyncio

            aio.run_in_loop(asyncio.wait(tasks))
        futures = [call.future for call in executor.running()]
        if futures:
            concurrent.futures.wait(futures)
        if not tasks and not futures:
            return


def _ignore_ctrl_c() -> Any:
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_running(reason: str = "Ctrl-C") -> List[str]:
    """Ask every Concert operation and task still running to stop; return their names. Never raises.

    What a Ctrl-C that ended a session does (:func:`concert.session.utils.stop_all`
    without devices). Nothing is imported when Concert never ran anything
    (nothing can be running then), and nothing heavy otherwise: the Ctrl-C
    may have cut an ``import numpy`` short, after which numpy cannot be
    imported again. A failure is logged.
    """
    if "concert.executor" not in sys.modules and "concert.coroutines.aio" not in sys.modules:
        return []
    try:
        from concert.session.utils import stop_all

        stopped = stop_all({}, reason, report=False)
    except Exception:
        LOG.exception("%s: stopping what still ran failed", reason)
        return []
    return stopped.operations + stopped.tasks


class Interrupt:
    """What a Ctrl-C during a session's top-level ``await`` found before its task was cancelled.

    Given to :func:`run_source` as ``on_interrupt``; read by :func:`interrupted`.
    """

    def __init__(self) -> None:
        self.line: Optional[int] = None
        self.stopped: List[str] = []

    def __call__(self, line: Optional[int]) -> None:
        self.line = line
        self.stopped = stop_running("Ctrl-C")


def interrupted(
    session: Session, error: BaseException, interrupt: Optional[Interrupt] = None
) -> Tuple[str, str]:
    """Stop what still runs after a Ctrl-C ended the session; say where it was and what was stopped.

    Returns ``(' at demo.py, line 7', 'LinearMotor#1.move(+500 mm), ...')``:
    the session's line the Ctrl-C arrived at (``''`` if none) and the names
    of the operations and tasks stopped (``''`` if none), the future the
    session waited for first. Never raises; imports nothing heavy (see
    :func:`stop_running`).
    """
    names: List[str] = []
    where = ""
    try:
        stopped = stop_running("Ctrl-C")
        names = (interrupt.stopped if interrupt is not None else []) + _waited_for(error, session)
        names = list(dict.fromkeys(names + stopped))
        where = _where(error, session)
        if not where and interrupt is not None and interrupt.line is not None:
            where = f" at {os.path.basename(session.filename)}, line {interrupt.line}"
    except Exception:  # the one line and the exit status come whatever happens
        LOG.exception("Ctrl-C: looking at what was stopped failed")
    return where, ", ".join(names)


class RunCommand(SubCommand):
    """``concert run``."""

    name = "run"
    help = "run a session (or a Python file) without a shell"

    _parser: Optional[argparse.ArgumentParser] = None  # the parser its arguments came from (for usage errors)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_logging_arguments(parser)
        # One REMAINDER: the session and its arguments exactly as given, a `--` among them included
        # (argparse drops a `--` that follows a positional argument).
        parser.add_argument(
            "command_line",
            nargs=argparse.REMAINDER,
            metavar="NAME|FILE [ARGS...]",
            help="a session's name or a Python file, and the arguments it gets in sys.argv[1:]",
        )
        parser.usage = f"{parser.prog} [--loglevel LEVEL] [--logto stderr|file] NAME|FILE [ARGS...]"
        self._parser = parser

    def run(self, command_line: Sequence[str] = (), loglevel: str = "info", logto: str = "file") -> int:
        """Run the session; return 0, 1 if it raised, 130 after Ctrl-C (``SystemExit`` is passed on).

        ``command_line`` is ``[NAME|FILE, *ARGS]``; a ``--`` in front of it
        only ends ``concert run``'s own options. The session sees
        ``sys.argv == [FILE, *ARGS]``, as ``python FILE ARGS...`` would.

        :raises SessionStoreError: an unknown session or unreadable file, or it runs elsewhere; no
            session given (outside the command line, where that is a usage error, exit status 2).
        :raises ConfigurationError: a bad ``--loglevel`` or ``--logto``.
        """
        words = list(command_line)
        if words[:1] == ["--"]:
            words = words[1:]
        if not words:
            if self._parser is not None:
                self._parser.error("give a session's name or a Python file")
            raise SessionStoreError("give a session's name or a Python file to run")
        found = find_target(words[0])
        with logging_to(found, loglevel, logto), session_lock(found), as_main(found, words[1:]) as namespace:
            LOG.info("concert run: %s (%s) started, PID %d", found.label, found.filename, os.getpid())
            interrupt = Interrupt()
            try:
                try:
                    run_source(found, namespace, interrupt)
                finally:
                    sys.stdout.flush()
                _wait_for_background()
            except KeyboardInterrupt as error:
                _ignore_ctrl_c()  # a second Ctrl-C would only cut the stopping short; the process ends next
                where, names = interrupted(found, error, interrupt)
                line = (
                    f"concert run: {found.label} stopped by Ctrl-C"
                    f"{where or ' while it waited for its background work'}"
                    + (f"; stopped {names}" if names else "")
                )
                LOG.warning("%s", line)
                print(line, file=sys.stderr, flush=True)
                return 130
            except SystemExit as error:
                LOG.info("concert run: %s exited with %r", found.label, error.code)
                raise
            except BaseException as error:  # the session's own failure: its traceback, then one line
                print_failure(error, found)
                line = f"concert run: {found.label} failed{_where(error, found)}: {one_line(error)}"
                trimmed = _trimmed(error, found.filename) or error.__traceback__
                LOG.error("%s", line, exc_info=(type(error), error, trimmed))
                print(line, file=sys.stderr, flush=True)
                return 1
            LOG.info("concert run: %s ended", found.label)
        return 0
