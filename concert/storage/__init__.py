"""Storage: write frames to files, read them back, and walk directory trees of data sets.

Everything is importable from here:

* :mod:`concert.storage.files` -- :func:`read_image`, :func:`read_tiff`,
  :func:`read_metadata`, :func:`write_tiff`, :func:`split_dsetformat`,
  :func:`create_directory`;
* :mod:`concert.storage.writers` -- :class:`ImageWriter`, :class:`TiffWriter`,
  :func:`write_images`, :func:`needs_bigtiff`;
* :mod:`concert.storage.walkers` -- :class:`Walker`, :class:`DirectoryWalker`,
  :class:`DummyWalker`, :class:`WriteJob`, :class:`LoggingHandlerCloser`;
* :mod:`concert.storage.libtiff` -- :func:`write_libtiff`, which needs the
  optional pylibtiff (without it, it raises StorageError saying how to get it);
* :mod:`concert.storage.remote` -- :class:`RemoteDirectoryWalker`, a walker
  on another machine (loaded when first asked for: importing this package
  imports neither PyTango nor pyzmq).

Every error raised on purpose is a :class:`~concert.exceptions.StorageError`
(also available here), which names the offending file, name or value; so is
a failure of the system while image files are written (a full disk). The
rules they share: nothing existing is ever overwritten, a walker never
writes outside its root, and an image file under its own name is complete
(unfinished ones are named ``….partial`` and refused by the readers).
"""

from typing import Any

from concert.exceptions import StorageError
from concert.storage.files import (
    create_directory,
    read_image,
    read_metadata,
    read_tiff,
    split_dsetformat,
    write_tiff,
)
from concert.storage.libtiff import write_libtiff
from concert.storage.walkers import DirectoryWalker, DummyWalker, LoggingHandlerCloser, Walker, WriteJob
from concert.storage.writers import ImageWriter, TiffWriter, needs_bigtiff, write_images

__all__ = [
    "DirectoryWalker",
    "DummyWalker",
    "ImageWriter",
    "LoggingHandlerCloser",
    "RemoteDirectoryWalker",
    "StorageError",
    "TiffWriter",
    "Walker",
    "WriteJob",
    "create_directory",
    "needs_bigtiff",
    "read_image",
    "read_metadata",
    "read_tiff",
    "split_dsetformat",
    "write_images",
    "write_libtiff",
    "write_tiff",
]


def __getattr__(name: str) -> Any:
    if name == "RemoteDirectoryWalker":  # loaded when first asked for (see the module documentation)
        from concert.storage.remote import RemoteDirectoryWalker

        return RemoteDirectoryWalker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
