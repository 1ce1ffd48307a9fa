"""Grippers: jaws that grip and release a sample."""
