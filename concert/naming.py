"""How Concert names calls and values in messages, in the user's terms.

``LinearMotor#1.move(+5 mm)``, not ``_Motor.move``: a method call is named
after the instance it was called on and its arguments as the user wrote
them. Quantities are recognised by their ``magnitude`` and ``units``, so
this module never imports pint.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["describe_call", "describe_value"]

_LONGEST = 40  # characters of an argument's repr shown before it is cut


def describe_value(value: Any, signed: bool = False) -> str:
    """Return ``value`` as a message shows it: ``5 mm``, ``<array 4x4 uint16>``, ``'text'``.

    ``signed`` shows the sign of a quantity always (``+5 mm``): call
    arguments are often relative moves.
    """
    if value is Ellipsis:  # arguments left out
        return "..."
    magnitude = getattr(value, "magnitude", None)
    units = getattr(value, "units", None)
    if magnitude is not None and units is not None:
        try:
            number = float(magnitude)
        except (TypeError, ValueError):
            pass
        else:
            return (f"{number:+g} {units:~}" if signed else f"{number:g} {units:~}").rstrip()
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None and len(shape) > 0:
        return f"<array {'x'.join(map(str, shape))} {dtype}>"
    try:
        text = repr(value)
    except Exception:  # a repr that raises must not hide the error being reported
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."


def describe_call(func: Callable, args: tuple, kwargs: dict) -> str:
    """Return ``Device#1.method(arg, key=value)`` for a method, ``function(args)`` otherwise.

    A function whose qualified name is ``Class.name`` and whose first
    argument has an attribute ``name`` is taken for a method called on that
    argument.
    """
    name = getattr(func, "__name__", None) or type(func).__name__
    qualname = getattr(func, "__qualname__", name)
    shown_args = args
    prefix = qualname
    if "." in qualname and args and not qualname.endswith(">." + name):
        owner = args[0]
        if getattr(type(owner), name, None) is not None:
            prefix = f"{_instance_name(owner)}.{name}"
            shown_args = args[1:]
    shown = [describe_value(arg, signed=True) for arg in shown_args]
    shown.extend(f"{key}={describe_value(value, signed=True)}" for key, value in kwargs.items())
    return f"{prefix}({', '.join(shown)})"


def _instance_name(instance: Any) -> str:
    try:
        return repr(instance)
    except Exception:
        return f"<{type(instance).__name__}>"
