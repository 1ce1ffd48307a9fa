"""The session commands through the real ``concert`` command, one subprocess per call.

Every call runs ``python -m concert ...`` with its own session directory
(``CONCERT_SESSION_DIR``), ``XDG_DATA_HOME`` and ``HOME`` under tmp_path and
``EDITOR=true``. A success prints on standard output only; a failure is one
line ``concert <command>: ...`` on standard error, exit status 1, nothing on
standard output, no traceback.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Dict, Optional

import pytest

import concert
from tests.conftest import TIMEOUT
from tests.session.test_store import closed_port, http_server, listing, read_only, zip_of

__all__ = ["http_server", "read_only"]  # fixtures used here, defined beside the store's tests

STORE_COMMANDS = ["cp", "edit", "export", "import", "init", "log", "ls", "mv", "rm", "show"]


class Concert:
    """Runs ``concert`` against a session directory of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path
        self.sessions = tmp_path / "sessions"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("CONCERT_")}
        self.env.update(
            CONCERT_SESSION_DIR=str(self.sessions),
            XDG_DATA_HOME=str(tmp_path / "xdg"),
            HOME=str(tmp_path / "home"),
            EDITOR="true",
        )

    def command(self, *args: str) -> list:
        return [sys.executable, "-m", "concert", *args]

    def __call__(self, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args),
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def raw(self, *args: str) -> subprocess.CompletedProcess:
        """Run, keeping standard output and error as bytes."""
        return subprocess.run(
            self.command(*args), env=self.env, cwd=self.cwd, capture_output=True, timeout=TIMEOUT
        )

    def ok(self, *args: str, env: Optional[Dict[str, str]] = None) -> str:
        """Run; it must succeed quietly on standard error. Return standard output."""
        result = self(*args, env=env)
        assert result.returncode == 0 and result.stderr == "", result
        return result.stdout

    def fails(self, *args: str, env: Optional[Dict[str, str]] = None, status: int = 1) -> str:
        """Run; it must fail with one line on standard error. Return that line."""
        result = self(*args, env=env)
        assert result.returncode == status, result
        assert result.stdout == "" and "Traceback" not in result.stderr, result
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        command = next(argument for argument in args if not argument.startswith("-"))
        assert lines[0].startswith(f"concert {command}: " if status == 1 else "concert"), lines[0]
        return lines[0]

    def write(self, name: str, source: str) -> Path:
        self.sessions.mkdir(parents=True, exist_ok=True)
        path = self.sessions / f"{name}.py"
        path.write_text(source)
        return path


@pytest.fixture
def concert_(tmp_path) -> Concert:
    return Concert(tmp_path)


# -- the command itself ---------------------------------------------------------------------------------


def test_version_and_the_list_of_commands(concert_):
    assert concert_.ok("--version") == f"concert {concert.__version__}\n"
    listed = concert_("--help")
    assert listed.returncode == 0
    for name in [*STORE_COMMANDS, "demo"]:
        assert f"\n    {name} " in listed.stdout, listed.stdout
    bare = concert_()
    assert bare.returncode == 2 and bare.stdout == listed.stdout
    assert "usage: concert init [-h] [--force] [--imports MODULES] name" in concert_.ok("init", "--help")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["mv", "tomo"], "concert mv: the following arguments are required: NEW"),
        (["export", "tomo"], "concert export: the following arguments are required: --to"),
        (["ls", "extra"], "concert: unrecognized arguments: extra"),
        (["nosuchcommand"], "concert: argument COMMAND: invalid choice: 'nosuchcommand'"),
    ],
)
def test_wrong_syntax_is_one_line_and_exit_status_2(concert_, args, fragment):
    line = concert_.fails(*args, status=2)
    assert line.startswith(fragment) and line.endswith("--help` shows the usage)")


