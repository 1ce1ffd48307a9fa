"""The commands of the session store: ``concert init``, ``edit``, ``show``, ``ls``, ``rm``, ``mv``,
``cp``, ``log``, ``import`` and ``export``.

Each is a :class:`~concert.cli.SubCommand` registered in the entry-point
group ``concert.subcommands`` (see ``pyproject.toml``), declared the legacy
way -- a name and an :mod:`argparse` options dictionary -- and doing its work
through :mod:`concert.session.store`. A failure raises
:class:`~concert.exceptions.SessionStoreError`, which the ``concert``
command prints as one line with exit status 1. What a command did is
printed on standard output, one line per file it wrote or removed. A
reader of that output that goes away (``concert ls | head -1``) ends the
command quietly, with exit status 0: every command here derives from
``_StoreCommand``, which wraps the ``run`` of each for that, once.

This module imports nothing heavy: the ``concert`` command loads it to run
any of these commands.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import subprocess
import sys
from typing import Any, Callable, List, Optional, Sequence

from concert.cli import SubCommand
from concert.exceptions import SessionStoreError
from concert.session import store

__all__ = [
    "DEFAULT_EDITOR",
    "CopyCommand",
    "EditCommand",
    "ExportCommand",
    "ImportCommand",
    "InitCommand",
    "ListCommand",
    "LogCommand",
    "MoveCommand",
    "RemoveCommand",
    "ShowCommand",
]

#: The editor ``concert edit`` runs when ``$EDITOR`` is unset or empty.
DEFAULT_EDITOR = "vi"

_FORCE = {"action": "store_true", "help": "replace what exists"}


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _first_line(text: Optional[str]) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0].strip() if lines else ""


def _summary(name: str) -> str:
    """The first line of a session's docstring, or why there is none, for ``concert ls``."""
    try:
        return _first_line(store.docstring(name)) or "(no docstring)"
    except SessionStoreError as error:
        return f"(cannot be read: {error})"


