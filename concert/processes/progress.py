"""What every process shares: a progress bar.

The bar is shown only when :data:`concert.config.PROGRESS_BAR` is true.
Stopping between steps needs nothing of its own: a process's loop calls
:func:`concert.futures.check_cancelled` before each step, which raises
:class:`~concurrent.futures.CancelledError` (naming the process and the
reason) once the process's future was asked to stop.
"""

from __future__ import annotations

from typing import Any

from concert import config


def progress_bar(total: int, description: str) -> Any:
    """Return a tqdm bar over ``total`` steps (disabled, and silent, unless PROGRESS_BAR is on)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not config.PROGRESS_BAR, leave=False)
