"""The ingest flow's Prefect task runner: prefect-dask's, with Dask keys that name the task.

The scoring flows submit plain Dask tasks (:func:`flows.cluster.cluster_client`); only the ingest
flow runs its per-subject work as Prefect task runs on Dask. Apart from :mod:`flows.cluster` so that
the scoring path's pre-flight and cluster start import neither Prefect nor prefect-dask.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from prefect_dask import DaskTaskRunner
from prefect_dask.task_runners import PrefectDaskFuture

from flows.cluster import ClusterSettings, cluster_settings, worker_environment
from laion_lake.dask import scheduler_address
from laion_lake.preflight import is_deterministic


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task run unless its error is deterministic (bad data).

    It lives here, in an importable module, because Dask workers unpickle it by reference: a
    deployment loads ``flows/score.py`` as a script module the workers cannot import.
    """
    try:
        state.result()
    except Exception as error:
        return not is_deterministic(error)
    return True


class NamedDaskTaskRunner(DaskTaskRunner):
    """prefect-dask's task runner with Dask keys ``<task name>-<8 hex>`` (e.g. ``ingest-subject-1f2e3d4c``).

    (The scoring flows' units are plain Dask tasks, keyed by :func:`laion_lake.dask.submit`.)
    """

    def duplicate(self) -> NamedDaskTaskRunner:
        return type(self)(address=self.address, cluster_class=self.cluster_class, cluster_kwargs=self.cluster_kwargs,
                          adapt_kwargs=self.adapt_kwargs, client_kwargs=self.client_kwargs)  # fmt: skip

    def submit(self, task: Any, parameters: dict[str, Any], wait_for: Any = None, dependencies: Any = None) -> PrefectDaskFuture:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        import uuid

        future = self.client.submit(
            task, key=f"{task.name}-{uuid.uuid4().hex[:8]}", parameters=self._optimize_futures(parameters),
            wait_for=self._optimize_futures(wait_for) if wait_for else None, dependencies=dependencies, return_type="state",
        )  # fmt: skip
        return PrefectDaskFuture(wrapped_future=future, task_run_id=future.task_run_id)


def task_runner(cluster: ClusterSettings | Mapping[str, Any] | None = None, address: str | None = None) -> DaskTaskRunner:
    """A task runner for ``address`` (from :func:`cluster_address`) or the settings' cluster class."""
    settings = cluster_settings(cluster)
    address = address or settings.address or scheduler_address()
    if address:
        return NamedDaskTaskRunner(address=address)
    if settings.is_local:
        kwargs = {"n_workers": settings.workers, "threads_per_worker": 1, "processes": True, "memory_limit": settings.memory_limit,
                  "dashboard_address": "127.0.0.1:0", "silence_logs": logging.WARNING, **settings.cluster_kwargs}  # fmt: skip
        if kwargs.get("processes", True):
            kwargs["env"] = {**worker_environment(), **kwargs.get("env", {})}
        return NamedDaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)
    return NamedDaskTaskRunner(cluster_class=settings.cluster_class, cluster_kwargs=settings.cluster_kwargs, adapt_kwargs=settings.adapt_kwargs)


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
