"""Legacy-style tests of the session helpers and networking.base, importing only the legacy names.

They pass under ``nosetests --disable-async tests/nose/test_legacy_session.py``
and under pytest, in either mode: what must run concurrently runs in threads
of the test.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import unittest
from concurrent.futures import CancelledError

from concert.devices.motors.dummy import LinearMotor
from concert.devices.shutters.dummy import Shutter
from concert.exceptions import NetworkingError
from concert.networking.base import SocketConnection
from concert.quantities import q
from concert.session.utils import (
    abort_awaiting,
    check_emergency_stop,
    code_of,
    ddoc,
    dstate,
    get_default_table,
    pdoc,
)

TIMEOUT = 30  # the longest any wait of these tests may take, in seconds


def scan_sample(motor):
    """Scan the sample."""


class SessionHelpersTest(unittest.TestCase):
    def setUp(self):
        self.namespace = {
            "motor": LinearMotor(position=1 * q.mm),
            "shutter": Shutter(),
            "scan_sample": scan_sample,
        }

    def test_dstate(self):
        rows = {row[0]: row for row in dstate(self.namespace).rows}
        self.assertEqual(sorted(rows), ["motor", "shutter"])
        self.assertEqual(rows["motor"][1], "standby")
        self.assertIn("position = 1 mm", rows["motor"][2])
        self.assertIn(rows["shutter"][1], ("open", "closed"))

    def test_ddoc(self):
        rows = {row[0]: row for row in ddoc(self.namespace).rows}
        self.assertTrue(rows["motor"][1].startswith("LinearMotor: "))
        self.assertIn("position [mm]: Position", rows["motor"][2])

    def test_pdoc(self):
        self.assertEqual([row[0] for row in pdoc(namespace=self.namespace).rows], ["scan_sample"])
        self.assertIn("move", [row[0] for row in pdoc(self.namespace["motor"]).rows])

    def test_get_default_table(self):
        table = get_default_table(["Name", "Value"], widths=[10, None])
        table.add_row(["a", "b"])
        self.assertIn("| Name | Value |", str(table))

    def test_code_of_prints_the_source(self):
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code_of(scan_sample)
        self.assertTrue(out.getvalue().startswith("def scan_sample(motor):"))


class EmergencyStopTest(unittest.TestCase):
    def test_a_moving_motor_is_stopped_when_the_check_turns_true(self):
        motor = LinearMotor(motion_velocity=1 * q.mm / q.s)
        alarm = threading.Event()
        poll = check_emergency_stop(alarm.is_set, poll_interval=0.005 * q.s, namespace={"motor": motor})
        moving = threading.Event()
        outcome = []

        def move():
            future = motor.move(500 * q.mm)  # inline with DISABLE_ASYNC, in the pool otherwise
            outcome.append(future)
            try:
                future.join(TIMEOUT)
            except CancelledError as error:
                outcome.append(error)

        def watch():  # until the motor moves, at most TIMEOUT
            deadline = time.monotonic() + TIMEOUT
            while thread.is_alive() and time.monotonic() < deadline:
                if motor.state == "moving":
                    moving.set()
                    return
                moving.wait(0.001)

        thread = threading.Thread(target=move)
        thread.start()
        watch()
        try:
            self.assertTrue(moving.is_set())
            alarm.set()
            thread.join(TIMEOUT)
            self.assertFalse(thread.is_alive())
            self.assertIsInstance(outcome[-1], CancelledError)
            self.assertLess(motor.position, 500 * q.mm)
            self.assertEqual(motor.state, "standby")
        finally:
            self.assertTrue(poll.cancel(TIMEOUT))

    def test_abort_awaiting_returns_what_it_asked_to_stop(self):
        self.assertIsInstance(abort_awaiting(skip="nothing of that name"), list)


class _Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(b"ok " + line)


class SocketConnectionTest(unittest.TestCase):
    def setUp(self):
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()
        self.port = self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(TIMEOUT)

    def test_execute(self):
        connection = SocketConnection("127.0.0.1", self.port, return_sequence="\n", timeout=TIMEOUT)
        self.assertEqual(connection.execute("*IDN?"), "ok *IDN?")
        connection.send("a")
        self.assertEqual(connection.recv(), "ok a")
        connection.close()

    def test_a_port_nobody_listens_on_raises_networking_error(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        connection = SocketConnection("127.0.0.1", port, timeout=TIMEOUT)
        with self.assertRaises(NetworkingError) as caught:
            connection.execute("*IDN?")
        self.assertIn(f"127.0.0.1:{port}", str(caught.exception))
        self.assertIn("'*IDN?'", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
