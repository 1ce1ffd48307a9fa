"""``concert tango``: serve a Concert device, or a directory walker, over Tango.

* ``concert tango serve MODULE:FACTORY --name a/b/c --port N [--host H]``
  imports ``MODULE`` (a module on ``sys.path`` -- the current directory
  comes first, as for ``python -m`` -- or a ``.py`` file), takes
  ``FACTORY`` from it (a dotted name: ``motors.make``), calls it without
  arguments if it is callable (a device class, a function returning a
  device) or takes it as it is (a device made by the module), and serves
  the device as the Tango device ``a/b/c`` without a Tango database
  (:func:`concert.networking.tango_export.serve`). ``--port 0`` takes any
  free port; either way the command prints, once the server is up::

      Serving a/b/c on port 41833: tango://127.0.0.1:41833/a/b/c#dbase=no

  ``--host`` is the interface to listen on (default: every one); the URI
  shown names it, or ``127.0.0.1`` when listening on every interface.
* ``concert tango walker --port N [--root DIR] [--name a/b/c] [--host H]``
  serves a directory walker (:func:`concert.networking.walker_server.serve_walker`,
  given only the options that are given). If it returns the signal that
  stopped it, the command ends as ``serve`` does (130 after Ctrl-C).

Every failure -- a module that cannot be imported, a missing factory, a
factory that raises or gives no device, a bad device name or port, a port
in use -- is one line on standard error and exit status 1. SIGTERM ends a
server normally (exit status 0: a service is stopped that way), Ctrl-C
(SIGINT) with exit status 130, as every ``concert`` command; either way the
served device is stopped (``abort()``) first, and one line on standard error
says so and names the operations that were still running::

    concert tango: a/b/c stopped by SIGTERM; it stopped LinearMotor#1['position'].set(+500 mm)

Nothing heavy is imported with this module (``concert --help`` loads it):
PyTango and the devices are imported when a server starts.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
from pathlib import Path
from typing import Any, List, Optional

from concert.cli import SubCommand
from concert.exceptions import ConfigurationError

__all__ = ["TangoCommand", "load_device"]


class TangoCommand(SubCommand):
    """``concert tango serve`` and ``concert tango walker``."""

    name = "tango"
    help = (
        "serve a Concert device (tango serve MODULE:FACTORY) or a directory walker (tango walker) over Tango"
    )

    _parser: Optional[argparse.ArgumentParser] = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        self._parser = parser
        actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
        serve = actions.add_parser(
            "serve",
            help="serve a Concert device as a Tango device",
            description="Serve the device MODULE:FACTORY gives as the Tango device --name (no database).",
        )
        serve.add_argument(
            "factory",
            metavar="MODULE:FACTORY",
            help="a module (or .py file) and in it a device or a callable making one (a device class, say)",
        )
        serve.add_argument("--name", required=True, metavar="a/b/c", help="the Tango device name")
        serve.add_argument(
            "--port", required=True, type=int, metavar="N", help="the TCP port (0: any free one)"
        )
        serve.add_argument(
            "--host", default="", metavar="H", help="the interface to listen on (default: every one)"
        )
        walker = actions.add_parser(
            "walker",
            help="serve a directory walker that writes frames sent over ZeroMQ",
            description="Serve a Tango device that owns a directory walker on this machine.",
        )
        walker.add_argument(
            "--port", required=True, type=int, metavar="N", help="the TCP port (0: any free one)"
        )
        walker.add_argument(
            "--root", default=None, metavar="DIR", help="the directory the walker may write in"
        )
        walker.add_argument("--name", default=None, metavar="a/b/c", help="the Tango device name")
        walker.add_argument(
            "--host", default=None, metavar="H", help="the interface to listen on (default: every one)"
        )

    def run(self, action: Optional[str] = None, **options: Any) -> int:
        """Run the action; return its exit status (0, or 130 after Ctrl-C).

        :raises ConfigurationError: see the module documentation (one line, exit status 1).
        :raises NetworkingError: the port is in use.
        """
        if action == "serve":
            return self._serve(options["factory"], options["name"], options["port"], options["host"])
        if action == "walker":
            return self._walker(
                options["port"], options.get("root"), options.get("name"), options.get("host")
            )
        if self._parser is not None:
            self._parser.error("give an action: serve or walker")
        raise ConfigurationError("give an action: serve or walker")

    def _serve(self, factory: str, name: str, port: int, host: str) -> int:
        from concert.networking.tango_export import check_address, serve

        check_address(name, port, host)  # before the device is made
        device = load_device(factory)
        served = serve(device, name, port=port, host=host, announce_host=_announced(host))
        return _ended(name, served.received, served.stopped)

    def _walker(self, port: int, root: Optional[str], name: Optional[str], host: Optional[str]) -> int:
        from concert.networking.walker_server import serve_walker

        options: dict = {"port": port}  # what is not given keeps serve_walker's default
        for key, value in (("root", root), ("name", name), ("host", host)):
            if value is not None:
                options[key] = value
        received = serve_walker(**options)
        if isinstance(received, int) and not isinstance(received, bool):  # the signal that ended it
            return _ended(name or "the walker", received, [])
        return 0


def _announced(host: str) -> str:
    return host if host and host not in ("0.0.0.0", "::") else "127.0.0.1"


def _ended(name: str, received: Optional[int], stopped: List[str]) -> int:
    """Say how the server ended (and what it stopped); the exit status: 130 after Ctrl-C, else 0."""
    also = f"; it stopped {', '.join(stopped)}" if stopped else ""
    if received == signal.SIGINT:
        print(f"concert tango: {name} stopped by Ctrl-C{also}", file=sys.stderr, flush=True)
        return 130
    by = f" by {signal.Signals(received).name}" if received is not None else ""
    print(f"concert tango: {name} stopped{by}{also}", file=sys.stderr, flush=True)
    return 0


def load_device(spec: str) -> Any:
    """The Concert device ``MODULE:FACTORY`` gives (see the module documentation).

    :raises ConfigurationError: the text is not ``MODULE:FACTORY``, the module cannot be imported
        (or raises), it has no ``FACTORY``, calling it raises, or what it gives is not a device.
    """
    module_name, sep, factory_name = spec.rpartition(":")
    if not sep or not module_name or not factory_name:
        raise ConfigurationError(
            f"{spec!r}: give MODULE:FACTORY, e.g. concert.devices.motors.dummy:LinearMotor"
        )
    module = _import(module_name)
    found: Any = module
    for part in factory_name.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            public = sorted(name for name in vars(module) if not name.startswith("_"))
            shown = ", ".join(public[:12]) + (", ..." if len(public) > 12 else "")
            raise ConfigurationError(
                f"{spec}: {module_name} has no {factory_name!r} (it has: {shown or 'nothing public'})"
            ) from None
    from concert.devices.base import Device

    if not isinstance(found, Device):
        if not callable(found):
            raise ConfigurationError(
                f"{spec} is {_shown(found)}: neither a Concert device nor a callable making one"
            )
        try:
            found = found()
        except Exception as error:
            message = " ".join(str(error).split())
            raise ConfigurationError(
                f"{spec}() raised {type(error).__name__}" + (f": {message}" if message else "")
            ) from None
        if not isinstance(found, Device):
            raise ConfigurationError(f"{spec}() gave {_shown(found)}, not a Concert device")
    return found


def _import(module_name: str) -> Any:
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name).expanduser()
            if not path.is_file():
                raise ConfigurationError(f"{module_name}: there is no such file")
            loader_spec = importlib.util.spec_from_file_location(path.stem, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ConfigurationError(f"{module_name}: not a Python file")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[path.stem] = module
            loader_spec.loader.exec_module(module)
            return module
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as `python -m` does: modules beside the user are found
        return importlib.import_module(module_name)
    except ConfigurationError:
        raise
    except ModuleNotFoundError as error:
        raise ConfigurationError(f"cannot import {module_name}: {error}") from None
    except Exception as error:
        message = " ".join(str(error).split())
        raise ConfigurationError(
            f"importing {module_name} raised {type(error).__name__}: {message}"
        ) from None


def _shown(value: Any) -> str:
    from concert.naming import describe_value

    return describe_value(value)
