"""The one pint unit registry of Concert: ``from concert.quantities import q``.

Every quantity Concert makes or accepts comes from this registry, so values
from different modules can be compared and converted. Importing this module
loads pint; the concurrency core never does.
"""

from __future__ import annotations

import pint

#: The unit registry: ``2 * q.mm``, ``q.Quantity(5, 'deg')``.
q = pint.UnitRegistry()
# Quantities that come back from pickle (multiprocessing, files) belong to it too.
pint.set_application_registry(q)

__all__ = ["q"]
