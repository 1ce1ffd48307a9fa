"""Support for testing code that uses Concert (the pytest plugin lives here)."""
