"""Files: reading and writing single images, directories, and data set name templates.

Promises of this module:

* :func:`read_image` detects the file type by its extension (``.tif``,
  ``.tiff``, ``.npy``, case-insensitive) and returns the pixel data with the
  dtype and values that were written. Truncated TIFF files and unfinished
  ``.partial`` files are refused, never returned in part.
* :func:`write_tiff` never overwrites: the file is created exclusively, so an
  existing file -- also a symbolic link, even a dangling one -- makes it raise
  :class:`~concert.exceptions.StorageError` and stays untouched. Its file
  names end in ``.tif`` or ``.tiff`` (``.tif`` is appended otherwise), so
  :func:`read_image` reads what it writes.
* :func:`create_directory` gives every directory it creates exactly the
  requested rights (the umask does not apply) and leaves existing ones alone.
* :func:`open_real_directory` reaches a directory without following any
  symbolic link, for walkers that must not leave their root.
* Invalid arguments raise :class:`~concert.exceptions.StorageError` naming the
  offending value, and so do failures of the operating system while a file is
  written (a full disk); a file that cannot be opened for reading, or a
  directory that cannot be created, gives the :class:`OSError` of the system
  (it names the file).

Data set names are :meth:`str.format` templates such as ``'frame_{:>06}.tif'``:
file number ``i`` is stored in ``template.format(i)``. A template without a
replacement field names one single file.
"""

from __future__ import annotations

import json
import os
import re
import string
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

from concert.exceptions import StorageError

__all__ = [
    "create_directory",
    "existing_files",
    "file_name_of",
    "is_formattable",
    "open_directory",
    "open_real_directory",
    "parse_rights",
    "read_image",
    "read_metadata",
    "read_tiff",
    "same_directory",
    "split_dsetformat",
    "write_tiff",
]

#: Extensions :func:`read_image` understands (lower case).
TIFF_EXTENSIONS = (".tif", ".tiff")
NUMPY_EXTENSIONS = (".npy",)

#: How the names of unfinished files end: a file is written under ``<name>.<random>.partial`` and
#: gets its name only when it is complete (see :class:`~concert.storage.writers.ImageWriter`).
PARTIAL_SUFFIX = ".partial"

_RIGHTS = re.compile(r"[0-7]{3,4}")
_FORMATTER = string.Formatter()


# -- data set name templates ---------------------------------------------------------------


def _parse_template(template: str) -> List[tuple]:
    """Return ``string.Formatter().parse(template)`` as a list; StorageError if malformed."""
    if not isinstance(template, str):
        raise StorageError(f"a data set name must be a str, not {template!r}")
    try:
        return list(_FORMATTER.parse(template))
    except ValueError as error:
        raise StorageError(f"data set name {template!r} is not a valid format string: {error}") from None


def is_formattable(template: str) -> bool:
    """Return whether ``template`` has a replacement field (``{}``), i.e. names one file per number.

    :raises StorageError: if ``template`` is not a valid format string (e.g. an unmatched ``{``).
    """
    return any(field is not None for _, field, _, _ in _parse_template(template))


def split_dsetformat(dsetname: str) -> str:
    """Return the literal beginning of ``dsetname``, up to its first replacement field.

    ``split_dsetformat('frame_{:>06}.tif') == 'frame_'``. Escaped braces count as
    the characters they stand for (``'a{{b}}_{}'`` gives ``'a{b}_'``). A name
    without a replacement field is returned as the file name it stands for.

    :raises StorageError: if ``dsetname`` is not a valid format string.
    """
    literal = []
    for text, field, _, _ in _parse_template(dsetname):
        literal.append(text)
        if field is not None:
            break
    return "".join(literal)


def file_name_of(template: str, index: int) -> str:
    """Return the name of file number ``index`` of the data set ``template``.

    A template without replacement field names the same file for every index.

    :raises StorageError: if the template cannot be formatted with one integer
        (e.g. ``'{name}.tif'``), or the result is not a plain file name (empty,
        ``.``, ``..`` or containing a path separator, which a fill character
        such as ``'{:/>5}'`` would produce).
    """
    _parse_template(template)
    try:
        name = template.format(index)
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise StorageError(
            f"data set name {template!r} cannot be formatted with the file number {index}: {error!r}"
        ) from None
    if name in ("", ".", "..") or "/" in name or (os.altsep and os.altsep in name) or os.sep in name:
        raise StorageError(f"data set name {template!r} gives {name!r} for file {index}: not a file name")
    return name


