"""The score deployment end to end with real parts on 127.0.0.1: a Prefect server (SQLite), a process
work pool and worker, a Dask scheduler with two worker processes, and a moto S3 server holding a
tiny synthetic lake. Deployments come from deploy/prefect.yaml; runs go through the Prefect API.
The stored scores must equal the in-process ``score_many`` bit for bit, also when a Dask worker is
killed in the middle of a run. Credentials never travel as parameters: the workers read them from
their environment, and neither the Prefect database, the logs nor the lake holds the key or secret.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from laion_lake import score_many
from laion_lake.lake import open_lake
from laion_lake.scoring.records import load_scores
from laion_lake.synthetic import make_lake
from tests.conftest import new_s3_lake_url
from tests.flows.conftest import TEST_KEY, TEST_SECRET, Processes, Stack, assert_scores_identical, flow_run_logs, start_dask_worker, wait_for_workers

pytestmark = [pytest.mark.slow, pytest.mark.s3]

BENCHMARKS = ["LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI_persubject.IT-ood-ridgecv", "LAION_fMRI.V4-rdm-pearson"]


@pytest.fixture(scope="module")
def s3_lake(s3_endpoint: str) -> tuple[str, dict]:
    url, options = new_s3_lake_url(s3_endpoint)
    options = {**options, "key": TEST_KEY, "secret": TEST_SECRET}
    make_lake(url, scale="tiny", seed=0, storage_options=options)
    return url, options


def parameters_for(stack: Stack, url: str, options: dict, feature_sets: list[str], benchmarks: list[str]) -> dict[str, Any]:
    """Deployment parameters: the endpoint only, no credentials (the workers' environment has them)."""
    public = {k: v for k, v in options.items() if k not in ("key", "secret")}
    return {"lake_url": url, "storage_options": public, "feature_sets": feature_sets, "benchmarks": benchmarks,
            "cluster": {"address": stack.scheduler_address}}  # fmt: skip


def assert_no_secrets(stack: Stack, url: str, options: dict) -> None:
    """Neither the key nor the secret is in the Prefect database, any log, a flow run's parameters or the lake."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    secrets = [TEST_KEY.encode(), TEST_SECRET.encode()]
    files = [p for p in stack.root.rglob("*") if p.is_file()]
    assert any(p.name.startswith("prefect.db") for p in files), "no Prefect database found"
    for path in files:  # prefect.db (+ -wal), every process's log, the Prefect home
        data = path.read_bytes()
        assert not any(s in data for s in secrets), f"a credential is in {path}"
    with temporary_settings(updates={PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        assert runs
        for run in runs:
            text = json.dumps(run.parameters) + flow_run_logs(stack.api_url, run.id)
            assert TEST_KEY not in text and TEST_SECRET not in text, run.name
    import s3fs

    from laion_lake.scoring.records import unit_records

    lake = open_lake(url, options)
    stored = json.dumps(unit_records(lake), default=str) + json.dumps([s.attrs for s in load_scores(lake)], default=str)
    assert TEST_KEY not in stored and TEST_SECRET not in stored
    fs = s3fs.S3FileSystem(**options)
    bucket = url.removeprefix("s3://").split("/")[0]
    for path in fs.find(bucket):  # every object of the lake's bucket, as stored
        assert not any(s in fs.cat_file(path) for s in secrets), f"a credential is in {path}"

def run_score_deployment(stack: Stack, parameters: dict[str, Any], timeout: float = 480) -> Any:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
        flow_run = run_deployment("laion-lake-score/score", parameters=parameters, timeout=timeout, poll_interval=1, as_subflow=False)
    if not flow_run.state.is_completed():
        pytest.fail(
            f"flow run ended {flow_run.state!r}\n--- flow run logs ---\n{flow_run_logs(stack.api_url, flow_run.id)}"
            f"\n--- prefect-worker.log ---\n{stack.processes.log('prefect-worker')}"
        )
    return flow_run


def expected_scores(url: str, options: dict, feature_sets: list[list[str]], benchmarks: list[str]) -> dict:
    return score_many(open_lake(url, options), [tuple(fs.split("/")) for fs in feature_sets], benchmarks)


def test_score_deployment_lands_scores_identical_to_in_process(stack: Stack, s3_lake: tuple[str, dict]) -> None:
    url, options = s3_lake
    feature_sets = ["early_model/conv2"]
    run_score_deployment(stack, parameters_for(stack, url, options, feature_sets, BENCHMARKS))

    lake = open_lake(url, options)
    stored = load_scores(lake, model="early_model")
    assert len(stored) == len(BENCHMARKS)
    assert_scores_identical(stored, expected_scores(url, options, feature_sets, BENCHMARKS))
    assert_no_secrets(stack, url, options)


def _kill_when_busy(stack: Stack, lake_url: str, options: dict, prefix: str, stop: threading.Event, killed: list) -> None:
    """Once a first unit task has finished, SIGKILL dask-worker-0 while the scheduler has a task on
    it; record the keys it held."""
    from distributed import Client

    with Client(stack.scheduler_address, timeout=30) as client:
        address = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == "dask-worker-0")
        while not stop.is_set():
            # a lambda travels by value: the scheduler process cannot import this test module
            done = client.run_on_scheduler(lambda dask_scheduler: sum(
                1 for key, ts in dask_scheduler.tasks.items() if str(key).startswith("unit-") and ts.state == "memory"))
            if done:
                held = client.processing(workers=[address]).get(address)
                if held:
                    Processes.kill(stack.workers[0])
                    killed.append(list(held))
                    return
            time.sleep(0.05)


def test_run_survives_a_killed_dask_worker(stack: Stack, s3_lake: tuple[str, dict]) -> None:
    url, options = s3_lake
    feature_sets = ["late_model/fc6"]
    # one benchmark per kind of unit (shared tau and ood, own tau and ood, rdm): 25 units
    benchmarks = ["LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI.IT-ood-ridgecv", "LAION_fMRI_persubject.V4-tau-ridgecv",
                  "LAION_fMRI_persubject.V1-ood-ridgecv", "LAION_fMRI.IT-rdm-pearson"]  # fmt: skip
    parameters = parameters_for(stack, url, options, feature_sets, benchmarks)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_when_busy, args=(stack, url, options, "scores/units/late_model", stop, killed), daemon=True)
    killer.start()
    try:
        run_score_deployment(stack, parameters)
    finally:
        stop.set()
        killer.join(timeout=10)
    assert killed, "dask-worker-0 was never killed while holding a task"
    assert stack.workers[0].wait(timeout=10) is not None

    lake = open_lake(url, options)
    # every unit has its whole record (no partial record from the killed worker)
    from laion_lake.scoring.records import unit_records

    records = unit_records(lake, model="late_model")
    assert len(records) == 25 and all(r["results"] for r in records)
    stored = load_scores(lake, model="late_model")
    assert len(stored) == len(benchmarks)
    assert_scores_identical(stored, expected_scores(url, options, feature_sets, benchmarks))

    # leave the cluster as the module found it (two workers) for whatever runs next
    stack.workers[0] = start_dask_worker(stack.processes, "dask-worker-0b", stack.scheduler_address, stack.env)
    wait_for_workers(stack.scheduler_address, 2)
