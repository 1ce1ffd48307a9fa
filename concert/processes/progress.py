"""What every process shares: a progress bar.

The bar is shown only when :data:`concert.config.PROGRESS_BAR` is true.
Stopping between steps needs nothing of its own: a process's loop calls
:func:`concert.futures.check_cancelled` before each step, which raises
:class:`~concurrent.futures.CancelledError` (naming the process and the
reason) once the process's future was asked to stop.
"""

from __future__ import annotations

from typing import Any, Optional, TextIO

from concert import config


def progress_bar(total: int, description: str, file: Optional[TextIO] = None) -> Any:
    """Return a tqdm bar over ``total`` steps (disabled, and silent, unless PROGRESS_BAR is on).

    The bar is drawn on ``file``, standard error by default, and removed
    when it is closed. It redraws its line with carriage returns, which only
    a terminal shows as one line: code that may write to a pipe or a file
    should check ``file.isatty()`` first (as ``concert demo`` does).
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not config.PROGRESS_BAR, leave=False, file=file)
