"""write_images and TiffWriter: exact round trips in every mode, file counts, BigTIFF, no overwriting."""

from __future__ import annotations

import os
import stat
import threading
from typing import Iterator, List

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from concert.exceptions import StorageError
from concert.imaging import ImageWithMetadata
from concert.storage import TiffWriter, needs_bigtiff, read_image, read_metadata, read_tiff, write_images
from concert.storage import writers as writers_module
from tests.conftest import TIMEOUT

DTYPES = [np.uint8, np.uint16, np.float32, np.int16, np.int32, np.float64, np.uint32, np.complex64, np.bool_]


def frames_of(dtype, count: int = 10, shape=(6, 9)) -> List[np.ndarray]:
    """``count`` distinct frames of ``dtype`` (with extreme values for integers)."""
    rng = np.random.default_rng(count)
    result = []
    for index in range(count):
        if np.dtype(dtype).kind in "ui":
            info = np.iinfo(dtype)
            frame = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        elif np.dtype(dtype).kind == "b":
            frame = rng.integers(0, 2, shape).astype(bool)
        else:
            frame = (rng.standard_normal(shape) * 1e3).astype(dtype)
        frame.flat[0] = index % 2  # distinct, also for bool
        result.append(frame)
    return result


def files_in(directory) -> List[str]:
    return sorted(os.listdir(directory))


def read_all_pages(directory) -> List[np.ndarray]:
    """Every page of every file in ``directory``, in file name order."""
    pages = []
    for name in files_in(directory):
        with tifffile.TiffFile(os.path.join(directory, name)) as tiff:
            pages.extend(page.asarray() for page in tiff.pages)
    return pages


def assert_exactly(restored: List[np.ndarray], originals: List[np.ndarray]) -> None:
    assert len(restored) == len(originals)
    for number, (page, frame) in enumerate(zip(restored, originals)):
        assert page.dtype == frame.dtype.newbyteorder("="), number
        assert page.shape == frame.shape, number
        assert page.tobytes() == np.ascontiguousarray(frame, page.dtype).tobytes(), number  # bitwise


def snapshot(directory) -> dict:
    """Path -> bytes (files) or None (directories) of everything below ``directory``."""
    result = {}
    for where, dirs, files in os.walk(directory):
        for name in dirs:
            result[os.path.join(where, name)] = None
        for name in files:
            path = os.path.join(where, name)
            if os.path.islink(path):
                result[path] = ("link", os.readlink(path))
            else:
                with open(path, "rb") as stream:
                    result[path] = stream.read()
    return result


def page_count(path) -> int:
    with tifffile.TiffFile(str(path)) as tiff:
        return len(tiff.pages)


def is_bigtiff(path) -> bool:
    with tifffile.TiffFile(str(path)) as tiff:
        return tiff.is_bigtiff


