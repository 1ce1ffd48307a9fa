"""Ctrl-C that ends a script (SPEC §2a "Ctrl-C", issue 7 item 4): real SIGINTs sent to a child interpreter.

A script whose main thread ends with an uncaught ``KeyboardInterrupt`` while
Concert operations run must stop them (the motor stops part-way), exit
promptly and say what it stopped; a script that ends normally still waits
for its operations. The child cannot report after its death, so it prints
from an :mod:`atexit` handler, which runs after the pool's threads were
joined.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from tests.conftest import TIMEOUT

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")

_PROLOGUE = """
import atexit, sys, time
from concert import config
config.DISABLE_ASYNC = False
from concert.quantities import q
from concert.devices.motors.dummy import LinearMotor
from concert.polling import busy_wait

motor = LinearMotor(motion_velocity=1 * q.mm / q.s)
began = time.monotonic()


def report():
    position = motor._get_position().to(q.mm).magnitude
    print(f"at exit: position={position!r} state={motor.state} rate={motor._axis.rate()!r}", flush=True)
    print(f"at exit: elapsed={time.monotonic() - began!r}", flush=True)


atexit.register(report)
"""


def spawn(body: str) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    code = _PROLOGUE + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def wait_for_line(proc: subprocess.Popen, wanted: str) -> None:
    """Read the child's stdout until ``wanted`` (bounded: a reader thread and a timeout)."""
    seen = []
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            seen.append(line)
            if line.strip() == wanted:
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not found.wait(TIMEOUT):
        proc.kill()
        out, err = proc.communicate(timeout=TIMEOUT)
        pytest.fail(f"the child never printed {wanted!r}; stdout={''.join(seen) + out!r} stderr={err!r}")
    reader.join(TIMEOUT)


def at_exit(out: str) -> dict:
    values = {}
    for line in out.splitlines():
        if line.startswith("at exit: "):
            for pair in line[len("at exit: ") :].split():
                key, value = pair.split("=", 1)
                values[key] = value
    return values


def interrupt_and_collect(proc: subprocess.Popen):
    begin = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=TIMEOUT)
        pytest.fail(f"the child did not exit within {TIMEOUT} s of Ctrl-C; stdout={out!r} stderr={err!r}")
    return time.monotonic() - begin, out, err


STARTED_MOVE = """
future = motor.move(60 * q.mm)  # 60 s at 1 mm/s
busy_wait(lambda: motor._axis.rate() != 0, sleep_time=0.001, timeout=30)
print("moving", flush=True)
"""


@pytest.mark.parametrize(
    "idle",
    [
        "time.sleep(60)",
        "while True:\n    sum(range(100))",  # busy in plain Python, not in any wait
        "threading_event = __import__('threading').Event()\nthreading_event.wait(60)",
    ],
    ids=["sleep", "busy-loop", "event-wait"],
)
def test_ctrl_c_while_not_waiting_stops_the_running_move_and_exits_promptly(idle):
    proc = spawn(STARTED_MOVE + idle + "\n")
    wait_for_line(proc, "moving")
    elapsed, out, err = interrupt_and_collect(proc)
    assert elapsed < 15, f"the child needed {elapsed:.1f} s to exit after Ctrl-C; stderr={err!r}"
    assert proc.returncode != 0, (out, err)
    assert "KeyboardInterrupt" in err, err
    lines = [line for line in err.splitlines() if line.startswith("concert: Ctrl-C stopped")]
    assert lines, f"no summary line on stderr: {err!r}"
    assert lines[0].startswith("concert: Ctrl-C stopped 1 running operation(s): LinearMotor#1.move("), lines
    values = at_exit(out)
    assert values, f"the atexit handler did not run: {out!r} {err!r}"
    position = float(values["position"])
    assert 0 < position < 60, f"the motor was not stopped part-way: {values}"
    assert values["state"] == "standby", values
    assert float(values["rate"]) == 0.0, values


def test_ctrl_c_while_not_waiting_stops_a_move_queued_behind_the_running_one():
    proc = spawn(
        STARTED_MOVE
        + """
second = motor.move(60 * q.mm)  # queued in the motor's slot behind the first
print("queued", flush=True)
time.sleep(60)
"""
    )
    wait_for_line(proc, "queued")
    elapsed, out, err = interrupt_and_collect(proc)
    assert elapsed < 15, f"the child needed {elapsed:.1f} s to exit after Ctrl-C; stderr={err!r}"
    assert "KeyboardInterrupt" in err, err
    lines = [line for line in err.splitlines() if line.startswith("concert: Ctrl-C stopped")]
    assert lines and lines[0].startswith(
        "concert: Ctrl-C stopped 2 running operation(s): LinearMotor#1.move("
    ), err
    values = at_exit(out)
    position = float(values["position"])
    assert 0 < position < 60, f"the queued move ran after Ctrl-C (or the first was not stopped): {values}"
    assert values["state"] == "standby", values


def test_script_that_ends_normally_still_waits_for_its_running_move():
    proc = spawn(
        """
future = motor.move(0.5 * q.mm)  # 0.5 s at 1 mm/s
print("moving", flush=True)
"""
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=TIMEOUT)
        pytest.fail(f"the child did not end: {out!r} {err!r}")
    assert proc.returncode == 0, err
    assert "concert: Ctrl-C" not in err, err
    values = at_exit(out)
    assert float(values["position"]) == 0.5, f"the move did not complete before exit: {values} {err!r}"
    assert values["state"] == "standby", values
    assert float(values["elapsed"]) >= 0.45, values
