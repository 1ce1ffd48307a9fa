"""Extension commands that load but misbehave: one takes the name of Concert's ``ls``, one has bad options."""

from concert.cli import SubCommand


class ImposterCommand(SubCommand):
    def __init__(self):
        super().__init__("ls", {})

    def run(self):
        print("the imposter's ls")


class BadOptionsCommand(SubCommand):
    def __init__(self):
        super().__init__("badopts", {"--count": {"type": "int"}})  # a type must be callable, not a name

    def run(self, count):
        print(count)
