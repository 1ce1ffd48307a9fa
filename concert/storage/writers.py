"""Image writers and :func:`write_images`, which streams frames from a producer into files.

A writer (:class:`ImageWriter`) stores images in one file at a time:
``open(filename, bytes_per_file)``, ``write(image)`` any number of times,
``close()``; then it may be opened again on another file. :class:`TiffWriter`
writes multi-page TIFF files with :mod:`tifffile`.

Promises of this module:

* Nothing is ever overwritten. A file -- or a symbolic link, even a dangling
  one -- that exists under the name is refused with
  :class:`~concert.exceptions.StorageError` naming it, and left untouched.
* A file under its own name is complete: it is written under a temporary
  name, ``<name>.<random>.partial`` (created with ``O_EXCL | O_NOFOLLOW``),
  and gets its own with a hard link -- which never replaces anything -- once
  it is finished and synced to disk (``fsync``).
* A failure of the system while a file is written (a full disk) raises
  :class:`~concert.exceptions.StorageError` naming the file; the unfinished
  file is removed, and :func:`write_images` says how many frames were
  written completely before it.
* :func:`write_images` writes every file into the directory it started in,
  which it holds open (files are created relative to it); a directory
  replaced meanwhile stops it with StorageError naming the file.
* Pixel data and dtype are stored exactly as given; frames are stored
  uncompressed, one page per frame, in the order they came.
* Cancellation: :func:`write_images` calls
  :func:`~concert.futures.check_cancelled` before it takes each frame, so
  run inside an operation (``walker.write``, a broadcast consumer) it stops
  when that operation is asked to stop -- after the frame in hand, which is
  written, and with the open file closed complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import threading
from typing import (
    Any,
    BinaryIO,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    NoReturn,
    Optional,
    Set,
    Tuple,
    Type,
    Union,
)

import numpy as np

from concert.checks import is_integer
from concert.exceptions import StorageError
from concert.futures import check_cancelled
from concert.storage.files import (
    CREATE_FLAGS,
    DIRECTORY_FLAGS,
    PARTIAL_SUFFIX,
    create_directory,
    existing_files,
    file_name_of,
    is_formattable,
    metadata_to_json,
    open_directory,
    parse_rights,
    same_directory,
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


#: errno values with which :func:`os.link` says the file system has no hard links.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def _exists_in(directory: int, name: str) -> bool:
    """Whether ``name`` exists in the directory with descriptor ``directory``, as anything (also a link)."""
    try:
        os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _free_bytes(descriptor: int) -> Optional[int]:
    """Bytes free for us on the file system of ``descriptor``, None if the system does not say."""
    try:
        info = os.fstatvfs(descriptor)
    except (OSError, AttributeError):
        return None
    return info.f_bavail * info.f_frsize


def _reason(error: OSError, free: Optional[int]) -> str:
    """The system's reason for ``error``, with the space left when it may be about space."""
    text = str(error)  # numpy's short write has no errno: '65536 requested and 34728 written'
    if free is not None and error.errno in (None, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        text += f" ({free} bytes free on its file system)"
    return text


class ImageWriter:
    """Base class of writers: stores images in one file at a time.

    ``open(filename)`` creates the file under a temporary name next to it,
    ``<filename>.<random>.partial``, exclusively and without following a
    symbolic link; ``write(image)`` appends images; ``close()`` finishes the
    format, syncs the file to disk and only then gives it its name -- with a
    hard link, which never replaces anything (on a file system without hard
    links: a rename after checking the name is free). So a file under its own
    name is always complete; one whose writing was interrupted (the process
    killed, say) is left as ``….partial``, which no reader takes for data
    (:func:`~concert.storage.files.read_image` refuses it).

    A write that fails in the operating system (a full disk, an I/O error)
    abandons the file: the temporary file is removed, the writer is closed,
    and :class:`~concert.exceptions.StorageError` names the file and the
    frames lost with it. A refusal before anything was written (an image
    that does not fit a classic TIFF file, an invalid image) leaves the file
    open and intact.

    Subclasses implement :meth:`_open` (given the new file as a binary
    stream), :meth:`_write`, :meth:`_close` (finish the format in the
    stream; the base class flushes, syncs, closes and names the file) and
    may implement :meth:`_abandon`. An instance is not thread-safe: one thread
    uses it at a time (:func:`write_images` makes one per call). It is a
    context manager that closes an open file on exit.
    """

    #: The file name extension the format is known by.
    extension = ""

    def __init__(self) -> None:
        self._filename: Optional[str] = None
        self._name = ""  # the file's name in its directory
        self._partial = ""  # the temporary name there, while it is written
        self._directory = -1  # descriptor of its directory
        self._owns_directory = False
        self._stream: Optional[BinaryIO] = None
        self._frames = 0

    @property
    def filename(self) -> Optional[str]:
        """The file being written (the name it gets when closed), ``None`` while closed."""
        return self._filename

    @property
    def partial_filename(self) -> Optional[str]:
        """Where the open file is while it is written (``<filename>.<random>.partial``), else ``None``."""
        if self._filename is None:
            return None
        return os.path.join(os.path.dirname(self._filename), self._partial)

    @property
    def frames(self) -> int:
        """How many images the open file holds (``0`` while closed)."""
        return self._frames

    @property
    def closed(self) -> bool:
        """Whether no file is open."""
        return self._filename is None

    def open(self, filename: str, bytes_per_file: int = 0, *, dir_fd: Optional[int] = None) -> None:
        """Start the new file ``filename``; it will receive at most ``bytes_per_file`` pixel bytes.

        ``bytes_per_file`` is a hint for the format (``0``: unknown, unbounded);
        the first image is always accepted, whatever its size. With ``dir_fd``
        (an open descriptor of ``filename``'s directory, which stays the
        caller's) the file is created in that very directory under its base
        name, whatever its path leads to by now; the directory part of
        ``filename`` is then used in messages only.

        :raises StorageError: if a file is already open, ``filename`` exists as
            anything, even a dangling symbolic link (it is left untouched), or
            the system cannot create the file (the message names it).
        """
        if self._filename is not None:
            raise StorageError(f"{type(self).__name__} is still writing {self._filename!r}; close it first")
        filename = os.fspath(filename)
        name = os.path.basename(filename)
        if not name:
            raise StorageError(f"{type(self).__name__}.open: {filename!r} names a directory, not a file")
        owns = dir_fd is None
        directory = -1 if owns else dir_fd
        partial = f"{name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        try:
            if owns:
                directory = os.open(os.path.dirname(filename) or os.curdir, DIRECTORY_FLAGS)
            if _exists_in(directory, name):
                raise StorageError(f"refusing to overwrite {filename!r}: it exists")
            # O_EXCL | O_NOFOLLOW, relative to the directory's descriptor: a new file exactly there.
            descriptor = os.open(partial, CREATE_FLAGS | os.O_EXCL, 0o666, dir_fd=directory)
        except BaseException as error:
            if owns and directory >= 0:
                os.close(directory)
            if isinstance(error, OSError):
                raise StorageError(f"cannot create {filename!r}: {error.strerror or error}") from error
            raise
        stream = os.fdopen(descriptor, "wb")
        stream.raw.name = os.path.join(os.path.dirname(filename), partial)  # a path, for libraries' messages
        try:
            self._open(stream, int(bytes_per_file))
        except BaseException:
            stream.close()
            os.unlink(partial, dir_fd=directory)
            if owns:
                os.close(directory)
            raise
        self._filename, self._name, self._partial = filename, name, partial
        self._directory, self._owns_directory, self._stream = directory, owns, stream
        self._frames = 0

    def write(self, image: Any) -> None:
        """Append ``image`` (a non-empty 2-D numeric array) to the open file.

        :raises StorageError: if no file is open, the image is not such an
            array or the file cannot take it (the file stays open and intact
            then), or the system fails to write it, e.g. the disk is full (the
            file is abandoned then, see the class documentation). Any other
            exception while the image is written abandons the file as well,
            and propagates.
        """
        if self._filename is None:
            raise StorageError(f"{type(self).__name__}.write: no file is open")
        frame = as_frame(image, f"image for {self._filename!r}")
        try:
            self._write(frame)
        except StorageError:
            raise  # a refusal: nothing of the image was written, the file is intact
        except OSError as error:
            self._fail(f"cannot write frame {self._frames} (counting from 0) to", error)
        except BaseException:
            self.discard()  # interrupted halfway (KeyboardInterrupt, …): the file may hold half a page
            raise
        self._frames += 1

    def close(self) -> None:
        """Finish the open file, sync it to disk and give it its name; does nothing when closed.

        The name's directory entry is made durable by :func:`write_images`
        and :func:`~concert.storage.files.write_tiff`; who uses a writer
        directly syncs the directory if it needs that.

        :raises StorageError: if the system fails to finish the file (it is
            abandoned, see the class documentation), or a file of that name
            appeared meanwhile -- it is not replaced, and the complete file is
            kept under its ``.partial`` name, which the message gives.
        """
        if self._filename is None:
            return
        stream = self._stream
        try:
            self._close()
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
            self._give_name()
        except OSError as error:
            self._fail("cannot finish", error)
        except BaseException:
            self.discard()
            raise
        self._reset()

    def discard(self) -> None:
        """Abandon the open file: close it and remove it, so that nothing appears under its name.

        Does nothing when closed.
        """
        if self._filename is None:
            return
        try:
            self._abandon()
        finally:
            with contextlib.suppress(OSError):
                self._stream.close()  # may fail to flush on a full disk: the data goes anyway
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._partial, dir_fd=self._directory)
            self._reset()

    def _give_name(self) -> None:
        """Link the complete file to its name, never replacing anything; then drop the temporary name."""
        directory, name, partial = self._directory, self._name, self._partial
        try:
            os.link(partial, name, src_dir_fd=directory, dst_dir_fd=directory)
        except FileExistsError:
            self._appeared()
        except OSError as error:
            if error.errno not in _NO_HARD_LINKS:
                raise
            if _exists_in(directory, name):  # no atomic way without hard links: check, then rename
                self._appeared()
            os.rename(partial, name, src_dir_fd=directory, dst_dir_fd=directory)
            return
        with contextlib.suppress(OSError):  # it is named; a leftover second link would be harmless
            os.unlink(partial, dir_fd=directory)

    def _appeared(self) -> NoReturn:
        filename, kept = self._filename, self.partial_filename
        self._reset()  # the complete file stays under its temporary name
        raise StorageError(
            f"refusing to overwrite {filename!r}: it appeared while it was being written; "
            f"the complete file is kept as {kept!r}"
        )

    def _fail(self, action: str, error: OSError) -> NoReturn:
        """Abandon the file after ``error`` and raise StorageError saying what was lost."""
        filename, frames = self._filename, self._frames
        free = _free_bytes(self._stream.fileno()) if not self._stream.closed else None
        self.discard()
        raise StorageError(
            f"{action} {filename!r}: {_reason(error, free)}; the unfinished file was removed, "
            f"with the {frames} frame(s) already in it"
        ) from error

    def _reset(self) -> None:
        if self._owns_directory:
            os.close(self._directory)
        self._filename, self._name, self._partial = None, "", ""
        self._directory, self._owns_directory, self._stream = -1, False, None
        self._frames = 0

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _open(self, stream: BinaryIO, bytes_per_file: int) -> None:
        """Start the format in ``stream``, the new file: binary, writable, seekable; the base closes it."""
        raise NotImplementedError

    def _write(self, image: np.ndarray) -> None:
        """Append ``image`` (checked: a non-empty 2-D numeric array) to the file."""
        raise NotImplementedError

    def _close(self) -> None:
        """Finish the format in the stream; the base class then flushes, syncs, closes and names the file."""
        raise NotImplementedError

    def _abandon(self) -> None:
        """Forget the file, which the base class closes and removes; nothing more may be written to it."""


