"""Sample changers: robots that mount one sample of a magazine, or none."""
