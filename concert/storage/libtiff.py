"""TIFF files written with pylibtiff: :func:`write_libtiff`, the legacy counterpart of :func:`write_tiff`.

pylibtiff (``pip install pylibtiff``; it needs the C library libtiff) is an
optional dependency that Concert does not install: without it,
:func:`write_libtiff` raises :class:`~concert.exceptions.StorageError`
saying so. :func:`~concert.storage.files.write_tiff` writes the same files
with tifffile, which Concert always has.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import numpy as np

from concert.exceptions import StorageError
from concert.storage.files import write_pages
from concert.storage.writers import ImageWriter

__all__ = ["write_libtiff"]

#: What the error says when pylibtiff is missing.
INSTALL_HINT = (
    "pylibtiff is not installed: install it with 'pip install pylibtiff' (it needs the libtiff "
    "C library, e.g. 'apt-get install libtiff-dev'), or use concert.storage.write_tiff, which "
    "writes the same files with tifffile"
)


def _tiff_class(file_name: Any) -> Any:
    """pylibtiff's ``TIFF`` class, imported now; StorageError naming ``file_name`` if it is missing."""
    try:
        from libtiff import TIFF
    except ImportError as error:
        raise StorageError(f"write_libtiff({file_name!r}): {INSTALL_HINT}") from error
    return TIFF


class _LibTiffWriter(ImageWriter):
    """An :class:`ImageWriter` whose pages pylibtiff writes (by path, into the temporary file)."""

    extension = ".tif"

    def __init__(self, tiff_class: Any) -> None:
        super().__init__()
        self._tiff_class = tiff_class
        self._tiff: Any = None

    def _open(self, stream: BinaryIO, bytes_per_file: int) -> None:
        # pylibtiff opens files by name: the temporary file the base class has just created.
        self._tiff = self._tiff_class.open(stream.raw.name, mode="w")

    def _write(self, image: np.ndarray) -> None:
        try:
            self._tiff.write_image(np.ascontiguousarray(image).view(np.ndarray))
        except OSError:
            raise
        except Exception as error:  # pylibtiff's own errors: the page may be half written
            raise OSError(f"pylibtiff: {error}") from error

    def _close(self) -> None:
        tiff, self._tiff = self._tiff, None
        if tiff is not None:
            try:
                tiff.close()
            except OSError:
                raise
            except Exception as error:
                raise OSError(f"pylibtiff: {error}") from error

    def _abandon(self) -> None:
        tiff, self._tiff = self._tiff, None
        if tiff is not None:
            try:
                tiff.close()
            except Exception:
                pass  # the file is removed anyway


def write_libtiff(file_name: str, data: Any) -> str:
    """Write ``data`` into the new TIFF file ``file_name`` with pylibtiff; return the file's name.

    As :func:`~concert.storage.files.write_tiff` does (``.tif`` appended to a
    name without a TIFF extension, a 2-D array one page, a 3-D array one page
    per item of its first axis, written under a temporary ``.partial`` name
    and named only once complete and synced, nothing ever overwritten), but
    the pages are written by pylibtiff and carry no metadata. Runs in the
    calling thread.

    :raises StorageError: if pylibtiff is not installed (the message says how
        to install it), the file exists (it is left untouched), ``data`` is
        not a non-empty 2-D or 3-D array of numbers, or writing fails; the
        message names the file.
    """
    tiff_class = _tiff_class(file_name)
    return write_pages(file_name, data, _LibTiffWriter(tiff_class))