class TiffWriter(ImageWriter):
    """Writes uncompressed multi-page TIFF files with :mod:`tifffile`, one page per image.

    ``bigtiff=None`` (the default) decides per file with :func:`needs_bigtiff`
    when the first image arrives; ``True``/``False`` force the format. A
    classic TIFF file refuses, with :class:`~concert.exceptions.StorageError`
    and before writing anything of it, an image that would not fit below
    4 GiB. The metadata of an :class:`~concert.imaging.ImageWithMetadata` is
    stored as the page's ImageDescription (see
    :func:`~concert.storage.files.metadata_to_json`) and read back by
    :func:`~concert.storage.files.read_metadata`. Files are written and named
    as :class:`ImageWriter` describes.
    """

    extension = ".tif"

    def __init__(self, bigtiff: Optional[bool] = None) -> None:
        super().__init__()
        self._bigtiff_choice = bigtiff
        self._handle: Optional[BinaryIO] = None
        self._tiff: Any = None
        self._limit = 0

    @property
    def bigtiff(self) -> Optional[bool]:
        """Whether the open file is a BigTIFF file (``None`` until its first image decides it)."""
        return None if self._tiff is None else self._tiff.tiff.is_bigtiff

    def _open(self, stream: BinaryIO, bytes_per_file: int) -> None:
        self._handle = stream
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
        tiff = self._tiff
        self._handle = self._tiff = None
        if tiff is not None:
            tiff.close()  # writes the final IFD links; leaves the stream open for the base class

    def _abandon(self) -> None:
        self._handle = self._tiff = None  # tifffile's writer holds nothing but our stream


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
    if not is_integer(value) or value < 0:
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
      per frame, numbered from ``start_index`` (``image_00000.tif``, …); each
      file is complete and named before the next frame is taken.
    * ``prefix`` with a replacement field, ``bytes_per_file > 0``: each file
      (numbered from ``start_index``, one number per file) takes frames while
      their pixel bytes add up to at most ``bytes_per_file``, and at least one
      frame, so 10 frames of N bytes with ``bytes_per_file = 3 * N`` make
      four files of 3, 3, 3 and 1 frames.
    * ``prefix`` without a replacement field: every frame goes to that one file.

    Only the file name part of ``prefix`` may be formatted; its directory is
    created (with missing parents) with ``rights`` before the first frame is
    taken. Files are created only when their first frame has arrived, so an
    empty producer writes no file. Each file is written under a temporary
    ``.partial`` name and named when complete and synced (see
    :class:`ImageWriter`); the directory is synced after the last file (also
    when the write fails or is cancelled).

    Every file goes into the directory ``prefix`` named when the call began:
    it is held open and files are created relative to it. Before each file
    is created and before it is named, its path is checked to still lead
    there; if the directory was replaced meanwhile (by a symbolic link to
    elsewhere, say) or removed, the write stops with
    :class:`~concert.exceptions.StorageError` naming the file, which is not
    written anywhere.

    Nothing is overwritten: before anything is written, the directory is
    searched for files this call would create (see
    :func:`~concert.storage.files.existing_files`) and the first one found is
    named in a :class:`~concert.exceptions.StorageError`; a file appearing
    later, or matched only by an exotic template, is refused when reached.
    Two calls of this process writing the same data set at the same time are
    refused too: the second raises before taking a frame.

    :raises StorageError: for invalid arguments, existing files, a frame that
        is not a non-empty 2-D numeric array (naming its position; the frames
        before it are written and their files closed), a writer failure, a
        failure of the system such as a full disk, or a replaced directory.
        A failure while writing a file names it, removes it (its frames are
        lost) and says how many frames were written completely, to how many
        files, before it.
    :raises OSError: if the directory cannot be created (e.g. no permission),
        before a frame is taken.
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
    where = directory or os.curdir

    def open_target(create: bool) -> int:
        if create and directory:
            create_directory(directory, rights)
        return open_directory(where)

    return write_data_set(producer, writer, where, template, start_index, bytes_per_file, open_target)


