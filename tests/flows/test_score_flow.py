"""``score_flow`` in this process (ephemeral Prefect API, a LocalCluster of 2 worker processes) on a
tiny local lake: records land, a re-run skips, ``force`` recomputes, a lost record is recomputed
alone, and the stored scores equal ``score_many``'s bit for bit. ``batch_flow`` shares the subflow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.batch import batch_flow, summary_table
from flows.cluster import task_runner
from flows.score import lake_feature_sets, score_flow
from laion_lake import score_many
from laion_lake.lake import open_lake
from laion_lake.scoring.records import load_scores
from laion_lake.synthetic import make_lake
from tests.flows.conftest import assert_scores_identical

FEATURE_SETS = [["early_model", "conv2"]]
BENCHMARKS = ["LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI_persubject.V4-ood-ridgecv", "LAION_fMRI.IT-rdm-pearson"]
# one LocalCluster of 2 single-threaded worker processes, no dashboard
CLUSTER = {"cluster_kwargs": {"n_workers": 2, "threads_per_worker": 1, "memory_limit": "2GiB", "dashboard_address": None}}


@pytest.fixture(scope="module")
def lake_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("flow") / "lake")
    make_lake(url, scale="tiny", seed=0)
    return url


def unit_records(url: str) -> list[Path]:
    return sorted((Path(url) / "scores" / "units").rglob("*.json"))


def test_score_flow_records_rerun_force_and_lost_record(lake_url: str) -> None:
    first = score_flow(lake_url, FEATURE_SETS, BENCHMARKS, cluster=CLUSTER)
    # 5 subjects x (shared tau, own ood, rdm) units; one aggregate per benchmark
    assert first["units"] == 15 and first["computed"] == 15 and first["skipped"] == 0
    assert len(first["scores"]) == len(BENCHMARKS)
    records = unit_records(lake_url)
    assert len(records) == 15
    assert not list((Path(lake_url) / "scores").rglob("*.tmp-*")), "a temporary file was left behind"
    expected = score_many(open_lake(lake_url), [tuple(fs) for fs in FEATURE_SETS], BENCHMARKS)
    assert_scores_identical(load_scores(open_lake(lake_url)), expected)

    again = score_flow(lake_url, FEATURE_SETS, BENCHMARKS, cluster=CLUSTER)
    assert (again["computed"], again["skipped"]) == (0, 15)
    assert again["scores"] == first["scores"]

    lost = records[4]
    lost.unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in records if p != lost}
    repaired = score_flow(lake_url, FEATURE_SETS, BENCHMARKS, cluster=CLUSTER)
    assert (repaired["computed"], repaired["skipped"]) == (1, 14)
    assert lost.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items()), "a unit other than the lost one was rewritten"
    assert_scores_identical(load_scores(open_lake(lake_url)), expected)

    forced = score_flow(lake_url, FEATURE_SETS, BENCHMARKS, force=True, cluster=CLUSTER)
    assert (forced["computed"], forced["skipped"]) == (15, 0)
    assert_scores_identical(load_scores(open_lake(lake_url)), expected)


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
    monkeypatch.delenv("LAION_LAKE_DASK_ADDRESS", raising=False)
    assert lake_feature_sets(lake_url, None, ["late_model"]) == [["late_model", "fc6"]]
    assert lake_feature_sets(lake_url, None, ["early_model/conv2", "random_model"]) == [["early_model", "conv2"], ["random_model", "fc"]]
    with pytest.raises(ValueError, match="no_such_model"):
        lake_feature_sets(lake_url, None, ["no_such_model"])
    assert task_runner({"address": "tcp://127.0.0.1:1"}).address == "tcp://127.0.0.1:1"
    local = task_runner(None)
    assert local.cluster_kwargs["n_workers"] == 2 and "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL" in local.cluster_kwargs["env"]
    with pytest.raises(ValueError, match="unknown cluster option"):
        task_runner({"workers": 3})
    assert summary_table([]) == "(no scores)"
    monkeypatch.setenv("LAION_LAKE_DASK_ADDRESS", "tcp://127.0.0.1:2")
    assert task_runner(None).address == "tcp://127.0.0.1:2"


def test_a_failed_unit_is_retried_and_leaves_no_partial_record(lake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every unit fails once (a storage error) and succeeds on its task retry; the stored records are
    whole JSON and the scores right. (A record is written whole or not at all: LakeStorage.write_json
    renames a complete temporary file locally, and is one PUT on S3.)"""
    import json
    from collections import Counter

    from prefect.task_runners import ThreadPoolTaskRunner

    import flows.score as score_module
    from flows.score import _score_on_cluster

    real = score_module.run_unit_by_key
    calls: Counter[str] = Counter()

    def flaky(url, options, unit_key, benchmark_keys, force):
        calls[unit_key] += 1
        if calls[unit_key] == 1:
            raise OSError(f"simulated storage failure in {unit_key}")
        return real(url, options, unit_key, benchmark_keys, force)

    monkeypatch.setattr(score_module, "run_unit_by_key", flaky)
    monkeypatch.setattr(score_module.score_unit, "retry_delay_seconds", 0)
    benchmarks = ["LAION_fMRI.V2-rdm-pearson"]
    run = _score_on_cluster.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
    report = run(lake_url, None, [["random_model", "fc"]], benchmarks, True)
    assert report["computed"] == report["units"] == 5 and set(calls.values()) == {2}
    for path in unit_records(lake_url):
        json.loads(path.read_text())
    expected = score_many(open_lake(lake_url), [("random_model", "fc")], benchmarks)
    assert_scores_identical(load_scores(open_lake(lake_url), model="random_model"), expected)
