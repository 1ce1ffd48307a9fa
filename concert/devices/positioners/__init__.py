"""Positioners: several motors that move one object in the laboratory frame, driven as one device."""
