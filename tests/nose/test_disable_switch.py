"""unittest-style tests run by ``nosetests --disable-async tests/nose``.

They pass only when the nose plugin has switched DISABLE_ASYNC on, which is
the point: they prove the plugin works on a real nose. pytest skips this
folder (see ``norecursedirs``).
"""

from __future__ import annotations

import threading
import unittest

from concert import config
from concert.dispatcher import Dispatcher
from concert.futures import async_


class DisableSwitchTest(unittest.TestCase):
    def test_switch_is_on(self):
        self.assertTrue(config.DISABLE_ASYNC, "run these tests with nosetests --disable-async")

    def test_calls_run_in_the_caller_s_thread(self):
        future = async_(threading.get_ident)()
        self.assertTrue(future.done())
        self.assertEqual(future.result(), threading.get_ident())

    def test_exceptions_are_stored_in_the_future(self):
        @async_
        def broken():
            raise ValueError("kept for later")

        future = broken()
        self.assertIsInstance(future.exception(), ValueError)

    def test_messages_are_delivered_before_send_returns(self):
        dispatcher = Dispatcher("nose")
        sender, seen = object(), []
        dispatcher.subscribe(sender, "ping", seen.append)
        dispatcher.send(sender, "ping")
        self.assertEqual(seen, [sender])
