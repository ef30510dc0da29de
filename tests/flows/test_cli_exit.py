"""The console script leaves without interpreter finalization, yet loses no output, exit hook or exit code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.faults.conftest import ROOT

# a non-daemon thread that finishes after main returns, and an atexit hook: both must run before exit
SCRIPT = """
import atexit, sys, threading, time
from laion_lake import cli
threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished", flush=True))).start()
atexit.register(lambda: print("exit hook ran"))
sys.argv = ["laion-lake", *sys.argv[1:]]
cli.run()
"""


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (["--version"], 0, ""),
        (["ls", "/nonexistent/lake"], 2, "laion-lake ls: error: no lake at /nonexistent/lake"),
        (["no-such-command"], 2, "invalid choice: 'no-such-command'"),
    ],
)
def test_run_keeps_output_hooks_and_exit_code(args: list[str], code: int, stderr: str) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr
    # the thread's line comes before the hook's: threads are joined first, as CPython does
    assert done.stdout.splitlines()[-2:] == ["thread finished", "exit hook ran"]
    assert stderr in done.stderr


def test_the_installed_script_is_run() -> None:
    # the console script must go through run(), not main(), or the Icechunk exit abort comes back
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["laion-lake"] == "laion_lake.cli:run"


def test_a_reader_that_left_ends_quietly_with_141() -> None:
    # `laion-lake log LAKE | head`: stdout's reader is gone before the command writes its 50 kB
    read_end, write_end = os.pipe()
    os.close(read_end)
    with open(write_end, "wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-c", "from laion_lake import cli; cli.main = lambda: print('line\\n' * 10_000) or 0; cli.run()"],
            cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120,
        )
    assert done.returncode == 141
    assert done.stderr == ""
