"""Processes: scans, optimisation, focusing and experiments, each returning a future.

* :mod:`concert.processes.scan` -- ``scan``, ``ascan``, ``dscan``;
* :mod:`concert.processes.optimization` -- ``halver``, ``optimize_parameter``, ``focus``;
* :mod:`concert.processes.experiment` -- ``Acquisition`` and ``Experiment``.

Long operations show a tqdm progress bar on standard error when
:data:`concert.config.PROGRESS_BAR` is true.
"""

from concert.processes.optimization import focus, halver, optimize_parameter
from concert.processes.scan import ascan, dscan, scan

__all__ = ["ascan", "dscan", "focus", "halver", "optimize_parameter", "scan"]
