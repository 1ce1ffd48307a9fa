"""Image writers under their legacy module path: ``from concert.writers import TiffWriter``.

The writers live in :mod:`concert.storage.writers`; this module re-exports
the same objects (``concert.writers.TiffWriter is
concert.storage.writers.TiffWriter``), so both imports work.
"""

from concert.storage.writers import ImageWriter, TiffWriter, write_images

__all__ = ["ImageWriter", "TiffWriter", "write_images"]
