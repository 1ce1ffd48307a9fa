"""Ctrl-C that cannot tear Concert's bookkeeping in half: :func:`protected` code.

Python raises :class:`KeyboardInterrupt` in the main thread between almost
any two bytecodes. Most of Concert may be interrupted anywhere (a wait, a
move), but a few short steps must complete once begun: announcing a state
change, granting or releasing a lock, running the stop actions after a first
Ctrl-C. Functions decorated with :func:`protected` are such steps: a SIGINT
that arrives while one of them runs is held back and delivered again a
moment later, once no protected function is running any more: as the
first call made outside protected code (a profile hook installed only while
a signal is held back), and, should that not land, from a thread that sends
it again every :data:`RETRY_DELAY` until it does. Inside
protected code, the waits that must stay interruptible (the body of a
transition, a lock wait) are called through :func:`interruptibly`.

Whether the main thread is in protected code is decided when a SIGINT
arrives, from the frames it is executing: the innermost frame of a
:func:`protected` or :func:`interruptibly` function decides. So protection
costs nothing while no signal comes.

This works by replacing Python's default SIGINT handler
(:func:`signal.default_int_handler`) with one that behaves exactly like it
outside protected code. :func:`install` does so -- Concert calls it when it
creates its pool or a device -- and only while the default handler is the
one in place: a program that installs its own handler keeps it, and
protection then does nothing.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, TypeVar

__all__ = ["discard_held", "install", "interruptibly", "protected"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: code object -> True (protected) or False (interruptible); written at import
#: time by the decorators, read by the handler.
_MARKS: Dict[Any, bool] = {}

_MAIN = threading.main_thread()

# Owned by the main thread, which alone runs signal handlers: no lock needed.
_held = False  # a SIGINT was held back and is to be delivered again

#: Seconds until a held-back SIGINT is delivered again (and again, until it lands).
RETRY_DELAY = 0.001

#: Longest slice of a main-thread wait: a SIGINT that arrives just before the
#: thread blocks interrupts no system call, so it is handled when the slice ends.
SLICE = 0.1


def protected(func: _F) -> _F:
    """Mark ``func``: a Ctrl-C arriving while it runs waits until it has returned."""
    _MARKS[func.__code__] = True
    return func


def interruptibly(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func``; a Ctrl-C arriving while it runs is raised at once, even inside protected code."""
    return func(*args, **kwargs)


_MARKS[interruptibly.__code__] = False


def _in_protected_code(frame: Any) -> bool:
    while frame is not None:
        mark = _MARKS.get(frame.f_code)
        if mark is not None:
            return mark
        frame = frame.f_back
    return False


_resender_lock = threading.Lock()  # guards _resending
_resending = False  # a thread re-sends the held-back SIGINT until it lands


def _resend() -> None:
    """Re-send SIGINT to the main thread every RETRY_DELAY until it was delivered (or 10 s).

    One signal is not enough: a SIGINT noted while the main thread runs Python
    may not interrupt a wait it enters right after, so it is sent again until
    the handler has taken it.
    """
    global _resending
    deadline = time.monotonic() + 10.0
    while True:
        with _resender_lock:
            if not _held or time.monotonic() > deadline:
                _resending = False
                return
        try:
            signal.pthread_kill(_MAIN.ident, signal.SIGINT)
        except (OSError, ValueError):  # the main thread has ended
            with _resender_lock:
                _resending = False
            return
        time.sleep(RETRY_DELAY)


def _on_event(frame: Any, event: str, arg: Any) -> None:
    """Profile hook while a SIGINT is held: re-send it at the first call made outside protected code.

    The signal is then handled right here, in this hook, whose caller is
    not protected: the KeyboardInterrupt is raised at that call.
    """
    if not _held:
        sys.setprofile(None)
    elif not _in_protected_code(frame):
        sys.setprofile(None)
        try:
            signal.pthread_kill(_MAIN.ident, signal.SIGINT)
        except (OSError, ValueError):
            pass


def _handle_sigint(signum: int, frame: Any) -> None:
    global _held, _resending
    if _in_protected_code(frame):
        if sys.getprofile() is None:  # a profiler in use keeps its hook; the re-sender still works
            sys.setprofile(_on_event)
        with _resender_lock:
            _held = True
            start = not _resending
            _resending = True
        if start:
            try:
                threading.Thread(target=_resend, name="concert-sigint", daemon=True).start()
            except RuntimeError:  # interpreter shutdown: raise it now rather than lose it
                with _resender_lock:
                    _held = _resending = False
                raise KeyboardInterrupt from None
        return
    _held = False
    if sys.getprofile() is _on_event:
        sys.setprofile(None)
    raise KeyboardInterrupt


def install() -> None:
    """Put the protecting handler in place of Python's default SIGINT handler, if that is in place.

    Does nothing outside the main thread or when another handler is installed.
    """
    if threading.current_thread() is not _MAIN:
        return
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _handle_sigint)
    except (ValueError, TypeError):  # not the main interpreter
        pass


def acquire(lock: Any, timeout: Any = None) -> bool:
    """``lock.acquire(True, timeout)`` (seconds, ``None``: forever) that Ctrl-C ends at once.

    Ctrl-C raises from the wait itself, even inside protected code -- possibly
    just after the lock was acquired, so use it for private wake-up locks
    that are thrown away after the wait. In the main thread the wait is made in
    slices of :data:`SLICE` seconds, so that a SIGINT arriving just before
    it blocked is not held up for the whole wait.
    """
    if threading.current_thread() is not _MAIN:
        return lock.acquire(True, -1 if timeout is None else timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
        if remaining <= 0:
            return lock.acquire(False)
        if interruptibly(lock.acquire, True, remaining):
            return True


def discard_held() -> None:
    """Forget a Ctrl-C held back so far: the one being handled already stands for it."""
    global _held
    _held = False
