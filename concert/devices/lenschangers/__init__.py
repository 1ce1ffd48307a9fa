"""Lens changers: turrets that bring one of several named objectives into the beam."""
