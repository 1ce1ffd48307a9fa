"""Dispatcher at the edges: exit, finalization, a refused thread, Ctrl-C. Nothing hangs or is lost unsaid.

Every test runs a fresh interpreter (a hang fails at the ``run_python``
timeout) and checks what it printed and logged, its exit code and how long it
took. The bounds on elapsed time are generous: they tell a bounded wait from a
hang, not a fast machine from a slow one.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.conftest import run_python

# A handler that blocks the delivery thread until the process ends.
STUCK_THEN_DISABLED = """
import logging, sys, threading, time
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
from concert import config
from concert.helpers import dispatcher

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()

sender = object()
started = threading.Event()

def stuck(s):
    started.set()
    threading.Event().wait()  # never returns

dispatcher.subscribe(sender, "m", stuck)
dispatcher.subscribe(sender, "later", lambda s: say("later delivered"))
dispatcher.send(sender, "m")
assert started.wait(30)
dispatcher.send(sender, "later")                     # queued behind the stuck handler
config.DISABLE_ASYNC = True
{body}
say("script ends")
"""

FLUSH_UNDER_DISABLE = """
begin = time.monotonic()
try:
    dispatcher.flush(timeout=0.5)
except TimeoutError as error:
    say(f"flush raised {type(error).__name__}: {error}")
say(f"flush took {time.monotonic() - begin:.1f} s")
"""

SEND_UNDER_DISABLE = """
dispatcher.sync_timeout = 0.5
begin = time.monotonic()
for name in ("sync-1", "sync-2", "sync-3"):
    dispatcher.send(sender, name)
say(f"sends took {time.monotonic() - begin:.1f} s")
"""


def _run(code, timeout_at_exit="0.5", timeout=30):
    begin = time.monotonic()
    result = run_python(code, {"CONCERT_EXIT_FLUSH_TIMEOUT": timeout_at_exit}, timeout=timeout)
    return result, time.monotonic() - begin


def test_flush_timeout_is_honoured_under_disable_behind_a_stuck_handler():
    result, elapsed = _run(STUCK_THEN_DISABLED.format(body=FLUSH_UNDER_DISABLE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    raised = [line for line in lines if line.startswith("flush raised")]
    assert raised and raised[0].startswith("flush raised WaitError")
    assert "not all delivered within 0.5 s" in raised[0]
    assert "stuck" in raised[0] and "'m'" in raised[0], "the error names the handler holding delivery up"
    took = float(next(line for line in lines if line.startswith("flush took")).split()[2])
    assert took < 5
    assert lines[-1] == "script ends" and "later delivered" not in lines
    # The exit is bounded by EXIT_FLUSH_TIMEOUT, and says what it could not deliver.
    assert "1 messages were still queued at exit after 0.5 s" in result.stderr
    assert "'later' from <object object" in result.stderr
    assert elapsed < 20


def test_synchronous_send_behind_a_stuck_handler_is_bounded_and_reported():
    result, elapsed = _run(STUCK_THEN_DISABLED.format(body=SEND_UNDER_DISABLE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    took = float(next(line for line in lines if line.startswith("sends took")).split()[2])
    assert took < 5, "one bounded wait for the stuck delivery, not one per send"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 3 and all("could not be delivered synchronously" in w for w in warnings)
    assert all("stuck" in w and "queued" in w for w in warnings)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1
    assert "4 messages were still queued at exit after 0.5 s" in errors[0]
    queued = ["'later'", "'sync-1'", "'sync-2'", "'sync-3'"]
    positions = [errors[0].index(name) for name in queued]
    assert positions == sorted(positions), "listed in the order they were sent"
    assert elapsed < 20


FINALIZING = """
import gc, logging, os, sys, threading
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
from concert.dispatcher import ANY, dispatcher

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()

def on_gone(sender):
    say(f"gone delivered in {{threading.current_thread().name}}, finalizing={{sys.is_finalizing()}}")

class Noisy:
    def __del__(self):
        say(f"__del__ runs, finalizing={{sys.is_finalizing()}}")
        dispatcher.send(self, "gone")
        say("send returned")