def _quiet_when_the_reader_goes(run: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command's ``run`` so that a closed standard output ends it quietly, with exit status 0.

    Standard output is flushed before ``run`` returns, so that what is still
    buffered meets a gone reader here, and not as Python exits (where it
    would print "Exception ignored ... BrokenPipeError"); then standard output
    is pointed at ``/dev/null`` for whatever is left to flush.
    """

    @functools.wraps(run)
    def wrapped(self: SubCommand, *args: Any, **kwargs: Any) -> Any:
        try:
            status = run(self, *args, **kwargs)
            sys.stdout.flush()
        except BrokenPipeError:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            return 0
        return status

    return wrapped


class _StoreCommand(SubCommand):
    """A command of the store: the ``run`` of each subclass ends quietly when its reader goes away."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__:
            cls.run = _quiet_when_the_reader_goes(cls.__dict__["run"])  # type: ignore[method-assign]


class InitCommand(_StoreCommand):
    """Create a session from a template."""

    def __init__(self) -> None:
        super().__init__(
            "init",
            {
                "name": {"help": "the session's name (a Python identifier)"},
                "--force": _FORCE,
                "--imports": {
                    "default": "",
                    "metavar": "MODULES",
                    "help": "modules the session imports, separated by commas (numpy,scipy.ndimage)",
                },
            },
            help="create a session from a template",
        )

    def run(self, name: str, force: bool = False, imports: str = "") -> None:
        path = store.create(name, imports.split(","), force=force)
        print(f"Created the session {name!r}: {path}")


class EditCommand(_StoreCommand):
    """Edit a session in ``$EDITOR`` (creating it from the template if it does not exist)."""

    def __init__(self) -> None:
        super().__init__(
            "edit",
            {"name": {"help": "the session's name"}},
            help=f"edit a session in $EDITOR (default {DEFAULT_EDITOR}); a new one starts from the template",
        )

    def run(self, name: str) -> None:
        path = store.path_of(name)
        created = False
        if not path.is_file():
            try:
                store.create(name)
                created = True
            except SessionStoreError:
                if not path.is_file():  # else made meanwhile by someone else: edit theirs
                    raise
        template = path.read_bytes() if created else b""
        setting = os.environ.get("EDITOR", "").strip() or DEFAULT_EDITOR
        try:
            argv = shlex.split(setting) or [DEFAULT_EDITOR]
        except ValueError as error:
            self._undo(path, created, template)
            raise SessionStoreError(f"cannot read $EDITOR {setting!r}: {error}") from None
        try:
            status = _wait_for_editor([*argv, str(path)])
        except OSError as error:
            self._undo(path, created, template)
            reason = "no such command" if isinstance(error, FileNotFoundError) else _reason(error)
            raise SessionStoreError(f"cannot run the editor {argv[0]!r} (from $EDITOR): {reason}") from None
        if status != 0:
            kept = "was not created" if self._undo(path, created, template) else "is as the editor left it"
            how = f"was killed by signal {-status}" if status < 0 else f"failed with exit status {status}"
            raise SessionStoreError(f"the editor {setting!r} {how}; {path} {kept}")
        if not path.is_file():
            gone = "nothing was saved" if created else f"the session {name!r} is gone"
            raise SessionStoreError(f"the editor {setting!r} left no file {path}; {gone}")
        try:
            store.docstring(path)
        except SessionStoreError as error:
            raise SessionStoreError(f"saved, but {error}") from None

    @staticmethod
    def _undo(path: os.PathLike, created: bool, template: bytes) -> bool:
        """Remove the session this command created if it is still the untouched template."""
        if not created:
            return False
        try:
            with open(path, "rb") as file:
                if file.read() != template:
                    return False
            os.unlink(path)
        except OSError:
            return False
        return True


def _copy(path: os.PathLike, write: Callable[[bytes], None]) -> None:
    """Pass the bytes of the file ``path`` to ``write``; a read error is a SessionStoreError."""
    try:
        file = open(path, "rb")
    except OSError as error:
        raise SessionStoreError(f"cannot read {path}: {_reason(error)}") from None
    with file:
        while True:
            try:
                chunk = file.read(64 * 1024)
            except OSError as error:
                raise SessionStoreError(f"cannot read {path}: {_reason(error)}") from None
            if not chunk:
                return
            write(chunk)


def _note(message: str) -> None:
    print(f"concert log: {message}", file=sys.stderr, flush=True)


def _wait_for_editor(argv: List[str]) -> int:
    """Run the editor on the terminal and wait for it; return its exit status (negative: a signal)."""
    process = subprocess.Popen(argv)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the editor too: it decides what to do
            continue


class ShowCommand(_StoreCommand):
    """Print a session's docstring, or every session's."""

    def __init__(self) -> None:
        super().__init__(
            "show",
            {"name": {"nargs": "?", "help": "the session's name (default: every session)"}},
            help="print a session's docstring (every session's, each under its name, without NAME)",
        )

    def run(self, name: Optional[str] = None) -> None:
        if name is not None:
            store.validate_name(name)  # a name, never a path
            print(store.docstring(name) or f"(the session {name!r} has no docstring)")
            return
        found = store.names()
        if not found:
            print(f"There are no sessions in {store.session_dir()}.")
            return
        for index, each in enumerate(found):
            try:
                text = store.docstring(each) or "(no docstring)"
            except SessionStoreError as error:
                text = f"(cannot be read: {error})"
            if index:
                print()
            print(each)
            for line in text.splitlines():
                print(f"    {line}".rstrip())


class ListCommand(_StoreCommand):
    """List the sessions with the first line of their docstrings."""

    def __init__(self) -> None:
        super().__init__("ls", {}, help="list the sessions with the first line of their docstrings")

    def run(self) -> None:
        found = store.names()
        if not found:
            print(f"There are no sessions in {store.session_dir()} (`concert init NAME` makes one).")
            return
        width = max(len(name) for name in found)
        for name in found:
            print(f"{name:<{width}}  {_summary(name)}".rstrip())


class RemoveCommand(_StoreCommand):
    """Remove sessions (all or none)."""

    def __init__(self) -> None:
        super().__init__(
            "rm",
            {"names": {"nargs": "+", "metavar": "NAME", "help": "the sessions to remove"}},
            help="remove sessions; each name is checked before any is removed (their logs stay)",
        )

    def run(self, names: Sequence[str]) -> None:
        for path in store.remove_sessions(names):
            print(f"Removed the session {path.stem!r} ({path})")


class MoveCommand(_StoreCommand):
    """Rename a session, with its log."""

    def __init__(self) -> None:
        super().__init__(
            "mv",
            {"old": {"metavar": "OLD"}, "new": {"metavar": "NEW"}, "--force": _FORCE},
            help="rename a session, with its log",
        )

    def run(self, old: str, new: str, force: bool = False) -> None:
        store.move(old, new, force=force)
        print(f"Renamed the session {old!r} to {new!r}")


class CopyCommand(_StoreCommand):
    """Copy a session (not its log)."""

    def __init__(self) -> None:
        super().__init__(
            "cp",
            {"old": {"metavar": "OLD"}, "new": {"metavar": "NEW"}, "--force": _FORCE},
            help="copy a session (not its log)",
        )

    def run(self, old: str, new: str, force: bool = False) -> None:
        store.copy(old, new, force=force)
        print(f"Copied the session {old!r} to {new!r}")


class LogCommand(_StoreCommand):
    """Print a session's log, and with ``--follow`` what is added to it."""

    def __init__(self) -> None:
        super().__init__(
            "log",
            {
                "name": {"nargs": "?", "help": "the session's name (default: sessions started without one)"},
                "--follow": {
                    "action": "store_true",
                    "help": "go on printing what is added, like tail -F, until Ctrl-C",
                },
            },
            help="print a session's log (concert.log, of sessions started without a name, without NAME)",
        )

    def run(self, name: Optional[str] = None, follow: bool = False) -> int:
        path = store.log_path(name)
        if os.path.lexists(path) and not path.is_file():
            what = "a directory" if path.is_dir() else "not a file"
            raise SessionStoreError(f"cannot read {path}: it is {what}")
        if not path.is_file():
            if name is not None and not store.exists(name):
                raise SessionStoreError(f"there is no session {name!r} and no log of it ({path})")
            if not follow:
                whose = f"the session {name!r}" if name else "sessions started without a name"
                raise SessionStoreError(f"there is no log of {whose} yet ({path})")
        output = sys.stdout.buffer
        sys.stdout.flush()

        def write(chunk: bytes) -> None:
            output.write(chunk)
            output.flush()

        try:
            if follow:
                store.follow(path, write, note=_note)
            else:
                _copy(path, write)
        except KeyboardInterrupt:  # how --follow ends
            return 0
        return 0


class ImportCommand(_StoreCommand):
    """Import sessions from files, archives or URLs."""

    def __init__(self) -> None:
        super().__init__(
            "import",
            {
                "sources": {
                    "nargs": "+",
                    "metavar": "PATH|URL",
                    "help": ".py files, .zip archives of them, http(s):// or file:// URLs",
                },
                "--force": _FORCE,
            },
            help="import sessions from .py files, .zip archives or URLs (all or none)",
        )

    def run(self, sources: Sequence[str], force: bool = False) -> None:
        for name in store.import_sessions(sources, force=force):
            print(f"Imported the session {name!r}")


class ExportCommand(_StoreCommand):
    """Write sessions into a zip archive."""

    def __init__(self) -> None:
        super().__init__(
            "export",
            {
                "names": {"nargs": "+", "metavar": "NAME", "help": "the sessions to export"},
                "--to": {"required": True, "metavar": "FILE.zip", "help": "the archive to write"},
                "--force": _FORCE,
            },
            help="write sessions into a zip archive (which `concert import` reads)",
        )

    def run(self, names: Sequence[str], to: str, force: bool = False) -> None:
        path = store.export_sessions(names, to, force=force)
        count = len(dict.fromkeys(names))
        print(f"Exported {count} session{'s' if count != 1 else ''} to {path}")
