"""Walkers: moving, background writes, never overwriting, never leaving the root, JSON and log files."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import uuid
from concurrent.futures import CancelledError

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concert.exceptions import StorageError
from concert.futures import Future
from concert.storage import DirectoryWalker, DummyWalker, LoggingHandlerCloser, Walker, WriteJob, read_image
from tests.conftest import TIMEOUT


def frames(count: int = 3, shape=(4, 6), dtype=np.uint16):
    return [np.full(shape, i, dtype=dtype) for i in range(count)]


def snapshot(directory) -> dict:
    """Path -> content (bytes, link target or None for directories) of everything below ``directory``."""
    result = {}
    for where, dirs, files in os.walk(directory):
        for name in dirs:
            path = os.path.join(where, name)
            result[path] = ("link", os.readlink(path)) if os.path.islink(path) else None
        for name in files:
            path = os.path.join(where, name)
            if os.path.islink(path):
                result[path] = ("link", os.readlink(path))
            else:
                with open(path, "rb") as stream:
                    result[path] = stream.read()
    return result


@pytest.fixture
def tree(tmp_path):
    """A root for the walker and, beside it, a directory that must stay empty."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


@pytest.fixture
def logger_name():
    return f"concert.test.storage.{uuid.uuid4().hex}"


# -- moving -------------------------------------------------------------------------------------


def test_walker_is_abstract():
    with pytest.raises(TypeError):
        Walker("root")


def test_directory_walker_creates_its_root_with_rights(tmp_path):
    walker = DirectoryWalker(str(tmp_path / "a" / "root"), rights="700")
    assert walker.root == str(tmp_path / "a" / "root") == walker.current
    assert stat.S_IMODE((tmp_path / "a" / "root").stat().st_mode) == 0o700


def test_default_root_is_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert DirectoryWalker().root == os.path.realpath(str(tmp_path))


def test_descend_ascend_home_return_the_walker_and_move(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root), rights="750")
    assert walker.descend("a") is walker
    assert walker.current == str(root / "a")
    assert walker.descend("b/c").current == str(root / "a" / "b" / "c")
    assert stat.S_IMODE((root / "a" / "b").stat().st_mode) == 0o750
    assert walker.ascend() is walker and walker.current == str(root / "a" / "b")
    assert walker.home() is walker and walker.current == str(root)
    assert walker.descend("a").descend("b").current == str(root / "a" / "b")
    assert walker.exists() and walker.home().exists("a", "b", "c") and not walker.exists("a", "z")


def test_ascend_at_the_root_raises(tree):
    walker = DirectoryWalker(str(tree[0]))
    with pytest.raises(StorageError, match="root"):
        walker.ascend()
    assert walker.current == str(tree[0])


def test_descend_into_a_file_raises(tree):
    root, _ = tree
    (root / "file").write_bytes(b"keep")
    walker = DirectoryWalker(str(root))
    with pytest.raises(StorageError, match="not a directory"):
        walker.descend("file")
    assert walker.current == str(root)
    assert (root / "file").read_bytes() == b"keep"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dsetname": "sub/frame_{}.tif"}, "dsetname"),
        ({"dsetname": "../frame_{}.tif"}, "dsetname"),
        ({"dsetname": "frame_{.tif"}, "format string"),
        ({"dsetname": ""}, "dsetname"),
        ({"rights": "888"}, "rights"),
        ({"start_index": -1}, "start_index"),
        ({"bytes_per_file": -5}, "bytes_per_file"),
        ({"writer": "TiffWriter"}, "writer"),
    ],
)
def test_invalid_walker_arguments(tmp_path, kwargs, message):
    with pytest.raises(StorageError, match=message):
        DirectoryWalker(str(tmp_path / "root"), **kwargs)
    assert not (tmp_path / "root").exists()


# -- writing ------------------------------------------------------------------------------------


def test_write_returns_a_future_of_the_frame_count(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root)).descend("flats")
    future = walker.write(iter(frames(3)))
    assert isinstance(future, Future)
    assert future.result(TIMEOUT) == 3
    assert sorted(os.listdir(root / "flats")) == [f"frame_{i:>06}.tif" for i in range(3)]
    for i, frame in enumerate(frames(3)):
        np.testing.assert_array_equal(read_image(str(root / "flats" / f"frame_{i:>06}.tif")), frame)


