"""The session store: where sessions live, their names, and the files beside them.

A session is a Python file ``<name>.py`` in the session directory --
``$CONCERT_SESSION_DIR`` if set, else ``$XDG_DATA_HOME/concert``, else
``~/.local/share/concert``. Beside it live its log ``<name>.log`` and, while
it runs in a shell, its lock ``<name>.pid`` (holding the PID of the process
that runs it). ``concert.log`` is the log of a session started without a
name, which is why ``concert`` is not a session name.

Everything here promises the same three things:

* names are validated first (:func:`validate_name`: an ASCII Python
  identifier that is not a keyword), so a name can never reach outside the
  directory;
* nothing is overwritten unless ``force`` is given, and that check is not a
  race: new files are written under a temporary name and *linked* into
  place, which fails if the target appeared meanwhile;
* a file is either there complete or not at all (temporary files are removed
  when a step fails), and a failure is one :class:`SessionStoreError` whose
  message is one line naming the session or file.

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
import io
import keyword
import os
import socket
import threading
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from concert.exceptions import SessionStoreError

__all__ = [
    "MAX_IMPORT_BYTES",
    "MAX_NAME_LENGTH",
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
    "template",
    "validate_name",
    "wants_multiinstance",
]

PathLike = Union[str, os.PathLike]

#: Seconds an import from a URL may wait for the server.
URL_TIMEOUT = 30
#: The largest file (or archive member) :func:`import_sessions` reads, in bytes.
MAX_IMPORT_BYTES = 16 * 1024 * 1024
#: The longest session name, in characters (the files' names must fit the file system's limit).
MAX_NAME_LENGTH = 100
#: Identifiers that cannot name a session: ``concert.log`` is the log of unnamed sessions, and a
#: ``concert.py`` would hide the ``concert`` package from a script run beside it.
RESERVED_NAMES = frozenset({"concert"})

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

    The last top-level assignment wins, as it would when the file runs; a
    value that is not a literal (``MULTIINSTANCE = os.environ.get(...)``),
    or an assignment inside a block, counts as not set.

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
            wanted = isinstance(value, ast.Constant) and bool(value.value)
    return wanted


# -- writing without overwriting ----------------------------------------------------------------------


def _claim(source: Path, target: Path) -> None:
    """Move the file ``source`` to ``target`` unless ``target`` exists (atomic; ``source`` is gone after).

    A hard link is the race-free test-and-set; on a file system without
    links an exclusively created placeholder is replaced instead.

    :raises FileExistsError: ``target`` exists.
    """
    try:
        os.link(source, target)
    except OSError as error:
        if error.errno not in _NO_LINKS:
            raise
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # FileExistsError if taken
        os.replace(source, target)
    else:
        os.unlink(source)


def _place(data: bytes, target: Path, force: bool, what: str) -> None:
    """Write ``data`` to ``target`` complete or not at all; refuse an existing target unless ``force``.

    A replaced file keeps its permissions; a new one is readable by all and
    writable by its owner.
    """
    import tempfile

    directory = target.parent
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = 0o644
    try:
        descriptor, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=directory)
    except OSError as error:
        raise SessionStoreError(f"cannot write {what} in {directory}: {_reason(error)}") from None
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        if force:
            os.replace(temporary, target)
        else:
            _claim(temporary, target)
    except FileExistsError:
        raise SessionStoreError(f"{what} exists ({target}); give --force to replace it") from None
    except OSError as error:
        raise SessionStoreError(f"cannot write {target}: {_reason(error)}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


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

    :raises SessionStoreError: a bad name or import, or the session exists and not ``force``.
    """
    path = path_of(name)
    source = template(name, imports)
    session_dir(create=True)
    _place(source.encode(), path, force, f"the session {name!r}")
    return path


# -- removing, copying, renaming ----------------------------------------------------------------------


def remove(name: str) -> Path:
    """Remove session ``name`` (its log stays); return the path removed.

    :raises SessionStoreError: unknown session, running in a shell (its lock is held), or not removable.
    """
    return remove_sessions([name])[0]


def remove_sessions(session_names: Sequence[str]) -> List[Path]:
    """Remove several sessions, all or none: every name is checked before anything is removed.

    Their logs stay. A name given twice is removed once.

    :raises SessionStoreError: the first name that is bad, unknown or running; nothing is removed.
    """
    if not session_names:
        raise SessionStoreError("name the sessions to remove")
    paths = [_existing(name) for name in dict.fromkeys(session_names)]
    for name in dict.fromkeys(session_names):
        _refuse_running(name, "remove")
    removed = []
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:  # removed meanwhile by someone else: gone all the same
            pass
        except OSError as error:
            raise SessionStoreError(f"cannot remove {path}: {_reason(error)}") from None
        removed.append(path)
    return removed


