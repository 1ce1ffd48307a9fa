"""The session store: where sessions live, their names, and the files beside them.

A session is a Python file ``<name>.py`` in the session directory --
``$CONCERT_SESSION_DIR`` if set, else ``$XDG_DATA_HOME/concert``, else
``~/.local/share/concert``. Beside it live its log ``<name>.log`` and, while
it runs in a shell, its lock ``<name>.pid`` (holding the PID of the process
that runs it). ``concert.log`` is the log of a session started without a
name, which is why ``concert`` is not a session name.

Everything here promises the same things:

* names are validated first (:func:`validate_name`: an ASCII Python
  identifier that is not a keyword), so a name can never reach outside the
  directory; a new session's name must moreover hide no module
  (:func:`shadows`), or the session could not run;
* nothing is overwritten unless ``force`` is given, and that check is not a
  race: new files are written under a temporary name and *linked* into
  place, which fails if the target appeared meanwhile;
* a file is either there complete or not at all, and a change of several
  files -- an import, a rename with its log, a removal of several sessions
  -- is all or nothing: what takes time (fetching, writing) goes to hidden
  temporary files first, then the files are linked and renamed into place
  in one quick step that is undone, last change first, if any part of it
  fails or Ctrl-C comes (a replaced or removed file is kept under a hidden
  name until the whole change has succeeded);
* a new file has the mode the umask gives (``0o666`` less the umask), a
  copy has its source's mode less the umask (as ``cp`` makes it), a
  replaced file keeps its mode;
* a failure is one :class:`SessionStoreError` whose message is one line
  naming the session or file.

Threads and processes: the only shared structure is the directory itself,
and the file system serialises every change to it (``link``, ``rename`` and
``flock`` are atomic), so every function may be called from any thread or
process at the same time. Nothing here imports Concert's devices: the
``concert`` command uses this module before it knows whether it will need
them.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import functools
import io
import keyword
import os
import socket
import stat
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from concert.exceptions import SessionStoreError

__all__ = [
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_TOTAL",
    "CONCERT_MODULES",
    "MAX_NAME_LENGTH",
    "MAX_SESSION_BYTES",
    "RESERVED_NAMES",
    "SessionLock",
    "URL_TIMEOUT",
    "copy",
    "create",
    "docstring",
    "exists",
    "export_sessions",
    "follow",
    "import_sessions",
    "lock",
    "log_path",
    "move",
    "names",
    "path_of",
    "read_source",
    "remove",
    "remove_sessions",
    "running",
    "session_dir",
    "shadows",
    "template",
    "validate_name",
    "wants_multiinstance",
]

PathLike = Union[str, os.PathLike]

#: Seconds an import may take to fetch one URL, from connecting to the last byte.
URL_TIMEOUT = 30
#: The largest file, download or archive :func:`import_sessions` reads, in bytes.
MAX_IMPORT_BYTES = 16 * 1024 * 1024
#: The largest session :func:`import_sessions` takes, in bytes: checking that it is valid Python takes
#: up to some 400 times its size in memory, so a 16 MiB "session" would take gigabytes.
MAX_SESSION_BYTES = 1024 * 1024
#: The most one :func:`import_sessions` call unpacks, all its sessions together, in bytes.
MAX_IMPORT_TOTAL = 64 * 1024 * 1024
#: The longest session name, in characters (the files' names must fit the file system's limit).
MAX_NAME_LENGTH = 100
#: Identifiers that cannot name a session: ``concert.log`` is the log of unnamed sessions, and a
#: ``concert.py`` would hide the ``concert`` package from a script run beside it.
RESERVED_NAMES = frozenset({"concert"})
#: Modules a new session may not be named after even where they are not installed: what Concert,
#: its extras and its shell import (:func:`shadows` finds the others where they are installed).
CONCERT_MODULES = frozenset(
    {
        "IPython",
        "matplotlib",
        "numpy",
        "pexpect",
        "pint",
        "prettytable",
        "prompt_toolkit",
        "scipy",
        "tango",
        "tifffile",
        "tqdm",
        "zmq",
    }
)

_URL_SCHEMES = ("http", "https", "ftp", "file")
_UNNAMED_LOG = "concert.log"
# The errors of a file system that has no hard links (FAT, some network shares).
_NO_LINKS = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


def _shown(value: object) -> str:
    """``repr(value)``, shortened so that a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "..." + text[-7:]


def _printable(text: str) -> str:
    """``text`` as it is if it prints on one line, else with its control characters escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def _reason(error: BaseException) -> str:
    """The human part of an OSError (``Permission denied``), else its text."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


# -- where sessions live, and their names ------------------------------------------------------------


def session_dir(create: bool = False) -> Path:
    """Return the session directory (``CONCERT_SESSION_DIR``, else the XDG data home's ``concert``).

    The environment is read at every call, so a test or a script may point it
    elsewhere. A relative ``XDG_DATA_HOME`` is ignored, as the XDG
    specification asks. With ``create`` the directory is made if missing.

    :raises SessionStoreError: it exists but is not a directory, or cannot be made.
    """
    given = os.environ.get("CONCERT_SESSION_DIR")
    if given:
        directory = Path(given).expanduser().absolute()
    else:
        data_home = os.environ.get("XDG_DATA_HOME", "")
        if not os.path.isabs(data_home):
            data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
        directory = Path(data_home) / "concert"
    if directory.exists() and not directory.is_dir():
        raise SessionStoreError(f"the session directory {directory} is not a directory")
    if create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SessionStoreError(
                f"cannot make the session directory {directory}: {_reason(error)}"
            ) from None
    return directory


