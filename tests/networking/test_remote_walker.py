"""RemoteDirectoryWalker against real walker device servers (concert.networking.walker_server) on 127.0.0.1.

Servers run as subprocesses without a database, each in a session of its
own (their process group is killed by the fixtures' finalizers), on port 0.
One module-scoped server serves most tests, each test in a directory of its
own below the server's root; the tests that kill or hang a server start one
of their own. What the remote walker writes is compared byte for byte with
what a local DirectoryWalker writes from the same frames; refusals are
compared with a local DirectoryWalker's on the very same directories.
Client timeouts are at most 2 s; every wait is bounded.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import numpy as np
import pytest

from concert.exceptions import ConcertError, ConfigurationError, NetworkingError, StorageError
from concert.imaging import ImageWithMetadata
from concert.networking.zmq import ZmqSender
from concert.polling import busy_wait
from concert.storage import DirectoryWalker, read_image, read_metadata
from concert.storage.remote import RemoteDirectoryWalker
from tests.conftest import TIMEOUT, run_python
from tests.networking.servers import TangoProcess

CLIENT_TIMEOUT = 2.0
NAME = "test/walker/1"
SHAPE = (64, 48)
FRAME_BYTES = SHAPE[0] * SHAPE[1] * 2


def walker_server(root: Path) -> TangoProcess:
    """``concert tango walker`` writing below ``root``, in a subprocess."""
    return TangoProcess.concert(
        "tango", "walker", "--port", "0", "--root", str(root), "--name", NAME, name=NAME
    )


@pytest.fixture(scope="module")
def server_root(tmp_path_factory) -> Path:
    return Path(os.path.realpath(tmp_path_factory.mktemp("walker-root")))


@pytest.fixture(scope="module")
def server(server_root):
    server = walker_server(server_root)
    yield server
    server.kill()


@pytest.fixture
def own_server(tmp_path):
    root = tmp_path / "own-root"
    server = walker_server(root)
    server.root = Path(os.path.realpath(root))
    yield server
    server.kill()


@pytest.fixture
def here(request, server_root) -> Path:
    """This test's directory below the server's root."""
    return server_root / request.node.name.replace("[", "_").replace("]", "")


@pytest.fixture
def remote(server, here) -> RemoteDirectoryWalker:
    return RemoteDirectoryWalker(server.uri, root=str(here), timeout=CLIENT_TIMEOUT)


def frames(count: int, seed: int = 0, shape=SHAPE, dtype=np.uint16) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 4000, size=shape).astype(dtype) for _ in range(count)]


def files_of(directory: Path) -> Dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


def same_error(remote_call: Callable[[], object], local_call: Callable[[], object]) -> ConcertError:
    """Both calls raise the same Concert exception class; the remote message ends with the local one."""
    with pytest.raises(ConcertError) as local:
        local_call()
    with pytest.raises(ConcertError) as remote:
        remote_call()
    assert type(remote.value) is type(local.value)
    assert str(remote.value).endswith(str(local.value)), (str(remote.value), str(local.value))
    return remote.value


# -- the Walker API ------------------------------------------------------------------------------------


def test_moves_like_a_local_walker(remote, here):
    assert remote.root == str(here) == remote.current
    assert remote.device_root == str(here.parent)
    assert remote.descend("a/b") is remote
    assert remote.current == str(here / "a" / "b") and (here / "a" / "b").is_dir()
    assert remote.ascend().current == str(here / "a")
    assert remote.exists() and remote.exists("b") and not remote.exists("c")
    assert remote.home().current == str(here)
    assert remote.exists("a", "b")
    local = DirectoryWalker(str(here))
    error = same_error(remote.ascend, local.ascend)  # the walker's root is where it stops
    assert isinstance(error, StorageError) and "cannot ascend above the root" in str(error)
    with pytest.raises(StorageError, match="not a directory"):
        (here / "file").write_bytes(b"")
        remote.descend("file")
    assert remote.current == str(here)


def test_a_device_or_a_proxy_serves_as_well_as_a_uri(server, here):
    from concert.devices.tango import TangoDevice

    device = TangoDevice(server.uri, timeout=CLIENT_TIMEOUT)
    assert device.state == "standby"
    assert device.root == str(here.parent)
    walker = RemoteDirectoryWalker(device, root=str(here))
    assert walker.descend("d").current == str(here / "d")
    assert RemoteDirectoryWalker(device.proxy).current == str(here / "d")  # the device's position, shared
    with pytest.raises(ConfigurationError, match="keeps its own timeout"):
        RemoteDirectoryWalker(device.proxy, timeout=1)


def test_a_write_is_byte_identical_to_a_local_write(remote, here, tmp_path):
    data = [*frames(3), ImageWithMetadata(frames(1, seed=7)[0], {"angle": 0.25, "roi": (0, 0, 64, 48)})]
    data.append(np.asfortranarray(frames(1, seed=8)[0]))  # another memory order, the same file
    local = DirectoryWalker(str(tmp_path / "local"))
    assert remote.write(data).result(TIMEOUT) == local.write(data).result(TIMEOUT) == 5
    remote_files, local_files = files_of(here), files_of(tmp_path / "local")
    assert sorted(remote_files) == [f"frame_{number:>06}.tif" for number in range(5)]
    assert remote_files == local_files
    assert read_metadata(str(here / "frame_000003.tif")) == [{"angle": 0.25, "roi": [0, 0, 64, 48]}]
    np.testing.assert_array_equal(read_image(str(here / "frame_000004.tif")), data[4])


def test_multi_page_files_are_byte_identical_too(server, here, tmp_path):
    remote = RemoteDirectoryWalker(
        server.uri, root=str(here), bytes_per_file=3 * FRAME_BYTES, start_index=5, timeout=CLIENT_TIMEOUT
    )
    local = DirectoryWalker(str(tmp_path / "local"), bytes_per_file=3 * FRAME_BYTES, start_index=5)
    data = frames(10, seed=1)
    assert remote.descend("proj").write(data, dsetname="p_{:>04}.tif").result(TIMEOUT) == 10
    local.descend("proj").write(data, dsetname="p_{:>04}.tif").result(TIMEOUT)
    remote_files = files_of(here / "proj")
    assert sorted(remote_files) == ["p_0005.tif", "p_0006.tif", "p_0007.tif", "p_0008.tif"]
    assert remote_files == files_of(tmp_path / "local" / "proj")
    assert read_image(str(here / "proj" / "p_0008.tif")).shape == SHAPE  # 3 + 3 + 3 + 1 frames
    np.testing.assert_array_equal(read_image(str(here / "proj" / "p_0006.tif")), np.stack(data[3:6]))


def test_create_writer_checks_and_prepares_now_and_writes_when_called(remote, here):
    job = remote.create_writer(iter(frames(2)), name="darks", dsetname="d_{}.tif")
    assert (here / "darks").is_dir() and not any((here / "darks").iterdir())
    assert job.directory == str(here / "darks") and remote.current == str(here)  # the walker stays
    remote.descend("elsewhere")  # moving on does not move the job
    assert job() == 2
    assert sorted(files_of(here / "darks")) == ["d_0.tif", "d_1.tif"]
    with pytest.raises(StorageError, match="refusing to overwrite"):
        remote.home().create_writer(iter(frames(2)), name="darks", dsetname="d_{}.tif")


def test_the_push_style_sink_writes_what_it_is_sent(remote, here):
    sink = remote.write(dsetname="pushed_{}.tif")
    data = frames(3, seed=2)
    for frame in data:
        sink.send(frame)
    sink.close()
    assert sorted(files_of(here)) == ["pushed_0.tif", "pushed_1.tif", "pushed_2.tif"]
    np.testing.assert_array_equal(read_image(str(here / "pushed_2.tif")), data[2])


def test_write_sequence_returns_at_once_and_writes_a_stream_sent_elsewhere(remote, here):
    data = frames(4, seed=3)
    with ZmqSender("tcp://127.0.0.1:*", timeout=TIMEOUT) as sender:
        handle = remote.write_sequence(sender.endpoint, dsetname="seq_{}.tif")
        assert not handle.done()  # the server waits for the stream's end
        for frame in data:
            sender.send(frame)
        sender.end()
        assert handle.result(TIMEOUT) == 4
    assert sorted(files_of(here)) == [f"seq_{number}.tif" for number in range(4)]
    np.testing.assert_array_equal(read_image(str(here / "seq_3.tif")), data[3])


def test_json_logs_are_numbered_as_locally(remote, here, tmp_path):
    local = DirectoryWalker(str(tmp_path / "local"))
    for walker in (remote, local):
        first = walker.log_to_json({"energy": np.float32(20.5), "motors": ["x", "y"]})
        second = walker.log_to_json('{"run": 2}')
        assert (
            os.path.basename(first) == "experiment.json" and os.path.basename(second) == "experiment-1.json"
        )
    assert files_of(here) == files_of(tmp_path / "local")
    assert json.loads((here / "experiment.json").read_text()) == {"energy": 20.5, "motors": ["x", "y"]}
    same_error(lambda: remote.log_to_json("{not json"), lambda: local.log_to_json("{not json"))


def test_a_registered_logger_writes_on_the_server_as_locally(remote, here, tmp_path):
    local = DirectoryWalker(str(tmp_path / "local"))
    logger = logging.getLogger("concert.test.remote-walker")
    logger.propagate = False
    try:
        for walker in (remote, local):
            with walker.register_logger(logger.name, "INFO", "run.log"):
                logger.debug("not at this level")
                logger.info("%d frames at %s", 3, "0.1 s")
                try:
                    raise ValueError("a bad frame")
                except ValueError:
                    logger.exception("failed")
            logger.warning("after close: not written")
    finally:
        logger.propagate = True

    def without_times(path: Path) -> List[str]:
        return [
            " ".join(line.split(" ")[2:]) if line[:2].isdigit() else line
            for line in path.read_text().splitlines()
        ]

    remote_lines = without_times(here / "run.log")
    assert remote_lines[:2] == [f"{logger.name} INFO 3 frames at 0.1 s", f"{logger.name} ERROR failed"]
    assert remote_lines[-1] == "ValueError: a bad frame"
    assert remote_lines == without_times(tmp_path / "local" / "run.log")
    same_error(
        lambda: remote.register_logger(logger.name, "LOUD", "x.log"),
        lambda: local.register_logger(logger.name, "LOUD", "x.log"),
    )


# -- the walker's rules, remotely ----------------------------------------------------------------------


def test_nothing_outside_the_root_is_reached(remote, here, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    here.mkdir(exist_ok=True)
    (here / "link").symlink_to(outside, target_is_directory=True)
    (here / "dangling.json").symlink_to(outside / "x.json")
    local = DirectoryWalker(str(here.parent)).descend(here.name)  # the server's walker, here
    for call in (
        lambda walker: walker.descend(".."),
        lambda walker: walker.descend("a/../../b"),
        lambda walker: walker.descend("/etc"),
        lambda walker: walker.descend("link"),
        lambda walker: walker.descend("link/deeper"),
        lambda walker: walker.exists("../x"),
        lambda walker: walker.create_writer([], name="link"),
        lambda walker: walker.create_writer([], dsetname="../f_{}.tif"),
        lambda walker: walker.create_writer([], dsetname="/tmp/f_{}.tif"),
        lambda walker: walker.log_to_json({}, filename="dangling.json"),
        lambda walker: walker.log_to_json({}, filename="../x.json"),
        lambda walker: walker.register_logger("concert.test", "INFO", "link"),
    ):
        error = same_error(functools.partial(call, remote), functools.partial(call, local))
        assert isinstance(error, StorageError)
    with pytest.raises(StorageError, match="outside the walker device's root"):
        RemoteDirectoryWalker(remote.uri, root=str(tmp_path), timeout=CLIENT_TIMEOUT)
    assert list(outside.iterdir()) == [] and remote.current == str(here)


def test_an_existing_data_set_is_never_overwritten(remote, here):
    first = frames(2, seed=4)
    assert remote.write(first).result(TIMEOUT) == 2
    before = files_of(here)
    local = DirectoryWalker(str(here.parent)).descend(here.name)
    error = same_error(lambda: remote.write(frames(2, seed=5)), lambda: local.write(frames(2, seed=5)))
    assert isinstance(error, StorageError) and "refusing to overwrite" in str(error)
    (here / "other_000007.tif").write_bytes(b"in the way")  # a later file of the data set counts too
    with pytest.raises(StorageError, match=r"other_000007\.tif"):
        remote.write(frames(1), dsetname="other_{:>06}.tif")
    assert {name: data for name, data in files_of(here).items() if name != "other_000007.tif"} == before


def test_a_frame_that_is_not_an_image_stops_the_write_as_locally(remote, here, tmp_path):
    data = [*frames(2), np.zeros((2, 3, 4)), *frames(2)]
    local = DirectoryWalker(str(tmp_path / "local"))
    same_error(lambda: remote.write(data).result(TIMEOUT), lambda: local.write(data).result(TIMEOUT))
    assert files_of(here) == files_of(tmp_path / "local")  # the frames before it, complete
    assert len(files_of(here)) == 2


def test_wrong_arguments_are_refused_before_anything_is_written(server, here):
    for kwargs, match in (
        ({"dsetname": "a/b_{}.tif"}, "without a directory part"),
        ({"dsetname": "f_{.tif"}, "not a valid format string"),
        ({"start_index": -1}, "start_index must be a non-negative int"),
        ({"bytes_per_file": 1.5}, "bytes_per_file must be a non-negative int"),
        ({"wrt_cls": "JpegWriter"}, "wrt_cls must be 'TiffWriter'"),
    ):
        with pytest.raises(StorageError, match=match):
            RemoteDirectoryWalker(server.uri, timeout=CLIENT_TIMEOUT, **kwargs)
    with pytest.raises(ConfigurationError, match="lease"):
        RemoteDirectoryWalker(server.uri, timeout=CLIENT_TIMEOUT, lease=1)
    with pytest.raises(ConfigurationError, match="endpoint"):
        RemoteDirectoryWalker(server.uri, timeout=CLIENT_TIMEOUT, endpoint="udp://x")
    walker = RemoteDirectoryWalker(server.uri, root=str(here), timeout=CLIENT_TIMEOUT)
    with pytest.raises(ConfigurationError, match="endpoint 'ipc://x'"):
        walker.write_sequence("ipc://x")
    assert not here.exists() or not any(here.iterdir())


# -- cancellation, failures ----------------------------------------------------------------------------


def test_cancelling_a_running_write_keeps_every_frame_sent(remote, here, asynchronous):
    data = frames(20, seed=6)
    taken, proceed = threading.Event(), threading.Event()

    def producer() -> Iterator[np.ndarray]:
        for number, frame in enumerate(data):
            if number == 3:
                taken.set()
                assert proceed.wait(TIMEOUT)
            yield frame

    future = remote.write(producer())
    assert taken.wait(TIMEOUT)
    future.request_cancel("cancel()")
    proceed.set()  # frame 3 was asked for before the request: it is written, then the write stops
    assert future.cancel(timeout=TIMEOUT) is True
    with pytest.raises(CancelledError, match=r"cancel\(\)"):
        future.result(TIMEOUT)
    written = files_of(here)
    assert sorted(written) == [f"frame_{number:>06}.tif" for number in range(4)]
    for number in range(4):
        np.testing.assert_array_equal(read_image(str(here / f"frame_{number:>06}.tif")), data[number])
    assert remote.write(frames(1), dsetname="after.tif").result(TIMEOUT) == 1  # the walker goes on


def test_cancelling_write_sequence_stops_the_server_s_write(remote, here):
    sender = ZmqSender("tcp://127.0.0.1:*", timeout=TIMEOUT)
    try:
        handle = remote.write_sequence(sender.endpoint, dsetname="c_{}.tif")
        sender.send(frames(1)[0])
        started = time.monotonic()
        assert handle.cancel(timeout=TIMEOUT) is True
        assert time.monotonic() - started < 2 * CLIENT_TIMEOUT
        with pytest.raises(CancelledError, match=r"stopped by cancel\(\)"):
            handle.result(TIMEOUT)
    finally:
        sender.close()  # the stream never ends: the server stopped receiving it
    for name in files_of(here):  # the frame may have arrived before the request: then it is complete
        assert name == "c_0.tif" and read_image(str(here / name)).shape == SHAPE
    assert remote.write(frames(1), dsetname="after_{}.tif").result(TIMEOUT) == 1  # the walker goes on


def test_a_write_sequence_cancelled_at_once_still_stops_and_waits_for_the_server(remote, here):
    # A cancel made as soon as write_sequence returns often comes before the future's thread has
    # registered its stop action; the server's job must be stopped and waited for all the same.
    # Repeated, so that the early case surely happens at least once.
    for number in range(15):
        sender = ZmqSender("tcp://127.0.0.1:*", timeout=TIMEOUT)
        try:
            handle = remote.write_sequence(sender.endpoint, dsetname=f"early{number}_{{}}.tif")
            sender.send(frames(1)[0])
            assert handle.cancel(timeout=TIMEOUT) is True
            with pytest.raises(CancelledError, match=r"stopped by cancel\(\)"):
                handle.result(TIMEOUT)
            assert str(remote.proxy.state()) == "ON"  # no job runs on the server any more
        finally:
            sender.close()
        for name in files_of(here):
            assert name.startswith("early") and name.endswith("_0.tif"), name
            assert read_image(str(here / name)).shape == SHAPE


def test_init_of_the_device_stops_its_writes_keeping_complete_files(remote, here):
    sender = ZmqSender("tcp://127.0.0.1:*", timeout=TIMEOUT)
    try:
        handle = remote.write_sequence(sender.endpoint, dsetname="i_{}.tif")
        sender.send(frames(1)[0])
        remote.proxy.Init()  # the Tango command: re-initialise the device
        with pytest.raises(CancelledError, match=r"shutdown \(or Init\)"):
            handle.result(TIMEOUT)
    finally:
        sender.close()
    for name in files_of(here):
        assert name == "i_0.tif" and read_image(str(here / name)).shape == SHAPE
    assert remote.current == str(here)  # the position is kept, and the device works on
    assert remote.write(frames(2), dsetname="after_{}.tif").result(TIMEOUT) == 2


def test_a_server_killed_mid_write_fails_the_write_within_the_timeout(own_server, asynchronous):
    walker = RemoteDirectoryWalker(own_server.uri, timeout=CLIENT_TIMEOUT)
    killed: List[float] = []

    def producer() -> Iterator[np.ndarray]:
        for number, frame in enumerate(frames(200, shape=(256, 256))):
            if number == 5:
                os.killpg(own_server.process.pid, signal.SIGKILL)
                killed.append(time.monotonic())
            yield frame

    future = walker.write(producer())
    with pytest.raises((NetworkingError, StorageError)) as error:
        future.result(TIMEOUT)
    assert time.monotonic() - killed[0] < CLIENT_TIMEOUT + 1
    assert "lost the walker server after" in str(error.value)
    for path in own_server.root.iterdir():  # what has its name is complete
        if path.suffix == ".tif":
            assert read_image(str(path)).shape == (256, 256)
    with pytest.raises(NetworkingError):
        walker.descend("x")


def test_a_hung_server_fails_the_write_instead_of_hanging(own_server):
    walker = RemoteDirectoryWalker(own_server.uri, timeout=1)
    stopped: List[float] = []

    def producer() -> Iterator[np.ndarray]:
        for number, frame in enumerate(frames(400, shape=(256, 256))):
            if number == 3:
                os.killpg(own_server.process.pid, signal.SIGSTOP)
                stopped.append(time.monotonic())
            yield frame

    with pytest.raises(NetworkingError, match=r"lost the walker server.*is it hung"):
        walker.write(producer()).result(TIMEOUT)
    # The timeout and a poll's wait (and some slack for a loaded machine), not Tango's 2 x 1 + 3 = 5 s.
    assert time.monotonic() - stopped[0] < 1 + 0.25 + 2.5


def test_a_wrong_uri_is_reported_within_the_timeout(server):
    started = time.monotonic()
    with pytest.raises(NetworkingError):
        RemoteDirectoryWalker("tango://127.0.0.1:9/test/walker/1#dbase=no", timeout=1)
    assert time.monotonic() - started < 1 + 3
    with pytest.raises(ConfigurationError):
        RemoteDirectoryWalker("tango://127.0.0.1:1234/no-member#dbase=no", timeout=1)
    with pytest.raises(ConfigurationError, match="give the walker device's URI"):
        RemoteDirectoryWalker(42)
    admin = server.uri.replace(NAME, "dserver/ConcertWalker/concert")  # a device, but no walker
    with pytest.raises(ConfigurationError, match="not a Concert walker device"):
        RemoteDirectoryWalker(admin, timeout=CLIENT_TIMEOUT)


def test_the_server_gives_up_a_write_whose_client_went_away(remote, here):
    proxy = remote.proxy
    sender = ZmqSender("tcp://127.0.0.1:*", timeout=TIMEOUT)
    try:
        arguments = {"endpoint": sender.endpoint, "dsetname": "gone_{}.tif", "lease": 1}
        job = proxy.write_sequence(json.dumps(arguments))
        sender.send(frames(1)[0])
        # Nobody asks about the job (asking renews the lease); the device's state says when it ended.
        busy_wait(lambda: str(proxy.state()) == "ON", sleep_time=0.05, timeout=TIMEOUT)
        status = json.loads(proxy.wait_job(json.dumps({"job": job, "timeout": 0})))
    finally:
        sender.close()  # the stream never ends: its receiver is gone
    assert status["state"] == "failed" and status["error"]["type"] == "NetworkingError"
    assert "no word from the client for 1 s" in status["error"]["message"]
    assert list(files_of(here)) == ["gone_0.tif"] and read_image(str(here / "gone_0.tif")).shape == SHAPE


def test_importing_concert_storage_imports_neither_tango_nor_zmq():
    result = run_python(
        "import sys, concert.storage as s\n"
        "assert s.RemoteDirectoryWalker.__name__ == 'RemoteDirectoryWalker'\n"
        "print(sorted(m for m in ('tango', 'zmq') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_serving_a_root_that_is_a_file_fails_in_one_line(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    command = [
        sys.executable,
        "-m",
        "concert",
        "tango",
        "walker",
        "--port",
        "0",
        "--root",
        str(tmp_path / "file"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "is not a directory" in result.stderr