def copy(old: str, new: str, force: bool = False) -> Path:
    """Copy session ``old`` to ``new`` (the log is not copied); return the new path.

    Of several copies to the same new name at the same time, exactly one
    succeeds without ``force``.

    :raises SessionStoreError: unknown ``old``, bad ``new``, or ``new`` exists and not ``force``.
    """
    source = _existing(old)
    target = path_of(new)
    if target == source:
        raise SessionStoreError(f"cannot copy the session {old!r} onto itself")
    try:
        data = source.read_bytes()
    except OSError as error:
        raise SessionStoreError(f"cannot read {source}: {_reason(error)}") from None
    _place(data, target, force, f"the session {new!r}")
    return target


def move(old: str, new: str, force: bool = False) -> Path:
    """Rename session ``old`` to ``new``, its log with it; return the new path.

    With ``force`` an existing ``new`` is replaced (and its log, if ``old`` has
    one). Neither may be running in a shell.

    :raises SessionStoreError: unknown ``old``, bad ``new``, ``new`` (or its log) exists and not
        ``force``, or ``old`` or ``new`` is running in a shell.
    """
    source = _existing(old)
    target = path_of(new)
    if target == source:
        raise SessionStoreError(f"cannot rename the session {old!r} to itself")
    _refuse_running(old, "rename")
    if force:
        _refuse_running(new, "replace")
    old_log, new_log = log_path(old), log_path(new)
    has_log = old_log.exists()
    if has_log and new_log.exists() and not force:
        raise SessionStoreError(f"the log of {new!r} exists ({new_log}); give --force to replace it")
    try:
        if force:
            os.replace(source, target)
        else:
            _claim(source, target)
    except FileExistsError:
        raise SessionStoreError(
            f"the session {new!r} exists ({target}); give --force to replace it"
        ) from None
    except OSError as error:
        raise SessionStoreError(f"cannot rename {source} to {target}: {_reason(error)}") from None
    if has_log:
        try:
            if force:
                os.replace(old_log, new_log)
            else:
                _claim(old_log, new_log)
        except OSError as error:  # put the session back where it was: all or nothing
            with contextlib.suppress(OSError):
                _claim(target, source)
            reason = "it exists" if isinstance(error, FileExistsError) else _reason(error)
            raise SessionStoreError(f"cannot rename {old_log} to {new_log}: {reason}") from None
    return target


# -- import and export (urllib and zipfile are imported when used: they cost every command its start) --


def _is_url(source: str) -> bool:
    import urllib.parse

    return urllib.parse.urlsplit(source).scheme.lower() in _URL_SCHEMES


def _limited(read: Callable[[int], bytes], where: str) -> bytes:
    data = read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        mebibytes = MAX_IMPORT_BYTES / (1024 * 1024)
        limit = f"{mebibytes:g} MiB" if mebibytes >= 1 else f"{MAX_IMPORT_BYTES} bytes"
        raise SessionStoreError(f"cannot import {where}: it is larger than {limit}, which no session is")
    return data


def _fetch(source: str, where: str) -> Tuple[str, bytes]:
    """Return (file name, content) of a path or URL (``where``: how messages name it)."""
    if _is_url(source):
        import http.client
        import urllib.error
        import urllib.parse
        import urllib.request

        name = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(source).path))
        try:
            with urllib.request.urlopen(source, timeout=URL_TIMEOUT) as response:
                return name, _limited(response.read, where)
        except urllib.error.HTTPError as error:
            raise SessionStoreError(
                f"cannot fetch {where}: HTTP error {error.code} ({error.reason})"
            ) from None
        except urllib.error.URLError as error:
            reason = error.reason if isinstance(error.reason, str) else _reason(error.reason)
            raise SessionStoreError(f"cannot fetch {where}: {reason}") from None
        except (OSError, ValueError, http.client.HTTPException, socket.timeout) as error:
            raise SessionStoreError(f"cannot fetch {where}: {_reason(error)}") from None
    try:
        with open(source, "rb") as file:
            return os.path.basename(source), _limited(file.read, where)
    except IsADirectoryError:
        message = f"cannot import {where}: it is a directory, not a .py or .zip file"
        raise SessionStoreError(message) from None
    except OSError as error:
        raise SessionStoreError(f"cannot read {where}: {_reason(error)}") from None


def _session_name(filename: str, where: str) -> str:
    if not filename.endswith(".py"):
        raise SessionStoreError(f"cannot import {where}: a session is a .py file (or a .zip of them)")
    try:
        return validate_name(filename[:-3])
    except SessionStoreError as error:
        raise SessionStoreError(f"cannot import {where}: {error}") from None


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


def _unpacked(data: bytes, where: str) -> List[Tuple[str, bytes]]:
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
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
            found = []
            for info in sessions:
                member = f"{where}:{_printable(info.filename)}"
                name = _session_name(_member_name(info.filename, where), member)
                with archive.open(info) as file:  # its stated size may lie: read no more than the limit
                    content = _limited(file.read, member)
                found.append((name, _checked(content, member)))
            return found
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, OSError) as error:
        reason = str(error) or type(error).__name__
        raise SessionStoreError(f"cannot import {where}: not a readable zip archive ({reason})") from None
    except (RuntimeError, NotImplementedError) as error:  # encrypted, or an unknown compression
        raise SessionStoreError(f"cannot import {where}: cannot unpack it ({error})") from None