# -- the three modes, exactly -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_file_per_image_round_trips_exactly(tmp_path, dtype):
    frames = frames_of(dtype)
    assert write_images(iter(frames), prefix=str(tmp_path / "image_{:>05}.tif")) == 10
    assert files_in(tmp_path) == [f"image_{i:>05}.tif" for i in range(10)]
    assert_exactly([read_image(str(tmp_path / f"image_{i:>05}.tif")) for i in range(10)], frames)


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_page_files_hold_every_frame_in_order(tmp_path, dtype):
    frames = frames_of(dtype)
    size = frames[0].nbytes
    assert write_images(frames, prefix=str(tmp_path / "part_{}.tif"), bytes_per_file=3 * size) == 10
    assert files_in(tmp_path) == ["part_0.tif", "part_1.tif", "part_2.tif", "part_3.tif"]
    assert [page_count(tmp_path / n) for n in files_in(tmp_path)] == [3, 3, 3, 1]
    assert_exactly(read_all_pages(tmp_path), frames)
    stacked = read_tiff(str(tmp_path / "part_0.tif"))
    assert stacked.shape == (3, *frames[0].shape)
    assert_exactly(list(stacked), frames[:3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_plain_prefix_collects_every_frame_in_one_file(tmp_path, dtype):
    frames = frames_of(dtype, count=7)
    assert write_images(iter(frames), prefix=str(tmp_path / "all.tif"), bytes_per_file=1) == 7
    assert files_in(tmp_path) == ["all.tif"]
    assert_exactly(list(read_tiff(str(tmp_path / "all.tif"))), frames)


def test_start_index_numbers_the_first_file(tmp_path):
    frames = frames_of(np.uint16, count=4)
    write_images(frames, prefix=str(tmp_path / "image_{:>05}.tif"), start_index=100)
    assert files_in(tmp_path) == ["image_00100.tif", "image_00101.tif", "image_00102.tif", "image_00103.tif"]
    write_images(frames, prefix=str(tmp_path / "multi_{:03d}.tif"), start_index=7, bytes_per_file=2 * 108)
    assert [n for n in files_in(tmp_path) if n.startswith("multi")] == ["multi_007.tif", "multi_008.tif"]
    assert_exactly(list(read_tiff(str(tmp_path / "multi_008.tif"))), frames[2:])


@pytest.mark.parametrize(
    "factor, expected_files",
    [(0, 10), (0.5, 10), (1, 10), (1.5, 10), (2, 5), (3, 4), (9.99, 2), (10, 1), (1000, 1)],
)
def test_file_count_follows_bytes_per_file(tmp_path, factor, expected_files):
    frames = frames_of(np.uint8, count=10, shape=(4, 8))
    size = frames[0].nbytes
    write_images(frames, prefix=str(tmp_path / "f_{:>03}.tif"), bytes_per_file=int(factor * size))
    assert len(files_in(tmp_path)) == expected_files
    assert_exactly(read_all_pages(tmp_path), frames)


def test_frames_of_different_shapes_and_dtypes_share_multi_page_files(tmp_path):
    frames = [
        np.arange(12, dtype=np.uint16).reshape(3, 4),
        np.arange(30, dtype=np.float32).reshape(5, 6),
        np.ones((1, 1), np.uint8),
        np.arange(20, dtype=np.int64).reshape(2, 10),
    ]
    write_images(frames, prefix=str(tmp_path / "m_{}.tif"), bytes_per_file=10_000)
    assert files_in(tmp_path) == ["m_0.tif"]
    assert_exactly(read_all_pages(tmp_path), frames)


def test_frames_larger_than_bytes_per_file_get_a_file_each(tmp_path):
    frames = [np.ones((10, 10), np.uint8), np.ones((2, 2), np.uint8), np.ones((2, 2), np.uint8)]
    write_images(frames, prefix=str(tmp_path / "m_{}.tif"), bytes_per_file=50)
    assert [page_count(tmp_path / n) for n in files_in(tmp_path)] == [1, 2]


def test_views_and_non_native_byte_order_are_stored_with_their_values(tmp_path):
    base = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    frames = [base.T, base[::3, 1::2], base.astype(">u2"), np.asfortranarray(base).astype(">f4")]
    write_images(frames, prefix=str(tmp_path / "v_{}.tif"))
    for number, frame in enumerate(frames):
        restored = read_image(str(tmp_path / f"v_{number}.tif"))
        assert restored.dtype == frame.dtype.newbyteorder("=")
        np.testing.assert_array_equal(restored, frame)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64, np.uint32, np.int8]),
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=17),
    count=st.integers(1, 7),
    mode=st.sampled_from(["per-frame", "multi-page", "one-file"]),
    per_file=st.integers(1, 4),
    start_index=st.integers(0, 10**6),
    data=st.data(),
)
def test_any_frames_round_trip_exactly_in_every_mode(
    tmp_path_factory, dtype, shape, count, mode, per_file, start_index, data
):
    frames = [data.draw(hnp.arrays(dtype, shape)) for _ in range(count)]  # NaN, inf, -0.0 included
    directory = tmp_path_factory.mktemp("roundtrip")
    if mode == "per-frame":
        prefix, bytes_per_file, expected_files = "r_{:>07}.tif", 0, count
    elif mode == "multi-page":
        prefix, bytes_per_file = "r_{:>07}.tif", per_file * frames[0].nbytes
        expected_files = -(-count // per_file)
    else:
        prefix, bytes_per_file, expected_files = "r.tif", 0, 1
    written = write_images(
        iter(frames), prefix=str(directory / prefix), start_index=start_index, bytes_per_file=bytes_per_file
    )
    assert written == count
    names = files_in(directory)
    assert len(names) == expected_files
    if mode != "one-file":
        assert names == [f"r_{start_index + i:>07}.tif" for i in range(expected_files)]
    assert_exactly(read_all_pages(directory), frames)


# -- metadata -------------------------------------------------------------------------------------


def test_metadata_of_every_frame_is_stored_with_its_page(tmp_path):
    frames = [
        ImageWithMetadata(np.full((3, 3), i, np.uint16), {"frame": i, "t": np.float32(i / 2), "ok": True})
        for i in range(4)
    ]
    frames.append(np.zeros((3, 3), np.uint16))  # no metadata: no description
    write_images(frames, prefix=str(tmp_path / "meta_{}.tif"), bytes_per_file=3 * 18)
    metadata = read_metadata(str(tmp_path / "meta_0.tif")) + read_metadata(str(tmp_path / "meta_1.tif"))
    assert metadata == [{"frame": i, "t": i / 2, "ok": True} for i in range(4)] + [{}]
    assert_exactly(read_all_pages(tmp_path), frames)


def test_metadata_that_json_cannot_hold_is_stored_as_text(tmp_path):
    from concert.quantities import q

    image = ImageWithMetadata(np.zeros((2, 2), np.uint8), {"exposure": 3 * q.ms, "roi": np.arange(3), 5: "x"})
    write_images([image], prefix=str(tmp_path / "q.tif"))
    (stored,) = read_metadata(str(tmp_path / "q.tif"))
    assert stored == {"exposure": str(3 * q.ms), "roi": [0, 1, 2], "5": "x"}


def test_metadata_named_like_tifffile_keys_does_not_change_how_the_file_reads(tmp_path):
    metadata = {"shape": [3, 2], "note": 'a "shape": 1', 'x"shape': {"shape": "\\"}}
    image = ImageWithMetadata(np.arange(6, dtype=np.uint8).reshape(2, 3), metadata)
    write_images([image, image], prefix=str(tmp_path / "s.tif"))
    assert tifffile.imread(str(tmp_path / "s.tif")).shape == (2, 2, 3)
    assert read_metadata(str(tmp_path / "s.tif")) == [metadata] * 2


# -- BigTIFF ----------------------------------------------------------------------------------


def test_needs_bigtiff_decision():
    mib, gib = 2**20, 2**30
    assert needs_bigtiff(0, 8 * mib)  # unbounded: may grow beyond 4 GiB
    assert not needs_bigtiff(8 * mib, 8 * mib)
    assert not needs_bigtiff(1 * gib, 8 * mib)
    assert not needs_bigtiff(4 * gib - 64 * mib, 8 * mib)
    assert needs_bigtiff(4 * gib, 8 * mib)
    assert needs_bigtiff(5 * gib, 8 * mib)
    assert needs_bigtiff(1, 5 * gib)  # one frame beyond 4 GiB
    assert needs_bigtiff(4 * gib - 2 * mib, 2 * mib)  # data fits, but not with 2048 page headers
    assert needs_bigtiff(3 * gib, 8 * mib, description_bytes=4 * mib)  # big per-page metadata


def test_files_get_bigtiff_exactly_when_needed(tmp_path, monkeypatch):
    monkeypatch.setattr(writers_module, "CLASSIC_TIFF_LIMIT", 64 * 1024)  # pretend 4 GiB is 64 KiB
    frames = frames_of(np.uint16, count=6, shape=(64, 64))  # 8 KiB each
    write_images(frames, prefix=str(tmp_path / "small_{}.tif"), bytes_per_file=2 * frames[0].nbytes)
    write_images(frames, prefix=str(tmp_path / "large_{}.tif"), bytes_per_file=6 * 2 * frames[0].nbytes)
    write_images(frames, prefix=str(tmp_path / "single_{}.tif"))
    write_images(frames, prefix=str(tmp_path / "unbounded.tif"))
    kinds = {name: is_bigtiff(tmp_path / name) for name in files_in(tmp_path)}
    assert kinds == {
        **{f"small_{i}.tif": False for i in range(3)},
        "large_0.tif": True,
        **{f"single_{i}.tif": False for i in range(6)},
        "unbounded.tif": True,
    }
    assert_exactly(list(read_tiff(str(tmp_path / "large_0.tif"))), frames)
    assert_exactly(list(read_tiff(str(tmp_path / "unbounded.tif"))), frames)


def test_a_classic_file_refuses_an_image_beyond_its_limit_and_stays_valid(tmp_path, monkeypatch):
    monkeypatch.setattr(writers_module, "CLASSIC_TIFF_LIMIT", 50 * 1024)  # 5 pages of 8 KiB fit
    frames = frames_of(np.uint16, count=6, shape=(64, 64))
    name = str(tmp_path / "classic.tif")
    with TiffWriter(bigtiff=False) as writer:
        writer.open(name)
        for frame in frames[:5]:
            writer.write(frame)
        with pytest.raises(StorageError, match=r"classic\.tif.*4 GiB"):
            writer.write(frames[5])
    assert not is_bigtiff(name)
    assert_exactly(list(read_tiff(name)), frames[:5])


def test_forced_bigtiff(tmp_path):
    with TiffWriter(bigtiff=True) as writer:
        writer.open(str(tmp_path / "big.tif"), bytes_per_file=10)
        assert writer.bigtiff is None  # decided by the first image
        writer.write(np.ones((2, 2), np.uint8))
        assert writer.bigtiff is True
    assert is_bigtiff(tmp_path / "big.tif")


# -- never overwrite ------------------------------------------------------------------------------


class CountingProducer:
    """Yields ``frames``, counting how many were taken."""

    def __init__(self, frames: List[np.ndarray]) -> None:
        self.frames = frames
        self.taken = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.frames:
            self.taken += 1
            yield frame


@pytest.mark.parametrize("bytes_per_file", [0, 2 * 54])
def test_an_existing_file_anywhere_in_the_range_stops_the_write_before_it_starts(tmp_path, bytes_per_file):
    (tmp_path / "image_00003.tif").write_bytes(b"precious")
    (tmp_path / "image_00000.tif.bak").write_bytes(b"unrelated")
    before = snapshot(tmp_path)
    producer = CountingProducer(frames_of(np.uint8, count=6))
    with pytest.raises(StorageError, match=r"image_00003\.tif"):
        write_images(producer, prefix=str(tmp_path / "image_{:>05}.tif"), bytes_per_file=bytes_per_file)
    assert producer.taken == 0
    assert snapshot(tmp_path) == before


def test_files_below_start_index_are_not_in_the_way(tmp_path):
    write_images(frames_of(np.uint8, count=3), prefix=str(tmp_path / "image_{:>05}.tif"))
    before = snapshot(tmp_path)
    write_images(frames_of(np.uint8, count=2), prefix=str(tmp_path / "image_{:>05}.tif"), start_index=3)
    assert files_in(tmp_path) == [f"image_{i:>05}.tif" for i in range(5)]
    assert all(snapshot(tmp_path)[path] == content for path, content in before.items())


def test_an_existing_single_file_is_never_appended_to(tmp_path):
    write_images(frames_of(np.uint8, count=2), prefix=str(tmp_path / "all.tif"))
    before = snapshot(tmp_path)
    with pytest.raises(StorageError, match=r"all\.tif"):
        write_images(frames_of(np.uint8, count=2), prefix=str(tmp_path / "all.tif"))
    assert snapshot(tmp_path) == before


def test_a_file_appearing_during_the_write_is_refused_when_reached(tmp_path):
    frames = frames_of(np.uint8, count=4)
    (tmp_path / "late").mkdir()

    def producer():
        yield frames[0]
        (tmp_path / "x_ 2.tif").write_bytes(b"precious")  # appears after the check
        yield from frames[1:]

    with pytest.raises(StorageError, match=r"x_ 2\.tif"):
        write_images(producer(), prefix=str(tmp_path / "x_{:>2}.tif"))
    assert (tmp_path / "x_ 2.tif").read_bytes() == b"precious"
    assert_exactly([read_image(str(tmp_path / f"x_{i:>2}.tif")) for i in range(2)], frames[:2])


def test_a_hexadecimal_template_still_never_overwrites(tmp_path):
    (tmp_path / "h_a.tif").write_bytes(b"precious")  # not recognised before writing, refused when reached
    with pytest.raises(StorageError, match=r"h_a\.tif"):
        write_images(frames_of(np.uint8, count=12), prefix=str(tmp_path / "h_{:x}.tif"))
    assert (tmp_path / "h_a.tif").read_bytes() == b"precious"
    assert len(files_in(tmp_path)) == 11


def test_the_same_data_set_cannot_be_written_twice_at_once(tmp_path):
    inside = threading.Event()
    release = threading.Event()
    results = {}

    def slow_producer():
        yield np.zeros((2, 2), np.uint8)
        inside.set()
        assert release.wait(TIMEOUT)
        yield np.ones((2, 2), np.uint8)

    def first():
        results["first"] = write_images(slow_producer(), prefix=str(tmp_path / "d_{}.tif"))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(TIMEOUT)
        second = CountingProducer([np.zeros((2, 2), np.uint8)])
        with pytest.raises(StorageError, match="being written"):
            write_images(second, prefix=str(tmp_path / "d_{}.tif"), start_index=50)
        assert second.taken == 0
    finally:
        release.set()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert results["first"] == 2
    assert files_in(tmp_path) == ["d_0.tif", "d_1.tif"]


# -- laziness, failures, arguments ----------------------------------------------------------------


def test_the_producer_is_consumed_lazily_one_frame_at_a_time(tmp_path):
    frames = frames_of(np.uint16, count=5)
    seen_on_disk = []

    def producer():
        for frame in frames:
            seen_on_disk.append(len(files_in(tmp_path)))
            yield frame

    write_images(producer(), prefix=str(tmp_path / "lazy_{}.tif"))
    assert seen_on_disk == [0, 1, 2, 3, 4]  # each frame was on disk before the next was asked for


def test_an_empty_producer_writes_no_file(tmp_path):
    assert write_images(iter([]), prefix=str(tmp_path / "sub" / "e_{}.tif")) == 0
    assert files_in(tmp_path / "sub") == []


def test_the_directory_is_created_with_rights(tmp_path):
    write_images(frames_of(np.uint8, count=1), prefix=str(tmp_path / "a" / "b" / "i_{}.tif"), rights="705")
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o705
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o705
    assert files_in(tmp_path / "a" / "b") == ["i_0.tif"]


def test_a_relative_prefix_writes_into_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_images(frames_of(np.uint8, count=2), prefix="rel_{}.tif")
    assert files_in(tmp_path) == ["rel_0.tif", "rel_1.tif"]


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((0, 3)), np.zeros((2, 2, 2)), np.array([["a"]]), None])
def test_a_bad_frame_is_refused_naming_it_and_what_came_before_stays(tmp_path, bad):
    frames = frames_of(np.uint8, count=3)
    with pytest.raises(StorageError, match="frame 3"):
        write_images([*frames, bad, frames[0]], prefix=str(tmp_path / "b_{}.tif"), bytes_per_file=2 * 54)
    assert files_in(tmp_path) == ["b_0.tif", "b_1.tif"]
    assert_exactly(read_all_pages(tmp_path), frames)


