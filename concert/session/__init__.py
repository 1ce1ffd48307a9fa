"""Concert sessions: the Python files that build a beamline's devices, and what helps in them.

:mod:`concert.session.utils` holds the session helpers -- ``dstate()``,
``ddoc()``, ``pdoc()``, ``code_of()``, ``get_default_table()``,
``abort_awaiting()`` and ``check_emergency_stop()`` -- which work on the
session's namespace (the ``__main__`` module, or a dictionary given to
them) and need neither a terminal nor IPython.
"""
