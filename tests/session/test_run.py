"""``concert run``: sessions and files run without a shell, in real subprocesses.

Each test has its own session directory and XDG data home. Ctrl-C is a real
SIGINT sent to the child once it has printed a marker (after its motor has
left its place), and every wait is bounded. The children run in Concert's
normal mode unless a test says otherwise: ``CONCERT_*`` variables of the
test process are not passed on.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict

import pytest

#: Longest any one wait for a child may take, in seconds.
WAIT = 8

# A slow motor (500 mm take 500 s: every move here is stopped part-way), a marker printed
# once it has left its place, and its state printed when the process ends, however it ends.
MOTOR = """\
import atexit
import threading

from concert.devices.motors.dummy import LinearMotor
from concert.polling import busy_wait
from concert.quantities import q

motor = LinearMotor(motion_velocity=1 * q.mm / q.s)
atexit.register(lambda: print("AT", motor.position.to(q.mm).magnitude, motor.state, flush=True))


def announce():
    def wait():
        busy_wait(lambda: motor.position > 0.01 * q.mm, 0.001 * q.s, 10 * q.s)
        print("MOVING", flush=True)

    threading.Thread(target=wait, daemon=True).start()
"""


@pytest.fixture
def env(tmp_path) -> Dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    for name in ("COLUMNS", "LINES"):
        environment.pop(name, None)
    environment.update(
        CONCERT_SESSION_DIR=str(tmp_path / "sessions"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        CONCERT_PROGRESS_BAR="0",
    )
    (tmp_path / "sessions").mkdir()
    return environment


def write_session(env: Dict[str, str], name: str, source: str) -> Path:
    path = Path(env["CONCERT_SESSION_DIR"]) / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def run(env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "concert", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        stdin=subprocess.DEVNULL,
    )


class Child:
    """``concert run ARGS`` in the background; :meth:`wait_for` a line, then signal it."""

    def __init__(self, env: Dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "concert", "run", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out = b""

    def wait_for(self, marker: str) -> None:
        """Read standard output until a line holds ``marker`` (at most WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while marker.encode() not in self.out:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    pytest.fail(f"no {marker!r} from the child within {WAIT} s; it wrote {self.out!r}")
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    pytest.fail(
                        f"the child ended before {marker!r}: {self.out!r} {self.process.stderr.read()!r}"
                    )
                self.out += chunk

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def finish(self) -> subprocess.CompletedProcess:
        out, err = self.process.communicate(timeout=WAIT)
        return subprocess.CompletedProcess(
            self.process.args, self.process.returncode, (self.out + out).decode(), err.decode()
        )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=WAIT)


@pytest.fixture
def children():
    started = []

    def start(env: Dict[str, str], *args: str) -> Child:
        child = Child(env, *args)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def stopped_at(out: str) -> tuple:
    found = re.search(r"^AT (\S+) (\S+)$", out, re.MULTILINE)
    assert found, out
    return float(found.group(1)), found.group(2)


# -- success, failure, exit status ---------------------------------------------------------------------


def test_a_session_runs_as_main_with_its_arguments_and_the_helpers_see_it(env):
    write_session(
        env,
        "beamline",
        '''\
        """Prints what it was given and the state of its devices."""
        import sys

        from concert.devices.motors.dummy import LinearMotor
        from concert.quantities import q
        from concert.session.utils import code_of, dstate, pdoc

        motor = LinearMotor(position=2 * q.mm)


        def align(tolerance=1):
            """Align the sample."""
            return tolerance


        if __name__ == "__main__":
            print("ARGS", sys.argv[1:], sys.argv[0].endswith("beamline.py"), __doc__.split(":")[0])
            print(dstate())
            print(pdoc())
            code_of(align)
        ''',
    )
    result = run(env, "beamline", "--energy", "20", "fast")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "ARGS ['--energy', '20', 'fast'] True Prints what it was given and the state of its devices." in (
        result.stdout
    )
    assert re.search(r"\| motor +\| standby +\| motion_velocity = 100 mm/s", result.stdout)
    assert re.search(r"\|\s+\|\s+\| position = 2 mm", result.stdout)
    tables = [line for line in result.stdout.splitlines() if line.startswith("+-")]
    assert tables and max(map(len, tables)) <= 80  # no terminal: shutil.get_terminal_size's 80 columns
    assert re.search(r"\| align +\| align\(tolerance=1\)", result.stdout)
    assert "dstate" not in result.stdout.split("| Description")[-1]  # the helpers are not processes
    assert (
        'def align(tolerance=1):\n    """Align the sample."""\n' in result.stdout
    )  # plain text: no terminal
    assert "\x1b[" not in result.stdout