def test_without_concert_session_dir_the_store_is_in_the_xdg_data_home(concert_, tmp_path):
    del concert_.env["CONCERT_SESSION_DIR"]
    path = tmp_path / "xdg" / "concert" / "tomo.py"
    assert concert_.ok("init", "tomo") == f"Created the session 'tomo': {path}\n"
    concert_.env["XDG_DATA_HOME"] = ""
    path = tmp_path / "home" / ".local" / "share" / "concert" / "tomo.py"
    assert concert_.ok("init", "tomo") == f"Created the session 'tomo': {path}\n"


# -- init, ls, show -------------------------------------------------------------------------------------


def test_init_creates_from_the_template_and_overwrites_only_with_force(concert_):
    path = concert_.sessions / "tomo.py"
    assert concert_.ok("init", "tomo") == f"Created the session 'tomo': {path}\n"
    assert path.read_text().startswith('"""Describe the session tomo in one line')
    path.write_text('"""Mine."""\n')
    assert "the session 'tomo' exists" in concert_.fails("init", "tomo")
    assert path.read_text() == '"""Mine."""\n'
    concert_.ok("init", "tomo", "--force", "--imports", "numpy, scipy.ndimage")
    assert "import numpy\nimport scipy.ndimage\n" in path.read_text()
    assert "'numpy as np' is not a module name" in concert_.fails("init", "ct", "--imports", "numpy as np")
    assert listing(concert_.sessions) == ["tomo.py"]


@pytest.mark.parametrize("name", ["my-beamline", "../tomo"])
def test_a_bad_name_is_refused_by_every_command_and_nothing_is_written(concert_, name):
    concert_.write("tomo", '"""Tomography."""\n')
    (concert_.sessions / "tomo.log").write_text("log\n")
    for args in (
        ["init", name],
        ["edit", name],
        ["show", name],
        ["rm", "tomo", name],
        ["mv", "tomo", name],
        ["cp", "tomo", name],
        ["log", name],
        ["export", "tomo", name, "--to", str(concert_.cwd / "out.zip")],
    ):
        assert f"{name!r} is not a session name" in concert_.fails(*args)
    assert listing(concert_.sessions) == ["tomo.log", "tomo.py"] and listing(concert_.cwd) == ["sessions"]


@pytest.mark.parametrize(
    "name, why",
    [
        ("class", "it is a Python keyword"),
        ("concert", "it is reserved (concert.log is the log of sessions started without a name)"),
        ("1st", "use letters, digits and '_', not starting with a digit"),
        ("tomo.py", "name the session without '.py'"),
        ("café", "use letters, digits and '_', not starting with a digit"),
    ],
)
def test_a_bad_name_is_refused_saying_why(concert_, name, why):
    assert concert_.fails("init", name) == f"concert init: {name!r} is not a session name: {why}"
    assert not concert_.sessions.exists()


def test_ls_lists_names_and_first_docstring_lines_aligned(concert_):
    assert (
        concert_.ok("ls")
        == f"There are no sessions in {concert_.sessions} (`concert init NAME` makes one).\n"
    )
    concert_.write("tomo", '"""Tomography at 30 keV.\n\nWith the big camera.\n"""\n')
    concert_.write("laminography", "motor = 1\n")
    concert_.write("broken", '"""Broken."""\ndef (:\n')
    concert_.write("not-a-session", '"""Not listed."""\n')
    assert concert_.ok("ls").splitlines() == [
        f"broken        (cannot be read: {concert_.sessions}/broken.py line 2 is not valid Python: "
        "invalid syntax)",
        "laminography  (no docstring)",
        "tomo          Tomography at 30 keV.",
    ]


