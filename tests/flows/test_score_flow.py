"""``score_flow`` in this process (ephemeral Prefect API, a LocalCluster of 2 worker processes) on a
tiny local lake: records land, a re-run skips (without a cluster), ``force`` recomputes, a lost
record is recomputed alone, and the stored scores equal ``score_many``'s bit for bit; the run
publishes its table and markdown artifacts. ``batch_flow`` shares the plan. Retries: transient
errors only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.batch import batch_flow, summary_table
from flows.cluster import ClusterSettings
from flows.task_runner import NamedDaskTaskRunner, task_runner
from flows.score import score_flow
from laion_lake.dask import UnitsFailedError
from laion_lake.preflight import resolve_feature_sets
from laion_lake import score_many
from laion_lake.lake import open_lake
from laion_lake.scoring.records import load_scores
from laion_lake.synthetic import make_lake
from tests.flows.conftest import assert_scores_identical

FEATURE_SETS = ["early_model/conv2"]
BENCHMARKS = ["LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI_persubject.V4-ood-ridgecv", "LAION_fMRI.IT-rdm-pearson"]
# one LocalCluster of 2 single-threaded worker processes; dashboard on a free loopback port (None would mean :8787 on every interface)
CLUSTER = {"workers": 2, "memory_limit": "2GiB", "cluster_kwargs": {"dashboard_address": "127.0.0.1:0"}}
# worker threads in this process: a monkeypatched library function reaches them
THREADS = {"workers": 2, "cluster_kwargs": {"processes": False, "dashboard_address": "127.0.0.1:0"}}


@pytest.fixture(scope="module")
def lake_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("flow") / "lake")
    make_lake(url, scale="tiny", seed=0)
    return url


def unit_records(url: str, model: str | None = None) -> list[dict]:
    from laion_lake.scoring.records import unit_records as stored

    return stored(open_lake(url), model=model)


def test_score_flow_records_rerun_and_force(lake_url: str) -> None:
    first = score_flow(lake_url, FEATURE_SETS, BENCHMARKS, cluster=CLUSTER)
    # 5 subjects x (shared tau, own ood, rdm) units; one aggregate per benchmark
    assert first["units"] == 15 and first["computed"] == 15 and first["skipped"] == 0
    assert len(first["scores"]) == len(BENCHMARKS)
    assert len(unit_records(lake_url, "early_model")) == 15
    expected = score_many(open_lake(lake_url), [tuple(fs.split("/")) for fs in FEATURE_SETS], BENCHMARKS)
    assert_scores_identical(load_scores(open_lake(lake_url)), expected)
    assert_artifacts(first)

    # nothing to compute: no cluster starts (a cluster class that does not exist would fail a run that tried)
    again = score_flow(lake_url, FEATURE_SETS, BENCHMARKS, cluster={"cluster_class": "no.such.Cluster"})
    assert (again["computed"], again["skipped"], again["failed"]) == (0, 15, 0)
    assert again["scores"] == first["scores"]

    forced = score_flow(lake_url, FEATURE_SETS, BENCHMARKS, force=True, cluster=CLUSTER)
    assert (forced["computed"], forced["skipped"]) == (15, 0)
    assert_scores_identical(load_scores(open_lake(lake_url)), expected)


def assert_artifacts(report: dict) -> None:
    """The latest table artifact holds the run's scores row for row; the markdown names the units."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    by_key = {}
    for artifact in artifacts:
        by_key.setdefault(artifact.key, artifact)
    table = by_key["laion-lake-scores"]
    rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
    assert [(r["model"], r["layer"], r["benchmark"], r["value"]) for r in rows] == [
        (r["model"], r["layer"], r["benchmark"], r["value"]) for r in report["scores"]]  # fmt: skip
    assert set(rows[0]) == {"model", "layer", "benchmark", "value", "error", "raw", "ceiling"}
    summary = by_key["laion-lake-summary"]
    assert f"{report['units']} work units: {report['computed']} computed" in summary.data
    # the run is named after what it scored, and its unit summary reached the API (not only the terminal)
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        logs = [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))]
    assert run.name == f"{', '.join(FEATURE_SETS)} x {len(BENCHMARKS)} benchmarks in {run.parameters['lake_url']}"
    assert any(m.startswith(f"{report['units']} work units: {report['computed']} computed") for m in logs), logs
    # one line per unit as it ends (the units are Dask tasks, not Prefect task runs)
    ended = [m for m in logs if m.startswith("unit ") and ": computed (" in m]
    assert len(ended) == report["computed"], logs


def test_batch_flow_scores_models_on_one_cluster_and_logs_a_table(lake_url: str) -> None:
    report = batch_flow(lake_url, models=["early_model", "late_model/fc6"], benchmarks=BENCHMARKS[:1], cluster=CLUSTER)
    # 2 feature sets x 5 subjects' shared tau units (early_model's may be stored already: skipped)
    assert report["units"] == report["computed"] + report["skipped"] == 10
    assert len(report["scores"]) == 2
    lines = report["table"].splitlines()
    assert "early_model/conv2" in lines[0] and "late_model/fc6" in lines[0]
    assert lines[1].startswith("LAION_fMRI.V1-tau-ridgecv") and lines[1].count("±") == 2
    expected = score_many(open_lake(lake_url), [("early_model", "conv2"), ("late_model", "fc6")], BENCHMARKS[:1])
    stored = [s for s in load_scores(open_lake(lake_url)) if s.attrs["benchmark_key"] == BENCHMARKS[0]]
    assert_scores_identical(stored, expected)


