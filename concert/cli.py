"""The ``concert`` command and :class:`SubCommand`, the base of each of its subcommands.

Every subcommand -- Concert's own (``init``, ``start``, ``run``, ``demo``,
...) and those of installed extensions alike -- is a :class:`SubCommand`
registered in the entry-point group ``concert.subcommands``
(``name = "package.module:CommandClass"``), discovered each time the command
runs. Only the chosen command is loaded (imported and instantiated); all of
them are loaded only to list them in ``concert --help``. A command whose
module fails to import therefore breaks nothing but itself: ``concert
<that command>`` says why in one line, and ``concert --help`` marks it. A
command registered by Concert itself cannot be replaced by an extension's
command of the same name (the help lists the extension's as ignored).

A command's failure that is a :class:`~concert.exceptions.ConcertError`
(wrong use: an unknown session, a bad name, a file that exists) is printed
as one line, ``concert <command>: <message>``, with exit status 1 -- never a
traceback. Wrong syntax (a missing argument, an unknown option) is one line
too, with exit status 2, as for every Unix command. Ctrl-C that a command
does not handle itself stops every Concert operation still running (as at
the end of a script, see :mod:`concert.exit_hook`) and ends the command
with one line and exit status 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, NoReturn, Optional, Sequence, Tuple, Union

import concert
from concert.exceptions import ConcertError

__all__ = ["GROUP", "SubCommand", "main"]

#: The entry-point group in which every ``concert`` subcommand is registered.
GROUP = "concert.subcommands"

Options = Mapping[Union[str, Tuple[str, ...]], Mapping[str, Any]]


class SubCommand:
    """One ``concert <name>`` subcommand.

    Two ways to define one, the legacy constructor and class attributes:

    * ``SubCommand(name, opts)`` -- ``opts`` maps an argument (``'name'``,
      ``'--force'``, or a tuple of flags such as ``('-f', '--force')``) to the
      keyword arguments of :meth:`argparse.ArgumentParser.add_argument`;
    * a subclass setting :attr:`name`, :attr:`help` and :attr:`opts`, or
      overriding :meth:`add_arguments` for full control of its parser.

    The entry point's name is the command's name: the ``concert`` command
    sets :attr:`name` to it when it loads the command. :meth:`run` is called
    with the parsed options as keyword arguments (the ``dest`` of each) and
    returns the exit status: ``None`` or ``0`` for success. Raising a
    :class:`~concert.exceptions.ConcertError` makes the command print its
    message on one line and exit with status 1.
    """

    name: str = ""
    help: str = ""
    opts: Options = MappingProxyType({})  # read-only: an instance sets its own

    def __init__(
        self, name: Optional[str] = None, opts: Optional[Options] = None, help: Optional[str] = None
    ):
        if name is not None:
            self.name = name
        if opts is not None:
            self.opts = opts
        if help is not None:
            self.help = help
        if not self.help:
            self.help = (type(self).__doc__ or "").strip().split("\n", 1)[0]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this command's options (:attr:`opts`) to ``parser``."""
        for flags, settings in self.opts.items():
            flags = (flags,) if isinstance(flags, str) else tuple(flags)
            parser.add_argument(*flags, **settings)

    def run(self, *args: Any, **kwargs: Any) -> Optional[int]:
        """Do the command's work with the parsed options; return the exit status (``None`` = 0)."""
        raise NotImplementedError(f"the subcommand {self.name!r} does not implement run()")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (`{self.prog} --help` shows the usage)\n")


class _LoadError(Exception):
    pass


def _entry_points() -> List[Any]:
    """The entry points of the group, each once (a checkout's stale metadata may repeat them)."""
    from importlib.metadata import entry_points

    every = entry_points()  # Python 3.10+ selects by group; 3.9 returns a dict of groups
    group = every.select(group=GROUP) if hasattr(every, "select") else every.get(GROUP, [])
    unique: Dict[Tuple[str, str], Any] = {}
    for entry in group:
        unique.setdefault((entry.name, entry.value), entry)
    return list(unique.values())


def _distribution(dist: Any) -> Optional[str]:
    """The normalised name of a distribution, if it can be read."""
    try:
        name = dist.metadata["Name"]
    except Exception:  # unreadable metadata: the caller falls back on the module's name
        return None
    return name.lower().replace("_", "-").replace(".", "-") if name else None