def validate_name(name: str) -> str:
    """Return ``name`` if it can name a session, else raise.

    A session name is an ASCII Python identifier (letters, digits and ``_``,
    not starting with a digit) of at most :data:`MAX_NAME_LENGTH` characters
    that is not a Python keyword and not one of :data:`RESERVED_NAMES`.

    :raises SessionStoreError: otherwise, saying why in one line.
    """
    if not isinstance(name, str) or not name:
        raise SessionStoreError(f"{_shown(name)} is not a session name: a name is a Python identifier")
    if name.endswith(".py") and name[:-3].isidentifier():
        raise SessionStoreError(f"{_shown(name)} is not a session name: name the session without '.py'")
    if not name.isidentifier() or not name.isascii():
        raise SessionStoreError(
            f"{_shown(name)} is not a session name: use letters, digits and '_', not starting with a digit"
        )
    if keyword.iskeyword(name):
        raise SessionStoreError(f"{_shown(name)} is not a session name: it is a Python keyword")
    if name in RESERVED_NAMES:
        raise SessionStoreError(
            f"{_shown(name)} is not a session name: it is reserved ({_UNNAMED_LOG} is the log of "
            "sessions started without a name)"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise SessionStoreError(
            f"{_shown(name)} is not a session name: it is longer than {MAX_NAME_LENGTH} characters"
        )
    return name


def shadows(name: str) -> Optional[str]:
    """Tell whether a session ``name`` would hide a module: where that module is, or ``None``.

    A session runs with its own directory first on ``sys.path`` (as a script
    does), so a session ``numpy.py`` is what every ``import numpy`` loads --
    Concert's own included -- and the session cannot run. Such a name is one
    of :data:`CONCERT_MODULES`, a module of the standard library (built in
    ones too), or any top-level module or package this Python finds on
    ``sys.path`` -- leaving out the current directory and the session
    directory, which are not where a session runs from. The answer is in
    words: ``'which Concert uses'``, ``'of the standard library'`` or
    ``'at /path/of/it'``; it depends on what is installed, so a name
    refused on one machine may be taken on another.

    :raises SessionStoreError: ``name`` is not a session name.
    """
    import importlib.machinery

    validate_name(name)
    if name in CONCERT_MODULES:
        return "which Concert uses"
    if name in getattr(sys, "stdlib_module_names", ()) or name in sys.builtin_module_names:
        return "of the standard library"
    try:
        here = {os.path.realpath(os.getcwd())}
    except OSError:  # the current directory was removed
        here = set()
    here.add(os.path.realpath(session_dir()))
    search = [entry for entry in sys.path if isinstance(entry, str) and os.path.realpath(entry) not in here]
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            spec = find(name, search) if finder is importlib.machinery.PathFinder else find(name, None)
        except Exception:  # a broken finder of some package: it finds nothing
            continue
        if spec is None:
            continue
        if spec.origin in ("built-in", "frozen"):
            return "of the standard library"
        if spec.origin:
            return f"at {spec.origin}"
        locations = list(spec.submodule_search_locations or [])
        return f"at {locations[0]}" if locations else "which is installed"
    return None


def _refuse_shadowing(name: str) -> None:
    """Refuse ``name`` for a new session if it would hide a module (:func:`shadows`)."""
    where = shadows(name)
    if where is not None:
        raise SessionStoreError(
            f"{name!r} cannot name a session: it would hide the module {name} ({where}) -- "
            f"`import {name}` would load the session instead -- so choose another name"
        )


def _is_name(text: str) -> bool:
    try:
        validate_name(text)
    except SessionStoreError:
        return False
    return True


def path_of(name: str) -> Path:
    """Return the path of session ``name`` (which need not exist yet).

    :raises SessionStoreError: ``name`` is not a valid session name, or the directory is a file.
    """
    return session_dir() / f"{validate_name(name)}.py"


def log_path(name: Optional[str] = None) -> Path:
    """Return the path of the log of session ``name``: ``<name>.log`` beside the session.

    Without a name, the log of sessions started without one: ``concert.log``
    in the session directory.

    :raises SessionStoreError: ``name`` is not a valid session name, or the directory is a file.
    """
    if name is None:
        return session_dir() / _UNNAMED_LOG
    return session_dir() / f"{validate_name(name)}.log"


def _lock_path(name: str) -> Path:
    return session_dir() / f"{validate_name(name)}.pid"


def exists(name: str) -> bool:
    """Tell whether session ``name`` exists. :raises SessionStoreError: for a bad name."""
    return path_of(name).is_file()


def _existing(name: str) -> Path:
    path = path_of(name)
    if not path.is_file():
        raise SessionStoreError(f"there is no session {name!r} in {session_dir()} (`concert ls` lists them)")
    return path


def names() -> List[str]:
    """Return the names of the sessions in the store, sorted; ``[]`` if the directory does not exist.

    Files whose names are not session names (``concert.py``, ``my-beamline.py``)
    and temporary files are not sessions and are left out.

    :raises SessionStoreError: the session directory is a file, or cannot be read.
    """
    directory = session_dir()
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise SessionStoreError(f"cannot read the session directory {directory}: {_reason(error)}") from None
    return sorted(
        entry.name[:-3]
        for entry in entries
        if entry.name.endswith(".py") and _is_name(entry.name[:-3]) and entry.is_file()
    )


# -- reading sessions without running them ----------------------------------------------------------


def read_source(path: PathLike) -> str:
    """Return the text of the Python file ``path`` (UTF-8, or the encoding it declares).

    :raises SessionStoreError: it cannot be read or decoded.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise SessionStoreError(f"cannot read {path}: {_reason(error)}") from None
    return _decoded(data, str(path))


def _decoded(data: bytes, where: str) -> str:
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        message = f"cannot read {where}: it is not text in a known encoding ({error})"
        raise SessionStoreError(message.replace("\n", " ")) from None


# CPython 3.11 can fail with "SystemError: AST constructor recursion depth mismatch" when several
# threads build syntax trees at once; this lock makes the store's parses take turns.
_PARSE_LOCK = threading.Lock()


def _parsed(source: str, where: str) -> ast.Module:
    try:
        with _PARSE_LOCK:
            return ast.parse(source, filename=where)
    except SyntaxError as error:
        line = f" line {error.lineno}" if error.lineno else ""
        raise SessionStoreError(f"{where}{line} is not valid Python: {error.msg}") from None
    except ValueError as error:  # NUL bytes (Python < 3.12)
        raise SessionStoreError(f"{where} is not valid Python: {error}") from None


def docstring(name_or_path: Union[str, PathLike]) -> Optional[str]:
    """Return the docstring of a session, without running it; ``None`` if it has none.

    A ``str`` without ``.py`` and without a path separator is a session's
    name; anything else (a :class:`~pathlib.Path`, ``"dir/file.py"``) is the
    path of a file.

    :raises SessionStoreError: unknown session, unreadable file, or not valid Python.
    """
    if isinstance(name_or_path, str) and not name_or_path.endswith(".py") and os.sep not in name_or_path:
        path: PathLike = _existing(name_or_path)
    else:
        path = name_or_path
    return ast.get_docstring(_parsed(read_source(path), str(path)))


def wants_multiinstance(source: str, where: str = "<session>") -> bool:
    """Tell whether a session's source sets ``MULTIINSTANCE = True`` at its top level (without running it).

    The last top-level assignment wins, as it would when the file runs. Only
    the literal ``True`` allows several instances: ``"False"``, ``"no"``,
    ``1``, a value that is not a literal (``MULTIINSTANCE =
    os.environ.get(...)``), or an assignment inside a block count as not set,
    so that a session is never run twice by a misreading.

    :raises SessionStoreError: the source is not valid Python.
    """
    wanted = False
    for node in _parsed(source, where).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(target, ast.Name) and target.id == "MULTIINSTANCE" for target in targets):
            wanted = isinstance(value, ast.Constant) and value.value is True
    return wanted


# -- writing without overwriting, all or nothing ------------------------------------------------------


def _identity(status: os.stat_result) -> Tuple[int, int]:
    return status.st_dev, status.st_ino


def _identity_of(path: Path) -> Optional[Tuple[int, int]]:
    """The (device, inode) of ``path`` itself (a link is not followed); ``None`` if it is not there."""
    try:
        return _identity(os.lstat(path))
    except FileNotFoundError:
        return None


def _spare(path: Path, tag: str) -> Path:
    """A hidden name beside ``path`` that nothing else uses (64 random bits): ``.tomo.py.<hex>.<tag>``."""
    import secrets

    return path.with_name(f".{path.name}.{secrets.token_hex(8)}.{tag}")


def _umask(created_mode: int) -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread at once).

    From ``/proc/self/status`` where there is one; else worked out from the
    mode ``created_mode`` of a file just created with ``0o666`` (its execute
    bits are then taken to be masked like its read bits).
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    masked = 0o666 & ~created_mode
    return masked | ((masked & 0o444) >> 2)


def _is_directory(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _claim(source: Path, target: Path) -> None:
    """Move the file ``source`` to ``target`` unless ``target`` exists (atomic; ``source`` is gone after).

    A hard link is the race-free test-and-set; on a file system without
    links an exclusively created placeholder is replaced instead.

    :raises FileExistsError: ``target`` exists.
    :raises FileNotFoundError: ``source`` does not (then nothing changed).
    """
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as error:
        if error.errno not in _NO_LINKS:
            raise
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # FileExistsError if taken
        try:
            os.replace(source, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
        return
    try:
        os.unlink(source)
    except BaseException:  # the link just made would be a second copy: take it back
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


@contextlib.contextmanager
def _ctrl_c_held() -> Iterator[Callable[[], bool]]:
    """Hold Ctrl-C back while the block runs; yield a function telling whether it came meanwhile.

    Python raises :class:`KeyboardInterrupt` only in the main thread, and only
    there can the handler of SIGINT be swapped: in another thread, or when
    SIGINT has a handler other than Python's own (a shell's), the block runs
    as it is and the function always says ``False`` -- the undo of
    :class:`_Changes` on an exception still keeps such a change whole.
    """
    import signal

    came: List[int] = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError):  # ValueError: not the main interpreter
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                previous = signal.signal(signal.SIGINT, lambda number, frame: came.append(number))
    try:
        yield lambda: bool(came)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


class _Changes:
    """Renames and links that take effect all together, or not at all.

    ``with _Changes() as changes:`` then :meth:`put`, :meth:`rename` and
    :meth:`delete` as often as needed. If the block ends normally, every
    change stays. If it raises -- or Ctrl-C came meanwhile, which is held
    back until the block ends -- every change is undone, last first, and the
    exception (or the :class:`KeyboardInterrupt`) goes on: the files are
    exactly as before (same inodes, so same content, mode and times). For
    that, every file a change replaces or removes is kept, hard-linked under
    a hidden name beside it, until the block ends. If undoing fails too (the
    disk was pulled away), a :class:`SessionStoreError` says what was left
    where.

    Each step is one ``link``, ``rename`` or ``unlink``, so the block is
    fast; what takes time (fetching, writing the new files) happens before,
    into files staged by :func:`_stage`. Owned by the thread that made it,
    never shared.
    """

    def __init__(self) -> None:
        self._done: List[Tuple[Any, ...]] = []  # what to undo, in the order it was done
        self._spares: List[Path] = []  # hidden names of the files kept until the end
        self._moved_aside: set = set()  # spares made by a rename (no hard links here), not by a link
        self._directories: List[Path] = []  # to flush to disk once every change is made

    def __enter__(self) -> _Changes:
        self._hold = _ctrl_c_held()
        self._interrupted = self._hold.__enter__()
        return self

    def __exit__(self, kind: Any, error: Optional[BaseException], traceback: Any) -> bool:
        try:
            interrupted = self._interrupted()
            if kind is None and not interrupted:
                self._sync()
                failures: List[str] = []
            else:
                failures = self._undo()
            # A Ctrl-C that comes from here on is held back and dropped: the change has been made (or
            # undone) as a whole, and only hidden spare names are left to remove.
            for spare in self._spares:
                with contextlib.suppress(OSError):
                    os.unlink(spare)
        finally:
            self._hold.__exit__(None, None, None)
        if failures:
            first = " ".join(str(error).split()) if error is not None else ""
            first = first or ("stopped by Ctrl-C" if interrupted or kind is KeyboardInterrupt else "failed")
            raise SessionStoreError(
                f"{first}; and it could not all be undone: {'; '.join(failures)}"
            ) from None
        if kind is None and interrupted:
            raise KeyboardInterrupt
        return False

    # -- the steps

    def put(self, temporary: Path, target: Path, force: bool) -> None:
        """Put the staged file ``temporary`` in place as ``target`` (it is gone from its own name after).

        Without ``force`` an existing ``target`` is refused (race-free); with
        it, ``target`` is replaced, and the new file takes its mode.

        :raises FileExistsError: ``target`` exists and not ``force``.
        :raises IsADirectoryError: ``target`` is a directory.
        :raises OSError: what the file system says.
        """
        identity = _identity(os.lstat(temporary))
        if _is_directory(target):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        kept = None
        if not force:
            _claim(temporary, target)
        else:
            try:
                mode: Optional[int] = stat.S_IMODE(os.stat(target).st_mode)
            except OSError:
                mode = None
            kept = self._keep(target)
            try:
                if kept is not None and mode is not None:
                    os.chmod(temporary, mode)
                os.replace(temporary, target)
            except BaseException:
                self._give_back(kept, target)
                raise
        self._done.append(("put", target, identity, kept))
        self._directories.append(target.parent)

    def rename(self, source: Path, target: Path, force: bool) -> None:
        """Rename the file ``source`` to ``target``; an existing ``target`` only with ``force``.

        Of several renames of one ``source`` at the same time exactly one
        succeeds; the others raise :class:`FileNotFoundError` and leave
        nothing behind.

        :raises FileNotFoundError: ``source`` is not there (any more).
        :raises FileExistsError: ``target`` exists and not ``force``.
        :raises IsADirectoryError: ``target`` is a directory.
        """
        if _is_directory(target):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        kept = None
        if not force:
            _claim(source, target)  # if someone else took ``source`` meanwhile, its link is taken back
        else:
            kept = self._keep(target)
            try:
                os.rename(source, target)
            except BaseException:
                self._give_back(kept, target)
                raise
        self._done.append(("rename", source, target, _identity_of(target), kept))
        self._directories += [source.parent, target.parent]

    def delete(self, path: Path) -> None:
        """Remove the file ``path`` (kept under a hidden name until the block ends, for the undo).

        :raises FileNotFoundError: it is not there.
        """
        spare = _spare(path, "removed")
        os.rename(path, spare)
        self._spares.append(spare)
        self._done.append(("delete", path, spare))
        self._directories.append(path.parent)

    # -- keeping what is replaced, undoing

    def _keep(self, target: Path) -> Optional[Path]:
        """Keep the file ``target`` under a spare name before it is replaced; ``None`` if there is none."""
        for _ in range(3):
            spare = _spare(target, "kept")
            try:
                os.link(target, spare, follow_symlinks=False)
            except FileNotFoundError:
                return None
            except FileExistsError:
                continue
            except OSError as error:
                if error.errno not in _NO_LINKS:
                    raise
                try:  # no hard links here: move it aside (``target`` is missing until it is replaced)
                    os.rename(target, spare)
                except FileNotFoundError:
                    return None
                self._moved_aside.add(spare)
            self._spares.append(spare)
            return spare
        raise FileExistsError(errno.EEXIST, "no free temporary name", str(target))

    def _give_back(self, kept: Optional[Path], target: Path) -> None:
        """Undo :meth:`_keep` when the step it prepared failed."""
        if kept is None:
            return
        with contextlib.suppress(OSError):
            if kept in self._moved_aside:
                os.rename(kept, target)
            else:
                os.unlink(kept)
            self._spares.remove(kept)

    def _undo(self) -> List[str]:
        """Undo every step, last first; return what could not be undone, in words."""
        failures = []
        for step in reversed(self._done):
            try:
                getattr(self, f"_undo_{step[0]}")(*step[1:])
            except OSError as error:
                failures.append(f"{error.filename or step[1]}: {_reason(error)}")
            except _LeftError as left:
                failures.append(str(left))
        return failures

    def _restore(self, kept: Optional[Path], target: Path) -> None:
        if kept is None:
            return
        try:
            os.replace(kept, target)
        except OSError as error:
            self._spares.remove(kept)  # it is the only copy left: it stays
            raise _LeftError(f"the previous {target.name} is kept as {kept} ({_reason(error)})") from None

    def _undo_put(self, target: Path, identity: Tuple[int, int], kept: Optional[Path]) -> None:
        if _identity_of(target) != identity:  # changed by someone else meanwhile: theirs stays
            if kept is not None:
                self._spares.remove(kept)
                raise _LeftError(f"{target} was changed meanwhile; the previous one is kept as {kept}")
            return
        if kept is None:
            os.unlink(target)
        else:
            self._restore(kept, target)

    def _undo_rename(
        self, source: Path, target: Path, identity: Optional[Tuple[int, int]], kept: Optional[Path]
    ) -> None:
        if identity is None or _identity_of(target) != identity:
            raise _LeftError(f"{source.name} was renamed to {target}, which was changed meanwhile")
        try:
            _claim(target, source)
        except FileExistsError:
            raise _LeftError(f"{source.name} is at {target}: a new {source} was made meanwhile") from None
        self._restore(kept, target)

    def _undo_delete(self, path: Path, spare: Path) -> None:
        try:
            _claim(spare, path)
        except FileExistsError:
            self._spares.remove(spare)
            raise _LeftError(
                f"the removed {path.name} is kept as {spare}: a new {path} was made meanwhile"
            ) from None
        self._spares.remove(spare)

    def _sync(self) -> None:
        """Flush the directories changed to disk, so that the renames survive a power cut."""
        for directory in dict.fromkeys(self._directories):
            try:
                descriptor = os.open(directory, os.O_RDONLY)
            except OSError:
                continue
            with contextlib.suppress(OSError):
                os.fsync(descriptor)
            os.close(descriptor)


class _LeftError(Exception):
    """Something :class:`_Changes` could not undo, in words."""


def _stage(target: Path, what: str, write: Callable[[BinaryIO], object], like: Optional[int] = None) -> Path:
    """Write a new file beside ``target`` under a hidden temporary name; return that name.

    ``write`` gets the file, open for writing; the file is flushed to disk
    before this returns. Its mode is that of a new file, ``0o666`` less the
    umask (the file is created with it), or with ``like`` the mode ``like``
    less the umask, as ``cp`` gives a copy. Nothing is left behind when
    ``write`` or the disk fails, or on Ctrl-C.

    :raises SessionStoreError: it cannot be written (a read-only or full disk).
    """
    directory = target.parent
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    temporary = _spare(target, "partial")
    try:
        descriptor = os.open(temporary, flags, 0o666)  # the umask applies, as to every new file
    except OSError as error:
        raise SessionStoreError(f"cannot write {what} in {directory}: {_reason(error)}") from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            if like is not None:
                created = stat.S_IMODE(os.fstat(descriptor).st_mode)
                os.fchmod(descriptor, like & 0o777 & ~_umask(created))
            write(file)
            file.flush()
            os.fsync(descriptor)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise SessionStoreError(f"cannot write {what} in {directory}: {_reason(error)}") from None
        raise
    return temporary


def _write(data: bytes, file: BinaryIO) -> None:
    file.write(data)


def _discard(temporaries: Iterable[Path]) -> None:
    """Remove staged files that are still there (those put in place are not), Ctrl-C or not."""
    with _ctrl_c_held():
        for temporary in temporaries:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _exists(what: str, target: Path) -> SessionStoreError:
    """The refusal of a ``target`` that is in the way: a file (without --force), or a directory."""
    if _is_directory(target):
        return SessionStoreError(f"cannot write {what}: {target} is a directory")
    return SessionStoreError(f"{what} exists ({target}); give --force to replace it")


def _place(
    target: Path, force: bool, what: str, write: Callable[[BinaryIO], object], like: Optional[int] = None
) -> None:
    """Write the file ``target`` (by ``write``) complete or not at all; an existing one only with ``force``.

    A replaced file keeps its mode; a new one has the mode of a new file
    (``0o666`` less the umask) or, with ``like``, ``like`` less the umask.
    """
    temporary = _stage(target, what, write, like)
    try:
        with _Changes() as changes:
            try:
                changes.put(temporary, target, force)
            except (FileExistsError, IsADirectoryError):
                raise _exists(what, target) from None
            except OSError as error:
                raise SessionStoreError(f"cannot write {target}: {_reason(error)}") from None
    finally:
        _discard([temporary])


def _module_names(imports: Iterable[str]) -> List[str]:
    found = []
    for module in imports:
        module = module.strip()
        if not module:
            continue
        if not all(part.isidentifier() and not keyword.iskeyword(part) for part in module.split(".")):
            raise SessionStoreError(
                f"--imports: {_shown(module)} is not a module name (such as numpy or a.b)"
            )
        if module not in found:
            found.append(module)
    return found


def template(name: str, imports: Sequence[str] = ()) -> str:
    """Return the source of a new session ``name``.

    It has a docstring to fill in, imports ``q`` and the session helpers (and
    each module of ``imports``, dotted names allowed, blanks and repeats
    ignored), and says where the devices go. It runs as it is.

    :raises SessionStoreError: a bad name, or an import that is not a dotted module name.
    """
    validate_name(name)
    lines = [
        f'"""Describe the session {name} in one line: `concert ls` shows it.',
        "",
        f"The rest of this docstring is what `concert show {name}` prints.",
        '"""',
        "",
        "import logging",
        "",
    ]
    extra = _module_names(imports)
    if extra:
        lines += [f"import {module}" for module in extra] + [""]
    lines += [
        "import concert",
        "from concert.quantities import q",
        "from concert.session.utils import (",
        "    abort_awaiting,",
        "    check_emergency_stop,",
        "    code_of,",
        "    ddoc,",
        "    dstate,",
        "    get_default_table,",
        "    pdoc,",
        ")",
        "",
        "LOG = logging.getLogger(__name__)",
        "",
        "# MULTIINSTANCE = True  # allow more than one `concert start` of this session at a time",
        "",
        "# Build the beamline's devices here, for example:",
        "# from concert.devices.motors.dummy import LinearMotor",
        "# motor = LinearMotor()",
        "",
    ]
    return "\n".join(lines)


