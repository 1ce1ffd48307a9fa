"""The README's main job runs and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "futures_and_messages.py"


def test_futures_and_messages_example():
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for device in ("x-motor", "y-motor", "rot", "detector"):
        assert f"{device} -> " in out
    assert out.count("-> moving") == 3 and out.count("-> standby") == 3
    assert "| x-motor  | 2.0 mm" in out and "150000 counts" in out
    assert "Everything ran in parallel" in out