def _select(entries: Sequence[Any]) -> Tuple[Dict[str, Any], List[str]]:
    """Choose one entry per name -- Concert's own first, then the first found -- and say which are ignored."""
    names: Dict[int, Optional[str]] = {}  # distribution name by id(dist): its metadata is read once

    def own(entry: Any) -> bool:
        dist = getattr(entry, "dist", None)  # Python 3.10+
        if dist is not None:
            if id(dist) not in names:
                names[id(dist)] = _distribution(dist)
            if names[id(dist)] is not None:
                return names[id(dist)] == "concert"
        return entry.value.split(":", 1)[0].split(".", 1)[0] == "concert"

    chosen: Dict[str, Any] = {}
    ignored = []
    for entry in sorted(entries, key=lambda entry: not own(entry)):  # stable: keeps the order found
        taken = chosen.get(entry.name)
        if taken is None:
            chosen[entry.name] = entry
            continue
        whose = "one of Concert's own commands" if own(taken) else f"taken by {taken.value}"
        ignored.append(f"{entry.name} = {entry.value} is ignored: {entry.name!r} is {whose}")
    return chosen, ignored


def _load(name: str, entry: Any) -> SubCommand:
    """Import and instantiate the command of ``entry``; :class:`_LoadError` says why it cannot be."""
    try:
        found = entry.load()
        command = found() if isinstance(found, type) else found
    except Exception as error:  # a broken extension must not take the other commands down
        raise _LoadError(f"{entry.value} raised {type(error).__name__}: {error}") from None
    if not isinstance(command, SubCommand):
        raise _LoadError(f"{entry.value} is not a concert.cli.SubCommand")
    command.name = name
    return command


def _command_in(argv: Sequence[str]) -> Optional[str]:
    """The subcommand named on the command line (its first word that is not an option), if any."""
    for argument in argv:
        if argument == "--":
            return None
        if not argument.startswith("-"):
            return argument
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``concert`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    entries, ignored = _select(_entry_points())
    chosen = _command_in(arguments)
    wanted = [chosen] if chosen in entries else sorted(entries)
    commands: Dict[str, SubCommand] = {}
    broken: Dict[str, str] = {}
    for name in wanted:
        try:
            command = _load(name, entries[name])
            command.add_arguments(_Parser(prog=f"concert {name}"))  # bad options break only their command
        except _LoadError as error:
            broken[name] = str(error)
        except Exception as error:
            broken[name] = f"the options of {entries[name].value} are wrong: {type(error).__name__}: {error}"
        else:
            commands[name] = command
    if chosen in broken:
        print(f"concert {chosen}: this command cannot be loaded: {broken[chosen]}", file=sys.stderr)
        return 1

    epilog = "ignored extension commands:\n  " + "\n  ".join(ignored) if ignored and chosen is None else None
    parser = _Parser(
        prog="concert",
        description="Control beamline hardware from Python: sessions, the shell, the demo.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"concert {concert.__version__}")
    subparsers = parser.add_subparsers(dest="_command", metavar="COMMAND", parser_class=_Parser)
    for name in wanted:
        if name in broken:
            subparsers.add_parser(name, help=f"(cannot be loaded: {broken[name]})")
            continue
        command = commands[name]
        subparser = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(subparser)
    options = vars(parser.parse_args(arguments))
    name = options.pop("_command")
    if name is None:
        parser.print_help()
        return 2
    try:
        status = commands[name].run(**options)
    except BrokenPipeError:
        # Whoever read standard output went away (concert demo | head): end quietly, as Unix
        # tools do, with SIGPIPE's status; standard output now leads nowhere, so that the
        # interpreter's last flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + 13
    except ConcertError as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"concert {name}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a command that does not handle Ctrl-C itself: as at the end of a script
        stopped = []
        if "concert.executor" in sys.modules:  # else no Concert operation can be running
            from concert.exit_hook import stop_everything

            stopped = stop_everything("Ctrl-C")
        also = f"; it stopped {', '.join(stopped)}" if stopped else ""
        print(f"concert {name}: stopped by Ctrl-C{also}", file=sys.stderr)
        return 130
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