def write_data_set(
    producer: Iterable[Any],
    writer: Union[Type[ImageWriter], Any],
    directory: str,
    template: str,
    start_index: int,
    bytes_per_file: int,
    open_target: Callable[[bool], int],
) -> int:
    """Write the frames of ``producer`` as data set ``template`` in ``directory``; return their number.

    What :func:`write_images` does once it has split its prefix, shared with
    :class:`~concert.storage.walkers.DirectoryWalker`, which brings its own
    ``open_target``: called with ``True`` it returns a descriptor of the
    directory, creating it if needed; with ``False``, a new descriptor of what
    ``directory`` leads to now (or it raises), to check that it is still the
    directory being written into. The arguments are checked by the caller.

    :raises StorageError: as :func:`write_images` does.
    """
    formattable = is_formattable(template)
    file_name_of(template, start_index)  # fails early for templates that cannot work
    with _reserved(directory, template):
        clash = existing_files(directory, template, start_index)
        if clash:
            raise StorageError(
                f"refusing to overwrite {clash[0]!r}: it exists ({len(clash)} file(s) in the way)"
            )
        target = _Target(directory, open_target)
        try:
            return _write_frames(producer, writer, target, template, formattable, start_index, bytes_per_file)
        finally:
            target.close()  # syncs the directory: also what a failed or cancelled write made