def import_sessions(sources: Iterable[str], force: bool = False) -> List[str]:
    """Import sessions from ``.py`` files, ``.zip`` archives of them, or URLs; return the names imported.

    A URL is ``http://``, ``https://``, ``ftp://`` or ``file://``; an archive
    is recognised by its ``.zip`` name or its content. The ``.py`` members of
    an archive are sessions wherever they are in it (other members are
    ignored); a member whose path leaves the archive (``../x.py``) refuses
    the whole archive. All sources are read and checked (valid names, valid
    Python, no name twice, no existing session unless ``force``) before
    anything is written, so a failure imports nothing.

    :raises SessionStoreError: naming the first source that cannot be imported.
    """
    import zipfile

    found: List[Tuple[str, bytes, str]] = []
    for source in sources:
        where = _printable(source)
        filename, data = _fetch(source, where)
        named = filename.endswith((".py", ".zip"))
        is_zip = filename.endswith(".zip") or (not named and zipfile.is_zipfile(io.BytesIO(data)))
        if is_zip:
            found += [(name, content, where) for name, content in _unpacked(data, where)]
        else:
            found.append((_session_name(filename, where), _checked(data, where), where))
    if not found:
        raise SessionStoreError("nothing to import: give .py files, .zip archives or URLs")
    seen = {}
    for name, _, source in found:
        if name in seen:
            raise SessionStoreError(f"the session {name!r} comes twice: from {seen[name]} and from {source}")
        seen[name] = source
        if not force and exists(name):
            raise SessionStoreError(
                f"cannot import {source}: the session {name!r} exists; give --force to replace it"
            )
    session_dir(create=True)
    created: List[Path] = []
    try:
        for name, content, _ in found:
            path = path_of(name)
            new = not path.exists()
            _place(content, path, force, f"the session {name!r}")
            if new:
                created.append(path)
    except SessionStoreError:  # all or nothing: take back what this call added
        for path in created:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return [name for name, _, _ in found]


def export_sessions(session_names: Sequence[str], to: PathLike, force: bool = False) -> Path:
    """Write sessions into the zip archive ``to`` (each as ``<name>.py``); return its path.

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
    buffer = io.BytesIO()
    try:
        # strict_timestamps=False: a file dated before 1980 (which zip cannot store) gets 1980-01-01
        with zipfile.ZipFile(
            buffer, "w", compression=zipfile.ZIP_DEFLATED, strict_timestamps=False
        ) as archive:
            for name, path in sources:
                archive.write(path, f"{name}.py")
    except OSError as error:
        raise SessionStoreError(f"cannot read {error.filename or 'a session'}: {_reason(error)}") from None
    _place(buffer.getvalue(), target, force, f"the archive {target}")
    return target


# -- logs -----------------------------------------------------------------------------------------------


def follow(
    path: PathLike,
    write: Callable[[bytes], object],
    poll_interval: float = 0.2,
    stop: Optional[threading.Event] = None,
    note: Optional[Callable[[str], object]] = None,
) -> None:
    """Pass what the file ``path`` holds, then everything appended to it, to ``write``, like ``tail -F``.

    Written in Python, polling every ``poll_interval`` seconds. It survives
    the file being created later (it waits), truncated (it goes on from
    the start) and rotated -- renamed or removed, and a new one made in its
    place (it reads the old one to its end, then the new one from the
    start). ``note`` gets a one-line message for each of these events. It
    runs until ``stop`` is set (or forever; Ctrl-C raises
    :class:`KeyboardInterrupt` as usual). ``write`` runs in the calling
    thread and gets the bytes as they are in the file.
    """
    stop = stop or threading.Event()
    tell = note or (lambda message: None)
    handle = None
    identity: Optional[Tuple[int, int]] = None
    told_missing = False
    try:
        while not stop.is_set():
            if handle is None:
                try:
                    handle = open(path, "rb")  # kept open from one poll to the next
                except FileNotFoundError:
                    if not told_missing:
                        tell(f"{path} does not exist yet; waiting for it")
                        told_missing = True
                    stop.wait(poll_interval)
                    continue
                if told_missing:
                    tell(f"{path} has appeared")
                status = os.fstat(handle.fileno())
                identity = (status.st_dev, status.st_ino)
            chunk = handle.read(64 * 1024)
            if chunk:
                write(chunk)
                continue
            try:
                status = os.stat(path)
            except FileNotFoundError:
                status = None  # removed: keep reading the old file until a new one appears
            if status is not None and (status.st_dev, status.st_ino) != identity:
                rest = handle.read()  # what was written to the old file before it was replaced
                if rest:
                    write(rest)
                handle.close()
                handle = None
                told_missing = False
                tell(f"{path} was replaced; following the new file")
                continue
            if status is not None and status.st_size < handle.tell():
                handle.seek(0)
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
