"""Digital input/output devices: a set of ports to read and write."""