def create(name: str, imports: Sequence[str] = (), force: bool = False) -> Path:
    """Write a new session ``name`` from :func:`template`; return its path.

    It has the mode of a new file (``0o666`` less the umask); a replaced one keeps its mode.

    :raises SessionStoreError: a bad name or import, a name that would hide a module
        (:func:`shadows`), or the session exists and not ``force``.
    """
    path = path_of(name)
    _refuse_shadowing(name)
    data = template(name, imports).encode()
    session_dir(create=True)
    _place(path, force, f"the session {name!r}", functools.partial(_write, data))
    return path


# -- removing, copying, renaming ----------------------------------------------------------------------


def remove(name: str) -> Path:
    """Remove session ``name`` (its log stays); return the path removed.

    :raises SessionStoreError: unknown session, running in a shell (its lock is held), or not removable.
    """
    return remove_sessions([name])[0]


def remove_sessions(session_names: Sequence[str]) -> List[Path]:
    """Remove several sessions, all or none; return the paths removed.

    Every name is checked (valid, existing, not running in a shell) before
    anything is removed; then each file is moved to a hidden name, and only
    when all are, the hidden names are removed. If one of them cannot be
    moved (an immutable file, a sticky directory, another user's file), the
    others are put back: nothing is removed. Their logs stay. A name given
    twice is removed once.

    :raises SessionStoreError: the first name that is bad, unknown, running or not removable; nothing
        is removed.
    """
    if not session_names:
        raise SessionStoreError("name the sessions to remove")
    unique = list(dict.fromkeys(session_names))
    paths = [_existing(name) for name in unique]
    for name in unique:
        _refuse_running(name, "remove")
    removed = []
    with _Changes() as changes:
        for path in paths:
            try:
                changes.delete(path)
            except FileNotFoundError:  # removed meanwhile by someone else: gone all the same
                pass
            except OSError as error:
                none = "; none of the sessions given was removed" if len(paths) > 1 else ""
                raise SessionStoreError(f"cannot remove {path}: {_reason(error)}{none}") from None
            removed.append(path)
    return removed


