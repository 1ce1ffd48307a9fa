"""concert.networking.base: SocketConnection against real TCP servers on 127.0.0.1.

Each server runs in a thread of the test (socketserver) on a port the system
chooses; the behaviours are those of real controllers: an echo, one that
splits its replies byte by byte, one that sends several replies in one
packet, one that never answers, one that hangs up, and a port nobody listens on.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from concert.exceptions import ConfigurationError, NetworkingError, UnitError
from concert.networking import base, endpoints
from concert.networking.base import CommData, SocketConnection, SocketType
from concert.polling import busy_wait
from concert.quantities import q
from tests.conftest import TIMEOUT

SHORT = 0.3  # the client timeout of tests that expect a timeout, in seconds


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = False


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.server.behaviour(self)


@pytest.fixture
def serve():
    """``serve(behaviour)``: a server running ``behaviour(handler)`` per connection; returns its port."""
    servers = []

    def start(behaviour) -> int:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.behaviour = behaviour
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server.server_address[1]

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def _lines(handler):
    """The lines the client sends (without their newline), until it hangs up."""
    while True:
        line = handler.rfile.readline()
        if not line:
            return
        yield line.rstrip(b"\n")


def echo(handler) -> None:
    for line in _lines(handler):
        handler.wfile.write(b"re:" + line + b"\n")
        handler.wfile.flush()


def bytewise(handler) -> None:
    handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for line in _lines(handler):
        for byte in b"re:" + line + b"\n":
            handler.connection.sendall(bytes([byte]))
            time.sleep(0.001)  # a slow controller: every byte its own packet


def batched(handler) -> None:
    for line in _lines(handler):
        count = int(line)
        handler.connection.sendall(b"".join(b"reply %d\n" % i for i in range(count)))


def silent(handler) -> None:
    while handler.connection.recv(1024):
        pass  # takes everything, answers nothing, until the client hangs up


def hangs_up_after_reading(handler) -> None:
    handler.rfile.readline()


def hangs_up_at_once(handler) -> None:
    pass


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound once, then closed)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


# -- the happy paths -----------------------------------------------------------------------------


def test_execute_sends_the_return_sequence_and_strips_it_from_the_reply(serve):
    port = serve(echo)
    with SocketConnection("127.0.0.1", port, timeout=TIMEOUT) as connection:
        assert connection.connected
        assert connection.execute("POS?") == "re:POS?"
        assert connection.execute(b"bytes too") == "re:bytes too"
    assert not connection.connected


def test_send_then_recv(serve):
    port = serve(echo)
    connection = SocketConnection("127.0.0.1", port, timeout=TIMEOUT)
    assert not connection.connected  # opened on first use
    connection.send("one")
    connection.send("two")
    assert connection.recv() == "re:one"
    assert connection.recv() == "re:two"
    connection.close()
    connection.close()  # harmless twice


def test_a_reply_split_byte_by_byte_is_one_reply(serve):
    port = serve(bytewise)
    with SocketConnection("127.0.0.1", port, timeout=TIMEOUT) as connection:
        assert connection.execute("hello world") == "re:hello world"
        assert connection.execute("again") == "re:again"


def test_reading_one_byte_at_a_time_frames_the_same(serve):
    port = serve(batched)
    with SocketConnection("127.0.0.1", port, timeout=TIMEOUT) as connection:
        connection.send("2")
        assert [connection.recv(num=1), connection.recv(num=1)] == ["reply 0", "reply 1"]


def test_several_replies_in_one_packet_come_one_per_recv(serve):
    port = serve(batched)
    with SocketConnection("127.0.0.1", port, timeout=TIMEOUT) as connection:
        assert connection.execute("3") == "reply 0"  # the two others stay buffered
        assert connection.recv() == "reply 1"
        assert connection.recv() == "reply 2"


def test_a_multi_byte_return_sequence_split_across_packets(serve):
    def crlf(handler) -> None:
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handler.rfile.readline()
        for part in (b"ab", b"c\r", b"\nsecond\r", b"\n"):
            handler.connection.sendall(part)
            time.sleep(0.01)  # a slow controller: the \r and the \n of one reply in two packets

    port = serve(crlf)
    with SocketConnection("127.0.0.1", port, return_sequence="\r\n", timeout=TIMEOUT) as connection:
        assert connection.return_sequence == "\r\n"
        assert connection.execute("x") == "abc"
        assert connection.recv() == "second"


def test_a_lone_part_of_the_return_sequence_stays_in_the_reply(serve):
    def replies(handler) -> None:
        handler.rfile.readline()
        handler.connection.sendall(b"a\rb\nc\r\n")

    port = serve(replies)
    with SocketConnection("127.0.0.1", port, return_sequence=b"\r\n", timeout=TIMEOUT) as connection:
        assert connection.execute("x") == "a\rb\nc"


def test_exactly_one_return_sequence_is_stripped(serve):
    def replies(handler) -> None:
        handler.rfile.readline()
        handler.connection.sendall(b"value\n\n")

    port = serve(replies)
    with SocketConnection("127.0.0.1", port, timeout=TIMEOUT) as connection:
        assert connection.execute("x") == "value"
        assert connection.recv() == ""  # the second newline ends an empty reply


def test_concurrent_callers_each_get_their_own_reply(serve):
    port = serve(bytewise)  # slow replies: the threads really overlap
    connection = SocketConnection("127.0.0.1", port, timeout=TIMEOUT)
    wrong, errors = [], []

    def client(number: int) -> None:
        try:
            for call in range(5):
                command = f"thread {number} call {call}"
                reply = connection.execute(command)
                if reply != "re:" + command:
                    wrong.append((command, reply))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert wrong == []
    connection.close()


def test_timeout_as_a_quantity(serve):
    port = serve(echo)
    connection = SocketConnection("127.0.0.1", port, timeout=250 * q.ms)
    assert connection.timeout == pytest.approx(0.25)
    assert connection.execute("x") == "re:x"
    connection.close()


def test_repr_and_properties():
    connection = SocketConnection("localhost", 5025)
    assert repr(connection) == "SocketConnection('localhost', 5025)"
    assert (connection.host, connection.port, connection.return_sequence) == ("localhost", 5025, "\n")
    assert connection.timeout == 10


def test_the_networking_names_are_offered_here_too():
    assert base.CommData is endpoints.CommData and CommData is endpoints.CommData
    assert SocketType is endpoints.SocketType
    assert set(base.__all__) == {"CommData", "SocketConnection", "SocketType"}


# -- failures --------------------------------------------------------------------------------------


def test_a_refused_connection_names_host_port_and_command(refused_port):
    connection = SocketConnection("127.0.0.1", refused_port, timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(NetworkingError) as info:
        connection.execute("POS?")
    assert time.monotonic() - started < TIMEOUT
    message = str(info.value)
    assert f"127.0.0.1:{refused_port}" in message and "'POS?'" in message and "refused" in message
    assert not connection.connected


def test_connect_refused(refused_port):
    with pytest.raises(NetworkingError, match=f"127.0.0.1:{refused_port} refused"):
        SocketConnection("127.0.0.1", refused_port, timeout=TIMEOUT).connect()


def test_a_silent_peer_times_out_within_the_timeout(serve):
    port = serve(silent)
    connection = SocketConnection("127.0.0.1", port, timeout=SHORT)
    started = time.monotonic()
    with pytest.raises(NetworkingError) as info:
        connection.execute("POS?")
    elapsed = time.monotonic() - started
    assert SHORT * 0.9 <= elapsed < SHORT + 2
    message = str(info.value)
    assert f"SocketConnection('127.0.0.1', {port})" in message and "'POS?'" in message
    assert "no whole reply within 0.3 s" in message
    assert not connection.connected  # a late reply must not be taken for the next command's


def test_a_partial_reply_is_named_in_the_timeout(serve):
    def half(handler) -> None:
        handler.rfile.readline()
        handler.connection.sendall(b"12.5")  # no return sequence, ever
        while handler.connection.recv(1024):
            pass

    port = serve(half)
    connection = SocketConnection("127.0.0.1", port, timeout=SHORT)
    with pytest.raises(NetworkingError, match=r"received so far: b'12\.5'"):
        connection.execute("POS?")


def test_a_peer_that_hangs_up_instead_of_answering(serve):
    port = serve(hangs_up_after_reading)
    connection = SocketConnection("127.0.0.1", port, timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(NetworkingError) as info:
        connection.execute("POS?")
    assert time.monotonic() - started < TIMEOUT
    assert "closed the connection" in str(info.value) and "'POS?'" in str(info.value)
    assert f"127.0.0.1', {port}" in str(info.value)


def test_recv_from_a_peer_that_hangs_up_names_the_last_command(serve):
    port = serve(hangs_up_after_reading)
    connection = SocketConnection("127.0.0.1", port, timeout=TIMEOUT)
    connection.send("STATUS")
    with pytest.raises(NetworkingError, match=r"last sent: 'STATUS'.*closed the connection"):
        connection.recv()


def test_after_a_failure_the_next_call_opens_a_new_connection(serve):
    calls = []

    def first_hangs_up(handler) -> None:
        calls.append(handler)
        if len(calls) == 1:
            handler.rfile.readline()
            return
        echo(handler)

    port = serve(first_hangs_up)
    connection = SocketConnection("127.0.0.1", port, timeout=TIMEOUT)
    with pytest.raises(NetworkingError):
        connection.execute("first")
    assert connection.execute("second") == "re:second"
    assert len(calls) == 2
    connection.close()


def test_a_peer_that_hangs_up_at_once(serve):
    port = serve(hangs_up_at_once)
    connection = SocketConnection("127.0.0.1", port, timeout=TIMEOUT)
    with pytest.raises(NetworkingError, match=r"closed the connection|connection failed"):
        connection.execute("POS?")


def test_a_reply_that_is_not_text(serve):
    def binary(handler) -> None:
        for _ in _lines(handler):
            handler.connection.sendall(b"\xff\xfe\n")

    port = serve(binary)
    with SocketConnection("127.0.0.1", port, timeout=TIMEOUT) as connection:
        with pytest.raises(NetworkingError, match=r"the reply b'\\xff\\xfe' is not utf-8 text"):
            connection.execute("x")
        latin = SocketConnection("127.0.0.1", port, timeout=TIMEOUT, encoding="latin-1")
        assert latin.execute("x") == "\xff\xfe"
        latin.close()


def test_a_waiting_caller_gives_up_within_the_timeout_when_another_holds_the_connection(serve):
    port = serve(silent)
    connection = SocketConnection("127.0.0.1", port, timeout=SHORT)
    errors = []

    def first() -> None:
        try:
            connection.execute("A")
        except NetworkingError as error:
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    busy_wait(lambda: connection.connected or not thread.is_alive(), 0.001, TIMEOUT)
    started = time.monotonic()
    with pytest.raises(NetworkingError, match=r"'B'.*(busy|no whole reply)"):
        connection.execute("B")
    assert time.monotonic() - started < SHORT + 2
    thread.join(TIMEOUT)
    assert not thread.is_alive() and len(errors) == 1 and "'A'" in str(errors[0])


@pytest.mark.parametrize(
    "arguments, match",
    [
        (("", 1), "host=''"),
        ((" host", 1), "host=' host'"),
        ((None, 1), "host=None"),
        (("h", 0), "port=0"),
        (("h", 65536), "port=65536"),
        (("h", "80"), "port='80'"),
        (("h", True), "port=True"),
        (("h", 1, ""), "return_sequence must not be empty"),
        (("h", 1, 10), "return_sequence=10"),
        (("h", 1, "\n", 0), "timeout=0"),
        (("h", 1, "\n", -1 * q.s), "timeout="),
        (("h", 1, "\n", float("inf")), "timeout=inf"),
        (("h", 1, "\n", 1, "no-such-codec"), "encoding='no-such-codec'"),
    ],
)
def test_invalid_arguments_are_refused(arguments, match):
    with pytest.raises(ConfigurationError, match=match):
        SocketConnection(*arguments)


def test_a_timeout_that_is_not_a_duration():
    with pytest.raises(UnitError, match="timeout"):
        SocketConnection("h", 1, timeout=1 * q.mm)


def test_data_and_num_of_the_wrong_kind(serve):
    port = serve(echo)
    with SocketConnection("127.0.0.1", port, timeout=TIMEOUT) as connection:
        with pytest.raises(
            ConfigurationError, match=f"SocketConnection\\('127.0.0.1', {port}\\): cannot send 42"
        ):
            connection.send(42)
        with pytest.raises(ConfigurationError, match="cannot send None"):
            connection.execute(None)
        with pytest.raises(ConfigurationError, match="num=0"):
            connection.recv(0)
        with pytest.raises(ConfigurationError, match=r"num=1\.5"):
            connection.execute("x", num=1.5)
        assert connection.execute("still fine") == "re:still fine"
    ascii_only = SocketConnection("127.0.0.1", port, encoding="ascii")
    with pytest.raises(ConfigurationError, match="not ascii text"):
        ascii_only.send("µm")
