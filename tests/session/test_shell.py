"""``concert start``: a real IPython shell under a real pty, driven with pexpect.

Every shell gets a temporary session directory, XDG data home and IPython
directory (no history, no colours, no confirmation on exit), ``TERM=xterm``
and ``PROMPT_TOOLKIT_NO_CPR=1``. Prompts are matched as ``In \\[n\\]:`` with
``n`` increasing; a key is sent only after a marker the cell prints (built
so that the echo of the typed line cannot match it). Every wait is bounded by
a pexpect timeout. The shells run in Concert's normal (threaded) mode
whatever mode the test process uses: ``CONCERT_*`` variables are not passed on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional

import pytest

pexpect = pytest.importorskip("pexpect")
pytest.importorskip("IPython")

#: Longest any one wait for the shell may take, in seconds.
WAIT = 8

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()=>][0-9A-Za-z]?|\r")

IPYTHON_CONFIG = """\
c = get_config()
c.HistoryManager.enabled = False
c.TerminalInteractiveShell.colors = "nocolor"
c.TerminalInteractiveShell.confirm_exit = False
c.TerminalInteractiveShell.term_title = False
c.TerminalInteractiveShell.autosuggestions_provider = None
"""

# A session with a slow motor (500 mm take 500 s: every move of these tests is stopped part-way),
# a valve that says when its emergency_stop() ran, and announce(): print a marker once the motor moves.
BEAMLINE = '''\
"""The test beamline: a slow motor and a valve."""

import asyncio
import threading

from concert.coroutines.aio import start
from concert.devices.base import Device
from concert.devices.motors.dummy import LinearMotor
from concert.polling import busy_wait
from concert.quantities import q
from concert.session.utils import abort_awaiting, code_of, ddoc, dstate, get_default_table, pdoc


class Valve(Device):
    """A valve that closes on an emergency stop."""

    def _emergency_stop(self):
        print("VALVE" + "-SHUT", flush=True)


motor = LinearMotor(motion_velocity=1 * q.mm / q.s)
valve = Valve()


def scan_sample(steps=3):
    """Scan the sample in steps."""
    return steps


def announce():
    """Print MOVING once the motor has left its place (from a thread: the cell may be blocked then)."""
    start = motor.position

    def wait():
        busy_wait(lambda: abs(motor.position - start) > 0.01 * q.mm, 0.001 * q.s, 10 * q.s)
        print("MOV" + "ING", flush=True)

    threading.Thread(target=wait, daemon=True).start()


async def ramp():
    """A background task: moves the motor far."""
    await motor.move(500 * q.mm)


def where():
    print("AT", motor.position.to(q.mm).magnitude, motor.state, flush=True)
'''


def clean(text: str) -> str:
    """Terminal output without escape sequences and carriage returns."""
    return ESCAPES.sub("", text)


@pytest.fixture
def env(tmp_path) -> Dict[str, str]:
    """The environment of a shell: temporary directories, a plain terminal, IPython without history."""
    ipython = tmp_path / "ipython"
    (ipython / "profile_default").mkdir(parents=True)
    (ipython / "profile_default" / "ipython_config.py").write_text(IPYTHON_CONFIG)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    environment.pop("COLUMNS", None)
    environment.pop("LINES", None)
    environment.update(
        CONCERT_SESSION_DIR=str(tmp_path / "sessions"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        IPYTHONDIR=str(ipython),
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
        NO_COLOR="1",
        CONCERT_PROGRESS_BAR="0",
    )
    (tmp_path / "sessions").mkdir()
    return environment


def write_session(env: Dict[str, str], name: str, source: str) -> Path:
    path = Path(env["CONCERT_SESSION_DIR"]) / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


class Shell:
    """``concert start ARGS`` under a pty; ``cell(code)`` runs a line and returns its output."""

    def __init__(self, env: Dict[str, str], *args: str, columns: int = 100) -> None:
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "concert", "start", *args],
            env=env,
            encoding="utf-8",
            timeout=WAIT,
            dimensions=(50, columns),
        )
        self.number = 0
        self.transcript: List[str] = []

    def prompt(self, again: bool = False) -> str:
        """Wait for the next prompt (``again``: the same one, redrawn); return the output before it."""
        if not again:
            self.number += 1
        self.child.expect(rf"In \[{self.number}\]:")
        output = clean(self.child.before)
        self.transcript.append(output)
        return output

    def cell(self, code: str) -> str:
        self.child.sendline(code)
        return self.prompt()

    def expect(self, pattern: str) -> str:
        """Wait for ``pattern`` in the output; return the output up to and including it."""
        self.child.expect(pattern)
        return clean(self.child.before + self.child.after)

    def exit(self) -> Optional[int]:
        self.child.sendline("exit")
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus

    def kill(self) -> None:
        if self.child.isalive():
            self.child.kill(signal.SIGKILL)
        self.child.close(force=True)


@pytest.fixture
def shells():
    """``shells(env, *args)`` starts a shell; every shell is killed at the end of the test."""
    started: List[Shell] = []

    def start(env: Dict[str, str], *args: str, **kwargs) -> Shell:
        shell = Shell(env, *args, **kwargs)
        started.append(shell)
        return shell

    yield start
    for shell in started:
        shell.kill()


def position(output: str) -> tuple:
    """The motor's position in mm and its state from the output of ``where()``."""
    found = re.search(r"AT (\S+) (\S+)", output)
    assert found, output
    return float(found.group(1)), found.group(2)


