"""The ``score`` flow: one Dask task per work unit, then one aggregate-and-bootstrap task per score.

Work units are (feature set, subject, train set): one kernel and one eigendecomposition serve every
region and benchmark that shares them. Tasks pass the lake URL and keys; each loads only its own
subject's slices. Records land in the lake's ``scores/`` idempotently: a re-run skips finished units
(the report counts them), ``force=True`` recomputes.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from flows.cluster import quiet_distributed_logs, task_runner
from laion_lake.scoring.runner import aggregate_by_key, plan_keys, run_unit_by_key


@task(name="score-unit", retries=2, retry_delay_seconds=2, task_run_name="unit {unit_key}")
def score_unit(lake_url: str, storage_options: dict | None, unit_key: str, benchmark_keys: list[str], force: bool) -> str:
    return run_unit_by_key(lake_url, storage_options, unit_key, benchmark_keys, force)


@task(name="aggregate", retries=2, retry_delay_seconds=2, task_run_name="aggregate {model}/{layer} {benchmark_key}")
def aggregate(lake_url: str, storage_options: dict | None, model: str, layer: str, benchmark_key: str) -> dict[str, Any]:
    return aggregate_by_key(lake_url, storage_options, model, layer, benchmark_key)


@flow(name="laion-lake-score-units")
def _score_on_cluster(lake_url: str, storage_options: dict | None, feature_sets: list[list[str]], benchmarks: list[str] | None, force: bool) -> dict[str, Any]:
    plan = plan_keys(feature_sets, benchmarks)
    unit_runs = [score_unit.submit(lake_url, storage_options, key, list(keys), force) for key, keys in plan.units]
    statuses = [run.result() for run in unit_runs]
    aggregate_runs = [aggregate.submit(lake_url, storage_options, m, l, b) for m, l, b in plan.aggregates]
    rows = [run.result() for run in aggregate_runs]
    return {
        "units": len(statuses),
        "computed": statuses.count("computed"),
        "skipped": statuses.count("skipped"),
        "scores": rows,
    }


@flow(name="laion-lake-score")
def score_flow(
    lake_url: str,
    feature_sets: list[list[str]] | None = None,
    benchmarks: list[str] | None = None,
    storage_options: dict | None = None,
    force: bool = False,
    cluster: dict | None = None,
) -> dict[str, Any]:
    """Score feature sets on benchmarks; records land in the lake's ``scores/``.

    Parameters
    ----------
    lake_url : str
        The lake (local path, ``s3://...``).
    feature_sets : list of [model, layer], optional
        Default: every feature set in the lake.
    benchmarks : list of str, optional
        Identifiers or keys; default the 20 headline benchmarks.
    storage_options : dict, optional
        fsspec options of the lake.
    force : bool
        Recompute units that already have a valid record.
    cluster : dict, optional
        Where the tasks run (see :mod:`flows.cluster`); default a local cluster.

    Returns
    -------
    dict
        ``units``, ``computed``, ``skipped`` counts and one summary row per score.
    """
    quiet_distributed_logs()
    if feature_sets is None:
        from laion_lake.lake import open_lake

        feature_sets = [list(fs) for fs in open_lake(lake_url, storage_options).feature_sets]
    run = _score_on_cluster.with_options(task_runner=task_runner(cluster))
    return run(lake_url, storage_options, [list(fs) for fs in feature_sets], benchmarks, force)
