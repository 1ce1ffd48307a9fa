"""Experiments of the legacy API: ``from concert.experiments.base import Acquisition, Experiment``.

* :mod:`concert.experiments.base` -- :class:`~concert.experiments.base.Acquisition`,
  :class:`~concert.experiments.base.Experiment`,
  :class:`~concert.experiments.base.ExperimentError`, and the run engine
  that :mod:`concert.processes.experiment` shares;
* :mod:`concert.experiments.addons` -- what can be attached to
  acquisitions: :class:`~concert.experiments.addons.Consumer`,
  :class:`~concert.experiments.addons.Accumulator`,
  :class:`~concert.experiments.addons.ImageWriter`;
* :mod:`concert.experiments.imaging` -- :func:`~concert.experiments.imaging.frames`
  and the tomography sampling formulas;
* :mod:`concert.experiments.control` -- closed feedback loops.

Importing this package imports none of them.
"""