def test_a_file_runs_with_its_arguments_and_its_directory_on_the_path(env, tmp_path):
    (tmp_path / "optics.py").write_text("FOCUS = 7\n")
    (tmp_path / "scan.py").write_text(
        "import sys\nimport optics\nprint('SCAN', sys.argv[1:], optics.FOCUS)\n"
    )
    result = run(env, str(tmp_path / "scan.py"), "a", "b")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "SCAN ['a', 'b'] 7\n"


def test_a_session_with_top_level_await_runs(env):
    write_session(
        env,
        "waiting",
        """\
        import asyncio

        from concert.devices.motors.dummy import LinearMotor
        from concert.quantities import q

        motor = LinearMotor()
        await motor.move(1 * q.mm)
        await asyncio.sleep(0)
        print("AT", motor.position)
        """,
    )
    result = run(env, "waiting")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "AT 1.0 millimeter\n"


def test_a_failing_session_prints_its_traceback_and_exits_1(env):
    write_session(
        env,
        "broken",
        """\
        def connect():
            raise ConnectionError("no answer from the " + "monochromator")


        print("BEFORE", flush=True)
        connect()
        print("AFTER")
        """,
    )
    result = run(env, "broken")
    assert result.returncode == 1
    assert result.stdout == "BEFORE\n"
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert 'broken.py", line 6, in <module>' in result.stderr and "line 2, in connect" in result.stderr
    assert "concert/" not in result.stderr  # Concert's own frames are left out
    assert last_line(result.stderr) == (
        "concert run: broken failed at broken.py, line 2: ConnectionError: no answer from the monochromator"
    )
    log = (Path(env["CONCERT_SESSION_DIR"]) / "broken.log").read_text()
    assert "concert run: broken (" in log and "ERROR: concert run: broken failed" in log
    assert 'broken.py", line 2, in connect' in log


def test_a_session_that_is_not_valid_python_is_refused_before_it_runs(env):
    path = write_session(env, "typo", "print('RAN')\nx = (1,\n")
    result = run(env, "typo")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"concert run: {path} line 2 is not valid Python: '(' was never closed\n"


@pytest.mark.parametrize(
    "code, status, stderr",
    [
        ("import sys; sys.exit(3)", 3, ""),
        ("import sys; sys.exit(0)", 0, ""),
        ("import sys; sys.exit('the beam is off')", 1, "the beam is off\n"),
        ("raise SystemExit", 0, ""),
    ],
)
def test_system_exit_is_honoured(env, code, status, stderr):
    write_session(env, "leaving", code + "\n")
    result = run(env, "leaving")
    assert result.returncode == status
    assert result.stderr == stderr


def test_a_normal_end_waits_for_the_work_left_running(env):
    write_session(
        env,
        "background",
        MOTOR
        + """
from concert.coroutines.aio import start

motor["motion_velocity"].set(10 * q.mm / q.s).join()
motor.move(1 * q.mm)  # 0.1 s, not joined
start(motor.move(1 * q.mm))  # a task: the loop runs it after the session's code
print("ENDED", flush=True)
""",
    )
    result = run(env, "background")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ENDED\n")
    assert stopped_at(result.stdout) == (2.0, "standby")


# -- Ctrl-C ---------------------------------------------------------------------------------------------


def test_ctrl_c_stops_the_motor_a_session_waits_for_and_exits_130(env, children):
    source = MOTOR + "\nannounce()\nmotor.move(500 * q.mm).join()\nprint('NEVER')\n"
    write_session(env, "scan", source)
    line = source.splitlines().index("motor.move(500 * q.mm).join()") + 1
    child = children(env, "scan")
    child.wait_for("MOVING")
    child.interrupt()
    result = child.finish()
    assert result.returncode == 130
    assert result.stderr == (
        f"concert run: scan stopped by Ctrl-C at scan.py, line {line}; stopped LinearMotor#1.move(+500 mm)\n"
    )
    millimetres, state = stopped_at(result.stdout)
    assert state == "standby" and 0 < millimetres < 500
    assert "NEVER" not in result.stdout


