"""The score and batch flows' plan runner, in an importable module (see :mod:`flows.score`).

Units and aggregates go to the Dask cluster as plain Dask tasks (:func:`laion_lake.dask.submit`),
not as Prefect task runs: a Prefect task run costs about a second of API calls on a two-core
machine (a 30-unit sweep took 102.6 s as task runs, 49.5 s as Dask tasks), and the workers then
need no Prefect at all. The flow run keeps what a user watches and what a re-run needs: its state
(failed when a unit failed), one log line per unit as it ends, the unit summary, the table and
markdown artifacts, and the records in the lake. Retries are Dask's: a unit failing on bad data
returns its error and is not retried; another error is retried ``RETRIES`` times, and a unit whose
worker died is run again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from prefect import get_run_logger

from flows.cluster import ClusterSettings, check_reachable, cluster_client, cluster_settings, quiet_logs
from laion_lake.dask import Plan, UnitFailure, UnitProgress, UnitsFailedError, collect, done_units, plan, submit
from laion_lake.preflight import public_storage_options, require_no_credentials
from laion_lake.scoring.runner import aggregate_by_key
from laion_lake.scoring.table import leaderboard_text

RETRIES = 2
# the CLI sets this to show a progress bar of units in the terminal while the flow runs
SHOW_PROGRESS = False
TABLE_ARTIFACT, SUMMARY_ARTIFACT = "laion-lake-scores", "laion-lake-summary"
SCORE_COLUMNS = ("model", "layer", "benchmark", "value", "error", "raw", "ceiling")


def check_request(
    lake_url: str,
    feature_sets: Sequence[str | Sequence[str]] | None,
    benchmarks: Sequence[str] | None,
    storage_options: dict | None,
    cluster: ClusterSettings | dict | None,
) -> tuple[Plan, ClusterSettings]:
    """Pre-flight of a flow run (in the flow's process, before any cluster): the plan and the cluster settings."""
    require_no_credentials(storage_options)
    settings = cluster_settings(cluster)
    work = plan(lake_url, feature_sets, benchmarks, storage_options)
    check_reachable(settings)
    return work, settings


def run_plan(work: Plan, force: bool, cluster: ClusterSettings | dict | None) -> dict[str, Any]:
    """Run a checked plan: its units left to compute and its aggregates on the cluster; call inside a flow.

    Units whose record is current are counted as skipped first; when none is left, the aggregates
    run here and no cluster starts.
    """
    quiet_logs()
    started = time.perf_counter()
    logger = get_run_logger()
    done = set() if force else done_units(work)
    # the workers read credentials from their environment: the tasks carry the public options only
    todo = replace(work, units=tuple(unit for unit in work.units if unit[0] not in done), storage_options=public_storage_options(work.storage_options))
    bar = UnitProgress(len(work.units), SHOW_PROGRESS)
    for _ in done:
        bar.update("skipped")

    def unit_ended(key: str, status: str) -> None:
        if status != "failed":  # failed units are logged as errors, with their error, by publish()
            logger.info("unit %s: %s (%.1f s into the run)", key, status, time.perf_counter() - started)

    try:
        if todo.units:
            from prefect.settings import PREFECT_API_URL

            from flows.server import is_temporary

            api_url = PREFECT_API_URL.value()
            with cluster_client(cluster) as client:
                announce(client, bar, server=bool(api_url) and not is_temporary(api_url))
                rows, failures = collect(submit(client, todo, force, retries=RETRIES), bar, unit_ended)
        else:
            rows, failures = [aggregate_by_key(todo.request.lake_url, todo.storage_options, *agg) for agg in work.aggregates], []
    finally:
        bar.close()
    report = {"units": len(work.units), **bar.counts, "scores": sorted(rows, key=lambda r: (r["model"], r["layer"], r["benchmark"])),
              "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
    publish(work, report, failures)
    if failures:
        raise UnitsFailedError(failures, len(work.units))
    return report


def announce(client: Any, bar: UnitProgress, server: bool) -> None:
    """Where to watch the run: the Dask dashboard and, on a configured Prefect server, the flow run's page
    (a temporary server's pages end with this process: not worth a link)."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    lines = [f"Dask dashboard: {client.dashboard_link}"] if client.dashboard_link else []
    if server and PREFECT_UI_URL.value():
        lines.append(f"Prefect flow run {flow_run.name!r}: {flow_run.ui_url}")
    for line in lines:
        get_run_logger().info(line)
        bar.note(line)


def publish(work: Plan, report: dict[str, Any], failures: Sequence[UnitFailure]) -> None:
    """Log the unit summary and publish the table and markdown artifacts of a run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    logger = get_run_logger()
    summary = f"{report['units']} work units: {report['computed']} computed, {report['skipped']} skipped, {report['failed']} failed; {len(report['scores'])} scores"
    logger.info("%s (%.1f s)", summary, report["seconds"])
    for failure in failures:
        logger.error("unit %s failed: %s", failure.unit_key, failure.error)
    rows = [{column: row.get(column) for column in SCORE_COLUMNS} for row in report["scores"]]
    if rows:
        create_table_artifact(rows, key=TABLE_ARTIFACT, description=f"Scores of {', '.join(work.request.feature_set_names)} in {work.request.lake_url}")
    failed = "".join(f"- `{f.unit_key}`: {f.error}\n" for f in failures)
    markdown = (
        f"# laion-lake scores\n\nLake: `{work.request.lake_url}` (records under `scores/`; "
        f"`laion-lake report {work.request.lake_url}` renders the leaderboard page).\n\n"
        f"{summary}.\n\n" + (f"## Failed units\n\n{failed}\n" if failed else "")
        + (f"## Leaderboard (ceiled value ± bootstrap error)\n\n```\n{leaderboard_text(report['scores'])}\n```\n" if rows else "")
    )  # fmt: skip
    create_markdown_artifact(markdown, key=SUMMARY_ARTIFACT, description=summary)


