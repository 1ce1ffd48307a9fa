""":class:`RemoteDirectoryWalker`: a walker whose directories and files are on another machine.

The machine that stores the data runs a walker device server (``concert
tango walker --port N --root DIR``, see :mod:`concert.networking.walker_server`):
a Tango device owning a :class:`~concert.storage.walkers.DirectoryWalker`
there. A :class:`RemoteDirectoryWalker` drives it over Tango and implements
the whole :class:`~concert.storage.walkers.Walker` API against it, so an
experiment writes through it exactly as through a local walker::

    walker = RemoteDirectoryWalker("tango://storage:1234/concert/walker/1#dbase=no")
    walker.descend("flats")
    walker.write(camera_frames).join()       # frames over ZeroMQ, files on 'storage'

Movements, ``exists``, ``log_to_json`` and ``register_logger`` are Tango
commands. A write sends the frames as a reliable ZeroMQ stream
(:class:`~concert.networking.zmq.ZmqSender`, bound here) which the server
receives (:class:`~concert.networking.zmq.ZmqReceiver`) and writes with
the same writer, so the files are byte for byte those a local
:class:`~concert.storage.walkers.DirectoryWalker` would write from the same
frames. The rules hold remotely because the server's walker enforces them:
nothing is written outside the root (``..``, absolute paths, symbolic links
leading out) and no data set is overwritten; a refusal raises the same
exception class here, with the server's message.

Promises:

* **Nothing accepted is lost without an error.** The future of a write
  resolves with the number of frames the server wrote, and only once it
  has written them all (files complete and named); if it wrote fewer, or
  failed, the future fails with the server's error.
* **Never a hang.** While a write runs, a thread polls the server about it
  (which is also how the server knows that the client is still there, see
  the lease in :mod:`concert.networking.walker_server`). A server killed
  or hung mid-write gives :class:`~concert.exceptions.NetworkingError`:
  a killed one at once (a refused connection), a hung one once a poll has
  gone unanswered for the timeout and :data:`POLL` more (not waiting for
  Tango, whose first call to a hung server fails only after about twice
  the timeout and 3 s more); a send that waits because the server is slow
  goes on waiting only while the server answers and its job runs. Other
  calls (``descend`` ...) are single Tango calls, bounded by Tango. A server that
  does not connect to the stream within the timeout (this machine's
  address is not reachable from it) fails the write with NetworkingError too.
* **Cancellation** (``future.cancel()``) stops the write before the next
  frame, as locally: every frame sent is still written, the files are
  complete, and the future ends cancelled once the server has finished.

Threads: the position is the device's, shared by every client of the
device; this object holds no state that changes after construction but
what the base class's lock guards. It may be used from several threads.

Tango and ZeroMQ are imported when a walker is made, not when this module
is imported.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import json
import logging
import os
import posixpath
import socket
import threading
import time
from concurrent.futures import CancelledError
from typing import Any, Dict, Iterable, Optional

import concert.exceptions
from concert.exceptions import ConcertError, ConfigurationError, NetworkingError, StorageError
from concert.futures import Future, check_cancelled, on_cancel, run_in_thread
from concert.networking.tango import command_inout, convert_error, get_tango_device, import_tango
from concert.networking.walker_server import COMMANDS, DEFAULT_LEASE
from concert.storage.walkers import (
    LoggingHandlerCloser,
    Walker,
    WriteJob,
    _attach,
    _check_name,
    _json_text,
)
from concert.storage.writers import _check_count, as_frame
from concert.timeouts import to_seconds

__all__ = ["RemoteDirectoryWalker"]

LOG = logging.getLogger(__name__)

#: Seconds the walker waits for the device when a URI is given and no timeout.
DEFAULT_TIMEOUT = 10.0

#: Frames queued on this side of a write's stream (each keeps its array, or its copy, alive).
SNDHWM = 8

#: Longest a send waits before it looks again at how the server's job is doing, in seconds.
SEND_SLICE = 0.25

#: Longest the server waits in one poll of a job (the heartbeat's period), in seconds.
POLL = 0.5


def _remote_class(reason: str) -> Optional[type]:
    """The exception class a server's error reason names (a Concert exception), or ``None``."""
    if reason == "CancelledError":
        return CancelledError
    cls = getattr(concert.exceptions, reason, None) if reason.isidentifier() else None
    if isinstance(cls, type) and issubclass(cls, ConcertError):
        return cls
    return None


