"""The session commands through the real ``concert`` command, one subprocess per call.

Every call runs ``python -m concert ...`` with its own session directory
(``CONCERT_SESSION_DIR``), ``XDG_DATA_HOME`` and ``HOME`` under tmp_path and
``EDITOR=true``. A success prints on standard output only; a failure is one
line ``concert <command>: ...`` on standard error, exit status 1, nothing on
standard output, no traceback.
"""

from __future__ import annotations

import base64
import io
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Dict, Optional

import pytest

import concert
from tests.conftest import TIMEOUT
from tests.session.test_store import (
    closed_port,
    http_server,
    immutable,
    listing,
    raw_server,
    read_only,
    small_disk,
    zip_of,
)

# fixtures used here, defined beside the store's tests
__all__ = ["http_server", "immutable", "raw_server", "read_only", "small_disk"]

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

    def command(self, *args: str, umask: Optional[int] = None) -> list:
        if umask is None:
            return [sys.executable, "-m", "concert", *args]
        return ["sh", "-c", f'umask {umask:03o} && exec "$0" "$@"', sys.executable, "-m", "concert", *args]

    def __call__(
        self, *args: str, env: Optional[Dict[str, str]] = None, umask: Optional[int] = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args, umask=umask),
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

    def ok(self, *args: str, env: Optional[Dict[str, str]] = None, umask: Optional[int] = None) -> str:
        """Run; it must succeed quietly on standard error. Return standard output."""
        result = self(*args, env=env, umask=umask)
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


def test_a_name_that_would_hide_a_module_is_refused_saying_why(concert_):
    assert concert_.fails("init", "numpy") == (
        "concert init: 'numpy' cannot name a session: it would hide the module numpy (which Concert uses)"
        " -- `import numpy` would load the session instead -- so choose another name"
    )
    concert_.write("tomo", '"""Tomography."""\n')
    (concert_.cwd / "json.py").write_text("x = 1\n")
    for args in (["cp", "tomo", "json"], ["mv", "tomo", "json"], ["import", "json.py"], ["edit", "json"]):
        assert "'json' cannot name a session: it would hide the module json (of the standard library)" in (
            concert_.fails(*args)
        )
    assert listing(concert_.sessions) == ["tomo.py"]


def test_new_files_follow_the_umask_and_copies_and_replacements_keep_their_mode(concert_, tmp_path):
    concert_.ok("init", "tomo", umask=0o077)
    path = concert_.sessions / "tomo.py"
    assert path.stat().st_mode & 0o777 == 0o600
    (tmp_path / "ct.py").write_text("x = 1\n")
    concert_.ok("import", "ct.py", umask=0o077)
    concert_.ok("export", "tomo", "--to", "out.zip", umask=0o077)
    assert (concert_.sessions / "ct.py").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "out.zip").stat().st_mode & 0o777 == 0o600
    concert_.ok("init", "open", umask=0o022)
    assert (concert_.sessions / "open.py").stat().st_mode & 0o777 == 0o644
    concert_.ok("cp", "tomo", "duplicate", umask=0o022)  # a copy of a private session stays private
    assert (concert_.sessions / "duplicate.py").stat().st_mode & 0o777 == 0o600
    concert_.ok("cp", "open", "narrowed", umask=0o077)  # and the umask narrows a copy
    assert (concert_.sessions / "narrowed.py").stat().st_mode & 0o777 == 0o600
    (concert_.sessions / "open.py").chmod(0o640)
    (tmp_path / "out.zip").chmod(0o640)
    for args in (
        ["cp", "tomo", "open", "--force"],
        ["init", "open", "--force"],
        ["import", "--force", "open.py"],
    ):
        (tmp_path / "open.py").write_text("y = 2\n")
        concert_.ok(*args, umask=0o022)
        assert (concert_.sessions / "open.py").stat().st_mode & 0o777 == 0o640, (
            args
        )  # a replaced file keeps it
    concert_.ok("export", "tomo", "--to", "out.zip", "--force", umask=0o022)
    assert (tmp_path / "out.zip").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    "args",
    [["ls"], ["show"], ["show", "s07"], ["log", "s07"], ["init", "new"], ["cp", "s07", "new"], ["rm", "s07"]],
)
def test_a_reader_that_is_gone_ends_every_command_quietly(concert_, args):
    for index in range(50):
        concert_.write(f"s{index:02}", f'"""Session {index}."""\n')
    (concert_.sessions / "s07.log").write_text("a line of the log\n")
    reading, writing = os.pipe()
    os.close(reading)  # gone before the command writes anything, as `concert ls | head -1` can be
    try:
        result = subprocess.run(
            concert_.command(*args),
            env=concert_.env,
            cwd=concert_.cwd,
            stdout=writing,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
        )
    finally:
        os.close(writing)
    assert (result.returncode, result.stderr) == (0, b"")
    assert (args[0] != "init" or (concert_.sessions / "new.py").exists()) and (
        args[0] != "rm" or not (concert_.sessions / "s07.py").exists()
    )


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


