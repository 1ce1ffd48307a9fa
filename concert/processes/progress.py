"""What every process shares: a progress bar, and stopping between steps when cancelled.

The bar is shown only when :data:`concert.config.PROGRESS_BAR` is true.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError
from typing import Any

from concert import config
from concert.futures import on_cancel


def progress_bar(total: int, description: str) -> Any:
    """Return a tqdm bar over ``total`` steps (disabled, and silent, unless PROGRESS_BAR is on)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not config.PROGRESS_BAR, leave=False)


class Steps:
    """Lets a running process stop between steps when its future is cancelled.

    Create it at the start of an ``@async_`` process: it registers itself as
    the cancel action, so ``future.cancel()`` and Ctrl-C make the next
    :meth:`check` raise :class:`~concurrent.futures.CancelledError`. The step
    in progress (a move, say) is finished first.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        on_cancel(self._cancelled.set)

    def check(self) -> None:
        """Raise CancelledError if the process was cancelled."""
        if self._cancelled.is_set():
            raise CancelledError("cancelled between steps")