def _local_address(host: str) -> str:
    """The address of this machine on the way to ``host``: the one the server connects back to."""
    try:
        address = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((address, 9))  # a datagram socket only picks the route: nothing is sent
            return probe.getsockname()[0]
    except OSError as error:
        raise ConfigurationError(
            f"cannot tell this machine's address on the way to the walker server {host!r} ({error}); "
            "give RemoteDirectoryWalker(..., endpoint='tcp://ADDRESS:*') with an address of this "
            "machine the server can reach"
        ) from None


class _Monitor:
    """Polls the server about one job from a thread of its own: the client's heartbeat and its news.

    :attr:`status` (the last one received, written by the thread) and
    :attr:`lost` (why the server could not be asked, written by the thread
    or by :meth:`alive`) are written under ``_lock`` and only until
    :attr:`done` is set -- once the job has ended or the server is lost.
    Other threads read them after looking at :attr:`done`.
    """

    def __init__(self, walker: RemoteDirectoryWalker, job: str) -> None:
        self._walker = walker
        self.job = job
        self.status: Optional[Dict[str, Any]] = None
        self.lost: Optional[BaseException] = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._answered = time.monotonic()  # when the server last answered
        # The longest a poll may take while the server is well: its wait, and the timeout of the call.
        self._patience = walker._poll + walker._timeout
        context = contextvars.Context()  # not part of the write's operation: never cancelled with it
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=f"concert-walker-job-{job}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self.done.is_set():
                status = self._walker._wait_job(self.job, self._walker._poll)
                self._answered = time.monotonic()
                with self._lock:
                    if self.done.is_set():  # given up meanwhile (see alive): that stands
                        return
                    self.status = status
                    if status["state"] != "running":
                        self.done.set()
        except BaseException as error:
            self._give_up(error)

    def _give_up(self, error: BaseException) -> None:
        with self._lock:
            if not self.done.is_set():
                self.lost = error
                self.done.set()

    def alive(self) -> bool:
        """Whether the job runs, as far as is known; a server silent for too long counts as lost.

        Tango's first call to a hung server fails only after about twice its
        timeout and 3 s more: a poll unanswered for longer than it may take
        (the server's wait and the timeout) is not waited for.
        """
        if not self.done.is_set():
            silent = time.monotonic() - self._answered
            if silent > self._patience:
                self._give_up(
                    NetworkingError(
                        f"{self._walker!r}: the walker server has not answered about job {self.job} for "
                        f"{silent:.1f} s (its timeout is {self._walker._timeout:g} s): is it hung?"
                    )
                )
        return not self.done.is_set()

    def wait(self) -> None:
        """Wait until the job has ended or the server is lost (bounded: see :meth:`alive`)."""
        while self.alive():
            self.done.wait(0.1)

    def stop(self) -> None:
        self._stop.set()


class _RemoteHandler(logging.Handler):
    """Sends each record to a log file the walker server opened (see ``register_logger``)."""

    def __init__(self, walker: RemoteDirectoryWalker, number: int, path: str) -> None:
        super().__init__()
        self._walker = walker
        self.number = number
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: Dict[str, Any] = {
                "name": record.name,
                "levelno": record.levelno,
                "levelname": record.levelname,
                "msg": record.getMessage(),
                "created": record.created,
                "msecs": record.msecs,
            }
            if record.exc_info:
                fields["exc_text"] = (self.formatter or logging.Formatter()).formatException(record.exc_info)
            elif record.exc_text:
                fields["exc_text"] = record.exc_text
            if record.stack_info:
                fields["stack_info"] = record.stack_info
            text = json.dumps({"handler": self.number, "records": [fields]}, default=str)
            self._walker._command("log", text, f"{self._walker!r}: logging to {self.path!r}")
        except Exception:
            self.handleError(record)  # logging's way: the record is reported lost on standard error

    def close(self) -> None:
        super().close()
        try:
            self._walker._command(
                "unregister_logger", self.number, f"{self._walker!r}: closing {self.path!r}"
            )
        except ConcertError:
            pass  # unreachable: the server closes the file when it stops; every record sent was taken