def existing_files(directory: str, template: str, start_index: int = 0) -> List[str]:
    """Return the paths in ``directory`` that writing data set ``template`` from ``start_index`` would hit.

    For a formattable template these are the entries named ``template.format(i)``
    for some ``i >= start_index``; for a plain name, that one entry. Entries of
    any kind count -- files, directories, symbolic links (also dangling ones).
    Recognised numbers are those written in decimal digits (every usual
    template such as ``{}``, ``{:>06}``, ``{:05d}``); for exotic formats
    (hexadecimal …) writers still refuse to overwrite, but only when they reach
    the file. A missing ``directory`` has no entries.
    """
    if not is_formattable(template):
        path = os.path.join(directory, file_name_of(template, start_index))
        return [path] if os.path.lexists(path) else []
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    parsed = _parse_template(template)
    head = split_dsetformat(template)
    tail = "".join(text for text, _, _, _ in parsed[_last_field(parsed) + 1 :])
    hits = []
    for entry in entries:
        if not entry.startswith(head) or not entry.endswith(tail) or len(entry) < len(head) + len(tail):
            continue
        middle = entry[len(head) : len(entry) - len(tail)]
        for digits in set(re.findall(r"\d+", middle)):
            number = int(digits)
            if number >= start_index and _formats_to(template, number, entry):
                hits.append(os.path.join(directory, entry))
                break
    return sorted(hits)


def _last_field(parsed: List[tuple]) -> int:
    return max(i for i, (_, field, _, _) in enumerate(parsed) if field is not None)


def _formats_to(template: str, number: int, entry: str) -> bool:
    try:
        return template.format(number) == entry
    except (IndexError, KeyError, ValueError, TypeError, AttributeError):
        return False


# -- directories ---------------------------------------------------------------------------


def parse_rights(rights: str) -> int:
    """Return the permission bits of an octal rights string such as ``'750'`` (or ``'2750'``).

    :raises StorageError: for anything but a str of three or four octal digits.
    """
    if not isinstance(rights, str) or not _RIGHTS.fullmatch(rights):
        raise StorageError(f"rights must be a str of 3 or 4 octal digits such as '750', not {rights!r}")
    return int(rights, 8)


def create_directory(directory: str, rights: str = "750") -> None:
    """Create ``directory`` and every missing directory above it, each with ``rights``.

    ``rights`` is an octal string (user, group, others), e.g. ``'750'``.
    Directories created here get exactly these rights, whatever the umask;
    directories that already exist (also ones another thread creates
    meanwhile) are left as they are. An existing ``directory`` is fine.

    :raises StorageError: if ``rights`` is invalid, ``directory`` is empty or
        not a str, or a path component exists and is not a directory. Nothing
        is created then.
    :raises OSError: if the operating system refuses (e.g. no permission).
    """
    mode = parse_rights(rights)
    if not isinstance(directory, (str, os.PathLike)) or not os.fspath(directory):
        raise StorageError(f"directory must be a non-empty path, not {directory!r}")
    path = os.path.abspath(os.fspath(directory))
    missing = []
    probe = path
    while not os.path.isdir(probe):
        if os.path.lexists(probe):
            raise StorageError(f"cannot create directory {path!r}: {probe!r} exists and is not a directory")
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    created = []
    for new in reversed(missing):  # top-down
        try:
            os.mkdir(new, 0o700)  # owner can always enter it until the final rights are set
        except FileExistsError:
            if not os.path.isdir(new):
                raise StorageError(
                    f"cannot create directory {path!r}: {new!r} exists and is not a directory"
                ) from None
            continue  # somebody else made it: not ours to change
        created.append(new)
    for new in reversed(created):  # bottom-up: rights without 'x' must not lock us out halfway
        os.chmod(new, mode)


# -- directory descriptors -----------------------------------------------------------------
#
# Files of a data set are created relative to a descriptor of their directory (``dir_fd=``),
# never by a path: the kernel then resolves only the file's own name, inside the directory the
# descriptor stands for, and no later change of the path above it (a directory renamed,
# replaced by a symbolic link) can send the file anywhere else. These helpers open such
# descriptors. POSIX only (O_DIRECTORY, O_NOFOLLOW, ``dir_fd``), as Concert is.

#: Flags of a directory descriptor used only as ``dir_fd`` and for ``fstat``: O_PATH where the
#: system has it (Linux: needs no read permission on the directory), else read-only.
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
DIRECTORY_FLAGS = os.O_DIRECTORY | getattr(os, "O_PATH", os.O_RDONLY) | _CLOEXEC
#: How a file is created inside a held directory: never through a link (add O_EXCL or O_APPEND).
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | _CLOEXEC