def test_edit_of_a_directory_or_by_an_editor_that_removes_the_file_says_what_happened(concert_):
    (concert_.sessions / "folder.py").mkdir(parents=True)
    line = concert_.fails("edit", "folder")
    folder = concert_.sessions / "folder.py"
    assert line == f"concert edit: cannot write the session 'folder': {folder} is a directory"
    assert concert_.fails("edit", "tomo", env={"EDITOR": "rm"}) == (
        f"concert edit: the editor 'rm' left no file {concert_.sessions / 'tomo.py'}; nothing was saved"
    )
    concert_.write("ct", '"""CT."""\n')
    assert concert_.fails("edit", "ct", env={"EDITOR": "rm"}).endswith("; the session 'ct' is gone")
    assert listing(concert_.sessions) == ["folder.py"]


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


def test_a_forced_mv_whose_log_cannot_follow_changes_nothing(concert_):
    concert_.write("a", '"""A."""\n')
    (concert_.sessions / "a.log").write_text("a's log\n")
    concert_.write("b", '"""B."""\n')
    (concert_.sessions / "b.log").mkdir()
    line = concert_.fails("mv", "a", "b", "--force")
    assert listing(concert_.sessions) == ["a.log", "a.py", "b.log", "b.py"]
    assert concert_.ok("show", "b") == "B.\n" and concert_.ok("show", "a") == "A.\n"
    logs = concert_.sessions / "a.log", concert_.sessions / "b.log"
    assert line == f"concert mv: cannot rename {logs[0]} to {logs[1]}: it is a directory"


