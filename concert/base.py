"""The core objects in the place scripts expect them: ``from concert.base import Parameter``.

Defined in :mod:`concert.parameters`, :mod:`concert.states` and
:mod:`concert.exceptions`; gathered here.
"""

from concert.exceptions import (
    AccessorNotImplementedError,
    HardLimitError,
    LimitError,
    LockError,
    ParameterError,
    ReadAccessError,
    SoftLimitError,
    StateError,
    UnitError,
    WriteAccessError,
)
from concert.parameters import Parameter, Parameterizable, ParameterValue, Quantity, QuantityValue
from concert.states import State, StateValue, check, transition

__all__ = [
    "AccessorNotImplementedError",
    "HardLimitError",
    "LimitError",
    "LockError",
    "Parameter",
    "ParameterError",
    "ParameterValue",
    "Parameterizable",
    "Quantity",
    "QuantityValue",
    "ReadAccessError",
    "SoftLimitError",
    "State",
    "StateError",
    "StateValue",
    "UnitError",
    "WriteAccessError",
    "check",
    "transition",
]
