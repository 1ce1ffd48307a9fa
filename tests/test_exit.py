"""Interpreter exit: queued messages are delivered, pending work finishes, nothing hangs."""

from __future__ import annotations

import time

from tests.conftest import run_python

PENDING_AT_EXIT = """
import sys, threading
from concert.helpers import async_, dispatcher

class Device:
    pass

device = Device()
delivered = []
slow = threading.Event()

def handler(sender):
    slow.wait(0.0005)          # a handler that takes a little while
    delivered.append(1)
    sys.stdout.write(f"message {len(delivered)}\\n")  # one write per line: threads share stdout
    sys.stdout.flush()

dispatcher.subscribe(device, "changed", handler)

@async_
def acquire(i):
    slow.wait(0.05)            # work still running when the script ends
    dispatcher.send(device, "changed")
    return i

futures = [acquire(i) for i in range(20)]   # never waited for
for _ in range(500):
    dispatcher.send(device, "changed")      # queued, never flushed
sys.stdout.write("script ends\\n")
sys.stdout.flush()
"""


def test_exit_delivers_queued_messages_and_finishes_pending_work():
    begin = time.monotonic()
    result = run_python(PENDING_AT_EXIT, timeout=60)
    elapsed = time.monotonic() - begin
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "script ends" in lines
    numbers = [int(line.split()[1]) for line in lines if line.startswith("message")]
    assert numbers == list(range(1, 521)), "every message, including those sent by work finishing at exit"
    assert elapsed < 30


STUCK_HANDLER = """
import threading
from concert.helpers import dispatcher

sender = object()
dispatcher.subscribe(sender, "m", lambda s: threading.Event().wait())   # never returns
for _ in range(3):
    dispatcher.send(sender, "m")
print("script ends", flush=True)
"""


def test_exit_does_not_hang_on_a_stuck_handler_and_reports_it():
    begin = time.monotonic()
    result = run_python(STUCK_HANDLER, {"CONCERT_EXIT_FLUSH_TIMEOUT": "0.5"}, timeout=60)
    elapsed = time.monotonic() - begin
    assert result.returncode == 0, result.stderr
    assert elapsed < 20
    assert "2 messages were still queued at exit" in result.stderr  # 3 sent, 1 stuck in delivery
