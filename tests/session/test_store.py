"""The session store in-process: names, files written complete or not at all, races, locks, import, logs.

The command-line interface is tested in ``test_commands.py``; here are the
fine points that need threads, a second process or a real HTTP server.
Every test works in its own session directory (``CONCERT_SESSION_DIR``).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import keyword
import os
import queue
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Iterator, List

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from concert.exceptions import ConcertError, SessionStoreError
from concert.session import store
from tests.conftest import TIMEOUT

VALID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_valid(name: str) -> bool:
    """The specification of a session name, written independently of the store's check."""
    return (
        VALID_NAME.fullmatch(name) is not None
        and not keyword.iskeyword(name)
        and name != "concert"
        and len(name) <= store.MAX_NAME_LENGTH
    )


valid_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,99}\Z").filter(is_valid)
invalid_names = st.text(max_size=40).filter(lambda name: not is_valid(name))


@pytest.fixture
def sessions(tmp_path, monkeypatch) -> Path:
    """An empty session directory (not yet made), which the store uses."""
    directory = tmp_path / "sessions"
    monkeypatch.setenv("CONCERT_SESSION_DIR", str(directory))
    return directory


@contextlib.contextmanager
def store_at(directory: str) -> Iterator[Path]:
    """Point the store at ``directory`` for the block (for hypothesis, which cannot take tmp_path)."""
    previous = os.environ.get("CONCERT_SESSION_DIR")
    os.environ["CONCERT_SESSION_DIR"] = directory
    try:
        yield Path(directory)
    finally:
        if previous is None:
            del os.environ["CONCERT_SESSION_DIR"]
        else:
            os.environ["CONCERT_SESSION_DIR"] = previous


def listing(directory: Path) -> List[str]:
    """Every file in ``directory``, hidden ones included (temporary files would show)."""
    return sorted(path.name for path in directory.iterdir()) if directory.exists() else []


def refused(call, *fragments: str) -> str:
    """Run ``call``; it must raise one SessionStoreError of one line containing ``fragments``."""
    with pytest.raises(SessionStoreError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, ConcertError)
    for fragment in fragments:
        assert fragment in message, message
    return message


def write_session(directory: Path, name: str, source: str = '"""A session."""\n') -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(source)
    return path


def zip_of(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture
def read_only(tmp_path):
    """``read_only(path)`` makes a directory unwritable -- for root too (``chattr +i``) -- or skips."""
    made = []

    def make(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o555)
        made.append(path)
        probe = path / ".probe"
        try:
            probe.touch()
        except OSError:
            return path
        probe.unlink()  # root ignores permissions: make it immutable instead
        result = subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True, timeout=TIMEOUT, check=False
        )
        if result.returncode != 0:
            pytest.skip("cannot make a directory read-only here (root, and no chattr)")
        return path

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, timeout=TIMEOUT, check=False)
        path.chmod(0o755)


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test's output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def umask() -> int:
    """This process's umask, read from /proc (changing it to read it would be a race)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("no Umask line in /proc/self/status")


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of 64 KiB (a tmpfs mounted under tmp_path, unmounted after), or skip."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)]
    try:
        mounted = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False).returncode == 0
    except OSError:
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here (not root, or no mount)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=TIMEOUT, check=False)


@pytest.fixture
def immutable():
    """``immutable(path)`` makes a file impossible to rename or remove -- for root too (``chattr +i``) --
    or skips; undone after."""
    made = []

    def make(path: Path) -> Path:
        result = subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True, timeout=TIMEOUT, check=False
        )
        if result.returncode != 0:
            pytest.skip("cannot make a file immutable here (chattr +i refused)")
        made.append(path)
        return path

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, timeout=TIMEOUT, check=False)


@pytest.fixture
def raw_server():
    """``raw_server(answer)``: a TCP server on 127.0.0.1 giving each connection to ``answer(connection,
    stop)`` in a thread of its own; returns its ``http://`` base URL. ``stop`` is set at the end."""
    stop = threading.Event()
    servers, threads = [], []

    def serve(server: socket.socket, answer) -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=answer_one, args=(connection, answer), daemon=True)
            thread.start()
            threads.append(thread)

    def answer_one(connection: socket.socket, answer) -> None:
        with connection:
            try:
                connection.recv(4096)  # the request: its head fits
                answer(connection, stop)
            except OSError:  # the client went away
                pass

    def start(answer) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.05)  # how often the accepting thread looks at ``stop``
        servers.append(server)
        thread = threading.Thread(target=serve, args=(server, answer), daemon=True)
        thread.start()
        threads.append(thread)
        return f"http://127.0.0.1:{server.getsockname()[1]}"

    yield start
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT)
    for server in servers:
        server.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- where the store is -------------------------------------------------------------------------------


