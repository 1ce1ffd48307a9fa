"""``concert start``: a session in an IPython shell, with the keys that stop the beamline.

``concert start [NAME] [--filename FILE]`` runs the session as the shell's
``__main__`` (its names are the shell's, its directory first on
``sys.path`` as for ``concert run``; a session that raises at start-up
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

The stop runs in a thread of its own (:class:`StopKeys`); the prompt does
not come back before it has ended -- a device slow to stop holds it, with a
line saying which -- and Ctrl-C gives up waiting for it (the stop goes on;
its line follows when it ends). SIGTERM and SIGHUP end the shell as
``exit`` does (:class:`EndSignals`), terminal restored.

The asyncio loop the prompt runs in is the main thread's Concert loop
(:func:`concert.coroutines.aio.use_event_loop`), so tasks a cell starts
advance while the prompt waits for input. A session runs once at a time:
a second ``start`` of a running session is refused unless it sets
``MULTIINSTANCE = True`` (:func:`concert.session.running.session_lock`).
Without a terminal (standard input not a tty) or with IPython's
``simple_prompt``, the shell reads plain lines: Ctrl-C and Ctrl-\\\\ work,
Ctrl-K does not (a line says so), and tasks advance only while a cell runs.

IPython (the ``shell`` extra) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, MutableMapping, Optional

from concert.cli import SubCommand
from concert.exceptions import ConfigurationError
from concert.session import running
from concert.session.running import Session

__all__ = ["EndSignals", "StartCommand", "StopKeys", "cell_runner"]

LOG = logging.getLogger(__name__)

#: What Ctrl-K and Ctrl-\ stop with: the reason the stopped operations' CancelledError names.
CTRL_K = "Ctrl-K"
CTRL_BACKSLASH = "Ctrl-\\"

#: The reason given to a cell's task (``await ...``) cancelled by Ctrl-C.
CTRL_C = "Ctrl-C"

#: Seconds a stop may take before a line says what it still waits for.
NOTICE_AFTER = 0.5

#: Longest a key at the prompt waits for the prompt to be taken away before it stops (seconds).
STOP_DELAY = 0.05

#: The line a plain prompt (standard input not a terminal, or IPython's simple_prompt) starts with.
PLAIN_PROMPT = (
    "concert start: a plain prompt (no terminal, or IPython's simple_prompt): Ctrl-K is not "
    "available; Ctrl-C and Ctrl-\\ are, and tasks advance only while a cell runs"
)

_CODES = {CTRL_K: b"k", CTRL_BACKSLASH: b"q"}  # a stop request in the pipe: one byte naming its key
_REASONS = {code[0]: reason for reason, code in _CODES.items()}


def _write_line(line: str, stream: Any = None) -> None:
    """Write one line to ``stream`` (standard error); a terminal gone away is no error."""
    try:
        stream = sys.stderr if stream is None else stream
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):  # no terminal any more (SIGHUP): the log has it
        pass


class _Stop:
    """One :func:`~concert.session.utils.stop_all` for a key, run in a thread of its own."""

    def __init__(self, keys: StopKeys, reason: str) -> None:
        self.reason = reason
        #: The devices whose emergency_stop() has not returned; replaced whole by the stop's thread.
        self.still: List[str] = []
        #: The shell gave up waiting for it (Ctrl-C): it is not waited for again. Under the keys' lock.
        self.abandoned = False
        self._keys = keys

    def start(self) -> None:
        thread = threading.Thread(target=self.run, name=f"concert-stop-{self.reason}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no new thread at interpreter shutdown: stop in this one
            self.run()

    def run(self) -> None:
        try:
            from concert.session.utils import stop_all

            stopped = stop_all(self._keys.namespace, self.reason, report=False, progress=self._progress)
            line = stopped.summary(self.reason)
            LOG.warning("%s", line)
        except BaseException as error:  # a key must never take the shell down
            LOG.exception("%s: stopping the session failed", self.reason)
            line = f"concert: {self.reason}: stopping failed ({type(error).__name__}: {error}; see the log)"
        self._keys._ended(self, line)

    def _progress(self, still: List[str]) -> None:
        self.still = list(still)


@contextlib.contextmanager
def _plain_output() -> Iterator[None]:
    """Standard output and error written straight to the terminal while the block runs.

    At the prompt they are prompt_toolkit's proxies, which hold what is
    written until the prompt is drawn again; while the shell waits for a
    stop the prompt is away, and what the devices print as they stop is
    shown as they print it, as in a cell.
    """
    saved = sys.stdout, sys.stderr
    if hasattr(saved[0], "original_stdout"):
        sys.stdout = saved[0].original_stdout or sys.__stdout__
    if hasattr(saved[1], "original_stdout"):
        sys.stderr = sys.__stderr__
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


class StopKeys:
    """Ctrl-K and Ctrl-\\ in the shell: stop everything, each press in a thread of its own.

    A press is a request: :meth:`request` (called by the key bindings at
    the prompt, and by the SIGQUIT handler while a cell runs) writes one
    byte into a pipe; a daemon thread reads it and starts a
    :func:`~concert.session.utils.stop_all` in a new thread. The signal
    handler runs in the main thread wherever the signal interrupted it --
    perhaps inside a lock that Concert, or ``threading`` itself, needs to
    stop the devices or to start a thread -- so it does nothing but that
    write. Each stop prints its one line when it ends, unless the prompt
    waits for it (then the prompt prints it, before it is drawn again).

    The shell waits for the stops: :meth:`wait` at the end of a cell (main
    thread), :meth:`wait_at_prompt` after a key at the prompt. Either says
    after :data:`NOTICE_AFTER` seconds which device it still waits for, and
    a Ctrl-C ends the wait with one line naming it; the stop goes on.

    The pipe and the threads belong to this object; :meth:`close` puts the
    previous SIGQUIT handler back.
    """

    def __init__(self, namespace: MutableMapping[str, Any]) -> None:
        self.namespace = namespace
        # Written only in the main thread (the signal handler and the key bindings run there).
        self._requested = 0  # requests written into the pipe
        self._abandon = False  # the prompt's wait is to end (Ctrl-C, or the shell ends)
        self._prompt_waiting = False  # the prompt waits for the stops: they leave their lines to it
        # Guarded by _changed: requests the reader started a stop for, the stops not ended yet, and
        # the lines of stops that ended while the prompt waited (the prompt prints them).
        self._changed = threading.Condition()
        self._taken = 0
        self._stops: List[_Stop] = []
        self._lines: List[str] = []
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._thread = threading.Thread(target=self._serve, name="concert-stop-keys", daemon=True)
        self._thread.start()
        self._previous = signal.signal(signal.SIGQUIT, self._on_sigquit)

    # -- requests ------------------------------------------------------------------------------------

    def request(self, reason: str) -> int:
        """Ask for a stop with ``reason`` (``Ctrl-K`` or ``Ctrl-\\``); main thread only, signal-safe.

        Returns the number of requests made so far.
        """
        try:
            os.write(self._write, _CODES.get(reason, b"q"))
        except OSError:  # a full pipe holds presses enough already
            return self._requested
        self._requested += 1
        return self._requested

    def _on_sigquit(self, signum: int, frame: Any) -> None:
        self.request(CTRL_BACKSLASH)

    def _serve(self) -> None:
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data:  # closed
                return
            reasons = dict.fromkeys(_REASONS.get(code, CTRL_BACKSLASH) for code in data)
            stops = [_Stop(self, reason) for reason in reasons]  # presses read together: one stop a key
            with self._changed:
                self._stops.extend(stops)
                self._taken += len(data)
                self._changed.notify_all()
            for stop in stops:
                stop.start()

    def _ended(self, stop: _Stop, line: str) -> None:
        """A stop's end, in its thread: its line out (or left to the prompt), then it counts as ended."""
        with self._changed:
            mine = not self._prompt_waiting
            if not mine:
                self._lines.append(line)
        if mine:  # written before the stop counts as ended: a cell's error shown after it comes after it
            _write_line(line)
        with self._changed:
            if stop in self._stops:
                self._stops.remove(stop)
            self._changed.notify_all()

    # -- waiting -------------------------------------------------------------------------------------

    def done(self, requests: Optional[int] = None) -> bool:
        """Whether the first ``requests`` requests (all so far by default) were taken and no stop runs."""
        target = self._requested if requests is None else requests
        with self._changed:
            return self._taken >= target and all(stop.abandoned for stop in self._stops)

    def still_stopping(self) -> str:
        """What the running stops wait for, for messages: ``emergency_stop() of zslow``."""
        with self._changed:
            stops = [stop for stop in self._stops if not stop.abandoned]
        names = list(dict.fromkeys(name for stop in stops for name in stop.still))
        if names:
            return f"emergency_stop() of {', '.join(names)}"
        if stops:
            return "the stop actions of the operations being cancelled"
        return "the stop"

    def _reasons(self) -> str:
        with self._changed:
            reasons = [stop.reason for stop in self._stops if not stop.abandoned]
        return "/".join(dict.fromkeys(reasons)) or CTRL_BACKSLASH

    def _notice(self) -> str:
        return (
            f"concert: {self._reasons()}: waiting for {self.still_stopping()} to return "
            "(Ctrl-C stops waiting; the stop goes on)"
        )

    def _given_up(self) -> str:
        """The line saying the shell no longer waits; the stops running are not waited for again."""
        line = (
            f"concert: no longer waiting for {self._reasons()}: {self.still_stopping()} has not "
            "returned yet; its line follows when it does"
        )
        with self._changed:
            for stop in self._stops:
                stop.abandoned = True
        return line

    def wait(self) -> None:
        """Wait until every stop requested so far has ended (main thread, between cells).

        After :data:`NOTICE_AFTER` seconds a line says what it still waits
        for; Ctrl-C ends the wait with one line (the stop goes on).
        """
        if self.done():
            return
        notice = time.monotonic() + NOTICE_AFTER
        try:
            while not self.done():  # a press meanwhile is waited for too
                with self._changed:
                    self._changed.wait(0.1)
                if notice is not None and time.monotonic() > notice:
                    notice = None
                    _write_line(self._notice())
        except KeyboardInterrupt:
            _write_line(self._given_up())

    def abandon(self) -> None:
        """End the prompt's wait (main thread: a key binding, or the shell ending)."""
        self._abandon = True

    async def wait_at_prompt(self, request: Callable[[], None] = lambda: None) -> None:
        """At the prompt, after a key: ``request()`` the stop, then wait in the terminal for its end.

        The prompt is taken away first (the terminal is as while a cell
        runs: what is typed is typed ahead, what the devices print as they
        stop is shown as they print it), and drawn again afterwards, below
        the stop's line. Ctrl-C ends the wait with one line.
        """
        import asyncio

        from prompt_toolkit.application import in_terminal

        if self._prompt_waiting:
            request()
            return  # the wait already going on covers this request too
        self._abandon = False
        self._prompt_waiting = True
        stream = sys.__stderr__
        try:
            async with in_terminal():
                with _plain_output():
                    request()
                    notice = time.monotonic() + NOTICE_AFTER
                    while True:
                        for line in self._take_lines():
                            _write_line(line, stream)
                        if self.done():  # a Ctrl-\\ meanwhile is waited for too
                            break
                        if self._abandon:
                            _write_line(self._given_up(), stream)
                            break
                        if notice is not None and time.monotonic() > notice:
                            notice = None
                            _write_line(self._notice(), stream)
                        await asyncio.sleep(0.02)
                    with self._changed:
                        self._prompt_waiting = False
                    for line in self._take_lines():
                        _write_line(line, stream)
        finally:
            with self._changed:
                self._prompt_waiting = False
            for line in self._take_lines():  # ended just now: shown above the prompt
                _write_line(line)

    def _take_lines(self) -> List[str]:
        with self._changed:
            lines, self._lines = self._lines, []
        return lines

    def key_bindings(self) -> Any:
        """The prompt's bindings: Ctrl-K and Ctrl-\\ stop everything; Ctrl-C ends the wait for a stop."""
        from prompt_toolkit.filters import Condition
        from prompt_toolkit.key_binding import KeyBindings

        keys = KeyBindings()

        def stop_key(reason: str) -> Callable[[Any], None]:
            def handler(event: Any) -> None:
                import asyncio

                requested = []

                def request() -> None:  # once: when the prompt is away, or after STOP_DELAY at most
                    if not requested:
                        requested.append(self.request(reason))

                asyncio.get_running_loop().call_later(STOP_DELAY, request)
                event.app.create_background_task(self.wait_at_prompt(request))

            return handler

        keys.add("c-k")(stop_key(CTRL_K))
        keys.add("c-\\")(stop_key(CTRL_BACKSLASH))
        waiting = Condition(lambda: self._prompt_waiting)

        @keys.add("<sigint>", filter=waiting)  # the terminal sends SIGINT while the prompt is away
        @keys.add("c-c", filter=waiting)
        def give_up(event: Any) -> None:
            self.abandon()

        return keys

    def close(self) -> None:
        """Put the previous SIGQUIT handler back and end the reading thread (stops still running go on)."""
        signal.signal(signal.SIGQUIT, self._previous)
        os.close(self._write)
        self._thread.join(5)
        os.close(self._read)


