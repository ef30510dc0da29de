"""The ``batch`` flow: many models x benchmarks on ONE Dask cluster, then a summary table.

It runs the ``score`` flow's plan (the same pre-flight, the same unit and aggregate tasks) once for
every selected feature set together, so the units of all models share one cluster and its queue
(no cluster per model), aggregates are scored as soon as their units are done, and records land
in the lake exactly as ``score_flow`` writes them (a re-run skips what is there).
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger

from flows.cluster import ClusterSettings
from flows.checked import checked_flow, scoring_run_name
from flows.run import check_request, run_plan
from laion_lake.scoring.table import leaderboard_text as summary_table


@checked_flow("laion-lake-batch", flow_run_name=scoring_run_name)
def batch_flow(
    lake_url: str,
    models: list[str] | None = None,
    benchmarks: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    force: bool = False,
    cluster: ClusterSettings | None = None,
) -> dict[str, Any]:
    """Score many models on many benchmarks on one cluster; log and return a summary table.

    Every input is checked before any cluster starts; a bad one fails the run with one line.

    Args:
        lake_url: The lake: a local path or s3://bucket/prefix.
        models: Feature sets as "model" (every layer of it) or "model/layer"; default every feature set in the lake.
        benchmarks: Benchmark identifiers or keys, e.g. LAION_fMRI.V1-tau-ridgecv; default the leaderboard benchmarks (laion_lake.list_benchmarks()).
        storage_options: fsspec options of the lake without credentials (e.g. endpoint_url, profile); workers read credentials from their environment.
        force: Recompute units that already have a current record.
        cluster: Where the Dask tasks run; default DASK_SCHEDULER_ADDRESS, else a local cluster.

    Returns:
        ``units``, ``computed``, ``skipped``, ``failed``, ``scores`` (one row per score, as
        ``score_flow`` returns them) and ``table`` (the summary table as text).
    """
    work, settings = check_request(lake_url, models, benchmarks, storage_options, cluster)
    report = run_plan(work, force, settings)
    report["table"] = summary_table(report["scores"])
    get_run_logger().info("%d scores (ceiled value ± bootstrap error):\n%s", len(report["scores"]), report["table"])
    return report
