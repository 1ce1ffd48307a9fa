"""Plugins for the nose test runner (installed with Concert, found through entry points)."""
