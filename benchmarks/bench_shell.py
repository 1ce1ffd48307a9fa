"""Benchmark how long ``concert start`` takes to its first prompt, and ``concert run`` of an empty session.

Run with ``python benchmarks/bench_shell.py [--rounds N] [--importtime]``.
Five commands are timed, wall clock, each in a fresh process:

* ``python -c pass`` -- the interpreter alone;
* ``python -c "import IPython"`` -- importing IPython;
* ``python -m IPython`` -- IPython to its first prompt, under a pty;
* ``concert start empty`` -- the shell to its first prompt, under a pty
  (``empty`` is a session with nothing but a docstring: lock, log file and
  session loading included);
* ``concert run empty`` -- the same session without a shell.

The shells are started under a pty with pexpect (``TERM=xterm``,
``PROMPT_TOOLKIT_NO_CPR=1``), in a temporary IPython directory whose profile
has no history and no colours, so both shells do the same work; each is
timed until its prompt appears, then left with ``exit``. The commands take
turns in every round; the table gives the median of each and its ratio to
its baseline, with the lowest and highest ratio of a single round. The goal
of issue 10 is ``concert start`` at most 1.5 times the bare IPython start.
Timings are reported, never asserted.

Compiled modules are cached as on an installed machine (in a temporary
``PYTHONPYCACHEPREFIX``), even where ``PYTHONDONTWRITEBYTECODE`` is set;
``--no-bytecode-cache`` compiles every module at every start instead.
``--importtime`` adds where the import time of ``concert run`` and
``concert start`` goes (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pexpect
from prettytable import PrettyTable

IPYTHON_CONFIG = """\
c = get_config()
c.HistoryManager.enabled = False
c.TerminalInteractiveShell.colors = "nocolor"
c.TerminalInteractiveShell.confirm_exit = False
c.TerminalInteractiveShell.term_title = False
c.TerminalInteractiveShell.autosuggestions_provider = None
"""

TIMEOUT = 60  # seconds any one start may take before the benchmark gives up


def environment(directory: Path, bytecode: bool = True) -> Dict[str, str]:
    """A session store with the session ``empty``, an IPython directory without history, a plain terminal.

    With ``bytecode``, compiled modules are cached (in a directory of their
    own, ``PYTHONPYCACHEPREFIX``, so that the source tree stays clean) as on
    an installed machine; the warm-up round fills the cache for Concert and
    IPython alike.
    """
    sessions = directory / "sessions"
    sessions.mkdir()
    (sessions / "empty.py").write_text('"""An empty session."""\n')
    profile = directory / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(IPYTHON_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCERT_")}
    env.update(
        CONCERT_SESSION_DIR=str(sessions),
        XDG_DATA_HOME=str(directory / "xdg"),
        IPYTHONDIR=str(directory / "ipython"),
        TERM="xterm",
        PROMPT_TOOLKIT_NO_CPR="1",
    )
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(directory / "pycache")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def plain(args: List[str], env: Dict[str, str]) -> Callable[[], float]:
    """Time ``python ARGS`` to its end."""

    def run() -> float:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL, timeout=TIMEOUT
        )
        return time.perf_counter() - start

    return run


def to_prompt(args: List[str], env: Dict[str, str]) -> Callable[[], float]:
    """Time ``python ARGS`` under a pty until its first ``In [1]:`` prompt; then leave it."""

    def run() -> float:
        start = time.perf_counter()
        child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", timeout=TIMEOUT)
        child.expect(r"In \[1\]:")
        elapsed = time.perf_counter() - start
        child.sendline("exit")
        child.expect(pexpect.EOF)
        child.close()
        return elapsed

    return run


def measure(cases: Dict[str, Callable[[], float]], rounds: int) -> Dict[str, List[float]]:
    """Run every case once per round, in turn (one warm-up round first, not counted)."""
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for index in range(rounds + 1):
        for name, case in cases.items():
            elapsed = case()
            if index:
                times[name].append(elapsed)
    return times


def ratio(times: Dict[str, List[float]], ours: str, theirs: str) -> Tuple[float, float, float]:
    per_round = [a / b for a, b in zip(times[ours], times[theirs])]
    return statistics.median(times[ours]) / statistics.median(times[theirs]), min(per_round), max(per_round)


def _parsed(output: str, top: int) -> List[Tuple[int, int, str]]:
    rows = []
    for line in output.splitlines():
        line = line.strip("\r")
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        rows.append((int(own), int(cumulative), name[1:].rstrip()))  # the indentation shows the nesting
    return sorted(rows, key=lambda row: -row[1])[:top]


def importtime(args: List[str], env: Dict[str, str], top: int = 15) -> List[Tuple[int, int, str]]:
    """The ``top`` imports of ``python -X importtime ARGS``, slowest first: (self, cumulative µs, name)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return _parsed(result.stderr, top)