def copy(old: str, new: str, force: bool = False) -> Path:
    """Copy session ``old`` to ``new`` (the log is not copied); return the new path.

    The copy has the mode of ``old`` less the umask, as ``cp`` makes it (a
    replaced ``new`` keeps its own). Of several copies to the same new name
    at the same time, exactly one succeeds without ``force``.

    :raises SessionStoreError: unknown ``old``; bad ``new``, or one that would hide a module
        (:func:`shadows`); ``new`` exists and not ``force``.
    """
    source = _existing(old)
    target = path_of(new)
    if target == source:
        raise SessionStoreError(f"cannot copy the session {old!r} onto itself")
    _refuse_shadowing(new)
    try:
        with open(source, "rb") as file:
            data = file.read()
            mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
    except OSError as error:
        raise SessionStoreError(f"cannot read {source}: {_reason(error)}") from None
    _place(target, force, f"the session {new!r}", functools.partial(_write, data), like=mode)
    return target


def move(old: str, new: str, force: bool = False) -> Path:
    """Rename session ``old`` to ``new``, its log with it; return the new path.

    With ``force`` an existing ``new`` is replaced (and its log, if ``old`` has
    one). Neither may be running in a shell. All or nothing: if the log
    cannot follow, the session is put back, and a replaced ``new`` (kept
    under a hidden name meanwhile) with it. Of several renames of one
    session at the same time exactly one succeeds.

    :raises SessionStoreError: unknown ``old``; bad ``new``, or one that would hide a module
        (:func:`shadows`); ``new`` (or its log) exists and not ``force``; ``old`` or ``new`` is
        running in a shell; ``old`` was renamed or removed meanwhile.
    """
    source = _existing(old)
    target = path_of(new)
    if target == source:
        raise SessionStoreError(f"cannot rename the session {old!r} to itself")
    _refuse_shadowing(new)
    _refuse_running(old, "rename")
    if force:
        _refuse_running(new, "replace")
    old_log, new_log = log_path(old), log_path(new)
    has_log = os.path.lexists(old_log)
    if has_log and os.path.lexists(new_log) and not force:
        raise SessionStoreError(f"the log of {new!r} exists ({new_log}); give --force to replace it")
    with _Changes() as changes:
        try:
            changes.rename(source, target, force)
        except (FileExistsError, IsADirectoryError):
            raise _exists(f"the session {new!r}", target) from None
        except FileNotFoundError:
            raise SessionStoreError(
                f"cannot rename the session {old!r}: it was renamed or removed meanwhile"
            ) from None
        except OSError as error:
            raise SessionStoreError(f"cannot rename {source} to {target}: {_reason(error)}") from None
        if has_log:
            try:
                changes.rename(old_log, new_log, force)
            except OSError as error:
                if isinstance(error, IsADirectoryError):
                    reason = "it is a directory"
                else:
                    reason = "it exists" if isinstance(error, FileExistsError) else _reason(error)
                raise SessionStoreError(f"cannot rename {old_log} to {new_log}: {reason}") from None
    return target


