"""The ``synth`` flow: write the synthetic LAION-fMRI lake (known ground truth) at a URL.

One task: :func:`laion_lake.synthetic.make_lake` generates and writes one subject at a time and
updates the lake's manifest (one JSON document, read-modify-write) after each store, so the
subjects are not written by parallel tasks. No retries: a failed run leaves stores behind that a
second try would refuse to overwrite; run it again with ``overwrite=True``.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import get_run_logger, task

from flows.checked import checked_flow


@task(name="make-lake", task_run_name="make {scale} lake at {lake_url}")
def make_synthetic_lake(lake_url: str, scale: str, seed: int, storage_options: dict | None, overwrite: bool) -> dict[str, Any]:
    from laion_lake.synthetic import make_lake

    lake = make_lake(lake_url, scale=scale, seed=seed, storage_options=storage_options, overwrite=overwrite)
    return {"lake_url": lake.url, "subjects": lake.subjects, "feature_sets": [list(fs) for fs in lake.feature_sets]}


@checked_flow("laion-lake-synth", flow_run_name="synth {scale} lake at {lake_url}")
def synth_flow(
    lake_url: str, scale: Literal["tiny", "small", "full"] = "small", seed: int = 0, storage_options: dict[str, Any] | None = None, overwrite: bool = False
) -> dict[str, Any]:
    """Write the synthetic dataset (known ground truth) as a lake at ``lake_url``.

    Args:
        lake_url: The lake: a local path or s3://bucket/prefix.
        scale: tiny, small, or full (the real dataset's counts: ~1 GB of betas per subject, minutes to write).
        seed: Seed of the generator: the same seed writes the same lake.
        storage_options: fsspec options of the lake without credentials (e.g. endpoint_url, profile); credentials come from the environment.
        overwrite: Replace stores that already exist.

    Returns:
        ``lake_url``, ``subjects`` and ``feature_sets`` of the written lake.
    """
    from laion_lake.preflight import require_no_credentials

    require_no_credentials(storage_options)
    summary = make_synthetic_lake(lake_url, scale, seed, storage_options, overwrite)
    get_run_logger().info("wrote a %s synthetic lake at %s: %d subjects, %d feature sets", scale, summary["lake_url"], len(summary["subjects"]), len(summary["feature_sets"]))
    return summary
