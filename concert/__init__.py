"""Concert: control laboratory and beamline hardware from scripts, tests and a shell.

Importing :mod:`concert` is cheap on purpose: it loads nothing but this file.
The pieces live in their own modules:

* :mod:`concert.config` -- run-time switches (``DISABLE_ASYNC``, ``MAX_WORKERS`` ...);
* :mod:`concert.futures` -- the ``async_`` decorator, :class:`~concert.futures.Future`,
  ``wait`` and ``resolve``;
* :mod:`concert.executor` -- the module-wide thread pool behind ``async_``;
* :mod:`concert.dispatcher` -- the publish-subscribe :class:`~concert.dispatcher.Dispatcher`;
* :mod:`concert.polling` -- ``busy_wait``/``wait_until``;
* :mod:`concert.exceptions` -- the one exception hierarchy;
* :mod:`concert.helpers` -- the public facade users import from.
"""

__version__ = "0.1.0"
