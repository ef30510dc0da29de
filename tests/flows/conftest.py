"""Fixtures for the flow tests: real processes on 127.0.0.1 (Prefect server and worker, Dask scheduler
and workers), each started in its own process group and stopped, group and all, at teardown even
when a test fails; and a bit-for-bit comparison of stored scores with in-process ones.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORK_POOL = "laion-lake-process"
# credentials of the stack's S3 (moto accepts any): distinctive, so that a grep for them means something
TEST_KEY, TEST_SECRET = "AKIALAIONLAKE7TESTKEY", "laion-lake-test-secret-3f9c1e"


# -- comparing scores ---------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON's view of a value: NaN -> None, tuples -> lists, numpy scalars -> Python (as records hold them)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def assert_scores_identical(stored: Sequence[Any], expected: Mapping[tuple[str, str, str], Any]) -> None:
    """Scores loaded from the lake equal ``score_many``'s bit for bit: value and every attribute
    (raw, ceiling, error, per-subject detail, alphas, ...) except the creation time."""
    by_key = {(s.attrs["model"], s.attrs["layer"], s.attrs["benchmark_key"]): s for s in stored}
    assert sorted(by_key) == sorted(expected), "stored scores are not the expected set"
    for key, want in expected.items():
        got = by_key[key]
        assert _plain(float(got.values)) == _plain(float(want.values)), key
        for name in ("raw", "ceiling", "error", "detail"):
            assert name in want.attrs, (key, name)
        for name, value in want.attrs.items():
            if name == "created":
                continue
            assert name in got.attrs, (key, name)
            assert _plain(got.attrs[name]) == _plain(value), (key, name, got.attrs[name], value)


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Processes:
    """Processes started by a fixture; each leads its own process group (its children go with it)."""

    log_dir: Path
    started: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, command: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(list(command), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.started.append((name, process))
        return process

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    @staticmethod
    def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            self.kill(process, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _, process in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # the group, not just the leader: uvicorn, flow-run subprocesses, ...
            self.kill(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)


def wait_for(predicate, timeout: float, what: str, processes: Processes | None = None, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.25)
    detail = f"\n--- {log}.log ---\n{processes.log(log)}" if processes and log else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s{detail}")


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
        return response.status == 200


def run_cli(command: Sequence[str], env: Mapping[str, str], cwd: Path = REPO, timeout: float = 180) -> str:
    result = subprocess.run(list(command), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@dataclass
class Stack:
    """A Prefect server with a process worker and the deployments of deploy/prefect.yaml, and a Dask cluster."""

    api_url: str
    env: dict[str, str]
    scheduler_address: str
    processes: Processes
    workers: list[subprocess.Popen]
    root: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start everything on 127.0.0.1; stop every process group at the end, even on failure."""
    root = tmp_path_factory.mktemp("stack")
    home = root / "prefect-home"
    home.mkdir()
    processes = Processes(root)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env = {
        **base,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "PREFECT_API_URL": api_url,
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "WARNING",
        "LAION_LAKE_HOME": str(REPO),
        "AWS_ACCESS_KEY_ID": TEST_KEY,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONUNBUFFERED": "1",
    }
    try:
        server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
        processes.start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"], server_env)
        scheduler_port = free_port()
        scheduler_address = f"tcp://127.0.0.1:{scheduler_port}"
        processes.start("dask-scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(scheduler_port), "--no-dashboard"], env)
        workers = [start_dask_worker(processes, f"dask-worker-{i}", scheduler_address, env) for i in range(2)]
        wait_for(lambda: _healthy(api_url), 120, "Prefect server", processes, "prefect-server")
        run_cli([str(BIN / "prefect"), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"], env)
        # the worker runs from elsewhere: the deployments' pull step must move each run into the checkout
        processes.start("prefect-worker", [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--type", "process"], env, cwd=root)
        run_cli([str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", "deploy/prefect.yaml"], env)
        wait_for_workers(scheduler_address, 2)
        yield Stack(api_url, env, scheduler_address, processes, workers, root)
    finally:
        processes.stop_all()


def start_dask_worker(processes: Processes, name: str, scheduler_address: str, env: Mapping[str, str]) -> subprocess.Popen:
    # no nanny: the worker is the process, so killing it is losing a worker (a nanny would restart it)
    command = [str(BIN / "dask"), "worker", scheduler_address, "--nthreads", "1", "--memory-limit", "2GiB",
               "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", name]  # fmt: skip
    return processes.start(name, command, env)


def wait_for_workers(scheduler_address: str, n: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(scheduler_address, timeout=30) as client:
        client.wait_for_workers(n, timeout=timeout)


def flow_run_logs(api_url: str, flow_run_id: Any) -> str:
    """The stored log lines of a flow run, for a failure message."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)[-6000:]

