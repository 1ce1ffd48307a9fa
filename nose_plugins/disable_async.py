"""nose plugin: ``nosetests --disable-async`` runs any suite with DISABLE_ASYNC on.

Registered in the ``nose.plugins.0.10`` entry-point group, so installing
Concert is enough. Works with pynose (``pip install 'concert[nose]'``): the
original nose 1.3.7 does not run on Python 3.10 or newer.
"""

from __future__ import annotations

from nose.plugins.base import Plugin


class DisableAsync(Plugin):
    """Make every ``@async_`` call synchronous and every message immediate."""

    name = "disable-async"

    def options(self, parser, env):
        # The flag is the historical ``--disable-async``, not nose's ``--with-...``.
        parser.add_option(
            "--disable-async",
            action="store_true",
            dest="disable_async",
            default=False,
            help="Run Concert's @async_ calls synchronously (sets concert.config.DISABLE_ASYNC)",
        )

    def configure(self, options, conf):
        self.conf = conf
        self.enabled = bool(getattr(options, "disable_async", False))
        if self.enabled:
            from concert import config

            config.DISABLE_ASYNC = True