dispatcher.subscribe(ANY, "gone", on_gone)
{setup}
gc.disable()      # the cycle is collected by the interpreter's last collection, while it finalizes
noisy = Noisy()
noisy.cycle = noisy
del noisy
say("script ends")
"""

NO_THREAD_YET = ""
THREAD_RUNNING = """
dispatcher.send(object(), "warm-up")     # starts the delivery thread
dispatcher.flush(30)
"""
THREAD_STUCK = """
blocker, started = object(), threading.Event()
dispatcher.subscribe(blocker, "block", lambda s: (started.set(), threading.Event().wait()))
dispatcher.send(blocker, "block")
assert started.wait(30)
"""


@pytest.mark.parametrize("setup", [NO_THREAD_YET, THREAD_RUNNING], ids=["no-thread-yet", "thread-running"])
def test_send_from_del_at_interpreter_finalization_is_delivered_in_the_sending_thread(setup):
    result, elapsed = _run(FINALIZING.format(setup=setup))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "script ends",
        "__del__ runs, finalizing=True",
        "gone delivered in MainThread, finalizing=True",
        "send returned",
    ], result.stderr
    assert "ERROR" not in result.stderr
    assert elapsed < 20


def test_send_at_finalization_behind_a_stuck_handler_is_reported_lost():
    result, elapsed = _run(FINALIZING.format(setup=THREAD_STUCK))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == ["script ends", "__del__ runs, finalizing=True", "send returned"], result.stderr
    lost = [line for line in result.stderr.splitlines() if "'gone'" in line]
    assert len(lost) == 1 and lost[0].startswith("ERROR concert.dispatcher")
    assert "sent during interpreter exit, was not delivered and is lost" in lost[0]
    assert "'block'" in lost[0], "the error names the delivery that held it up"
    assert elapsed < 20


REFUSED_THREAD = """
import atexit, sys, threading

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()

def refuse(self):   # what Thread.start does at interpreter shutdown since Python 3.12
    raise RuntimeError("can't create new thread at interpreter shutdown")

threading.Thread.start = refuse
from concert.dispatcher import dispatcher

sender = object()
dispatcher.subscribe(
    sender, "m", lambda s: say(f"delivered in {threading.current_thread().name}")
)
dispatcher.send(sender, "m")
say("send returned")
dispatcher.flush(30)
say("flush returned")
atexit.register(dispatcher.send, sender, "m")   # runs before the dispatcher's own exit hook
say("script ends")
"""


def test_refused_delivery_thread_means_synchronous_delivery():
    result, elapsed = _run(REFUSED_THREAD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "delivered in MainThread",
        "send returned",
        "flush returned",
        "script ends",
        "delivered in MainThread",
    ], result.stderr
    assert result.stderr == ""
    assert elapsed < 20


HANDLERS_SENDING_AT_EXIT = """
import atexit, sys, threading
from concert.helpers import dispatcher

sender = object()
seen = []
gate = threading.Event()
dispatcher.subscribe(sender, "hold", lambda s: gate.wait(30))
dispatcher.send(sender, "hold")       # nothing is delivered before the script ends
atexit.register(gate.set)             # runs just before the dispatcher's exit hook

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()

def first(s):
    seen.append("a")
    dispatcher.send(s, "b")     # sent by a handler while the exit delivers the queue

dispatcher.subscribe(sender, "a", first)
dispatcher.subscribe(sender, "b", lambda s: say(f"b {seen.count('a')}"))
for _ in range(2000):
    dispatcher.send(sender, "a")   # queued, never flushed
say("script ends")
"""


def test_messages_sent_by_handlers_during_the_exit_are_delivered_too():
    result, elapsed = _run(HANDLERS_SENDING_AT_EXIT, timeout_at_exit="30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "script ends"
    assert lines[1:] == ["b 2000"] * 2000, "every 'b', each after all the 'a' queued before it"
    assert result.stderr == ""
    assert elapsed < 30


CTRL_C_WHILE_WAITING = """
import signal, sys, threading, time
from concert import config, interrupts
from concert.dispatcher import Dispatcher

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()

if {concert_handler}:
    interrupts.install()
messages = Dispatcher("ctrl-c", sync_timeout=60)
sender, started, gate = object(), threading.Event(), threading.Event()

def blocked(s):
    started.set()
    gate.wait(60)