def test_show_prints_one_docstring_or_all_under_their_names(concert_):
    assert concert_.ok("show") == f"There are no sessions in {concert_.sessions}.\n"
    concert_.write("tomo", '"""Tomography at 30 keV.\n\nWith the big camera.\n"""\n')
    concert_.write("bare", "motor = 1\n")
    concert_.write("broken", "def (:\n")
    assert concert_.ok("show", "tomo") == "Tomography at 30 keV.\n\nWith the big camera.\n"
    assert concert_.ok("show", "bare") == "(the session 'bare' has no docstring)\n"
    assert concert_.ok("show") == (
        f"bare\n    (no docstring)\n\nbroken\n    (cannot be read: {concert_.sessions}/broken.py line 1 "
        "is not "
        "valid Python: invalid syntax)\n\ntomo\n    Tomography at 30 keV.\n\n    With the big camera.\n"
    )
    assert "broken.py line 1 is not valid Python" in concert_.fails("show", "broken")
    assert f"there is no session 'nope' in {concert_.sessions}" in concert_.fails("show", "nope")


def test_a_session_directory_that_is_a_file_is_one_line(concert_):
    concert_.sessions.write_text("")
    for args in (["ls"], ["show"], ["init", "tomo"], ["show", "tomo"], ["log"]):
        assert f"the session directory {concert_.sessions} is not a directory" in concert_.fails(*args)


def test_a_read_only_session_directory_is_one_line(concert_, read_only):
    concert_.write("tomo", '"""Tomography."""\n')
    read_only(concert_.sessions)
    for args in (["init", "ct"], ["cp", "tomo", "ct"], ["mv", "tomo", "ct"], ["rm", "tomo"], ["edit", "ct"]):
        assert str(concert_.sessions) in concert_.fails(*args)
    assert "cannot write the session 'ct' in" in concert_.fails("edit", "ct")
    assert concert_.ok("ls") == "tomo  Tomography.\n"
    assert listing(concert_.sessions) == ["tomo.py"]


# -- edit -----------------------------------------------------------------------------------------------

EDITOR = """
import sys
path = sys.argv[-1]
with open(sys.argv[1], "a") as record:
    record.write(repr(sys.argv[2:]) + "\\n")
with open(path, "a") as session:
    session.write(sys.argv[2] + "\\n")
sys.exit(int(sys.argv[3]) if len(sys.argv) > 4 else 0)
"""


@pytest.fixture
def editor(tmp_path):
    """``editor(line, status=None)``: an $EDITOR that appends ``line`` to the file and records its argv."""
    script, record = tmp_path / "editor.py", tmp_path / "editor.log"
    script.write_text(EDITOR)

    def make(line: str, status: Optional[int] = None) -> str:
        extra = f" {status}" if status is not None else ""
        return f"{sys.executable} {script} {record} '{line}'{extra}"

    make.record = record
    return make


def test_edit_runs_the_editor_with_its_arguments_on_the_session(concert_, editor):
    path = concert_.sessions / "tomo.py"
    assert concert_.ok("edit", "tomo", env={"EDITOR": editor("motor = 1  # first edit")}) == ""
    assert editor.record.read_text() == f"{['motor = 1  # first edit', str(path)]!r}\n"
    source = path.read_text()
    assert source.startswith('"""Describe the session tomo') and source.endswith(
        "\nmotor = 1  # first edit\n"
    )
    concert_.ok("edit", "tomo", env={"EDITOR": editor("camera = 2")})
    assert path.read_text() == source + "camera = 2\n"


def test_edit_without_editor_runs_vi(concert_, tmp_path):
    bin_directory = tmp_path / "bin"
    bin_directory.mkdir()
    fake_vi = bin_directory / "vi"
    fake_vi.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "vi.log"}\n')
    fake_vi.chmod(0o755)
    environment = {"EDITOR": "", "PATH": f"{bin_directory}{os.pathsep}{os.environ['PATH']}"}
    concert_.ok("edit", "tomo", env=environment)
    assert (tmp_path / "vi.log").read_text() == f"{concert_.sessions / 'tomo.py'}\n"


