"""The core objects in the place scripts expect them: ``from concert.base import Parameter``.

Built from the ``__all__`` of :mod:`concert.parameters`, :mod:`concert.states`
and :mod:`concert.exceptions`.
"""

from concert import exceptions, parameters, states
from concert._legacy import gather

__all__ = gather(globals(), parameters, states, exceptions)