def test_ctrl_c_stops_background_operations_too(env, children):
    write_session(
        env,
        "background",
        MOTOR + "\nannounce()\nmotor.move(500 * q.mm)\nthreading.Event().wait(60)\n",
    )
    line = (MOTOR + "\nannounce()\nmotor.move(500 * q.mm)\n").count("\n") + 1
    child = children(env, "background")
    child.wait_for("MOVING")
    child.interrupt()
    result = child.finish()
    assert result.returncode == 130
    assert last_line(result.stderr) == (
        f"concert run: background stopped by Ctrl-C at background.py, line {line}; "
        "stopped LinearMotor#1.move(+500 mm)"
    )
    millimetres, state = stopped_at(result.stdout)
    assert state == "standby" and 0 < millimetres < 500


def test_ctrl_c_while_waiting_for_the_work_left_running_stops_it(env, children):
    write_session(env, "left", MOTOR + "\nannounce()\nmotor.move(500 * q.mm)\nprint('ENDED', flush=True)\n")
    child = children(env, "left")
    child.wait_for("ENDED")
    child.wait_for("MOVING")
    child.interrupt()
    result = child.finish()
    assert result.returncode == 130
    assert result.stderr == (
        "concert run: left stopped by Ctrl-C while it waited for its background work; "
        "stopped LinearMotor#1.move(+500 mm)\n"
    )
    millimetres, state = stopped_at(result.stdout)
    assert state == "standby" and 0 < millimetres < 500


def test_ctrl_c_during_top_level_await_cancels_the_move(env, children):
    write_session(env, "awaiting", MOTOR + "\nannounce()\nawait motor.move(500 * q.mm)\n")
    child = children(env, "awaiting")
    child.wait_for("MOVING")
    child.interrupt()
    result = child.finish()
    assert result.returncode == 130
    line = (MOTOR + "\nannounce()\n").count("\n") + 1
    assert result.stderr == (
        f"concert run: awaiting stopped by Ctrl-C at awaiting.py, line {line}; "
        "stopped LinearMotor#1.move(+500 mm)\n"
    )
    millimetres, state = stopped_at(result.stdout)
    assert state == "standby" and 0 < millimetres < 500


def test_ctrl_c_with_asynchronous_execution_disabled(env, children):
    env = dict(env, CONCERT_DISABLE_ASYNC="1")
    write_session(env, "inline", MOTOR + "\nannounce()\nmotor.move(500 * q.mm)\n")  # runs inline, blocking
    child = children(env, "inline")
    child.wait_for("MOVING")
    child.interrupt()
    result = child.finish()
    assert result.returncode == 130
    line = (MOTOR + "\nannounce()\n").count("\n") + 1
    assert result.stderr == (
        f"concert run: inline stopped by Ctrl-C at inline.py, line {line}; "
        "stopped LinearMotor#1.move(+500 mm)\n"
    )
    millimetres, state = stopped_at(result.stdout)
    assert state == "standby" and 0 < millimetres < 500


def test_a_multi_line_message_is_one_line_with_its_type(env):
    write_session(env, "broken", 'raise ValueError("bad value\\n  on two lines")\n')
    result = run(env, "broken")
    assert result.returncode == 1
    assert last_line(result.stderr) == (
        "concert run: broken failed at broken.py, line 1: ValueError: bad value on two lines"
    )