def importtime_to_prompt(args: List[str], env: Dict[str, str], top: int = 400) -> List[Tuple[int, int, str]]:
    """As :func:`importtime` for a shell under a pty, until its first prompt."""
    child = pexpect.spawn(
        sys.executable, ["-X", "importtime", *args], env=env, encoding="utf-8", timeout=TIMEOUT
    )
    child.expect(r"In \[1\]:")
    output = child.before
    child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    return _parsed(output, top)


def show_imports(title: str, rows: List[Tuple[int, int, str]]) -> None:
    table = PrettyTable(["module", "self ms", "cumulative ms"])
    table.align = "r"
    table.align["module"] = "l"
    for own, cumulative, name in rows:
        table.add_row([name.strip(), f"{own / 1000:.1f}", f"{cumulative / 1000:.1f}"])
    print(f"\n{title}")
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of every command (default 10)")
    parser.add_argument("--importtime", action="store_true", help="also show where import time goes")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="compile every module at every start (as with PYTHONDONTWRITEBYTECODE=1)",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        env = environment(Path(directory), bytecode=not options.no_bytecode_cache)
        cases = {
            "python -c pass": plain(["-c", "pass"], env),
            'python -c "import IPython"': plain(["-c", "import IPython"], env),
            "python -m IPython (to the prompt)": to_prompt(["-m", "IPython", "--no-banner"], env),
            "concert start empty (to the prompt)": to_prompt(["-m", "concert", "start", "empty"], env),
            "concert run empty": plain(["-m", "concert", "run", "empty"], env),
        }
        times = measure(cases, options.rounds)
        baselines = {
            "python -c pass": None,
            'python -c "import IPython"': "python -c pass",
            "python -m IPython (to the prompt)": 'python -c "import IPython"',
            "concert start empty (to the prompt)": "python -m IPython (to the prompt)",
            "concert run empty": "python -c pass",
        }
        table = PrettyTable(["command", "median ms", "min-max ms", "vs", "ratio (rounds' range)"])
        table.align = "r"
        table.align["command"] = table.align["vs"] = "l"
        for name, samples in times.items():
            baseline = baselines[name]
            spread = f"{min(samples) * 1e3:.0f}-{max(samples) * 1e3:.0f}"
            if baseline is None:
                table.add_row([name, f"{statistics.median(samples) * 1e3:.0f}", spread, "", ""])
                continue
            middle, low, high = ratio(times, name, baseline)
            table.add_row(
                [
                    name,
                    f"{statistics.median(samples) * 1e3:.0f}",
                    spread,
                    baseline,
                    f"{middle:.2f} ({low:.2f}-{high:.2f})",
                ]
            )
        start_vs_import = ratio(times, "concert start empty (to the prompt)", 'python -c "import IPython"')
        caches = "without bytecode caches" if options.no_bytecode_cache else "with bytecode caches"
        print(f"{options.rounds} rounds, the commands taking turns; wall times of fresh processes, {caches}")
        print(table)
        low, high = start_vs_import[1:]
        print(f"concert start vs import IPython: {start_vs_import[0]:.2f} ({low:.2f}-{high:.2f})")
        print("goal: concert start <= 1.5 x the bare IPython start (python -m IPython to the prompt)")
        if options.importtime:
            run_rows = importtime(["-m", "concert", "run", "empty"], env)
            show_imports("concert run empty: the slowest imports (cumulative)", run_rows)
            start_rows = importtime_to_prompt(["-m", "concert", "start", "empty"], env)
            top_level = [row for row in start_rows if not row[2].startswith(" ")]
            total = sum(row[1] for row in top_level)
            ipython = sum(
                row[1] for row in top_level if row[2].split(".")[0] in ("IPython", "prompt_toolkit")
            )
            ours = [row for row in start_rows if row[2].strip().startswith("concert")]
            print(
                f"\nconcert start empty: {total / 1000:.0f} ms of imports before the prompt, "
                f"{ipython / 1000:.0f} ms of them IPython and prompt_toolkit (top-level imports only)"
            )
            show_imports("concert start empty: the slowest imports (cumulative)", start_rows[:15])
            show_imports("concert start empty: Concert's own modules", ours[:15])


if __name__ == "__main__":
    main()
