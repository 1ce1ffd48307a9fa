"""Pumps: move liquid or gas at a set flow rate."""