# -- import and export (urllib and zipfile are imported when used: they cost every command its start) --


def _is_url(source: str) -> bool:
    import urllib.parse

    return urllib.parse.urlsplit(source).scheme.lower() in _URL_SCHEMES


def _mebibytes(size: int) -> str:
    mebibytes = size / (1024 * 1024)
    return f"{mebibytes:g} MiB" if mebibytes >= 1 else f"{size} bytes"


def _too_large(where: str, limit: int) -> SessionStoreError:
    what = "which no session is" if limit == MAX_SESSION_BYTES else "more than an import reads"
    return SessionStoreError(f"cannot import {where}: it is larger than {_mebibytes(limit)}, {what}")


def _too_much(where: str) -> SessionStoreError:
    return SessionStoreError(
        f"cannot import {where}: the sessions of this import come to more than "
        f"{_mebibytes(MAX_IMPORT_TOTAL)} in all, more than one import takes"
    )


class _Allowance:
    """The bytes of sessions one :func:`import_sessions` call may still unpack; owned by that call."""

    def __init__(self) -> None:
        self.left = MAX_IMPORT_TOTAL

    def read(self, read: Callable[[int], bytes], where: str) -> bytes:
        """Read the session ``read`` gives, refusing more than one session or what is left may hold."""
        limit = min(MAX_SESSION_BYTES, self.left)
        data = read(limit + 1)
        if len(data) > limit:
            raise _too_large(where, limit) if limit == MAX_SESSION_BYTES else _too_much(where)
        self.left -= len(data)
        return data


