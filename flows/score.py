"""The ``score`` flow: one Dask task per work unit, then one aggregate-and-bootstrap task per score.

Work units are (feature set, subject, train set): one kernel and one eigendecomposition serve every
region and benchmark that shares them. Tasks pass the lake URL and keys; each loads only its own
subject's slices. Records land in the lake's ``scores/`` idempotently: a re-run skips finished units
(the report counts them), ``force=True`` recomputes.

A failed unit is retried (``retries``); a worker lost in the middle of a unit has its unit run
again by Dask on another worker. Either way no partial record is left: a record is one JSON
document written whole (:meth:`laion_lake.lake.storage.LakeStorage.write_json`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow, task

from flows.cluster import api_for_workers, quiet_logs, task_runner
from laion_lake.scoring.runner import aggregate_by_key, plan_keys, run_unit_by_key

RETRIES, RETRY_DELAY_SECONDS = 2, 2


@task(name="score-unit", retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS, task_run_name="unit {unit_key}")
def score_unit(lake_url: str, storage_options: dict | None, unit_key: str, benchmark_keys: list[str], force: bool) -> str:
    return run_unit_by_key(lake_url, storage_options, unit_key, benchmark_keys, force)


@task(name="aggregate", retries=RETRIES, retry_delay_seconds=RETRY_DELAY_SECONDS, task_run_name="aggregate {model}/{layer} {benchmark_key}")
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


def lake_feature_sets(lake_url: str, storage_options: dict | None, models: Sequence[str] | None = None) -> list[list[str]]:
    """The lake's feature sets as [model, layer], optionally only those of ``models``.

    ``models`` holds model names (every layer of the model) or ``model/layer`` names.
    """
    from laion_lake.lake import open_lake

    available = [list(fs) for fs in open_lake(lake_url, storage_options).feature_sets]
    if models is None:
        return available
    wanted = set(models)
    chosen = [fs for fs in available if fs[0] in wanted or f"{fs[0]}/{fs[1]}" in wanted]
    matched = {name for name in wanted for fs in chosen if name in (fs[0], f"{fs[0]}/{fs[1]}")}
    if missing := sorted(wanted - matched):
        raise ValueError(f"no feature set in {lake_url} for {missing}; the lake holds {['/'.join(fs) for fs in available]}")
    return chosen


def run_on_cluster(
    lake_url: str,
    storage_options: dict | None,
    feature_sets: Sequence[Sequence[str]],
    benchmarks: Sequence[str] | None,
    force: bool,
    cluster: dict | None,
) -> dict[str, Any]:
    """Run the units-then-aggregates subflow on one cluster; call it from inside a flow."""
    quiet_logs()
    run = _score_on_cluster.with_options(task_runner=task_runner(cluster))
    with api_for_workers():
        return run(lake_url, storage_options, [list(fs) for fs in feature_sets], None if benchmarks is None else list(benchmarks), force)


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
    if feature_sets is None:
        feature_sets = lake_feature_sets(lake_url, storage_options)
    return run_on_cluster(lake_url, storage_options, feature_sets, benchmarks, force, cluster)
