"""Real Tango device servers in subprocesses for the tests: :class:`TangoProcess`.

A server runs in a session of its own (``start_new_session``), so that
:meth:`TangoProcess.kill` kills its whole process group; it is started on
port 0 and the port is read from the line
:func:`concert.networking.tango_server.run_server` prints once the server is
up (:data:`~concert.networking.tango_server.ANNOUNCEMENT`). Every wait is bounded.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from concert.networking.tango_server import ANNOUNCEMENT, device_uri
from tests.conftest import TIMEOUT

ROOT = Path(__file__).parents[2]
MOTORISH = Path(__file__).with_name("tango_servers.py")
STARTUP = 20.0  # seconds a server may take to come up on a loaded machine


class TangoProcess:
    """A device server ``argv`` (a command line) exporting device ``name``; started at construction.

    ``output`` is what the server printed before it announced itself.
    """

    def __init__(self, argv: Sequence[str], name: str, env: Optional[Dict[str, str]] = None) -> None:
        self.name = name
        self.process = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,  # unbuffered, so that select() sees every line not read yet
            cwd=str(ROOT),
            env=env,
            start_new_session=True,
        )
        self.output = b""
        self.port = self._read_port()

    @classmethod
    def motorish(cls, name: str = "a/b/c") -> TangoProcess:
        """The test server of :mod:`tests.networking.tango_servers`."""
        return cls([sys.executable, str(MOTORISH), name], name)

    @classmethod
    def concert(cls, *args: str, name: str, env: Optional[Dict[str, str]] = None) -> TangoProcess:
        """``concert ARGS...`` (e.g. ``tango serve ...``) serving device ``name``."""
        return cls([sys.executable, "-m", "concert", *args], name, env=env)

    def _read_port(self) -> int:
        deadline = time.monotonic() + STARTUP
        stdout = self.process.stdout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            line = stdout.readline()
            if not line:
                break
            match = ANNOUNCEMENT.match(line.decode(errors="replace"))
            if match:
                return int(match.group(1))
            self.output += line
        self.kill()
        raise RuntimeError(f"the Tango server did not report its port within {STARTUP} s: {self.output!r}")

    @property
    def uri(self) -> str:
        return device_uri("127.0.0.1", self.port, self.name)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` to the server alone and return its exit status (bounded by TIMEOUT)."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=TIMEOUT)
        finally:
            self.kill()

    def kill(self) -> None:
        """Kill the server's process group (harmless when it is gone)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()
