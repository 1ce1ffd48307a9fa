"""The one exception hierarchy of Concert.

Every error Concert raises on purpose derives from :class:`ConcertError`, so
``except ConcertError`` catches all of them. Where an error also has an obvious
built-in meaning it derives from that built-in too (a :class:`WaitError` is a
:class:`TimeoutError`), so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "AccessorNotImplementedError",
    "AddonError",
    "AlignmentError",
    "CameraError",
    "CancelActionError",
    "ConcertError",
    "ConfigurationError",
    "DataError",
    "DeviceError",
    "ExperimentError",
    "FSMError",
    "HardLimitError",
    "IODeviceError",
    "LimitError",
    "LockError",
    "MessagingError",
    "NetworkingError",
    "ParameterDefinitionError",
    "ParameterError",
    "ParameterNameError",
    "PoolExhaustedError",
    "ProcessError",
    "ReadAccessError",
    "SessionError",
    "SessionStoreError",
    "SoftLimitError",
    "StateError",
    "StorageError",
    "TangoError",
    "TransitionNotAllowed",
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


class FSMError(ConcertError):
    """The legacy API's state-machine error, and the base of every state error here.

    ``except FSMError:`` catches every :class:`StateError` (a refused
    transition included); ``raise FSMError("message")`` works as legacy code
    wrote it.
    """


class TransitionNotAllowed(FSMError):  # noqa: N818 - the legacy API's name
    """The legacy API's error for a refused transition; every :class:`StateError` is one.

    ``raise TransitionNotAllowed("message")`` works as legacy code wrote it.
    """


class StateError(TransitionNotAllowed):
    """An operation was called in a state that does not allow it.

    ``error_state`` is the state the device was in. A
    :class:`TransitionNotAllowed` and an :class:`FSMError` too, so the
    legacy API's ``except`` clauses catch it.
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


class DataError(ConcertError, ValueError):
    """Data that does not fit where it was sent: a frame of the wrong shape or dtype, too many frames.

    Raised by the sinks and filters (:mod:`concert.coroutines`,
    :mod:`concert.pipelines`); the message names the sink or filter, the
    frame, and the expected and the received shape or dtype.
    """


class StorageError(ConcertError):
    """Data could not be stored, or storing it would overwrite or escape its root."""


class NetworkingError(ConcertError):
    """A connection to a peer failed, was refused, closed or timed out."""


class TangoError(ConcertError):
    """A Tango device reported an error (a command that raised, a value it refused).

    ``reason``, ``description`` and ``origin`` are those of the first error of
    Tango's error stack (the one that started it); ``errors`` is the whole stack
    as ``(reason, description, origin)`` tuples. The message names the device
    and the operation and shows the reason and description. Failures to reach
    a device are :class:`NetworkingError` and carry the same attributes.
    """

    reason: str = ""
    description: str = ""
    origin: str = ""
    errors: tuple = ()


class PoolExhaustedError(ConcertError, RuntimeError):
    """The thread pool reached :data:`concert.config.MAX_THREADS` threads, all of them waiting.

    Raised in the call that would have had to wait for queued work no thread
    is left to run: nesting far too deep, or a runaway fan-out.
    """


class ParameterDefinitionError(ConcertError, ValueError):
    """A parameter is declared wrongly, so its class cannot be defined.

    Raised when the class body runs, e.g. for a
    :class:`~concert.parameters.Selection` of no values, or of a string
    (whose "values" would be its letters).
    """


class CancelActionError(ConcertError, TypeError):
    """Something that cannot be called was given as a cancel action.

    For example ``future.cancel_operation = 5`` (see
    :attr:`concert.futures.Future.cancel_operation`). The message names the
    future and the value.
    """


class ProcessError(ConcertError, ValueError):
    """A legacy process was called wrongly.

    For example a scan without regions, a region without values or whose
    parameter is not a parameter value (``motor['position']``), a callback
    for a region the scan does not have, or a ``focus`` option it does not
    know. The message names the process, the argument and the value.
    """


class AlignmentError(ConcertError, RuntimeError):
    """An alignment process could not do its job with what the camera showed.

    Raised when no sample is visible in the frames of
    :func:`~concert.processes.beamline.align_rotation_axis` (every frame
    flat), when :func:`~concert.processes.beamline.find_beam` searched its
    whole area without seeing the beam, and when ``align_rotation_axis`` or
    :func:`~concert.processes.beamline.drift_to_beam` did not get within
    tolerance in ``max_iterations``. The message names the process, what it
    measured last, and where it left the motors.
    """


class SessionError(ConcertError, TypeError):
    """A session helper was given something it cannot work with.

    For example a namespace that is neither a mapping nor a module, a
    ``check`` that is not callable, or a function whose source is not
    available. The message names the helper and the argument.
    """


class SessionStoreError(ConcertError, ValueError):
    """The session store cannot do what it was asked.

    An unknown session, a name that is not an identifier, a target that
    exists (and no ``force``), a file or archive it cannot read, a session
    already running elsewhere. The message is one line naming the session
    or file, as the ``concert`` command prints it.
    """


class AddonError(ConcertError, ValueError):
    """An addon was used wrongly, or was given data it cannot take.

    For example attaching an attached addon, ``shapes`` that do not match
    the acquisitions, or a frame of another shape than the accumulator's
    array holds. The message names the addon, the acquisition and the value.
    """


class ExperimentError(ConcertError, ValueError):
    """An experiment or an acquisition was used wrongly.

    For example two acquisitions of the same name, a name that is not one
    plain directory name, ``get_acquisition`` of a name the experiment does
    not have, ``remove`` of an acquisition that is not in it, a producer that
    cannot be called, or a consumer that is not a push-style coroutine. The
    message names the experiment or acquisition and the value.
    """


class CameraError(ConcertError):
    """A camera was used in a way it does not allow (the legacy API's name for camera errors).

    Raised for a second ``stream(consumer)`` while one is running, a
    consumer that is not a primed generator, a :attr:`~concert.devices.cameras.base.Camera.convert` that
    is not callable, and -- by the simulated camera -- a background that is
    not an image. The message names the camera and the value.
    """


class DeviceError(ConcertError, TypeError):
    """Something that is not a device was given where devices are expected.

    Raised by :func:`concert.devices.base.abort` (in the future of that item).
    """


class IODeviceError(ParameterError):
    """An IO device was asked for a port it does not have (the legacy API's name).

    Raised by ``read_port``/``write_port`` and by :class:`~concert.devices.io.base.Signal` for an
    unknown port, and by :class:`~concert.devices.io.base.Signal` for a device that is not an
    :class:`~concert.devices.io.base.IO`. A :class:`~concert.exceptions.ParameterError`, so ``except
    ParameterError`` catches it too. The message names the device and the port.
    """