def test_the_session_directory_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("CONCERT_SESSION_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert store.session_dir() == tmp_path / "home" / ".local" / "share" / "concert"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # ignored, as the XDG specification says
    assert store.session_dir() == tmp_path / "home" / ".local" / "share" / "concert"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert store.session_dir() == tmp_path / "data" / "concert"
    monkeypatch.setenv("CONCERT_SESSION_DIR", str(tmp_path / "mine"))
    assert store.session_dir() == tmp_path / "mine" and not (tmp_path / "mine").exists()
    assert store.session_dir(create=True).is_dir()
    assert store.log_path("tomo") == tmp_path / "mine" / "tomo.log"
    assert store.log_path() == tmp_path / "mine" / "concert.log"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCERT_SESSION_DIR", "here")
    assert store.session_dir() == tmp_path / "here"


def test_a_session_directory_that_is_a_file_is_refused(sessions):
    sessions.write_text("not a directory")
    for call in (store.names, lambda: store.create("tomo"), lambda: store.path_of("tomo")):
        refused(call, "is not a directory", str(sessions))
    assert sessions.read_text() == "not a directory"


def test_an_empty_or_missing_store_has_no_sessions(sessions):
    assert store.names() == []
    sessions.mkdir()
    for stray in ("my-beamline.py", "concert.py", "class.py", ".tomo.py.x.partial", "notes.txt", "tomo.log"):
        (sessions / stray).write_text("")
    (sessions / "folder.py").mkdir()
    assert store.names() == []
    refused(lambda: store.docstring("tomo"), "there is no session 'tomo'", str(sessions))


# -- names --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(name=valid_names)
@example(name="_")
@example(name="match")  # soft keywords are identifiers
@example(name="x" * store.MAX_NAME_LENGTH)
def test_every_valid_name_is_accepted(name):
    with tempfile.TemporaryDirectory() as directory, store_at(directory) as sessions:
        assert store.validate_name(name) == name
        if store.shadows(name) is not None:  # a valid name, but not for a new session: see below
            refused(lambda: store.create(name), f"{name!r} cannot name a session: it would hide the module")
            return
        path = store.create(name)
        assert path == sessions / f"{name}.py" and path.is_file()
        assert store.names() == [name] and store.exists(name)
        assert store.copy(name, "other") == sessions / "other.py"
        store.remove(name)
        assert store.names() == ["other"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=invalid_names)
@example(name="")
@example(name="my-beamline")
@example(name="1st")
@example(name="tomo.py")
@example(name="../tomo")
@example(name="a/b")
@example(name="class")
@example(name="None")
@example(name="concert")
@example(name="café")
@example(name="x" * (store.MAX_NAME_LENGTH + 1))
@example(name="two\nlines")
@example(name="nul\x00")
def test_anything_else_is_refused_with_one_line_and_nothing_is_written(name, tmp_path):
    with tempfile.TemporaryDirectory() as directory, store_at(directory) as sessions:
        write_session(sessions, "good")
        before = listing(sessions)
        message = refused(lambda: store.validate_name(name), "is not a session name")
        for call in (
            lambda: store.create(name),
            lambda: store.copy("good", name),
            lambda: store.move("good", name),
            lambda: store.remove(name),
            lambda: store.lock(name),
            lambda: store.log_path(name),
        ):
            assert message in refused(call)
        if not set(name) & {"/", "\\", "\x00"}:  # else a path in the archive (its last part counts), or cut
            archive = sessions.parent / f"{os.path.basename(directory)}.zip"
            archive.write_bytes(zip_of({f"{name}.py": "x = 1\n"}))
            try:
                refused(lambda: store.import_sessions([str(archive)]), str(archive))
            finally:
                archive.unlink()
        assert listing(sessions) == before


@pytest.mark.parametrize("name", ["json", "os", "sys", "numpy", "IPython", "pexpect", "uu"])
def test_a_name_that_would_hide_a_module_is_refused_for_new_sessions_only(sessions, tmp_path, name):
    where = store.shadows(name)
    assert where is not None
    fragment = f"{name!r} cannot name a session: it would hide the module {name} ({where})"
    write_session(sessions, "tomo")
    (tmp_path / f"{name}.py").write_text("x = 1\n")
    (tmp_path / "bundle.zip").write_bytes(zip_of({f"sub/{name}.py": "x = 1\n"}))
    for call in (
        lambda: store.create(name),
        lambda: store.create(name, force=True),
        lambda: store.copy("tomo", name),
        lambda: store.move("tomo", name, force=True),
        lambda: store.import_sessions([str(tmp_path / f"{name}.py")]),
        lambda: store.import_sessions([str(tmp_path / "bundle.zip")], force=True),
    ):
        refused(call, fragment)
    assert listing(sessions) == ["tomo.py"]
    hidden = write_session(sessions, name, '"""Made by hand."""\n')  # one that exists can still be handled
    assert store.docstring(name) == "Made by hand." and name in store.names()
    store.move(name, "renamed")
    assert listing(sessions) == ["renamed.py", "tomo.py"] and not hidden.exists()


def test_modules_of_the_current_directory_and_of_the_store_hide_nothing(sessions, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "tomo_helpers.py").write_text("x = 1\n")
    monkeypatch.chdir(here)
    monkeypatch.syspath_prepend(str(here))
    monkeypatch.syspath_prepend(str(sessions))
    write_session(sessions, "old")
    assert store.shadows("tomo_helpers") is None and store.shadows("old") is None
    assert store.create("tomo_helpers") == sessions / "tomo_helpers.py"


# -- creating from the template -----------------------------------------------------------------------


def test_the_template_has_a_docstring_q_the_helpers_and_the_imports_and_runs(sessions):
    path = store.create("tomo", imports=["json", " os.path ", "json", ""])
    source = path.read_text()
    assert (
        store.docstring("tomo").splitlines()[0]
        == "Describe the session tomo in one line: `concert ls` shows it."
    )
    for line in (
        "from concert.quantities import q",
        "import json",
        "import os.path",
        "    dstate,",
        "    pdoc,",
    ):
        assert line in source.splitlines()
    assert source.count("import json") == 1 and not store.wants_multiinstance(source)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=TIMEOUT, env=environment
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask()


@pytest.mark.parametrize("module", ["numpy as np", "a..b", "1x", "os.class", "x;y"])
def test_an_import_that_is_not_a_module_name_is_refused(sessions, module):
    refused(lambda: store.create("tomo", imports=[module]), "--imports", "is not a module name")
    assert listing(sessions) == []


def test_an_existing_session_is_replaced_only_with_force_keeping_its_mode(sessions):
    path = write_session(sessions, "tomo", "motor = 1\n")
    path.chmod(0o600)
    refused(lambda: store.create("tomo"), "the session 'tomo' exists", "--force")
    assert path.read_text() == "motor = 1\n"
    store.create("tomo", force=True)
    assert "Describe the session tomo" in path.read_text() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert listing(sessions) == ["tomo.py"]


def test_a_read_only_store_refuses_writes_in_one_line_and_leaves_nothing(sessions, read_only, tmp_path):
    write_session(sessions, "tomo")
    outside = tmp_path / "tomo2.py"
    outside.write_text("x = 1\n")
    read_only(sessions)
    for call in (
        lambda: store.create("new"),
        lambda: store.copy("tomo", "new"),
        lambda: store.move("tomo", "new"),
        lambda: store.remove("tomo"),
        lambda: store.import_sessions([str(outside)]),
        lambda: store.lock("tomo"),
    ):
        refused(call, str(sessions))
    assert listing(sessions) == ["tomo.py"] and store.docstring("tomo") == "A session."


# -- copies, races, renames, removal ------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["copy", "create", "import"])
def test_of_many_writers_of_one_name_exactly_one_succeeds_and_nothing_partial_is_left(
    sessions, tmp_path, operation
):
    content = '"""The source."""\n' + "motor = 1\n" * 3000  # large enough for the writes to overlap
    write_session(sessions, "source", content)
    (tmp_path / "target.py").write_text(content)
    calls = {
        "copy": lambda: store.copy("source", "target"),
        "create": lambda: store.create("target"),
        "import": lambda: store.import_sessions([str(tmp_path / "target.py")]),
    }
    start, outcomes = threading.Barrier(12), queue.Queue()

    def write():
        start.wait(TIMEOUT)
        try:
            calls[operation]()
        except SessionStoreError as error:
            outcomes.put(str(error))
        else:
            outcomes.put("done")

    threads = [threading.Thread(target=write) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    results = [outcomes.get_nowait() for _ in threads]
    assert results.count("done") == 1, results
    assert all("the session 'target' exists" in result for result in results if result != "done")
    assert listing(sessions) == ["source.py", "target.py"]
    expected = content if operation != "create" else store.template("target")
    assert (sessions / "target.py").read_text() == expected


def test_copy_leaves_the_log_and_refuses_what_it_cannot_do(sessions):
    write_session(sessions, "tomo", '"""Tomography."""\n')
    (sessions / "tomo.log").write_text("a log\n")
    assert store.copy("tomo", "tomo2") == sessions / "tomo2.py"
    assert store.docstring("tomo2") == "Tomography." and not (sessions / "tomo2.log").exists()
    refused(lambda: store.copy("tomo", "tomo2"), "the session 'tomo2' exists", "--force")
    refused(lambda: store.copy("tomo", "tomo"), "onto itself")
    refused(lambda: store.copy("nope", "x"), "there is no session 'nope'")
    write_session(sessions, "tomo2", "changed = 1\n")
    store.copy("tomo", "tomo2", force=True)
    assert store.docstring("tomo2") == "Tomography."


def test_move_takes_the_log_along_and_overwrites_only_with_force(sessions):
    write_session(sessions, "tomo", '"""Tomography."""\n')
    (sessions / "tomo.log").write_text("tomo's log\n")
    assert store.move("tomo", "ct") == sessions / "ct.py"
    assert listing(sessions) == ["ct.log", "ct.py"] and (sessions / "ct.log").read_text() == "tomo's log\n"
    write_session(sessions, "other", "x = 1\n")
    refused(lambda: store.move("ct", "other"), "the session 'other' exists", "--force")
    (sessions / "other2.log").write_text("other2's log\n")
    refused(lambda: store.move("ct", "other2"), "the log of 'other2' exists", "--force")
    assert listing(sessions) == ["ct.log", "ct.py", "other.py", "other2.log"]
    store.move("ct", "other", force=True)
    assert (
        listing(sessions) == ["other.log", "other.py", "other2.log"]
        and store.docstring("other") == "Tomography."
    )
    refused(lambda: store.move("other", "other"), "to itself")
    refused(lambda: store.move("ct", "x"), "there is no session 'ct'")


def test_a_move_whose_log_cannot_follow_is_undone(sessions):
    write_session(sessions, "tomo")
    (sessions / "tomo.log").write_text("log\n")
    (sessions / "ct.log").mkdir()  # a directory in the way of the log
    (sessions / "ct.log" / "keep").write_text("")
    refused(lambda: store.move("tomo", "ct", force=True), "cannot rename", "tomo.log")
    assert listing(sessions) == ["ct.log", "tomo.log", "tomo.py"]


def test_a_forced_move_whose_log_cannot_follow_puts_back_the_session_it_replaced(sessions):
    write_session(sessions, "a", '"""A."""\n')
    (sessions / "a.log").write_text("a's log\n")
    replaced = write_session(sessions, "b", '"""B, which must survive."""\n')
    inode = replaced.stat().st_ino
    (sessions / "b.log").mkdir()  # the log cannot go there
    with pytest.raises(SessionStoreError) as caught:
        store.move("a", "b", force=True)
    assert listing(sessions) == ["a.log", "a.py", "b.log", "b.py"]
    assert store.docstring("b") == "B, which must survive." and (sessions / "b.py").stat().st_ino == inode
    assert store.docstring("a") == "A." and (sessions / "a.log").read_text() == "a's log\n"
    assert (
        str(caught.value) == f"cannot rename {sessions / 'a.log'} to {sessions / 'b.log'}: it is a directory"
    )


@pytest.mark.parametrize("force", [False, True])
def test_of_many_renames_of_one_session_at_once_exactly_one_happens(sessions, force):
    threads_count, rounds = 6, 150
    start = threading.Barrier(threads_count + 1, timeout=TIMEOUT)
    outcomes: queue.Queue = queue.Queue()

    def rename(index: int) -> None:
        for _ in range(rounds):
            start.wait()
            try:
                store.move("a", f"t{index}", force=force)
            except SessionStoreError as error:
                outcomes.put(str(error))
            else:
                outcomes.put("done")
            start.wait()

    threads = [threading.Thread(target=rename, args=(index,), daemon=True) for index in range(threads_count)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(rounds):
            write_session(sessions, "a", "x = 1\n")
            start.wait()  # all rename at once
            start.wait()  # all have finished
            left = listing(sessions)
            assert len(left) == 1 and left[0] != "a.py", left
            (sessions / left[0]).unlink()
    except BaseException:
        start.abort()  # let the threads end
        raise
    finally:
        for thread in threads:
            thread.join(TIMEOUT)
    results = [outcomes.get_nowait() for _ in range(threads_count * rounds)]
    assert results.count("done") == rounds, [result for result in results if result != "done"][:3]
    assert all(
        result == "done" or "renamed or removed meanwhile" in result or "there is no session 'a'" in result
        for result in results
    ), set(results)


def test_removing_several_sessions_is_all_or_none_when_one_cannot_go(sessions, immutable):
    for name in ("a", "b", "c"):
        write_session(sessions, name, f'"""{name}."""\n')
    immutable(sessions / "b.py")
    with pytest.raises(SessionStoreError) as caught:
        store.remove_sessions(["a", "b", "c"])
    assert listing(sessions) == ["a.py", "b.py", "c.py"] and store.docstring("a") == "a."
    assert str(caught.value) == (
        f"cannot remove {sessions / 'b.py'}: Operation not permitted; none of the sessions given was removed"
    )


def test_remove_checks_every_name_before_removing_any(sessions):
    for name in ("a", "b", "c"):
        write_session(sessions, name)
    (sessions / "a.log").write_text("log\n")
    refused(lambda: store.remove_sessions(["a", "nope", "b"]), "there is no session 'nope'")
    refused(lambda: store.remove_sessions(["a", "b-c"]), "'b-c' is not a session name")
    refused(lambda: store.remove_sessions([]), "name the sessions")
    assert store.names() == ["a", "b", "c"]
    assert store.remove_sessions(["a", "b", "a"]) == [sessions / "a.py", sessions / "b.py"]
    assert listing(sessions) == ["a.log", "c.py"]  # logs stay
    assert store.remove("c") == sessions / "c.py" and store.names() == []


# -- the lock of a running session --------------------------------------------------------------------

HOLD_LOCK = """
import sys
from concert.session import store
lock = store.lock(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
lock.release()
print("released", flush=True)
"""


def test_a_second_process_is_refused_with_the_pid_and_takes_the_lock_once_it_is_free(sessions):
    write_session(sessions, "tomo")
    environment = {**os.environ, "CONCERT_SESSION_DIR": str(sessions)}
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, "tomo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    ) as holder:
        try:
            assert holder.stdout.readline() == "locked\n"
            assert (sessions / "tomo.pid").read_text().split()[0] == str(holder.pid)
            refused(lambda: store.lock("tomo"), "the session 'tomo' is already running", f"PID {holder.pid}")
            assert store.running("tomo") == f"PID {holder.pid}"
            refused(lambda: store.remove("tomo"), "cannot remove the session 'tomo'", f"PID {holder.pid}")
            refused(lambda: store.move("tomo", "ct"), "cannot rename", f"PID {holder.pid}")
            write_session(sessions, "other")
            refused(lambda: store.move("other", "tomo", force=True), "cannot replace", f"PID {holder.pid}")
            holder.stdin.close()
            assert holder.stdout.readline() == "released\n"
        finally:
            holder.kill()
    assert holder.wait(TIMEOUT) is not None
    with store.lock("tomo") as mine:
        assert (sessions / "tomo.pid").read_text().split()[0] == str(os.getpid()) and mine.held
    assert not (sessions / "tomo.pid").exists() and not mine.held and store.running("tomo") is None


def test_a_lock_left_by_a_dead_process_is_taken_over(sessions):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(TIMEOUT)
    sessions.mkdir()
    (sessions / "tomo.pid").write_text(f"{dead.pid}\n")
    assert store.running("tomo") is None  # nobody holds the flock
    lock = store.lock("tomo")
    try:
        assert (sessions / "tomo.pid").read_text().split()[0] == str(os.getpid())
        refused(lambda: store.lock("tomo"), f"PID {os.getpid()}", "MULTIINSTANCE = True")
    finally:
        lock.release()
        lock.release()  # idempotent
    assert listing(sessions) == []


def test_a_process_that_dies_holding_the_lock_leaves_it_free(sessions):
    environment = {**os.environ, "CONCERT_SESSION_DIR": str(sessions)}
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, "tomo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
    ) as holder:
        assert holder.stdout.readline() == b"locked\n"
        holder.kill()
    assert (sessions / "tomo.pid").exists()  # the file stays, its flock does not
    assert store.running("tomo") is None
    with store.lock("tomo"):
        assert store.running("tomo") == f"PID {os.getpid()}"


def test_checking_whether_a_session_runs_makes_no_file(sessions):
    assert store.running("tomo") is None and not sessions.exists()
    write_session(sessions, "tomo")
    store.remove("tomo")
    assert listing(sessions) == []


@pytest.mark.parametrize(
    "source, wanted",
    [
        ("MULTIINSTANCE = True\n", True),
        ("MULTIINSTANCE: bool = True\n", True),
        ("MULTIINSTANCE = 1\n", False),  # only the literal True allows a second instance
        ('MULTIINSTANCE = "False"\n', False),
        ('MULTIINSTANCE = "no"\n', False),
        ("MULTIINSTANCE = False\n", False),
        ("MULTIINSTANCE = True\nMULTIINSTANCE = False\n", False),  # the last assignment wins
        ("import os\nMULTIINSTANCE = bool(os.environ)\n", False),  # not a literal: not known without running
        ("if True:\n    MULTIINSTANCE = True\n", False),
        ("MULTI = True\n", False),
        ("", False),
    ],
)
def test_multiinstance_is_read_without_running_the_session(source, wanted):
    assert store.wants_multiinstance(source) is wanted


def test_multiinstance_of_invalid_python_is_refused():
    refused(
        lambda: store.wants_multiinstance("MULTIINSTANCE = (", "tomo.py"),
        "tomo.py line 1 is not valid Python",
    )


# -- reading sessions without running them ------------------------------------------------------------


def test_docstrings_are_read_without_running_the_session(sessions, tmp_path):
    write_session(sessions, "tomo", '"""Tomography.\n\n    Details.\n"""\nraise SystemExit("ran")\n')
    assert store.docstring("tomo") == "Tomography.\n\nDetails."
    write_session(sessions, "bare", "x = 1\n")
    assert store.docstring("bare") is None
    latin = tmp_path / "latin.py"
    latin.write_bytes('# -*- coding: latin-1 -*-\n"""Größe."""\n'.encode("latin-1"))
    assert store.docstring(latin) == "Größe." and "Größe" in store.read_source(latin)
    bom = tmp_path / "bom.py"
    bom.write_bytes('\ufeff"""With a BOM."""\n'.encode())
    assert store.docstring(str(bom)) == "With a BOM."


def test_a_session_that_is_not_valid_python_or_text_is_refused_in_one_line(sessions, tmp_path):
    write_session(sessions, "broken", '"""Broken."""\ndef f(:\n')
    refused(lambda: store.docstring("broken"), "broken.py line 2 is not valid Python")
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    refused(lambda: store.docstring(binary), "binary.py", "not")
    refused(lambda: store.read_source(tmp_path / "missing.py"), "cannot read", "No such file")


def test_a_session_that_cannot_be_read_is_one_line(sessions):
    path = write_session(sessions, "tomo")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root) reads every file")
        for call in (
            lambda: store.docstring("tomo"),
            lambda: store.copy("tomo", "ct"),
            lambda: store.import_sessions([str(path)]),
            lambda: store.export_sessions(["tomo"], sessions.parent / "out.zip"),
        ):
            refused(call, "cannot read", "Permission denied")
    finally:
        path.chmod(0o644)
    assert listing(sessions) == ["tomo.py"] and not (sessions.parent / "out.zip").exists()


# -- import -------------------------------------------------------------------------------------------


def test_import_takes_py_files_and_zip_archives(sessions, tmp_path):
    (tmp_path / "tomo.py").write_text('"""Tomography."""\n')
    (tmp_path / "bundle.zip").write_bytes(
        zip_of({"sessions/ct.py": '"""CT."""\n', "laminography.py": "x = 1\n", "README.txt": "not a session"})
    )
    disguised = tmp_path / "download"  # a zip recognised by its content
    disguised.write_bytes(zip_of({"xrd.py": "y = 2\n"}))
    imported = store.import_sessions(
        [str(tmp_path / "tomo.py"), str(tmp_path / "bundle.zip"), str(disguised)]
    )
    assert imported == ["tomo", "ct", "laminography", "xrd"]
    assert store.names() == ["ct", "laminography", "tomo", "xrd"] and store.docstring("ct") == "CT."
    refused(
        lambda: store.import_sessions([str(tmp_path / "tomo.py")]), "the session 'tomo' exists", "--force"
    )
    (tmp_path / "tomo.py").write_text('"""New."""\n')
    assert store.import_sessions([str(tmp_path / "tomo.py")], force=True) == ["tomo"]
    assert store.docstring("tomo") == "New." and listing(sessions) == [f"{n}.py" for n in store.names()]


def test_an_export_imports_back(sessions, tmp_path):
    write_session(sessions, "tomo", '"""Tomography."""\n')
    write_session(sessions, "ct", '"""CT."""\n')
    os.utime(sessions / "ct.py", (0, 0))  # 1970: before what zip can date
    archive = store.export_sessions(["tomo", "ct", "tomo"], tmp_path / "out.zip")
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == ["ct.py", "tomo.py"]
    refused(lambda: store.export_sessions(["tomo"], archive), "exists", "--force")
    assert store.export_sessions(["tomo"], archive, force=True) == archive
    refused(lambda: store.export_sessions(["tomo"], tmp_path / "out.tar"), "must end in .zip")
    refused(lambda: store.export_sessions(["tomo"], tmp_path / "missing" / "x.zip"), "is not a directory")
    refused(lambda: store.export_sessions(["nope"], tmp_path / "y.zip"), "there is no session 'nope'")
    refused(lambda: store.export_sessions([], tmp_path / "y.zip"), "name the sessions")
    store.export_sessions(["tomo", "ct"], archive, force=True)
    store.remove_sessions(["tomo", "ct"])
    assert sorted(store.import_sessions([str(archive)])) == ["ct", "tomo"]
    assert store.docstring("ct") == "CT." and not (tmp_path / "y.zip").exists()


@pytest.mark.parametrize(
    "members, fragments",
    [
        ({"../evil.py": "x = 1\n"}, ["'../evil.py' points outside the archive"]),
        ({"a/../../evil.py": "x = 1\n"}, ["points outside the archive"]),
        ({"/etc/evil.py": "x = 1\n"}, ["points outside the archive"]),
        ({"README.txt": "no session"}, ["holds no .py session"]),
        ({}, ["holds no .py session"]),
        ({"good.py": "x = 1\n", "my-session.py": "x = 1\n"}, ["'my-session' is not a session name"]),
        ({"good.py": "x = 1\n", "class.py": "x = 1\n"}, ["it is a Python keyword"]),
        ({"good.py": "x = 1\n", "bad.py": "def (:\n"}, ["bad.py line 1 is not valid Python"]),
        ({"a/twice.py": "x = 1\n", "b/twice.py": "x = 2\n"}, ["'twice' comes twice"]),
    ],
)
def test_an_archive_that_cannot_be_imported_imports_nothing(sessions, tmp_path, members, fragments):
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(zip_of(members))
    refused(lambda: store.import_sessions([str(archive)]), str(archive), *fragments)
    assert listing(sessions) == []


def test_a_corrupt_or_truncated_archive_imports_nothing(sessions, tmp_path):
    data = zip_of({"tomo.py": '"""T."""\n' * 200, "ct.py": "x = 1\n"})
    cases = {
        "truncated.zip": data[: len(data) // 2],
        "garbage.zip": b"this is not a zip file",
        "empty.zip": b"",
        "flipped.zip": data.replace(b'"""T."""', b'"""X."""', 1),  # a CRC that does not match
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        refused(lambda name=name: store.import_sessions([str(tmp_path / name)]), name, "not a readable zip")
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("tomo.py", "x = 1\n" * 1000)
    damaged = bytearray(deflated.getvalue())
    damaged[60:70] = b"\xff" * 10  # inside the compressed data
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    refused(lambda: store.import_sessions([str(tmp_path / "damaged.zip")]), "damaged.zip")
    assert listing(sessions) == []


def test_sources_that_cannot_be_read_import_nothing(sessions, tmp_path):
    good = tmp_path / "good.py"
    good.write_text("x = 1\n")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    (tmp_path / "folder.py").mkdir()
    (tmp_path / "invalid.py").write_text("def (:\n")
    (tmp_path / "bad-name.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("x = 1\n")
    (tmp_path / "nul.py").write_bytes(b"x = 1\x00\n")
    cases = {
        "dangling.py": "No such file",
        "folder.py": "is a directory",
        "invalid.py": "invalid.py line 1 is not valid Python",
        "bad-name.py": "'bad-name' is not a session name",
        "notes.txt": "a session is a .py file",
        "nul.py": "is not valid Python",
    }
    for name, fragment in cases.items():
        refused(lambda name=name: store.import_sessions([str(good), str(tmp_path / name)]), name, fragment)
    refused(lambda: store.import_sessions([str(good), str(good)]), "'good' comes twice")
    refused(lambda: store.import_sessions([]), "nothing to import")
    assert listing(sessions) == []


def test_a_source_larger_than_any_session_is_refused(sessions, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_IMPORT_BYTES", 1000)
    (tmp_path / "huge.py").write_text("x = 1\n" * 1000)
    (tmp_path / "huge.zip").write_bytes(zip_of({"huge.py": "x = 1\n" * 1000}))
    refused(lambda: store.import_sessions([str(tmp_path / "huge.py")]), "huge.py", "larger than")
    refused(lambda: store.import_sessions([str(tmp_path / "huge.zip")]), "huge.zip", "larger than")
    assert listing(sessions) == []


def test_import_from_http_and_file_urls(sessions, tmp_path, http_server):
    base, www = http_server
    (www / "tomo.py").write_text('"""Tomography."""\n')
    (www / "bundle.zip").write_bytes(zip_of({"ct.py": '"""CT."""\n'}))
    (tmp_path / "local.py").write_text('"""Local."""\n')
    imported = store.import_sessions(
        [f"{base}/tomo.py", f"{base}/bundle.zip", (tmp_path / "local.py").as_uri()]
    )
    assert imported == ["tomo", "ct", "local"] and store.docstring("tomo") == "Tomography."
    store.remove_sessions(imported)
    port = closed_port()
    cases = {
        f"{base}/missing.py": "HTTP error 404",
        f"http://127.0.0.1:{port}/tomo.py": "refused",
        (tmp_path / "missing.py").as_uri(): "No such file",
        f"{base}/": "a session is a .py file",  # a directory listing, not a session
    }
    for url, fragment in cases.items():
        refused(lambda url=url: store.import_sessions([f"{base}/tomo.py", url]), "cannot", url, fragment)
    assert listing(sessions) == []


def test_an_import_failing_while_putting_sessions_in_place_puts_everything_back(sessions, tmp_path):
    members = {f"m{index:04}.py": f'"""New {index}."""\n' for index in range(300)}
    (tmp_path / "bundle.zip").write_bytes(zip_of(members))
    for index in range(10):
        write_session(sessions, f"m{index:04}", f'"""Old {index}."""\n').chmod(0o640)
    (sessions / "m0150.py").mkdir()  # found only when the sessions are put in place, half-way through
    before = {path.name: (path.stat().st_ino, path.stat().st_mode) for path in sessions.iterdir()}
    refused(
        lambda: store.import_sessions([str(tmp_path / "bundle.zip")], force=True),
        f"cannot write the session 'm0150': {sessions / 'm0150.py'} is a directory",
    )
    assert {path.name: (path.stat().st_ino, path.stat().st_mode) for path in sessions.iterdir()} == before
    assert [store.docstring(f"m{index:04}") for index in range(10)] == [
        f"Old {index}." for index in range(10)
    ]


def test_what_one_import_unpacks_is_limited_in_all(sessions, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_IMPORT_TOTAL", 1000)
    (tmp_path / "bundle.zip").write_bytes(zip_of({f"m{index}.py": "#" * 400 + "\n" for index in range(3)}))
    refused(
        lambda: store.import_sessions([str(tmp_path / "bundle.zip")]),
        "bundle.zip",
        "more than 1000 bytes in all",
    )
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.py").write_text("#" * 400 + "\n")
    sources = [str(tmp_path / f"{name}.py") for name in ("a", "b", "c")]
    refused(lambda: store.import_sessions(sources), "c.py", "more than 1000 bytes in all")
    assert listing(sessions) == []
    assert store.import_sessions(sources[:2]) == ["a", "b"]  # each import has its own allowance
    assert store.import_sessions(sources[2:]) == ["c"]


def test_a_session_larger_than_any_is_refused_before_it_is_parsed(sessions, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_SESSION_BYTES", 1000)
    (tmp_path / "dense.py").write_text("x = 1\n" * 200)  # 1200 bytes
    (tmp_path / "dense.zip").write_bytes(zip_of({"dense.py": "x = 1\n" * 200}))
    refused(
        lambda: store.import_sessions([str(tmp_path / "dense.py")]),
        "cannot import",
        "dense.py: it is larger than 1000 bytes, which no session is",
    )
    refused(
        lambda: store.import_sessions([str(tmp_path / "dense.zip")]),
        "dense.zip:dense.py: it is larger than 1000 bytes, which no session is",
    )
    assert listing(sessions) == []


def test_an_oversized_download_is_one_message(sessions, monkeypatch, http_server):
    base, www = http_server
    monkeypatch.setattr(store, "MAX_IMPORT_BYTES", 1000)
    (www / "huge.py").write_text("x = 1\n" * 1000)
    message = refused(lambda: store.import_sessions([f"{base}/huge.py"]))
    assert message == f"cannot import {base}/huge.py: it is larger than 1000 bytes, more than an import reads"
    assert listing(sessions) == []


def trickle(connection: socket.socket, stop: threading.Event) -> None:
    """An HTTP answer that never ends: its head, then one byte every 0.2 s until ``stop``."""
    connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(0.2):
        connection.sendall(b"#")


def test_a_url_that_takes_too_long_in_all_is_given_up(sessions, raw_server, monkeypatch):
    monkeypatch.setattr(store, "URL_TIMEOUT", 1)
    url = raw_server(trickle) + "/slow.py"
    outcome: queue.Queue = queue.Queue()

    def fetch() -> None:
        try:
            store.import_sessions([url])
        except SessionStoreError as error:
            outcome.put(str(error))
        else:
            outcome.put("imported")

    threading.Thread(target=fetch, daemon=True).start()
    assert outcome.get(timeout=5) == f"cannot fetch {url}: it did not arrive within 1 s"
    assert listing(sessions) == []


# -- logs ---------------------------------------------------------------------------------------------


class Follower:
    """store.follow in a thread, its output collected; ``expect`` waits (bounded) for text to arrive."""

    def __init__(self, path: Path) -> None:
        self.chunks: queue.Queue = queue.Queue()
        self.notes: queue.Queue = queue.Queue()
        self.seen = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=store.follow, args=(path, self.chunks.put, 0.01, self.stop, self.notes.put), daemon=True
        )
        self.thread.start()

    def expect(self, text: bytes, timeout: float = TIMEOUT) -> None:
        while text not in self.seen:
            self.seen += self.chunks.get(timeout=timeout)

    def note(self, fragment: str) -> None:
        while fragment not in self.notes.get(timeout=TIMEOUT):
            pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


def test_follow_waits_for_the_file_and_survives_truncation_and_rotation(tmp_path):
    path = tmp_path / "tomo.log"
    follower = Follower(path)
    try:
        follower.note("does not exist yet")
        path.write_bytes(b"first\n")
        follower.note("has appeared")
        follower.expect(b"first\n")
        with open(path, "ab") as log:
            log.write(b"second\n")
        follower.expect(b"first\nsecond\n")

        path.write_bytes(b"")  # truncated
        follower.note("was truncated")
        with open(path, "ab") as log:
            log.write(b"after truncation\n")
        follower.expect(b"after truncation\n")

        with open(path, "ab") as old:  # rotated: renamed, and written to a little more
            path.rename(tmp_path / "tomo.log.1")
            old.write(b"late line of the old file\n")
            old.flush()
            path.write_bytes(b"the new file\n")
            follower.note("was replaced")
        follower.expect(b"late line of the old file\nthe new file\n")

        path.unlink()  # removed, then made again
        path.write_bytes(b"made again\n")
        follower.expect(b"made again\n")
        assert follower.seen.count(b"first\n") == 1
    finally:
        follower.close()


def test_follow_passes_bytes_as_they_are(tmp_path):
    path = tmp_path / "tomo.log"
    path.write_bytes(b"caf\xe9 latin-1 \xff\n")
    follower = Follower(path)
    try:
        follower.expect(b"caf\xe9 latin-1 \xff\n")
    finally:
        follower.close()


def test_follow_sees_a_log_rewritten_in_place_longer_than_it_was(tmp_path):
    path = tmp_path / "tomo.log"
    path.write_bytes(b"2024-05-01 12:00:00 the old log\n")
    follower = Follower(path)
    try:
        follower.expect(b"the old log\n")
        new = b"2024-05-02 08:00:00 a new log, longer than the old one was\n" * 3
        descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)  # the same file, emptied and written again
        try:
            os.write(descriptor, new)
        finally:
            os.close(descriptor)
        follower.expect(new, timeout=5)
        follower.note("was truncated; following it from its start")
        assert follower.seen == b"2024-05-01 12:00:00 the old log\n" + new
    finally:
        follower.close()


def test_follow_of_what_cannot_be_read_is_one_error(tmp_path):
    (tmp_path / "tomo.log").mkdir()
    refused(lambda: store.follow(tmp_path / "tomo.log", lambda chunk: None), "cannot read", "tomo.log")
