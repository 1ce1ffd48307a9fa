"""Root containment during a write: a directory replaced while files are being written (issue 8, item 12).

The test swaps the data set's directory for a symbolic link to a directory
outside the root while a writer thread is in the middle of a multi-file data
set. Nothing may appear outside, and the write must stop with StorageError
naming the file it did not write.
"""

from __future__ import annotations

import os
import shutil
import threading
from typing import Callable, Iterator, List, Optional

import numpy as np
import pytest
import tifffile

from concert.exceptions import StorageError
from concert.polling import busy_wait
from concert.storage import DirectoryWalker, read_image, write_images
from tests.conftest import TIMEOUT

SHAPE = (4, 6)
FRAME_BYTES = SHAPE[0] * SHAPE[1] * 2  # uint16


def frame(number: int) -> np.ndarray:
    return np.full(SHAPE, number, dtype=np.uint16)


def everything_below(directory) -> List[str]:
    """Every entry below ``directory`` (links not followed), relative to it."""
    found = []
    for where, dirs, files in os.walk(directory):
        found.extend(os.path.relpath(os.path.join(where, name), directory) for name in dirs + files)
    return sorted(found)


def named_files_are_complete(directory) -> List[int]:
    """Read every data file below ``directory`` (no link followed); return the first pixel of every page."""
    pixels = []
    for where, _, files in os.walk(directory):
        for name in sorted(files):
            path = os.path.join(where, name)
            assert not name.endswith(".partial"), f"unfinished file left behind: {path}"
            if name.endswith(".tif") and not os.path.islink(path):
                pixels.extend(int(page[0, 0]) for page in np.reshape(read_image(path), (-1, *SHAPE)))
    return pixels


def swap_for_link(directory, outside, how: str) -> None:
    """Replace ``directory`` by a link to ``outside``: move it away (inside the root) or remove it."""
    if how == "moved":
        os.rename(directory, directory.parent / f"{directory.name}-moved-away")
    else:
        shutil.rmtree(directory)
    os.symlink(outside, directory)


class Writer:
    """Runs ``job`` in a thread of its own and keeps what it returned or raised."""

    def __init__(self, job: Callable[[], int]) -> None:
        self.result: Optional[int] = None
        self.error: Optional[BaseException] = None
        self._job = job
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._job()
        except BaseException as error:  # reported by join()
            self.error = error

    def join(self) -> None:
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive(), "the write did not end"


