"""The walker device server: a Tango device owning a :class:`~concert.storage.walkers.DirectoryWalker`.

``concert tango walker --port N [--root DIR]`` runs :func:`serve_walker`:
a database-less Tango device server (see
:mod:`concert.networking.tango_server`) exporting one device, by default
``concert/walker/1``, of the Tango class ``ConcertWalker``. It runs on the
machine that stores the data and writes there what clients send it; the
client is :class:`~concert.storage.remote.RemoteDirectoryWalker`, which
implements the whole ``Walker`` API against it. The control travels over
Tango, the frames over ZeroMQ.

The device, in Tango terms (every JSON argument is one JSON object given as
a ``DevString``):

* attributes ``root`` and ``current`` (read-only strings: the real paths of
  the root, which the device never leaves, and of its position);
  ``dsetname`` (string), ``bytes_per_file`` and ``start_index`` (64-bit
  integers), read-write: the defaults of a ``write_sequence`` that does not
  name its own;
* commands ``descend(name) -> current``, ``ascend(floor) -> current`` and
  ``home(floor) -> current`` (``floor`` ``""`` or a directory inside the
  root that a client takes as its own root: ``ascend`` refuses to go above
  it, ``home`` goes there), ``exists(JSON list of path parts) -> bool``;
* ``prepare(JSON) -> JSON``: the checks of ``create_writer`` -- names,
  containment, existing data -- and the directory created, nothing written;
  returns ``{"directory": ...}``;
* ``write_sequence(JSON) -> job id``: start receiving a frame stream from
  the ZeroMQ ``endpoint`` given (a reliable :class:`~concert.networking.zmq.ZmqSender`
  bound there; the device's :class:`~concert.networking.zmq.ZmqReceiver`
  connects to it) and writing it as a data set; returns at once. Keys:
  ``endpoint`` (required), ``directory`` (an absolute path inside the
  root; default: the current position), ``name`` (a subdirectory of it),
  ``dsetname``, ``bytes_per_file``, ``start_index``, ``writer``
  (``"TiffWriter"``) and ``lease`` (seconds, see below);
* ``wait_job(JSON {"job": id, "timeout": seconds}) -> JSON status``: wait
  at most ``timeout`` (at most :data:`MAX_WAIT`) for the job to end; the
  status is ``{"job", "state", "frames", "error", "directory",
  "dsetname"}`` with ``state`` one of ``"running"``, ``"finished"``,
  ``"failed"`` and ``"cancelled"``; ``frames`` is the number of frames
  written once finished (taken so far while running), ``error`` ``null``
  or ``{"type": exception class, "message": ...}``;
* ``cancel_job(id)``: ask the job to stop; it stops after the frame in hand
  and keeps what it wrote, in complete files; ``wait_job`` tells when;
* ``log_to_json(JSON {"payload": JSON text, "filename"}) -> path``;
* ``register_logger(JSON {"log_level", "file_name"}) -> handler id``,
  ``log(JSON {"handler": id, "records": [...]})`` and
  ``unregister_logger(id)``: remote logging, see below.

**Errors.** Every refusal is a Tango error (``DevFailed``) whose *reason* is
the name of the Concert exception the walker raised -- ``StorageError`` for
a name leading outside the root or a data set in the way,
``ConfigurationError`` for a malformed argument -- and whose *description*
is its message; the client raises the same exception class with that
message. An operating system error is sent as ``StorageError``.

**Jobs and leases.** Each write runs in a thread of its own; several may
run at once (into different data sets). A job the client stops asking
about (``wait_job``) for ``lease`` seconds (default :data:`DEFAULT_LEASE`) is
given up: its stream is closed, what it wrote stays, in complete files,
and it fails with ``NetworkingError``. A client that has gone away thus
never holds a data set for ever. Finished jobs are remembered (the last
:data:`KEPT_JOBS`) so that a client asking again gets the same answer.

**Remote logging.** ``register_logger`` opens a log file at the current
position (the rules of :meth:`~concert.storage.walkers.DirectoryWalker.register_logger`:
a plain file name, inside the root, appended to) and returns a handler id;
``log`` appends the client's records to it, formatted here with the
walker's format (``asctime name levelname message``, the time being the
client's time of the record), exactly as a local walker would write them.

**Memory.** Each write receives up to :data:`READ_AHEAD` bytes of frames
ahead of its writer (and ZeroMQ queues :data:`RCVHWM` frames more), so
that the stream goes on while the writer waits for the disk to sync a
file. The server tells glibc's allocator to keep freed memory for reuse
(receiving a frame would otherwise map a fresh buffer from the system);
its memory stays at its peak.

**Threads.** Tango runs commands concurrently (the server uses Tango's
``NO_SYNC`` serialisation, so a waiting ``wait_job`` holds up nobody). The
position belongs to the device's walker and is guarded by
``_WalkerService._position``; the jobs, handlers and defaults by
``_WalkerService._lock``. Every client shares the one position.

PyTango is imported when a server is run, not when this module is imported.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import secrets
import threading
import time
from concurrent.futures import CancelledError
from typing import Any, Dict, Iterator, Optional

from concert.exceptions import ConcertError, ConfigurationError, NetworkingError, StorageError
from concert.futures import Future, run_in_thread
from concert.storage.walkers import DirectoryWalker, LoggingHandlerCloser, Walker
from concert.storage.writers import TiffWriter, _check_count

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_NAME",
    "KEPT_JOBS",
    "MAX_WAIT",
    "RCVHWM",
    "READ_AHEAD",
    "WRITERS",
    "keep_freed_memory",
    "serve_walker",
]

LOG = logging.getLogger(__name__)

#: The Tango device name :func:`serve_walker` exports by default.
DEFAULT_NAME = "concert/walker/1"

#: Seconds a job waits for word from its client before it is given up (see the module documentation).
DEFAULT_LEASE = 60.0

#: The longest a ``wait_job`` call waits on the server, in seconds (clients ask again).
MAX_WAIT = 1.0

#: Finished jobs remembered for ``wait_job``.
KEPT_JOBS = 256

#: Log handlers a server keeps open at most.
MAX_HANDLERS = 256

#: Receive high-water mark of a job's stream: frames ZeroMQ queues on the server side.
RCVHWM = 8

#: Bytes of frames a job receives ahead of its writer, so that the stream goes on while the writer
#: waits for the disk to sync a file (at least one frame is always taken).
READ_AHEAD = 512 * 2**20

#: The writers a client may name, by name.
WRITERS = {"TiffWriter": TiffWriter}

#: Names of the commands; a client checks that a device has them all.
COMMANDS = (
    "descend",
    "ascend",
    "home",
    "exists",
    "prepare",
    "write_sequence",
    "wait_job",
    "cancel_job",
    "log_to_json",
    "register_logger",
    "log",
    "unregister_logger",
)


def _json_object(text: str, command: str, required: tuple = ()) -> Dict[str, Any]:
    """The JSON object ``text`` (argument of ``command``); ConfigurationError if it is not one."""
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigurationError(f"{command}: the argument is not JSON ({error}): {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{command}: the argument must be a JSON object, not {text[:80]!r}")
    missing = [key for key in required if key not in value]
    if missing:
        raise ConfigurationError(f"{command}: the argument lacks {', '.join(missing)}: {text[:80]!r}")
    return value


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigurationError(f"{what} must be a number of seconds >= 0, not {value!r}")
    return float(value)


class _Job:
    """One data set being received and written, in a thread of its own.

    The job thread writes ``taken`` and the outcome (``state``, ``frames``,
    ``error``) and then sets ``done``; readers look at the outcome only once
    ``done`` is set. ``last_contact`` and ``abandoned`` are written under the
    service's lock.
    """

    def __init__(self, ident: str, receiver: Any, lease: float) -> None:
        self.ident = ident
        self.receiver = receiver  # the ZmqReceiver of the stream
        self.directory = ""
        self.dsetname = ""
        self.lease = lease
        self.taken = 0
        self.state = "running"
        self.frames = 0
        self.error: Optional[BaseException] = None
        self.abandoned: Optional[str] = None
        self.last_contact = time.monotonic()
        self.done = threading.Event()
        self.future: Optional[Future] = None

    def frames_received(self) -> Iterator[Any]:
        """The frames of the stream, for the writer; read ahead by a thread of their own (see _ReadAhead)."""
        ahead = _ReadAhead(self.receiver, READ_AHEAD)
        try:
            for frame in ahead:
                self.taken += 1
                yield frame
        finally:
            ahead.close()

    def status(self) -> Dict[str, Any]:
        done = self.done.is_set()
        error = None
        if done and self.error is not None:
            error = {"type": type(self.error).__name__, "message": str(self.error)}
        return {
            "job": self.ident,
            "state": self.state if done else "running",
            "frames": self.frames if done else self.taken,
            "error": error,
            "directory": self.directory,
            "dsetname": self.dsetname,
        }


class _ReadAhead:
    """Frames a thread receives ahead of the writer: at most ``limit`` bytes of them (and at least one).

    While the writer waits for the disk -- it syncs every file it finishes
    -- the stream goes on into memory instead of stopping, so that the
    transfer overlaps the syncing. The reading thread appends to ``_items``
    and the writer takes from it, both under ``_ready``; ``_items`` holds
    frames, then the end (``_END``) or the exception that ended the stream.
    Iterating (in the writer's thread, once) yields the frames in order and
    raises that exception; a cancel request on the writer's operation stops
    its wait within :data:`~concert.networking.zmq.SLICE`. After
    :meth:`close` the frames still held are dropped and the reading thread
    ends with its next frame, or when the receiver is closed.
    """

    def __init__(self, receiver: Any, limit: int) -> None:
        self._receiver = receiver
        self._limit = limit
        self._ready = threading.Condition()
        self._items: collections.deque = collections.deque()
        self._bytes = 0
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="concert-walker-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: Any, size: int) -> bool:
        with self._ready:
            while self._bytes and self._bytes + size > self._limit and not self._closed:
                self._ready.wait()
            if self._closed:
                return False
            self._items.append(item)
            self._bytes += size
            self._ready.notify_all()
            return True

    def _read(self) -> None:
        try:
            for frame in self._receiver:
                if not self._put(frame, frame.nbytes):
                    return
            self._put(_END, 0)
        except BaseException as error:  # what ends the stream reaches the writer, in order
            self._put(error, 0)

    def __iter__(self) -> Iterator[Any]:
        from concert.futures import check_cancelled
        from concert.networking.zmq import SLICE

        while True:
            with self._ready:
                while not self._items:
                    check_cancelled()
                    self._ready.wait(SLICE)
                item = self._items.popleft()
                if item is not _END and not isinstance(item, BaseException):
                    self._bytes -= item.nbytes
                self._ready.notify_all()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._items.clear()
            self._ready.notify_all()


_END = object()  # the end of a stream, in a _ReadAhead


class _WalkerService:
    """What the device does, without Tango: a DirectoryWalker, its write jobs and log handlers."""

    def __init__(self, walker: DirectoryWalker) -> None:
        self.walker = walker
        self.root = walker.root
        # _position serialises every move of the walker and every read of its position for a
        # write, so that a move and its check (ascend's floor) are one step.
        self._position = threading.RLock()
        # _lock guards _defaults, _jobs, _finished, _handlers and the jobs' contact times.
        self._lock = threading.Lock()
        self._defaults: Dict[str, Any] = {
            "dsetname": "frame_{:>06}.tif",
            "bytes_per_file": 0,
            "start_index": 0,
        }
        self._jobs: Dict[str, _Job] = {}
        self._finished: collections.OrderedDict[str, _Job] = collections.OrderedDict()
        self._handlers: Dict[int, LoggingHandlerCloser] = {}
        self._token = secrets.token_hex(3)  # job ids of another server instance never match ours
        self._numbers = itertools.count(1)
        self._stop = threading.Event()
        self._reaper: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start giving up the jobs of clients that went away (again after :meth:`shutdown`)."""
        if self._reaper is None or not self._reaper.is_alive():
            self._stop = threading.Event()
            self._reaper = threading.Thread(
                target=self._reap, args=(self._stop,), name="concert-walker-leases", daemon=True
            )
            self._reaper.start()

    # -- defaults ---------------------------------------------------------------------------------

    def get_default(self, key: str) -> Any:
        with self._lock:
            return self._defaults[key]

    def set_default(self, key: str, value: Any) -> None:
        if key == "dsetname":
            value = Walker._check_dsetname(value)
        else:
            value = _check_count(value, key)
        with self._lock:
            self._defaults[key] = value

    # -- moving -----------------------------------------------------------------------------------

    def current(self) -> str:
        return self.walker.current

    def _floor(self, floor: str, command: str) -> str:
        """The directory a client takes as its root: ``""`` is the device's root."""
        if not floor:
            return self.root
        path = os.path.realpath(floor)
        if not os.path.isabs(floor) or not (
            path == self.root or os.path.commonpath([self.root, path]) == self.root
        ):
            raise StorageError(f"{command}: {floor!r} is not a directory inside the root {self.root!r}")
        return path

    def descend(self, name: str) -> str:
        with self._position:
            return self.walker.descend(name).current

    def ascend(self, floor: str) -> str:
        with self._position:
            top = self._floor(floor, "ascend")
            if self.walker.current == top:
                raise StorageError(f"cannot ascend above the root {top!r}")
            return self.walker.ascend().current

    def home(self, floor: str) -> str:
        with self._position:
            top = self._floor(floor, "home")
            self.walker.home()
            if top != self.root:
                self.walker.descend(os.path.relpath(top, self.root))
            return self.walker.current

    def exists(self, paths: Any) -> bool:
        if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
            raise ConfigurationError(f"exists: the argument must be a JSON list of strings, not {paths!r}")
        with self._position:
            return self.walker.exists(*paths)

    # -- writing ----------------------------------------------------------------------------------

    def _job_walker(self, arguments: Dict[str, Any], command: str) -> DirectoryWalker:
        """A walker with the write's settings, standing where the write goes (``directory``, else here)."""
        with self._lock:
            settings = dict(self._defaults)
        for key in settings:
            if arguments.get(key) is not None:
                settings[key] = arguments[key]
        writer_name = arguments.get("writer") or "TiffWriter"
        writer = WRITERS.get(writer_name) if isinstance(writer_name, str) else None
        if writer is None:
            raise StorageError(
                f"{command}: writer {writer_name!r} is not one the walker server has ({', '.join(WRITERS)})"
            )
        walker = DirectoryWalker(
            self.root,
            dsetname=settings["dsetname"],
            writer=writer,
            start_index=settings["start_index"],
            bytes_per_file=settings["bytes_per_file"],
            rights=self.walker.rights,
        )
        directory = arguments.get("directory")
        if directory is None:
            with self._position:
                directory = self.walker.current
        elif not isinstance(directory, str) or not os.path.isabs(directory):
            raise StorageError(f"{command}: directory {directory!r} must be an absolute path inside the root")
        relative = os.path.relpath(os.path.realpath(directory), self.root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            raise StorageError(
                f"{command}: directory {directory!r} lies outside the root {self.root!r}; not written"
            )
        if relative != os.curdir:
            walker.descend(relative)
        return walker

    def prepare(self, arguments: Dict[str, Any]) -> Dict[str, Any]:
        walker = self._job_walker(arguments, "prepare")
        job = walker.create_writer((), name=arguments.get("name"), dsetname=arguments.get("dsetname"))
        return {"directory": job.directory, "dsetname": job.dsetname}

    def write_sequence(self, arguments: Dict[str, Any]) -> str:
        from concert.networking.zmq import ZmqReceiver

        endpoint = arguments["endpoint"]
        lease = _seconds(arguments.get("lease", DEFAULT_LEASE), "write_sequence: lease")
        if not isinstance(endpoint, str) or not endpoint.startswith("tcp://") or "*" in endpoint:
            raise ConfigurationError(
                f"write_sequence: endpoint {endpoint!r} must be 'tcp://HOST:PORT' of a bound ZmqSender"
            )
        # The receiver first: a malformed endpoint is refused before a directory is made. It only
        # connects; frames are taken from it once the writer runs.
        receiver = ZmqReceiver(endpoint, timeout=None, rcvhwm=RCVHWM, bind=False)
        try:
            ident = f"{next(self._numbers)}-{self._token}"
            job = _Job(ident, receiver, lease)
            walker = self._job_walker(arguments, "write_sequence")
            writer = walker.create_writer(
                job.frames_received(), name=arguments.get("name"), dsetname=arguments.get("dsetname")
            )
            job.directory, job.dsetname = writer.directory, writer.dsetname
            with self._lock:
                self._jobs[ident] = job
            try:
                job.future = run_in_thread(self._run, job, writer, name=f"walker job {ident}")
            except BaseException:
                with self._lock:
                    self._jobs.pop(ident, None)
                raise
        except BaseException:
            receiver.close()
            raise
        LOG.info("job %s: receiving %s into %s from %s", ident, job.dsetname, job.directory, endpoint)
        return ident

    def _run(self, job: _Job, writer: Any) -> None:
        try:
            job.frames = writer()
            job.state = "finished"
        except BaseException as error:
            job.frames = job.taken
            with self._lock:
                abandoned = job.abandoned
            if abandoned is not None:
                job.state, job.error = "failed", NetworkingError(abandoned)
            elif isinstance(error, CancelledError):
                job.state, job.error = "cancelled", error
            else:
                job.state, job.error = "failed", error
            if job.state == "failed":
                LOG.warning("job %s (%s in %s) failed: %s", job.ident, job.dsetname, job.directory, job.error)
        finally:
            try:
                job.receiver.close()
            except ConcertError:
                pass
            with self._lock:
                self._jobs.pop(job.ident, None)
                self._finished[job.ident] = job
                while len(self._finished) > KEPT_JOBS:
                    self._finished.popitem(last=False)
            job.done.set()

    def _job(self, ident: Any, command: str) -> _Job:
        with self._lock:
            job = self._jobs.get(ident) or self._finished.get(ident)
            if job is None:
                raise NetworkingError(
                    f"{command}: the walker server has no job {ident!r} (was the server restarted?)"
                )
            job.last_contact = time.monotonic()
        return job

    def wait_job(self, arguments: Dict[str, Any]) -> Dict[str, Any]:
        job = self._job(arguments["job"], "wait_job")
        timeout = min(_seconds(arguments.get("timeout", 0), "wait_job: timeout"), MAX_WAIT)
        job.done.wait(timeout)
        return job.status()

    def cancel_job(self, ident: str) -> None:
        job = self._job(ident, "cancel_job")
        if job.future is not None:
            job.future.request_cancel(f"cancel_job({ident!r})")

    def running(self) -> int:
        with self._lock:
            return len(self._jobs)

    def _reap(self, stop: threading.Event) -> None:
        """Give up the jobs whose clients have not asked about them within their lease, until ``stop``."""
        while not stop.wait(0.5):
            now = time.monotonic()
            with self._lock:
                late = [job for job in self._jobs.values() if now - job.last_contact > job.lease]
                for job in late:
                    job.abandoned = (
                        f"job {job.ident}: no word from the client for {job.lease:g} s; the write of "
                        f"{job.dsetname!r} in {job.directory!r} was given up after {job.taken} frame(s)"
                    )
            for job in late:
                job.receiver.close()  # the job's wait ends; what it wrote stays complete

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every job (each keeps what it wrote) and close the log handlers."""
        self._stop.set()
        with self._lock:
            jobs = list(self._jobs.values())
            handlers = list(self._handlers.values())
            self._handlers.clear()
        for job in jobs:
            if job.future is not None:
                job.future.request_cancel("the walker device's shutdown (or Init)")
        deadline = time.monotonic() + timeout
        for job in jobs:
            job.done.wait(max(0.0, deadline - time.monotonic()))
        for handler in handlers:
            handler.close()

    # -- logs -----------------------------------------------------------------------------------

    def log_to_json(self, arguments: Dict[str, Any]) -> str:
        with self._position:
            return self.walker.log_to_json(arguments["payload"], arguments.get("filename", "experiment.json"))

    def register_logger(self, arguments: Dict[str, Any]) -> int:
        with self._lock:
            if len(self._handlers) >= MAX_HANDLERS:
                raise StorageError(
                    f"register_logger: the walker server has {MAX_HANDLERS} log files open; close some"
                )
            number = next(self._numbers)
        logger_name = f"{__name__}.remote.{number}"
        logging.getLogger(logger_name).propagate = False  # the records go to the file only
        with self._position:
            closer = self.walker.register_logger(logger_name, arguments["log_level"], arguments["file_name"])
        with self._lock:
            self._handlers[number] = closer
        return number

    def _handler(self, number: Any, command: str) -> LoggingHandlerCloser:
        with self._lock:
            closer = self._handlers.get(number)
        if closer is None:
            raise StorageError(
                f"{command}: no log handler {number!r} (was it closed, or the server restarted?)"
            )
        return closer

    def log(self, arguments: Dict[str, Any]) -> None:
        handler = self._handler(arguments["handler"], "log").handler
        records = arguments["records"]
        if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
            raise ConfigurationError("log: records must be a list of JSON objects")
        for fields in records:
            record = logging.makeLogRecord(fields)
            if record.levelno >= handler.level:
                handler.handle(record)

    def unregister_logger(self, number: int) -> None:
        closer = self._handler(number, "unregister_logger")
        with self._lock:
            self._handlers.pop(number, None)
        closer.close()


# -- the Tango device -------------------------------------------------------------------------------

_service: Optional[_WalkerService] = None  # the service of the device this process serves (set once)
_device_class: Any = None  # ConcertWalker, made on first use (it needs PyTango)


def _walker_device_class() -> Any:
    """The Tango device class ``ConcertWalker`` (made once: defining it needs PyTango)."""
    global _device_class
    if _device_class is not None:
        return _device_class
    import functools

    import tango
    from tango.server import Device, attribute, command

    def refused(device: Any, error: BaseException, operation: str) -> None:
        if isinstance(error, (ConcertError, CancelledError)):
            reason, description = type(error).__name__, str(error) or type(error).__name__
        elif isinstance(error, OSError):
            reason, description = "StorageError", f"{operation}: {error}"
        else:
            reason, description = type(error).__name__, f"{operation}: {error!r}"
        # The origin says "a Concert device raised it" as concert.networking.tango.ORIGIN does for
        # served devices, so that a TangoDevice of the walker gets the Concert exception too.
        tango.Except.throw_exception(reason, description, f"concert:{device.get_name()}")

    def guarded(method: Any) -> Any:
        @functools.wraps(method)
        def call(self: Any, *args: Any) -> Any:
            try:
                return method(self, *args)
            except tango.DevFailed:
                raise
            except BaseException as error:
                refused(self, error, method.__name__)

        return call

    class ConcertWalker(Device):
        """Concert's walker device: writes the frame streams of clients below its root."""

        def init_device(self) -> None:
            super().init_device()
            # Commands run concurrently: a client waiting for its job must not hold up the others.
            tango.Util.instance().set_serial_model(tango.SerialModel.NO_SYNC)
            self.service = _service
            self.service.start()

        def delete_device(self) -> None:
            # The server stops (or the Tango command Init re-initialises the device): the writes
            # running stop after the frame in hand, their files complete.
            self.service.shutdown()

        def dev_state(self) -> Any:
            return tango.DevState.RUNNING if self.service.running() else tango.DevState.ON

        def dev_status(self) -> str:
            running = self.service.running()
            return f"{running} data set(s) being written below {self.service.root}"

        @attribute(dtype=str, description="the top directory; the walker never leaves it")
        def root(self) -> str:
            return self.service.root

        @attribute(dtype=str, description="where the walker is")
        @guarded
        def current(self) -> str:
            return self.service.current()

        @attribute(dtype=str, description="the default data set name of write_sequence")
        def dsetname(self) -> str:
            return self.service.get_default("dsetname")

        @dsetname.write
        @guarded
        def dsetname(self, value: str) -> None:
            self.service.set_default("dsetname", value)

        @attribute(
            dtype=int, description="the default pixel bytes per file of write_sequence (0: a file a frame)"
        )
        def bytes_per_file(self) -> int:
            return self.service.get_default("bytes_per_file")

        @bytes_per_file.write
        @guarded
        def bytes_per_file(self, value: int) -> None:
            self.service.set_default("bytes_per_file", value)

        @attribute(dtype=int, description="the default number of the first file of write_sequence")
        def start_index(self) -> int:
            return self.service.get_default("start_index")

        @start_index.write
        @guarded
        def start_index(self, value: int) -> None:
            self.service.set_default("start_index", value)

        @command(dtype_in=str, dtype_out=str)
        @guarded
        def descend(self, name: str) -> str:
            return self.service.descend(name)

        @command(dtype_in=str, dtype_out=str)
        @guarded
        def ascend(self, floor: str) -> str:
            return self.service.ascend(floor)

        @command(dtype_in=str, dtype_out=str)
        @guarded
        def home(self, floor: str) -> str:
            return self.service.home(floor)

        @command(dtype_in=str, dtype_out=bool)
        @guarded
        def exists(self, paths: str) -> bool:
            try:
                parts = json.loads(paths)
            except ValueError:
                raise ConfigurationError(f"exists: the argument is not JSON: {paths[:80]!r}") from None
            return self.service.exists(parts)

        @command(dtype_in=str, dtype_out=str)
        @guarded
        def prepare(self, arguments: str) -> str:
            return json.dumps(self.service.prepare(_json_object(arguments, "prepare")))

        @command(dtype_in=str, dtype_out=str)
        @guarded
        def write_sequence(self, arguments: str) -> str:
            return self.service.write_sequence(_json_object(arguments, "write_sequence", ("endpoint",)))

        @command(dtype_in=str, dtype_out=str)
        @guarded
        def wait_job(self, arguments: str) -> str:
            return json.dumps(self.service.wait_job(_json_object(arguments, "wait_job", ("job",))))

        @command(dtype_in=str)
        @guarded
        def cancel_job(self, ident: str) -> None:
            self.service.cancel_job(ident)

        @command(dtype_in=str, dtype_out=str)
        @guarded
        def log_to_json(self, arguments: str) -> str:
            return self.service.log_to_json(_json_object(arguments, "log_to_json", ("payload",)))

        @command(dtype_in=str, dtype_out=int)
        @guarded
        def register_logger(self, arguments: str) -> int:
            required = ("log_level", "file_name")
            return self.service.register_logger(_json_object(arguments, "register_logger", required))

        @command(dtype_in=str)
        @guarded
        def log(self, arguments: str) -> None:
            self.service.log(_json_object(arguments, "log", ("handler", "records")))

        @command(dtype_in=int)
        @guarded
        def unregister_logger(self, number: int) -> None:
            self.service.unregister_logger(number)

    _device_class = ConcertWalker
    return _device_class


def serve_walker(port: int, root: Optional[str] = None, name: str = DEFAULT_NAME, host: str = "") -> None:
    """Serve a walker device ``name`` writing below ``root`` on ``port``; block until the server stops.

    ``root`` (default: the working directory) is created (rights ``750``)
    if it is missing; the device's walker stands there. ``port`` ``0`` lets the system choose one; ``host``
    ``""`` listens on every interface. Once the server is up it prints
    ``Serving NAME on port N: URI`` (see
    :func:`~concert.networking.tango_server.run_server`), the URI being what
    :class:`~concert.storage.remote.RemoteDirectoryWalker` takes on this
    machine (on another, put this machine's name for ``127.0.0.1``). SIGINT
    or SIGTERM stop it; the writes still running stop after the frame in
    hand and keep what they wrote.

    :raises StorageError: if ``root`` cannot be a walker's root (it exists
        and is not a directory, or it cannot be created), before any server
        starts.
    :raises ConfigurationError: for a malformed device name or port, or
        without PyTango (the ``tango`` extra) or pyzmq (the ``zmq`` extra).
    """
    global _service
    import importlib

    from concert.networking.tango_server import run_server

    try:
        importlib.import_module("zmq")  # the missing extra is reported now, not at the first write
    except ImportError:
        raise ConfigurationError(
            "the walker server receives frames over ZeroMQ, which needs pyzmq: pip install 'concert[zmq]'"
        ) from None
    try:
        walker = DirectoryWalker(root)
    except OSError as error:
        raise StorageError(f"cannot serve a walker at root {root!r}: {error.strerror or error}") from None
    if _service is not None:
        raise ConfigurationError("serve_walker: this process serves a walker already")
    _service = _WalkerService(walker)
    keep_freed_memory()
    run_server((_walker_device_class(),), name, port=port, host=host)


def keep_freed_memory() -> bool:
    """Make glibc's allocator keep freed memory for reuse in this process; whether it could.

    ZeroMQ allocates a new buffer for every frame it receives; glibc maps
    buffers this large fresh from the system and unmaps them when freed, so
    every frame would cost thousands of page faults. Kept in the heap, they
    are reused. The server's memory then stays at its peak (about what its
    streams queue), which a process serving nothing else can afford. A
    no-op where the C library is not glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    trim_threshold, top_pad, mmap_threshold = (
        -1,
        -2,
        -3,
    )  # glibc's M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD
    settings = ((trim_threshold, 2**31 - 1), (top_pad, 64 * 2**20), (mmap_threshold, 32 * 2**20))
    return all(mallopt(option, value) == 1 for option, value in settings)