class _Target:
    """The directory a data set is written into, held open by a descriptor for the whole write.

    Why this is race-free: every file is created with ``openat(descriptor,
    name, O_CREAT | O_EXCL | O_NOFOLLOW)``, so the kernel resolves only the
    file's own name, inside the directory held -- whatever the path to it
    leads to by then, and never through a link at the name. :meth:`check`,
    before each file is created and again before it is named, opens the path
    afresh (as the owner's ``open_target`` does: for a walker without
    following any link from ``/``) and compares it with the descriptor, so a
    directory replaced meanwhile is an error instead of a silent write into a
    directory that is no longer where the data set belongs. A file being
    written when that happens never gets its name. What no check can stop is
    someone moving (renaming) the held directory itself between the last
    check and the link that names a file; that file then lies wherever the
    directory went.
    """

    def __init__(self, path: str, open_target: Callable[[bool], int]) -> None:
        self.path = path
        self._open_target = open_target
        self.descriptor = open_target(True)

    def check(self, file_name: str) -> None:
        """Raise StorageError naming ``file_name`` unless :attr:`path` still leads to the directory held."""
        try:
            now = self._open_target(False)
        except (StorageError, OSError) as error:
            raise StorageError(
                f"not writing {file_name!r}: its directory {self.path!r} was replaced or removed during the "
                f"write ({error})"
            ) from error
        try:
            same = same_directory(now, self.descriptor)
        finally:
            os.close(now)
        if not same:
            raise StorageError(
                f"not writing {file_name!r}: {self.path!r} is no longer the directory the write started in "
                "(it was replaced during the write)"
            )

    def close(self) -> None:
        """Sync the directory (its new entries) and close its descriptor."""
        try:
            _sync_descriptor(self.descriptor)
        finally:
            os.close(self.descriptor)


