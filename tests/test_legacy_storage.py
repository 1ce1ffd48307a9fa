"""The legacy storage API (SPEC §14): Walker.write(data=None, dsetname=None), concert.writers, libtiff."""

from __future__ import annotations

import gc
import os
import re
import sys
import types
from typing import ClassVar

import numpy as np
import pytest

import concert.storage.writers
import concert.writers
from concert.coroutines.base import broadcast, inject, is_coroutine
from concert.coroutines.filters import flat_correct
from concert.coroutines.sinks import Accumulate
from concert.exceptions import StorageError
from concert.futures import Future
from concert.storage import DirectoryWalker, DummyWalker, read_image, write_libtiff
from tests.conftest import TIMEOUT, run_python


def frames(count=3, shape=(4, 6), dtype=np.uint16):
    return [np.full(shape, i + 1, dtype=dtype) for i in range(count)]


def names(directory):
    return sorted(os.listdir(directory))


# -- Walker.write() without data: a push-style sink -----------------------------------------------


def test_each_frame_sent_to_a_directory_walker_s_sink_is_a_complete_file_when_send_returns(tmp_path):
    walker = DirectoryWalker(str(tmp_path))
    sink = walker.write()
    assert is_coroutine(sink)
    for index, frame in enumerate(frames(3)):
        sink.send(frame)
        path = tmp_path / f"frame_{index:06}.tif"
        assert path.exists()  # named: complete
        np.testing.assert_array_equal(read_image(str(path)), frame)
    sink.close()
    assert names(tmp_path) == ["frame_000000.tif", "frame_000001.tif", "frame_000002.tif"]


def test_closing_the_sink_completes_a_multi_page_file(tmp_path):
    walker = DirectoryWalker(str(tmp_path), dsetname="scan.tif", bytes_per_file=10**6)
    sink = walker.write()
    inject(frames(4), sink)
    assert not (tmp_path / "scan.tif").exists()  # still being written, under a temporary name
    sink.close()
    assert names(tmp_path) == ["scan.tif"]
    np.testing.assert_array_equal(read_image(str(tmp_path / "scan.tif")), np.array(frames(4)))


def test_the_sink_writes_dsetname_where_the_walker_was_when_it_was_made(tmp_path):
    walker = DirectoryWalker(str(tmp_path))
    sink = walker.descend("flats").write(dsetname="flat_{:>03}.tif")
    walker.ascend().descend("darks")  # the walker moves on; the sink keeps its target
    inject(frames(2), sink)
    sink.close()
    assert names(tmp_path / "flats") == ["flat_000.tif", "flat_001.tif"]
    assert names(tmp_path / "darks") == []


def test_a_sink_that_is_dropped_is_closed_and_its_file_completed(tmp_path):
    walker = DirectoryWalker(str(tmp_path), dsetname="scan.tif", bytes_per_file=10**6)
    inject(frames(2), walker.write())  # the legacy idiom: the sink is never closed by hand
    gc.collect()
    assert names(tmp_path) == ["scan.tif"]
    assert read_image(str(tmp_path / "scan.tif")).shape == (2, 4, 6)


def test_a_sink_is_refused_at_once_for_an_existing_data_set(tmp_path):
    walker = DirectoryWalker(str(tmp_path))
    walker.write(frames(1)).join(TIMEOUT)
    before = (tmp_path / "frame_000000.tif").read_bytes()
    with pytest.raises(StorageError, match=re.escape("refusing to overwrite data set 'frame_{:>06}.tif'")):
        walker.write()
    assert (tmp_path / "frame_000000.tif").read_bytes() == before


def test_a_frame_the_writer_refuses_is_raised_by_its_send_and_ends_the_sink(tmp_path):
    walker = DirectoryWalker(str(tmp_path))
    sink = walker.write()
    sink.send(np.ones((2, 2)))
    with pytest.raises(
        StorageError, match=r"frame 1 \(counting from 0\) must be a non-empty 2-D array, got shape \(3,\)"
    ):
        sink.send(np.ones(3))
    with pytest.raises(StopIteration):
        sink.send(np.ones((2, 2)))  # the sink is finished
    assert names(tmp_path) == ["frame_000000.tif"]  # what was written before stays


