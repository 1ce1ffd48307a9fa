"""The one exception hierarchy of Concert.

Every error Concert raises on purpose derives from :class:`ConcertError`, so
``except ConcertError`` catches all of them. Where an error also has an obvious
built-in meaning it derives from that built-in too (a :class:`WaitError` is a
:class:`TimeoutError`), so existing ``except`` clauses keep working.
"""

from __future__ import annotations


class ConcertError(Exception):
    """Base class of every error raised by Concert."""


class ConfigurationError(ConcertError, ValueError):
    """A setting of :mod:`concert.config` (or its environment variable) is invalid."""


class WaitError(ConcertError, TimeoutError):
    """Waiting for something took longer than the allowed timeout.

    The message names what was waited on and for how long.
    """


class UnitError(ConcertError, ValueError):
    """A value was given without a unit, or with a unit of the wrong dimension."""


class MessagingError(ConcertError, TypeError):
    """A Dispatcher was used with an invalid argument, or in a way that would deadlock.

    Raised for a handler that is not callable, a message that cannot be used as
    a dictionary key, or a :meth:`~concert.dispatcher.Dispatcher.flush` called
    from inside a handler (which would wait for itself).
    """