def open_directory(directory: str) -> int:
    """Return a new descriptor of ``directory`` (symbolic links in the path are followed).

    The caller closes it (:func:`os.close`). It serves as ``dir_fd`` and for
    :func:`os.fstat` (on Linux it is an ``O_PATH`` descriptor: not readable).

    :raises StorageError: naming ``directory`` if it cannot be opened as a directory.
    """
    try:
        return os.open(directory, DIRECTORY_FLAGS)
    except OSError as error:
        raise StorageError(f"cannot open the directory {directory!r}: {error.strerror or error}") from error


def open_real_directory(path: str, create_below: Optional[str] = None, rights: str = "750") -> int:
    """Return a new descriptor of the directory at ``path`` without following any symbolic link.

    ``path`` is absolute and real (``os.path.realpath(path) == path``, as the
    positions of a :class:`~concert.storage.walkers.DirectoryWalker` are).
    Starting at ``/``, every component is opened relative to the one above it
    with ``O_DIRECTORY | O_NOFOLLOW``, so a component that is a symbolic link
    (or not a directory) is refused, whatever happens to the tree meanwhile:
    the descriptor is the directory that was at ``path`` when its last
    component was opened, reached through real directories only.

    With ``create_below`` (``path`` or an ancestor of it), missing components
    below it are created -- each through the descriptor of its parent -- with
    exactly ``rights`` (the umask does not apply); ones another thread creates
    meanwhile are used as they are. The caller closes the descriptor
    (:func:`os.close`); it serves as ``dir_fd`` and for :func:`os.fstat`.

    :raises StorageError: naming ``path`` and the component that is missing, a
        symbolic link or not a directory, or that the system refused to open
        or create (e.g. no permission).
    """
    mode = parse_rights(rights)
    if not os.path.isabs(path):
        raise StorageError(f"{path!r} is not an absolute path")
    parts = [part for part in path.split(os.sep) if part]
    first_created = len(parts) + 1  # index of the first component that may be created
    if create_below is not None:
        first_created = len([part for part in create_below.split(os.sep) if part])
    so_far = os.sep
    descriptor = os.open(os.sep, DIRECTORY_FLAGS)
    created: List[int] = []  # readable descriptors of the directories made here, to set their rights
    try:
        for index, part in enumerate(parts):
            so_far = os.sep + os.path.join(*parts[: index + 1])
            try:
                child = os.open(part, DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=descriptor)
            except FileNotFoundError:
                if index < first_created:
                    raise StorageError(f"cannot open {path!r}: {so_far!r} does not exist") from None
                child = _make_directory(part, descriptor)
                if child is None:  # somebody else made it meanwhile: not ours to change
                    child = os.open(part, DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=descriptor)
                else:
                    created.append(child)
            if descriptor not in created:
                os.close(descriptor)
            descriptor = child
        for made in reversed(created):  # bottom-up: rights without 'x' must not lock us out halfway
            os.fchmod(made, mode)
    except OSError as error:
        for held in {descriptor, *created}:
            os.close(held)
        raise StorageError(f"cannot open {path!r} without following links: {_why(error, so_far)}") from error
    except BaseException:
        for held in {descriptor, *created}:
            os.close(held)
        raise
    for made in created:
        if made != descriptor:
            os.close(made)
    return descriptor


def _make_directory(name: str, parent: int) -> Optional[int]:
    """Create directory ``name`` in ``parent``; return a readable descriptor of it, None if it existed."""
    try:
        os.mkdir(name, 0o700, dir_fd=parent)  # owner can always enter it until its rights are set
    except FileExistsError:
        return None
    # O_NOFOLLOW: if it was replaced by a link in between, this fails instead of reaching elsewhere.
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC, dir_fd=parent)


def _why(error: OSError, path: str) -> str:
    """Explain why ``path`` could not be opened as a directory: link, not a directory, or the OS's reason."""
    if os.path.islink(path):
        return f"{path!r} is a symbolic link"
    if os.path.lexists(path) and not os.path.isdir(path):
        return f"{path!r} is not a directory"
    return f"{path!r}: {error.strerror or error}"


def same_directory(first: int, second: int) -> bool:
    """Return whether the descriptors ``first`` and ``second`` stand for the same directory."""
    one, other = os.fstat(first), os.fstat(second)
    return (one.st_dev, one.st_ino) == (other.st_dev, other.st_ino)


# -- reading -------------------------------------------------------------------------------


