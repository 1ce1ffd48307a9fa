"""The one exception hierarchy of Concert.

Every error Concert raises on purpose derives from :class:`ConcertError`, so
``except ConcertError`` catches all of them. Where an error also has an obvious
built-in meaning it derives from that built-in too (a :class:`WaitError` is a
:class:`TimeoutError`), so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "AccessorNotImplementedError",
    "ConcertError",
    "ConfigurationError",
    "HardLimitError",
    "LimitError",
    "LockError",
    "MessagingError",
    "NetworkingError",
    "ParameterError",
    "ParameterNameError",
    "PoolExhaustedError",
    "ReadAccessError",
    "SoftLimitError",
    "StateError",
    "StorageError",
    "UnitError",
    "WaitError",
    "WriteAccessError",
]


class ConcertError(Exception):
    """Base class of every error raised by Concert."""


class ConfigurationError(ConcertError, ValueError):
    """A configuration value is invalid.

    For example a setting of :mod:`concert.config` (or its environment
    variable), or a field of a :class:`~concert.networking.endpoints.CommData`.
    """


class WaitError(ConcertError, TimeoutError):
    """Waiting for something took longer than the allowed timeout.

    The message names what was waited on and for how long.
    """


class UnitError(ConcertError, ValueError):
    """A value is not a quantity of the kind asked for.

    It has no unit, a unit of the wrong dimension (or an angle where a plain
    number is wanted, or the other way round), or a magnitude that is not
    one real number (a string, a bool, a complex number, an array).
    """


class MessagingError(ConcertError, TypeError):
    """A Dispatcher was used with an invalid argument, or in a way that would deadlock.

    Raised for a handler that is not callable, a message that cannot be used as
    a dictionary key, or a :meth:`~concert.dispatcher.Dispatcher.flush` called
    from inside a handler (which would wait for itself).
    """


class ParameterError(ConcertError, LookupError):
    """A parameter that the device does not have was asked for."""


class ParameterNameError(ParameterError, AttributeError):
    """An attribute name is a likely misspelling of a parameter's: ``motor.positon = 4 * q.mm``.

    Raised, instead of silently creating a new attribute, for writes of
    public attributes close to a parameter's name (see
    :class:`~concert.parameters.Parameterizable`), and for reads of such
    missing attributes. The message suggests the parameter. Being an
    :class:`AttributeError`, it behaves as one for ``getattr`` and ``hasattr``.
    """


class AccessorNotImplementedError(ConcertError, NotImplementedError):
    """A device does not implement the getter or setter a parameter needs."""


class ReadAccessError(ConcertError):
    """A parameter cannot be read (it has no getter)."""


class WriteAccessError(ConcertError):
    """A parameter cannot be written (it has no setter, or it is a state)."""


class LimitError(ConcertError, ValueError):
    """A value lies outside a limit, or is not a finite number (NaN, infinite, too large for a float).

    Also raised for a limit set to NaN.
    """


class SoftLimitError(LimitError):
    """A value lies outside the soft (user-settable) limits of a quantity."""


class HardLimitError(LimitError):
    """A value lies outside the limits the hardware reports, or the hardware hit one."""


class StateError(ConcertError):
    """An operation was called in a state that does not allow it.

    ``error_state`` is the state the device was in.
    """

    def __init__(self, error_state: str, msg: str = "") -> None:
        self.error_state = error_state
        super().__init__(msg or f"not allowed in state {error_state!r}")


class LockError(ConcertError):
    """A parameter is write-protected, or exclusive access cannot be had.

    Raised for writes to a locked parameter, changes to a permanent lock,
    waits for exclusive access that exceed :data:`concert.config.LOCK_TIMEOUT`,
    and lock orders that would deadlock.
    """


class StorageError(ConcertError):
    """Data could not be stored, or storing it would overwrite or escape its root."""


class NetworkingError(ConcertError):
    """A connection to a peer failed, was refused, closed or timed out."""


class PoolExhaustedError(ConcertError, RuntimeError):
    """The thread pool reached :data:`concert.config.MAX_THREADS` threads, all of them waiting.

    Raised in the call that would have had to wait for queued work no thread
    is left to run: nesting far too deep, or a runaway fan-out.
    """