def test_a_failing_producer_leaves_complete_files(tmp_path):
    frames = frames_of(np.uint8, count=3)

    def producer():
        yield from frames
        raise RuntimeError("camera gone")

    with pytest.raises(RuntimeError, match="camera gone"):
        write_images(producer(), prefix=str(tmp_path / "all.tif"))
    assert_exactly(list(read_tiff(str(tmp_path / "all.tif"))), frames)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bytes_per_file": -1}, "bytes_per_file"),
        ({"bytes_per_file": 1.5}, "bytes_per_file"),
        ({"start_index": -1}, "start_index"),
        ({"start_index": True}, "start_index"),
        ({"rights": "999"}, "rights"),
        ({"prefix": "sub{}/x_{}.tif"}, "directory part"),
        ({"prefix": "sub/"}, "names a directory"),
        ({"prefix": "x_{name}.tif"}, "cannot be formatted"),
        ({"prefix": "x_{:>5.tif"}, "format string"),
        ({"prefix": "x_{:/>5}.tif"}, "directory part"),
    ],
)
def test_invalid_arguments_write_nothing(tmp_path, monkeypatch, kwargs, message):
    monkeypatch.chdir(tmp_path)
    producer = CountingProducer(frames_of(np.uint8, count=2))
    with pytest.raises(StorageError, match=message):
        write_images(producer, **kwargs)
    assert producer.taken == 0
    assert files_in(tmp_path) == []