def read_image(filename: str) -> np.ndarray:
    """Read the image(s) in ``filename``; the type is detected by the extension.

    ``.tif``/``.tiff`` are read by :func:`read_tiff`, ``.npy`` by
    :func:`numpy.load` (pickled objects are refused). A name ending in
    ``.partial`` is an unfinished file left by a write that did not complete
    (see :class:`~concert.storage.writers.ImageWriter`) and is refused.

    :raises StorageError: naming the file if its extension is not known, it is
        unfinished or truncated, or its content cannot be decoded.
    :raises OSError: if the file cannot be opened (e.g. it does not exist).
    """
    extension = os.path.splitext(os.fspath(filename))[1].lower()
    if extension in TIFF_EXTENSIONS:
        return read_tiff(filename)
    if extension in NUMPY_EXTENSIONS:
        try:
            return np.load(filename, allow_pickle=False)
        except ValueError as error:
            raise StorageError(f"cannot read {filename!r} as a .npy file: {error}") from error
    if extension == PARTIAL_SUFFIX:
        raise StorageError(
            f"cannot read {filename!r}: it is an unfinished file of a write that did not complete"
        )
    known = ", ".join(TIFF_EXTENSIONS + NUMPY_EXTENSIONS)
    raise StorageError(f"cannot read {filename!r}: unknown file type {extension!r} (known: {known})")


def _open_tiff(file_name: str) -> Any:
    import tifffile

    try:
        return tifffile.TiffFile(file_name)
    except OSError:
        raise
    except Exception as error:  # tifffile reports a bad file with various exceptions
        raise StorageError(f"cannot read {file_name!r} as a TIFF file: {error}") from error


def _complete_pages(tiff: Any, file_name: str) -> List[Any]:
    """Return the pages of the open ``tiff``; StorageError if the file is truncated or damaged.

    tifffile reads what it can of a truncated file: it stops (logging an error)
    at an IFD beyond the end, and makes a page without shape of a half-written
    IFD. A complete file has its last IFD's link to a next one at 0, every page
    a shape and every strip within the file.
    """
    import struct

    try:
        pages = list(tiff.pages)
        if not pages:
            raise StorageError(f"TIFF file {file_name!r} has no pages")
        size = tiff.filehandle.size
        form = tiff.tiff
        handle = tiff.filehandle
        handle.seek(tiff.pages.next_page_offset)  # where the last page's link to a next one is
        link = handle.read(form.offsetsize)
        if len(link) < form.offsetsize or struct.unpack(form.offsetformat, link)[0] != 0:
            raise StorageError(
                f"TIFF file {file_name!r} is truncated or damaged: its page {len(pages) - 1} links to "
                "a page that is not in the file (was it written completely?)"
            )
        for number, page in enumerate(pages):
            shape = getattr(page, "shape", ())
            strips = zip(getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ()))
            if not shape or 0 in shape or any(offset + count > size for offset, count in strips):
                raise StorageError(
                    f"TIFF file {file_name!r} is truncated or damaged: page {number} is incomplete "
                    "(was it written completely?)"
                )
    except StorageError:
        raise
    except Exception as error:  # what tifffile raises for a damaged structure
        raise StorageError(f"cannot read {file_name!r} as a TIFF file: {error}") from error
    return pages


def read_tiff(file_name: str) -> np.ndarray:
    """Read every page of the TIFF file ``file_name`` into one array.

    A file with one page gives that page (a 2-D array for a grey image); a
    file with several pages gives them stacked along a new first axis, in file
    order. The dtype and the pixel values are those stored. A truncated file
    (e.g. by a full disk) is refused, also when the pages before the cut
    could be read.

    :raises StorageError: if the file is not a readable TIFF file, it is
        truncated or damaged, or its pages differ in shape or dtype (read
        those with :class:`tifffile.TiffFile`).
    :raises OSError: if the file cannot be opened.
    """
    with _open_tiff(file_name) as tiff:
        try:
            pages = [page.asarray() for page in _complete_pages(tiff, file_name)]
        except StorageError:
            raise
        except Exception as error:  # tifffile: e.g. "failed to read 8192 bytes, got 4792"
            raise StorageError(f"cannot read {file_name!r} as a TIFF file: {error}") from error
    if len(pages) == 1:
        return pages[0]
    first = pages[0]
    for number, page in enumerate(pages):
        if page.shape != first.shape or page.dtype != first.dtype:
            raise StorageError(
                f"cannot stack the pages of {file_name!r}: page 0 is {first.shape} {first.dtype}, "
                f"page {number} is {page.shape} {page.dtype}"
            )
    return np.stack(pages)


