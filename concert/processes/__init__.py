"""Processes: scans, optimisation, focusing, alignment and experiments, each returning a future.

* :mod:`concert.processes.scan` -- ``scan``, ``ascan``, ``dscan``;
* :mod:`concert.processes.optimization` -- ``halver``, ``optimize_parameter``, ``focus``;
* :mod:`concert.processes.beamline` -- the beamline processes of the toolbox:
  ``acquire_dark``, ``acquire_image_with_beam``, ``acquire_frames_360``,
  ``align_rotation_axis``, ``determine_rotation_axis``, ``find_beam``,
  ``drift_to_beam``, ``center_to_beam`` and their ``AlignmentError``;
* :mod:`concert.processes.experiment` -- ``Acquisition`` and ``Experiment``;
* :mod:`concert.processes.common` -- the legacy API's spellings: ``scan`` over
  regions (a generator of futures), ``scan_param_feedback``, ``ascan``,
  ``dscan`` and ``focus`` with their legacy arguments, run by the functions
  above (one implementation, two faces), and the beamline processes. The
  legacy experiments are in :mod:`concert.experiments`, on the same run
  engine as :mod:`concert.processes.experiment`.

This package's namespace is built from the ``__all__`` of
:mod:`~concert.processes.scan`, :mod:`~concert.processes.optimization` and
:mod:`~concert.processes.beamline`.

Long operations show a tqdm progress bar on standard error when
:data:`concert.config.PROGRESS_BAR` is true.
"""

from concert.processes import beamline as _beamline
from concert.processes import optimization as _optimization
from concert.processes import scan as _scan
from concert.processes.beamline import *  # noqa: F403 - the names of its __all__
from concert.processes.optimization import *  # noqa: F403
from concert.processes.scan import *  # noqa: F403

__all__ = sorted({*_scan.__all__, *_optimization.__all__, *_beamline.__all__})