@pytest.fixture
def tree(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


@pytest.mark.parametrize("how", ["moved", "removed"])
def test_a_directory_replaced_by_a_link_between_two_files_stops_the_write(tree, how):
    root, outside = tree
    walker = DirectoryWalker(str(root), bytes_per_file=2 * FRAME_BYTES).descend("scan")
    paused, resume = threading.Event(), threading.Event()

    def camera() -> Iterator[np.ndarray]:
        for number in range(40):
            if number == 4:  # file 0 (frames 0, 1) is named, file 1 (frames 2, 3) is open
                paused.set()
                assert resume.wait(TIMEOUT)
            yield frame(number)

    writer = Writer(walker.create_writer(camera()))
    try:
        assert paused.wait(TIMEOUT)
        assert os.path.exists(root / "scan" / "frame_000000.tif")
        swap_for_link(root / "scan", outside, how)
    finally:
        resume.set()
    writer.join()
    assert isinstance(writer.error, StorageError), writer.error
    message = str(writer.error)
    assert "frame_000001.tif" in message and "replaced" in message
    assert "2 frame(s) were written completely, to 1 file(s)" in message
    assert everything_below(outside) == []
    if how == "moved":  # what was written before the swap stays, complete, where the directory went
        assert everything_below(root / "scan-moved-away") == ["frame_000000.tif"]
        assert named_files_are_complete(root / "scan-moved-away") == [0, 1]


def test_a_directory_replaced_by_a_link_while_files_are_written_never_sends_one_outside(tree):
    """The swap races the writer: it may come at any point of a file, not only between two."""
    root, outside = tree
    walker = DirectoryWalker(str(root), bytes_per_file=3 * FRAME_BYTES).descend("scan")
    swapped = threading.Event()

    def camera() -> Iterator[np.ndarray]:
        number = 0
        while not swapped.is_set() and number < 100_000:  # free-running until the swap ...
            yield frame(number % 1000)
            number += 1
        for _ in range(12):  # ... and four more files' worth after it
            yield frame(number % 1000)
            number += 1

    writer = Writer(walker.create_writer(camera()))
    try:
        busy_wait(lambda: os.path.exists(root / "scan" / "frame_000001.tif"), 0.0005, TIMEOUT)
        swap_for_link(root / "scan", outside, "moved")
    finally:
        swapped.set()
    writer.join()
    assert isinstance(writer.error, StorageError), writer.error
    assert "replaced" in str(writer.error) and "frame_" in str(writer.error)
    assert everything_below(outside) == []
    named_files_are_complete(root)


def test_a_parent_directory_replaced_by_a_link_stops_the_write(tree):
    root, outside = tree
    (outside / "b").mkdir()  # so that the path still leads to a directory after the swap
    walker = DirectoryWalker(str(root), bytes_per_file=FRAME_BYTES).descend("a/b")
    paused, resume = threading.Event(), threading.Event()

    def camera() -> Iterator[np.ndarray]:
        for number in range(10):
            if number == 2:
                paused.set()
                assert resume.wait(TIMEOUT)
            yield frame(number)

    writer = Writer(walker.create_writer(camera()))
    try:
        assert paused.wait(TIMEOUT)
        os.rename(root / "a", root / "a-moved-away")
        os.symlink(outside, root / "a")
    finally:
        resume.set()
    writer.join()
    assert isinstance(writer.error, StorageError), writer.error
    assert "frame_000001.tif" in str(writer.error)
    assert everything_below(outside) == ["b"]


def test_a_directory_swapped_back_and_forth_during_a_write_never_gets_a_file_outside(tree):
    """A swapper thread races the writer: whatever the timing, no file is created through the link."""
    root, outside = tree
    walker = DirectoryWalker(str(root), bytes_per_file=FRAME_BYTES).descend("scan")
    real, parked = root / "scan", root / "parked"
    stop = threading.Event()
    swaps: List[int] = []
    trouble: List[BaseException] = []

    def swapper() -> None:
        try:
            while not stop.is_set() and len(swaps) < 100_000:
                os.rename(real, parked)
                os.symlink(outside, real)
                os.unlink(real)
                os.rename(parked, real)
                swaps.append(1)
        except BaseException as error:  # reported below
            trouble.append(error)

    writer = Writer(walker.create_writer(frame(n) for n in range(300)))
    thread = threading.Thread(target=swapper, daemon=True)
    try:
        busy_wait(
            lambda: writer.error is not None or os.path.exists(real / "frame_000000.tif"), 0.0005, TIMEOUT
        )
        thread.start()
        writer.join()
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(TIMEOUT)
    assert not thread.is_alive() and not trouble, trouble
    assert swaps, "the swapper never ran"
    assert writer.error is None or isinstance(writer.error, StorageError), writer.error
    assert everything_below(outside) == []
    pixels = named_files_are_complete(root)
    assert pixels == list(range(len(pixels)))  # the files named are complete and in order
    if writer.error is None:
        assert writer.result == 300 and len(pixels) == 300


def test_write_images_keeps_to_the_directory_it_started_in(tmp_path):
    directory, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    elsewhere.mkdir()
    paused, resume = threading.Event(), threading.Event()

    def camera() -> Iterator[np.ndarray]:
        for number in range(6):
            if number == 2:
                paused.set()
                assert resume.wait(TIMEOUT)
            yield frame(number)

    prefix = str(directory / "f_{}.tif")
    writer = Writer(lambda: write_images(camera(), prefix=prefix, bytes_per_file=FRAME_BYTES))
    try:
        assert paused.wait(TIMEOUT)
        os.rename(directory, tmp_path / "data-moved-away")
        os.symlink(elsewhere, directory)
    finally:
        resume.set()
    writer.join()
    assert isinstance(writer.error, StorageError), writer.error
    assert "f_1.tif" in str(writer.error) and "replaced" in str(writer.error)
    assert os.listdir(elsewhere) == []
    assert sorted(os.listdir(tmp_path / "data-moved-away")) == ["f_0.tif"]


def test_files_are_named_only_when_complete(tmp_path):
    """While a file is written it has a .partial name nobody takes for data; complete, it gets its own."""
    paused, resume = threading.Event(), threading.Event()

    def camera() -> Iterator[np.ndarray]:
        yield frame(0)
        yield frame(1)
        paused.set()
        assert resume.wait(TIMEOUT)
        yield frame(2)

    writer = Writer(lambda: write_images(camera(), prefix=str(tmp_path / "stack.tif")))
    try:
        assert paused.wait(TIMEOUT)
        [partial] = os.listdir(tmp_path)
        assert partial.startswith("stack.tif.") and partial.endswith(".partial")
        with pytest.raises(StorageError, match="unfinished file of a write"):
            read_image(str(tmp_path / partial))
    finally:
        resume.set()
    writer.join()
    assert writer.error is None and writer.result == 3
    assert os.listdir(tmp_path) == ["stack.tif"]
    with tifffile.TiffFile(str(tmp_path / "stack.tif")) as tiff:
        assert [int(page.asarray()[0, 0]) for page in tiff.pages] == [0, 1, 2]


def test_a_file_taking_the_name_meanwhile_is_not_replaced(tmp_path):
    paused, resume = threading.Event(), threading.Event()

    def camera() -> Iterator[np.ndarray]:
        yield frame(0)
        paused.set()
        assert resume.wait(TIMEOUT)
        yield frame(1)

    writer = Writer(lambda: write_images(camera(), prefix=str(tmp_path / "stack.tif")))
    try:
        assert paused.wait(TIMEOUT)
        (tmp_path / "stack.tif").write_bytes(b"precious")  # after the check, before the naming
    finally:
        resume.set()
    writer.join()
    assert isinstance(writer.error, StorageError), writer.error
    assert "stack.tif" in str(writer.error) and "appeared" in str(writer.error)
    assert (tmp_path / "stack.tif").read_bytes() == b"precious"
    [kept] = [name for name in os.listdir(tmp_path) if name != "stack.tif"]
    assert kept in str(writer.error)
    with tifffile.TiffFile(str(tmp_path / kept)) as tiff:  # the frames are not lost
        assert [int(page.asarray()[0, 0]) for page in tiff.pages] == [0, 1]


def test_an_interpreter_killed_in_the_middle_of_a_file_leaves_no_file_that_looks_like_data(tmp_path):
    from tests.conftest import run_python

    code = f"""
import os
import numpy as np
from concert.storage import write_images

def camera():
    for number in range(10):
        if number == 7:
            os._exit(0)   # killed: no cleanup at all
        yield np.full((4, 6), number, dtype=np.uint16)

write_images(camera(), prefix={str(tmp_path / "f_{}.tif")!r}, bytes_per_file=3 * {FRAME_BYTES})
"""
    result = run_python(code, timeout=60)
    assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(tmp_path))
    assert names[:2] == ["f_0.tif", "f_1.tif"]
    assert len(names) == 3 and names[2].startswith("f_2.tif.") and names[2].endswith(".partial")
    assert [int(page[0, 0]) for name in names[:2] for page in read_image(str(tmp_path / name))] == list(
        range(6)
    )