@pytest.mark.parametrize(
    "args, argv",
    [
        (["--", "x"], ["--", "x"]),
        (["a", "--", "--loglevel", "b"], ["a", "--", "--loglevel", "b"]),
        (["--help"], ["--help"]),
    ],
)
def test_the_arguments_reach_the_session_as_given(env, tmp_path, args, argv):
    (tmp_path / "show.py").write_text("import sys\nprint(sys.argv[1:])\n")
    result = run(env, str(tmp_path / "show.py"), *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{argv}\n"
    before = run(env, "--", str(tmp_path / "show.py"), *args)  # a `--` first ends concert's own options
    assert before.stdout == f"{argv}\n"


def test_without_a_session_it_says_what_to_give(env):
    result = run(env)
    assert result.returncode == 2
    assert result.stderr == (
        "concert run: give a session's name or a Python file (`concert run --help` shows the usage)\n"
    )


# A session that sends itself a real SIGINT at a chosen moment of an import: when numpy's C core,
# half initialised, imports its first module (numpy cannot be imported again after that import is
# cut short), or when pint is looked for (Concert's operations were never imported then).
INTERRUPTED_IMPORT = """\
import os
import signal
import sys

CORES = ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath")


class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if {when}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, Interrupt())
{imports}
print("NEVER")
"""
IN_NUMPY = 'name.startswith("numpy.") and any(core in sys.modules for core in CORES)'


@pytest.mark.parametrize(
    "when, imports",
    [
        (IN_NUMPY, "from concert.devices.motors.dummy import LinearMotor"),
        (IN_NUMPY, "import numpy"),
        ('name == "pint"', "import pint"),
    ],
    ids=["numpy-through-concert", "numpy", "pint-before-concert"],
)
def test_ctrl_c_while_the_session_imports_is_one_line_and_130(env, when, imports):
    source = INTERRUPTED_IMPORT.format(when=when, imports=imports)
    write_session(env, "importing", source)
    line = next(n for n, text in enumerate(source.splitlines(), 1) if "os.kill" in text)  # where it lands
    result = run(env, "importing")
    assert result.returncode == 130, result.stderr
    assert result.stderr == f"concert run: importing stopped by Ctrl-C at importing.py, line {line}\n"
    assert "NEVER" not in result.stdout


# -- one at a time, and wrong use ----------------------------------------------------------------------


def test_a_running_session_is_not_run_twice_unless_it_allows_it(env, children):
    write_session(env, "busy", "import threading\nprint('READY', flush=True)\nthreading.Event().wait(60)\n")
    first = children(env, "busy")
    first.wait_for("READY")
    refused = run(env, "busy")
    assert refused.returncode == 1
    assert refused.stderr == (
        f"concert run: the session 'busy' is already running (PID {first.process.pid}); "
        "set MULTIINSTANCE = True in it to allow more than one\n"
    )
    first.interrupt()
    assert first.finish().returncode == 130

    write_session(
        env,
        "shared",
        "MULTIINSTANCE = True\nimport threading\nprint('READY', flush=True)\nthreading.Event().wait(60)\n",
    )
    holder = children(env, "shared")
    holder.wait_for("READY")
    second = children(env, "shared")  # runs beside the first
    second.wait_for("READY")
    second.interrupt()
    holder.interrupt()
    assert second.finish().returncode == 130 and holder.finish().returncode == 130


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch"], "concert run: there is no session 'nosuch' (in "),
        (["no-such"], "concert run: 'no-such' is not a session name"),
        (
            ["/nonexistent/scan.py"],
            "concert run: cannot read /nonexistent/scan.py: No such file or directory",
        ),
        (["--loglevel", "loud", "beamline"], "concert run: --loglevel 'loud': give one of debug, info"),
        (["--logto", "printer", "beamline"], "concert run: --logto 'printer': give stderr or file"),
    ],
)
def test_wrong_use_is_one_line_and_status_1(env, args, message):
    write_session(env, "beamline", "print('RAN')\n")
    result = run(env, *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message), result.stderr


def test_a_directory_is_refused(env, tmp_path):
    result = run(env, str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == f"concert run: cannot run {tmp_path}: it is a directory, not a Python file\n"


def test_the_log_can_go_to_stderr(env):
    write_session(env, "noisy", "import logging\nlogging.getLogger('optics').info('lens ' + 'cool')\n")
    result = run(env, "--logto", "stderr", "noisy")
    assert result.returncode == 0
    assert re.search(r"optics INFO: lens cool$", result.stderr, re.MULTILINE)
    quiet = run(env, "--logto", "stderr", "--loglevel", "warning", "noisy")
    assert quiet.stderr == ""
