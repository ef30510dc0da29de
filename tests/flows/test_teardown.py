"""A flow-path score leaves no noise behind (issue #11 items 2-3).

1. A local-cluster run's stderr holds no teardown warnings ("Worker process still alive after 4.0
   seconds, killing", tracebacks, "Exception ignored", leaked semaphores).
2. A long-lived ``dask scheduler`` / ``dask worker`` (real processes) that ran a flow score through
   Prefect's temporary server logs nothing about the gone API in the ~15 s after the flow ended.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from laion_lake.synthetic import make_lake
from tests.flows.conftest import BIN, Processes, free_port, start_dask_worker, wait_for_workers

pytestmark = pytest.mark.slow  # each runs a flow through Prefect's temporary server (~30-70 s)

BENCHMARK = "LAION_fMRI.V1-tau-ridgecv"
TEARDOWN_NOISE = ("still alive", "Traceback", "Exception ignored", "leaked semaphore", "Event loop is closed",
                  "ERROR", "WARNING", "CancelledError")  # fmt: skip


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_"))}
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}  # fmt: skip


def score(lake: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    command = [str(BIN / "laion-lake"), "score", lake, "--model", "early_model", "--layer", "conv2", "--benchmark", BENCHMARK, *extra]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)


def test_local_cluster_run_ends_without_teardown_warnings(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    make_lake(lake, scale="tiny", seed=0)
    result = score(lake, cli_env(tmp_path), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LAION_fMRI.V1-tau-ridgecv        0.269" in result.stdout, result.stdout  # the tiny lake's known value
    noise = [line for line in result.stderr.splitlines() if any(word in line for word in TEARDOWN_NOISE)]
    assert noise == [], "\n".join(noise)


def test_long_lived_worker_stays_quiet_after_the_flow(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    make_lake(lake, scale="tiny", seed=0)
    env = cli_env(tmp_path)
    processes = Processes(tmp_path)
    address = f"tcp://127.0.0.1:{free_port()}"
    try:
        processes.start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                      "--no-dashboard"], env)  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                start_dask_worker(processes, "worker", address, env)
                wait_for_workers(address, 1, timeout=60)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        result = score(lake, env, "--scheduler", address)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "0.269" in result.stdout, result.stdout
        worker_log = tmp_path / "worker.log"
        ran = len(worker_log.read_text(errors="replace"))
        time.sleep(15)  # a worker still pointed at the gone server logged an ERROR every ~7 s
        after = worker_log.read_text(errors="replace")[ran:]
        noisy = [line for line in after.splitlines() if any(word in line for word in ("ERROR", "Traceback", "prefect", "Prefect", "WARNING"))]
        assert noisy == [], after[-3000:]
        assert processes.started[1][1].poll() is None, "the worker exited"
    finally:
        processes.stop_all()
