"""Frame streams over ZeroMQ: :class:`ZmqSender`, :class:`ZmqReceiver` and :class:`ZmqBroadcaster`.

A *stream* is a sequence of frames (numpy arrays, or
:class:`~concert.imaging.ImageWithMetadata` with their metadata) followed by
an explicit end of stream. Each frame travels as one ZeroMQ message of two
parts: a small JSON header (dtype, shape, memory order, the frame's index in
its stream, the metadata) and the raw bytes of the array, which are neither
copied on the way out (ZeroMQ reads the array's memory) nor on the way in
(the received array is a view on ZeroMQ's message buffer).

Two kinds of stream:

* **reliable** (PUSH to PULL, the default): :meth:`ZmqSender.send` waits
  while the receiver's queues are full (back-pressure) and raises
  :class:`~concert.exceptions.NetworkingError` -- naming the endpoint and the
  frame -- if no receiver took the frame within the timeout. A frame is
  never dropped silently: the receiver checks the frame indices and the
  frame count the end of stream carries, and raises ``NetworkingError`` if a
  frame is missing. One receiver per reliable sender (ZeroMQ would share the
  frames among several).
* **lossy** (PUB to SUB, for viewers): sending never waits; a frame is
  dropped (for every receiver, counted in :attr:`ZmqSender.dropped`) while
  a receiver's queue is full. The receivers detect the gaps from the frame
  indices, count them in :attr:`ZmqReceiver.lost` and log a ``WARNING`` for
  each. The end of stream is not dropped: it waits for room. Any number of
  receivers may subscribe.

By default the sender binds and receivers connect to it. pyzmq is imported
when the first sender, receiver or broadcaster is made, never when this
module is imported (``concert.networking`` offers the names without loading
it). The rules a scientist relies on -- who binds, timeouts, threads,
cancellation, what happens to metadata -- are listed in the documentation
page *Networking and distribution*.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from concurrent.futures import CancelledError
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from concert import interrupts
from concert.exceptions import ConfigurationError, DataError, NetworkingError, UnitError
from concert.futures import Future, check_cancelled, run_in_thread
from concert.imaging import ImageWithMetadata
from concert.interrupts import protected
from concert.networking.endpoints import CommData, SocketType
from concert.timeouts import optional_seconds

__all__ = ["ZmqBroadcaster", "ZmqReceiver", "ZmqSender"]

LOG = logging.getLogger(__name__)

#: The version of the message format; a receiver refuses messages of another version.
PROTOCOL_VERSION = 1

#: Seconds a sender or receiver waits when none is given.
DEFAULT_TIMEOUT = 10.0

#: ZeroMQ's (and :class:`~concert.networking.endpoints.CommData`'s) high-water mark: messages queued per peer.
DEFAULT_HWM = 1000

#: Longest uninterrupted wait, in seconds: cancel requests, ``close()`` from another thread and a
#: broadcaster's stop are noticed within it.
SLICE = 0.05

#: Longest time spent on telling receivers that a stream failed (the abort message), in seconds.
ABORT_TIMEOUT = 1.0

Endpoint = Union[str, CommData]
_DEFAULT: Any = object()  # "the receiver's own timeout"
_STOPPED: Any = object()  # what a wait returns when a broadcaster's stop event ended it
_KINDS = ("frame", "end", "abort")


def _pyzmq() -> Any:
    """Return the pyzmq module (``import zmq`` here means pyzmq: imports are absolute)."""
    try:
        import zmq
    except ImportError:
        raise ConfigurationError(
            "ZeroMQ streams need pyzmq, which is not installed: pip install 'concert[zmq]' (or pyzmq)"
        ) from None
    return zmq


_json_default: Optional[Callable[[Any], Any]] = None  # concert.storage.files.json_default, once imported


def _metadata_default(value: Any) -> Any:
    # The TIFF writer's conversion, so that a frame written after travelling here is written as
    # it would have been locally. Imported on first use: concert.storage may import this module.
    global _json_default
    if _json_default is None:
        from concert.storage.files import json_default

        _json_default = json_default
    return _json_default(value)


# -- endpoints ------------------------------------------------------------------------------------


def _timeout(owner: str, value: Any, what: str = "timeout") -> Optional[float]:
    try:
        return optional_seconds(value, what)
    except UnitError as error:
        raise UnitError(f"{owner}: {error}") from None


def _hwm(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigurationError(f"{owner}: {name}={value!r} must be an int >= 0 (0: no limit)")
    return int(value)


def _reliability(owner: str, endpoint: Any, reliable: Any) -> bool:
    if reliable is not None and not isinstance(reliable, bool):
        raise ConfigurationError(f"{owner}: reliable={reliable!r} must be True, False or None")
    if isinstance(endpoint, CommData):
        kind = endpoint.socket_type
        if kind in (SocketType.REQ, SocketType.REP):
            raise ConfigurationError(
                f"{owner}: socket_type {kind.name} of {endpoint!r} is not a stream: use PUSH/PULL "
                "(reliable) or PUB/SUB (lossy)"
            )
        implied = kind in (SocketType.PUSH, SocketType.PULL)
        if reliable is not None and reliable != implied:
            raise ConfigurationError(
                f"{owner}: reliable={reliable!r} contradicts socket_type {kind.name} of {endpoint!r}"
            )
        return implied
    return True if reliable is None else reliable


def _address(owner: str, endpoint: Any, bind: Any, binds_by_default: bool) -> Tuple[str, bool]:
    """Return the ZeroMQ address to bind or connect to, and whether to bind."""
    if bind is not None and not isinstance(bind, bool):
        raise ConfigurationError(f"{owner}: bind={bind!r} must be True, False or None")
    if isinstance(endpoint, CommData):
        if endpoint.protocol == "inproc":
            raise ConfigurationError(
                f"{owner}: protocol 'inproc' of {endpoint!r} is not supported: every sender and "
                "receiver has a ZeroMQ context of its own (use tcp or ipc)"
            )
        binds = binds_by_default if bind is None else bind
        return (endpoint.server_endpoint if binds else endpoint.client_endpoint), binds
    if not isinstance(endpoint, str):
        raise ConfigurationError(
            f"{owner}: endpoint={endpoint!r} must be a CommData or a string such as 'tcp://127.0.0.1:*'"
        )
    scheme, separator, rest = endpoint.partition("://")
    if scheme not in ("tcp", "ipc") or not separator or not rest or rest != rest.strip():
        raise ConfigurationError(
            f"{owner}: endpoint={endpoint!r} must be 'tcp://HOST:PORT' or 'ipc://PATH' "
            "(PORT may be '*' to bind to a free port)"
        )
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not (port == "*" or (port.isdigit() and 1 <= int(port) <= 65535)):
            raise ConfigurationError(
                f"{owner}: endpoint={endpoint!r} must be 'tcp://HOST:PORT' with PORT in 1..65535 or '*'"
            )
        wildcard = host == "*" or port == "*"
    else:
        wildcard = rest == "*"
    if bind is None:
        return endpoint, binds_by_default or wildcard
    if not bind and wildcard:
        raise ConfigurationError(f"{owner}: cannot connect to {endpoint!r}: '*' is only for binding")
    return endpoint, bind


# -- messages -------------------------------------------------------------------------------------


class _Message:
    """One received message: its kind, its decoded header and its ZeroMQ parts (kept for forwarding)."""

    __slots__ = ("header", "kind", "parts")

    def __init__(self, kind: str, header: Dict[str, Any], parts: List[Any]) -> None:
        self.kind, self.header, self.parts = kind, header, parts


def _control(kind: str, frames: int, **extra: Any) -> bytes:
    header = {"concert": kind, "version": PROTOCOL_VERSION, "frames": frames, **extra}
    return json.dumps(header, separators=(",", ":")).encode()


# dtype -> whether frames of it can be sent (its dtype.str names it exactly, no objects). Written
# idempotently from any thread (a dict item assignment is atomic), never removed from.
_sendable: Dict[np.dtype, bool] = {}


def _frame_parts(owner: Any, frame: Any, index: int) -> Tuple[bytes, np.ndarray]:
    """Return the header and the payload of ``frame``: a uint8 view of its memory when it is contiguous.

    A C- or Fortran-contiguous array is viewed, not copied (its memory order
    travels in the header); any other array is made C-contiguous once.
    ``owner`` names the sender in error messages (its ``repr``).

    :raises DataError: for an object or structured dtype, or metadata JSON cannot carry.
    """
    metadata = frame.metadata if isinstance(frame, ImageWithMetadata) else None
    array = np.asarray(frame)
    dtype = array.dtype
    sendable = _sendable.get(dtype)
    if sendable is None:
        sendable = _sendable[dtype] = not (
            dtype.hasobject or dtype.kind == "V" or dtype.itemsize == 0 or np.dtype(dtype.str) != dtype
        )
    if not sendable:
        raise DataError(
            f"{owner!r}: frame {index} has dtype {dtype}, which cannot be sent: give an array of numbers, "
            "booleans, strings or dates"
        )
    if array.flags.c_contiguous:
        order, flat = "C", array.reshape(-1)
    elif array.flags.f_contiguous:
        order, flat = "F", array.ravel(order="F")
    else:
        order, flat = "C", np.ascontiguousarray(array).reshape(-1)
    if metadata is None:
        described = "null"
    else:
        try:
            described = json.dumps(dict(metadata), default=_metadata_default, separators=(",", ":"))
        except (TypeError, ValueError) as error:
            raise DataError(
                f"{owner!r}: the metadata of frame {index} cannot be sent as JSON: {error}"
            ) from None
    # The header JSON, written out: dtype.str holds no character JSON would escape (e.g. '<u2', '<M8[s]').
    shape = ",".join(map(str, array.shape))
    header = (
        f'{{"concert":"frame","version":{PROTOCOL_VERSION},"index":{index},"dtype":"{dtype.str}",'
        f'"shape":[{shape}],"order":"{order}","metadata":{described}}}'
    )
    return header.encode(), flat.view(np.uint8)


@protected
def _send_now(socket: Any, parts: Sequence[Any], copy: bool) -> None:
    """Send ``parts`` as one message if there is room now, else raise Again (nothing is sent).

    Protected: a Ctrl-C cannot leave half a message in the socket. It never
    waits -- waiting is done outside, interruptibly (see ``_Stream._wait``):
    once the first part is queued ZeroMQ takes the others at once.
    """
    zmq = _pyzmq()
    last = len(parts) - 1
    socket.send(parts[0], zmq.NOBLOCK | (zmq.SNDMORE if last else 0), copy=True)
    for position in range(1, last + 1):
        socket.send(parts[position], zmq.SNDMORE if position < last else 0, copy=copy)


@protected
def _recv_now(socket: Any) -> List[Any]:
    """Receive one whole message if one is there, else raise Again; protected, like :func:`_send_now`."""
    zmq = _pyzmq()
    return socket.recv_multipart(zmq.NOBLOCK, copy=False)


# -- what senders and receivers share ---------------------------------------------------------------


class _Stream:
    """A ZeroMQ context and socket owned by one object; every use of the socket holds ``_lock``.

    ZeroMQ sockets are not thread-safe, so each object owns a context and a
    socket of its own and all calls serialise on ``_lock`` (acquired in
    slices, so that a waiting call still honours its timeout and
    cancellation). ``_closing`` is set by :meth:`close`, from any thread; a
    call blocked in another thread sees it within :data:`SLICE` and ends.
    """

    _role = "stream"

    def __init__(
        self, owner: str, socket_type: int, address: str, binds: bool, setup: Dict[int, Any]
    ) -> None:
        zmq = _pyzmq()
        interrupts.install()  # Ctrl-C cannot split a message (see _send_now); a no-op outside the main thread
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._binds = binds
        context = zmq.Context(io_threads=1)
        socket = None
        try:
            socket = context.socket(socket_type)
            socket.setsockopt(zmq.LINGER, 0)
            for option, value in setup.items():
                socket.setsockopt(option, value)
            try:
                if binds:
                    socket.bind(address)
                else:
                    socket.connect(address)
            except zmq.ZMQError as error:
                verb = "bind to" if binds else "connect to"
                if error.errno in (zmq.EINVAL, zmq.EPROTONOSUPPORT):
                    raise ConfigurationError(
                        f"{owner}: cannot {verb} {address!r}: {error.strerror}"
                    ) from None
                raise NetworkingError(f"{owner}: cannot {verb} {address!r}: {error.strerror}") from None
            self._endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT) if binds else address
        except BaseException:
            if socket is not None:
                socket.close(0)
            context.term()
            raise
        # Guarded by _lock once published: None once closed.
        self._context: Any = context
        self._socket: Any = socket

    # -- description -----------------------------------------------------------------------------

    @property
    def reliable(self) -> bool:
        """Whether the stream is reliable (PUSH/PULL) rather than lossy (PUB/SUB)."""
        return self._reliable

    @property
    def timeout(self) -> Optional[float]:
        """How long a send waits for room, or a receive for a message, in seconds (``None``: for ever)."""
        return self._timeout

    @property
    def endpoint(self) -> str:
        """The address in use: the one actually bound (port read back, e.g. ``'tcp://127.0.0.1:40123'``) or
        the one connected to. Receivers connect to a sender's ``endpoint``."""
        return self._endpoint

    @property
    def binds(self) -> bool:
        """Whether the socket is bound (else it is connected)."""
        return self._binds

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing.is_set()

    def _kind(self) -> str:
        return "reliable" if self._reliable else "lossy"  # both kinds set _reliable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._endpoint!r}, {self._kind()})"

    # -- waiting -----------------------------------------------------------------------------------

    def _stopped(self, doing: str) -> CancelledError:
        return CancelledError(f"{self!r}: {doing} was stopped by close()")

    def _check(self, doing: str, cancellable: bool) -> None:
        if self._closing.is_set():
            raise self._stopped(doing)
        if cancellable:
            check_cancelled()

    def _acquire(self, deadline: Optional[float], doing: str, cancellable: bool = True) -> None:
        """Take ``_lock``, waiting at most until ``deadline``; then fail if the socket is closed."""
        if not self._lock.acquire(False):
            while True:
                self._check(doing, cancellable)
                wait = _slice(deadline)
                if wait <= 0:
                    raise NetworkingError(
                        f"{self!r}: {doing}: another thread kept the {self._role} busy until the timeout"
                    )
                if self._lock.acquire(True, wait):
                    break
        if self._socket is None:
            self._lock.release()
            raise NetworkingError(f"{self!r}: {doing}: it is closed")

    def _blocking(
        self,
        attempt: Callable[[], Any],
        flag: Optional[int],
        deadline: Optional[float],
        doing: str,
        expired: Callable[[], NetworkingError],
        cancellable: bool = True,
        stop: Optional[threading.Event] = None,
    ) -> Any:
        """Return ``attempt()`` -- a ZeroMQ call that never waits, raising Again when it cannot be done now.

        While it cannot, wait (see :meth:`_wait`) for the socket to become
        ready for ``flag`` and try again. When messages flow the first attempt
        succeeds, so this costs what a plain blocking call costs. Returns
        ``_STOPPED`` if ``stop`` was set.

        :raises NetworkingError: ``expired()`` once ``deadline`` has passed.
        :raises CancelledError: as :meth:`_wait`.
        """
        zmq = _pyzmq()
        delay = 0.001
        while True:
            try:
                return attempt()
            except zmq.Again:
                pass
            if not self._wait(flag, deadline, doing, expired, cancellable, stop, delay):
                return _STOPPED
            delay = min(2 * delay, SLICE)

    def _wait(
        self,
        flag: Optional[int],
        deadline: Optional[float],
        doing: str,
        expired: Callable[[], NetworkingError],
        cancellable: bool = True,
        stop: Optional[threading.Event] = None,
        pause: float = SLICE,
    ) -> bool:
        """Wait until the socket is ready for ``flag``; ``False`` if ``stop`` was set.

        The wait is made in slices of at most :data:`SLICE`, between which
        the stop conditions are checked; it is not protected code, so Ctrl-C
        ends it at once. ``flag`` ``None`` (a lossy socket waiting for room,
        which it always polls as having) waits ``pause`` seconds instead.

        :raises NetworkingError: ``expired()`` once ``deadline`` has passed.
        :raises CancelledError: on :meth:`close` from another thread, or a cancel request on the
            operation running here (if ``cancellable``).
        """
        socket = self._socket
        while True:
            self._check(doing, cancellable)
            if stop is not None and stop.is_set():
                return False
            wait = _slice(deadline)
            if wait <= 0:
                raise expired()
            if flag is None:
                self._closing.wait(min(pause, wait))
                return True
            if socket.poll(math.ceil(wait * 1000), flag):
                return True

    # -- closing -----------------------------------------------------------------------------------

    def _linger(self) -> float:
        return 0.0

    def close(self) -> None:
        """Close the socket; harmless if closed. Callable from any thread.

        A call blocked in another thread ends within :data:`SLICE` with
        ``CancelledError`` (``... was stopped by close()``); then the socket is
        closed.
        """
        self._closing.set()
        with self._lock:
            socket, context = self._socket, self._context
            self._socket = None
            if socket is None:
                return
            try:
                self._finish_stream()
            finally:
                linger = self._linger()
                socket.close(linger=int(linger * 1000))
                started = time.monotonic()
                context.term()  # waits until the queued messages left, at most `linger`
                self._context = None
        self._closed(time.monotonic() - started, linger)

    def _finish_stream(self) -> None:
        """Called by :meth:`close` with the lock held, before the socket closes."""

    def _closed(self, elapsed: float, linger: float) -> None:
        """Called by :meth:`close` once the context has ended, ``elapsed`` seconds after the socket closed."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Not closed by its owner: release the context's threads without waiting for anything.
        try:
            socket, context = self._socket, self._context
        except AttributeError:  # the constructor failed
            return
        try:
            if socket is not None:
                socket.close(0)
            if context is not None:
                context.term()
        except Exception:
            pass


def _slice(deadline: Optional[float]) -> float:
    """How long the next slice of a wait until ``deadline`` may be (<= 0: the deadline has passed)."""
    if deadline is None:
        return SLICE
    return min(SLICE, deadline - time.monotonic())


def _deadline(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else time.monotonic() + seconds


def _shown(seconds: Optional[float]) -> str:
    return "ever" if seconds is None else f"{seconds:g} s"


# -- sender ---------------------------------------------------------------------------------------------


class ZmqSender(_Stream):
    """Sends frame streams to a :class:`ZmqReceiver`.

    ``endpoint`` is a :class:`~concert.networking.endpoints.CommData` or a
    string. The sender binds -- to ``CommData.server_endpoint`` (all
    interfaces), or to the string: ``'tcp://127.0.0.1:*'`` binds to a free
    port, read back into :attr:`endpoint` -- unless ``bind=False``, which
    makes it connect (to ``CommData.client_endpoint``, or the string) to a
    bound receiver.

    ``reliable`` (default ``True``, or what a CommData's ``socket_type``
    says: PUSH is reliable, PUB lossy) chooses the kind of stream (see
    :mod:`concert.networking.zmq`). ``sndhwm`` is ZeroMQ's send high-water
    mark, the messages queued per receiver (default: the CommData's, else
    :data:`DEFAULT_HWM`; 0 is no limit): with zero-copy sending, each queued
    frame keeps its array alive, so lower it for large frames to bound
    memory. ``timeout`` (seconds or a time quantity, default
    :data:`DEFAULT_TIMEOUT`, ``None`` for ever) bounds each call that waits:
    :meth:`send` and :meth:`close` of a reliable stream, :meth:`end`, and
    :meth:`wait_for_receiver`. ``copy=True`` copies
    each frame into its message when it is sent, for producers that reuse
    their buffers (see :meth:`send`).

    **Threads.** The sender owns its ZeroMQ context and socket; calls from
    several threads are serialised by a lock (frames get their indices in
    the order they are sent); a call waiting for the lock counts it against
    its timeout. :meth:`close` may be called from any thread.

    **Cancellation.** A blocked call waits in slices of :data:`SLICE`: a
    cancel request on the Concert operation running it
    (:func:`~concert.futures.check_cancelled`) and :meth:`close` from another
    thread end it within a slice, with ``CancelledError``, and Ctrl-C in the
    main thread at once, with ``KeyboardInterrupt``; the frame is then not
    sent. A message is never left half sent.

    It is also a consumer for :func:`~concert.pipelines.broadcast`: called
    with an iterable of frames it sends them all, then the end of stream.

    :raises ConfigurationError: for a bad endpoint, option or socket type,
        or if pyzmq is not installed.
    :raises UnitError: for a ``timeout`` that is not a duration.
    :raises NetworkingError: if the address cannot be bound (in use, not
        an address of this machine).
    """

    _role = "sender"

    def __init__(
        self,
        endpoint: Endpoint,
        reliable: Optional[bool] = None,
        sndhwm: Optional[int] = None,
        timeout: Any = DEFAULT_TIMEOUT,
        bind: Optional[bool] = None,
        copy: bool = False,
    ) -> None:
        owner = f"ZmqSender({endpoint!r})"
        self._reliable = _reliability(owner, endpoint, reliable)
        address, binds = _address(owner, endpoint, bind, True)
        if sndhwm is None:
            sndhwm = endpoint.sndhwm if isinstance(endpoint, CommData) else DEFAULT_HWM
        hwm = _hwm(owner, "sndhwm", sndhwm)
        self._timeout = _timeout(owner, timeout)
        if not isinstance(copy, bool):
            raise ConfigurationError(f"{owner}: copy={copy!r} must be True or False")
        self._copy = copy
        zmq = _pyzmq()
        if self._reliable:
            # IMMEDIATE: a connecting sender queues nothing until the connection is up, so a
            # frame waits (or times out) instead of sitting in a queue nobody may ever drain.
            socket_type, setup = zmq.PUSH, {zmq.SNDHWM: hwm, zmq.IMMEDIATE: 1}
        else:
            # XPUB is a PUB that also hears subscriptions (wait_for_receiver). NODROP makes a full
            # queue refuse a message instead of ZeroMQ dropping it unseen: frames are then dropped
            # here, counted, and the end of stream waits for room.
            socket_type, setup = zmq.XPUB, {zmq.SNDHWM: hwm, zmq.XPUB_NODROP: 1}
        super().__init__(owner, socket_type, address, binds, setup)
        # Guarded by _lock: the stream in progress.
        self._index = 0  # index of the next frame of the stream
        self._sent = 0  # frames queued for receivers, over all streams
        self._dropped = 0  # frames a lossy stream dropped (a receiver's queue was full)
        self._subscribed = False  # lossy: a receiver has subscribed (as far as the messages read say)

    # -- description -----------------------------------------------------------------------------

    @property
    def sent(self) -> int:
        """Frames queued for receivers so far, over all streams."""
        return self._sent

    @property
    def dropped(self) -> int:
        """Frames a lossy stream dropped because a receiver's queue was full (always 0 when reliable)."""
        return self._dropped

    @property
    def index(self) -> int:
        """The index the next frame will get: the number of frames of the stream in progress."""
        return self._index

    # -- sending -----------------------------------------------------------------------------------

    def send(self, frame: Any) -> Optional[int]:
        """Send ``frame`` as the next frame of the stream; return its index (0 for the first frame).

        ``frame`` is a numpy array (or anything :func:`numpy.asarray` turns
        into one) of numbers, booleans, strings or dates; the metadata of an
        :class:`~concert.imaging.ImageWithMetadata` travels with it.
        ``send(None)`` is :meth:`end`.

        The array's memory is not copied (unless ``copy=True``): ZeroMQ reads
        it from its own thread after ``send`` returns, so **do not write into
        a sent array** (a camera that reuses its buffers needs ``copy=True``).
        A non-contiguous array is made contiguous once.

        Reliable: waits while the receiver's queues are full. Lossy: never
        waits; the frame is dropped (and counted in :attr:`dropped`) if a
        receiver's queue is full, or vanishes if nobody is subscribed.

        :raises NetworkingError: (reliable) if no receiver took the frame
            within the timeout; the frame is not sent and the next call sends
            under the same index. Also if the sender is closed.
        :raises DataError: for an array that cannot be sent (object dtype,
            metadata that is not JSON).
        :raises CancelledError: if the wait was cancelled (see the class).
        """
        if frame is None:
            self.end()
            return None
        deadline = _deadline(self._timeout)
        self._acquire(deadline, "sending a frame")
        try:
            index = self._index
            parts = _frame_parts(self, frame, index)
            if self._reliable:
                self._push(parts, deadline, f"sending frame {index}", cancellable=True)
                self._sent += 1
            elif self._offer(parts):
                self._sent += 1
            else:
                self._dropped += 1
            self._index = index + 1
            return index
        finally:
            self._lock.release()

    send_image = send

    def end(self) -> int:
        """Send the end of stream; return how many frames the stream had. The next frame starts a new one.

        Reliable: waits as :meth:`send` does. Lossy: waits until every
        subscribed receiver's queue has room for it, at most the timeout,
        then logs a ``WARNING`` and gives up (a viewer that does not read
        must not stop an acquisition); either way the next frame starts a
        new stream.

        :raises NetworkingError: (reliable) if it could not be sent within the
            timeout; the stream is then still open (call :meth:`end` again).
        :raises CancelledError: if the wait was cancelled (see the class).
        """
        deadline = _deadline(self._timeout)
        self._acquire(deadline, "ending the stream")
        try:
            frames = self._index
            doing = f"sending the end of the stream after {frames} frame(s)"
            self._send_control([_control("end", frames)], deadline, doing, cancellable=True)
            self._index = 0
            return frames
        finally:
            self._lock.release()

    def wait_for_receiver(self, timeout: Any = _DEFAULT) -> None:
        """Wait until a receiver is there to take frames (default: the sender's timeout).

        Reliable: until a receiver is connected and has room. Lossy: until a
        receiver has subscribed -- frames sent before would go to nobody
        (ZeroMQ's "slow joiner").

        :raises NetworkingError: if none came within the timeout.
        :raises CancelledError: if the wait was cancelled (see the class).
        """
        seconds = self._timeout if timeout is _DEFAULT else _timeout(repr(self), timeout)
        deadline = _deadline(seconds)
        doing = "waiting for a receiver"
        self._acquire(deadline, doing)
        try:

            def expired() -> NetworkingError:
                return NetworkingError(
                    f"{self!r}: no receiver came to {self._endpoint} within {_shown(seconds)}"
                )

            zmq = _pyzmq()
            if self._reliable:
                self._wait(zmq.POLLOUT, deadline, doing, expired)
                return
            while not self._read_subscriptions():
                self._wait(zmq.POLLIN, deadline, doing, expired)
        finally:
            self._lock.release()

    def __call__(self, frames: Iterable[Any]) -> int:
        """Send every frame of ``frames``, then the end of stream; return the number of frames sent.

        The consumer face of the sender (for :func:`~concert.pipelines.broadcast`).
        A cancel request on the Concert operation running it is checked
        before each frame. If ``frames`` fails (or the operation is cancelled) the receivers are
        told the stream failed -- they raise ``NetworkingError`` (or
        ``CancelledError``) with the reason instead of waiting for an end --
        and the error is raised again.

        :raises DataError: for a ``None`` among the frames (an end of stream
            belongs at the end), and as :meth:`send`.
        """
        count = 0
        try:
            for frame in frames:
                check_cancelled()  # between frames: a cancel request stops the stream here
                if frame is None:
                    raise DataError(f"{self!r}: frame {count} of the stream is None, not an array")
                self.send(frame)
                count += 1
        except BaseException as error:
            self._abort(error)
            raise
        self.end()
        return count

    def __exit__(self, exc_type: Any, error: Any, traceback: Any) -> None:
        """End the stream in progress (an error: tell the receivers it failed), then close."""
        try:
            if self._index and self._socket is not None:
                if error is None:
                    self.end()
                else:
                    self._abort(error)
        finally:
            if error is None:
                self.close()
            else:
                try:
                    self.close()
                except NetworkingError as failure:  # do not hide the error that ended the block
                    LOG.error("%s", failure)

    # -- the parts (callers hold _lock) ---------------------------------------------------------------

    def _push(
        self,
        parts: Sequence[Any],
        deadline: Optional[float],
        doing: str,
        cancellable: bool,
        stop: Optional[threading.Event] = None,
    ) -> bool:
        """Queue one message, waiting for room until ``deadline``; ``False`` if ``stop`` ended the wait.

        A lossy socket refuses a message while a receiver's queue is full
        (XPUB_NODROP), so this waits for room there too.

        :raises NetworkingError: if there was no room until ``deadline``.
        """
        zmq = _pyzmq()
        socket, copy, seconds = self._socket, self._copy, self._timeout

        def expired() -> NetworkingError:
            return NetworkingError(
                f"{self!r}: {doing}: no receiver took it within {_shown(seconds)} "
                f"(is a receiver connected to {self._endpoint} and reading?)"
            )

        def attempt() -> None:
            _send_now(socket, parts, copy)

        # A lossy socket always polls writable (XPUB): it is retried after pauses instead.
        flag = zmq.POLLOUT if self._reliable else None
        return self._blocking(attempt, flag, deadline, doing, expired, cancellable, stop) is not _STOPPED

    def _offer(self, parts: Sequence[Any]) -> bool:
        """Queue one message of a lossy stream if every receiver has room; whether it was queued."""
        zmq = _pyzmq()
        try:
            _send_now(self._socket, parts, self._copy)
            return True
        except zmq.Again:
            return False

    def _send_control(
        self,
        parts: Sequence[Any],
        deadline: Optional[float],
        doing: str,
        cancellable: bool,
        stop: Optional[threading.Event] = None,
    ) -> bool:
        """Send an end or abort message; whether it was sent.

        A reliable stream raises as :meth:`_push` does; a lossy one logs a
        warning instead (a viewer that does not read must not stop an
        acquisition). ``False`` too if ``stop`` ended the wait.
        """
        if self._reliable:
            return self._push(parts, deadline, doing, cancellable, stop)
        try:
            return self._push(parts, deadline, doing, cancellable, stop)
        except NetworkingError:
            LOG.warning(
                "%r: %s: a receiver's queue stayed full for %s; it was not sent",
                self,
                doing,
                _shown(self._timeout),
            )
            return False

    def _abort(self, error: BaseException) -> None:
        """Tell the receivers the stream failed (best effort, within :data:`ABORT_TIMEOUT`); start anew."""
        cancelled = isinstance(error, (CancelledError, KeyboardInterrupt))
        reason = str(error) or type(error).__name__
        limit = ABORT_TIMEOUT if self._timeout is None else min(self._timeout, ABORT_TIMEOUT)
        deadline = time.monotonic() + limit
        try:
            self._acquire(deadline, "telling the receivers the stream failed", cancellable=False)
        except (NetworkingError, CancelledError):
            return
        try:
            frames = self._index
            parts = [_control("abort", frames, reason=reason, cancelled=cancelled)]
            self._send_control(parts, deadline, f"sending the failure of the stream ({reason})", False)
            self._index = 0
        except (NetworkingError, CancelledError) as failure:
            LOG.warning("%r: the receivers could not be told that the stream failed: %s", self, failure)
        finally:
            self._lock.release()

    def _forward(self, message: _Message, stop: threading.Event) -> bool:
        """Send a received message on unchanged (for :class:`ZmqBroadcaster`); ``False`` if ``stop`` ended it.

        :raises NetworkingError: (reliable) if it could not be sent within the timeout.
        """
        deadline = _deadline(self._timeout)
        self._acquire(deadline, "forwarding a message")
        try:
            parts = message.parts
            if message.kind == "frame":
                doing = f"forwarding frame {message.header['index']}"
                if self._reliable:
                    if not self._push(parts, deadline, doing, True, stop):
                        return False
                    self._sent += 1
                elif self._offer(parts):
                    self._sent += 1
                else:
                    self._dropped += 1
                self._index = message.header["index"] + 1
                return True
            doing = f"forwarding the {message.kind} of a stream"
            if not self._send_control(parts, deadline, doing, True, stop) and stop.is_set():
                return False
            self._index = 0
            return True
        finally:
            self._lock.release()

    def _read_subscriptions(self) -> bool:
        """Read the subscription messages queued on the lossy socket; whether a receiver is subscribed."""
        zmq = _pyzmq()
        while True:
            try:
                message = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return self._subscribed
            if message[:1] == b"\x01":
                self._subscribed = True
            elif message[:1] == b"\x00":  # the last subscriber left
                self._subscribed = False

    def _linger(self) -> float:
        if self._timeout is None:
            return 3600.0
        if self._reliable:  # at least a moment, or close() could not tell whether anything was dropped
            return max(self._timeout, 0.1)
        return min(self._timeout, ABORT_TIMEOUT)

    def _closed(self, elapsed: float, linger: float) -> None:
        if self._reliable and self._sent and elapsed >= linger - 0.002:
            raise NetworkingError(
                f"{self!r}: closing: messages still queued after {linger:g} s were dropped "
                f"(no receiver at {self._endpoint} took them)"
            )

    def close(self) -> None:
        """Close the sender; harmless if closed. Callable from any thread (see the class).

        It does not end the stream (:meth:`end` does, and so does leaving a
        ``with`` block). A reliable sender first lets the messages still
        queued leave, waiting at most its timeout (at least 0.1 s, at most an
        hour for a timeout of ``None``); a lossy one at most
        :data:`ABORT_TIMEOUT`.

        :raises NetworkingError: (reliable) if messages were still queued when
            that time was up: they were dropped.
        """
        super().close()


