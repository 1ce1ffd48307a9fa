"""``concert hello``: the smallest extension of the ``concert`` command."""

from concert.cli import SubCommand
from concert.exceptions import ConcertError


class HelloCommand(SubCommand):
    """Greet someone (an example of an extension's command)."""

    def __init__(self):
        super().__init__("hello", {"--who": {"default": "world", "help": "whom to greet (default: world)"}})

    def run(self, who):
        if not who.strip():
            raise ConcertError("--who is empty: say whom to greet")
        print(f"Hello, {who}!")