def _download_into(source: str, where: str, file: BinaryIO, abandoned: threading.Event) -> None:
    """Write what the URL ``source`` holds into ``file``, checking its size against the limit and its
    announced length; stop early when ``abandoned`` is set."""
    import http.client
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(source, timeout=URL_TIMEOUT) as response:
            try:
                announced: Optional[int] = int(response.headers.get("Content-Length", ""))
            except ValueError:
                announced = None
            if announced is not None and announced > MAX_IMPORT_BYTES:
                raise _too_large(where, MAX_IMPORT_BYTES)
            received = 0
            while not abandoned.is_set():
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                received += len(chunk)
                if received > MAX_IMPORT_BYTES:
                    raise _too_large(where, MAX_IMPORT_BYTES)
                file.write(chunk)
            if announced is not None and received < announced and not abandoned.is_set():
                raise SessionStoreError(
                    f"cannot fetch {where}: the download ended after {received} of the "
                    f"{announced} bytes the server announced"
                )
    except SessionStoreError:
        raise
    except urllib.error.HTTPError as error:
        raise SessionStoreError(f"cannot fetch {where}: HTTP error {error.code} ({error.reason})") from None
    except urllib.error.URLError as error:
        reason = error.reason if isinstance(error.reason, str) else _reason(error.reason)
        raise SessionStoreError(f"cannot fetch {where}: {reason}") from None
    except (OSError, ValueError, http.client.HTTPException, socket.timeout) as error:
        raise SessionStoreError(f"cannot fetch {where}: {_reason(error)}") from None


def _download(source: str, where: str) -> BinaryIO:
    """Fetch the URL ``source`` into an anonymous temporary file, at its start, within URL_TIMEOUT s in all.

    The fetch runs in a daemon thread so that nothing -- a server silent
    after connecting, or trickling a byte at a time -- can make it last
    longer: when the time is up (or on Ctrl-C) the thread is abandoned, and
    ends at its next read.

    :raises SessionStoreError: the fetch failed or did not end in time.
    """
    import tempfile

    timeout = URL_TIMEOUT
    abandoned, finished = threading.Event(), threading.Event()
    handover = threading.Lock()  # guards ``outcome`` between the fetching thread and this one
    outcome: List[Tuple[str, Any]] = []

    def fetch() -> None:
        file = tempfile.TemporaryFile()
        try:
            _download_into(source, where, file, abandoned)
            file.seek(0)
            result: Tuple[str, Any] = ("file", file)
        except BaseException as error:  # handed over to the waiting thread, which raises it
            file.close()
            result = ("error", error)
        with handover:
            if abandoned.is_set():
                if result[0] == "file":
                    file.close()
            else:
                outcome.append(result)
            finished.set()

    threading.Thread(target=fetch, name=f"concert-import {where}", daemon=True).start()
    try:
        finished.wait(timeout)
    finally:  # on Ctrl-C too: a result that comes after this is nobody's
        with handover:
            if not outcome:
                abandoned.set()
    if not outcome:
        raise SessionStoreError(f"cannot fetch {where}: it did not arrive within {timeout:g} s")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def _opened(source: str, where: str) -> Tuple[str, BinaryIO]:
    """Return (file name, open binary file) of a path or URL (``where``: how messages name it)."""
    if _is_url(source):
        import urllib.parse

        name = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(source).path))
        return name, _download(source, where)
    try:
        file = open(source, "rb")
    except IsADirectoryError:
        raise SessionStoreError(f"cannot import {where}: it is a directory, not a .py or .zip file") from None
    except OSError as error:
        raise SessionStoreError(f"cannot read {where}: {_reason(error)}") from None
    return os.path.basename(source), file


def _session_name(filename: str, where: str) -> str:
    if not filename.endswith(".py"):
        raise SessionStoreError(f"cannot import {where}: a session is a .py file (or a .zip of them)")
    try:
        name = validate_name(filename[:-3])
        _refuse_shadowing(name)
    except SessionStoreError as error:
        raise SessionStoreError(f"cannot import {where}: {error}") from None
    return name


def _checked(data: bytes, where: str) -> bytes:
    _parsed(_decoded(data, where), where)
    return data


def _member_name(member: str, where: str) -> str:
    """The file name of an archive member, refusing one that would reach outside the directory."""
    parts = member.replace("\\", "/").split("/")
    drive = len(member) > 1 and member[1] == ":" and member[0].isascii() and member[0].isalpha()
    if member.startswith(("/", "\\")) or ".." in parts or drive:
        raise SessionStoreError(f"cannot import {where}: the member {member!r} points outside the archive")
    return parts[-1]