def test_the_dummy_walker_s_sink_stores_copies_of_what_it_is_sent():
    walker = DummyWalker()
    sink = walker.descend("projections").write(dsetname="frames")
    frame = np.zeros((2, 2))
    sink.send(frame)
    frame[:] = 5  # the camera reuses its buffer
    sink.send(frame)
    sink.close()
    stored = walker.data["projections/frames"]
    assert len(stored) == 2
    np.testing.assert_array_equal(stored[0], 0)
    np.testing.assert_array_equal(stored[1], 5)


def test_a_sink_in_a_push_chain_and_in_a_push_broadcast(tmp_path):
    walker = DirectoryWalker(str(tmp_path))
    sink = walker.write(dsetname="corrected_{:>02}.tif")
    acc = Accumulate()
    flat = np.full((4, 6), 2.0)
    inject(frames(3), flat_correct(flat, broadcast(sink, acc())))
    sink.close()
    assert names(tmp_path) == ["corrected_00.tif", "corrected_01.tif", "corrected_02.tif"]
    np.testing.assert_allclose(read_image(str(tmp_path / "corrected_02.tif")), 1.5)
    assert len(acc.items) == 3


def test_a_sink_fed_by_the_pull_style_broadcast(tmp_path):
    walker = DummyWalker()
    sink = walker.write(dsetname="stream")
    acc = Accumulate()
    futures = broadcast(iter(frames(5)), sink, acc)  # a producer first: pull style
    assert [future.result(TIMEOUT) for future in futures] == [5, acc.items]
    sink.close()
    assert len(walker.data["stream"]) == 5 and len(acc.items) == 5


def test_a_sink_left_open_is_completed_at_exit(tmp_path):
    result = run_python(
        f"""
import numpy as np
from concert.coroutines.base import inject
from concert.storage import DirectoryWalker

walker = DirectoryWalker({str(tmp_path)!r}, dsetname="scan.tif", bytes_per_file=10**6)
sink = walker.write()  # still referenced when the script ends: closed by the exit flush
inject([np.full((4, 6), i, dtype=np.uint16) for i in range(3)], sink)
"""
    )
    assert result.returncode == 0, result.stderr
    assert names(tmp_path) == ["scan.tif"]
    assert read_image(str(tmp_path / "scan.tif")).shape == (3, 4, 6)


# -- Walker.write(data) ---------------------------------------------------------------------------


def test_write_with_data_writes_those_frames_and_returns_a_future(tmp_path):
    walker = DirectoryWalker(str(tmp_path))
    future = walker.write(data=frames(2))
    assert isinstance(future, Future)
    assert future.result(TIMEOUT) == 2
    future = walker.write(frames(3), dsetname="other_{}.tif")  # positional, as seed 003 writes it
    assert future.result(TIMEOUT) == 3
    future = walker.write(producer=frames(1), dsetname="third_{}.tif")
    assert future.result(TIMEOUT) == 1
    assert len(names(tmp_path)) == 6


def test_write_with_a_single_frame_writes_one_file(tmp_path):
    walker = DirectoryWalker(str(tmp_path))
    frame = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert walker.write(frame).result(TIMEOUT) == 1
    np.testing.assert_array_equal(read_image(str(tmp_path / "frame_000000.tif")), frame)
    stack = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)  # a 3-D array is a stack of frames
    assert walker.write(stack, dsetname="stack_{}.tif").result(TIMEOUT) == 2


def test_write_refuses_data_and_producer_together():
    walker = DummyWalker()
    with pytest.raises(StorageError, match="give the frames once, as data or as producer, not both"):
        walker.write(data=frames(1), producer=frames(1))
    assert walker.data == {}


