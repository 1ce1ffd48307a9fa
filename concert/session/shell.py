"""``concert start``: a session in an IPython shell, with the keys that stop the beamline.

``concert start [NAME] [--filename FILE]`` runs the session as the shell's
``__main__`` (its names are the shell's; a session that raises at start-up
shows its traceback and the shell opens with what it defined before) and
gives the prompt its name: ``mysession In [1]:``. Then:

* **Ctrl-C** while a cell waits on a Concert future (``motor.move(...).join()``,
  ``motor.position = ...``, ``await motor.move(...)``) cancels that future --
  its stop actions run, the motor stops where it is -- and the prompt
  returns.
* **Ctrl-K** at the prompt stops everything
  (:func:`concert.session.utils.stop_all`): every background Concert
  operation and every task started with :func:`concert.coroutines.aio.start`
  is cancelled, and ``emergency_stop()`` is called on every device of the
  session; one line says what was stopped. (It replaces the editor's
  kill-to-end-of-line on that key.)
* **Ctrl-\\\\** (SIGQUIT) does the same while a cell runs, when key bindings
  cannot fire; a cell waiting on a future that was stopped then ends with
  its ``CancelledError``. At the prompt it is the same key as Ctrl-K.
* An exception in a cell shows one line (IPython's ``Minimal`` mode);
  ``%tb`` shows the full traceback of the last one.

The asyncio loop the prompt runs in is the main thread's Concert loop
(:func:`concert.coroutines.aio.use_event_loop`), so tasks a cell starts
advance while the prompt waits for input. A session runs once at a time:
a second ``start`` of a running session is refused unless it sets
``MULTIINSTANCE = True`` (:func:`concert.session.running.session_lock`).

IPython (the ``shell`` extra) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable, MutableMapping, Optional

from concert.cli import SubCommand
from concert.exceptions import ConfigurationError
from concert.session import running
from concert.session.running import Session

__all__ = ["QuitKey", "StartCommand", "cell_runner"]

LOG = logging.getLogger(__name__)

#: What Ctrl-K and Ctrl-\ stop with: the reason the stopped operations' CancelledError names.
CTRL_K = "Ctrl-K"
CTRL_BACKSLASH = "Ctrl-\\"

#: The reason given to a cell's task (``await ...``) cancelled by Ctrl-C.
CTRL_C = "Ctrl-C"


def _stop_all(namespace: MutableMapping[str, Any], reason: str) -> None:
    from concert.session.utils import stop_all

    try:
        stop_all(namespace, reason)
    except Exception:  # a key must never take the shell down
        LOG.exception("%s: stopping the session failed", reason)


class QuitKey:
    """``Ctrl-\\`` (SIGQUIT) while the shell runs: stop everything, from a thread of its own.

    The signal handler only writes a byte into a pipe; a daemon thread
    started with the shell reads it and calls
    :func:`~concert.session.utils.stop_all`. The handler runs in the main
    thread wherever the signal interrupted it -- perhaps inside a lock that
    Concert, or ``threading`` itself, needs to stop the devices or to start
    a thread -- so it does nothing but that write. The pipe and the thread
    belong to this object; :meth:`close` puts the previous handler back.
    """

    def __init__(self, namespace: MutableMapping[str, Any], reason: str = CTRL_BACKSLASH) -> None:
        self._namespace = namespace
        self._reason = reason
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._thread = threading.Thread(target=self._serve, name="concert-ctrl-backslash", daemon=True)
        self._thread.start()
        self._previous = signal.signal(signal.SIGQUIT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        try:
            os.write(self._write, b"!")
        except (BlockingIOError, OSError):  # a full pipe holds presses enough already
            pass

    def _serve(self) -> None:
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data:  # closed
                return
            _stop_all(self._namespace, self._reason)

    def close(self) -> None:
        """Put the previous SIGQUIT handler back and end the thread."""
        signal.signal(signal.SIGQUIT, self._previous)
        os.close(self._write)
        self._thread.join(5)
        os.close(self._read)


class _Interrupted:
    """Whether the cell's task is being cancelled after Ctrl-C (main thread only)."""

    active = False


