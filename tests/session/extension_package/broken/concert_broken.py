"""An extension command whose module cannot be imported: it needs a module nobody installed."""

import concert_module_that_is_not_installed  # noqa: F401

from concert.cli import SubCommand


class BrokenCommand(SubCommand):
    def __init__(self):
        super().__init__("broken", {})

    def run(self):
        print("never")