def _write_frames(
    producer: Iterable[Any],
    writer: Any,
    target: _Target,
    template: str,
    formattable: bool,
    start_index: int,
    bytes_per_file: int,
) -> int:
    image_writer = writer()
    written = 0  # frames taken from the producer and handed to the writer
    complete = 0  # frames in files that are finished and named
    files = 0  # files finished and named
    in_file = 0  # pixel bytes in the open file

    def finish() -> None:
        """Close the open file after checking its directory is still in place; it gets its name."""
        nonlocal complete, files
        if image_writer.closed:
            return
        try:
            target.check(image_writer.filename)
        except StorageError:
            image_writer.discard()
            raise
        frames = image_writer.frames
        image_writer.close()
        complete += frames
        files += 1

    @contextlib.contextmanager
    def reported() -> Iterator[None]:
        """Add to a failure of a file what was written completely before it."""
        try:
            yield
        except StorageError as error:
            with contextlib.suppress(StorageError):
                finish()  # a file the failure left intact is kept, complete
            raise StorageError(
                f"{error}; {complete} frame(s) were written completely, to {files} file(s), before it"
            ) from error

    try:
        for frame in _checked(producer):
            frame = as_frame(frame, f"frame {written} (counting from 0)")
            with reported():
                if image_writer.closed or (
                    formattable and (bytes_per_file == 0 or in_file + frame.nbytes > bytes_per_file)
                ):
                    finish()
                    name = file_name_of(template, start_index + files)
                    if target.path != os.curdir:
                        name = os.path.join(target.path, name)
                    if not formattable:
                        limit = 0  # unbounded: every frame goes here
                    elif bytes_per_file == 0:
                        limit = frame.nbytes  # exactly this frame
                    else:
                        limit = max(bytes_per_file, frame.nbytes)
                    target.check(name)
                    image_writer.open(name, bytes_per_file=limit, dir_fd=target.descriptor)
                    in_file = 0
                image_writer.write(frame)
                in_file += frame.nbytes
                written += 1
                if formattable and bytes_per_file == 0:
                    finish()  # one frame per file: it is complete, name it now
    finally:
        with reported():
            finish()
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


def sync_directory(directory: str) -> None:
    """Make the new entries of ``directory`` durable; a platform without directory fsync is left alone."""
    _sync(directory, None)


def _sync_descriptor(directory: int) -> None:
    """:func:`sync_directory` for the directory with descriptor ``directory`` (maybe an O_PATH one)."""
    _sync(os.curdir, directory)


def _sync(path: str, dir_fd: Optional[int]) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
