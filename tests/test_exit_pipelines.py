"""Interpreter exit with broadcasts still running: accepted frames are written, or their loss is logged.

Each test runs a script in a fresh interpreter whose last line starts a
pipeline and does not wait for it.
"""

from __future__ import annotations

import os
import time

import pytest
import tifffile

from tests.conftest import run_python

FRAMES = """
import threading
import numpy as np

def frames(count):
    pace = threading.Event()
    for i in range(count):
        pace.wait(0.002)   # a camera: frames keep coming after the script's last line
        yield np.full((8, 12), i, dtype=np.uint16)
"""


def pages_in(directory):
    """The first pixel of every page of every TIFF file in ``directory``, in file name order."""
    pages = []
    for name in sorted(os.listdir(directory)):
        with tifffile.TiffFile(os.path.join(directory, name)) as tiff:  # a half-written file fails here
            pages.extend(int(page.asarray()[0, 0]) for page in tiff.pages)
    return pages


@pytest.mark.parametrize("prefix", ["frame_{:>04}.tif", "stack.tif"])
def test_a_broadcast_running_at_the_end_of_a_script_writes_every_frame(tmp_path, prefix):
    code = (
        FRAMES
        + f"""
import functools
from concert.pipelines import Average, broadcast
from concert.storage.writers import write_images

writer = functools.partial(write_images, prefix={str(tmp_path / "out" / prefix)!r})
broadcast(frames(50), writer, Average())
"""
    )
    result = run_python(code, timeout=60)
    assert result.returncode == 0, result.stderr
    assert pages_in(tmp_path / "out") == list(range(50))
    assert len(os.listdir(tmp_path / "out")) == (50 if "{" in prefix else 1)
    assert "lost" not in result.stderr, result.stderr


def test_a_broadcast_into_a_walker_and_a_pending_walker_write_both_finish(tmp_path):
    code = (
        FRAMES
        + f"""
from concert.pipelines import broadcast
from concert.storage import DirectoryWalker

walker = DirectoryWalker({str(tmp_path)!r})
walker.descend("pending").write(frames(50))                          # in the pool
walker.ascend()
broadcast(frames(50), lambda stream: walker.create_writer(stream, name="broadcast")())
"""
    )
    result = run_python(code, timeout=60)
    assert result.returncode == 0, result.stderr
    assert pages_in(tmp_path / "pending") == list(range(50))
    assert pages_in(tmp_path / "broadcast") == list(range(50))


def test_consumers_may_use_the_pool_and_the_dispatcher_while_exit_waits_for_them():
    code = """
import sys
from concert.futures import async_
from concert.helpers import dispatcher
from concert.pipelines import broadcast

class Detector:
    pass

detector = Detector()
dispatcher.subscribe(detector, "frame", lambda sender: sys.stdout.write("message\\n"))

@async_
def process(item):
    return item * 2

def consumer(items):
    total = 0
    for item in items:
        total += process(item).result(10)    # pool work after the main thread ended
        dispatcher.send(detector, "frame")   # delivered before the dispatcher's exit flush ends
    sys.stdout.write(f"total {total}\\n")

broadcast(range(100), consumer)
"""
    result = run_python(code, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "total 9900" in lines
    assert lines.count("message") == 100


def exit_seconds(code, env):
    """Run ``code``, which prints ``time.time()`` as its last act; return (result, seconds its exit took)."""
    result = run_python(code + "\nprint(time.time(), flush=True)\n", env=env, timeout=60)
    ended = time.time()
    return result, ended - float(result.stdout.split()[-1])


def test_a_stuck_consumer_cannot_hang_exit_and_its_loss_is_logged():
    code = """
import threading, time
import numpy as np
from concert.pipelines import broadcast

def stuck(items):
    for item in items:
        threading.Event().wait()   # a consumer waiting for ever, on a camera say

broadcast((np.zeros((2, 2)) for _ in range(50)), stuck, queue_size=4)
"""
    result, seconds = exit_seconds(code, {"CONCERT_EXIT_FLUSH_TIMEOUT": "0.5"})
    assert result.returncode == 0, result.stderr
    assert 0.4 < seconds < 0.5 + 5, seconds
    [line] = [line for line in result.stderr.splitlines() if "broadcast consumer stuck" in line]
    assert "was still running at exit after 0.5 s" in line
    assert "of the 5 items it was handed were not finished and are lost" in line
    assert "its producer had not ended" in line


def test_a_stuck_feed_queue_consumer_is_logged_too():
    code = """
import threading, time
from concert.pipelines import feed_queue

def stuck(items):
    items.get()
    threading.Event().wait()

feed_queue(range(10), stuck)
"""
    result, seconds = exit_seconds(code, {"CONCERT_EXIT_FLUSH_TIMEOUT": "0.5"})
    assert result.returncode == 0, result.stderr
    assert seconds < 0.5 + 5, seconds
    assert "feed_queue 'stuck' was still running at exit after 0.5 s: it was handed 10 items" in result.stderr


def test_a_script_ending_with_ctrl_c_stops_its_consumers_and_keeps_complete_files(tmp_path):
    code = f"""
import functools, itertools, threading
import numpy as np
from concert.pipelines import broadcast
from concert.storage.writers import write_images

def endless():
    pace = threading.Event()
    for i in itertools.count():
        pace.wait(0.002)
        yield np.full((8, 12), i % 65536, dtype=np.uint16)

[future] = broadcast(endless(), functools.partial(write_images, prefix={str(tmp_path / "f_{:>06}.tif")!r}))
threading.Event().wait(0.2)
raise KeyboardInterrupt
"""
    result = run_python(code, env={"CONCERT_EXIT_FLUSH_TIMEOUT": "20"}, timeout=60)
    assert result.returncode != 0
    assert "concert: Ctrl-C stopped 1 pipeline consumer(s): broadcast consumer write_images" in result.stderr
    assert "lost" not in result.stderr, result.stderr
    pages = pages_in(tmp_path)
    assert pages == list(range(len(pages))) and len(pages) > 0  # every file complete, none missing


def test_nothing_is_waited_for_when_every_consumer_has_finished():
    code = """
import time
from concert.pipelines import broadcast, null

for future in broadcast(range(10), null):
    future.result(10)
"""
    result, seconds = exit_seconds(code, {"CONCERT_EXIT_FLUSH_TIMEOUT": "30"})
    assert result.returncode == 0, result.stderr
    assert seconds < 10, seconds
    assert result.stderr == ""
