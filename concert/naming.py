"""How Concert names calls and values in messages, in the user's terms.

``LinearMotor#1.move(+5 mm)``, not ``_Motor.move``; ``2 ms``, not
``<Quantity(0.002, 'second')>``: a method call is named after the instance
it was called on and its arguments as the user wrote them, and a device is
named by its short name (its ``repr``, e.g. ``LinearMotor#1``), never by
``str(device)`` (a table of its parameters).

A user-level operation (a parameter write, ``move()``) often runs private
methods; messages about those name the operation instead:
``with calling(device, describe):`` records, for the calling thread, what
the user called on ``device``, and :func:`current_call` returns it -- the
outermost recorded call wins, so ``move()`` that writes ``position`` is
reported as ``move(...)``.

Quantities are recognised by their ``magnitude`` and ``units``, so this
module never imports pint.
"""

from __future__ import annotations

import decimal
import enum
import functools
import math
import numbers
import threading
from typing import Any, Callable, Dict, Optional

from concert.checks import is_integer, is_real
from concert.interrupts import protected

__all__ = ["calling", "current_call", "describe_call", "describe_value", "instance_name"]

_LONGEST = 40  # characters of a repr shown before it is cut
_SHORT_ARRAY = 4  # arrays of at most this many elements are shown element by element