def test_an_editor_that_fails_leaves_no_new_session_and_an_old_one_as_it_left_it(concert_, editor):
    line = concert_.fails("edit", "tomo", env={"EDITOR": "no-such-editor-here --wait"})
    assert line == "concert edit: cannot run the editor 'no-such-editor-here' (from $EDITOR): no such command"
    line = concert_.fails("edit", "tomo", env={"EDITOR": "false"})
    path = concert_.sessions / "tomo.py"
    assert line == f"concert edit: the editor 'false' failed with exit status 1; {path} was not created"
    assert "cannot read $EDITOR" in concert_.fails("edit", "tomo", env={"EDITOR": "code -w '"})
    assert listing(concert_.sessions) == []
    path = concert_.write("tomo", '"""Mine."""\n')
    line = concert_.fails("edit", "tomo", env={"EDITOR": editor("x = 1", status=3)})
    assert line.endswith(f"failed with exit status 3; {path} is as the editor left it")
    assert path.read_text() == '"""Mine."""\nx = 1\n'


def test_an_edit_that_breaks_the_session_says_so_and_keeps_it(concert_, editor):
    path = concert_.write("tomo", '"""Mine."""\n')
    line = concert_.fails("edit", "tomo", env={"EDITOR": editor("def (:")})
    assert line == f"concert edit: saved, but {path} line 2 is not valid Python: invalid syntax"
    assert path.read_text() == '"""Mine."""\ndef (:\n'


# -- rm, mv, cp -----------------------------------------------------------------------------------------


def test_rm_removes_all_or_none_and_keeps_the_logs(concert_):
    for name in ("tomo", "ct", "xrd"):
        concert_.write(name, f'"""{name}."""\n')
    (concert_.sessions / "tomo.log").write_text("log\n")
    assert "there is no session 'nope'" in concert_.fails("rm", "tomo", "nope", "ct")
    assert listing(concert_.sessions) == ["ct.py", "tomo.log", "tomo.py", "xrd.py"]
    assert concert_.ok("rm", "tomo", "ct").splitlines() == [
        f"Removed the session 'tomo' ({concert_.sessions / 'tomo.py'})",
        f"Removed the session 'ct' ({concert_.sessions / 'ct.py'})",
    ]
    assert listing(concert_.sessions) == ["tomo.log", "xrd.py"]
    assert concert_.fails("rm", status=2).startswith("concert rm: the following arguments are required: NAME")


def test_mv_and_cp_refuse_an_existing_target_without_force(concert_):
    concert_.write("tomo", '"""Tomography."""\n')
    (concert_.sessions / "tomo.log").write_text("tomo's log\n")
    assert concert_.ok("mv", "tomo", "ct") == "Renamed the session 'tomo' to 'ct'\n"
    assert listing(concert_.sessions) == ["ct.log", "ct.py"]
    assert concert_.ok("cp", "ct", "tomo") == "Copied the session 'ct' to 'tomo'\n"
    assert listing(concert_.sessions) == ["ct.log", "ct.py", "tomo.py"]
    concert_.write("tomo", '"""Changed."""\n')
    for command in ("mv", "cp"):
        assert "the session 'tomo' exists" in concert_.fails(command, "ct", "tomo")
        assert "there is no session 'nope'" in concert_.fails(command, "nope", "x")
    assert concert_.ok("show", "tomo") == "Changed.\n"
    concert_.ok("cp", "ct", "tomo", "--force")
    assert concert_.ok("show", "tomo") == "Tomography.\n"
    concert_.write("tomo", '"""Changed again."""\n')
    concert_.ok("mv", "tomo", "ct", "--force")
    assert (
        listing(concert_.sessions) == ["ct.log", "ct.py"] and concert_.ok("show", "ct") == "Changed again.\n"
    )


def test_a_running_session_is_neither_removed_nor_renamed(concert_):
    concert_.write("tomo", '"""Tomography."""\n')
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from concert.session import store; l = store.lock('tomo');"
            " print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=concert_.env,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        assert (
            concert_.fails("rm", "tomo")
            == f"concert rm: cannot remove the session 'tomo': it is running (PID {holder.pid})"
        )
        assert f"(PID {holder.pid})" in concert_.fails("mv", "tomo", "ct")
    finally:
        holder.stdin.close()
        holder.wait(TIMEOUT)
    concert_.ok("rm", "tomo")