def test_write_with_data_on_the_dummy_walker():
    walker = DummyWalker()
    assert walker.write(data=frames(2), dsetname="a").result(TIMEOUT) == 2
    assert walker.write(np.ones((2, 2)), dsetname="b").result(TIMEOUT) == 1
    assert len(walker.data["a"]) == 2 and walker.data["b"][0].shape == (2, 2)


# -- concert.writers ------------------------------------------------------------------------------


def test_concert_writers_is_a_real_module_with_the_same_writers():
    from concert.writers import ImageWriter, TiffWriter

    assert TiffWriter is concert.storage.writers.TiffWriter
    assert ImageWriter is concert.storage.writers.ImageWriter
    assert "TiffWriter" in concert.writers.__all__
    assert concert.writers.__name__ == "concert.writers"


def test_a_directory_walker_with_the_legacy_writer_path(tmp_path):
    from concert.writers import TiffWriter

    walker = DirectoryWalker(str(tmp_path), writer=TiffWriter)
    assert walker.write(frames(1)).result(TIMEOUT) == 1


# -- write_libtiff --------------------------------------------------------------------------------


def test_write_libtiff_without_pylibtiff_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "libtiff", None)  # import libtiff raises ImportError
    target = tmp_path / "image.tif"
    with pytest.raises(
        StorageError, match="pylibtiff is not installed: install it with 'pip install pylibtiff'"
    ) as info:
        write_libtiff(str(target), np.ones((2, 2)))
    assert str(target) in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)
    assert names(tmp_path) == []


class FakeTIFF:
    """What write_libtiff uses of pylibtiff's TIFF: open(name, mode), write_image(array), close()."""

    opened: ClassVar[list] = []

    def __init__(self, name, mode):
        self.name, self.mode, self.pages = name, mode, []

    @classmethod
    def open(cls, name, mode="r"):
        tiff = cls(name, mode)
        cls.opened.append(tiff)
        return tiff

    def write_image(self, array):
        if array.dtype == np.complex128:
            raise RuntimeError("unsupported sample format")
        self.pages.append(np.array(array))

    def close(self):
        import tifffile

        with open(self.name, "wb") as stream:
            tifffile.imwrite(stream, np.array(self.pages) if len(self.pages) > 1 else self.pages[0])


@pytest.fixture
def fake_pylibtiff(monkeypatch):
    module = types.ModuleType("libtiff")
    module.TIFF = FakeTIFF
    FakeTIFF.opened = []
    monkeypatch.setitem(sys.modules, "libtiff", module)
    return FakeTIFF


def test_write_libtiff_writes_through_pylibtiff_under_a_temporary_name(tmp_path, fake_pylibtiff):
    stack = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    written = write_libtiff(str(tmp_path / "stack"), stack)
    assert written == str(tmp_path / "stack.tif")
    (tiff,) = fake_pylibtiff.opened
    assert tiff.mode == "w" and tiff.name.endswith(".partial") and len(tiff.pages) == 2
    assert names(tmp_path) == ["stack.tif"]
    np.testing.assert_array_equal(read_image(written), stack)


def test_write_libtiff_never_overwrites_and_refuses_bad_data(tmp_path, fake_pylibtiff):
    target = tmp_path / "image.tif"
    target.write_bytes(b"precious")
    with pytest.raises(StorageError, match=r"refusing to overwrite .*image\.tif'?: it exists"):
        write_libtiff(str(target), np.ones((2, 2)))
    assert target.read_bytes() == b"precious"
    with pytest.raises(StorageError, match=r"expected a non-empty 2-D or 3-D array, got shape \(4,\)"):
        write_libtiff(str(tmp_path / "line.tif"), np.ones(4))
    assert names(tmp_path) == ["image.tif"]


def test_a_pylibtiff_failure_leaves_no_file(tmp_path, fake_pylibtiff):
    with pytest.raises(StorageError, match="pylibtiff: unsupported sample format"):
        write_libtiff(str(tmp_path / "complex.tif"), np.ones((2, 2), dtype=np.complex128))
    assert names(tmp_path) == []