def test_writer_can_be_any_image_writer_factory(tmp_path):
    made = []

    class Recording(TiffWriter):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    write_images(frames_of(np.uint8, count=3), writer=Recording, prefix=str(tmp_path / "w_{}.tif"))
    assert len(made) == 1 and made[0].closed
    assert len(files_in(tmp_path)) == 3


def test_writer_call_order_is_checked(tmp_path):
    writer = TiffWriter()
    with pytest.raises(StorageError, match="no file is open"):
        writer.write(np.zeros((2, 2), np.uint8))
    writer.open(str(tmp_path / "a.tif"))
    with pytest.raises(StorageError, match=r"a\.tif.*close it first"):
        writer.open(str(tmp_path / "b.tif"))
    writer.write(np.zeros((2, 2), np.uint8))
    writer.close()
    writer.close()  # twice is fine
    assert writer.closed and writer.filename is None
    writer.open(str(tmp_path / "b.tif"))  # reusable
    writer.write(np.ones((2, 2), np.uint8))
    writer.close()
    assert files_in(tmp_path) == ["a.tif", "b.tif"]


def test_writer_refuses_existing_files(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"precious")
    with pytest.raises(StorageError, match=r"a\.tif"):
        TiffWriter().open(str(tmp_path / "a.tif"))
    assert (tmp_path / "a.tif").read_bytes() == b"precious"