def test_rm_of_a_session_that_cannot_be_removed_removes_none(concert_, immutable):
    for name in ("tomo", "ct", "xrd"):
        concert_.write(name, f'"""{name}."""\n')
    immutable(concert_.sessions / "ct.py")
    line = concert_.fails("rm", "tomo", "ct", "xrd")
    assert listing(concert_.sessions) == ["ct.py", "tomo.py", "xrd.py"]
    assert line == (
        f"concert rm: cannot remove {concert_.sessions / 'ct.py'}: Operation not permitted; "
        "none of the sessions given was removed"
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


def test_log_of_a_log_that_cannot_be_read_is_one_line(concert_):
    concert_.write("tomo", '"""Tomography."""\n')
    log = concert_.sessions / "tomo.log"
    log.mkdir()
    for args in (["log", "tomo", "--follow"], ["log", "tomo"]):
        assert concert_.fails(*args) == f"concert log: cannot read {log}: it is a directory"


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


def test_an_import_that_fills_the_disk_changes_nothing(concert_, tmp_path, small_disk):
    concert_.sessions = small_disk / "sessions"
    concert_.env["CONCERT_SESSION_DIR"] = str(concert_.sessions)
    kept = concert_.write("x", '"""The x that must stay."""\n')
    (tmp_path / "x.py").write_text('"""A new x."""\n')
    (tmp_path / "y.py").write_text('"""Too large for the disk."""\n' + "# filler\n" * 10000)
    line = concert_.fails("import", "--force", "x.py", "y.py")  # x is written before y fills the disk
    assert listing(concert_.sessions) == ["x.py"] and kept.read_text() == '"""The x that must stay."""\n'
    full = f"cannot write the session 'y' in {concert_.sessions}: No space left on device"
    assert line == f"concert import: {full}"
    noise = base64.b85encode(os.urandom(30000)).decode()  # 37 KiB that do not compress: 2 of it fill the disk
    concert_.write("big", "".join(f"# {noise[start : start + 70]}\n" for start in range(0, len(noise), 70)))
    for args in (["cp", "big", "big2"], ["export", "big", "--to", str(small_disk / "out.zip")]):
        assert "No space left on device" in concert_.fails(*args)
    assert listing(concert_.sessions) == ["big.py", "x.py"] and listing(small_disk) == ["sessions"]


@pytest.mark.parametrize("when", ["writing", "putting in place"])
def test_ctrl_c_at_any_point_of_an_import_leaves_the_store_as_it_was(concert_, tmp_path, when):
    count = 300
    (tmp_path / "many.zip").write_bytes(
        zip_of({f"m{index:04}.py": f"x = {index}\n" for index in range(count)})
    )
    old = concert_.write("m0000", '"""The old m0000."""\n')
    inode = old.stat().st_ino
    with subprocess.Popen(
        concert_.command("import", "--force", "many.zip"),
        env=concert_.env,
        cwd=concert_.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as importer:
        try:
            deadline = time.monotonic() + TIMEOUT
            # While writing: a hundred sessions are written already (none of them in place, m0000 not
            # replaced). While putting in place: the first new session is there.
            wanted = ".m0100.py." if when == "writing" else "m0001.py"
            while not any(name.startswith(wanted) for name in os.listdir(concert_.sessions)):
                assert time.monotonic() < deadline and importer.poll() is None, "the import did not start"
                os.sched_yield()
            importer.send_signal(signal.SIGINT)
            status = importer.wait(TIMEOUT)
        finally:
            importer.kill()
        stdout, stderr = importer.stdout.read(), importer.stderr.read()
    names = sorted(os.listdir(concert_.sessions))
    if status == 0:  # Ctrl-C came after the import was complete: all of it
        assert when == "putting in place" and stderr == b"" and stdout.count(b"Imported") == count
        assert names == [f"m{index:04}.py" for index in range(count)]
    else:
        assert (status, stdout, stderr) == (130, b"", b"concert import: stopped by Ctrl-C\n")
        assert names == ["m0000.py"] and old.stat().st_ino == inode
        assert old.read_text() == '"""The old m0000."""\n'


def test_an_archive_that_would_unpack_to_too_much_is_refused_before_unpacking(concert_, tmp_path):
    buffer = io.BytesIO()  # 80 MiB of sessions, none larger than a session may be, in 80 KiB
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(80):
            archive.writestr(f"m{index}.py", b"#" * (1024 * 1024))
    (tmp_path / "bomb.zip").write_bytes(buffer.getvalue())
    assert concert_.fails("import", "bomb.zip") == (
        "concert import: cannot import bomb.zip: the sessions of this import come to more than 64 MiB in all,"
        " more than one import takes"
    )
    assert listing(concert_.sessions) == []


def test_a_download_shorter_than_announced_imports_nothing(concert_, tmp_path, raw_server):
    def short(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\nx = 1\n#\n")

    url = raw_server(short) + "/tomo.py"
    (tmp_path / "good.py").write_text("x = 1\n")
    assert concert_.fails("import", "good.py", url) == (
        f"concert import: cannot fetch {url}: "
        "the download ended after 8 of the 1000 bytes the server announced"
    )
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