class RemoteDirectoryWalker(Walker):
    """A walker driving the walker device ``device`` of a walker server (see the module documentation).

    ``device`` is the device's URI (``'tango://host:port/concert/walker/1#dbase=no'``,
    or a name in the Tango database), a ``tango.DeviceProxy`` or a
    :class:`~concert.devices.tango.TangoDevice` of it. ``timeout`` (seconds
    or a time quantity; for a URI only, default 10 s -- a proxy keeps its
    own) bounds every Tango call, and the time the server has to connect to
    a write's stream.

    ``root`` is where the walker's hierarchy starts: ``None`` for the
    device's root, or a directory inside it (absolute, or relative to the
    device's root), created if needed; the device then moves there, and
    :meth:`home` and :meth:`ascend` stop there. Without ``root`` the device
    stays where it is. ``dsetname``, ``start_index`` and ``bytes_per_file``
    are those of :class:`~concert.storage.walkers.DirectoryWalker`, sent
    with every write (the device's own defaults are left alone); ``wrt_cls``
    names the writer (``'TiffWriter'``, the one the server has; the class
    itself is accepted too).

    ``endpoint`` is where a write's stream is bound (default: this
    machine's address on the way to the server, any free port, e.g.
    ``'tcp://10.0.0.5:*'``). ``copy`` (default ``True``) copies each frame
    when it is sent, so that a producer may reuse its arrays as soon as
    it has handed them over; ``copy=False`` sends the arrays' own memory,
    which is faster, for producers that hand out a new array per frame.
    ``lease`` (seconds) is how long the server waits for word from this
    walker before it gives a write up (default
    :data:`~concert.networking.walker_server.DEFAULT_LEASE`, or longer for a
    long timeout); it must exceed twice the timeout and 3.5 s.

    :raises ConfigurationError: PyTango or pyzmq is missing, ``device`` is
        neither a URI nor a device, the device is not a walker device, or an
        argument is malformed.
    :raises NetworkingError: the device cannot be reached within the timeout.
    :raises StorageError: for a ``dsetname``, ``start_index``,
        ``bytes_per_file`` or ``root`` a walker refuses.
    """

    def __init__(
        self,
        device: Any,
        root: Optional[str] = None,
        dsetname: str = "frame_{:>06}.tif",
        wrt_cls: Any = "TiffWriter",
        start_index: int = 0,
        bytes_per_file: int = 0,
        *,
        timeout: Any = None,
        endpoint: Optional[str] = None,
        copy: bool = True,
        lease: Any = None,
    ) -> None:
        self._check_dsetname(dsetname)
        writer = getattr(wrt_cls, "__name__", wrt_cls)
        if writer != "TiffWriter":
            raise StorageError(
                f"wrt_cls must be 'TiffWriter' (the writer walker servers have), not {wrt_cls!r}"
            )
        self._writer = writer
        self._start_index = _check_count(start_index, "start_index")
        self._bytes_per_file = _check_count(bytes_per_file, "bytes_per_file")
        if not isinstance(copy, bool):
            raise ConfigurationError(f"RemoteDirectoryWalker: copy={copy!r} must be True or False")
        self._copy = copy
        tango = import_tango()
        _import_pyzmq()
        self._tango = tango
        given = device
        proxy = getattr(device, "proxy", None) if not isinstance(device, (str, tango.DeviceProxy)) else device
        if isinstance(given, str):
            seconds = DEFAULT_TIMEOUT if timeout is None else to_seconds(timeout, "timeout")
            proxy = get_tango_device(given, timeout=seconds)
        elif isinstance(proxy, tango.DeviceProxy):
            if timeout is not None:
                raise ConfigurationError(
                    f"RemoteDirectoryWalker({given!r}, timeout={timeout!r}): a device keeps its own "
                    "timeout; give a URI to choose one"
                )
            seconds = proxy.get_timeout_millis() / 1000
        else:
            raise ConfigurationError(
                f"RemoteDirectoryWalker({given!r}): give the walker device's URI, a tango.DeviceProxy or a "
                "TangoDevice"
            )
        self._proxy = proxy
        self._timeout = seconds
        self._poll = min(POLL, seconds / 4)
        shortest = 2 * seconds + 3 + POLL  # the longest a call of this walker may take, and a poll
        self._lease = max(DEFAULT_LEASE, 2 * shortest) if lease is None else to_seconds(lease, "lease")
        if self._lease <= shortest:
            raise ConfigurationError(
                f"RemoteDirectoryWalker: lease={lease!r} must be longer than twice the timeout "
                f"({seconds:g} s) and 3.5 s more: the server would give writes up while a call of the "
                "walker may still be on its way"
            )
        self._uri = given if isinstance(given, str) else str(proxy.dev_name())
        try:
            # each command's CommandInfo, so that a call does not ask the server for its type first
            self._command_info = {info.cmd_name: info for info in proxy.command_list_query()}
        except tango.DevFailed as error:
            raise convert_error(error, f"{self!r}: asking the device what it is") from None
        missing = [name for name in COMMANDS if name not in self._command_info]
        if missing:
            raise ConfigurationError(
                f"{self!r}: the device is not a Concert walker device (it lacks the commands "
                f"{', '.join(missing)}); start one with: concert tango walker --port N --root DIR"
            )
        server_root = self._server_root = str(self._read("root"))
        if endpoint is None:
            endpoint = f"tcp://{_local_address(self._server_host(given))}:*"
        elif not isinstance(endpoint, str) or not endpoint.startswith("tcp://"):
            raise ConfigurationError(
                f"{self!r}: endpoint={endpoint!r} must be 'tcp://ADDRESS:PORT' (PORT may be '*') with an "
                "address of this machine the server can reach"
            )
        self._endpoint = endpoint
        top = server_root
        if root is not None:
            top = self._enter_root(root)
        super().__init__(top, dsetname)

    def _server_host(self, given: Any) -> str:
        if isinstance(given, str) and "://" in given:
            rest = given.split("://", 1)[1]
            return rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        try:
            return str(self._proxy.info().server_host)
        except self._tango.DevFailed as error:
            raise self._error(error, f"{self!r}: asking where the device runs") from None

    def _enter_root(self, root: Any) -> str:
        if isinstance(root, os.PathLike):
            root = os.fspath(root)
        if not isinstance(root, str) or not root:
            raise StorageError(f"{self!r}: root must be a non-empty str, not {root!r}")
        relative = posixpath.relpath(root, self._server_root) if posixpath.isabs(root) else root
        if relative == posixpath.pardir or relative.startswith(posixpath.pardir + "/"):
            raise StorageError(
                f"{self!r}: root {root!r} lies outside the walker device's root {self._server_root!r}"
            )
        doing = f"{self!r}: going to the root {root!r}"
        self._command("home", "", doing)
        if relative == posixpath.curdir:
            return self._server_root
        return self._command("descend", _check_name(relative, "root"), doing)

    # -- description --------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"RemoteDirectoryWalker({getattr(self, '_uri', '?')!r})"

    @property
    def proxy(self) -> Any:
        """The ``tango.DeviceProxy`` of the walker device."""
        return self._proxy

    @property
    def uri(self) -> str:
        """The walker device as given (its URI, or the name of the device given)."""
        return self._uri

    @property
    def timeout(self) -> float:
        """The timeout of every Tango call, in seconds."""
        return self._timeout

    @property
    def endpoint(self) -> str:
        """Where the streams of writes are bound (see the class)."""
        return self._endpoint

    @property
    def writer(self) -> str:
        """The name of the writer the server writes data sets with."""
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
    def device_root(self) -> str:
        """The walker device's root (``--root`` of the server), which :attr:`root` lies in."""
        return self._server_root

    # -- talking to the device --------------------------------------------------------------------

    def _error(self, error: BaseException, doing: str) -> BaseException:
        """The Concert exception for Tango's ``error``: the server's own class when it sent one."""
        converted = convert_error(error, doing)
        cls = _remote_class(converted.reason)
        if cls is None:
            return converted
        mapped = cls(f"{doing}: {' '.join(converted.description.split())}")
        for attribute in ("reason", "description", "origin", "errors"):
            setattr(mapped, attribute, getattr(converted, attribute))
        return mapped

    def _command(self, name: str, argument: Any, doing: str) -> Any:
        try:
            return command_inout(self._proxy, self._command_info[name], argument)
        except self._tango.DevFailed as error:
            raise self._error(error, doing) from None

    def _json_command(self, name: str, arguments: Dict[str, Any], doing: str) -> Any:
        return json.loads(self._command(name, json.dumps(arguments), doing))

    def _read(self, name: str) -> Any:
        try:
            return self._proxy.read_attribute(name).value
        except self._tango.DevFailed as error:
            raise self._error(error, f"{self!r}: reading {name}") from None

    def _local_check(self, check: Any, value: Any, what: str, doing: str) -> Any:
        """``check(value, what)`` (a walker's own check of a name), its refusal naming this walker."""
        try:
            return check(value, what)
        except StorageError as error:
            raise StorageError(f"{doing}: {error}") from None

    def _floor(self) -> str:
        return "" if self._root == self._server_root else self._root

    # -- moving -------------------------------------------------------------------------------------

    @property
    def current(self) -> str:
        """Where the walker device is now (a path on the server's machine)."""
        return str(self._read("current"))

    def descend(self, name: str) -> RemoteDirectoryWalker:
        """Go down to ``name`` on the server, creating it if needed; return self."""
        doing = f"{self!r}.descend({name!r})"
        name = self._local_check(_check_name, name, "descend: name", doing)
        with self._lock:
            self._command("descend", name, doing)
        return self

    def ascend(self) -> RemoteDirectoryWalker:
        """Go up one level; return self. StorageError at :attr:`root`."""
        with self._lock:
            self._command("ascend", self._floor(), f"{self!r}.ascend()")
        return self

    def home(self) -> RemoteDirectoryWalker:
        """Go back to :attr:`root`; return self."""
        with self._lock:
            self._command("home", self._floor(), f"{self!r}.home()")
        return self

    def exists(self, *paths: str) -> bool:
        """Whether the path made of ``paths`` exists below the current position, on the server.

        :raises StorageError: as :meth:`Walker.exists`.
        """
        parts = [os.fspath(path) if isinstance(path, os.PathLike) else path for path in paths]
        if not all(isinstance(part, str) for part in parts):
            raise StorageError(f"exists: paths must be str, not {paths!r}")
        return bool(self._command("exists", json.dumps(parts), f"{self!r}.exists{tuple(parts)!r}"))

    # -- writing ------------------------------------------------------------------------------------

    def _settings(self, dsetname: str) -> Dict[str, Any]:
        return {
            "dsetname": dsetname,
            "start_index": self._start_index,
            "bytes_per_file": self._bytes_per_file,
            "writer": self._writer,
        }

    def write(
        self, data: Any = None, dsetname: Optional[str] = None, *, producer: Optional[Iterable[Any]] = None
    ) -> Any:
        """Write data set ``dsetname`` (default :attr:`dsetname`) on the server at the current position.

        As :meth:`Walker.write`: with frames it returns a
        :class:`~concert.futures.Future` at once whose result is the number
        of frames the server wrote, once every file is complete; without,
        the push-style sink. The frames travel as a ZeroMQ stream (see the
        module documentation); with the sink, ``send(frame)`` returns once
        the frame is sent (with ``copy=True``, the default, the frame may be
        reused then), and ``close()`` once the server has written them all.

        :raises StorageError: at once, as :meth:`create_writer`.
        """
        return super().write(data, dsetname, producer=producer)

    def create_writer(
        self, producer: Iterable[Any], name: Optional[str] = None, dsetname: Optional[str] = None
    ) -> WriteJob:
        """Prepare writing data set ``dsetname`` from ``producer`` on the server; return the job, not started.

        As :meth:`Walker.create_writer`: the server checks the names, the
        containment and the data in the way and creates the directory now
        (``name``: a subdirectory of the current position); calling the job
        sends the frames and returns the number the server wrote.

        :raises StorageError: as a local walker does, with the server's message.
        """
        dsetname = self.dsetname if dsetname is None else dsetname
        doing = f"{self!r}.create_writer(name={name!r}, dsetname={dsetname!r})"
        dsetname = self._local_check(lambda value, what: self._check_dsetname(value), dsetname, "", doing)
        if name is not None:
            name = self._local_check(_check_name, name, "create_writer: name", doing)
        arguments = {"name": name, **self._settings(dsetname)}
        with self._lock:
            prepared = self._json_command("prepare", arguments, doing)
        directory = prepared["directory"]

        def run(frames: Iterable[Any]) -> int:
            return self._transfer(frames, directory, dsetname)

        return WriteJob(directory, dsetname, producer, run)

    def write_sequence(
        self, endpoint: str, dsetname: Optional[str] = None, name: Optional[str] = None
    ) -> Future:
        """Make the server write the stream a reliable ZmqSender sends from ``endpoint``; return at once.

        ``endpoint`` is where the sender is bound (``sender.endpoint``, as the
        server's machine reaches it); the server connects to it and writes
        the stream, up to its end of stream, as data set ``dsetname``
        (default :attr:`dsetname`) at the current position (in its
        subdirectory ``name`` if given). Returns a
        :class:`~concert.futures.Future` at once (also when asynchronous
        execution is disabled): its result is the number of frames written,
        once the stream has ended and every frame is written. Cancelling it
        stops the server's write after the frame in hand (what was written
        stays, complete) and ends it cancelled.

        :raises StorageError: at once, for names or data in the way, as :meth:`create_writer`.
        :raises ConfigurationError: at once, for an ``endpoint`` that is not ``'tcp://HOST:PORT'``.
        """
        dsetname = self.dsetname if dsetname is None else dsetname
        doing = f"{self!r}.write_sequence({endpoint!r}, dsetname={dsetname!r})"
        dsetname = self._local_check(lambda value, what: self._check_dsetname(value), dsetname, "", doing)
        if name is not None:
            name = self._local_check(_check_name, name, "write_sequence: name", doing)
        with self._lock:
            job = self._start(endpoint, None, name, dsetname, doing)
        return run_in_thread(self._follow, job, doing, name=doing)

    def _start(
        self, endpoint: Any, directory: Optional[str], name: Optional[str], dsetname: str, doing: str
    ) -> str:
        arguments = {
            "endpoint": endpoint,
            "directory": directory,
            "name": name,
            "lease": self._lease,
            **self._settings(dsetname),
        }
        return str(self._command("write_sequence", json.dumps(arguments), doing))

    def _wait_job(self, job: str, seconds: float) -> Dict[str, Any]:
        doing = f"{self!r}: asking the walker server about job {job}"
        return self._json_command("wait_job", {"job": job, "timeout": seconds}, doing)

    def _cancel_job(self, job: str) -> None:
        self._command("cancel_job", job, f"{self!r}: cancelling job {job}")

    def _outcome(self, status: Dict[str, Any], doing: str, sent: Optional[int] = None) -> int:
        """The frames the job wrote, or its failure raised (``sent``: what it should have written)."""
        state, frames, error = status["state"], status["frames"], status["error"]
        if state == "finished":
            if sent is not None and frames != sent:
                raise StorageError(f"{doing}: the server wrote {frames} of the {sent} frame(s) sent")
            return frames
        message = f"{doing}: {error['message']}" if error else f"{doing}: the server's write ended ({state})"
        if state == "cancelled":
            raise CancelledError(message)
        cls = _remote_class(error["type"]) if error else None
        raise (cls or StorageError)(message)

    def _follow(self, job: str, doing: str) -> int:
        """Poll the server until ``job`` has ended; its outcome (the body of write_sequence's future)."""
        monitor = _Monitor(self, job)
        early = False  # asked to stop before the stop action was registered
        try:
            try:
                registration = on_cancel(functools.partial(self._cancel_job, job))
            except CancelledError:
                # The request came before this thread got here (write_sequence had returned, the
                # caller cancelled at once). The server's job runs all the same: stop it, and wait
                # for it as below, so that the future settles only once the server has closed its
                # files -- never while one is still being written.
                early = True
                registration = contextlib.nullcontext()
                try:
                    self._cancel_job(job)
                except ConcertError as failure:  # the monitor then tells what became of the job
                    LOG.warning("%s: the server's write could not be cancelled: %s", doing, failure)
            with registration:
                monitor.wait()
        finally:
            monitor.stop()
        if monitor.lost is not None:
            raise NetworkingError(f"{doing}: lost the walker server: {monitor.lost}")
        frames = self._outcome(monitor.status, doing)
        if early:
            check_cancelled()  # it ends cancelled, as when the stop action ran, even if the job finished
        return frames

    def _transfer(self, frames: Iterable[Any], directory: str, dsetname: str) -> int:
        """Send ``frames`` to the server, which writes them as ``dsetname`` in ``directory``; their number.

        The body of every write (a :class:`~concert.storage.walkers.WriteJob`
        made by :meth:`create_writer`); see the module documentation for
        what it promises.
        """
        from concert.networking.zmq import ZmqSender

        doing = f"{self!r}: writing {dsetname!r} in {directory!r}"
        sender = ZmqSender(self._endpoint, sndhwm=SNDHWM, timeout=SEND_SLICE, copy=self._copy)
        try:
            with self._lock:
                job = self._start(sender.endpoint, directory, None, dsetname, doing)
        except BaseException:
            _close_quietly(sender)
            raise
        monitor = _Monitor(self, job)
        sent = 0
        connected = False  # the server's receiver took a message: the stream is connected
        deadline: Optional[float] = None  # for the first message: by then the server must have connected

        def push(call: Any) -> None:
            nonlocal connected, deadline
            if deadline is None:
                deadline = time.monotonic() + self._timeout
            while True:
                if not monitor.alive():
                    raise self._ended(monitor, doing, sent)
                try:
                    call()
                    connected = True
                    return
                except NetworkingError:
                    if sender.closed:
                        raise
                if not monitor.alive():
                    raise self._ended(monitor, doing, sent)
                if not connected and time.monotonic() > deadline:
                    raise NetworkingError(
                        f"{doing}: the walker server did not connect to {sender.endpoint} within "
                        f"{self._timeout:g} s: is this address of this machine reachable from the server? "
                        "(choose one with RemoteDirectoryWalker(..., endpoint='tcp://ADDRESS:*'))"
                    )

        try:
            try:
                for frame in frames:
                    frame = as_frame(frame, f"frame {sent} (counting from 0)")
                    push(functools.partial(sender.send, frame))
                    sent += 1
                push(sender.end)
            except BaseException:
                if monitor.alive():
                    # Whatever stopped us, the frames sent are written: end the stream there (the
                    # wait for room is not part of the cancelled operation), or, if the server never
                    # connected, cancel the job, which then has nothing.
                    try:
                        if connected:
                            contextvars.Context().run(push, sender.end)
                        else:
                            self._cancel_job(job)
                    except Exception as failure:  # the error that stopped us is the one to raise
                        LOG.warning("%s: the server's write could not be ended: %s", doing, failure)
                    monitor.wait()
                raise
            monitor.wait()
            if monitor.lost is not None:
                raise self._ended(monitor, doing, sent)
            return self._outcome(monitor.status, doing, sent)
        finally:
            monitor.stop()
            _close_quietly(sender)

    def _ended(self, monitor: _Monitor, doing: str, sent: int) -> BaseException:
        """The error for a job that ended (or a server that was lost) while frames were still to come."""
        if monitor.lost is not None:
            return NetworkingError(
                f"{doing}: lost the walker server after {sent} frame(s) were sent (what it wrote of them "
                f"is not known): {monitor.lost}"
            )
        try:
            self._outcome(monitor.status, doing)
        except BaseException as error:
            return error
        return StorageError(f"{doing}: the server ended the write after {monitor.status['frames']} frame(s)")

    # -- logs -----------------------------------------------------------------------------------

    def log_to_json(self, payload: Any, filename: str = "experiment.json") -> str:
        """Store ``payload`` as JSON on the server at the current position; return the file's path there.

        As :meth:`Walker.log_to_json` (an existing file is never overwritten).
        """
        text = _json_text(payload)
        if isinstance(filename, os.PathLike):
            filename = os.fspath(filename)
        if not isinstance(filename, str):
            raise StorageError(f"log_to_json: filename must be a str, not {filename!r}")
        arguments = json.dumps({"payload": text, "filename": filename})
        with self._lock:
            return str(
                self._command("log_to_json", arguments, f"{self!r}.log_to_json(filename={filename!r})")
            )

    def register_logger(self, logger_name: str, log_level: Any, file_name: str) -> LoggingHandlerCloser:
        """Send the records of logger ``logger_name`` to ``file_name`` at the current position, on the server.

        As :meth:`Walker.register_logger`. Each record is sent to the server
        when it is logged (one Tango call, in the thread that logs) and
        appended there in the walker's format, with the time it was made
        here. A record that cannot be sent (the server is gone) is reported on
        standard error, as :mod:`logging` reports a failing handler; logging
        never raises. ``close()`` closes the file on the server too.

        :raises StorageError: for an invalid level, or a ``file_name`` the
            server's walker refuses (not a plain file name, leading outside
            the root).
        """
        if isinstance(file_name, os.PathLike):
            file_name = os.fspath(file_name)
        if not isinstance(file_name, str):
            raise StorageError(f"register_logger: file_name must be a str, not {file_name!r}")

        def make_handler() -> logging.Handler:
            doing = f"{self!r}.register_logger({logger_name!r}, {log_level!r}, {file_name!r})"
            arguments = json.dumps({"log_level": log_level, "file_name": file_name})
            with self._lock:
                number = int(self._command("register_logger", arguments, doing))
            return _RemoteHandler(self, number, file_name)

        return _attach(logger_name, log_level, make_handler)

    # -- the base class's hooks, unused: the server resolves every name -----------------------------

    def _resolve(self, name: str, what: str) -> str:
        raise NotImplementedError("a RemoteDirectoryWalker's server resolves names")

    def _enter(self, target: str) -> None:
        raise NotImplementedError("a RemoteDirectoryWalker's server creates directories")

    def _parent(self, position: str) -> str:
        raise NotImplementedError("a RemoteDirectoryWalker's server moves")

    def _prepare(self, producer: Iterable[Any], directory: str, dsetname: str) -> WriteJob:
        raise NotImplementedError("see RemoteDirectoryWalker.create_writer")


def _import_pyzmq() -> None:
    try:
        importlib.import_module("zmq")
    except ImportError:
        raise ConfigurationError(
            "RemoteDirectoryWalker sends frames over ZeroMQ, which needs pyzmq: pip install 'concert[zmq]'"
        ) from None


def _close_quietly(sender: Any) -> None:
    """Close a write's sender; messages it could not deliver were accounted for by the job's outcome."""
    try:
        sender.close()
    except NetworkingError:
        pass
