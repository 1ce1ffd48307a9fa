"""Live viewers: images and curves drawn with matplotlib in a process of their own.

:class:`PyplotImageViewer` shows frames (2-D arrays, or RGB(A) images of
``uint8``); :class:`PyplotViewer` shows a curve that grows as points come
in. Both need matplotlib (the ``viewers`` extra), which only their drawing
process imports: importing this module does not, and neither does
``import concert``.

**Two faces.** ``viewer.show(item)`` shows one frame (one point, one
curve). ``viewer(producer)`` consumes an iterable of them, as a pipeline
consumer does (``broadcast(camera.stream(), viewer, walker.write)``), and
``viewer()`` returns a primed generator to send them to (a push-style
consumer, for ``camera.stream(viewer())`` or
:func:`~concert.coroutines.base.inject`). Called with anything else than
an iterable, or with an array -- one frame, which ``viewer(frame)`` would
take for a stream of rows -- it raises
:class:`~concert.exceptions.DataError` pointing to ``show``.

**The latest-frame slot.** ``show`` never waits for drawing: it checks the
frame (its dimensions and dtype, at no cost in pixels), keeps a reference to
it in a one-place slot and returns. A frame still in the slot when the next
one comes is *dropped*: it is never copied nor drawn. A feeder thread takes
the newest frame from the slot when the drawing process has finished the
previous one (and at most ``rate`` times a second), downsamples it and
writes it to the process through a pipe. A slow drawer therefore drops
frames instead of slowing the acquisition. The counters :attr:`received`,
:attr:`handed`, :attr:`drawn` and :attr:`dropped` say what became of each;
after :meth:`flush` or :meth:`close`, ``received == drawn + dropped`` for
the items received before the call. Consuming a stream never waits for
drawing (nor for the drawing process to start): it returns once the stream
has ended and its last item is in the slot. :meth:`close` refuses new items
at once (``show`` raises :class:`~concert.exceptions.StateError`), then
waits for what was pending only.

**The drawing process** is a fresh interpreter (``python -m
concert.ext._viewer_process``), started with the first frame (or
:meth:`start`): nothing is forked, and the script that made the viewer is
not run again in it. It opens a window when matplotlib has an interactive
backend there; otherwise (``MPLBACKEND=Agg``, no display) it writes a PNG
file, one per viewer, replaced at every frame under another name first so
that a reader never sees half a file. ``filename=`` or ``directory=``
choose the file (and make the viewer write it with a window too); by
default it goes into a fresh directory, one per Python process, named in a
log line. The process ends with :meth:`close`, at interpreter exit (the
viewers not closed are closed then, all together: about
:data:`EXIT_TIMEOUT` + 1 s in all, whatever their number), and when the
viewer's process ends in any other way (its pipe closes; on Linux also,
through ``PR_SET_PDEATHSIG``, when it is killed while the drawing process is
stopped or hung). A drawing
process that dies makes the next call raise
:class:`~concert.exceptions.StateError`.

Threads and ownership: everything a viewer counts and keeps is guarded by
its lock (one per viewer). The feeder thread alone writes to the drawing
process, and a reader thread alone reads its answers; callers only touch
the slot and the counters, under the lock. Several threads may call
``show`` on one viewer.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import itertools
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from concert.checks import is_integer, is_quantity, is_real
from concert.exceptions import (
    ConcertError,
    ConfigurationError,
    DataError,
    StateError,
    StorageError,
    UnitError,
    WaitError,
)
from concert.ext import _viewer_process as _protocol
from concert.futures import check_cancelled
from concert.naming import describe_value
from concert.timeouts import to_seconds

__all__ = ["EXIT_TIMEOUT", "PyplotImageViewer", "PyplotViewer"]

LOG = logging.getLogger(__name__)

#: Seconds, in all, for the viewers left open at interpreter exit to draw and end (then they are killed).
EXIT_TIMEOUT = 5.0

_END_TIMEOUT = 2.0  # seconds for a drawing process to end after "close" before it is killed
_KILL_MARGIN = 0.5  # seconds to wait for a killed process and the threads that served it
_EXIT_END = 1.0  # of EXIT_TIMEOUT, the seconds left at exit for the processes to end after "close"
_POLL = 0.1  # seconds between looks at a cancel request while waiting for drawing

# The directory PNG files go to when no filename or directory was given: one per Python
# process, made by the first viewer that needs it. Guarded by _default_lock.
_default_directory: Optional[str] = None
_default_lock = threading.Lock()

# The viewers whose drawing process may run: closed at interpreter exit. Guarded by _open_lock.
_open: weakref.WeakSet = weakref.WeakSet()
_open_lock = threading.Lock()

_numbers: Dict[str, Iterator[int]] = {}  # per class name: the numbers of its viewers; under _open_lock


def _default_png_directory() -> str:
    """The directory of PNG files nobody chose (made on first use). :raises OSError: if it cannot be made."""
    global _default_directory
    with _default_lock:
        if _default_directory is None:
            prefix = time.strftime("concert-viewers-%Y%m%d-%H%M%S-")
            _default_directory = tempfile.mkdtemp(prefix=prefix)
        return _default_directory


def _exit_status(code: Optional[int]) -> str:
    if code is None:
        return "is not answering"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"was killed by signal {-code} ({name})"
    return f"ended with exit status {code}"


class _Viewer:
    """What both viewers share: the slot, the counters, the drawing process and its threads.

    Subclasses say what an item is (``_check``), how the slot keeps items
    (``_accept``, ``_pending``, ``_take``, ``_discard``), what is sent for
    them (``_pack``) and which options the drawing process needs
    (``_options``).
    """

    _viewer = ""  # what the drawing process draws: "image" or "curve"
    _item = "item"  # what one item is called in messages

    def __init__(
        self,
        title: Optional[str],
        filename: Any,
        directory: Any,
        rate: Optional[float],
        timeout: Any,
        draw_delay: float,
    ) -> None:
        cls = type(self).__name__
        with _open_lock:
            number = next(_numbers.setdefault(cls, itertools.count(1)))
        self._name = f"{cls}#{number}"
        if importlib.util.find_spec("matplotlib") is None:
            raise ModuleNotFoundError(
                f"{self._name} draws with matplotlib, which is not installed: "
                "pip install 'concert[viewers]' (or matplotlib)"
            )
        self._title = self._checked_title(title)
        self._png = self._png_path(filename, directory, f"{cls}-{number}.png")
        self._rate = self._checked_rate(rate)
        self._timeout = to_seconds(timeout, f"{self._name}: timeout")
        self._draw_delay = float(draw_delay)  # a testing aid: the drawing process sleeps this long per draw

        # All of the following are guarded by _lock (_changed is a Condition on it).
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # new -> running -> closing (refuses new items, hands over what is pending) -> ending (the
        # process is told to end) -> closed; "dead" once the process died.
        self._state = "new"
        self._ready = False  # the drawing process said it is ready
        self._exited = False  # the drawing process has closed its end (it has ended)
        self._busy = 0  # items handed to the process and not answered yet
        # Items are numbered from 0 in the order show() accepts them. Flushes wait for the items
        # numbered below their target; the feeder hands over at once, whatever the rate, while the
        # slot holds such an item.
        self._flush_target = 0  # the largest target of the flushes (and the close) going on
        self._slot_from: Optional[int] = None  # the number of the oldest item in the slot (None: empty)
        self._busy_from = 0  # the number of the oldest item handed over and not answered yet
        self._received = self._handed = self._drawn = self._dropped = 0
        self._error: Optional[ConcertError] = None  # reported by the process; raised by the next call
        self._death = ""  # why the process is dead
        self._version = 0  # of the options; bumped by every change (_options_changed)
        self._start_version = 0  # the version the drawing process started with
        self._handover_version = 0  # the version in effect for the items being drawn
        self._refusal: Optional[str] = None  # the option refusal last raised: raised once per change
        self._backend: Optional[str] = None
        self._process: Optional[subprocess.Popen] = None
        self._feeder: Optional[threading.Thread] = None
        self._reader: Optional[threading.Thread] = None
        self._last_handover = -math.inf  # time.monotonic() of the last handover

    # -- checks of the options ---------------------------------------------------------------

    def _checked_title(self, title: Any) -> Optional[str]:
        if title is not None and not isinstance(title, str):
            raise ConfigurationError(f"{self._name}: title={describe_value(title)} is not a string")
        return title

    def _checked_rate(self, rate: Any) -> Optional[float]:
        if rate is None:
            return None
        if not is_real(rate) or not float(rate) > 0:
            raise ConfigurationError(
                f"{self._name}: rate={describe_value(rate)} is not a number of draws per second > 0 "
                "(None: as fast as it draws)"
            )
        return None if math.isinf(float(rate)) else float(rate)

    def _png_path(self, filename: Any, directory: Any, default: str) -> Optional[str]:
        """The absolute path of the PNG file, ``None`` if nobody chose one; the file is not created yet."""
        paths = []
        for what, value in (("directory", directory), ("filename", filename)):
            if value is None:
                continue
            try:
                path = os.fspath(value)
            except TypeError:
                raise ConfigurationError(
                    f"{self._name}: {what}={describe_value(value)} is not a path"
                ) from None
            if not isinstance(path, str) or not path:
                raise ConfigurationError(f"{self._name}: {what}={describe_value(value)} is not a path")
            paths.append(path)
        if not paths:
            return None
        if filename is None:
            paths.append(default)
        path = os.path.abspath(os.path.join(*paths))
        if os.path.isdir(path):
            raise ConfigurationError(f"{self._name}: the PNG file {path!r} would replace a directory")
        parent = os.path.dirname(path)
        while not os.path.exists(parent):  # missing directories are made when the first PNG is written
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise ConfigurationError(f"{self._name}: cannot write {path!r}: {parent!r} is not a directory")
        return path

    # -- what callers see --------------------------------------------------------------------

    def __repr__(self) -> str:
        return self._name

    @property
    def received(self) -> int:
        """Items given to :meth:`show` (directly or by consuming a stream) and accepted."""
        with self._lock:
            return self._received

    @property
    def handed(self) -> int:
        """Items handed to the drawing process (the others were dropped from the slot)."""
        with self._lock:
            return self._handed

    @property
    def drawn(self) -> int:
        """Items the drawing process has drawn (and written into the PNG file, when it writes one)."""
        with self._lock:
            return self._drawn

    @property
    def dropped(self) -> int:
        """Items that will never be drawn: replaced in the slot by newer ones, refused or lost in drawing."""
        with self._lock:
            return self._dropped

    @property
    def filename(self) -> Optional[str]:
        """The PNG file the viewer writes (absolute path), or ``None``.

        Known at construction when ``filename`` or ``directory`` was given;
        otherwise once the drawing process has started and found no display
        (``None`` meanwhile, and for a viewer that draws in a window only).
        """
        with self._lock:
            return self._png

    @property
    def backend(self) -> Optional[str]:
        """The matplotlib backend of the drawing process (``'agg'`` without a display), once it started."""
        with self._lock:
            return self._backend

    @property
    def pid(self) -> Optional[int]:
        """The process id of the drawing process, once it was started (``None`` before)."""
        with self._lock:
            return None if self._process is None else self._process.pid

    @property
    def timeout(self) -> float:
        """Seconds :meth:`flush` and :meth:`close` wait by default."""
        return self._timeout

    @property
    def title(self) -> Optional[str]:
        """The title over the drawing (``None``: the viewer's name); settable."""
        return self._title

    @title.setter
    def title(self, title: Optional[str]) -> None:
        title = self._checked_title(title)
        with self._lock:
            self._title = title
            self._options_changed()

    @property
    def rate(self) -> Optional[float]:
        """At most this many draws per second (``None``: as fast as the process draws); settable."""
        return self._rate

    @rate.setter
    def rate(self, rate: Optional[float]) -> None:
        rate = self._checked_rate(rate)
        with self._lock:
            self._rate = rate
            self._changed.notify_all()

    def show(self, item: Any) -> None:
        """Show ``item`` (see the class for what it may be); never waits for drawing.

        The item is checked, kept in the slot (replacing, and so dropping,
        one that was not handed over yet) and drawn when the drawing
        process is free. The first call starts the drawing process. Do not
        modify an array after showing it: it is not copied.

        :raises DataError: for an item the viewer cannot draw (the viewer
            is unchanged and goes on).
        :raises StateError: when the viewer is closed or its drawing process
            has died.
        :raises ConfigurationError: (once) when the drawing process refused
            an option since the last call (an unknown colormap or style);
            the item is not shown. Set a valid value and go on.
        :raises StorageError: (once) when the PNG file could not be written; the viewer goes on
            without the file (logged as an error).
        """
        prepared = self._check(item)
        with self._lock:
            self._raise_unusable()
            self._store(prepared)

    def _store(self, prepared: Any) -> None:
        """Put a checked item into the slot (under _lock); starts the drawing process with the first."""
        number = self._received
        idle = not self._pending()
        self._received += 1
        self._dropped += self._accept(prepared)
        if idle or self._replaces(prepared):
            self._slot_from = number
        if self._state == "new":
            self._launch()
        elif idle:  # something to hand over now; replacing what was pending changes nothing for the feeder
            self._changed.notify_all()

    def start(self) -> _Viewer:
        """Start the drawing process now, without waiting for it (the first item would start it); return self.

        :raises StateError: when the viewer is closed or its drawing process has died.
        """
        with self._lock:
            self._raise_unusable(errors=False)
            if self._state == "new":
                self._launch()
        return self

    def __call__(self, producer: Optional[Iterable[Any]] = None) -> Any:
        """Consume ``producer``, showing each item; or, without it, return a push-style consumer.

        ``viewer(producer)`` shows every item as :meth:`show` does and
        returns the number of items it was given as soon as the producer is
        exhausted: the last item is in the slot, and drawing goes on in the
        background (a viewer never holds an acquisition up, neither for
        drawing nor for its drawing process to start). ``viewer()`` returns a
        primed generator: each item sent to it is shown. :meth:`flush` and
        :meth:`close` wait for the drawing and make the counts final.

        :raises DataError: for a ``producer`` that is not iterable, or is an
            array (use :meth:`show` for one frame), and for an item that
            cannot be drawn.
        :raises StateError, ConfigurationError, StorageError: as :meth:`show`.
        """
        if producer is None:
            generator = self._push()
            next(generator)
            return generator
        if isinstance(producer, np.ndarray) or is_quantity(producer) or isinstance(producer, (str, bytes)):
            raise DataError(
                f"{self._name}: {self._name}(items) consumes a stream of {self._item}s, not "
                f"{describe_value(producer)}; to show one {self._item}, call {self._name}.show(...)"
            )
        try:
            items = iter(producer)
        except TypeError:
            raise DataError(
                f"{self._name}: {describe_value(producer)} is not a stream of {self._item}s; "
                f"to show one {self._item}, call {self._name}.show(...)"
            ) from None
        count = 0
        for item in items:
            check_cancelled()
            self.show(item)
            count += 1
        return count

    def _push(self) -> Any:
        while True:
            self.show((yield))

    def flush(self, timeout: Any = None) -> None:
        """Wait until every item received before the call is drawn or dropped, at most ``timeout``.

        ``timeout`` defaults to :attr:`timeout`. Items shown meanwhile (by
        other threads) are not waited for. Returns at once if nothing is
        pending, or the viewer is closed. While it waits, the items it waits
        for are handed over at once (``rate`` does not hold them back; later
        items are drawn at ``rate`` again). A cancel request on the
        operation calling it (a broadcast consumer's, say) is looked at every
        0.1 s.

        :raises WaitError: if items are still pending after ``timeout``.
        :raises StateError: if the drawing process has died (or dies meanwhile).
        :raises ConfigurationError, StorageError, DataError: what the drawing process reported
            (once), as :meth:`show` does.
        :raises UnitError: for a ``timeout`` that is not a duration.
        """
        seconds = self._timeout if timeout is None else to_seconds(timeout, f"{self._name}.flush: timeout")
        with self._lock:
            target = self._received
        self._settle(target, time.monotonic() + seconds, seconds)

    def _settled(self, target: int) -> bool:
        """Whether every item numbered below ``target`` is drawn or dropped (under _lock)."""
        in_slot = self._slot_from is not None and self._slot_from < target
        return not in_slot and not (self._busy and self._busy_from < target)

    def _settle(self, target: int, deadline: float, seconds: float) -> None:
        """Wait until the items numbered below ``target`` are drawn or dropped, until ``deadline``."""
        with self._lock:
            if target > self._flush_target:
                self._flush_target = target
                self._changed.notify_all()  # the feeder need not wait for the rate any more
        while True:
            with self._lock:
                if self._state in ("new", "ending", "closed"):
                    return
                self._raise_unusable(closed=False)
                if self._settled(target):
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pending = self._pending() + self._busy
                    raise WaitError(
                        f"{self._name}: {pending} {self._item}(s) not drawn within {seconds:g} s "
                        f"({self._drawn} drawn so far)"
                    )
                self._changed.wait(min(remaining, _POLL))
            check_cancelled()

    def close(self, timeout: Any = None) -> None:
        """Refuse new items, draw what is pending (at most ``timeout``), then end the drawing process.

        ``timeout`` defaults to :attr:`timeout`. From the moment ``close`` is
        called, :meth:`show` (from any thread) raises
        :class:`~concert.exceptions.StateError`: ``close`` waits only for
        what was pending then, handed over at once whatever ``rate``.
        Afterwards ``received == drawn + dropped`` (pending items not drawn
        in time count as dropped). A process that does not end within 2 s of
        being told is killed (with a warning in the log). Never raises for
        what the drawing process reported (that is logged); closing twice
        does nothing (a second thread's ``close`` waits for the first).

        :raises UnitError: for a ``timeout`` that is not a duration.
        """
        seconds = self._timeout if timeout is None else to_seconds(timeout, f"{self._name}.close: timeout")
        now = time.monotonic()
        self._close(now + seconds, now + seconds + _END_TIMEOUT, seconds)

    def _close(self, drawn_by: float, ended_by: float, seconds: float) -> None:
        """Close: what is pending drawn by ``drawn_by``, the process ended by ``ended_by`` (else killed)."""
        with self._lock:
            state = self._state
            if state == "new":
                self._state = "closed"
            if state in ("closing", "ending"):  # another thread closes it: wait for that
                while self._state != "closed" and time.monotonic() < ended_by + 2 * _KILL_MARGIN:
                    self._changed.wait(_POLL)
            if state in ("new", "closed", "closing", "ending"):
                return
            target = self._received
            if state == "running":
                self._state = "closing"  # show() refuses from now on
        try:
            if state == "running":
                try:
                    self._settle(target, drawn_by, seconds)
                except ConcertError as error:
                    LOG.warning("%s: closing: %s", self._name, error)
        finally:
            self._end_process(ended_by)

    def _end_process(self, ended_by: float) -> None:
        """Tell the process to end (dropping what is pending); kill it if it has not ended by ``ended_by``."""
        with self._lock:
            if self._state in ("running", "closing"):
                self._state = "ending"
                self._dropped += self._discard()
                self._slot_from = None
            self._changed.notify_all()
            feeder = self._feeder
        # The feeder sends "close" and stays until the process has ended (the process is killed with
        # the thread that started it: see _viewer_process.main).
        if feeder is not None:
            feeder.join(max(0.0, ended_by - time.monotonic()))
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            LOG.warning("%s: its drawing process (pid %d) did not end: killed", self._name, process.pid)
            process.kill()
            try:
                process.wait(_KILL_MARGIN)
            except subprocess.TimeoutExpired:
                pass
        if feeder is not None:
            feeder.join(_KILL_MARGIN)
        reader = self._reader
        if reader is not None:
            reader.join(_KILL_MARGIN)
        if process is not None:
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
        with self._lock:
            self._dropped += self._discard() + self._busy  # what was in flight will never be answered
            self._busy = 0
            self._slot_from = None
            self._state = "closed"
            self._changed.notify_all()
        with _open_lock:
            _open.discard(self)

    def __enter__(self) -> _Viewer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- the slot's users (all called with _lock held) ------------------------------------------

    def _raise_unusable(self, closed: bool = True, errors: bool = True) -> None:
        if self._state in ("closed", "closing", "ending") and closed:
            raise StateError("closed", f"{self._name} is closed: make a new viewer to show {self._item}s")
        if self._state == "dead":
            raise StateError("dead", self._death)
        if errors and self._error is not None:
            error, self._error = self._error, None
            raise error

    def _launch(self) -> None:
        self._state = "running"
        self._feeder = threading.Thread(target=self._feed, name=f"concert-viewer-{self._name}", daemon=True)
        self._feeder.start()
        with _open_lock:
            _open.add(self)

    def _die(self, text: str) -> None:
        self._state = "dead"
        self._death = text
        self._dropped += self._discard() + self._busy
        self._busy = 0
        self._slot_from = None
        self._changed.notify_all()

    # -- the feeder thread: the only writer to the drawing process ------------------------------

    def _spawn(self) -> subprocess.Popen:
        if not sys.executable:
            raise OSError("sys.executable is not known: no Python to run the drawing process with")
        # The child imports the concert the viewer's process uses, wherever that comes from.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [environment.get("PYTHONPATH")])])
        environment["CONCERT_VIEWER_PARENT"] = str(os.getpid())  # see _viewer_process._die_with_parent
        options: Dict[str, Any] = {}
        if os.name == "posix":
            options["start_new_session"] = True  # no Ctrl-C, Ctrl-\ or hang-up from the terminal
        else:
            options["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        return subprocess.Popen(
            [sys.executable, "-m", "concert.ext._viewer_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            **options,
        )

    def _feed(self) -> None:
        try:
            process = self._spawn()
        except Exception as error:
            with self._lock:
                self._die(f"{self._name}: its drawing process could not be started: {error}")
            LOG.error("%s: its drawing process could not be started: %s", self._name, error)
            return
        with self._lock:
            self._process = process
            start = {
                "kind": "start",
                "viewer": self._viewer,
                "name": self._name,
                "options": self._options(),
                "draw_delay": self._draw_delay,
            }
            sent = self._start_version = self._version
        self._reader = threading.Thread(
            target=self._read, args=(process,), name=f"concert-viewer-reader-{self._name}", daemon=True
        )
        self._reader.start()
        try:
            _protocol.send(process.stdin, start)
            while True:
                with self._lock:
                    job = self._next_job(sent)
                    if job is None:
                        break
                    taken, count, options = job
                    if options is not None:
                        sent = self._version
                header, payload = self._pack(taken)
                header.update(kind="frame", count=count, options=options)
                _protocol.send(process.stdin, header, payload)
            with self._lock:
                exited = self._exited
            if not exited:
                _protocol.send(process.stdin, {"kind": "close"})
        except (OSError, ValueError):
            pass  # the process has gone (a broken pipe): the reader says so
        finally:
            try:
                process.stdin.close()
            except OSError:
                pass
        # Stay until the process has ended: on Linux it is killed when the thread that started it
        # ends (PR_SET_PDEATHSIG), so that it never outlives a killed parent. close() kills it if
        # it does not end in time.
        process.wait()

    def _next_job(self, sent: int) -> Optional[Tuple[Any, int, Optional[Dict[str, Any]]]]:
        """Wait until an item can be handed over; return it, its count and new options; ``None``: stop."""
        while True:
            if self._state in ("dead", "ending") or self._exited:
                return None  # ending: what was pending is dropped; the process draws what it has, then ends
            pending = self._pending()
            if self._ready and not self._busy and pending:
                wait = 0.0
                waited_for = self._slot_from is not None and self._slot_from < self._flush_target
                if self._rate is not None and not waited_for:
                    wait = self._last_handover + 1.0 / self._rate - time.monotonic()
                if wait <= 0:
                    self._busy_from = self._slot_from if self._slot_from is not None else self._received
                    self._slot_from = None
                    taken = self._take()
                    self._busy = pending
                    self._handed += pending
                    self._last_handover = time.monotonic()
                    self._handover_version = self._version
                    return taken, pending, (self._options() if self._version != sent else None)
                self._changed.wait(wait)
                continue
            self._changed.wait()

    # -- the reader thread: the only reader of the drawing process's answers --------------------

    def _read(self, process: subprocess.Popen) -> None:
        notes: List[Tuple[int, str]] = []  # log records, written outside the lock
        try:
            while True:
                message = _protocol.receive(process.stdout)
                if message is None:
                    break
                with self._lock:
                    self._answer(message[0], notes)
                    self._changed.notify_all()
                for level, text in notes:
                    LOG.log(level, "%s", text)
                notes.clear()
        except (OSError, ValueError):
            pass
        try:
            code: Optional[int] = process.wait(_END_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        with self._lock:
            self._exited = True
            dead = self._state == "running"
            if dead:
                self._die(
                    f"{self._name}: its drawing process (pid {process.pid}) {_exit_status(code)}; "
                    f"it can show no more {self._item}s: close it and make a new viewer"
                )
            self._changed.notify_all()
        if dead:
            LOG.error("%s", self._death)

    def _answer(self, header: Dict[str, Any], notes: List[Tuple[int, str]]) -> None:
        kind = header.get("kind")
        if kind == "ready":
            self._ready = True
            self._backend = header["backend"]
            if header.get("refused"):
                self._refused(header["refused"], self._start_version)
            level = logging.INFO
            if self._png is None and not header["interactive"]:
                try:
                    self._png = os.path.join(_default_png_directory(), f"{self._name.replace('#', '-')}.png")
                except OSError as error:
                    self._error = StorageError(f"{self._name}: cannot make a directory for its PNG: {error}")
                    return
                self._options_changed()  # the drawing process must hear of the file
                level = logging.WARNING  # nobody chose the file: say where it is
            if header["interactive"]:
                where = f" and into {self._png}" if self._png else ""
                text = f"{self._name}: drawing in a window (matplotlib backend {self._backend}){where}"
            else:
                backend = self._backend
                text = f"{self._name}: no display (matplotlib backend {backend}): drawing into {self._png}"
            notes.append((level, text))
        elif kind in ("drawn", "error"):
            count = int(header["count"])
            self._busy = max(0, self._busy - count)
            if kind == "drawn":
                self._drawn += count
                return
            self._dropped += count
            category, text = header.get("category"), header.get("text", "")
            if category == "option":
                self._refused(text, self._handover_version)
            elif category == "storage":  # once: the process writes the file no more
                self._error = StorageError(f"{self._name}: {text}; it goes on without the file")
                notes.append((logging.ERROR, str(self._error)))
            else:
                self._error = DataError(f"{self._name}: the drawing process could not draw: {text}")

    def _refused(self, text: str, version: int) -> None:
        """The drawing process refused the options of ``version``: raise it once, if they are current."""
        if version == self._version and text != self._refusal:
            self._error = ConfigurationError(f"{self._name}: {text}")
            self._refusal = text

    def _options_changed(self) -> None:
        """Options changed (under _lock): the next handover sends them; a refusal may be raised again."""
        self._version += 1
        self._refusal = None

    # -- what subclasses say --------------------------------------------------------------------

    def _check(self, item: Any) -> Any:
        raise NotImplementedError

    def _accept(self, prepared: Any) -> int:
        """Put ``prepared`` into the slot; return how many pending items it replaced (dropped)."""
        raise NotImplementedError

    def _replaces(self, prepared: Any) -> bool:
        """Whether ``prepared`` (just accepted) replaced everything that was pending."""
        raise NotImplementedError

    def _pending(self) -> int:
        raise NotImplementedError

    def _take(self) -> Any:
        """Empty the slot; return what it held (for ``_pack``)."""
        raise NotImplementedError

    def _discard(self) -> int:
        """Empty the slot; return how many items it held."""
        raise NotImplementedError

    def _pack(self, taken: Any) -> Tuple[Dict[str, Any], Any]:
        """The header fields and payload for what ``_take`` returned (called without the lock)."""
        raise NotImplementedError

    def _options(self) -> Dict[str, Any]:
        raise NotImplementedError


class PyplotImageViewer(_Viewer):
    """Show frames live: the newest frame drawn with ``imshow``, with a colour bar (see the module).

    A frame is a 2-D array of integers, floats or booleans (a camera frame,
    :class:`~concert.imaging.ImageWithMetadata` included: its ``'frame'``
    number is shown), or an RGB(A) image of shape ``(rows, columns, 3 or 4)``
    and dtype ``uint8`` (drawn as it is: ``limits`` and ``colormap`` do not
    apply). NaN and infinite pixels are drawn in the colormap's "bad" colour
    and left out of the limits.

    :param title: the title over the image (default: the viewer's name, ``PyplotImageViewer#1``);
        the frame number is shown under it.
    :param limits: the colour limits: ``(low, high)`` (real, finite, ``low < high``),
        ``'auto'`` (each frame's minimum and maximum) or ``'stream'`` (the default: the
        smallest and largest value of every frame drawn so far; setting ``limits`` starts
        it over).
    :param colormap: a matplotlib colormap name (default ``'gray'``); an unknown name is
        reported by the drawing process, see :meth:`show`.
    :param downsampling: draw every ``downsampling``-th pixel of every ``downsampling``-th
        row (an integer >= 1; default 1); see ``max_size``.
    :param max_size: if the frame (after ``downsampling``) is larger than this in rows or
        columns, a larger factor is taken, the smallest that brings both within it (an
        integer >= 1, or ``None`` for no bound; default 512: a 2048 x 2048 frame is drawn
        at 512 x 512). The axes count the frame's own pixels.
    :param filename: the PNG file to write (created with its directories when the first
        frame is drawn, replaced at every draw); relative to ``directory`` if both are given.
    :param directory: the directory of the PNG file, named after the viewer
        (``PyplotImageViewer-1.png``) unless ``filename`` is given.
    :param rate: at most this many draws per second (default 5; ``None``: no bound).
    :param timeout: seconds (or a time quantity) :meth:`flush` and :meth:`close` wait by default for
        the pending frames to be drawn (default 30).
    :param _draw_delay: a testing aid: seconds the drawing process waits after each draw, to
        play a slow viewer (default 0).

    :raises ConfigurationError: (a ``ValueError``) for an option it cannot take, naming it and the value.
    :raises UnitError: for a ``timeout`` that is not a duration.
    :raises ModuleNotFoundError: if matplotlib is not installed.
    """

    _viewer = "image"
    _item = "frame"

    def __init__(
        self,
        title: Optional[str] = None,
        *,
        limits: Any = "stream",
        colormap: str = "gray",
        downsampling: Optional[int] = None,
        max_size: Optional[int] = 512,
        filename: Any = None,
        directory: Any = None,
        rate: Optional[float] = 5,
        timeout: Any = 30,
        _draw_delay: float = 0.0,
    ) -> None:
        super().__init__(title, filename, directory, rate, timeout, _draw_delay)
        self._limits = self._checked_limits(limits)
        self._epoch = 0  # bumped by every write of limits: 'stream' starts over
        self._colormap = self._checked_colormap(colormap)
        self._downsampling = self._checked_size("downsampling", downsampling, none="1")
        self._max_size = self._checked_size("max_size", max_size, none="no bound")
        self._frame: Optional[Tuple[np.ndarray, int]] = None  # the slot: (frame, its number); under _lock

    # -- options -------------------------------------------------------------------------------

    def _checked_limits(self, limits: Any) -> Any:
        if isinstance(limits, str) and limits in ("auto", "stream"):
            return limits
        if isinstance(limits, (tuple, list)) and len(limits) == 2 and all(is_real(value) for value in limits):
            low, high = float(limits[0]), float(limits[1])
            if math.isfinite(low) and math.isfinite(high) and low < high:
                return (low, high)
            raise ConfigurationError(
                f"{self._name}: limits={describe_value(limits)}: low and high must be finite numbers "
                "and low < high"
            )
        raise ConfigurationError(
            f"{self._name}: limits={describe_value(limits)} is none of (low, high), 'auto' and 'stream'"
        )

    def _checked_colormap(self, colormap: Any) -> str:
        if not isinstance(colormap, str) or not colormap:
            raise ConfigurationError(
                f"{self._name}: colormap={describe_value(colormap)} is not the name of a matplotlib colormap"
            )
        return colormap

    def _checked_size(self, what: str, value: Any, none: str) -> Optional[int]:
        if value is None:
            return None
        if not is_integer(value) or value < 1:
            raise ConfigurationError(
                f"{self._name}: {what}={describe_value(value)} is not a whole number >= 1 (None: {none})"
            )
        return int(value)

    @property
    def limits(self) -> Any:
        """The colour limits: ``(low, high)``, ``'auto'`` or ``'stream'``; settable ('stream' starts over)."""
        return self._limits

    @limits.setter
    def limits(self, limits: Any) -> None:
        limits = self._checked_limits(limits)
        with self._lock:
            self._limits = limits
            self._epoch += 1
            self._options_changed()

    @property
    def colormap(self) -> str:
        """The matplotlib colormap's name; settable."""
        return self._colormap

    @colormap.setter
    def colormap(self, colormap: str) -> None:
        colormap = self._checked_colormap(colormap)
        with self._lock:
            self._colormap = colormap
            self._options_changed()

    @property
    def downsampling(self) -> Optional[int]:
        """The smallest downsampling factor (``None``: 1); settable."""
        return self._downsampling

    @downsampling.setter
    def downsampling(self, value: Optional[int]) -> None:
        value = self._checked_size("downsampling", value, none="1")
        with self._lock:
            self._downsampling = value

    @property
    def max_size(self) -> Optional[int]:
        """The largest number of rows or columns drawn (``None``: no bound); settable."""
        return self._max_size

    @max_size.setter
    def max_size(self, value: Optional[int]) -> None:
        value = self._checked_size("max_size", value, none="no bound")
        with self._lock:
            self._max_size = value

    def factor(self, shape: Tuple[int, ...]) -> int:
        """The downsampling factor a frame of ``shape`` (rows, columns, ...) is drawn with."""
        factor = self._downsampling or 1
        if self._max_size is not None:
            factor = max(factor, math.ceil(max(shape[0], shape[1]) / self._max_size))
        return factor

    def _options(self) -> Dict[str, Any]:
        return {
            "title": self._title,
            "limits": list(self._limits) if isinstance(self._limits, tuple) else self._limits,
            "epoch": self._epoch,
            "colormap": self._colormap,
            "filename": self._png,
        }

    # -- frames --------------------------------------------------------------------------------

    def _check(self, frame: Any) -> Tuple[np.ndarray, Optional[int]]:
        # Called for every frame of a stream: the checks cost no pixel, the messages are made on error only.
        array = frame if isinstance(frame, np.ndarray) else self._array(frame)
        dtype, ndim = array.dtype, array.ndim
        if (
            dtype.kind not in "biuf"
            or not (ndim == 2 or (ndim == 3 and array.shape[2] in (3, 4) and dtype == np.uint8))
            or array.size == 0
        ):
            raise self._refused_frame(array)
        metadata = getattr(frame, "metadata", None)
        number = metadata.get("frame") if isinstance(metadata, dict) else None
        return array, (number if is_integer(number) else None)

    def _array(self, frame: Any) -> np.ndarray:
        try:
            return np.asarray(frame)
        except Exception:  # ragged nested lists and the like
            raise DataError(
                f"{self._name}: frame {self._received}, {describe_value(frame)}, is not an array"
            ) from None

    def _refused_frame(self, array: np.ndarray) -> DataError:
        what = f"frame {self._received}"  # the number it would get (read without the lock: for messages)
        shape = "\N{MULTIPLICATION SIGN}".join(str(size) for size in array.shape) or "scalar"
        if array.dtype.kind not in "biuf":
            return DataError(
                f"{self._name}: {what} is {array.dtype} (shape {shape}); it draws real numbers: "
                "integers, floats or booleans"
            )
        if array.size == 0:
            return DataError(f"{self._name}: {what} is empty (shape {shape})")
        return DataError(
            f"{self._name}: {what} is {array.ndim}-D (shape {shape}, {array.dtype}); it draws 2-D "
            "frames, and RGB(A) images of shape (rows, columns, 3 or 4) and dtype uint8"
        )

    def _accept(self, prepared: Tuple[np.ndarray, Optional[int]]) -> int:
        array, number = prepared
        replaced = 0 if self._frame is None else 1
        self._frame = (array, self._received - 1 if number is None else int(number))
        return replaced

    def _replaces(self, prepared: Any) -> bool:
        return True

    def _pending(self) -> int:
        return 0 if self._frame is None else 1

    def _take(self) -> Any:
        (array, number), self._frame = self._frame, None
        return array, number, self.factor(array.shape)

    def _discard(self) -> int:
        count, self._frame = self._pending(), None
        return count

    def _pack(self, taken: Any) -> Tuple[Dict[str, Any], Any]:
        array, number, factor = taken
        small = np.ascontiguousarray(array[::factor, ::factor])
        header = {
            "shape": list(small.shape),
            "dtype": small.dtype.str,
            "full": [int(array.shape[0]), int(array.shape[1])],
            "factor": factor,
            "number": number,
        }
        return header, small


class PyplotViewer(_Viewer):
    """Show a curve live: points appended as they come, or whole curves (see the module).

    What :meth:`show` takes:

    * a real number ``y`` (a boolean is 0 or 1): the point ``(n, y)``, ``n`` counting the bare
      numbers shown before it; a number beyond the range of a float raises
      :class:`~concert.exceptions.DataError`;
    * a pair ``(x, y)`` of real numbers: that point;
    * a 1-D array ``ys``: the curve ``(0, ys[0]), (1, ys[1]) ...``, which replaces what
      is drawn;
    * a pair ``(xs, ys)`` of 1-D arrays of one length (or an array of shape ``(2, n)``):
      that curve, replacing what is drawn.

    Points extend the last curve. At most ``max_points`` points are kept: the
    newest ones (a whole curve longer than that is thinned evenly). Numbers may be
    quantities (``3 * q.mm``): the first one on an axis sets its unit (shown on
    the axis), later ones are converted to it.

    :param title: the title (default: the viewer's name); the number of points is shown under it.
    :param style: the matplotlib format of the line (default ``'o-'``: dots joined by lines).
    :param max_points: the most points kept (an integer >= 2; default 10000).
    :param xlabel: the x axis label (default: the unit of the x values, if any).
    :param ylabel: the y axis label (default: the unit of the y values, if any).
    :param filename: as for :class:`PyplotImageViewer`.
    :param directory: as for :class:`PyplotImageViewer`.
    :param rate: as for :class:`PyplotImageViewer`.
    :param timeout: as for :class:`PyplotImageViewer`.
    :param _draw_delay: as for :class:`PyplotImageViewer`.

    :raises ConfigurationError: (a ``ValueError``) for an option it cannot take, naming it and the value.
    :raises UnitError: for a ``timeout`` that is not a duration.
    :raises ModuleNotFoundError: if matplotlib is not installed.
    """

    _viewer = "curve"
    _item = "point or curve"

    def __init__(
        self,
        title: Optional[str] = None,
        *,
        style: str = "o-",
        max_points: int = 10000,
        xlabel: Optional[str] = None,
        ylabel: Optional[str] = None,
        filename: Any = None,
        directory: Any = None,
        rate: Optional[float] = 5,
        timeout: Any = 30,
        _draw_delay: float = 0.0,
    ) -> None:
        super().__init__(title, filename, directory, rate, timeout, _draw_delay)
        self._style = self._checked_style(style)
        if not is_integer(max_points) or max_points < 2:
            raise ConfigurationError(
                f"{self._name}: max_points={describe_value(max_points)} is not a whole number >= 2"
            )
        self._max_points = int(max_points)
        self._labels = [self._checked_label("xlabel", xlabel), self._checked_label("ylabel", ylabel)]
        self._units: List[Any] = [None, None]  # the unit of each axis, set by the first quantity; under _lock
        # The slot, under _lock: a curve not handed over yet, and the points shown after it.
        self._curve: Optional[Tuple[Any, Any]] = None
        self._points: Deque[Tuple[float, float]] = collections.deque()
        self._bare = 0  # bare numbers shown so far: the x of the next one

    def _checked_style(self, style: Any) -> str:
        if not isinstance(style, str):
            raise ConfigurationError(
                f"{self._name}: style={describe_value(style)} is not a matplotlib line format"
            )
        return style

    def _checked_label(self, what: str, label: Any) -> Optional[str]:
        if label is not None and not isinstance(label, str):
            raise ConfigurationError(f"{self._name}: {what}={describe_value(label)} is not a string")
        return label

    @property
    def style(self) -> str:
        """The matplotlib format of the line; settable."""
        return self._style

    @style.setter
    def style(self, style: str) -> None:
        style = self._checked_style(style)
        with self._lock:
            self._style = style
            self._options_changed()

    @property
    def max_points(self) -> int:
        """The most points kept."""
        return self._max_points

    def _options(self) -> Dict[str, Any]:
        labels = []
        for label, unit in zip(self._labels, self._units):
            labels.append(label if label is not None else (format(unit, "~P") if unit is not None else ""))
        return {
            "title": self._title,
            "style": self._style,
            "max_points": self._max_points,
            "filename": self._png,
            "xlabel": labels[0],
            "ylabel": labels[1],
        }

    # -- items ---------------------------------------------------------------------------------

    def _check(self, item: Any) -> Tuple[str, Any, Any]:
        what = f"item {self._received}"
        if _is_number(item):
            return "point", None, item
        if isinstance(item, (tuple, list)) and len(item) == 2 and all(_is_number(value) for value in item):
            return "point", item[0], item[1]
        if isinstance(item, (tuple, list)) and len(item) == 2:
            xs, ys = (self._values(what, value) for value in item)
        else:
            values = self._values(what, item)
            if values.ndim == 2 and values.shape[0] == 2:
                xs, ys = values[0], values[1]
            else:
                xs, ys = None, values
        for axis in (xs, ys):
            if axis is not None and axis.ndim != 1:
                raise DataError(
                    f"{self._name}: {what} has shape {_shape(item)}; it draws a number y, a point (x, y), "
                    "a 1-D array ys or a pair (xs, ys) of 1-D arrays"
                )
        if xs is not None and len(xs) != len(ys):
            raise DataError(f"{self._name}: {what} has {len(xs)} x values and {len(ys)} y values")
        if len(ys) == 0:
            raise DataError(f"{self._name}: {what} is an empty curve")
        return "curve", xs, ys

    def _values(self, what: str, value: Any) -> Any:
        """``value`` (an array, or a quantity of one) checked to hold real numbers; a quantity is kept."""
        magnitude = value.magnitude if is_quantity(value) else value
        try:
            array = np.asarray(magnitude)
        except Exception:
            raise DataError(
                f"{self._name}: {what}, {describe_value(value)}, is not an array of numbers"
            ) from None
        if array.dtype.kind not in "biuf":
            raise DataError(
                f"{self._name}: {what} is {array.dtype}; it draws real numbers (integers, floats, booleans)"
            )
        return value if is_quantity(value) else array

    def _magnitude(self, axis: int, value: Any, what: str) -> Any:
        """``value`` as a plain number or array in the unit of ``axis`` (under _lock: it may set it)."""
        unit = self._units[axis]
        name = "xy"[axis]
        if is_quantity(value):
            if unit is None:
                self._units[axis] = value.units
                self._options_changed()
                return value.magnitude
            try:
                return value.to(unit).magnitude
            except Exception:
                raise UnitError(
                    f"{self._name}: {what}: {name}={describe_value(value)} cannot be shown on an axis in "
                    f"{format(unit, '~P')}"
                ) from None
        if unit is not None:
            raise UnitError(
                f"{self._name}: {what}: {name}={describe_value(value)} has no unit, the axis is in "
                f"{format(unit, '~P')}"
            )
        return value

    def show(self, item: Any) -> None:  # as _Viewer.show, and the units are checked under the lock
        kind, xs, ys = self._check(item)
        with self._lock:
            self._raise_unusable()
            what = f"item {self._received}"
            units = list(self._units)
            version = self._version
            try:
                x = None if xs is None else self._magnitude(0, xs, what)
                y = self._magnitude(1, ys, what)
                if kind == "point":  # converted before anything changes: a refused point leaves no trace
                    x = None if x is None else self._float(x, item, what)
                    y = self._float(y, item, what)
            except (UnitError, DataError):
                self._units, self._version = units, version  # refused: the viewer is as it was
                raise
            self._store((kind, x, y))

    show.__doc__ = _Viewer.show.__doc__

    def _float(self, value: Any, item: Any, what: str) -> float:
        try:
            return float(value)
        except (OverflowError, ValueError, TypeError):
            raise DataError(
                f"{self._name}: {what}, {describe_value(item)}: {describe_value(value)} is too large to "
                "be drawn (beyond the range of a float)"
            ) from None

    def _accept(self, prepared: Tuple[str, Any, Any]) -> int:
        kind, x, y = prepared
        if kind == "point":
            if x is None:
                x, self._bare = self._bare, self._bare + 1
            dropped = 0
            if len(self._points) >= self._max_points:
                self._points.popleft()
                dropped = 1
            self._points.append((float(x), float(y)))
            return dropped
        dropped = self._pending()
        self._points.clear()
        self._curve = (x, y)
        return dropped

    def _replaces(self, prepared: Tuple[str, Any, Any]) -> bool:
        return prepared[0] == "curve"

    def _pending(self) -> int:
        return (0 if self._curve is None else 1) + len(self._points)

    def _take(self) -> Any:
        taken = (self._curve, list(self._points))
        self._curve = None
        self._points.clear()
        return taken

    def _discard(self) -> int:
        count = self._pending()
        self._curve = None
        self._points.clear()
        return count

    def _pack(self, taken: Any) -> Tuple[Dict[str, Any], Any]:
        curve, points = taken
        parts = []
        length = None
        if curve is not None:
            xs, ys = curve
            ys = np.asarray(ys, dtype=np.float64)
            xs = np.arange(len(ys), dtype=np.float64) if xs is None else np.asarray(xs, dtype=np.float64)
            step = math.ceil(len(ys) / self._max_points)
            xs, ys = xs[::step], ys[::step]
            length = len(ys)
            parts += [xs, ys]
        if points:
            parts.append(np.asarray(points, dtype=np.float64).ravel())
        payload = np.concatenate(parts) if parts else np.empty(0)
        return {"curve": length, "points": len(points)}, payload


def _is_number(value: Any) -> bool:
    """A real number, or a quantity of one; a boolean counts (drawn as 0 or 1), as in arrays."""
    magnitude = value.magnitude if is_quantity(value) else value
    if isinstance(magnitude, np.ndarray) and magnitude.ndim == 0:
        return magnitude.dtype.kind in "biuf"
    return isinstance(magnitude, (bool, np.bool_)) or is_real(magnitude)


def _shape(value: Any) -> str:
    try:
        return str(np.shape(value))
    except Exception:
        return "unknown"


def _close_all() -> None:
    """At interpreter exit: close every viewer still open, all at once, in :data:`EXIT_TIMEOUT` s in all.

    Each viewer draws what is pending until ``EXIT_TIMEOUT - 1`` s (or its
    own :attr:`~_Viewer.timeout`, if shorter), its process is told to end
    and is killed if it has not ended by ``EXIT_TIMEOUT``; waiting for the
    killed processes adds at most about a second, whatever the number of viewers.
    """
    with _open_lock:
        viewers = list(_open)
    if not viewers:
        return
    start = time.monotonic()
    ended_by = start + EXIT_TIMEOUT
    threads = []
    for viewer in viewers:
        drawn_by = min(start + viewer.timeout, ended_by - _EXIT_END)
        thread = threading.Thread(
            target=_close_at_exit, args=(viewer, drawn_by, ended_by), name=f"concert-close-{viewer}"
        )
        try:
            thread.start()
        except RuntimeError:  # no new threads at this point of the exit: close it here, same deadlines
            _close_at_exit(viewer, drawn_by, ended_by)
            continue
        threads.append(thread)
    for thread in threads:
        thread.join(max(0.0, ended_by + 3 * _KILL_MARGIN - time.monotonic()))


def _close_at_exit(viewer: _Viewer, drawn_by: float, ended_by: float) -> None:
    try:
        viewer._close(drawn_by, ended_by, max(0.0, drawn_by - time.monotonic()))
    except Exception:  # exit goes on, whatever a viewer does
        LOG.exception("%s: could not be closed at exit", viewer)


atexit.register(_close_all)
