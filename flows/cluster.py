"""Cluster choice as configuration: a local cluster by default, a scheduler address, or a cluster class.

``cluster`` is a plain dict (it travels as a deployment parameter):

- ``None`` or ``{}``: the scheduler named by the environment variable ``LAION_LAKE_DASK_ADDRESS``
  when it is set (how a deployment's worker points every flow run at a shared cluster), else a
  ``distributed.LocalCluster`` of worker processes sized for a small machine;
- ``{"address": "tcp://scheduler:8786"}``: an existing Dask cluster;
- ``{"cluster_class": "dask_kubernetes.operator.KubeCluster", "cluster_kwargs": {...}, "adapt_kwargs": {...}}``.

Quiet by default: the scheduler's and workers' INFO lines, and Prefect's one line per finished task
run, are kept out of the terminal; flow-run lines (start, end, the summary) stay. Task runs still
show in the Prefect UI with their states. To see every task run's lines again, set
``PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL=INFO`` (Prefect's own override of its logging
config) in the environment of the flow run and of the Dask workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from prefect_dask import DaskTaskRunner

# defaults for the embedded LocalCluster: one thread per worker (units are single-threaded BLAS)
DEFAULT_LOCAL_CLUSTER = {
    "n_workers": 2,
    "threads_per_worker": 1,
    "processes": True,
    "memory_limit": "4GiB",
    "dashboard_address": "127.0.0.1:0",
    # quiet by default: no wall of distributed INFO lines
    "silence_logs": logging.WARNING,
}
# a deployment's worker sets this to send every flow run's tasks to one shared Dask scheduler
ADDRESS_ENV = "LAION_LAKE_DASK_ADDRESS"
# Prefect reads PREFECT_LOGGING_<path in its logging.yml> overrides when it configures logging,
# in every process (the Dask workers included): this one sets the level of the task-run logger
TASK_LOG_LEVEL_ENV = "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"
DEFAULT_TASK_LOG_LEVEL = "WARNING"


def quiet_distributed_logs(level: int = logging.WARNING) -> None:
    """Keep the scheduler's and workers' INFO lines out of the user's terminal."""
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker", "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(level)


def task_log_level() -> str:
    """Level of Prefect's task-run logger: the environment's override, else WARNING (quiet)."""
    return os.environ.get(TASK_LOG_LEVEL_ENV) or DEFAULT_TASK_LOG_LEVEL


def quiet_logs() -> None:
    """Quiet this process: distributed below WARNING and Prefect's per-task-run lines are dropped."""
    quiet_distributed_logs()
    logging.getLogger("prefect.task_runs").setLevel(task_log_level())


def worker_environment() -> dict[str, str]:
    """Environment for the worker processes of a LocalCluster this process starts."""
    return {TASK_LOG_LEVEL_ENV: task_log_level()}


def task_runner(cluster: dict[str, Any] | None = None) -> DaskTaskRunner:
    """A prefect-dask task runner for the cluster configuration (see the module docstring)."""
    cluster = dict(cluster or {})
    if not cluster and os.environ.get(ADDRESS_ENV):
        cluster = {"address": os.environ[ADDRESS_ENV]}
    if "address" in cluster:
        address = cluster.pop("address")
        if cluster:
            raise ValueError(f"cluster option(s) {sorted(cluster)} cannot go with an address")
        return DaskTaskRunner(address=address)
    cluster_class = cluster.pop("cluster_class", "distributed.LocalCluster")
    kwargs = dict(cluster.pop("cluster_kwargs", {}))
    adapt = cluster.pop("adapt_kwargs", None)
    if cluster:
        raise ValueError(f"unknown cluster option(s) {sorted(cluster)}; use address, cluster_class, cluster_kwargs, adapt_kwargs")
    if cluster_class in ("distributed.LocalCluster", "distributed.deploy.local.LocalCluster"):
        kwargs = {**DEFAULT_LOCAL_CLUSTER, **kwargs}
        if kwargs.get("processes", True):
            # worker processes (nannies) take an environment; threads share this process's
            kwargs["env"] = {**worker_environment(), **kwargs.get("env", {})}
    return DaskTaskRunner(cluster_class=cluster_class, cluster_kwargs=kwargs, adapt_kwargs=adapt)


@contextlib.contextmanager
def api_for_workers() -> Iterator[None]:
    """Point the Dask workers' task runs at this flow's Prefect API.

    Without a configured ``PREFECT_API_URL`` a flow talks to a temporary server that Prefect starts
    in this process; a worker process would start a temporary server of its own (seconds per
    worker, and task runs recorded apart from their flow). The settings context travels with every
    submitted task, so setting the URL here reaches every worker, local or remote.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    from prefect.client.orchestration import get_client

    url = str(get_client(sync_client=True).api_url).rstrip("/")
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield
