"""Walkers: move through a hierarchy of directories and write data sets where they stand.

A walker has a ``root`` and a ``current`` position below it::

    walker = DirectoryWalker("/data/run-7")
    walker.descend("flats")                       # /data/run-7/flats (created)
    future = walker.write(camera_frames)          # background write of the data set
    walker.ascend().descend("projections")        # move on while it runs
    future.join()

    sink = walker.write(dsetname="proj_{:>06}.tif")  # the legacy push-style form
    inject(frames, sink)                          # each frame sent is written
    sink.close()                                  # the data set is complete

:class:`DirectoryWalker` walks real directories and writes files with an
:class:`~concert.storage.writers.ImageWriter`; :class:`DummyWalker` keeps
everything in memory, for tests.

Promises:

* A walker never leaves its root: names that are absolute, contain a ``..``
  component, or (for :class:`DirectoryWalker`) lead outside through a
  symbolic link -- a linked directory, a dataset or log file name that is a
  link -- are refused with :class:`~concert.exceptions.StorageError`, and a
  refused operation has written nothing anywhere. This holds while the tree
  changes too: a :class:`DirectoryWalker` reaches directories without
  following links and creates every file relative to such a directory; a
  data set's directory replaced during the write stops it with
  StorageError naming the file not written.
* An existing data set is never overwritten: writing it raises
  :class:`~concert.exceptions.StorageError` naming what is in the way, and it
  stays untouched. Nor is a JSON log overwritten (see :meth:`Walker.log_to_json`).
* Ownership: the position (``current``) belongs to the walker and is guarded
  by its lock, so several threads may move one walker without corrupting it
  (where it is then is up to their order). A write captures its target
  directory and data set name when it is created; from then on it owns them
  and its producer, and the walker may move on while it runs.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import posixpath
import threading
from typing import Any, Callable, Dict, Generator, Iterable, List, Optional, Set, Type, Union

import numpy as np

from concert.checks import is_integer
from concert.exceptions import StorageError
from concert.futures import Future, async_
from concert.storage.files import (
    CREATE_FLAGS,
    create_directory,
    existing_files,
    is_formattable,
    json_default,
    open_real_directory,
    parse_rights,
)
from concert.storage.writers import ImageWriter, TiffWriter, _check_count, _checked, write_data_set

__all__ = [
    "DirectoryWalker",
    "DummyWalker",
    "LoggingHandlerCloser",
    "Walker",
    "WriteJob",
]

#: Format of the lines :meth:`Walker.register_logger` writes.
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def _check_name(name: Any, what: str = "name") -> str:
    """Return ``name`` if it is a relative path that stays below where it starts, else StorageError."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise StorageError(f"{what} must be a non-empty str, not {name!r}")
    if "\0" in name:
        raise StorageError(f"{what} {name!r} contains a NUL character")
    parts = name.replace(os.sep, "/").replace(os.altsep or "/", "/").split("/")
    if name.startswith(("/", os.sep)) or os.path.isabs(name) or posixpath.isabs(name):
        raise StorageError(f"{what} {name!r} is absolute: a walker only goes below its root")
    if ".." in parts:
        raise StorageError(f"{what} {name!r} contains '..': a walker only goes below its root")
    return name


def _check_file_name(name: Any, what: str) -> str:
    """Return ``name`` if it is a plain file name (no directory part), else StorageError."""
    name = _check_name(name, what)
    if "/" in name or os.sep in name or (os.altsep and os.altsep in name) or name == ".":
        raise StorageError(f"{what} {name!r} must be a file name without a directory part")
    return name


def _json_text(payload: Any) -> str:
    """Return ``payload`` as JSON text: a str must already be JSON, anything else is encoded."""
    if isinstance(payload, (str, bytes)):
        text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        try:
            json.loads(text)
        except ValueError as error:
            raise StorageError(
                f"log_to_json: payload is not valid JSON text ({error}): {text[:80]!r}"
            ) from None
        return text
    try:
        return json.dumps(payload, indent=2, default=json_default)
    except (TypeError, ValueError) as error:
        raise StorageError(f"log_to_json: cannot encode {payload!r} as JSON: {error}") from None


def _numbered(filename: str, number: int) -> str:
    """``experiment.json``, ``experiment-1.json``, ``experiment-2.json`` …"""
    if number == 0:
        return filename
    stem, extension = os.path.splitext(filename)
    return f"{stem}-{number}{extension}"


def _level(log_level: Any) -> int:
    if isinstance(log_level, str):
        level = logging.getLevelName(log_level.upper())
        if isinstance(level, int):
            return level
    elif is_integer(log_level) and log_level >= 0:
        return log_level
    raise StorageError(f"log_level must be a logging level (e.g. logging.INFO or 'INFO'), not {log_level!r}")


class LoggingHandlerCloser:
    """What :meth:`Walker.register_logger` returns: ``close()`` detaches and closes the handler.

    ``close()`` removes the handler from the logger, closes it (and its file),
    and restores the logger's level if registering had lowered it and nobody
    changed it since. Calling it again does nothing. Also a context manager.
    """

    def __init__(
        self, logger: logging.Logger, handler: logging.Handler, previous_level: Optional[int]
    ) -> None:
        self.logger = logger
        self.handler = handler
        self._previous_level = previous_level
        self._set_level = logger.level
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Detach and close the handler (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.logger.removeHandler(self.handler)
        self.handler.close()
        if self._previous_level is not None and self.logger.level == self._set_level:
            self.logger.setLevel(self._previous_level)

    def __enter__(self) -> LoggingHandlerCloser:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _attach(
    logger_name: str, log_level: Any, make_handler: Callable[[], logging.Handler]
) -> LoggingHandlerCloser:
    """Check the arguments, then create the handler and attach it to the logger."""
    level = _level(log_level)
    if not isinstance(logger_name, str):
        raise StorageError(f"logger_name must be a str, not {logger_name!r}")
    handler = make_handler()
    logger = logging.getLogger(logger_name)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    previous = None
    if logger.getEffectiveLevel() > level:  # records of `level` must reach the handler
        previous = logger.level
        logger.setLevel(level)
    logger.addHandler(handler)
    return LoggingHandlerCloser(logger, handler, previous)


class WriteJob:
    """A data set write prepared by :meth:`Walker.create_writer`, not started yet.

    Calling it (``job()``) writes every frame of the producer, blocking, and
    returns the number of frames written; a job runs once. ``directory`` and
    ``dsetname`` are where it writes, fixed when it was created. Before it
    takes each frame from the producer it calls
    :func:`~concert.futures.check_cancelled`: run inside an operation (as
    :meth:`Walker.write` does, or as a broadcast consumer), a cancel request
    on that operation stops the job with ``CancelledError`` after the frame
    being written. A frame taken from the producer is always written, and
    the files written so far are kept, complete.
    """

    def __init__(
        self, directory: str, dsetname: str, producer: Iterable[Any], run: Callable[..., int]
    ) -> None:
        self.directory = directory
        self.dsetname = dsetname
        self._producer = producer
        self._run = run
        self._started = False
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            if self._started:
                raise StorageError(f"{self!r} has already run")
            self._started = True
        return self._run(_checked(self._producer))

    def __repr__(self) -> str:
        return f"<WriteJob {self.dsetname!r} in {self.directory!r}>"


@async_
def write_dataset(job: WriteJob) -> int:
    """Run ``job`` (a :class:`WriteJob`) in the background; the future's result is the frame count."""
    return job()


class Walker(abc.ABC):
    """Moves through a hierarchy below ``root`` and writes data sets at its current position.

    ``dsetname`` is the default data set name for :meth:`write` and
    :meth:`create_writer`. Movement (:meth:`descend`, :meth:`ascend`,
    :meth:`home`) is serialised by the walker's lock.
    """

    def __init__(self, root: str, dsetname: str = "frames") -> None:
        # _lock guards _current; _root and dsetname are set here and not changed by the walker.
        self._lock = threading.RLock()
        self._root = root
        self._current = root
        self.dsetname = self._check_dsetname(dsetname)

    @property
    def root(self) -> str:
        """The top of the hierarchy; the walker never goes above it."""
        return self._root

    @property
    def current(self) -> str:
        """Where the walker is now."""
        with self._lock:
            return self._current

    def descend(self, name: str) -> Walker:
        """Go down to ``name`` (relative, may have several components), creating it if needed; return self.

        :raises StorageError: if ``name`` is absolute, has a ``..`` component,
            leads outside the root, or exists and is not a directory. Nothing
            is created then and the position is unchanged.
        """
        with self._lock:
            target = self._resolve(name, "descend: name")
            self._enter(target)
            self._current = target
        return self

    def ascend(self) -> Walker:
        """Go up one level; return self.

        :raises StorageError: at the root, which the walker never leaves.
        """
        with self._lock:
            if self._current == self._root:
                raise StorageError(f"cannot ascend above the root {self._root!r}")
            self._current = self._parent(self._current)
        return self

    def home(self) -> Walker:
        """Go back to the root; return self."""
        with self._lock:
            self._current = self._root
        return self

    def write(
        self, data: Any = None, dsetname: Optional[str] = None, *, producer: Optional[Iterable[Any]] = None
    ) -> Union[Future, Generator[None, Any, None]]:
        """Write data set ``dsetname`` (default: :attr:`dsetname`) at the current position.

        The target is the current position at the time of the call; the walker
        may move on at once.

        * With frames -- ``write(frames)``, ``write(data=frames)`` (the legacy
          name) or ``write(producer=frames)`` -- start writing them in the
          background (in the caller's thread when asynchronous execution is
          disabled) and return a future whose result is the number of frames
          written. ``frames`` is an iterable of frames (a 3-D array is a stack
          of them); a single 2-D array is one frame. Cancelling the future
          stops after the frame being written (see :class:`WriteJob`): the
          future ends cancelled, the frames written so far stay, in complete
          files.
        * Without frames -- ``write()``, ``write(dsetname=...)``, the legacy
          form -- return a push-style sink: a primed generator that writes
          every frame it is sent. The writing runs in a thread of its own, but
          each ``send(frame)`` returns only once the frame is written (with one
          file per frame, its file is complete and named), and raises the
          writer's error for it. ``close()`` ends the data set: it waits until
          the open file (with ``bytes_per_file``) is complete and named. A sink
          that is not closed is closed when it is garbage collected, or at the
          interpreter's exit (see :mod:`concert.coroutines.base`). Once a send
          has raised, the sink is finished (the next ``send`` raises
          ``StopIteration``).

        :raises StorageError: at once, before anything is written, as
            :meth:`create_writer` does, and if both ``data`` and ``producer``
            are given.
        """
        if data is not None and producer is not None:
            raise StorageError(
                f"write: give the frames once, as data or as producer, not both (dsetname={dsetname!r})"
            )
        frames = producer if data is None else data
        if frames is None:
            from concert.coroutines.base import Inbox

            inbox = Inbox(wait=True)
            job = self.create_writer(inbox, dsetname=dsetname)
            return inbox.start(job, f"{type(self).__name__}.write({job.dsetname!r})")
        if isinstance(frames, np.ndarray) and frames.ndim == 2:
            frames = [frames]  # one frame, not its rows
        return write_dataset(self.create_writer(frames, dsetname=dsetname))

    def create_writer(
        self, producer: Iterable[Any], name: Optional[str] = None, dsetname: Optional[str] = None
    ) -> WriteJob:
        """Prepare writing data set ``dsetname`` with the frames of ``producer``; return the job, not started.

        With ``name``, the data set goes into the subdirectory ``name`` of the
        current position (created now; the walker's position does not change).
        Everything that can be checked or prepared is done here -- names,
        containment, existing data, directories -- so that calling the
        returned :class:`WriteJob` does only the I/O, and the walker is free to
        move on meanwhile.

        :raises StorageError: for an invalid or escaping ``name`` or
            ``dsetname``, or an existing data set (named in the message).
            Nothing has been created or written then.
        """
        with self._lock:
            if name is None:
                directory = self._resolve(os.curdir, "create_writer: current position")
            else:
                directory = self._resolve(name, "create_writer: name")
            dsetname = self._check_dsetname(self.dsetname if dsetname is None else dsetname)
            return self._prepare(producer, directory, dsetname)

    @staticmethod
    def _check_dsetname(dsetname: Any) -> str:
        name = _check_file_name(dsetname, "dsetname")
        is_formattable(name)  # a malformed template fails here
        return name

    @abc.abstractmethod
    def exists(self, *paths: str) -> bool:
        """Return whether the path made of ``paths`` exists below the current position.

        Without ``paths``: whether the current position exists.

        :raises StorageError: if a path is absolute, has a ``..`` component or
            leads outside the root.
        """

    @abc.abstractmethod
    def log_to_json(self, payload: Any, filename: str = "experiment.json") -> str:
        """Store ``payload`` as JSON in ``filename`` at the current position; return where it went.

        ``payload`` is JSON text (a str, checked) or an object to encode
        (numpy values become numbers and lists, other values JSON cannot
        represent their str). Existing files
        are never overwritten: if ``filename`` exists, the payload goes to the
        first free ``<stem>-1<ext>``, ``<stem>-2<ext>`` …, and that name is
        returned.

        :raises StorageError: if ``payload`` is not JSON (text), or ``filename``
            is not a plain file name or leads outside the root.
        """

    @abc.abstractmethod
    def register_logger(self, logger_name: str, log_level: Any, file_name: str) -> LoggingHandlerCloser:
        """Send the records of logger ``logger_name`` at ``log_level`` and above to ``file_name`` here.

        ``log_level`` is a number or a level name. Returns a
        :class:`LoggingHandlerCloser`; its ``close()`` detaches the handler.

        :raises StorageError: for an invalid level or a ``file_name`` that is
            not a plain file name or leads outside the root.
        """

    # -- what subclasses provide; called with the lock held --------------------------------

    @abc.abstractmethod
    def _resolve(self, name: str, what: str) -> str:
        """Return the position ``name`` below the current one; StorageError if not allowed."""

    @abc.abstractmethod
    def _enter(self, target: str) -> None:
        """Make ``target`` (from :meth:`_resolve`) exist as a directory."""

    @abc.abstractmethod
    def _parent(self, position: str) -> str:
        """Return the position above ``position``."""

    @abc.abstractmethod
    def _prepare(self, producer: Iterable[Any], directory: str, dsetname: str) -> WriteJob:
        """Check and create what writing needs; return the job."""


class DirectoryWalker(Walker):
    """Walks a directory tree and writes each data set as files with ``writer``.

    ``root`` defaults to the working directory and is created (with
    ``rights``) if missing; it is resolved to its real path, which
    :attr:`root` and :attr:`current` report. ``dsetname`` is the file name
    template of data sets: with the default and ``start_index=100`` the
    first file is ``frame_000100.tif``. ``writer``, ``start_index``,
    ``bytes_per_file`` and ``rights`` are passed to
    :func:`~concert.storage.writers.write_images`; ``rights`` also applies to
    every directory the walker creates.

    Every name is checked before anything is touched: it must be relative,
    without ``..`` components, and once symbolic links are resolved it must
    still lie below the root. A data set is in the way if any of the files
    it would create exists (as anything, including a symbolic link); then
    :class:`~concert.exceptions.StorageError` names it.

    The tree may change while the walker works. Directories are opened (and
    created) component by component from ``/`` without following any link
    (:func:`~concert.storage.files.open_real_directory`), and every file --
    data, JSON, log -- is created relative to its directory opened so,
    exclusively and never through a link at its name. A write holds its
    directory open; before it creates each file and before it names it (see
    :class:`~concert.storage.writers.ImageWriter`) the path is opened again
    and must lead to the same directory, else the write stops with
    StorageError naming the file, which then exists nowhere. The one thing
    not caught is the held directory itself being *moved* out of the root
    between that last check and the naming of a file.

    :raises StorageError: for invalid arguments, or a root that exists and is
        not a directory.
    """

    def __init__(
        self,
        root: Optional[str] = None,
        dsetname: str = "frame_{:>06}.tif",
        writer: Union[Type[ImageWriter], Callable[[], ImageWriter]] = TiffWriter,
        start_index: int = 0,
        bytes_per_file: int = 0,
        rights: str = "750",
    ) -> None:
        parse_rights(rights)
        self._check_dsetname(dsetname)  # every argument is checked before the root is created
        if not callable(writer):
            raise StorageError(f"writer must be an ImageWriter class, not {writer!r}")
        self._writer = writer
        self._start_index = _check_count(start_index, "start_index")
        self._bytes_per_file = _check_count(bytes_per_file, "bytes_per_file")
        self._rights = rights
        if root is None:
            root = os.getcwd()
        if not isinstance(root, (str, os.PathLike)) or not os.fspath(root):
            raise StorageError(f"root must be a non-empty path, not {root!r}")
        create_directory(os.fspath(root), rights)
        super().__init__(os.path.realpath(os.fspath(root)), dsetname)

    @property
    def writer(self) -> Any:
        """The writer class data sets are written with."""
        return self._writer

    @property
    def start_index(self) -> int:
        """The number of the first file of each data set."""
        return self._start_index

    @property
    def bytes_per_file(self) -> int:
        """Pixel bytes per file (``0``: one file per frame)."""
        return self._bytes_per_file

    @property
    def rights(self) -> str:
        """The rights of the directories the walker creates."""
        return self._rights

    def _inside(self, path: str) -> bool:
        return path == self._root or os.path.commonpath([self._root, path]) == self._root

    def _resolve(self, name: str, what: str) -> str:
        _check_name(name, what)
        target = os.path.realpath(os.path.join(self._current, name))
        if not self._inside(target):
            raise StorageError(f"{what} {name!r} leads to {target!r}, outside the root {self._root!r}")
        return target

    def _resolve_file(self, name: str, what: str) -> str:
        """Return the path of the plain file ``name`` here, following a link only if it stays inside."""
        _check_file_name(name, what)
        return self._resolve(name, what)

    def _open(self, directory: str, create: bool = False) -> int:
        """Return a descriptor of ``directory`` (a real path inside the root), reached without links.

        With ``create``, missing directories below the root are made, with the
        walker's rights. Every component is opened without following links
        (:func:`~concert.storage.files.open_real_directory`), so a link put
        into the tree after ``directory`` was resolved cannot lead outside.
        """
        return open_real_directory(directory, self._root if create else None, self._rights)

    def _enter(self, target: str) -> None:
        if os.path.lexists(target) and not os.path.isdir(target):
            raise StorageError(f"cannot descend into {target!r}: it is not a directory")
        os.close(self._open(target, create=True))

    def _parent(self, position: str) -> str:
        return os.path.dirname(position)

    def exists(self, *paths: str) -> bool:
        with self._lock:
            if not paths:
                return os.path.isdir(self._current)
            return os.path.lexists(self._resolve(os.path.join(*paths), "exists: path"))

    def _prepare(self, producer: Iterable[Any], directory: str, dsetname: str) -> WriteJob:
        if os.path.lexists(directory) and not os.path.isdir(directory):
            raise StorageError(f"cannot write into {directory!r}: it is not a directory")
        clash = existing_files(directory, dsetname, self._start_index)
        if clash:
            raise StorageError(
                f"refusing to overwrite data set {dsetname!r} in {directory!r}: {clash[0]!r} exists"
            )
        os.close(self._open(directory, create=True))

        def open_target(create: bool) -> int:
            # The tree may have changed since: the directory must still be itself, inside the root,
            # reached through real directories only (and so it is checked again before every file).
            if os.path.realpath(directory) != directory or not self._inside(directory):
                raise StorageError(
                    f"{directory!r} no longer lies inside the root {self._root!r}; not written"
                )
            return self._open(directory, create)

        def run(frames: Iterable[Any]) -> int:
            return write_data_set(
                frames,
                self._writer,
                directory,
                dsetname,
                self._start_index,
                self._bytes_per_file,
                open_target,
            )

        return WriteJob(directory, dsetname, producer, run)

    def log_to_json(self, payload: Any, filename: str = "experiment.json") -> str:
        text = _json_text(payload)
        with self._lock:
            _check_file_name(filename, "log_to_json: filename")
            directory = self._current
        held = self._open(directory)
        try:
            number = 0
            while True:
                name = _numbered(filename, number)
                path = self._resolve_in(directory, name, "log_to_json: filename")
                try:
                    # Relative to the directory reached without links, never through a link at the name.
                    descriptor = os.open(name, CREATE_FLAGS | os.O_EXCL, 0o640, dir_fd=held)
                except FileExistsError:
                    number += 1
                    continue
                except OSError as error:
                    raise StorageError(
                        f"log_to_json: cannot create {path!r}: {error.strerror or error}"
                    ) from error
                with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                    stream.write(text)
                    stream.flush()
                    os.fsync(stream.fileno())
                return path
        finally:
            os.close(held)

    def _resolve_in(self, directory: str, name: str, what: str) -> str:
        """Return ``directory/name`` if it (or what a link there points to) lies inside the root."""
        path = os.path.join(directory, name)
        target = os.path.realpath(path)
        if not self._inside(target):
            raise StorageError(f"{what} {name!r} leads to {target!r}, outside the root {self._root!r}")
        return path

    def register_logger(self, logger_name: str, log_level: Any, file_name: str) -> LoggingHandlerCloser:
        with self._lock:
            path = self._resolve_file(file_name, "register_logger: file_name")
        if os.path.isdir(path):
            raise StorageError(f"register_logger: {path!r} is a directory")
        return _attach(logger_name, log_level, lambda: _ContainedFileHandler(path, self._open))


class _ContainedFileHandler(logging.FileHandler):
    """A FileHandler appending to ``path`` (a real path inside the root), opened without following links.

    ``open_directory`` returns a descriptor of a directory reached without
    links (:meth:`DirectoryWalker._open`); the file is opened relative to it,
    with ``O_NOFOLLOW``, each time the handler opens it.
    """

    def __init__(self, path: str, open_directory: Callable[[str], int]) -> None:
        self._open_directory = open_directory
        super().__init__(path, mode="a", encoding="utf-8")

    def _open(self) -> Any:
        directory, name = os.path.split(self.baseFilename)
        held = self._open_directory(directory)
        try:
            descriptor = os.open(name, CREATE_FLAGS | os.O_APPEND, 0o666, dir_fd=held)  # as FileHandler
        except OSError as error:
            raise StorageError(
                f"register_logger: cannot open {self.baseFilename!r}: {error.strerror or error}"
            ) from error
        finally:
            os.close(held)
        return os.fdopen(descriptor, "a", encoding=self.encoding, errors=self.errors)


class _ListHandler(logging.Handler):
    """Appends formatted records to a list (DummyWalker's log 'files')."""

    def __init__(self, lines: List[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)


class DummyWalker(Walker):
    """A walker that keeps everything in memory, for tests; same rules as :class:`DirectoryWalker`.

    Positions are POSIX-style paths joined to ``root`` (``''`` by default, so
    ``descend('a/b')`` is at ``'a/b'``). Written data sets are in
    :attr:`data` (path of the data set -> list of copies of its frames, in
    order), JSON logs in :attr:`json_files` (path -> text), log records in
    :attr:`logs` (path -> list of formatted lines). Data set names are plain
    keys (the template is not expanded). The dicts are guarded by the
    walker's lock; read them once writes are done.
    """

    def __init__(self, root: str = "") -> None:
        if not isinstance(root, str):
            raise StorageError(f"root must be a str, not {root!r}")
        super().__init__(root)
        self.data: Dict[str, List[np.ndarray]] = {}
        self.json_files: Dict[str, str] = {}
        self.logs: Dict[str, List[str]] = {}
        self._dirs: Set[str] = {root}

    @property
    def paths(self) -> List[str]:
        """Every directory, data set and file known, sorted."""
        with self._lock:
            return sorted(self._dirs | set(self.data) | set(self.json_files) | set(self.logs))

    def _resolve(self, name: str, what: str) -> str:
        _check_name(name, what)
        path = posixpath.normpath(posixpath.join(self._current, name))
        return "" if path == "." else path

    def _enter(self, target: str) -> None:
        if target in self.data or target in self.json_files or target in self.logs:
            raise StorageError(f"cannot descend into {target!r}: it is not a directory")
        probe = target
        while probe and probe != self._root and probe not in self._dirs:
            self._dirs.add(probe)
            probe = posixpath.dirname(probe)

    def _parent(self, position: str) -> str:
        return posixpath.dirname(position)

    def exists(self, *paths: str) -> bool:
        with self._lock:
            if not paths:
                return True
            path = self._resolve(posixpath.join(*paths), "exists: path")
            return path in self._dirs or path in self.data or path in self.json_files or path in self.logs

    def _prepare(self, producer: Iterable[Any], directory: str, dsetname: str) -> WriteJob:
        key = self._join(directory, dsetname)
        if key in self.data:
            raise StorageError(f"refusing to overwrite data set {key!r}: it exists")
        self._enter(directory)

        def run(frames: Iterable[Any]) -> int:
            with self._lock:
                if key in self.data:
                    raise StorageError(f"refusing to overwrite data set {key!r}: it exists")
                stored = self.data[key] = []
            for frame in frames:
                stored.append(np.asanyarray(frame).copy())
            return len(stored)

        return WriteJob(directory, dsetname, producer, run)

    @staticmethod
    def _join(directory: str, name: str) -> str:
        return posixpath.join(directory, name) if directory else name

    def log_to_json(self, payload: Any, filename: str = "experiment.json") -> str:
        text = _json_text(payload)
        _check_file_name(filename, "log_to_json: filename")
        with self._lock:
            number = 0
            while True:
                path = self._join(self._current, _numbered(filename, number))
                if path not in self.json_files and path not in self._dirs and path not in self.data:
                    self.json_files[path] = text
                    return path
                number += 1

    def register_logger(self, logger_name: str, log_level: Any, file_name: str) -> LoggingHandlerCloser:
        _level(log_level)
        if not isinstance(logger_name, str):
            raise StorageError(f"logger_name must be a str, not {logger_name!r}")
        _check_file_name(file_name, "register_logger: file_name")
        with self._lock:
            path = self._join(self._current, file_name)
            lines = self.logs.setdefault(path, [])
        return _attach(logger_name, log_level, lambda: _ListHandler(lines))