def _unpacked(file: BinaryIO, where: str, allowance: _Allowance) -> Iterator[Tuple[str, bytes, str]]:
    """The sessions of the zip archive ``file``, one at a time: (name, content, how messages name it).

    The sizes the archive states are checked against the limits before
    anything is unpacked, and what is unpacked is counted too (a stated size
    may lie).
    """
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(file) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            for info in members:
                _member_name(info.filename, where)
            sessions = [
                info
                for info in members
                if info.filename.endswith(".py") and "__pycache__" not in info.filename.split("/")
            ]
            if not sessions:
                raise SessionStoreError(f"cannot import {where}: the archive holds no .py session")
            for info in sessions:
                if info.file_size > MAX_SESSION_BYTES:
                    raise _too_large(f"{where}:{_printable(info.filename)}", MAX_SESSION_BYTES)
            if sum(info.file_size for info in sessions) > allowance.left:
                raise _too_much(where)
            for info in sessions:
                member = f"{where}:{_printable(info.filename)}"
                name = _session_name(_member_name(info.filename, where), member)
                with archive.open(info) as opened:
                    content = allowance.read(opened.read, member)
                yield name, content, member
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError) as error:
        reason = str(error) or type(error).__name__
        raise SessionStoreError(f"cannot import {where}: not a readable zip archive ({reason})") from None
    except (RuntimeError, NotImplementedError) as error:  # encrypted, or an unknown compression
        raise SessionStoreError(f"cannot import {where}: cannot unpack it ({error})") from None


def _sessions_in(source: str, where: str, allowance: _Allowance) -> Iterator[Tuple[str, bytes, str]]:
    """The sessions a source holds, one at a time: (name, content, how messages name it)."""
    import zipfile

    filename, file = _opened(source, where)
    with file:
        try:
            size = os.fstat(file.fileno()).st_size
            regular = stat.S_ISREG(os.fstat(file.fileno()).st_mode)
        except (OSError, ValueError):
            size, regular = 0, False
        if regular and size > MAX_IMPORT_BYTES:
            raise _too_large(where, MAX_IMPORT_BYTES)
        named = filename.endswith((".py", ".zip"))
        if filename.endswith(".zip") or (not named and zipfile.is_zipfile(file)):
            with contextlib.suppress(OSError):
                file.seek(0)
            yield from _unpacked(file, where, allowance)
            return
        name = _session_name(filename, where)
        with contextlib.suppress(OSError):
            file.seek(0)
        try:
            content = allowance.read(file.read, where)
        except OSError as error:
            raise SessionStoreError(f"cannot read {where}: {_reason(error)}") from None
        yield name, content, where


def import_sessions(sources: Iterable[str], force: bool = False) -> List[str]:
    """Import sessions from ``.py`` files, ``.zip`` archives of them, or URLs; return the names imported.

    A URL is ``http://``, ``https://``, ``ftp://`` or ``file://``; an archive
    is recognised by its ``.zip`` name or its content. The ``.py`` members of
    an archive are sessions wherever they are in it (other members are
    ignored); a member whose path leaves the archive (``../x.py``) refuses
    the whole archive.

    All or nothing, in two steps. First every source is fetched, unpacked
    and checked (valid names that hide no module, valid Python, no name
    twice, no existing session unless ``force``, no session over
    :data:`MAX_SESSION_BYTES`, no file or download over
    :data:`MAX_IMPORT_BYTES`, at most :data:`MAX_IMPORT_TOTAL` of sessions
    in all, a URL complete and within :data:`URL_TIMEOUT` seconds), and each
    session is written to a hidden temporary file in the session directory.
    Then they are all linked into place at once (see :class:`_Changes`):
    a failure or Ctrl-C at any point leaves the store exactly as it was,
    sessions replaced with ``force`` included. A new session has the mode of
    a new file (``0o666`` less the umask), a replaced one keeps its mode.

    :raises SessionStoreError: naming the first source that cannot be imported.
    """
    sources = list(sources)
    if not sources:
        raise SessionStoreError("nothing to import: give .py files, .zip archives or URLs")
    allowance = _Allowance()
    staged: List[Tuple[str, Path, str]] = []  # (name, temporary file, the source it came from)
    seen: Dict[str, str] = {}
    try:
        for source in sources:
            where = _printable(source)
            with contextlib.closing(_sessions_in(source, where, allowance)) as found:
                for name, content, member in found:
                    if name in seen:
                        raise SessionStoreError(
                            f"the session {name!r} comes twice: from {seen[name]} and from {member}"
                        )
                    seen[name] = member
                    if not force and exists(name):
                        raise SessionStoreError(
                            f"cannot import {where}: the session {name!r} exists; give --force to replace it"
                        )
                    _checked(content, member)
                    session_dir(create=True)
                    temporary = _stage(
                        path_of(name), f"the session {name!r}", functools.partial(_write, content)
                    )
                    staged.append((name, temporary, where))
        with _Changes() as changes:
            for name, temporary, where in staged:
                target = path_of(name)
                try:
                    changes.put(temporary, target, force)
                except FileExistsError:
                    raise SessionStoreError(
                        f"cannot import {where}: the session {name!r} exists; give --force to replace it"
                    ) from None
                except IsADirectoryError:
                    raise _exists(f"the session {name!r}", target) from None
                except OSError as error:
                    raise SessionStoreError(f"cannot write {target}: {_reason(error)}") from None
    finally:
        _discard(temporary for _, temporary, _ in staged)
    return [name for name, _, _ in staged]


def export_sessions(session_names: Sequence[str], to: PathLike, force: bool = False) -> Path:
    """Write sessions into the zip archive ``to`` (each as ``<name>.py``); return its path.

    The archive is written complete or not at all; a new one has the mode of
    a new file (``0o666`` less the umask), a replaced one keeps its mode.

    :raises SessionStoreError: an unknown session, a target that is not ``.zip``, that exists and
        not ``force``, or that cannot be written.
    """
    import zipfile

    if not session_names:
        raise SessionStoreError("name the sessions to export")
    target = Path(to)
    if target.suffix.lower() != ".zip":
        raise SessionStoreError(f"cannot export to {target}: the archive's name must end in .zip")
    sources = [(name, _existing(name)) for name in dict.fromkeys(session_names)]
    if not target.parent.is_dir():
        raise SessionStoreError(f"cannot export to {target}: {target.parent} is not a directory")
    if target.exists() and not force:
        raise SessionStoreError(f"the archive {target} exists; give --force to replace it")

    def write(file: BinaryIO) -> None:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in sources:
                try:
                    # strict_timestamps=False: a file dated before 1980 (which zip cannot store) gets 1980
                    info = zipfile.ZipInfo.from_file(path, f"{name}.py", strict_timestamps=False)
                    data = path.read_bytes()
                except OSError as error:
                    raise SessionStoreError(f"cannot read {path}: {_reason(error)}") from None
                archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)

    _place(target, force, f"the archive {target}", write)
    return target


# -- logs -----------------------------------------------------------------------------------------------

#: How many of a log's first bytes :func:`follow` compares to tell a log rewritten in place.
_FOLLOWED_START = 4096


