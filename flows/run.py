"""The score and batch flows' tasks and their plan runner, in an importable module.

Dask workers unpickle tasks by reference to their module; a deployment loads ``flows/score.py``
as a script (module ``score``) that workers cannot import, so everything that travels to a worker
lives here (``flows.run``). See :mod:`flows.score` for what a run does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows.cluster import ClusterSettings, api_for_workers, check_reachable, cluster_address, cluster_settings, drain_workers, quiet_logs, task_runner, transient_only
from laion_lake.dask import Plan, UnitFailure, UnitProgress, UnitsFailedError, done_units, one_line, plan
from laion_lake.preflight import public_storage_options, require_no_credentials
from laion_lake.scoring.runner import aggregate_by_key, run_unit_by_key
from laion_lake.scoring.table import leaderboard_text

RETRIES, RETRY_DELAY_SECONDS = 2, 2
# the CLI sets this to show a progress bar of units in the terminal while the flow runs
SHOW_PROGRESS = False
TABLE_ARTIFACT, SUMMARY_ARTIFACT = "laion-lake-scores", "laion-lake-summary"
SCORE_COLUMNS = ("model", "layer", "benchmark", "value", "error", "raw", "ceiling")


TASK_OPTIONS = {"retries": RETRIES, "retry_delay_seconds": RETRY_DELAY_SECONDS, "retry_condition_fn": transient_only,
                "persist_result": False, "cache_policy": NO_CACHE}  # fmt: skip


@task(name="score-unit", task_run_name="unit {unit_key}", **TASK_OPTIONS)
def score_unit(lake_url: str, storage_options: dict | None, unit_key: str, benchmark_keys: list[str], force: bool) -> str:
    return run_unit_by_key(lake_url, storage_options, unit_key, benchmark_keys, force)


@task(name="aggregate", task_run_name="aggregate {model}/{layer} {benchmark_key}", **TASK_OPTIONS)
def aggregate(lake_url: str, storage_options: dict | None, model: str, layer: str, benchmark_key: str) -> dict[str, Any]:
    return aggregate_by_key(lake_url, storage_options, model, layer, benchmark_key)


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
    """Run a checked plan: units on the cluster, aggregates in this flow as their units finish; call inside a flow."""
    quiet_logs()
    started = time.perf_counter()
    url, options = work.request.lake_url, public_storage_options(work.storage_options)
    done = set() if force else done_units(work)
    todo = [(key, benchmarks) for key, benchmarks in work.units if key not in done]
    waiting = {agg: set(work.units_of(agg)) - done for agg in work.aggregates}
    bar = UnitProgress(len(work.units), SHOW_PROGRESS)
    for _ in done:
        bar.update("skipped")
    failures: list[UnitFailure] = []
    aggregate_runs: list[Any] = []
    submitted: set[tuple[str, str, str]] = set()

    def unit_finished(key: str | None) -> None:
        for agg, pending in waiting.items():
            pending.discard(key)
            if not pending and agg not in submitted:
                submitted.add(agg)
                aggregate_runs.append(aggregate.submit(url, options, *agg))

    try:
        unit_finished(None)  # aggregates whose units are all done already
        if todo:
            from prefect.settings import PREFECT_API_URL

            server = bool(PREFECT_API_URL.value())  # a configured server (api_for_workers sets a temporary one's URL)
            with cluster_address(cluster) as address, api_for_workers(), task_runner(cluster, address) as runner:
                announce(runner, bar, server)
                runs = {runner.submit(score_unit, {"lake_url": url, "storage_options": options, "unit_key": key,
                                                   "benchmark_keys": list(benchmarks), "force": force}): key
                        for key, benchmarks in todo}  # fmt: skip
                for run in as_completed(list(runs)):
                    key = runs[run]
                    try:
                        bar.update(run.result())
                    except Exception as error:  # the task's own error, or Dask's (a worker lost too often)
                        failures.append(UnitFailure(key, one_line(error)))
                        bar.update("failed")
                        # never aggregated: one of its units failed
                        submitted.update(agg for agg, pending in waiting.items() if key in pending)
                    unit_finished(key)
                if address:
                    drain_workers(address)
        rows = [run.result() for run in aggregate_runs]
    finally:
        bar.close()
    report = {"units": len(work.units), **bar.counts, "scores": sorted(rows, key=lambda r: (r["model"], r["layer"], r["benchmark"])),
              "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
    publish(work, report, failures)
    if failures:
        raise UnitsFailedError(sorted(failures, key=lambda f: f.unit_key), len(work.units))
    return report


def announce(runner: Any, bar: UnitProgress, server: bool) -> None:
    """Where to watch the run: the Dask dashboard and, on a configured Prefect server, the flow run's page
    (a temporary server's pages end with this process: not worth a link)."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_UI_URL

    lines = [f"Dask dashboard: {runner.client.dashboard_link}"] if runner.client.dashboard_link else []
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