def cell_runner(coroutine: Any) -> Any:
    """IPython's loop runner for cells using ``await``: run them on the shell's Concert loop.

    On Ctrl-C the cell's task is cancelled -- a Concert future it awaits is
    then cancelled and its stop actions run -- and run until it has ended, so
    that the prompt returns once the operation has stopped. A second Ctrl-C
    meanwhile gives up waiting (the task ends in the background).
    """
    from concert.coroutines.aio import get_event_loop

    loop = get_event_loop()
    task = loop.create_task(coroutine)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        import asyncio

        if task.done():
            raise
        _Interrupted.active = True
        task.cancel(CTRL_C)
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:  # cancelled outside the cell's code: show the interrupt
            raise KeyboardInterrupt from None
        finally:
            _Interrupted.active = False


def _show_cancelled(shell: Any, kind: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    """Show a cell's CancelledError; after Ctrl-C show it as the KeyboardInterrupt it stands for."""
    if _Interrupted.active:
        interrupt = KeyboardInterrupt()
        interrupt.__traceback__ = tb
        shell.showtraceback((KeyboardInterrupt, interrupt, tb), tb_offset=tb_offset)
    else:
        shell.showtraceback((kind, value, tb), tb_offset=tb_offset)


def _banner(session: Session, ipython_version: str) -> str:
    from concert import __version__

    where = f" ({session.filename})" if session.path is not None else " (empty)"
    return (
        f"Concert {__version__} session {session.label}{where}, IPython {ipython_version}.\n"
        "Ctrl-C stops what a cell waits for; Ctrl-K (at the prompt) or Ctrl-\\ (while a cell runs) "
        "stops everything; %tb shows the last traceback.\n"
    )


def _make_shell() -> Any:
    """Make the IPython application; return it initialised (profile and configuration read), not started."""
    from IPython.terminal.ipapp import TerminalIPythonApp

    app = TerminalIPythonApp.instance()
    # Options on the command line win over every configuration file.
    app.initialize(argv=["--no-banner"])
    return app


def _configure(shell: Any, session: Session) -> None:
    """Prompt, keys, exception display, ``%tb`` and the asyncio loop of the shell."""
    from IPython.core.async_helpers import get_asyncio_loop
    from IPython.terminal.prompts import Prompts
    from prompt_toolkit.application import run_in_terminal
    from prompt_toolkit.key_binding import KeyBindings, merge_key_bindings
    from pygments.token import Token

    from concert.coroutines.aio import use_event_loop

    label = session.label

    class SessionPrompts(Prompts):
        """IPython's prompts with the session's name first: ``mysession In [1]:``."""

        def in_prompt_tokens(self) -> list:
            tokens = super().in_prompt_tokens()
            at = next((i for i, (token, text) in enumerate(tokens) if text.startswith("In [")), 0)
            return [*tokens[:at], (Token.Prompt, f"{label} "), *tokens[at:]]

        def out_prompt_tokens(self) -> list:
            return [(Token.OutPrompt, " " * (len(label) + 1)), *super().out_prompt_tokens()]

    shell.prompts = SessionPrompts(shell)

    # Exceptions: one line; %tb shows the whole traceback (IPython's own %tb, in Context mode).
    shell.InteractiveTB.set_mode(mode="Minimal")
    original_tb = shell.find_line_magic("tb")

    def tb(line: str = "") -> None:
        """Print the full traceback of the last exception (``%tb MODE`` for another mode)."""
        original_tb(line or "context")

    shell.register_magic_function(tb, "line", "tb")

    # The loop the prompt runs in is the one Concert's tasks run on.
    if shell.active_eventloop not in (None, "asyncio"):
        print(
            f"concert start: the IPython gui {shell.active_eventloop!r} is replaced by asyncio, "
            "which Concert's background tasks need",
            file=sys.stderr,
        )
        shell.enable_gui(None)
    shell.enable_gui("asyncio")
    use_event_loop(get_asyncio_loop())
    shell.loop_runner = cell_runner
    shell.autoawait = True
    import asyncio

    shell.set_custom_exc((asyncio.CancelledError,), _show_cancelled)

    # Ctrl-K (and Ctrl-\ at the prompt): stop everything, the prompt redrawn after the message.
    namespace = shell.user_ns
    keys = KeyBindings()

    def stop_key(reason: str) -> Callable[[Any], None]:
        def handler(event: Any) -> None:
            run_in_terminal(lambda: _stop_all(namespace, reason))

        return handler

    keys.add("c-k")(stop_key(CTRL_K))
    keys.add("c-\\")(stop_key(CTRL_BACKSLASH))
    shell.pt_app.key_bindings = merge_key_bindings([shell.pt_app.key_bindings, keys])


def _load(shell: Any, session: Session) -> None:
    """Run the session in the shell's namespace; print its traceback if it raises."""
    if not session.source:
        return
    try:
        running.run_source(session, shell.user_ns)
    except BaseException as error:  # the shell opens anyway, with what the session defined so far
        if isinstance(error, SystemExit) and error.code in (None, 0):
            return
        running.print_failure(error, session)
        what = "was stopped by Ctrl-C" if isinstance(error, KeyboardInterrupt) else "raised"
        print(
            f"concert start: the session {session.label} {what} while starting; "
            "the shell has the names it defined until then",
            file=sys.stderr,
            flush=True,
        )
        LOG.error("the session %s %s while starting", session.label, what, exc_info=error)


def _stop_leftovers() -> None:
    """At the end of the shell: stop the operations and tasks still running (the process ends next)."""
    if "concert.executor" not in sys.modules:
        return  # nothing Concert ever ran
    from concert import executor
    from concert.coroutines.aio import running_tasks

    if not executor.running() and all(task.done() for task in running_tasks()):
        return
    from concert.session.utils import stop_all

    stopped = stop_all({}, "leaving the shell", report=False)
    if stopped.operations or stopped.tasks:
        print(stopped.summary("leaving the shell"), file=sys.stderr, flush=True)


class StartCommand(SubCommand):
    """``concert start``."""

    name = "start"
    help = "start a session in an IPython shell"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("session", nargs="?", metavar="NAME", help="the session (default: an empty one)")
        parser.add_argument("--filename", metavar="FILE", help="start this Python file instead of a session")
        running.add_logging_arguments(parser)

    def run(
        self,
        session: Optional[str] = None,
        filename: Optional[str] = None,
        loglevel: str = "info",
        logto: str = "file",
    ) -> int:
        """Run the shell until the user leaves it; return 0.

        :raises ConfigurationError: IPython is not installed; a bad ``--loglevel`` or ``--logto``.
        :raises SessionStoreError: an unknown session, an unreadable file, or the session runs elsewhere.
        """
        try:
            import IPython
        except ImportError:
            raise ConfigurationError(
                "the shell needs IPython: install concert[shell] (pip install 'concert[shell]')"
            ) from None
        found = running.find_session(session, filename)
        with running.logging_to(found, loglevel, logto), running.session_lock(found):
            LOG.info("concert start: %s (%s), PID %d", found.label, found.filename, os.getpid())
            app = _make_shell()
            shell = app.shell
            _configure(shell, found)
            sys.stdout.write(_banner(found, IPython.__version__))
            sys.stdout.flush()
            quit_key = QuitKey(shell.user_ns)
            argv = sys.argv
            sys.argv = [str(found.path) if found.path is not None else ""]  # as python FILE, or python
            try:
                _load(shell, found)
                app.start()
            finally:
                sys.argv = argv
                quit_key.close()
                _stop_leftovers()
                LOG.info("concert start: %s ended", found.label)
        return 0