def follow(
    path: PathLike,
    write: Callable[[bytes], object],
    poll_interval: float = 0.2,
    stop: Optional[threading.Event] = None,
    note: Optional[Callable[[str], object]] = None,
) -> None:
    """Pass what the file ``path`` holds, then everything appended to it, to ``write``, like ``tail -F``.

    Written in Python, polling every ``poll_interval`` seconds. It survives
    the file being created later (it waits), truncated or rewritten in place
    (it goes on from the start) and rotated -- renamed or removed, and a new
    one made in its place (it reads the old one to its end, then the new one
    from the start). ``note`` gets a one-line message for each of these
    events. It runs until ``stop`` is set (or forever; Ctrl-C raises
    :class:`KeyboardInterrupt` as usual). ``write`` runs in the calling
    thread and gets the bytes as they are in the file; what it raises goes
    through.

    A rewrite in place is seen when the file got shorter than what was read
    of it, or when its first bytes (up to 4 KiB) changed. A log truncated and
    written again between two polls to at least its old length, starting
    with the same 4 KiB, is taken as appended to -- the limit ``tail -F``
    has too (which looks at the size alone).

    :raises SessionStoreError: the file cannot be opened or read (a directory, no permission).
    """
    stop = stop or threading.Event()
    tell = note or (lambda message: None)
    handle = None
    identity: Optional[Tuple[int, int]] = None
    start = b""  # the first bytes of the file, as passed to ``write``
    told_missing = False

    def unreadable(error: OSError) -> SessionStoreError:
        return SessionStoreError(f"cannot read {path}: {_reason(error)}")

    try:
        while not stop.is_set():
            if handle is None:
                try:
                    handle = open(path, "rb", buffering=0)  # kept open from one poll to the next
                except FileNotFoundError:
                    if not told_missing:
                        tell(f"{path} does not exist yet; waiting for it")
                        told_missing = True
                    stop.wait(poll_interval)
                    continue
                except OSError as error:
                    raise unreadable(error) from None
                if told_missing:
                    tell(f"{path} has appeared")
                identity = _identity(os.fstat(handle.fileno()))
                start = b""
            try:
                if start and os.pread(handle.fileno(), len(start), 0) != start:
                    handle.seek(0)
                    start = b""
                    tell(f"{path} was truncated; following it from its start")
                    continue
                position = handle.tell()
                chunk = handle.read(64 * 1024)
            except OSError as error:
                raise unreadable(error) from None
            if chunk:
                if position < _FOLLOWED_START:
                    start += chunk[: _FOLLOWED_START - position]
                write(chunk)
                continue
            try:
                status: Optional[os.stat_result] = os.stat(path)
            except FileNotFoundError:
                status = None  # removed: keep reading the old file until a new one appears
            except OSError as error:
                raise unreadable(error) from None
            if status is not None and _identity(status) != identity:
                try:
                    rest = handle.read()  # what was written to the old file before it was replaced
                except OSError as error:
                    raise unreadable(error) from None
                if rest:
                    write(rest)
                handle.close()
                handle = None
                told_missing = False
                tell(f"{path} was replaced; following the new file")
                continue
            if status is not None and status.st_size < handle.tell():
                handle.seek(0)
                start = b""
                tell(f"{path} was truncated; following it from its start")
                continue
            stop.wait(poll_interval)
    finally:
        if handle is not None:
            handle.close()


# -- the lock of a running session --------------------------------------------------------------------


class SessionLock:
    """The lock file ``<name>.pid`` of a running session, held until :meth:`release` or process end.

    The file holds the PID of the process running the session (and, on a
    second line, its host). It is locked with ``flock``, which the kernel
    drops when the process dies: a lock file left by a dead process is
    therefore stale by construction and taken over. Owned by the process that
    took it; not shared between threads.
    """

    def __init__(self, name: str, path: Path, descriptor: int) -> None:
        self.name = name
        self.path = path
        self._descriptor: Optional[int] = descriptor

    @property
    def held(self) -> bool:
        """Whether this lock is still held (not released)."""
        return self._descriptor is not None

    def release(self) -> None:
        """Remove the lock file and let go of the lock (idempotent)."""
        if self._descriptor is None:
            return
        with contextlib.suppress(OSError):  # removed while locked: nobody can take it in between
            self.path.unlink()
        os.close(self._descriptor)
        self._descriptor = None

    def __enter__(self) -> SessionLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<SessionLock {self.name!r} {'held' if self.held else 'released'} at {self.path}>"


def _holder(path: Path) -> str:
    """Who holds the lock file ``path``: ``PID 1234`` (``on host`` if another machine's)."""
    try:
        lines = path.read_text().split()
    except (OSError, UnicodeDecodeError):
        lines = []
    if not lines:
        return "PID unknown"
    host = f" on {lines[1]}" if len(lines) > 1 and lines[1] != socket.gethostname() else ""
    return f"PID {lines[0]}{host}"


def _flock_exclusive(descriptor: int) -> None:
    """Take the flock of ``descriptor`` without waiting for a holder; :class:`BlockingIOError` if held.

    :func:`running` holds a shared flock for a moment to look; a few quick
    retries keep such a look from being taken for a running session.
    """
    import fcntl
    import time

    for attempt in range(5):
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == 4:
                raise
            time.sleep(0.02)


def lock(name: str) -> SessionLock:
    """Take the lock of session ``name``; return it (a context manager that releases it).

    A lock file left by a process that died is taken over.

    :raises SessionStoreError: another live process holds it (the message gives its PID), or the
        lock file cannot be made.
    """
    path = _lock_path(name)
    session_dir(create=True)
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise SessionStoreError(f"cannot make the lock file {path}: {_reason(error)}") from None
        try:
            _flock_exclusive(descriptor)
        except OSError as error:
            os.close(descriptor)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise SessionStoreError(f"cannot lock {path}: {_reason(error)}") from None
            raise SessionStoreError(
                f"the session {name!r} is already running ({_holder(path)}); "
                "set MULTIINSTANCE = True in it to allow more than one"
            ) from None
        # The holder before us may have removed the file between our open and our lock:
        # then we hold a lock on a file nobody else can see, and must take the new one.
        try:
            same = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(descriptor)
    content = f"{os.getpid()}\n{socket.gethostname()}\n".encode()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, content, 0)
    return SessionLock(name, path, descriptor)


def running(name: str) -> Optional[str]:
    """Tell who runs session ``name`` in a shell (``'PID 1234'``), or ``None`` if nobody does.

    It creates no file; a stale lock file (its process is dead) means nobody.

    :raises SessionStoreError: a bad name.
    """
    import fcntl

    path = _lock_path(name)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder(path)
    finally:
        os.close(descriptor)
    return None


def _refuse_running(name: str, doing: str) -> None:
    holder = running(name)
    if holder is not None:
        raise SessionStoreError(f"cannot {doing} the session {name!r}: it is running ({holder})")
