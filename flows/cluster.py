"""Cluster choice as configuration: a local cluster by default, a scheduler address, or a cluster class.

``cluster`` is a plain dict (it travels as a deployment parameter):

- ``None`` or ``{}``: a ``distributed.LocalCluster`` of worker processes sized for a small machine;
- ``{"address": "tcp://scheduler:8786"}``: an existing Dask cluster;
- ``{"cluster_class": "dask_kubernetes.operator.KubeCluster", "cluster_kwargs": {...}, "adapt_kwargs": {...}}``.
"""

from __future__ import annotations

import logging
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


def quiet_distributed_logs(level: int = logging.WARNING) -> None:
    """Keep the scheduler's and workers' INFO lines out of the user's terminal."""
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker", "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(level)


def task_runner(cluster: dict[str, Any] | None = None) -> DaskTaskRunner:
    """A prefect-dask task runner for the cluster configuration (see the module docstring)."""
    cluster = dict(cluster or {})
    if "address" in cluster:
        return DaskTaskRunner(address=cluster["address"])
    cluster_class = cluster.pop("cluster_class", "distributed.LocalCluster")
    kwargs = dict(cluster.pop("cluster_kwargs", {}))
    adapt = cluster.pop("adapt_kwargs", None)
    if cluster:
        raise ValueError(f"unknown cluster option(s) {sorted(cluster)}; use address, cluster_class, cluster_kwargs, adapt_kwargs")
    if cluster_class == "distributed.LocalCluster":
        kwargs = {**DEFAULT_LOCAL_CLUSTER, **kwargs}
    return DaskTaskRunner(cluster_class=cluster_class, cluster_kwargs=kwargs, adapt_kwargs=adapt)
