"""The ``batch`` flow: many models x benchmarks on ONE Dask cluster, then a summary table.

It runs the ``score`` flow's units-then-aggregates subflow once for every selected feature set, so
the units of all models share one cluster and its queue (no cluster per model), and records land in
the lake exactly as ``score_flow`` writes them (a re-run skips what is there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import flow, get_run_logger

from flows.score import lake_feature_sets, run_on_cluster


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    error = row.get("error")
    error_text = "nan" if error is None or (isinstance(error, float) and math.isnan(error)) else f"{error:.3f}"
    return f"{row['value']:.3f} ± {error_text}"


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Benchmarks (rows) x feature sets (columns) of ``value ± error``, as fixed-width text.

    Benchmarks go down the side because there are many (20 headline) and feature sets few.
    """
    if not rows:
        return "(no scores)"
    models = sorted({f"{r['model']}/{r['layer']}" for r in rows})
    benchmarks = sorted({r["benchmark"] for r in rows})
    cells = {(r["benchmark"], f"{r['model']}/{r['layer']}"): r for r in rows}
    width = max(15, *(len(m) + 2 for m in models))
    name_width = max(len("benchmark"), *(len(b) for b in benchmarks)) + 2
    lines = [f"{'benchmark':<{name_width}}" + "".join(f"{m:>{width}}" for m in models)]
    for benchmark in benchmarks:
        lines.append(f"{benchmark:<{name_width}}" + "".join(f"{_cell(cells.get((benchmark, m))):>{width}}" for m in models))
    return "\n".join(lines)


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
