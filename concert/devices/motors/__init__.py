"""Motors: linear and rotation, positioned and continuous."""
