"""Concert sessions: the Python files that build a beamline's devices, and what runs them.

* :mod:`concert.session.store` -- where sessions live, their names, logs and locks;
* :mod:`concert.session.commands` -- the ``concert`` commands that manage them
  (``init``, ``edit``, ``show``, ``ls``, ``rm``, ``mv``, ``cp``, ``log``, ``import``, ``export``);
* :mod:`concert.session.running` -- ``concert run``, and loading a session into a namespace;
* :mod:`concert.session.shell` -- ``concert start``, the IPython shell and its keys;
* :mod:`concert.session.utils` -- the session helpers (``dstate()``, ``ddoc()``,
  ``pdoc()``, ``code_of()``, ``get_default_table()``, ``abort_awaiting()``,
  ``check_emergency_stop()``, ``stop_all()``), which work on the session's
  namespace (the ``__main__`` module, or a dictionary given to them) and need
  neither a terminal nor IPython.
"""