def read_metadata(file_name: str) -> List[Dict[str, Any]]:
    """Return the metadata Concert stored with each page of the TIFF file ``file_name``.

    One dict per page, in file order: the ``metadata`` of the
    :class:`~concert.imaging.ImageWithMetadata` that was written (with values
    converted as :func:`metadata_to_json` describes), or ``{}`` for a page
    without such metadata.

    :raises StorageError: if the file is not a readable TIFF file, or it is
        truncated or damaged.
    :raises OSError: if the file cannot be opened.
    """
    with _open_tiff(file_name) as tiff:
        return [_decode_description(page.description) for page in _complete_pages(tiff, file_name)]


# -- metadata in TIFF descriptions ---------------------------------------------------------

#: The one key of the JSON object stored as a page's ImageDescription.
METADATA_KEY = "concert_metadata"


def json_default(value: Any) -> Any:
    """``default`` for :func:`json.dumps`: numpy scalars and arrays as numbers and lists, else ``str``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def metadata_to_json(metadata: Mapping[str, Any]) -> str:
    """Return the 7-bit ASCII JSON text stored as the description of a page with ``metadata``.

    The text is ``{"concert_metadata": {...}}``. Values JSON cannot represent are
    converted: numpy scalars and arrays to numbers and lists, anything else
    (quantities, dates …) to its ``str``. Keys become strings. A key ``"shape"``
    is written with its ``s`` escaped (``"\\u0073hape"``, the same JSON): tifffile
    takes any JSON description containing ``"shape":`` for its own and would
    reshape the pages.
    """
    text = json.dumps({METADATA_KEY: dict(metadata)}, default=json_default, ensure_ascii=True)
    # Escaping one character of a JSON string keeps its value; see the docstring.
    return text.replace('"shape":', '"\\u0073hape":')


def _decode_description(description: Optional[str]) -> Dict[str, Any]:
    if not description:
        return {}
    try:
        decoded = json.loads(description)
    except ValueError:
        return {}
    if isinstance(decoded, dict) and isinstance(decoded.get(METADATA_KEY), dict):
        return decoded[METADATA_KEY]
    return {}


# -- writing one file ----------------------------------------------------------------------


def write_tiff(file_name: str, data: Any) -> str:
    """Write ``data`` into the new TIFF file ``file_name``; return the name of the file written.

    A name that does not end in ``.tif`` or ``.tiff`` (in any case) gets
    ``.tif`` appended -- ``'flat'`` is written as ``'flat.tif'``, ``'a.npy'``
    as ``'a.npy.tif'`` -- so that :func:`read_image`, which goes by the
    extension, reads every file written here; the returned name is the one
    written. A 2-D array becomes one page, a 3-D array one page per item of
    its first axis (as :func:`read_tiff` reads them back). The metadata of an
    :class:`~concert.imaging.ImageWithMetadata` is stored with every page.

    The file is written under a temporary ``.partial`` name and gets its own
    only once complete and synced to disk (its directory is synced too); if
    anything fails, no file of that name appears and the temporary one is
    removed. The parent directory must exist. Runs in the calling thread.

    :raises StorageError: if the file exists (it is left untouched), ``data``
        is not a non-empty 2-D or 3-D array of numbers, or the system fails
        to write it (e.g. a full disk); the message names the file.
    """
    from concert.storage.writers import TiffWriter

    return write_pages(file_name, data, TiffWriter())


def write_pages(file_name: str, data: Any, writer: Any) -> str:
    """Write a 2-D array (one page) or a 3-D array (a page per item) into the new file ``file_name``.

    What :func:`write_tiff` and :func:`~concert.storage.libtiff.write_libtiff`
    share: the ``.tif`` extension added when missing, the check of ``data``,
    the temporary name and the naming once complete, synced. ``writer`` is
    an unopened :class:`~concert.storage.writers.ImageWriter`; all pages go
    into the one file. Returns the name written.

    :raises StorageError: as :func:`write_tiff`.
    """
    from concert.storage.writers import as_frame, sync_directory

    file_name = os.fspath(file_name)
    if os.path.splitext(file_name)[1].lower() not in TIFF_EXTENSIONS:
        file_name += TIFF_EXTENSIONS[0]
    array = np.asanyarray(data)
    frames = [array] if array.ndim == 2 else list(array) if array.ndim == 3 else []
    if not frames:
        raise StorageError(
            f"cannot write {file_name!r}: expected a non-empty 2-D or 3-D array, got shape {array.shape}"
        )
    frames = [as_frame(frame, f"image for {file_name!r}") for frame in frames]
    writer.open(file_name, bytes_per_file=sum(frame.nbytes for frame in frames))
    try:
        for frame in frames:
            writer.write(frame)
    except BaseException:
        writer.discard()
        raise
    writer.close()
    sync_directory(os.path.dirname(file_name) or os.curdir)
    return file_name