messages.subscribe(sender, "a", blocked)
messages.subscribe(sender, "b", lambda s: say(f"b delivered in {{threading.current_thread().name}}"))
messages.send(sender, "a")
assert started.wait(30)
config.DISABLE_ASYNC = True
ctrl_c = threading.Timer(0.2, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
ctrl_c.start()
begin = time.monotonic()
try:
    messages.send(sender, "b")   # waits for the delivery thread: Ctrl-C ends the wait
    say("send returned")
except KeyboardInterrupt:
    took = time.monotonic() - begin
    say(f"KeyboardInterrupt, within 10 s: {{took < 10}}, lock held: {{messages._delivery_lock._is_owned()}}, "
        f"books say held: {{messages._holder == threading.get_ident()}}, queued {{messages.queued()}}")
gate.set()
messages.flush(30)
messages.send(sender, "b")
say("script ends")
"""


@pytest.mark.parametrize("concert_handler", [False, True], ids=["default-handler", "concert-handler"])
def test_ctrl_c_ends_a_synchronous_send_waiting_for_a_delivery(concert_handler):
    result, elapsed = _run(CTRL_C_WHILE_WAITING.format(concert_handler=concert_handler))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "KeyboardInterrupt, within 10 s: True, lock held: False, books say held: False, queued 0",
        "b delivered in MainThread",
        "script ends",
    ], result.stderr
    assert elapsed < 20


# Work that handlers start while the exit flush runs, and what it sends. An atexit
# function registered before concert is imported runs after the dispatcher's exit
# flush, and reports what was delivered by then.
WORK_STARTED_BY_HANDLERS_AT_EXIT = """
import atexit, sys, threading

def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()

counts = {{"b": 0}}
atexit.register(lambda: say(f"after the exit flush: {{counts['b']}} delivered"))

from concert.futures import async_
from concert.helpers import dispatcher

sender = object()
gate = threading.Event()
dispatcher.subscribe(sender, "hold", lambda s: gate.wait(30))
dispatcher.send(sender, "hold")       # nothing is delivered before the script ends
atexit.register(gate.set)             # runs just before the dispatcher's exit flush

@async_
def send_many(s):
    for _ in range(200):
        dispatcher.send(s, "b")

def on_b(s):
    counts["b"] += 1

def first(s):
    {handler_body}

dispatcher.subscribe(sender, "a", first)
dispatcher.subscribe(sender, "b", on_b)
dispatcher.send(sender, "a")          # delivered during the exit flush
say("script ends")
"""

needs_threads_in_atexit = pytest.mark.skipif(
    sys.version_info[:2] == (3, 12),
    reason="Python 3.12 starts no thread in atexit functions: no pool work there",
)


@needs_threads_in_atexit
@pytest.mark.parametrize(
    "handler_body",
    ["send_many(s)", "send_many(s).result(20)"],
    ids=["handler-starts-the-work", "handler-waits-for-the-work"],
)
def test_messages_sent_by_work_handlers_start_during_the_exit_flush_are_delivered(handler_body):
    result, elapsed = _run(
        WORK_STARTED_BY_HANDLERS_AT_EXIT.format(handler_body=handler_body), timeout_at_exit="30"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["script ends", "after the exit flush: 200 delivered"], result.stderr
    assert result.stderr == ""
    assert elapsed < 15, "a handler waiting for work that sends must not wait for its timeout"


STUCK_WORK_AT_EXIT = """
import sys, threading
from concert.futures import async_
from concert.helpers import dispatcher

@async_
def never_ends():
    threading.Event().wait()

sender = object()
dispatcher.subscribe(sender, "start", lambda s: never_ends())
gate = threading.Event()
dispatcher.subscribe(sender, "hold", lambda s: gate.wait(30))
dispatcher.send(sender, "hold")
import atexit
atexit.register(gate.set)
dispatcher.send(sender, "start")
print("script ends")
"""


@needs_threads_in_atexit
def test_work_handlers_started_that_outlives_the_exit_flush_is_reported():
    result, elapsed = _run(STUCK_WORK_AT_EXIT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["script ends"]
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line or "calls started" in line]
    assert len(errors) == 1, result.stderr
    assert "1 calls started by handlers were still running at exit after 0.5 s" in errors[0]
    assert "never_ends()" in errors[0]
    assert elapsed < 20
