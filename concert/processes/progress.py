"""The progress bar of long operations, shown only when :data:`concert.config.PROGRESS_BAR` is true."""

from __future__ import annotations

from typing import Any

from concert import config


def progress_bar(total: int, description: str) -> Any:
    """Return a tqdm bar over ``total`` steps (disabled, and silent, unless PROGRESS_BAR is on)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, disable=not config.PROGRESS_BAR, leave=False)
