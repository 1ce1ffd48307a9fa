"""Devices: the :class:`~concert.devices.base.Device` base class and one package per family.

Each family has ``base.py`` (the parameters and methods every device of the
family offers) and ``dummy.py`` (a simulated device that behaves like the
hardware and needs no arguments).
"""