def describe_value(value: Any, signed: bool = False) -> str:
    """Return ``value`` as a message shows it: ``5 mm``, ``<array 4x4 uint16>``, ``'text'``.

    A quantity is its number (as short as it can be without changing it:
    ``2 ms``, ``1000.0000001 mm``) and its unit's symbol; a magnitude that
    is not a number is shown as it is (``'5' mm``, ``True mm``), so that a
    message about a refused value shows what was given. ``signed`` shows
    the sign of a number always (``+5 mm``): call arguments are often
    relative moves. A bare integer is shown in full (past 40 digits
    rounded: ``1e+400``), any other value by its ``repr`` cut after 40
    characters (so ``1.0`` stays ``1.0``: whether a refused number was an
    int or a float may matter); enum members are ``Class.NAME``.
    """
    if value is Ellipsis:  # arguments left out
        return "..."
    magnitude = getattr(value, "magnitude", None)
    units = getattr(value, "units", None)
    if magnitude is not None and units is not None:
        try:
            symbol = format(units, "~P")
        except Exception:  # not a pint unit after all
            symbol = str(units)
        return f"{_magnitude_text(magnitude, signed)} {symbol}".rstrip()
    if is_integer(value):
        return _integer_text(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if _is_array(value):
        return _array_text(value)
    return _repr(value)


def _is_array(value: Any) -> bool:
    """An array of one or more dimensions (numpy scalars and 0-d arrays are shown by ``repr``)."""
    shape = getattr(value, "shape", None)
    return isinstance(shape, tuple) and len(shape) > 0 and getattr(value, "dtype", None) is not None


def _magnitude_text(magnitude: Any, signed: bool) -> str:
    if is_real(magnitude):
        return _number_text(magnitude, signed)
    if _is_array(magnitude):
        return _array_text(magnitude)
    if getattr(magnitude, "shape", None) == () and hasattr(magnitude, "item"):  # 0-d array, numpy scalar
        try:
            return _magnitude_text(magnitude.item(), signed)  # a Python object: no shape, no recursion
        except Exception:  # item() failed: show it as it is
            pass
    return _repr(magnitude)


def _number_text(number: Any, signed: bool) -> str:
    """Integers exactly, Decimals as written, other numbers as the shortest text of their float."""
    if isinstance(number, numbers.Integral):
        text = _integer_text(number)
    elif isinstance(number, decimal.Decimal):
        text = str(number)  # exactly as written: Decimal('0.01') is 0.01
    else:
        try:
            value: Optional[float] = float(number)
        except (OverflowError, ValueError, TypeError):
            value = None
        if value is None or (math.isinf(value) and "inf" not in _repr(number).lower()):
            text = _repr(number)  # a huge Fraction or long double: no float holds it
        else:
            text = f"{value:g}"
            if float(text) != value:
                text = repr(value)
    if signed and not text.startswith(("-", "+")) and "nan" not in text.lower():
        text = "+" + text
    return text


def _integer_text(number: Any) -> str:
    """An integer in full, or -- past 40 digits -- rounded to 6 digits: ``1e+400``."""
    value = int(number)
    if -(10**_LONGEST) < value < 10**_LONGEST:
        return str(value)
    mantissa, exponent = f"{decimal.Decimal(value):.5e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


def _array_text(array: Any) -> str:
    shape = array.shape
    if 0 < getattr(array, "size", 0) <= _SHORT_ARRAY and len(shape) == 1:
        try:
            return "[" + ", ".join(_magnitude_text(element, False) for element in array) + "]"
        except Exception:  # an array that cannot be iterated after all
            pass
    return f"<array {'x'.join(map(str, shape))} {array.dtype}>"


def _repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a repr that raises must not hide the error being reported
        text = f"<{type(value).__name__}>"
    return _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."


def describe_call(func: Callable, args: tuple, kwargs: dict) -> str:
    """Return ``Device#1.method(arg, key=value)`` for a method, ``function(args)`` otherwise.

    A function whose qualified name is ``Class.name`` and whose first
    argument's class has an attribute ``name`` is taken for a method called
    on that argument, which is named by its ``repr``. Arguments are shown
    by :func:`describe_value`, numbers signed.
    """
    name = getattr(func, "__name__", None) or type(func).__name__
    qualname = getattr(func, "__qualname__", name)
    shown_args = args
    prefix = qualname
    if "." in qualname and args and not qualname.endswith(">." + name):
        owner = args[0]
        if getattr(type(owner), name, None) is not None:
            prefix = f"{instance_name(owner)}.{name}"
            shown_args = args[1:]
    shown = [describe_value(arg, signed=True) for arg in shown_args]
    shown.extend(f"{key}={describe_value(value, signed=True)}" for key, value in kwargs.items())
    return f"{prefix}({', '.join(shown)})"


def name_of(func: Any) -> str:
    """The name of a callable for messages: ``write_images`` for it and for ``partial(write_images, ...)``.

    A function defined in a function is named by its own name (no
    ``<locals>``); an object that is not a function (``Average()``) by its
    class. Never raises.
    """
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not isinstance(name, str):
        name = type(func).__qualname__
    return name.rsplit("<locals>.", 1)[-1]


def instance_name(instance: Any) -> str:
    """The short name of ``instance`` for messages: its ``repr`` (``LinearMotor#1``), never failing."""
    try:
        return repr(instance)
    except Exception:
        return f"<{type(instance).__name__}>"


# -- what the user called -----------------------------------------------------------------

_local = threading.local()  # .calls: {id(instance): describe} of the calling thread (thread-owned)


def _calls() -> Dict[int, Callable[[], str]]:
    try:
        return _local.calls
    except AttributeError:
        _local.calls = {}
        return _local.calls


class calling:  # noqa: N801 - a context manager used like a function
    """``with calling(instance, describe):`` -- what the user called on ``instance``, for messages.

    ``describe()`` returns the description (``'LinearMotor#1.move(+5 mm)'``)
    and is called only when a message needs it. While the block runs in
    this thread, :func:`current_call` of ``instance`` returns it, unless an
    enclosing block recorded a call on the same instance already: the
    outermost call is the one the user made.
    """

    __slots__ = ("_describe", "_key", "_outermost")

    def __init__(self, instance: Any, describe: Callable[[], str]) -> None:
        self._key = id(instance)  # the instance is alive while the block runs
        self._describe = describe
        self._outermost = False

    @protected
    def __enter__(self) -> None:
        calls = _calls()
        if self._key not in calls:
            calls[self._key] = self._describe
            self._outermost = True

    @protected
    def __exit__(self, *exc_info: Any) -> None:
        if self._outermost:
            _calls().pop(self._key, None)
            self._outermost = False


def current_call(instance: Any) -> Optional[str]:
    """The description of the call the user made on ``instance`` in this thread, or ``None``."""
    describe = _calls().get(id(instance))
    if describe is None:
        return None
    try:
        return describe()
    except Exception:  # a description must never replace the error being reported
        return None