class _Ended(BaseException):
    """Raised at a plain (``simple_prompt``) prompt by SIGTERM/SIGHUP: the shell ends."""


class EndSignals:
    """SIGTERM and SIGHUP end the shell as ``exit`` does, whatever it is doing.

    At the prompt the prompt is ended (prompt_toolkit puts the terminal back
    the way it found it); while a cell runs the cell is interrupted as by
    Ctrl-C (the future it waits for is cancelled, its stop actions run);
    then the shell's normal end follows: the polls of
    :func:`~concert.session.utils.check_emergency_stop` end, the operations
    left running are stopped, the session's lock is released and the log's
    last line written.
    :func:`concert.session.utils.check_emergency_stop` with
    ``exit_session=True`` ends the shell this way. The handlers only set
    flags, write to the prompt loop's wake-up pipe or signal the main
    thread; :meth:`close` puts the previous handlers back.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __init__(self, shell: Any, keys: StopKeys, loop: Any = None) -> None:
        #: The signal that ended the shell, or ``None``; written by the handler (main thread).
        self.received: Optional[int] = None
        self._shell = shell
        self._keys = keys
        self._loop = loop
        self._at_prompt = False  # main thread only
        prompt, interact_once = shell.prompt_for_code, shell.interact

        def prompt_for_code() -> str:
            if self.received is not None:
                shell.keep_running = False
                return ""
            self._at_prompt = True
            try:
                return prompt()
            except _Ended:
                shell.keep_running = False
                return ""
            finally:
                self._at_prompt = False

        def interact() -> None:
            if self.received is None:  # IPython calls it again after a stray KeyboardInterrupt
                interact_once()
            _end_polls()  # before IPython empties the namespace their checks may look at

        shell.prompt_for_code = prompt_for_code
        shell.interact = interact
        self._restore = {"prompt_for_code": prompt, "interact": interact_once}
        self._previous: Dict[int, Any] = {}
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
        self._shell.keep_running = False
        self._keys.abandon()
        if self._at_prompt:
            if getattr(self._shell, "pt_app", None) is None:
                raise _Ended()
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._end_prompt)
            return
        try:  # a cell runs: interrupt it as Ctrl-C does (Concert's handler picks a safe moment)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        except (OSError, ValueError):
            pass

    def _end_prompt(self) -> None:
        """In the prompt's loop: end the prompt with an empty line (the loop then ends the shell)."""
        if not self._at_prompt:
            return
        app = getattr(self._shell.pt_app, "app", None)
        if app is not None and app.is_running and not app.is_done:
            try:
                app.exit(result="")
                return
            except Exception:  # not running after all: try again shortly
                pass
        elif app is not None and app.is_done:
            return
        self._loop.call_later(0.02, self._end_prompt)

    def close(self) -> None:
        """Put the previous handlers and the shell's own methods back."""
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        for name, original in self._restore.items():
            setattr(self._shell, name, original)

    def describe(self) -> str:
        """How the shell ended, for its last line: ``by SIGTERM`` or ``after ... (exit_session=True)``."""
        utils = sys.modules.get("concert.session.utils")
        reason = getattr(utils, "exit_reason", None)
        if reason and self.received == signal.SIGTERM:
            return f"after {reason} (check_emergency_stop(..., exit_session=True))"
        return f"by {signal.Signals(self.received).name}" if self.received else ""


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


