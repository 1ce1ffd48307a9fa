"""What happens to running operations when a script ends with an uncaught Ctrl-C.

A script that ends normally waits for the operations it started (the pool's
threads are joined at exit). One that ends with an uncaught
``KeyboardInterrupt`` must not: before the interpreter exits, every Concert
operation still running or queued is asked to stop with reason ``Ctrl-C``
(stop actions run: motors stop part-way), and one line on stderr says what
was stopped. This is a :data:`sys.excepthook` wrapper, installed when the
pool is first created; it hands every exception on to the hook it found.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["install", "report_stopped", "stop_everything"]


_installed = False  # written once, by the thread that creates the pool (under its lock)


def stop_everything(reason: str) -> list:
    """Ask every operation the pool runs or has queued to stop; return their names."""
    from concert import executor
    from concert.futures import request_cancel_logged

    futures = [call.future for call in executor.running()]
    return [future.name for future in futures if request_cancel_logged(future, reason)]


def report_stopped(reason: str, stopped: list, what: str) -> None:
    """Write the one line saying what ``reason`` stopped (``what``: 'running operation(s)') to stderr."""
    if stopped:
        shown = ", ".join(stopped[:5]) + (f" and {len(stopped) - 5} more" if len(stopped) > 5 else "")
        sys.stderr.write(f"concert: {reason} stopped {len(stopped)} {what}: {shown}\n")
        sys.stderr.flush()


def _excepthook(kind: type, value: BaseException, traceback: Any) -> None:
    stopped = []
    if issubclass(kind, KeyboardInterrupt):
        stopped = stop_everything("Ctrl-C")
    _previous(kind, value, traceback)
    report_stopped("Ctrl-C", stopped, "running operation(s)")


_previous = sys.excepthook


def install() -> None:
    """Wrap :data:`sys.excepthook` (once)."""
    global _installed, _previous
    if not _installed:
        _installed = True
        _previous = sys.excepthook
        sys.excepthook = _excepthook