def test_walker_options_reach_the_writer(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root), dsetname="scan_{:>03}.tif", start_index=100, bytes_per_file=2 * 48)
    walker.write(frames(5)).join(TIMEOUT)
    assert sorted(os.listdir(root)) == ["scan_100.tif", "scan_101.tif", "scan_102.tif"]
    with tifffile.TiffFile(str(root / "scan_100.tif")) as tiff:
        assert len(tiff.pages) == 2
    walker.write(frames(2), dsetname="other.tif").join(TIMEOUT)
    assert read_image(str(root / "other.tif")).shape == (2, 4, 6)


def test_a_write_keeps_its_directory_while_the_walker_moves_on(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    first = walker.descend("darks").write(frames(2))
    second = walker.ascend().descend("flats").write(frames(3))
    walker.home()
    assert (first.result(TIMEOUT), second.result(TIMEOUT)) == (2, 3)
    assert len(os.listdir(root / "darks")) == 2 and len(os.listdir(root / "flats")) == 3


def test_a_running_write_does_not_follow_the_walker(tree, asynchronous):
    root, _ = tree
    walker = DirectoryWalker(str(root)).descend("first")
    started, release = threading.Event(), threading.Event()

    def gated():
        yield np.zeros((2, 2), np.uint8)
        started.set()
        assert release.wait(TIMEOUT)
        yield np.ones((2, 2), np.uint8)

    future = walker.write(gated())
    try:
        assert started.wait(TIMEOUT)
        walker.ascend().descend("second")
        assert walker.write(frames(1)).result(TIMEOUT) == 1
    finally:
        release.set()
    assert future.result(TIMEOUT) == 2
    assert sorted(os.listdir(root / "first")) == ["frame_000000.tif", "frame_000001.tif"]
    assert os.listdir(root / "second") == ["frame_000000.tif"]


def test_cancelling_a_write_stops_it_and_keeps_what_was_taken(tree, asynchronous):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    taken = []
    enough = threading.Event()

    def endless():
        while True:
            taken.append(len(taken))
            if len(taken) == 3:
                enough.set()
            yield np.full((2, 2), len(taken), np.uint8)

    future = walker.write(endless())
    assert enough.wait(TIMEOUT)
    assert future.cancel()
    assert future.cancelled()
    names = sorted(os.listdir(root))
    assert len(names) == len(taken)  # every frame taken from the producer was written
    for number, name in enumerate(names):
        assert read_image(str(root / name))[0, 0] == number + 1


def asks_to_stop_at(count, number, reason="abort()"):
    """Frames 0, 1, ...; before yielding frame ``number`` it asks its own write to stop (both modes)."""
    from concert.futures import current_future

    for i in range(count):
        if i == number:
            current_future().request_cancel(reason)  # the producer runs in the write itself
        yield np.full((4, 6), i, np.uint16)


@pytest.mark.parametrize("bytes_per_file", [0, 3 * 4 * 6 * 2])
def test_a_cancelled_write_keeps_complete_files_of_every_frame_taken(tree, bytes_per_file):
    root, _ = tree
    walker = DirectoryWalker(str(root), bytes_per_file=bytes_per_file)
    future = walker.write(asks_to_stop_at(100, 4))
    with pytest.raises(CancelledError, match=r"^write_dataset\(.*\) was stopped by abort\(\)$"):
        future.result(TIMEOUT)
    assert future.cancelled()
    pages = []
    for name in sorted(os.listdir(root)):
        with tifffile.TiffFile(str(root / name)) as tiff:  # a half-written file would not read
            pages.extend(int(page.asarray()[0, 0]) for page in tiff.pages)
    assert pages == [0, 1, 2, 3, 4]  # frame 4, taken after the request, is written too
    assert len(os.listdir(root)) == (5 if bytes_per_file == 0 else 2)


def test_a_cancelled_dummy_write_keeps_what_it_took():
    walker = DummyWalker()
    future = walker.write(asks_to_stop_at(100, 2, "emergency_stop()"))
    with pytest.raises(CancelledError, match=r"was stopped by emergency_stop\(\)"):
        future.result(TIMEOUT)
    assert [int(frame[0, 0]) for frame in walker.data["frames"]] == [0, 1, 2]


def test_a_frame_arriving_after_the_request_is_still_written(tree, asynchronous):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    waiting, gate = threading.Event(), threading.Event()

    def slow_camera():
        yield np.zeros((2, 2), np.uint8)
        waiting.set()
        assert gate.wait(TIMEOUT)  # the write waits for this frame when it is asked to stop
        yield np.ones((2, 2), np.uint8)
        yield np.full((2, 2), 2, np.uint8)

    future = walker.write(slow_camera())
    assert waiting.wait(TIMEOUT)
    assert future.request_cancel("cancel()")  # nothing to interrupt: it stops at its next check
    gate.set()
    with pytest.raises(CancelledError, match=r"was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    assert sorted(os.listdir(root)) == ["frame_000000.tif", "frame_000001.tif"]
    assert read_image(str(root / "frame_000001.tif"))[0, 0] == 1


def test_a_write_job_in_a_broadcast_consumer_stops_with_the_consumer(tree, asynchronous):
    from concert.pipelines import broadcast

    root, _ = tree
    walker = DirectoryWalker(str(root))
    gate = threading.Event()

    def camera():
        for i in range(1000):
            assert gate.wait(TIMEOUT)
            yield np.full((2, 2), i % 256, np.uint8)

    gate.set()
    [future] = broadcast(camera(), lambda stream: walker.create_writer(stream)(), queue_size=2)
    from concert.polling import busy_wait

    busy_wait(lambda: len(os.listdir(root)) >= 2, sleep_time=0.001, timeout=TIMEOUT)
    assert future.cancel(timeout=TIMEOUT)
    with pytest.raises(CancelledError, match=r"broadcast consumer .* was stopped by cancel\(\)"):
        future.result(TIMEOUT)
    names = sorted(os.listdir(root))
    assert 2 <= len(names) < 1000
    for number, name in enumerate(names):
        assert read_image(str(root / name))[0, 0] == number


def test_a_failing_producer_is_reported_by_the_future_and_what_came_before_stays(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root))

    def failing():
        yield from frames(2)
        raise RuntimeError("detector lost")

    future = walker.write(failing())
    with pytest.raises(RuntimeError, match="detector lost"):
        future.result(TIMEOUT)
    assert sorted(os.listdir(root)) == ["frame_000000.tif", "frame_000001.tif"]
    np.testing.assert_array_equal(read_image(str(root / "frame_000001.tif")), frames(2)[1])


def test_an_existing_data_set_is_never_overwritten(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    walker.write(frames(3)).join(TIMEOUT)
    before = snapshot(root)
    with pytest.raises(StorageError, match=r"frame_000000\.tif"):
        walker.write(frames(3))
    with pytest.raises(StorageError, match=r"frame_000000\.tif"):
        walker.create_writer(frames(3))
    assert snapshot(root) == before


def test_a_single_file_data_set_is_never_appended_to(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root), dsetname="stack.tif")
    walker.write(frames(2)).join(TIMEOUT)
    before = snapshot(root)
    with pytest.raises(StorageError, match=r"stack\.tif"):
        walker.write(frames(2))
    assert snapshot(root) == before


def test_a_data_set_appearing_before_the_write_runs_is_refused_untouched(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    job = walker.create_writer(frames(2))
    (root / "frame_000001.tif").write_bytes(b"precious")
    with pytest.raises(StorageError, match=r"frame_000001\.tif"):
        job()
    assert (root / "frame_000001.tif").read_bytes() == b"precious"
    assert sorted(os.listdir(root)) == ["frame_000001.tif"]


def test_create_writer_prepares_without_moving_or_writing(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root)).descend("scan")
    job = walker.create_writer(frames(2), name="tomo/flats")
    assert isinstance(job, WriteJob)
    assert walker.current == str(root / "scan")
    assert job.directory == str(root / "scan" / "tomo" / "flats") and job.dsetname == walker.dsetname
    assert os.listdir(root / "scan" / "tomo" / "flats") == []  # directory ready, nothing written
    assert job() == 2
    assert len(os.listdir(root / "scan" / "tomo" / "flats")) == 2
    with pytest.raises(StorageError, match="already run"):
        job()


def test_concurrent_preparations_on_one_walker(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    jobs = [None] * 16
    barrier = threading.Barrier(len(jobs))

    def prepare(number):
        barrier.wait(TIMEOUT)
        jobs[number] = walker.create_writer(frames(2), name=f"t{number}")

    threads = [threading.Thread(target=prepare, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert [job.directory for job in jobs] == [str(root / f"t{n}") for n in range(len(jobs))]
    assert all(job() == 2 for job in jobs)
    assert walker.current == str(root)


# -- never outside the root ----------------------------------------------------------------------

COMPONENTS = st.sampled_from(["a", "b", ".", "..", "...", "a..b", "", " ", "\\", "link", "up", "inner"])


@st.composite
def names(draw):
    parts = draw(st.lists(COMPONENTS, min_size=1, max_size=5))
    name = "/".join(parts)
    if draw(st.booleans()):
        name = "/" + name
    return name


def _links(root, outside):
    if not (root / "link").exists():
        os.symlink(outside, root / "link")  # a directory elsewhere
        os.symlink("..", root / "up")  # the parent of the root
        (root / "real").mkdir()
        os.symlink(root / "real", root / "inner")  # stays inside: allowed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names(), operation=st.sampled_from(["descend", "create_writer", "exists", "write_then_descend"]))
def test_no_name_leads_outside_the_root(tree, name, operation):
    root, outside = tree
    _links(root, outside)
    walker = DirectoryWalker(str(root))
    before = snapshot(root.parent)
    try:
        if operation == "descend":
            walker.descend(name)
        elif operation == "create_writer":
            job = walker.create_writer(frames(1), name=name)
            assert os.path.realpath(job.directory).startswith(str(root) + os.sep) or job.directory == str(
                root
            )
        elif operation == "exists":
            walker.exists(name)
        else:
            walker.descend("real").descend(name)
    except StorageError:
        assert snapshot(root.parent) == before  # refused: nothing written anywhere
        refused = True
    else:
        refused = False
    real = os.path.realpath(walker.current)
    assert real == str(root) or real.startswith(str(root) + os.sep)
    assert os.listdir(outside) == []
    parts = name.split("/")
    if (
        name.startswith("/")
        or ".." in parts
        or (parts[0] in ("link", "up") and operation != "write_then_descend")
    ):
        assert refused


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/../../x", "/etc", "/tmp/x", "link", "link/x", "up", "up/root/../outside"]
)
def test_escaping_names_are_refused_for_every_operation(tree, name):
    root, outside = tree
    _links(root, outside)
    walker = DirectoryWalker(str(root))
    before = snapshot(root.parent)
    for operation in (
        lambda: walker.descend(name),
        lambda: walker.create_writer(frames(1), name=name),
        lambda: walker.exists(name),
    ):
        with pytest.raises(StorageError):
            operation()
    assert walker.current == str(root)
    assert snapshot(root.parent) == before


def test_a_link_inside_the_root_to_inside_the_root_is_followed(tree):
    root, outside = tree
    _links(root, outside)
    walker = DirectoryWalker(str(root)).descend("inner")
    assert walker.current == str(root / "real")
    walker.write(frames(1)).join(TIMEOUT)
    assert os.listdir(root / "real") == ["frame_000000.tif"]


def test_a_subdirectory_replaced_by_a_link_after_descending_is_refused(tree):
    root, outside = tree
    walker = DirectoryWalker(str(root)).descend("sub")
    job = walker.create_writer(frames(2))
    os.rmdir(root / "sub")
    os.symlink(outside, root / "sub")
    with pytest.raises(StorageError, match=r"outside|no longer"):
        job()
    with pytest.raises(StorageError, match="outside"):
        walker.write(frames(2))
    with pytest.raises(StorageError, match="outside"):
        walker.descend("deeper")
    assert os.listdir(outside) == []


@pytest.mark.parametrize("dangling", [False, True])
def test_a_data_set_file_that_is_a_link_is_refused(tree, dangling):
    root, outside = tree
    target = outside / "frame_000000.tif"
    if not dangling:
        target.write_bytes(b"precious")
    os.symlink(target, root / "frame_000000.tif")
    before = snapshot(root.parent)
    walker = DirectoryWalker(str(root))
    with pytest.raises(StorageError, match=r"frame_000000\.tif"):
        walker.write(frames(2))
    assert snapshot(root.parent) == before


@pytest.mark.parametrize("dsetname", ["../x_{}.tif", "/tmp/x_{}.tif", "sub/x_{}.tif", "..", "."])
def test_data_set_names_must_be_plain_file_names(tree, dsetname):
    root, outside = tree
    walker = DirectoryWalker(str(root))
    with pytest.raises(StorageError, match="dsetname"):
        walker.write(frames(1), dsetname=dsetname)
    assert snapshot(root.parent) == {str(root): None, str(outside): None}


def test_braces_in_directory_names_are_not_templates(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root)).descend("run{1}").descend("{}")
    assert walker.write(frames(2)).result(TIMEOUT) == 2
    assert sorted(os.listdir(root / "run{1}" / "{}")) == ["frame_000000.tif", "frame_000001.tif"]


# -- JSON and log files ---------------------------------------------------------------------------


def test_log_to_json_writes_and_never_overwrites(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root)).descend("run")
    first = walker.log_to_json({"energy": 20, "angles": [0, 90]})
    assert first == str(root / "run" / "experiment.json")
    assert json.loads((root / "run" / "experiment.json").read_text()) == {"energy": 20, "angles": [0, 90]}
    second = walker.log_to_json('{"energy": 30}')
    assert second == str(root / "run" / "experiment-1.json")
    assert json.loads((root / "run" / "experiment.json").read_text())["energy"] == 20
    assert json.loads((root / "run" / "experiment-1.json").read_text()) == {"energy": 30}
    assert walker.log_to_json("[1]", filename="meta.json") == str(root / "run" / "meta.json")


@pytest.mark.parametrize(
    "payload, filename, message",
    [
        ("not json", "experiment.json", "not valid JSON"),
        ({"a": 1}, "../experiment.json", "'..'"),
        ({"a": 1}, "/tmp/experiment.json", "absolute"),
        ({"a": 1}, "sub/experiment.json", "file name"),
    ],
)
def test_log_to_json_refusals_write_nothing(tree, payload, filename, message):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    before = snapshot(root.parent)
    with pytest.raises(StorageError, match=message):
        walker.log_to_json(payload, filename)
    assert snapshot(root.parent) == before


def test_log_to_json_stores_what_json_cannot_hold_as_text(tree):
    from concert.quantities import q

    walker = DirectoryWalker(str(tree[0]))
    path = walker.log_to_json({"exposure": 2 * q.ms, "angles": np.arange(2)})
    with open(path, encoding="utf-8") as stream:
        assert json.load(stream) == {"exposure": str(2 * q.ms), "angles": [0, 1]}


def test_log_to_json_does_not_follow_a_link_outside(tree):
    root, outside = tree
    os.symlink(outside / "experiment.json", root / "experiment.json")
    walker = DirectoryWalker(str(root))
    with pytest.raises(StorageError, match="outside"):
        walker.log_to_json({"a": 1})
    assert os.listdir(outside) == []


def test_register_logger_writes_records_here_until_closed(tree, logger_name):
    root, _ = tree
    walker = DirectoryWalker(str(root)).descend("run")
    logger = logging.getLogger(logger_name)
    assert logger.level == logging.NOTSET
    closer = walker.register_logger(logger_name, logging.INFO, "run.log")
    assert isinstance(closer, LoggingHandlerCloser)
    walker.ascend()  # the log stays where it was registered
    logger.debug("too detailed")
    logger.info("started")
    logger.warning("hot")
    closer.close()
    logger.info("after close")
    closer.close()  # idempotent
    lines = (root / "run" / "run.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        f"{logger_name} INFO started",
        f"{logger_name} WARNING hot",
    ]
    assert closer.handler not in logger.handlers
    assert logger.level == logging.NOTSET  # restored


def test_register_logger_appends_to_an_existing_log(tree, logger_name):
    root, _ = tree
    (root / "old.log").write_text("earlier line\n")
    walker = DirectoryWalker(str(root))
    with walker.register_logger(logger_name, "WARNING", "old.log"):
        logging.getLogger(logger_name).error("new line")
    lines = (root / "old.log").read_text().splitlines()
    assert lines[0] == "earlier line" and lines[1].endswith("ERROR new line")


@pytest.mark.parametrize(
    "level, file_name, message",
    [
        ("NOISY", "a.log", "log_level"),
        (None, "a.log", "log_level"),
        (logging.INFO, "../a.log", "'..'"),
        (logging.INFO, "/tmp/a.log", "absolute"),
        (logging.INFO, "d/a.log", "file name"),
        (logging.INFO, "link.log", "outside"),
    ],
)
def test_register_logger_refusals(tree, logger_name, level, file_name, message):
    root, outside = tree
    os.symlink(outside / "a.log", root / "link.log")
    walker = DirectoryWalker(str(root))
    before = snapshot(root.parent)
    with pytest.raises(StorageError, match=message):
        walker.register_logger(logger_name, level, file_name)
    assert snapshot(root.parent) == before
    assert logging.getLogger(logger_name).handlers == []


def test_register_logger_with_a_bad_logger_name_creates_no_file(tree):
    root, _ = tree
    walker = DirectoryWalker(str(root))
    with pytest.raises(StorageError, match="logger_name"):
        walker.register_logger(42, logging.INFO, "a.log")
    assert os.listdir(root) == []


# -- DummyWalker ----------------------------------------------------------------------------------


def test_dummy_walker_moves_like_a_directory_walker():
    walker = DummyWalker()
    assert walker.current == "" and walker.root == ""
    assert walker.descend("a/b") is walker and walker.current == "a/b"
    assert walker.ascend().current == "a"
    assert walker.exists("b") and not walker.exists("c")
    assert walker.home().current == ""
    with pytest.raises(StorageError, match="root"):
        walker.ascend()
    assert walker.paths == ["", "a", "a/b"]
    assert DummyWalker("data").descend("x").current == "data/x"


@pytest.mark.parametrize("name", ["..", "a/../..", "/abs", "a/../b", ""])
def test_dummy_walker_refuses_escaping_names(name):
    walker = DummyWalker().descend("a")
    with pytest.raises(StorageError):
        walker.descend(name)
    with pytest.raises(StorageError):
        walker.create_writer(frames(1), name=name)
    assert walker.current == "a" and walker.paths == ["", "a"]


def test_dummy_walker_keeps_copies_of_the_frames():
    walker = DummyWalker()
    source = frames(3)
    assert walker.descend("flats").write(iter(source)).result(TIMEOUT) == 3
    source[0][:] = 99  # the producer reusing its buffer must not change what was stored
    stored = walker.data["flats/frames"]
    assert [int(frame[0, 0]) for frame in stored] == [0, 1, 2]
    assert walker.exists("frames")
    walker.write(frames(1), dsetname="other").join(TIMEOUT)
    assert sorted(walker.data) == ["flats/frames", "flats/other"]


def test_dummy_walker_never_overwrites_a_data_set():
    walker = DummyWalker()
    walker.write(frames(2)).join(TIMEOUT)
    with pytest.raises(StorageError, match="frames"):
        walker.write(frames(5))
    assert len(walker.data["frames"]) == 2


def test_dummy_walker_create_writer():
    walker = DummyWalker()
    job = walker.create_writer(frames(2), name="x/y")
    assert walker.current == "" and walker.exists("x", "y") and "x/y/frames" not in walker.data
    assert job() == 2 and len(walker.data["x/y/frames"]) == 2


def test_dummy_walker_json_and_logs(logger_name):
    walker = DummyWalker().descend("run")
    assert walker.log_to_json({"a": 1}) == "run/experiment.json"
    assert walker.log_to_json({"a": 2}) == "run/experiment-1.json"
    assert json.loads(walker.json_files["run/experiment.json"]) == {"a": 1}
    with pytest.raises(StorageError, match="JSON"):
        walker.log_to_json("{")
    closer = walker.register_logger(logger_name, logging.INFO, "run.log")
    logging.getLogger(logger_name).info("hello")
    logging.getLogger(logger_name).debug("hidden")
    closer.close()
    logging.getLogger(logger_name).info("after")
    assert [line.split(" ", 2)[2] for line in walker.logs["run/run.log"]] == [f"{logger_name} INFO hello"]
    with pytest.raises(StorageError, match=r"'\.\.'"):
        walker.register_logger(logger_name, logging.INFO, "../x.log")
