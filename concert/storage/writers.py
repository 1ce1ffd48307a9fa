"""Image writers and :func:`write_images`, which streams frames from a producer into files.

A writer (:class:`ImageWriter`) stores images in one file at a time:
``open(filename, bytes_per_file)``, ``write(image)`` any number of times,
``close()``; then it may be opened again on another file. :class:`TiffWriter`
writes multi-page TIFF files with :mod:`tifffile`.

Promises of this module:

* Nothing is ever overwritten. Files are created exclusively (``O_EXCL``): a
  file -- or a symbolic link, even a dangling one -- that exists under the
  name is refused with :class:`~concert.exceptions.StorageError` naming it,
  and left untouched.
* Pixel data and dtype are stored exactly as given; frames are stored
  uncompressed, one page per frame, in the order they came.
* On ``close`` the file is flushed and synced to disk (``fsync``).
* Cancellation: :func:`write_images` calls
  :func:`~concert.futures.check_cancelled` before it takes each frame, so
  run inside an operation (``walker.write``, a broadcast consumer) it stops
  when that operation is asked to stop -- after the frame in hand, which is
  written, and with the open file closed complete.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Iterable, Iterator, Mapping, Optional, Set, Tuple, Type, Union

import numpy as np

from concert.exceptions import StorageError
from concert.futures import check_cancelled
from concert.storage.files import (
    create_directory,
    existing_files,
    file_name_of,
    is_formattable,
    metadata_to_json,
    parse_rights,
)

__all__ = [
    "CLASSIC_TIFF_LIMIT",
    "ImageWriter",
    "TiffWriter",
    "as_frame",
    "needs_bigtiff",
    "write_images",
]

#: Offsets in a classic TIFF file are 32-bit: no byte of it may lie at or beyond this.
CLASSIC_TIFF_LIMIT = 2**32

#: Generous upper bound of what a page costs besides its pixels and description:
#: the IFD with its tags and values, alignment, the tifffile software tag.
PAGE_OVERHEAD = 4096


def as_frame(image: Any, what: str = "image") -> np.ndarray:
    """Return ``image`` as a non-empty 2-D numeric array (an ndarray or subclass, not copied if it is one).

    :raises StorageError: naming ``what`` if ``image`` is not such an array
        (other dimensions, no pixels, object or string dtype).
    """
    array = np.asanyarray(image)
    if array.ndim != 2 or array.size == 0:
        raise StorageError(f"{what} must be a non-empty 2-D array, got shape {array.shape}")
    if array.dtype.kind not in "biufc":
        raise StorageError(f"{what} must have a numeric or boolean dtype, got {array.dtype}")
    return array


def metadata_of(image: Any) -> Optional[Mapping[str, Any]]:
    """Return the non-empty ``metadata`` mapping of ``image`` (an ImageWithMetadata), else ``None``."""
    metadata = getattr(image, "metadata", None)
    if isinstance(metadata, Mapping) and metadata:
        return metadata
    return None


def needs_bigtiff(bytes_per_file: int, frame_bytes: int, description_bytes: int = 0) -> bool:
    """Return whether a file must be a BigTIFF file.

    ``bytes_per_file`` is the most pixel data the file will receive (a file
    always holds at least its first frame, so the bound is really
    ``max(bytes_per_file, frame_bytes)``); ``0`` means unbounded, which always
    needs BigTIFF. ``frame_bytes`` and ``description_bytes`` are the sizes of
    the first frame and its description, used to estimate the number of
    pages and their overhead. True when the estimate reaches the 4 GiB a
    classic TIFF file can address.
    """
    if bytes_per_file <= 0:
        return True
    data = max(bytes_per_file, frame_bytes)
    pages = max(1, data // max(1, frame_bytes))
    estimate = 16 + data + pages * (PAGE_OVERHEAD + description_bytes)
    return estimate >= CLASSIC_TIFF_LIMIT


class ImageWriter:
    """Base class of writers: stores images in one file at a time.

    Subclasses implement :meth:`_open`, :meth:`_write` and :meth:`_close`; this
    class checks the call order and the images. An instance is not
    thread-safe: one thread uses it at a time (:func:`write_images` makes one
    per call). It is a context manager that closes an open file on exit.
    """

    #: The file name extension the format is known by.
    extension = ""

    def __init__(self) -> None:
        self._filename: Optional[str] = None

    @property
    def filename(self) -> Optional[str]:
        """The file being written, ``None`` while closed."""
        return self._filename

    @property
    def closed(self) -> bool:
        """Whether no file is open."""
        return self._filename is None

    def open(self, filename: str, bytes_per_file: int = 0) -> None:
        """Create the new file ``filename``; it will receive at most ``bytes_per_file`` pixel bytes.

        ``bytes_per_file`` is a hint for the format (``0``: unknown, unbounded);
        the first image is always accepted, whatever its size.

        :raises StorageError: if a file is already open, or ``filename`` exists
            (it is left untouched).
        """
        if self._filename is not None:
            raise StorageError(f"{type(self).__name__} is still writing {self._filename!r}; close it first")
        self._open(os.fspath(filename), int(bytes_per_file))
        self._filename = os.fspath(filename)

    def write(self, image: Any) -> None:
        """Append ``image`` (a non-empty 2-D numeric array) to the open file.

        :raises StorageError: if no file is open, the image is not such an
            array, or the file cannot take it.
        """
        if self._filename is None:
            raise StorageError(f"{type(self).__name__}.write: no file is open")
        self._write(as_frame(image, f"image for {self._filename!r}"))

    def close(self) -> None:
        """Finish the open file and make it durable; does nothing when closed."""
        if self._filename is None:
            return
        try:
            self._close()
        finally:
            self._filename = None

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _open(self, filename: str, bytes_per_file: int) -> None:
        raise NotImplementedError

    def _write(self, image: np.ndarray) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class TiffWriter(ImageWriter):
    """Writes uncompressed multi-page TIFF files with :mod:`tifffile`, one page per image.

    ``bigtiff=None`` (the default) decides per file with :func:`needs_bigtiff`
    when the first image arrives; ``True``/``False`` force the format. A
    classic TIFF file refuses, with :class:`~concert.exceptions.StorageError`
    and before writing anything of it, an image that would not fit below
    4 GiB. The metadata of an :class:`~concert.imaging.ImageWithMetadata` is
    stored as the page's ImageDescription (see
    :func:`~concert.storage.files.metadata_to_json`) and read back by
    :func:`~concert.storage.files.read_metadata`.
    """

    extension = ".tif"

    def __init__(self, bigtiff: Optional[bool] = None) -> None:
        super().__init__()
        self._bigtiff_choice = bigtiff
        self._handle: Any = None
        self._tiff: Any = None
        self._limit = 0

    @property
    def bigtiff(self) -> Optional[bool]:
        """Whether the open file is a BigTIFF file (``None`` until its first image decides it)."""
        return None if self._tiff is None else self._tiff.tiff.is_bigtiff

    def _open(self, filename: str, bytes_per_file: int) -> None:
        try:
            # 'x': O_CREAT | O_EXCL -- never follows or replaces an existing name.
            self._handle = open(filename, "xb")  # closed in _close
        except FileExistsError:
            raise StorageError(f"refusing to overwrite {filename!r}: it exists") from None
        self._limit = bytes_per_file
        self._tiff = None  # created by the first image, which decides classic or BigTIFF

    def _write(self, image: np.ndarray) -> None:
        import tifffile

        description = metadata_of(image)
        text = None if description is None else metadata_to_json(description)
        text_bytes = 0 if text is None else len(text) + 1
        if self._tiff is None:
            bigtiff = self._bigtiff_choice
            if bigtiff is None:
                bigtiff = needs_bigtiff(self._limit, image.nbytes, text_bytes)
            self._tiff = tifffile.TiffWriter(self._handle, bigtiff=bigtiff)
        if not self._tiff.tiff.is_bigtiff:
            end = self._handle.tell() + image.nbytes + text_bytes + PAGE_OVERHEAD
            if end >= CLASSIC_TIFF_LIMIT:
                raise StorageError(
                    f"cannot add a {image.nbytes}-byte image to the classic TIFF file {self._filename!r}: "
                    "it would exceed 4 GiB (use a larger bytes_per_file, or TiffWriter(bigtiff=True))"
                )
        try:
            self._tiff.write(
                np.ascontiguousarray(image).view(np.ndarray),
                description=text,
                metadata=None,  # no tifffile "shaped" description: ours is the only one
                software=False,
                photometric="minisblack",
            )
        except (ValueError, TypeError) as error:
            raise StorageError(f"tifffile cannot write an image to {self._filename!r}: {error}") from error

    def _close(self) -> None:
        handle, tiff = self._handle, self._tiff
        self._handle = self._tiff = None
        try:
            if tiff is not None:
                tiff.close()  # writes the final IFD links; leaves our handle open
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            handle.close()


# -- write_images ----------------------------------------------------------------------------

# Data sets being written by write_images in this process, as (real directory, file template).
# Guarded by _ACTIVE_LOCK; an entry lives exactly as long as the write_images call that added it.
_ACTIVE: Set[Tuple[str, str]] = set()
_ACTIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def _reserved(directory: str, template: str) -> Iterator[None]:
    key = (os.path.realpath(directory), template)
    with _ACTIVE_LOCK:
        if key in _ACTIVE:
            raise StorageError(
                f"data set {template!r} in {directory!r} is being written by another write_images call"
            )
        _ACTIVE.add(key)
    try:
        yield
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(key)


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise StorageError(f"{name} must be a non-negative int, not {value!r}")
    return int(value)


def _split_prefix(prefix: str) -> Tuple[str, str]:
    """Split ``prefix`` into its literal directory (possibly '') and its file name template."""
    if not isinstance(prefix, (str, os.PathLike)):
        raise StorageError(f"prefix must be a str, not {prefix!r}")
    head, template = os.path.split(os.fspath(prefix))
    if not template:
        raise StorageError(f"prefix {prefix!r} names a directory, not files")
    try:
        directory = head.format()  # only escaped braces allowed: '{{' is '{'
    except (IndexError, KeyError, ValueError) as error:
        raise StorageError(
            f"the directory part {head!r} of prefix {prefix!r} must not contain replacement fields ({error})"
        ) from None
    return directory, template


def write_images(
    producer: Iterable[Any],
    writer: Union[Type[ImageWriter], Any] = TiffWriter,
    prefix: str = "image_{:>05}.tif",
    start_index: int = 0,
    bytes_per_file: int = 0,
    rights: str = "750",
) -> int:
    """Write the frames of ``producer`` to files named after ``prefix``; return how many were written.

    ``producer`` is any iterable of non-empty 2-D numeric arrays; it is consumed
    lazily, one frame at a time, in the calling thread. ``writer`` is an
    :class:`ImageWriter` subclass (or a callable returning a new writer).

    * ``prefix`` with a replacement field, ``bytes_per_file == 0``: one file
      per frame, numbered from ``start_index`` (``image_00000.tif``, …).
    * ``prefix`` with a replacement field, ``bytes_per_file > 0``: each file
      (numbered from ``start_index``, one number per file) takes frames while
      their pixel bytes add up to at most ``bytes_per_file``, and at least one
      frame, so 10 frames of N bytes with ``bytes_per_file = 3 * N`` make
      four files of 3, 3, 3 and 1 frames.
    * ``prefix`` without a replacement field: every frame goes to that one file.

    Only the file name part of ``prefix`` may be formatted; its directory is
    created (with missing parents) with ``rights`` before the first frame is
    taken. Files are created only when their first frame has arrived, so an
    empty producer writes no file. The directory is synced after the last
    file (also when the write fails or is cancelled), each file is synced
    on close.

    Nothing is overwritten: before anything is written, the directory is
    searched for files this call would create (see
    :func:`~concert.storage.files.existing_files`) and the first one found is
    named in a :class:`~concert.exceptions.StorageError`; a file appearing
    later, or matched only by an exotic template, is refused when reached.
    Two calls of this process writing the same data set at the same time are
    refused too: the second raises before taking a frame.

    :raises StorageError: for invalid arguments, existing files, a frame that
        is not a non-empty 2-D numeric array (naming its position; the frames
        before it are written and their files closed), or a writer failure.
    :raises: whatever ``producer`` raises, after closing the open file (what
        was written so far stays).
    :raises CancelledError: if the operation running this call is asked to
        stop (checked before each frame is taken; the frames taken are
        written, the open file is closed complete).
    """
    start_index = _check_count(start_index, "start_index")
    bytes_per_file = _check_count(bytes_per_file, "bytes_per_file")
    parse_rights(rights)
    directory, template = _split_prefix(prefix)
    formattable = is_formattable(template)
    file_name_of(template, start_index)  # fails early for templates that cannot work
    where = directory or os.curdir
    with _reserved(where, template):
        clash = existing_files(where, template, start_index)
        if clash:
            raise StorageError(
                f"refusing to overwrite {clash[0]!r}: it exists ({len(clash)} file(s) in the way)"
            )
        if directory:
            create_directory(directory, rights)
        try:
            written = _write_frames(
                producer, writer, directory, template, formattable, start_index, bytes_per_file
            )
        finally:
            _sync_directory(where)  # also what a failed or cancelled write made
    return written


def _write_frames(
    producer: Iterable[Any],
    writer: Any,
    directory: str,
    template: str,
    formattable: bool,
    start_index: int,
    bytes_per_file: int,
) -> int:
    image_writer = writer()
    written = 0
    files = 0
    in_file = 0  # pixel bytes in the open file
    try:
        for frame in _checked(producer):
            frame = as_frame(frame, f"frame {written} (counting from 0)")
            if image_writer.closed or (
                formattable and (bytes_per_file == 0 or in_file + frame.nbytes > bytes_per_file)
            ):
                image_writer.close()
                name = os.path.join(directory, file_name_of(template, start_index + files))
                if not formattable:
                    limit = 0  # unbounded: every frame goes here
                elif bytes_per_file == 0:
                    limit = frame.nbytes  # exactly this frame
                else:
                    limit = max(bytes_per_file, frame.nbytes)
                image_writer.open(name, bytes_per_file=limit)
                files += 1
                in_file = 0
            image_writer.write(frame)
            in_file += frame.nbytes
            written += 1
    finally:
        image_writer.close()
    return written


def _checked(producer: Iterable[Any]) -> Iterator[Any]:
    """Yield the items of ``producer``, calling :func:`~concert.futures.check_cancelled` before taking each.

    So a cancel request stops a loop over it between items, never between
    taking an item and handing it on: an item taken is always yielded.
    """
    iterator = iter(producer)
    while True:
        check_cancelled()
        try:
            item = next(iterator)
        except StopIteration:
            return
        yield item


def _sync_directory(directory: str) -> None:
    """Make new directory entries durable; a platform without directory fsync is left alone."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