# -- log ------------------------------------------------------------------------------------------------


def test_log_prints_the_log_as_it_is(concert_):
    concert_.write("tomo", '"""Tomography."""\n')
    log = concert_.sessions / "tomo.log"
    assert concert_.fails("log", "tomo") == f"concert log: there is no log of the session 'tomo' yet ({log})"
    unnamed = concert_.sessions / "concert.log"
    assert (
        concert_.fails("log")
        == f"concert log: there is no log of sessions started without a name yet ({unnamed})"
    )
    assert "there is no session 'nope' and no log of it" in concert_.fails("log", "nope")
    log.write_bytes(b"2024-05-01 motor moved\ncaf\xe9\n")
    result = concert_.raw("log", "tomo")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"2024-05-01 motor moved\ncaf\xe9\n", b"")
    unnamed.write_text("an unnamed session ran\n")
    assert concert_.ok("log") == "an unnamed session ran\n"
    concert_.ok("rm", "tomo")
    assert concert_.raw("log", "tomo").stdout.startswith(b"2024-05-01 motor moved")  # it outlives its session


class Lines:
    """Reads a pipe line by line in a thread; ``next()`` waits (bounded) for the next line."""

    def __init__(self, pipe) -> None:
        self.lines: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.put(line)
        self.lines.put(None)

    def next(self) -> Optional[str]:
        return self.lines.get(timeout=TIMEOUT)

    def rest(self) -> str:
        self.thread.join(TIMEOUT)
        found = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                found.append(line)
        return "".join(found)


def test_log_follow_waits_for_the_log_and_ends_quietly_on_ctrl_c(concert_):
    concert_.write("tomo", '"""Tomography."""\n')
    log = concert_.sessions / "tomo.log"
    with subprocess.Popen(
        concert_.command("log", "tomo", "--follow"),
        env=concert_.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        out, err = Lines(follower.stdout), Lines(follower.stderr)
        try:
            assert err.next() == f"concert log: {log} does not exist yet; waiting for it\n"
            log.write_text("the session starts\n")
            assert out.next() == "the session starts\n"
            with open(log, "a") as file:
                file.write("motor moved\n")
            assert out.next() == "motor moved\n"
            log.write_text("")
            assert err.next() == f"concert log: {log} has appeared\n"
            assert err.next() == f"concert log: {log} was truncated; following it from its start\n"
            follower.send_signal(signal.SIGINT)
            assert follower.wait(TIMEOUT) == 0
        finally:
            follower.kill()
        assert "Traceback" not in err.rest() and out.rest() == ""


def test_log_of_a_reader_that_goes_away_ends_quietly(concert_):
    concert_.write("tomo", "")
    (concert_.sessions / "tomo.log").write_bytes(b"a line of the log\n" * 200000)
    with subprocess.Popen(
        concert_.command("log", "tomo"), env=concert_.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as reader:
        assert reader.stdout.read(18) == b"a line of the log\n"
        reader.stdout.close()  # as `concert log tomo | head -1` does
        assert reader.wait(TIMEOUT) == 0
        assert reader.stderr.read() == b""


# -- import, export -------------------------------------------------------------------------------------


def test_import_files_archives_and_urls(concert_, tmp_path, http_server):
    base, www = http_server
    (tmp_path / "tomo.py").write_text('"""Tomography."""\n')
    (tmp_path / "bundle.zip").write_bytes(zip_of({"ct.py": '"""CT."""\n', "sub/xrd.py": '"""XRD."""\n'}))
    (www / "remote.py").write_text('"""From the web."""\n')
    (tmp_path / "local.py").write_text('"""From a file URL."""\n')
    output = concert_.ok(
        "import",
        "tomo.py",
        str(tmp_path / "bundle.zip"),
        f"{base}/remote.py",
        (tmp_path / "local.py").as_uri(),
    )
    assert output.splitlines() == [
        f"Imported the session '{name}'" for name in ("tomo", "ct", "xrd", "remote", "local")
    ]
    assert "the session 'tomo' exists" in concert_.fails("import", "tomo.py")
    (tmp_path / "tomo.py").write_text('"""New."""\n')
    concert_.ok("import", "--force", "tomo.py")
    assert concert_.ok("show", "tomo") == "New.\n"


def test_what_cannot_be_imported_is_one_line_and_imports_nothing(concert_, tmp_path, http_server):
    base, _ = http_server
    (tmp_path / "good.py").write_text("x = 1\n")
    data = zip_of({"tomo.py": "x = 1\n" * 100})
    (tmp_path / "truncated.zip").write_bytes(data[: len(data) // 2])
    (tmp_path / "escape.zip").write_bytes(zip_of({"../evil.py": "x = 1\n"}))
    (tmp_path / "empty.zip").write_bytes(zip_of({"README": "no sessions"}))
    (tmp_path / "invalid.py").write_text("def (:\n")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    port = closed_port()
    cases = {
        "truncated.zip": "not a readable zip archive",
        "escape.zip": "the member '../evil.py' points outside the archive",
        "empty.zip": "the archive holds no .py session",
        "invalid.py": "invalid.py line 1 is not valid Python: invalid syntax",
        "dangling.py": "cannot read dangling.py: No such file or directory",
        "missing.py": "cannot read missing.py: No such file or directory",
        f"{base}/missing.py": f"cannot fetch {base}/missing.py: HTTP error 404 (File not found)",
        f"http://127.0.0.1:{port}/x.py": f"cannot fetch http://127.0.0.1:{port}/x.py: Connection refused",
    }
    for source, fragment in cases.items():
        assert fragment in concert_.fails("import", "good.py", source)
    assert listing(concert_.sessions) == []


def test_ctrl_c_during_an_import_is_one_line_exit_130_and_imports_nothing(concert_):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(TIMEOUT)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/tomo.py"
        with subprocess.Popen(
            concert_.command("import", url),
            env=concert_.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as importer:
            try:
                connection, _ = server.accept()  # the import waits for an answer that never comes
                with connection:
                    assert connection.recv(1024).startswith(b"GET /tomo.py ")
                    importer.send_signal(signal.SIGINT)
                    assert importer.wait(TIMEOUT) == 130
            finally:
                importer.kill()
            assert importer.stderr.read() == "concert import: stopped by Ctrl-C\n"
            assert importer.stdout.read() == ""
    assert listing(concert_.sessions) == []


def test_export_writes_an_archive_that_imports_back(concert_, tmp_path):
    concert_.write("tomo", '"""Tomography."""\n')
    concert_.write("ct", '"""CT."""\n')
    archive = tmp_path / "beamline.zip"
    assert (
        concert_.ok("export", "tomo", "ct", "--to", "beamline.zip") == "Exported 2 sessions to beamline.zip\n"
    )
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == ["ct.py", "tomo.py"]
    assert "the archive beamline.zip exists" in concert_.fails("export", "tomo", "--to", "beamline.zip")
    assert (
        concert_.ok("export", "tomo", "--to", "beamline.zip", "--force")
        == "Exported 1 session to beamline.zip\n"
    )
    assert "must end in .zip" in concert_.fails("export", "tomo", "--to", "beamline.tar")
    assert "there is no session 'nope'" in concert_.fails("export", "tomo", "nope", "--to", "other.zip")
    concert_.ok("export", "tomo", "ct", "--to", "beamline.zip", "--force")
    elsewhere = {"CONCERT_SESSION_DIR": str(tmp_path / "elsewhere")}
    assert concert_.ok("import", "beamline.zip", env=elsewhere).count("Imported") == 2
    assert concert_.ok("ls", env=elsewhere) == "ct    CT.\ntomo  Tomography.\n"
    assert listing(tmp_path / "elsewhere") == ["ct.py", "tomo.py"] and not (tmp_path / "other.zip").exists()
