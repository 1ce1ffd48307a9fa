"""Cameras: record frames as :class:`~concert.imaging.ImageWithMetadata`, triggered or free-running."""