# -- receiver -------------------------------------------------------------------------------------


class ZmqReceiver(_Stream):
    """Receives the frame streams of a :class:`ZmqSender`; an iterable producer of frames.

    ``endpoint`` is a :class:`~concert.networking.endpoints.CommData` or a
    string. The receiver connects -- to ``CommData.client_endpoint`` or the
    string (usually a sender's :attr:`~ZmqSender.endpoint`) -- unless
    ``bind=True`` or the string has a ``*`` (``'tcp://127.0.0.1:*'``): then
    it binds, and a sender made with ``bind=False`` connects to its
    :attr:`endpoint`.

    ``reliable`` (default ``True``, or what a CommData's ``socket_type``
    says: PUSH/PULL reliable, PUB/SUB lossy) must match the sender's.
    ``timeout`` (seconds or a time quantity, default
    :data:`DEFAULT_TIMEOUT`, ``None`` for ever) bounds the wait for each
    message. ``rcvhwm`` is ZeroMQ's receive high-water mark (messages queued
    before the sender has to wait -- reliable -- or drops -- lossy).

    Iterating yields the frames of one stream until its end (iterate again
    for the next stream), so a receiver is a producer for
    :func:`~concert.pipelines.broadcast`.

    A lossy receiver sees the stream from where it joined; afterwards each
    gap in the frame indices (frames dropped because its queue was full) is
    added to :attr:`lost` and logged as a ``WARNING``; so are frames missing
    at the end, known from the frame count the end of stream carries.

    **Threads** and **cancellation**: as for :class:`ZmqSender`; each
    message goes to one of the threads receiving.

    :raises ConfigurationError: for a bad endpoint or option, or if pyzmq is
        not installed.
    :raises UnitError: for a ``timeout`` that is not a duration.
    :raises NetworkingError: if the address cannot be bound.
    """

    _role = "receiver"

    def __init__(
        self,
        endpoint: Endpoint,
        reliable: Optional[bool] = None,
        timeout: Any = DEFAULT_TIMEOUT,
        rcvhwm: int = DEFAULT_HWM,
        bind: Optional[bool] = None,
    ) -> None:
        owner = f"ZmqReceiver({endpoint!r})"
        self._reliable = _reliability(owner, endpoint, reliable)
        address, binds = _address(owner, endpoint, bind, False)
        hwm = _hwm(owner, "rcvhwm", rcvhwm)
        self._timeout = _timeout(owner, timeout)
        zmq = _pyzmq()
        if self._reliable:
            socket_type, setup = zmq.PULL, {zmq.RCVHWM: hwm}
        else:
            socket_type, setup = zmq.SUB, {zmq.RCVHWM: hwm, zmq.SUBSCRIBE: b""}
        super().__init__(owner, socket_type, address, binds, setup)
        # Guarded by _lock: what is known of the stream in progress.
        # _expected: the index of the next frame; None for a lossy receiver before its first message
        # (it may have joined in the middle of a stream). Reliable streams start at 0.
        self._expected: Optional[int] = 0 if self._reliable else None
        self._pending: Optional[_Message] = None  # a message held back by an error about it, handed out next
        self._lost = 0
        self._received = 0

    # -- description -----------------------------------------------------------------------------

    @property
    def lost(self) -> int:
        """Frames found missing from the streams received so far (see the class)."""
        return self._lost

    @property
    def received(self) -> int:
        """Frames received so far, over all streams."""
        return self._received

    # -- receiving ---------------------------------------------------------------------------------

    def receive_image(self, timeout: Any = _DEFAULT) -> Optional[np.ndarray]:
        """Return the next frame of the stream, or ``None`` at its end.

        The frame is a numpy array of the dtype, shape and memory order sent
        (an :class:`~concert.imaging.ImageWithMetadata` with the metadata if
        one was sent), writable, and a view on the received message: no copy
        is made. Metadata arrives as JSON carries it: tuples as lists, numpy
        values as numbers and lists, anything else as its ``str`` (as the TIFF
        writer stores it). ``timeout`` overrides the receiver's for this call.

        :raises NetworkingError: if nothing arrived within the timeout; if a
            message is not one of Concert's frame streams (it is discarded);
            if the sender reported that the stream failed; and, reliable only,
            if frames are missing (the frame after the gap is returned by the
            next call) or the stream ended with frames missing.
        :raises CancelledError: if the wait was cancelled (see the class),
            or the sender's stream was cancelled.
        """
        seconds = self._timeout if timeout is _DEFAULT else _timeout(repr(self), timeout)
        message = self._next(seconds, "receiving a frame")
        assert message is not None  # no stop event: only a message or an exception
        if message.kind == "frame":
            return _array(message)
        if message.kind == "end":
            return None
        header = message.header
        text = f"{self!r}: the sender ended the stream after {header['frames']} frame(s): {header['reason']}"
        if header["cancelled"]:
            raise CancelledError(text)
        raise NetworkingError(text)

    receive = receive_image

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the frames of one stream until its end (see :meth:`receive_image` for what may be raised)."""
        while True:
            frame = self.receive_image()
            if frame is None:
                return
            yield frame

    # -- the parts ---------------------------------------------------------------------------------

    def _next(
        self, seconds: Optional[float], doing: str, stop: Optional[threading.Event] = None
    ) -> Optional[_Message]:
        """Return the next message, checked and accounted for; ``None`` if ``stop`` was set meanwhile."""
        deadline = _deadline(seconds)
        self._acquire(deadline, doing)
        try:
            pending = self._pending
            if pending is not None:
                self._pending = None
                return pending
            zmq = _pyzmq()

            def expired() -> NetworkingError:
                return NetworkingError(
                    f"{self!r}: {doing}: nothing arrived within {_shown(seconds)} "
                    f"(is a sender at {self._endpoint} sending?)"
                )

            socket = self._socket
            parts = self._blocking(lambda: _recv_now(socket), zmq.POLLIN, deadline, doing, expired, stop=stop)
            if parts is _STOPPED:
                return None
            message = self._parse(parts)
            self._account(message)
            return message
        finally:
            self._lock.release()

    def _bad(self, parts: List[Any], why: str) -> NetworkingError:
        first = parts[0].bytes[:60] if parts else b""
        return NetworkingError(
            f"{self!r}: received a message that is not part of a Concert frame stream ({why}; "
            f"{len(parts)} part(s), starting {first!r}); it was discarded"
        )

    def _parse(self, parts: List[Any]) -> _Message:
        if not 1 <= len(parts) <= 2:
            raise self._bad(parts, "wrong number of parts")
        try:
            header = json.loads(parts[0].bytes)
        except (ValueError, UnicodeDecodeError):
            raise self._bad(parts, "its header is not JSON") from None
        if not isinstance(header, dict) or header.get("concert") not in _KINDS:
            raise self._bad(parts, "its header is not Concert's")
        if header.get("version") != PROTOCOL_VERSION:
            raise self._bad(
                parts,
                f"version {header.get('version')!r} of the format, this receiver reads {PROTOCOL_VERSION}",
            )
        kind = header["concert"]
        if kind == "frame":
            if len(parts) != 2:
                raise self._bad(parts, "a frame without its data")
            header["_dtype"] = self._check_frame(parts, header)
        else:
            if len(parts) != 1 or not _count(header.get("frames")):
                raise self._bad(parts, f"a malformed {kind} of stream")
            if kind == "abort" and not (
                isinstance(header.get("reason"), str) and isinstance(header.get("cancelled"), bool)
            ):
                raise self._bad(parts, "a malformed failure of a stream")
        return _Message(kind, header, parts)

    def _check_frame(self, parts: List[Any], header: Dict[str, Any]) -> np.dtype:
        shape, order, metadata = header.get("shape"), header.get("order"), header.get("metadata")
        if not _count(header.get("index")):
            raise self._bad(parts, f"frame index {header.get('index')!r}")
        dtype = _received_dtype(header.get("dtype"))
        if dtype is None:
            raise self._bad(parts, f"dtype {header.get('dtype')!r}")
        if not isinstance(shape, list) or not all(_count(n) for n in shape):
            raise self._bad(parts, f"shape {shape!r}")
        if order not in ("C", "F") or not (metadata is None or isinstance(metadata, dict)):
            raise self._bad(parts, "a malformed frame header")
        size = math.prod(shape) * dtype.itemsize
        if len(parts[1].buffer) != size:
            raise self._bad(
                parts, f"{len(parts[1].buffer)} bytes of data for {size} bytes of {dtype} {shape}"
            )
        return dtype

    def _account(self, message: _Message) -> None:
        """Follow the frame indices of the stream; count and report what is missing."""
        expected, header = self._expected, message.header
        if message.kind == "frame":
            index = header["index"]
            self._received += 1
            self._expected = index + 1
            if expected is None or index == expected:
                return
            if index > expected:
                missing = index - expected
                what = f"frame(s) {_span(expected, index)} never arrived (frame {index} came next)"
            else:  # a new stream began without the end of the previous one
                missing = index
                what = (
                    f"a new stream began with frame {index} before the previous one ended "
                    f"(after frame {expected - 1})"
                )
            self._lost += missing
            if not self._reliable:
                LOG.warning("%r: %s; %d frame(s) lost in all", self, what, self._lost)
                return
            self._pending = message  # raised about now, handed out next
            raise NetworkingError(
                f"{self!r}: {what}. In a reliable stream this means another receiver takes a share "
                "of the frames, or the connection broke and ZeroMQ dropped what was queued on it"
            )
        self._expected = 0  # we were there: the next stream starts at frame 0
        if message.kind == "abort":  # the stream failed: what it lacks does not matter any more
            return
        frames = header["frames"]
        if expected is None or frames <= expected:
            return
        self._lost += frames - expected
        what = (
            f"the stream ended after {frames} frame(s) but frame(s) {_span(expected, frames)} never arrived"
        )
        if not self._reliable:
            LOG.warning("%r: %s; %d frame(s) lost in all", self, what, self._lost)
            return
        self._pending = message
        raise NetworkingError(f"{self!r}: {what}")

    def _finish_stream(self) -> None:
        if self._reliable and (self._expected or self._pending is not None):
            LOG.warning(
                "%r was closed in the middle of a stream (after %d frame(s)): what the sender sends "
                "from now on is not received",
                self,
                self._expected or 0,
            )


# dtype.str -> the dtype, for the dtypes received so far (at most 256: the strings come from the
# network). Written idempotently from any thread (a dict item assignment is atomic).
_received: Dict[str, np.dtype] = {}


def _received_dtype(text: Any) -> Optional[np.dtype]:
    """The dtype a frame header names, or ``None`` if it is not one that frames can have."""
    dtype = _received.get(text) if isinstance(text, str) else None
    if dtype is not None or not isinstance(text, str):
        return dtype
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError):
        return None
    if dtype.hasobject or dtype.kind == "V" or dtype.itemsize == 0:
        return None
    if len(_received) < 256:
        _received[text] = dtype
    return dtype


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _span(first: int, end: int) -> str:
    return str(first) if end - first == 1 else f"{first}..{end - 1}"


def _array(message: _Message) -> np.ndarray:
    header = message.header
    array = np.frombuffer(message.parts[1].buffer, dtype=header["_dtype"])
    array = array.reshape(header["shape"], order=header["order"])
    metadata = header["metadata"]
    return array if metadata is None else ImageWithMetadata(array, metadata)


# -- broadcaster ------------------------------------------------------------------------------------


class ZmqBroadcaster:
    """Forwards one frame stream to several endpoints, in a thread of its own.

    ``endpoint_in`` is where the stream comes from: a receiver is made for it
    (``reliable``, ``rcvhwm`` and ``bind`` are passed on; it connects by
    default). ``endpoints_out`` is a list of outputs: each a string or a
    :class:`~concert.networking.endpoints.CommData` (a :class:`ZmqSender` is
    made for it, binding by default, with ``sndhwm`` and ``timeout``, reliable
    as the input unless a CommData says otherwise), or a :class:`ZmqSender`
    made beforehand (a lossy one for a viewer, say). The broadcaster owns them
    all and closes them in :meth:`close`. A lossy input cannot feed a
    reliable output (its gaps would look like failures downstream).

    Every message is forwarded unchanged -- frames with their indices,
    metadata and data (not copied), ends of stream, failures -- to every
    output, one stream after the other, until :meth:`close`. A reliable
    output that is full makes the broadcaster wait, and so applies
    back-pressure upstream. An output that fails (nobody took a frame within
    its timeout) is dropped -- logged as an ``ERROR``, the others carry on --
    and the error is raised by :meth:`close`. A failure of the input (a
    malformed message, frames missing from a reliable stream) is sent on to
    the outputs as a failure of the stream, logged, and ends the
    broadcaster: :attr:`future` fails with it, and :meth:`close` raises it.

    :attr:`future` is the forwarding thread's :class:`~concert.futures.Future`:
    its result is the number of frames forwarded; ``future.cancel()`` stops
    the broadcaster as well. Its counters and outputs are written by that
    thread only.

    :raises ConfigurationError: for bad endpoints or options, no output, or
        a lossy input with a reliable output.
    :raises NetworkingError: if an address cannot be bound.
    """

    def __init__(
        self,
        endpoint_in: Endpoint,
        endpoints_out: Any,
        reliable: Optional[bool] = None,
        timeout: Any = DEFAULT_TIMEOUT,
        sndhwm: Optional[int] = None,
        rcvhwm: int = DEFAULT_HWM,
        bind: Optional[bool] = None,
    ) -> None:
        owner = f"ZmqBroadcaster({endpoint_in!r})"
        if isinstance(endpoints_out, (str, CommData, ZmqSender)):
            endpoints_out = [endpoints_out]
        try:
            outputs = list(endpoints_out)
        except TypeError:
            raise ConfigurationError(
                f"{owner}: endpoints_out={endpoints_out!r} must be a list of endpoints"
            ) from None
        if not outputs:
            raise ConfigurationError(f"{owner}: endpoints_out is empty: give at least one output")
        for output in outputs:
            if not isinstance(output, (str, CommData, ZmqSender)):
                raise ConfigurationError(
                    f"{owner}: output {output!r} must be an endpoint string, a CommData or a ZmqSender"
                )
        self._receiver = ZmqReceiver(endpoint_in, reliable=reliable, timeout=None, rcvhwm=rcvhwm, bind=bind)
        senders: List[ZmqSender] = []
        try:
            for output in outputs:
                if isinstance(output, ZmqSender):
                    sender = output
                else:
                    implied = None if isinstance(output, CommData) else self._receiver.reliable
                    sender = ZmqSender(output, reliable=implied, sndhwm=sndhwm, timeout=timeout)
                if sender.reliable and not self._receiver.reliable:
                    raise ConfigurationError(
                        f"{owner}: the lossy input cannot feed the reliable output {sender!r}"
                    )
                senders.append(sender)
        except BaseException:
            for sender in senders:
                if sender not in outputs:
                    sender.close()
            self._receiver.close()
            raise
        self._outputs: Tuple[ZmqSender, ...] = tuple(senders)
        # Written by the forwarding thread only (read by close() once it has ended).
        self._live: List[ZmqSender] = list(senders)
        self._errors: List[BaseException] = []
        self._in_stream = False
        self._forwarded = 0
        self._stop = threading.Event()
        self._done = False  # close() has run (the caller's flag; the thread never reads it)
        self._future = run_in_thread(self._run, name=repr(self))

    def __repr__(self) -> str:
        outputs = ", ".join(repr(sender.endpoint) for sender in self._outputs)
        return f"ZmqBroadcaster({self._receiver.endpoint!r} -> [{outputs}])"

    @property
    def endpoint_in(self) -> str:
        """The input's endpoint (see :attr:`ZmqReceiver.endpoint`)."""
        return self._receiver.endpoint

    @property
    def endpoints(self) -> List[str]:
        """The outputs' endpoints, in the order given (bound ones read back: connect receivers to them)."""
        return [sender.endpoint for sender in self._outputs]

    @property
    def outputs(self) -> Tuple[ZmqSender, ...]:
        """The output senders, in the order given (for their counters, such as :attr:`~ZmqSender.dropped`)."""
        return self._outputs

    @property
    def forwarded(self) -> int:
        """Frames forwarded so far."""
        return self._forwarded

    @property
    def future(self) -> Future:
        """The forwarding thread's future (see the class)."""
        return self._future

    def wait_for_receivers(self, timeout: Any = _DEFAULT) -> None:
        """Wait until every output has a receiver (see :meth:`ZmqSender.wait_for_receiver`)."""
        for sender in self._outputs:
            sender.wait_for_receiver(timeout)

    def _run(self) -> int:
        receiver, stop = self._receiver, self._stop
        try:
            while True:
                try:
                    message = receiver._next(None, "waiting for the next message", stop=stop)
                except NetworkingError as error:
                    self._send_failure(error)
                    raise
                if message is None:
                    return self._forwarded
                if message.kind == "frame":
                    self._in_stream = True  # from now on the outputs may hold part of a stream
                for sender in list(self._live):
                    try:
                        if not sender._forward(message, stop):
                            return self._forwarded  # stopped while waiting for a full output
                    except NetworkingError as error:
                        self._live.remove(sender)
                        self._errors.append(error)
                        LOG.error(
                            "%r: output %r failed and gets nothing more: %s", self, sender.endpoint, error
                        )
                if message.kind == "frame":
                    self._forwarded += 1
                else:
                    self._in_stream = False
                if not self._live:
                    raise NetworkingError(f"{self!r}: every output failed; the first: {self._errors[0]}")
        except CancelledError as error:
            self._send_failure(error)
            raise
        except BaseException as error:
            if not isinstance(error, NetworkingError) or error not in self._errors:
                LOG.error("%r stopped: %s", self, error)
            raise

    def _send_failure(self, error: BaseException) -> None:
        if not self._in_stream:
            return
        self._in_stream = False
        for sender in self._live:
            sender._abort(error)

    def close(self, timeout: Any = None) -> None:
        """Stop forwarding, close the input and every output; harmless if closed.

        The message in hand is forwarded first unless an output is full
        (then it is not, for the outputs that have not taken it yet); a
        stream in progress is ended on every output as failed ("closed"), so
        their receivers do not wait for it. ``timeout`` bounds the wait for
        the thread.

        :raises NetworkingError: the first failure of an output or the input,
            if there was one (every socket is closed first).
        :raises WaitError: if the thread did not end within ``timeout``.
        """
        if self._done:
            return
        self._stop.set()
        try:
            self._future.exception(timeout)
        except CancelledError:
            pass
        self._done = True
        if self._in_stream:
            self._send_failure(NetworkingError(f"{self!r} was closed in the middle of the stream"))
        failures: List[BaseException] = list(self._errors)
        error = None if self._future.cancelled() else self._future.exception()
        if error is not None and error not in failures:
            failures.insert(0, error)
        for closable in (self._receiver, *self._outputs):
            try:
                closable.close()
            except NetworkingError as failure:
                failures.append(failure)
        if failures:
            raise failures[0]

    def __enter__(self) -> ZmqBroadcaster:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