def _configure(shell: Any, session: Session, keys: StopKeys) -> Any:
    """Prompt, keys, exception display, ``%tb`` and the asyncio loop of the shell; return that loop."""
    import asyncio
    import concurrent.futures

    from IPython.core.async_helpers import get_asyncio_loop
    from IPython.terminal.prompts import Prompts
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

    def show_cancelled(shell: Any, kind: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
        """A cell's CancelledError, after the stop that caused it ended; after Ctrl-C as KeyboardInterrupt."""
        keys.wait()  # the stop's line first, and the prompt only once the stop is over
        if _Interrupted.active:
            interrupt = KeyboardInterrupt()
            interrupt.__traceback__ = tb
            shell.showtraceback((KeyboardInterrupt, interrupt, tb), tb_offset=tb_offset)
        else:
            shell.showtraceback((kind, value, tb), tb_offset=tb_offset)

    shell.set_custom_exc((asyncio.CancelledError, concurrent.futures.CancelledError), show_cancelled)
    shell.events.register("post_run_cell", lambda result: keys.wait())
    shell.loop_runner = cell_runner
    shell.autoawait = True

    if shell.pt_app is None:  # a plain prompt: no terminal, or simple_prompt in the profile
        loop = get_asyncio_loop()
        use_event_loop(loop)
        return loop

    # The loop the prompt runs in is the one Concert's tasks run on.
    if shell.active_eventloop not in (None, "asyncio"):
        print(
            f"concert start: the IPython gui {shell.active_eventloop!r} is replaced by asyncio, "
            "which Concert's background tasks need",
            file=sys.stderr,
        )
        shell.enable_gui(None)
    shell.enable_gui("asyncio")
    loop = get_asyncio_loop()
    use_event_loop(loop)

    # Ctrl-K (and Ctrl-\ at the prompt): stop everything, the prompt redrawn after the message.
    from prompt_toolkit.key_binding import merge_key_bindings

    shell.pt_app.key_bindings = merge_key_bindings([shell.pt_app.key_bindings, keys.key_bindings()])
    return loop


def _load(shell: Any, session: Session) -> None:
    """Run the session in the shell's namespace; print its traceback if it raises.

    After a Ctrl-C every Concert operation and task it left running is
    stopped, as ``concert run`` does (:func:`concert.session.running.interrupted`).
    """
    if not session.source:
        return
    interrupt = running.Interrupt()
    try:
        running.run_source(session, shell.user_ns, interrupt)
    except BaseException as error:  # the shell opens anyway, with what the session defined so far
        if isinstance(error, SystemExit) and error.code in (None, 0):
            return
        if isinstance(error, KeyboardInterrupt):
            where, names = running.interrupted(session, error, interrupt)  # stop first, then talk
            what = f"was stopped by Ctrl-C while starting{where}" + (f"; stopped {names}" if names else "")
        else:
            what = "raised while starting"
        running.print_failure(error, session)
        print(
            f"concert start: the session {session.label} {what}; "
            "the shell has the names it defined until then",
            file=sys.stderr,
            flush=True,
        )
        LOG.error("the session %s %s", session.label, what, exc_info=error)


def _end_polls() -> None:
    """End the polls of check_emergency_stop(): the session is over."""
    utils = sys.modules.get("concert.session.utils")
    if utils is not None:  # else no poll was ever started
        utils._end_polls("leaving the shell")


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
        _write_line(stopped.summary("leaving the shell"))


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
        """Run the shell until the user leaves it; return 0, or 128 + the signal number after SIGTERM/SIGHUP.

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
            keys = StopKeys(shell.user_ns)
            ending = None
            try:
                loop = _configure(shell, found, keys)
                sys.stdout.write(_banner(found, IPython.__version__))
                sys.stdout.flush()
                if shell.pt_app is None:  # a plain prompt: no terminal, or simple_prompt in the profile
                    _write_line(PLAIN_PROMPT)
                ending = EndSignals(shell, keys, loop)
                with running.as_script(found):  # sys.argv and sys.path as `concert run` has them
                    _load(shell, found)
                    app.start()
            finally:
                if ending is not None:
                    ending.close()
                keys.close()
                _end_polls()
                _stop_leftovers()
            if ending is not None and ending.received is not None:
                line = f"concert start: {found.label} ended {ending.describe()}"
                LOG.warning("%s", line)
                _write_line(line)
                LOG.info("concert start: %s ended", found.label)
                return 128 + ending.received
            LOG.info("concert start: %s ended", found.label)
        return 0