def test_feature_set_selection_and_cluster_config(lake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import dask

    lake = open_lake(lake_url)
    assert resolve_feature_sets(lake, ["late_model"]) == (("late_model", "fc6"),)
    assert resolve_feature_sets(lake, ["early_model/conv2", "random_model"]) == (("early_model", "conv2"), ("random_model", "fc"))
    with pytest.raises(ValueError, match="unknown feature set 'no_such_model'"):
        resolve_feature_sets(lake, ["no_such_model"])
    runner = task_runner({"address": "tcp://127.0.0.1:1"})
    assert isinstance(runner, NamedDaskTaskRunner) and runner.address == "tcp://127.0.0.1:1"
    local = task_runner(None)
    assert local.cluster_kwargs["n_workers"] == 2 and "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL" in local.cluster_kwargs["env"]
    for bad, message in (({"workers": 0}, "workers"), ({"memory_limit": "abc"}, "memory limit 'abc'"), ({"nodes": 3}, "nodes"),
                         ({"address": "tcp://x:1", "cluster_kwargs": {"n_workers": 2}}, "cannot go with it")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            score_flow.fn(lake_url, FEATURE_SETS, BENCHMARKS, cluster=bad)
    assert summary_table([]) == "(no scores)"
    # Dask's own configuration names the shared scheduler (DASK_SCHEDULER_ADDRESS sets it too)
    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:2"}):
        assert task_runner(None).address == "tcp://127.0.0.1:2"
    assert ClusterSettings().is_local


def test_transient_errors_are_retried_and_bad_data_is_not(lake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the flow (worker threads in this process, so the patched unit reaches them): a storage
    error is retried by Dask and the unit then computes; a bad-data error (a ValueError) runs once
    and fails the run, naming every unit; a cluster class that cannot be imported is one line."""
    from collections import Counter

    import laion_lake.dask as lld
    from laion_lake.preflight import PreflightError

    real, calls = lld.run_unit_by_key, Counter()

    def failing_once(error: Exception):
        def run(url, options, unit_key, benchmark_keys, force):
            calls[unit_key] += 1
            if calls[unit_key] == 1:
                raise error
            return real(url, options, unit_key, benchmark_keys, force)

        return run

    request = (lake_url, ["random_model/fc"], ["LAION_fMRI.V2-rdm-pearson"])
    monkeypatch.setattr(lld, "run_unit_by_key", failing_once(OSError("simulated storage failure")))
    report = score_flow(*request, force=True, cluster=THREADS)
    assert (report["computed"], report["failed"], len(report["scores"])) == (5, 0, 1)
    assert len(calls) == 5 and set(calls.values()) == {2}, "a transient error was not retried"
    calls.clear()
    monkeypatch.setattr(lld, "run_unit_by_key", failing_once(ValueError("non-finite activations")))
    with pytest.raises(UnitsFailedError, match=r"5 of 5 work unit\(s\) failed") as failed:
        score_flow(*request, force=True, cluster=THREADS)
    assert "random_model/fc/sub-01/shared/rdm: ValueError: non-finite activations" in str(failed.value)
    assert len(calls) == 5 and set(calls.values()) == {1}, "a deterministic error was retried"
    with pytest.raises(PreflightError, match=r"cluster_class 'no\.such\.Cluster' cannot be imported"):
        score_flow(*request, force=True, cluster={"cluster_class": "no.such.Cluster"})


def test_plain_dask_api_names_units_and_failed_units(lake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """laion_lake.dask: keys name the units, aggregates wait for theirs only, and a unit failing on bad
    data runs once and is named in the UnitsFailedError; no Prefect server on this path."""
    from collections import Counter

    from distributed import Client, LocalCluster

    import laion_lake.dask as lld

    work = lld.plan(lake_url, ["random_model/fc"], ["LAION_fMRI.V2-rdm-pearson"])
    subject = open_lake(lake_url).subjects[1]
    real, calls = lld.run_unit_by_key, Counter()

    def bad_data(url, options, unit_key, benchmark_keys, force):
        calls[unit_key] += 1
        if f"/{subject}/" in unit_key:
            raise ValueError(f"non-finite activations in {unit_key}")
        return real(url, options, unit_key, benchmark_keys, force)

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        submitted = lld.submit(client, work, force=True)
        token = "-" + next(iter(submitted.units.values())).key.rsplit("-", 1)[1]
        assert sorted(f.key for f in submitted.units.values())[0] == f"unit-random_model-fc-{open_lake(lake_url).subjects[0]}-shared-rdm{token}"
        assert [f.key for f in submitted.aggregates.values()] == [f"aggregate-random_model-fc-LAION_fMRI.V2-rdm-pearson{token}"]
        report = lld.gather(submitted)
        assert (report["units"], report["computed"], len(report["scores"])) == (5, 5, 1)
        monkeypatch.setattr(lld, "run_unit_by_key", bad_data)
        with pytest.raises(lld.UnitsFailedError, match=r"1 of 5 work unit\(s\) failed") as failed:
            lld.gather(lld.submit(client, work, force=True))
    assert f"random_model/fc/{subject}/shared/rdm: ValueError: non-finite activations" in str(failed.value)
    assert set(calls.values()) == {1}, "a deterministic error was retried"
