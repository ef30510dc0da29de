"""The ``batch`` flow: many models x benchmarks on ONE Dask cluster, then a summary table.

It runs the ``score`` flow's units-then-aggregates subflow once for every selected feature set, so
the units of all models share one cluster and its queue (no cluster per model), and records land in
the lake exactly as ``score_flow`` writes them (a re-run skips what is there).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.score import lake_feature_sets, run_on_cluster
from laion_lake.scoring.table import leaderboard_text as summary_table


@flow(name="laion-lake-batch")
def batch_flow(
    lake_url: str,
    models: list[str] | None = None,
    benchmarks: list[str] | None = None,
    storage_options: dict | None = None,
    force: bool = False,
    cluster: dict | None = None,
) -> dict[str, Any]:
    """Score many models on many benchmarks on one cluster; log and return a summary table.

    Parameters
    ----------
    lake_url : str
        The lake (local path, ``s3://...``).
    models : list of str, optional
        Model names (every layer of each) or ``model/layer`` names; default every feature set in
        the lake.
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
        ``units``, ``computed``, ``skipped``, ``scores`` (one row per score, as ``score_flow``
        returns them) and ``table`` (the summary table as text).
    """
    feature_sets = lake_feature_sets(lake_url, storage_options, models)
    report = run_on_cluster(lake_url, storage_options, feature_sets, benchmarks, force, cluster)
    report["table"] = summary_table(report["scores"])
    get_run_logger().info(
        "%d work units: %d computed, %d skipped; %d scores (ceiled value ± bootstrap error):\n%s",
        report["units"], report["computed"], report["skipped"], len(report["scores"]), report["table"],
    )  # fmt: skip
    return report
