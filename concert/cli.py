"""The ``concert`` command: ``concert demo``, ``concert --version`` and subcommands of extensions.

Each subcommand is a :class:`SubCommand`. The built-in ones are listed here;
installed packages add theirs through the ``concert.subcommands`` entry-point
group (``name = "package.module:CommandClass"``), discovered every time the
command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional, Sequence

import concert

__all__ = ["SubCommand", "main"]

LOG = logging.getLogger(__name__)


class SubCommand:
    """One ``concert <name>`` subcommand.

    Subclasses set :attr:`name` and :attr:`help`, add their options in
    :meth:`add_arguments` and do their work in :meth:`run`, returning the
    process's exit status.
    """

    name: str = ""
    help: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this command's options to ``parser``."""

    def run(self, args: argparse.Namespace) -> int:
        """Run the command; return the exit status."""
        raise NotImplementedError(f"the subcommand {self.name!r} does not implement run()")


def _builtin_commands() -> List[SubCommand]:
    from concert.demo import DemoCommand

    return [DemoCommand()]


def _extension_commands(known: Sequence[str]) -> List[SubCommand]:
    from importlib.metadata import entry_points

    every = entry_points()  # Python 3.10+ selects by group; 3.9 returns a dict of groups
    group = (
        every.select(group="concert.subcommands")
        if hasattr(every, "select")
        else every.get("concert.subcommands", [])
    )
    found = []
    for entry in group:
        if entry.name in known:
            continue
        try:
            command = entry.load()()
        except Exception:  # a broken extension must not take the built-in commands down
            LOG.exception("cannot load the concert subcommand %r from %s", entry.name, entry.value)
            continue
        found.append(command)
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``concert`` command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="concert", description="Control beamline hardware from Python.")
    parser.add_argument("--version", action="version", version=f"concert {concert.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = _builtin_commands()
    commands += _extension_commands([command.name for command in commands])
    by_name = {}
    for command in commands:
        subparser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(subparser)
        by_name[command.name] = command
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return by_name[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
