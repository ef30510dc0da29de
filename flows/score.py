"""The ``score`` flow: one Dask task per work unit, each aggregate as soon as its units are done.

Work units are (feature set, subject, train set): one kernel and one eigendecomposition serve every
region and benchmark that shares them. The flow first checks the whole request in its own process
(:mod:`laion_lake.preflight`: lake, feature sets, benchmarks, subjects, splits, cluster settings,
no credentials in parameters), so a bad input fails the run in seconds with one line and no cluster.
Units whose record is already current are counted as skipped there too; when nothing is left to
compute no cluster starts at all. Tasks pass the lake URL and keys; each loads only its subject's
slices. Records land in the lake's ``scores/`` idempotently.

Retries: a unit that fails on bad data (the library's ``LakeError``/``ValueError`` family) is not
retried (``retry_condition_fn``); a transient failure (storage, network) is retried ``RETRIES``
times, and a worker lost in the middle of a unit has its unit run again by Dask. A failed unit
leaves no partial record. When units fail, the run fails with :class:`laion_lake.dask.UnitsFailedError`
naming each (model/layer/subject/pool/split) after every other unit and aggregate ran.

The run logs a unit summary and publishes two artifacts: a table ``laion-lake-scores`` (model,
layer, benchmark, value, error, raw, ceiling) and a markdown ``laion-lake-summary``.
"""

from __future__ import annotations

from typing import Any

from flows.cluster import ClusterSettings
from flows.checked import checked_flow, scoring_run_name
from flows.run import check_request, run_plan


@checked_flow("laion-lake-score", flow_run_name=scoring_run_name)
def score_flow(
    lake_url: str,
    feature_sets: list[str] | None = None,
    benchmarks: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    force: bool = False,
    cluster: ClusterSettings | None = None,
) -> dict[str, Any]:
    """Score feature sets on benchmarks; records land in the lake's ``scores/``.

    Every input is checked before any cluster starts; a bad one fails the run with one line.

    Args:
        lake_url: The lake: a local path or s3://bucket/prefix.
        feature_sets: Feature sets as "model/layer" (or "model" for every layer of it); default every feature set in the lake.
        benchmarks: Benchmark identifiers or keys, e.g. LAION_fMRI.V1-tau-ridgecv; default the leaderboard benchmarks (laion_lake.list_benchmarks()).
        storage_options: fsspec options of the lake without credentials (e.g. endpoint_url, profile); workers read credentials from their environment.
        force: Recompute units that already have a current record.
        cluster: Where the Dask tasks run; default DASK_SCHEDULER_ADDRESS, else a local cluster.

    Returns:
        ``units``, ``computed``, ``skipped``, ``failed`` counts, one summary row per score, ``seconds``.
    """
    work, settings = check_request(lake_url, feature_sets, benchmarks, storage_options, cluster)
    return run_plan(work, force, settings)