# -- JSON and log files: created in the directory that was checked ------------------------------


class SwappingWalker(DirectoryWalker):
    """Replaces ``victim`` by a link to ``outside`` right after a file name was checked.

    That is the moment a path-based walker would be fooled: the check saw a
    directory inside the root, the file is opened through the link.
    """

    victim = outside = None

    def _swap(self) -> None:
        swap_for_link(type(self).victim, type(self).outside, "moved")

    def _resolve_in(self, directory: str, name: str, what: str) -> str:
        path = super()._resolve_in(directory, name, what)
        self._swap()
        return path

    def _resolve_file(self, name: str, what: str) -> str:
        path = super()._resolve_file(name, what)
        self._swap()
        return path


def test_log_to_json_writes_into_the_directory_it_checked_even_if_it_is_replaced_then(tree):
    root, outside = tree
    SwappingWalker.victim, SwappingWalker.outside = root / "run", outside
    walker = SwappingWalker(str(root)).descend("run")
    walker.log_to_json({"energy": 20})
    assert everything_below(outside) == []
    assert everything_below(root / "run-moved-away") == ["experiment.json"]


def test_register_logger_refuses_a_directory_replaced_after_the_check(tree):
    root, outside = tree
    SwappingWalker.victim, SwappingWalker.outside = root / "run", outside
    walker = SwappingWalker(str(root)).descend("run")
    with pytest.raises(StorageError, match="symbolic link"):
        walker.register_logger("concert.test.storage.swapped", "INFO", "run.log")
    assert everything_below(outside) == []


def test_open_real_directory_refuses_links_and_non_directories_naming_them(tree):
    from concert.storage.files import open_real_directory

    root, outside = tree
    (root / "a").mkdir()
    os.symlink(outside, root / "a" / "link")
    (root / "file").write_bytes(b"")
    with pytest.raises(StorageError, match=r"'[^']*/a/link' is a symbolic link"):
        open_real_directory(str(root / "a" / "link" / "deeper"), create_below=str(root))
    with pytest.raises(StorageError, match=r"'[^']*/file' is not a directory"):
        open_real_directory(str(root / "file"))
    with pytest.raises(StorageError, match=r"'[^']*/missing' does not exist"):
        open_real_directory(str(root / "missing" / "x"))
    assert everything_below(outside) == [] and not (root / "missing").exists()


def test_open_real_directory_creates_below_the_given_directory_with_exact_rights(tree):
    import stat

    from concert.storage.files import open_real_directory

    root, _ = tree
    old_umask = os.umask(0o077)
    try:
        descriptor = open_real_directory(str(root / "p" / "q"), create_below=str(root), rights="751")
    finally:
        os.umask(old_umask)
    try:
        assert os.path.samestat(os.fstat(descriptor), os.stat(root / "p" / "q"))
    finally:
        os.close(descriptor)
    for path in (root / "p", root / "p" / "q"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o751