def command(env: Dict[str, str], *args: str, code: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run ``concert ARGS`` (or ``python -c code``) without a terminal."""
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "concert", *args]
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL
    )


# -- the session in the shell ------------------------------------------------------------------------------


def test_the_prompt_names_the_session_whose_names_and_helpers_work(env, shells):
    write_session(env, "beamline", BEAMLINE)
    shell = shells(env, "beamline")
    banner = shell.prompt()
    assert "session beamline" in banner and "Ctrl-K" in banner
    assert banner.endswith("beamline ")  # the prompt is "beamline In [1]: "

    assert "LinearMotor" in shell.cell("print(type(motor).__name__, __name__)")
    state = shell.cell("print(dstate())")
    assert re.search(r"\| motor +\| standby +\| motion_velocity = 1 mm/s", state), state
    assert re.search(r"\| valve +\| +\|", state), state
    widths = {len(line) for line in state.splitlines() if line.startswith("+-")}
    assert widths and max(widths) <= 100  # the table fits the pty's 100 columns
    docs = shell.cell("print(ddoc())")
    assert re.search(r"\| valve +\| Valve: A valve that closes on", docs), docs
    processes = shell.cell("print(pdoc())")
    assert "scan_sample(steps=3)" in processes and "Scan the sample in steps." in processes
    listed = re.findall(r"^\| (\w+) ", processes, re.MULTILINE)
    assert listed == ["Name", "announce", "ramp", "scan_sample", "where"], processes  # not helpers, nor open
    code = shell.cell("code_of(scan_sample)")
    assert 'def scan_sample(steps=3):\n    """Scan the sample in steps."""' in code
    table = shell.cell("t = get_default_table(['Name', 'Value']); t.add_row(['gap', '1 mm']); print(t)")
    assert re.search(r"\| gap +\| 1 mm +\|", table)
    aborted = shell.cell("f = motor.move(500 * q.mm); print('ABORTED', abort_awaiting() == [f])")
    assert "ABORTED True" in aborted
    assert position(shell.cell("import concurrent.futures as cf; cf.wait([f], 5); where()"))[1] == "standby"
    assert shell.exit() == 0


def test_without_a_session_the_shell_is_empty_and_logs_to_concert_log(env, shells):
    shell = shells(env, "--loglevel", "debug")
    assert "(empty)" in shell.prompt()
    names = shell.cell(
        "print('NAMES', [n for n in dir() if n[0] != '_' and n not in get_ipython().user_ns_hidden])"
    )
    assert "NAMES []" in names  # IPython's own names only
    shell.cell("import logging; logging.getLogger('beamline').debug('aligned the ' + 'sample')")
    assert shell.exit() == 0
    log = (Path(env["CONCERT_SESSION_DIR"]) / "concert.log").read_text()
    assert "beamline DEBUG: aligned the sample" in log
    assert "concert start: concert" in log


def test_the_log_can_go_to_stderr(env, shells):
    write_session(
        env, "beamline", '"""Logs."""\nimport logging\nlogging.getLogger("optics").warning("lens " + "hot")\n'
    )
    shell = shells(env, "beamline", "--logto", "stderr", "--loglevel", "warning")
    assert "optics WARNING: lens hot" in shell.prompt()
    assert shell.exit() == 0
    assert not (Path(env["CONCERT_SESSION_DIR"]) / "beamline.log").exists()


def test_a_file_outside_the_store_is_started_with_filename(env, shells, tmp_path):
    scan = tmp_path / "my_scan.py"
    scan.write_text("gap = 3\n")
    shell = shells(env, "--filename", str(scan))
    shell.prompt()
    assert "GAP 3 True" in shell.cell(f"print('GAP', gap, __file__ == {str(scan)!r})")
    assert shell.transcript[-1].endswith("my_scan ")
    assert shell.exit() == 0


def test_a_session_that_raises_at_start_up_shows_it_and_the_shell_opens(env, shells):
    write_session(
        env,
        "broken",
        '''\
        """Fails half-way, after a top-level await."""
        import asyncio

        before = 41
        await asyncio.sleep(0)


        def connect():
            raise RuntimeError("controller not " + "answering")


        connect()
        after = 1
        ''',
    )
    shell = shells(env, "broken")
    shown = shell.prompt()
    assert "Traceback (most recent call last):" in shown
    assert 'broken.py", line 9, in connect' in shown and "RuntimeError: controller not answering" in shown
    assert "concert/session" not in shown  # Concert's runner frames are left out
    assert "concert start: the session broken raised while starting" in shown
    assert "42 False" in shell.cell("print(before + 1, 'after' in dir())")
    assert shell.exit() == 0


def test_an_exception_shows_one_line_and_tb_the_whole_traceback(env, shells):
    write_session(env, "beamline", "def divide(a):\n    return a / 0\n")
    shell = shells(env, "beamline")
    shell.prompt()
    shown = shell.cell("divide(1)")
    error_lines = [line for line in shown.splitlines() if "Error" in line]
    assert error_lines == ["ZeroDivisionError: division by zero"], shown
    assert "Traceback" not in shown
    full = shell.cell("%tb")
    assert "Traceback (most recent call last)" in full
    assert "return a / 0" in full and "divide(1)" in full
    assert shell.exit() == 0


# -- the keys ----------------------------------------------------------------------------------------------


def test_ctrl_c_cancels_the_future_a_cell_waits_for_and_the_motor_stops_part_way(env, shells):
    write_session(env, "beamline", BEAMLINE)
    shell = shells(env, "beamline")
    shell.prompt()
    for waiting in (
        "motor.move(500 * q.mm).join()",
        "motor.position = 500 * q.mm",
        "await motor.move(500 * q.mm)",  # autoawait: the cell's task is cancelled, and with it the move
    ):
        shell.child.sendline(f"announce(); {waiting}")
        shell.expect("MOVING")
        shell.child.sendcontrol("c")
        shown = shell.prompt()
        assert "KeyboardInterrupt" in shown, (waiting, shown)
        assert "CancelledError" not in shown and "Traceback" not in shown, shown
        millimetres, state = position(shell.cell("where()"))
        assert state == "standby", waiting
        assert 0 < millimetres < 500, waiting
        shell.cell("motor.position = 0 * q.mm")
    assert shell.exit() == 0


def test_ctrl_k_at_the_prompt_stops_background_work_and_every_device(env, shells):
    write_session(env, "beamline", BEAMLINE)
    shell = shells(env, "beamline")
    shell.prompt()
    shell.cell("f = motor.move(500 * q.mm); task = start(ramp())")
    millimetres, state = position(
        shell.cell("busy_wait(lambda: motor.state == 'moving', 0.001 * q.s, 5 * q.s); where()")
    )
    assert state == "moving"
    shell.child.sendcontrol("k")
    stopped = shell.expect(r"concert: Ctrl-K [^\n]*\n")
    assert "VALVE-SHUT" in stopped  # the valve's emergency_stop() ran
    assert "stopped 2 device(s): motor, valve" in stopped
    assert "LinearMotor#1.move(+500 mm)" in stopped and "cancelled 1 task(s): ramp()" in stopped
    shell.prompt(again=True)  # the prompt is redrawn after the message
    done = shell.cell("await asyncio.wait([task], timeout=5); print('TASK', task.cancelled(), f.cancelled())")
    assert "TASK True True" in done
    assert "CancelledError: LinearMotor#1.move(+500 mm) was stopped by Ctrl-K" in shell.cell("f.result()")
    millimetres, state = position(shell.cell("where()"))
    assert state == "standby" and 0 < millimetres < 500

    # Nothing running: it still says so, and the devices are stopped all the same.
    shell.child.sendcontrol("k")
    assert "stopped 2 device(s): motor, valve" in shell.expect(r"concert: Ctrl-K [^\n]*\n")
    shell.prompt(again=True)
    # Background tasks advance while the prompt waits: a task started in one cell is done in the next.
    shell.cell("t = start(asyncio.sleep(0))")
    shell.cell("await asyncio.wait([t], timeout=5)")
    assert "DONE True" in shell.cell("print('DONE', t.done())")
    assert shell.exit() == 0


def test_ctrl_backslash_while_a_cell_runs_stops_everything_and_the_prompt_returns(env, shells):
    write_session(env, "beamline", BEAMLINE)
    shell = shells(env, "beamline")
    shell.prompt()
    shell.child.sendline("task = start(ramp()); announce(); motor.move(500 * q.mm).join()")
    shell.expect("MOVING")
    shell.child.sendcontrol("\\")
    shown = shell.prompt()
    assert re.search(
        r"concert: Ctrl-\\ stopped 2 device\(s\): motor, valve; cancelled \d operation\(s\)", shown
    )
    assert "VALVE-SHUT" in shown
    assert "CancelledError: LinearMotor#1.move(+500 mm) was stopped by Ctrl-\\" in shown
    millimetres, state = position(shell.cell("where()"))
    assert state == "standby" and 0 < millimetres < 500
    assert "TASK True" in shell.cell("await asyncio.wait([task], timeout=5); print('TASK', task.cancelled())")

    # A cell that waits on nothing of Concert's goes on (Ctrl-C ends it); the devices are stopped.
    shell.child.sendline("import time; print('SLE' + 'EPING'); time.sleep(60)")
    shell.expect("SLEEPING")
    shell.child.sendcontrol("\\")
    shell.expect("VALVE-SHUT")
    shell.child.sendcontrol("c")
    assert "KeyboardInterrupt" in shell.prompt()
    assert shell.exit() == 0


# A device slow to stop (its emergency_stop() takes 0.8 s, then prints a marker), and one that hangs
# in it until the shell ends.
SLOW_DEVICES = '''
import time


class Slow(Device):
    """A device whose emergency stop takes most of a second."""

    def _emergency_stop(self):
        time.sleep(0.8)
        print("SLOW" + "-DONE", flush=True)


class Hung(Device):
    """A device whose emergency stop never returns."""

    def _emergency_stop(self):
        print("HUNG" + "-STOPPING", flush=True)
        threading.Event().wait(60)
'''


def test_after_ctrl_backslash_the_prompt_waits_for_the_stop_and_new_work_runs(env, shells):
    write_session(env, "beamline", BEAMLINE + SLOW_DEVICES + "slow = Slow()\n")
    shell = shells(env, "beamline")
    shell.prompt()
    shell.child.sendline("announce(); motor.move(500 * q.mm).join()")
    shell.expect("MOVING")
    shell.child.sendcontrol("\\")
    shown = shell.prompt()
    # The prompt comes back once the stop is over: the slow device's stop, then the line, then the error.
    done = shown.index("SLOW-DONE")
    line = shown.index("concert: Ctrl-\\ stopped 3 device(s): motor, slow, valve; cancelled 1 operation(s)")
    error = shown.index("CancelledError: LinearMotor#1.move(+500 mm) was stopped by Ctrl-\\")
    assert done < line < error, shown
    assert "waiting for emergency_stop() of slow to return" in shown[:done]  # said while it waited
    # Work typed at the new prompt is new work: nothing of the stop cancels it.
    moved = shell.cell("motor['motion_velocity'].set(100 * q.mm / q.s).join(); motor.move(1 * q.mm).join()")
    assert "Cancelled" not in moved, moved
    assert position(shell.cell("where()"))[1] == "standby"

    # Ctrl-K at the prompt waits the same way: the line, then the prompt again.
    shell.child.sendcontrol("k")
    stopped = shell.expect(r"concert: Ctrl-K [^\n]*\n")
    assert "SLOW-DONE" in stopped and "stopped 3 device(s): motor, slow, valve" in stopped
    shell.prompt(again=True)
    assert shell.cell("motor.move(1 * q.mm).join(); print('MOV' + 'ED')").count("MOVED") == 1
    assert shell.exit() == 0


def test_ctrl_c_gives_up_waiting_for_a_stop_that_hangs_and_the_prompt_stays_usable(env, shells):
    write_session(env, "beamline", BEAMLINE + SLOW_DEVICES + "hung = Hung()\n")
    shell = shells(env, "beamline")
    shell.prompt()
    shell.cell("f = motor.move(500 * q.mm)")
    shell.child.sendcontrol("k")
    waiting = shell.expect(r"waiting for emergency_stop\(\) of hung to return \(Ctrl-C stops waiting")
    assert "HUNG-STOPPING" in waiting
    assert "VALVE-SHUT" in waiting  # the other devices are stopped meanwhile, not after the hung one
    shell.child.sendcontrol("c")
    given_up = shell.expect(r"concert: no longer waiting for Ctrl-K: [^\n]*\n")
    assert "emergency_stop() of hung has not returned yet" in given_up
    shell.prompt(again=True)
    # The prompt works, and later cells do not wait for the stop given up.
    assert "ALIVE True" in shell.cell("print('ALI' + 'VE', f.cancelled())")
    assert position(shell.cell("where()"))[1] == "standby"
    # Ctrl-\ while a cell runs: the same wait at the end of the cell, and Ctrl-C ends it.
    shell.child.sendline("announce(); motor.move(500 * q.mm).join()")
    shell.expect("MOVING")
    shell.child.sendcontrol("\\")
    shell.expect(r"waiting for emergency_stop\(\) of hung to return")
    shell.child.sendcontrol("c")
    shown = shell.prompt()
    assert "concert: no longer waiting for Ctrl-\\: emergency_stop() of hung has not returned yet" in shown
    assert "CancelledError: LinearMotor#1.move(+500 mm) was stopped by Ctrl-\\" in shown
    assert "ALIVE" in shell.cell("print('ALI' + 'VE')")


def test_ctrl_backslash_during_a_blocking_write_lists_the_write(env, shells):
    write_session(env, "beamline", BEAMLINE)
    shell = shells(env, "beamline")
    shell.prompt()
    shell.child.sendline("announce(); motor.position = 500 * q.mm")
    shell.expect("MOVING")
    shell.child.sendcontrol("\\")
    shown = shell.prompt()
    assert "cancelled 1 operation(s): LinearMotor#1.position = 500 mm" in shown, shown
    assert "CancelledError: LinearMotor#1.position = 500 mm was stopped by" in shown
    assert position(shell.cell("where()"))[1] == "standby"


def test_ctrl_c_while_the_session_starts_stops_what_it_started(env, shells):
    write_session(
        env,
        "starting",
        BEAMLINE + "\nimport time\n\nmove = motor.move(500 * q.mm)\nannounce()\ntime.sleep(100)\nafter = 1\n",
    )
    shell = shells(env, "starting")
    shell.expect("MOVING")
    shell.child.sendcontrol("c")
    shown = shell.prompt()
    assert re.search(
        r"concert start: the session starting was stopped by Ctrl-C while starting at starting\.py, "
        r"line \d+; stopped LinearMotor#1\.move\(\+500 mm\); the shell has the names it defined",
        shown,
    ), shown
    assert 'starting.py", line' in shown and "time.sleep(100)" in shown  # the session's line
    assert "concert/" not in shown  # no frame of Concert's: neither its runner nor its signal handler
    millimetres, state = position(shell.cell("print(move.cancelled(), 'after' in dir()); where()"))
    assert state == "standby" and 0 < millimetres < 500
    assert shell.exit() == 0


def test_the_session_imports_the_modules_beside_it(env, shells, tmp_path):
    (Path(env["CONCERT_SESSION_DIR"]) / "optics.py").write_text("FOCUS = 7\n")
    write_session(env, "beamline", "import optics\nfocus = optics.FOCUS\n")
    shell = shells(env, "beamline")
    shell.prompt()
    shown = shell.cell("import sys; print('FOCUS', focus, sys.path[0], sys.argv)")
    assert f"FOCUS 7 {env['CONCERT_SESSION_DIR']} ['{env['CONCERT_SESSION_DIR']}/beamline.py']" in shown
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "sample.py").write_text("NAME = 'lysozyme'\n")
    (tmp_path / "elsewhere" / "scan.py").write_text("import sample\n")
    other = shells(env, "--filename", str(tmp_path / "elsewhere" / "scan.py"))
    other.prompt()
    assert "NAME lysozyme" in other.cell("print('NAME', sample.NAME)")
    assert other.exit() == 0
    assert shell.exit() == 0


# -- without a terminal, and ended by a signal ------------------------------------------------------------


def test_without_a_terminal_the_shell_reads_plain_lines(env):
    write_session(env, "beamline", "gap = 6\n")
    result = subprocess.run(
        [sys.executable, "-m", "concert", "start", "beamline"],
        env=env,
        input="print('GAP', gap * 7)\n",
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0, result.stderr
    assert "GAP 42" in result.stdout
    assert result.stderr.strip() == (
        "concert start: a plain prompt (no terminal, or IPython's simple_prompt): Ctrl-K is not available; "
        "Ctrl-C and Ctrl-\\ are, and tasks advance only while a cell runs"
    ), result.stderr


def test_a_simple_prompt_still_stops_with_ctrl_c_and_ctrl_backslash(env, shells):
    config = Path(env["IPYTHONDIR"]) / "profile_default" / "ipython_config.py"
    config.write_text(IPYTHON_CONFIG + "c.TerminalInteractiveShell.simple_prompt = True\n")
    write_session(env, "beamline", BEAMLINE)
    shell = shells(env, "beamline")
    assert "Ctrl-K is not available" in shell.prompt()
    shell.child.sendline("announce(); motor.move(500 * q.mm).join()")
    shell.expect("MOVING")
    shell.child.sendcontrol("\\")
    shown = shell.prompt()
    assert "concert: Ctrl-\\ stopped 2 device(s): motor, valve; cancelled 1 operation(s)" in shown
    assert "CancelledError: LinearMotor#1.move(+500 mm) was stopped by Ctrl-\\" in shown
    shell.child.sendline("announce(); motor.move(-500 * q.mm).join()")
    shell.expect("MOVING")
    shell.child.sendcontrol("c")
    assert "KeyboardInterrupt" in shell.prompt()
    assert position(shell.cell("where()"))[1] == "standby"
    assert shell.exit() == 0


TERMINAL_FLAGS = r"stty -a | tr ' ' '\n' | grep -E '^-?(echo|icanon|isig)$' | tr '\n' ' '"


def test_exit_session_ends_the_shell_cleanly_and_puts_the_terminal_back(env):
    write_session(env, "beamline", BEAMLINE + "\nalarm = [False]\n")
    script = (
        f"{TERMINAL_FLAGS}; echo BEFORE; {sys.executable} -m concert start beamline; echo STATUS=$?; "
        f"{TERMINAL_FLAGS}; echo AFTER"
    )
    child = pexpect.spawn(
        "/bin/bash", ["--norc", "--noprofile", "-c", script], env=env, encoding="utf-8", timeout=WAIT
    )
    try:
        child.expect("BEFORE")
        before = clean(child.before).split()
        child.expect(r"In \[1\]:")
        child.sendline(
            "from concert.session.utils import check_emergency_stop; "
            "poll = check_emergency_stop(lambda: alarm[0], 0.01 * q.s, exit_session=True); "
            "f = motor.move(500 * q.mm)"
        )
        child.expect(r"In \[2\]:")
        child.sendline("alarm[0] = True")
        child.expect("AFTER")
        shown = clean(child.before)
    finally:
        child.close(force=True)
    assert "concert: emergency stop (<lambda>() became true) stopped 2 device(s): motor, valve" in shown
    assert (
        "concert start: beamline ended after emergency stop (<lambda>() became true) "
        "(check_emergency_stop(..., exit_session=True))"
    ) in shown
    assert "STATUS=143" in shown and "Traceback" not in shown
    after = shown.rsplit("STATUS=143", 1)[1].split()
    assert sorted(after) == sorted(before) == ["echo", "icanon", "isig"], (before, after)
    log = (Path(env["CONCERT_SESSION_DIR"]) / "beamline.log").read_text()
    assert "concert start: beamline ended" in log.splitlines()[-1]


def test_sighup_while_a_cell_runs_stops_its_move_and_ends_the_shell(env, shells):
    at_exit = "lambda motor=motor, mm=q.mm: print('AT', motor.position.to(mm).magnitude, motor.state)"
    write_session(env, "beamline", BEAMLINE + f"\nimport atexit\n\natexit.register({at_exit})\n")
    shell = shells(env, "beamline")
    shell.prompt()
    shell.child.sendline("announce(); motor.move(500 * q.mm).join()")
    shell.expect("MOVING")
    shell.child.kill(signal.SIGHUP)
    shell.child.expect(pexpect.EOF)
    shown = clean(shell.child.before)
    shell.child.close()
    assert shell.child.exitstatus == 128 + signal.SIGHUP, shown
    assert "concert start: beamline ended by SIGHUP" in shown
    millimetres, state = position(shown)
    assert state == "standby" and 0 < millimetres < 500


def test_leaving_the_shell_stops_what_still_runs(env, shells):
    write_session(env, "beamline", BEAMLINE)
    shell = shells(env, "beamline")
    shell.prompt()
    shell.cell("f = motor.move(500 * q.mm)")
    shell.child.sendline("exit")
    shell.child.expect(pexpect.EOF, timeout=WAIT)
    assert "concert: leaving the shell cancelled 1 operation(s): LinearMotor#1.move(+500 mm)" in clean(
        shell.child.before
    )
    shell.child.close()
    assert shell.child.exitstatus == 0


# -- one session at a time -----------------------------------------------------------------------------------


def test_a_second_start_of_a_running_session_is_refused(env, shells):
    write_session(env, "beamline", "gap = 1\n")
    first = shells(env, "beamline")
    first.prompt()
    pid = first.child.pid
    lock = Path(env["CONCERT_SESSION_DIR"]) / "beamline.pid"
    assert lock.read_text().split()[0] == str(pid)
    refused = command(env, "start", "beamline")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"concert start: the session 'beamline' is already running (PID {pid}); "
        "set MULTIINSTANCE = True in it to allow more than one"
    ), refused.stderr
    assert "Traceback" not in refused.stderr
    by_file = command(env, "start", "--filename", str(Path(env["CONCERT_SESSION_DIR"]) / "beamline.py"))
    assert by_file.returncode == 1 and by_file.stderr == refused.stderr  # the session's file is the session
    assert first.exit() == 0
    assert not lock.exists()  # released at exit: a new start works
    again = shells(env, "beamline")
    again.prompt()
    assert again.exit() == 0


def test_multiinstance_sessions_run_twice(env, shells):
    write_session(env, "beamline", '"""Twice."""\nMULTIINSTANCE = True\ngap = 2\n')
    first = shells(env, "beamline")
    first.prompt()
    second = shells(env, "beamline")
    second.prompt()
    assert "GAP 2" in second.cell("print('GAP', gap)")
    assert second.exit() == 0
    assert first.exit() == 0


def test_a_stale_lock_of_a_dead_process_is_taken_over(env, shells):
    write_session(env, "beamline", "gap = 1\n")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = Path(env["CONCERT_SESSION_DIR"]) / "beamline.pid"
    lock.write_text(dead.stdout)
    shell = shells(env, "beamline")
    shell.prompt()
    assert lock.read_text().split()[0] == str(shell.child.pid)
    assert shell.exit() == 0
    assert not lock.exists()


# -- wrong use: one line, exit status 1 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch"], "concert start: there is no session 'nosuch'"),
        (["my-session"], "concert start: 'my-session' is not a session name"),
        (["--filename", "/nonexistent/scan.py"], "concert start: cannot read /nonexistent/scan.py"),
        (["beamline", "--filename", "x.py"], "concert start: give a session name or --filename, not both"),
        (["beamline", "--loglevel", "loud"], "concert start: --loglevel 'loud': give one of debug, info"),
        (["beamline", "--logto", "printer"], "concert start: --logto 'printer': give stderr or file"),
    ],
)
def test_wrong_use_is_one_line_and_status_1(env, args, message):
    write_session(env, "beamline", "gap = 1\n")
    result = command(env, "start", *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(message), result.stderr


def test_without_ipython_the_shell_says_what_to_install(env):
    code = (
        "import sys; sys.modules['IPython'] = None; from concert.cli import main; sys.exit(main(['start']))"
    )
    result = command(env, code=code)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "concert start: the shell needs IPython: install concert[shell] (pip install 'concert[shell]')"
    ), result.stderr