def test_close_syncs_the_file(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(writers_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with TiffWriter() as writer:
        writer.open(str(tmp_path / "s.tif"))
        writer.write(np.zeros((2, 2), np.uint8))
        assert synced == []
    assert len(synced) == 1


def test_write_images_in_an_operation_stops_when_it_is_asked_to_and_closes_the_file(tmp_path):
    from concurrent.futures import CancelledError

    from concert.futures import async_, current_future

    originals = frames_of(np.uint16, count=10)

    def producer():
        for number, frame in enumerate(originals):
            if number == 6:
                current_future().request_cancel("abort()")  # frame 6 is taken: it is written
            yield frame

    @async_
    def record():
        return write_images(producer(), prefix=str(tmp_path / "stack.tif"))

    future = record()
    with pytest.raises(CancelledError, match=r"record\(\) was stopped by abort\(\)"):
        future.result(TIMEOUT)
    assert files_in(tmp_path) == ["stack.tif"]
    assert_exactly(read_all_pages(tmp_path), originals[:7])  # the one file is complete


def test_write_images_outside_an_operation_is_not_affected():
    from concert.storage.writers import _checked

    assert list(_checked(range(3))) == [0, 1, 2]


# -- files are named when complete ----------------------------------------------------------------


def test_on_a_file_system_without_hard_links_files_are_renamed_without_replacing(tmp_path, monkeypatch):
    import errno

    def no_hard_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    frames = frames_of(np.uint8, count=3)
    assert write_images(frames, prefix=str(tmp_path / "n_{}.tif")) == 3
    assert files_in(tmp_path) == ["n_0.tif", "n_1.tif", "n_2.tif"]
    assert_exactly(read_all_pages(tmp_path), frames)

    writer = TiffWriter()
    writer.open(str(tmp_path / "late.tif"))
    writer.write(frames[0])
    (tmp_path / "late.tif").write_bytes(b"precious")
    with pytest.raises(StorageError, match=r"late\.tif.*appeared"):
        writer.close()
    assert (tmp_path / "late.tif").read_bytes() == b"precious"


def test_an_exception_in_the_middle_of_an_image_abandons_the_file(tmp_path):
    class Interrupted(TiffWriter):
        def _write(self, image: np.ndarray) -> None:
            if self.frames == 1:
                raise KeyboardInterrupt  # halfway through the page, say
            super()._write(image)

    with pytest.raises(KeyboardInterrupt):
        write_images(frames_of(np.uint8, count=3), writer=Interrupted, prefix=str(tmp_path / "all.tif"))
    assert files_in(tmp_path) == []  # no file of doubtful content under a data name
