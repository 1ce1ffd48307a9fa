"""Single files and directories: read_image, read_tiff, write_tiff, split_dsetformat, create_directory."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import tifffile

from concert.exceptions import ConcertError, StorageError
from concert.imaging import ImageWithMetadata
from concert.storage import (
    create_directory,
    read_image,
    read_metadata,
    read_tiff,
    split_dsetformat,
    write_tiff,
)
from concert.storage.files import existing_files, file_name_of, is_formattable, parse_rights


def test_storage_error_is_part_of_the_one_hierarchy():
    import concert.storage

    assert concert.storage.StorageError is StorageError
    assert issubclass(StorageError, ConcertError)


# -- split_dsetformat and templates -----------------------------------------------------------


@pytest.mark.parametrize(
    "dsetname, expected",
    [
        ("frame_{:>06}.tif", "frame_"),
        ("{}.tif", ""),
        ("scan-{0:04d}-{0}.tif", "scan-"),
        ("a{{b}}_{}", "a{b}_"),
        ("frames", "frames"),
        ("plain.tif", "plain.tif"),
    ],
)
def test_split_dsetformat(dsetname, expected):
    assert split_dsetformat(dsetname) == expected


@pytest.mark.parametrize("bad", ["frame_{:>06.tif", "frame_}.tif", 17, None])
def test_malformed_templates_raise_naming_them(bad):
    with pytest.raises(StorageError, match=r"format string|must be a str"):
        split_dsetformat(bad)


def test_is_formattable():
    assert is_formattable("image_{:>05}.tif")
    assert not is_formattable("image.tif")
    assert not is_formattable("image{{}}.tif")


@pytest.mark.parametrize("template", ["{name}.tif", "{}{}.tif", "{:/>5}.tif", "x/{}.tif"])
def test_templates_that_give_no_plain_file_name_are_refused(template):
    with pytest.raises(StorageError, match="data set name"):
        file_name_of(template, 1)


def test_existing_files_finds_exactly_what_a_write_would_hit(tmp_path):
    for name in [
        "frame_000001.tif",
        "frame_000005.tif",
        "frame_x.tif",
        "other_000001.tif",
        "frame_000007.txt",
    ]:
        (tmp_path / name).write_bytes(b"")
    os.symlink(tmp_path / "nowhere", tmp_path / "frame_000009.tif")  # dangling links count too
    template = "frame_{:>06}.tif"
    assert existing_files(str(tmp_path), template, 0) == [
        str(tmp_path / n) for n in ("frame_000001.tif", "frame_000005.tif", "frame_000009.tif")
    ]
    assert existing_files(str(tmp_path), template, 6) == [str(tmp_path / "frame_000009.tif")]
    assert existing_files(str(tmp_path), template, 10) == []
    assert existing_files(str(tmp_path), "frame_x.tif", 0) == [str(tmp_path / "frame_x.tif")]
    assert existing_files(str(tmp_path / "missing"), template, 0) == []


# -- rights and directories -------------------------------------------------------------------


@pytest.mark.parametrize("rights, mode", [("750", 0o750), ("700", 0o700), ("0755", 0o755), ("2770", 0o2770)])
def test_parse_rights(rights, mode):
    assert parse_rights(rights) == mode


@pytest.mark.parametrize("bad", ["", "75", "758", "rwx", "07777", 750, 0o750, None, " 750"])
def test_invalid_rights_are_refused(bad, tmp_path):
    with pytest.raises(StorageError, match="rights"):
        parse_rights(bad)
    with pytest.raises(StorageError, match="rights"):
        create_directory(str(tmp_path / "new"), bad)
    assert not (tmp_path / "new").exists()


def test_create_directory_creates_parents_with_exact_rights(tmp_path):
    old_umask = os.umask(0o077)
    try:
        create_directory(str(tmp_path / "a" / "b" / "c"), "751")
    finally:
        os.umask(old_umask)
    for path in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o751


def test_create_directory_leaves_existing_directories_alone(tmp_path):
    (tmp_path / "a").mkdir(mode=0o700)
    create_directory(str(tmp_path / "a"), "755")
    create_directory(str(tmp_path / "a" / "b"), "755")
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755


def test_rights_without_search_permission_still_create_the_whole_path(tmp_path):
    create_directory(str(tmp_path / "p" / "q"), "600")
    try:
        assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == 0o600
    finally:
        os.chmod(tmp_path / "p", 0o700)
    assert stat.S_IMODE((tmp_path / "p" / "q").stat().st_mode) == 0o600


def test_create_directory_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_bytes(b"keep")
    with pytest.raises(StorageError, match="not a directory"):
        create_directory(str(tmp_path / "file" / "sub"))
    assert (tmp_path / "file").read_bytes() == b"keep"


@pytest.mark.parametrize("bad", ["", None, 3])
def test_create_directory_refuses_bad_paths(bad):
    with pytest.raises(StorageError, match="directory"):
        create_directory(bad)


# -- reading and writing single files -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64, np.complex64])
def test_write_tiff_and_read_image_round_trip(tmp_path, dtype):
    data = (np.arange(35).reshape(5, 7) * 3 - 20).astype(dtype)
    name = str(tmp_path / "one.tif")
    assert write_tiff(name, data) == name
    restored = read_image(name)
    assert restored.dtype == data.dtype and restored.shape == (5, 7)
    assert restored.tobytes() == data.tobytes()


def test_write_tiff_of_a_stack_writes_one_page_per_item(tmp_path):
    stack = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    name = write_tiff(str(tmp_path / "stack.tiff"), stack)
    with tifffile.TiffFile(name) as tiff:
        assert len(tiff.pages) == 3
    np.testing.assert_array_equal(read_tiff(name), stack)
    np.testing.assert_array_equal(read_image(name), stack)


def test_write_tiff_never_overwrites(tmp_path):
    name = tmp_path / "taken.tif"
    name.write_bytes(b"precious")
    with pytest.raises(StorageError, match=r"taken\.tif"):
        write_tiff(str(name), np.zeros((2, 2), np.uint8))
    assert name.read_bytes() == b"precious"


def test_write_tiff_refuses_a_symlink_even_a_dangling_one(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside / "target.tif", tmp_path / "link.tif")
    with pytest.raises(StorageError, match=r"link\.tif"):
        write_tiff(str(tmp_path / "link.tif"), np.zeros((2, 2), np.uint8))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("shape", [(5,), (0, 4), (2, 3, 4, 5), ()])
def test_write_tiff_refuses_other_shapes(tmp_path, shape):
    with pytest.raises(StorageError, match="2-D"):
        write_tiff(str(tmp_path / "x.tif"), np.zeros(shape, np.uint8))
    assert not (tmp_path / "x.tif").exists()


def test_write_tiff_stores_metadata(tmp_path):
    image = ImageWithMetadata(np.ones((3, 3), np.uint16), {"frame": 4, "exposure": np.float64(0.5)})
    name = write_tiff(str(tmp_path / "meta.tif"), image)
    assert read_metadata(name) == [{"frame": 4, "exposure": 0.5}]
    assert type(read_image(name)) is np.ndarray


def test_read_image_reads_npy(tmp_path):
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "a.npy", data)
    restored = read_image(str(tmp_path / "a.npy"))
    assert restored.dtype == np.float32 and restored.tobytes() == data.tobytes()


def test_read_image_refuses_pickled_npy(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(StorageError, match=r"objects\.npy"):
        read_image(str(tmp_path / "objects.npy"))


@pytest.mark.parametrize("name", ["image.png", "image", "image.tif.bak"])
def test_read_image_refuses_unknown_types_naming_the_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"whatever")
    with pytest.raises(StorageError, match=name.replace(".", r"\.")):
        read_image(str(tmp_path / name))


def test_read_image_detects_upper_case_extensions(tmp_path):
    name = write_tiff(str(tmp_path / "UPPER.TIF"), np.eye(3, dtype=np.uint8))
    np.testing.assert_array_equal(read_image(name), np.eye(3, dtype=np.uint8))


def test_reading_a_corrupt_tiff_raises_storage_error(tmp_path):
    (tmp_path / "bad.tif").write_bytes(b"this is no tiff file at all")
    with pytest.raises(StorageError, match=r"bad\.tif"):
        read_tiff(str(tmp_path / "bad.tif"))


def test_reading_a_missing_file_raises_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(str(tmp_path / "missing.tif"))


def test_read_tiff_refuses_to_stack_pages_of_different_shapes(tmp_path):
    name = str(tmp_path / "mixed.tif")
    with tifffile.TiffWriter(name) as tiff:
        tiff.write(np.zeros((2, 3), np.uint8), metadata=None)
        tiff.write(np.zeros((4, 3), np.uint8), metadata=None)
    with pytest.raises(StorageError, match="page 1"):
        read_tiff(name)


# -- write_tiff names what read_image reads (issue 8, item 14) ----------------------------------


@pytest.mark.parametrize(
    "given, written",
    [
        ("flat", "flat.tif"),
        ("scan.5", "scan.5.tif"),
        ("frames.npy", "frames.npy.tif"),
        ("image.tif.bak", "image.tif.bak.tif"),
        ("kept.tif", "kept.tif"),
        ("kept.tiff", "kept.tiff"),
        ("KEPT.TIF", "KEPT.TIF"),
    ],
)
def test_write_tiff_gives_every_file_a_tiff_extension_and_returns_its_name(tmp_path, given, written):
    data = np.arange(12, dtype=np.uint16).reshape(3, 4)
    name = write_tiff(str(tmp_path / given), data)
    assert name == str(tmp_path / written)
    assert os.listdir(tmp_path) == [written]
    restored = read_image(name)
    assert restored.dtype == data.dtype and restored.tobytes() == data.tobytes()


def test_write_tiff_without_extension_never_overwrites_the_tif_file(tmp_path):
    (tmp_path / "flat.tif").write_bytes(b"precious")
    with pytest.raises(StorageError, match=r"flat\.tif"):
        write_tiff(str(tmp_path / "flat"), np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == ["flat.tif"]
    assert (tmp_path / "flat.tif").read_bytes() == b"precious"


def test_write_tiff_into_a_missing_directory_raises_storage_error_naming_the_file(tmp_path):
    with pytest.raises(StorageError, match=r"missing/x\.tif"):
        write_tiff(str(tmp_path / "missing" / "x.tif"), np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == []
