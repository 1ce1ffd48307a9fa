"""``python -m concert`` runs the ``concert`` command."""

import sys

from concert.cli import main

sys.exit(main())
