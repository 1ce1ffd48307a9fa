"""Processes: scans, optimisation, focusing and experiments, each returning a future.

* :mod:`concert.processes.scan` -- ``scan``, ``ascan``, ``dscan``;
* :mod:`concert.processes.optimization` -- ``halver``, ``optimize_parameter``, ``focus``;
* :mod:`concert.processes.experiment` -- ``Acquisition`` and ``Experiment``;
* :mod:`concert.processes.common` -- the legacy API's spellings: ``scan`` over
  regions (a generator of futures), ``scan_param_feedback``, ``ascan``,
  ``dscan`` and ``focus`` with their legacy arguments, run by the functions
  above (one implementation, two faces). The legacy experiments are in
  :mod:`concert.experiments`, on the same run engine as
  :mod:`concert.processes.experiment`.

Long operations show a tqdm progress bar on standard error when
:data:`concert.config.PROGRESS_BAR` is true.
"""

from concert.processes.optimization import focus, halver, optimize_parameter
from concert.processes.scan import ascan, dscan, scan

__all__ = ["ascan", "dscan", "focus", "halver", "optimize_parameter", "scan"]
