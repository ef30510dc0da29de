"""Where a flow's Dask tasks run: :class:`ClusterSettings` (a typed flow parameter) and the scoring flows'
client (:func:`cluster_client`: units are plain Dask tasks); the ingest flow's Prefect task runner
is in :mod:`flows.task_runner`. Importing this module imports neither Prefect nor distributed (the
CLI's pre-flight uses it before either starts).

- no settings (or no ``address``): the scheduler of Dask's own configuration when it is set
  (``DASK_SCHEDULER_ADDRESS``, or ``scheduler-address`` in a dask config file: how a deployment's
  worker points every flow run at a shared cluster), else a ``distributed.LocalCluster`` of
  ``workers`` single-threaded worker processes;
- ``address``: an existing Dask scheduler;
- ``cluster_class`` (+ ``cluster_kwargs``, ``adapt_kwargs``): any cluster class, e.g. dask-kubernetes'.

Dask task keys name their unit (``unit-<model>-<layer>-<subject>-<pool>-<split>-<run id>``) so the
dashboard shows what runs. A local cluster this process starts can be started early
(:func:`prestart`: the CLI does it while Prefect's temporary server starts) and is closed cleanly.

Quiet by default: the workers' console shows only CRITICAL Prefect lines (the ingest flow's task-run
errors go to the Prefect API and the flow's summary); distributed's INFO lines are dropped. Set
``PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL=INFO`` (Prefect's own override of its logging
config) to see every task run's lines in the Prefect UI again.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from laion_lake.dask import DEFAULT_MEMORY_LIMIT, DEFAULT_WORKERS, local_cluster, scheduler_address
from laion_lake.preflight import PreflightError, parse_memory_limit

# Prefect reads PREFECT_LOGGING_<path in its logging.yml> overrides when it configures logging,
# in every process (the Dask workers included)
TASK_LOG_LEVEL_ENV = "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"
CONSOLE_LEVEL_ENV = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"
DEFAULT_TASK_LOG_LEVEL = "WARNING"
LOCAL_CLASSES = (None, "distributed.LocalCluster", "distributed.deploy.local.LocalCluster")


class ClusterSettings(BaseModel):
    """Where the Dask tasks of a flow run.

    Leave everything unset for the scheduler named by Dask's configuration (``DASK_SCHEDULER_ADDRESS``)
    or, without one, a local cluster of ``workers`` processes.
    """

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(None, description="Address of an existing Dask scheduler, e.g. tcp://scheduler:8786. Default: DASK_SCHEDULER_ADDRESS, else a local cluster.")
    workers: int = Field(DEFAULT_WORKERS, ge=1, description="Worker processes of the local cluster (one thread each).")
    memory_limit: str = Field(DEFAULT_MEMORY_LIMIT, description="Memory limit per local worker, e.g. 4GiB.")
    cluster_class: str | None = Field(None, description="Import path of a cluster class to start instead, e.g. dask_kubernetes.operator.KubeCluster.")
    cluster_kwargs: dict[str, Any] = Field({}, description="Keyword arguments of the cluster class (or of the LocalCluster).")  # a default the UI form shows (pydantic copies it)
    adapt_kwargs: dict[str, Any] | None = Field(None, description="Adaptive scaling of the cluster class, e.g. {minimum: 1, maximum: 10}.")

    @field_validator("memory_limit")
    @classmethod
    def _memory_parses(cls, value: str) -> str:
        parse_memory_limit(value)
        return value

    @model_validator(mode="after")
    def _address_alone(self) -> ClusterSettings:
        if self.address and (self.cluster_class or self.cluster_kwargs or self.adapt_kwargs):
            raise ValueError("an address names an existing cluster: cluster_class, cluster_kwargs and adapt_kwargs cannot go with it")
        return self

    @property
    def is_local(self) -> bool:
        return not self.address and self.cluster_class in LOCAL_CLASSES


def cluster_settings(value: ClusterSettings | Mapping[str, Any] | None) -> ClusterSettings:
    """Settings from a dict (a deployment parameter) or None; a bad one is one :class:`PreflightError` line."""
    if isinstance(value, ClusterSettings):
        return value
    if value is not None and not isinstance(value, Mapping):
        raise PreflightError(f"cluster settings must be a dict, not {value!r}")
    try:
        return ClusterSettings(**dict(value or {}))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'cluster'}: {e['msg'].removeprefix('Value error, ')}" for e in error.errors())
        raise PreflightError(f"bad cluster setting ({problems}); valid: {', '.join(ClusterSettings.model_fields)}") from None


def task_log_level() -> str:
    """Level of Prefect's task-run logger: the environment's override, else WARNING (quiet)."""
    return os.environ.get(TASK_LOG_LEVEL_ENV) or DEFAULT_TASK_LOG_LEVEL


def quiet_logs() -> None:
    """Quiet this process: distributed below WARNING and Prefect's per-task-run lines are dropped."""
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker", "distributed.core", "distributed.http.proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("prefect.task_runs").setLevel(task_log_level())


def worker_environment() -> dict[str, str]:
    """Environment of the worker processes of a local cluster: task-run errors to the API, not the terminal."""
    return {TASK_LOG_LEVEL_ENV: task_log_level(), CONSOLE_LEVEL_ENV: os.environ.get(CONSOLE_LEVEL_ENV, "CRITICAL")}


def _warm_up() -> None:
    """Import what a unit task needs (seconds per worker), while the flow still plans."""
    import laion_lake.scoring.runner  # noqa: F401


def _start_local(settings: ClusterSettings) -> Any:
    kwargs = dict(settings.cluster_kwargs)
    if kwargs.get("processes", True):
        # worker processes (nannies) take an environment; threads share this process's
        kwargs["env"] = {**worker_environment(), **kwargs.get("env", {})}
    workers = kwargs.pop("n_workers", settings.workers)
    memory = kwargs.pop("memory_limit", settings.memory_limit)
    cluster = local_cluster(workers, memory, **kwargs)
    from distributed import Client

    # not the default client: this runs in a background thread, and dask.config.set (which a default
    # client uses) is process-wide, so an interleaved close would leave "dask.distributed" set for all
    with Client(cluster, timeout="60s", set_as_default=False) as client:
        client.run(_warm_up)
    return cluster


_prestarted: dict[str, concurrent.futures.Future] = {}
_prestart_lock = threading.Lock()


def prestart(settings: ClusterSettings | Mapping[str, Any] | None) -> None:
    """Start the local cluster of ``settings`` in a background thread now; :func:`cluster_address` picks it up."""
    settings = cluster_settings(settings)
    if not settings.is_local or scheduler_address():
        return
    with _prestart_lock:
        key = settings.model_dump_json()
        if key not in _prestarted:
            _prestarted[key] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="laion-lake-cluster").submit(_start_local, settings)
            if len(_prestarted) == 1:
                atexit.register(_close_prestarted)


def _close_prestarted() -> None:
    """At exit: close a prestarted cluster no flow took (the flow failed before it, or never ran)."""
    with _prestart_lock:
        futures = list(_prestarted.values())
        _prestarted.clear()
    for future in futures:
        with contextlib.suppress(Exception):
            close_local(future.result(timeout=120))


@contextlib.contextmanager
def cluster_address(settings: ClusterSettings | Mapping[str, Any] | None) -> Iterator[str | None]:
    """The scheduler address the tasks go to, for the duration; None means "start the cluster class"
    (:func:`cluster_client` does).

    A local cluster (prestarted or started here) is closed on exit, its workers' Prefect clients drained first.
    """
    settings = cluster_settings(settings)
    if settings.address or (settings.is_local and scheduler_address()):
        yield settings.address or scheduler_address()
        return
    if not settings.is_local:
        yield None
        return
    with _prestart_lock:
        future = _prestarted.pop(settings.model_dump_json(), None)
    cluster = future.result() if future is not None else _start_local(settings)
    try:
        yield cluster.scheduler_address
    finally:
        close_local(cluster)


def close_local(cluster: Any) -> None:
    """Close a local cluster without "Worker process still alive" warnings: drain Prefect on the workers first."""
    from distributed import Client

    with contextlib.suppress(Exception), Client(cluster, timeout="10s", set_as_default=False) as client:
        client.run(forget_prefect_api)
        # a heartbeat in flight when the scheduler stops is a harmless race of the teardown, which
        # distributed logs as an ERROR with a traceback: from here on only CRITICAL lines are wanted
        client.run(silence_distributed)
    with silenced_distributed():
        _close_quietly(cluster)


def _close_quietly(cluster: Any) -> None:
    # The cluster's own close stops each nanny with distributed's default budget (Nanny.close(timeout=5):
    # 4.0 s for the worker process to exit, then "Worker process still alive after 4.0 seconds,
    # killing"). A worker that has imported Prefect and the scoring stack needs longer to exit on a
    # loaded machine (interpreter teardown, Prefect's exit hooks), so the nannies are closed here first
    # with a budget of their own; the cluster then finds them closed.
    with contextlib.suppress(Exception):
        cluster.sync(_close_workers, cluster, WORKER_CLOSE_SECONDS)
    cluster.close(timeout=30)


WORKER_CLOSE_SECONDS = 30
DISTRIBUTED_LOGGERS = ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker", "distributed.core",
                       "distributed.comm", "distributed.batched", "distributed.http.proxy")  # fmt: skip


def silence_distributed(names: tuple[str, ...] = DISTRIBUTED_LOGGERS) -> None:
    """In a worker about to close: distributed logs only CRITICAL lines (teardown races are not errors)."""
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL)


@contextlib.contextmanager
def silenced_distributed() -> Iterator[None]:
    """:func:`silence_distributed` in this process (the local scheduler's) for the duration, then restored.

    The nannies' logger stays as it was: "Worker process still alive" is a real teardown defect.
    """
    names = tuple(name for name in DISTRIBUTED_LOGGERS if name != "distributed.nanny")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    silence_distributed(names)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


async def _close_workers(cluster: Any, timeout: float) -> None:
    import asyncio

    workers = [worker for worker in cluster.workers.values() if hasattr(worker, "close")]
    await asyncio.gather(*(worker.close(timeout=timeout) for worker in workers), return_exceptions=True)


def forget_prefect_api() -> None:
    """On a worker: send what Prefect still holds for the API and stop its client threads.

    Run at the end of a flow on every worker, so that a long-lived worker does not keep trying to
    reach a temporary Prefect server that has gone (an ERROR every few seconds otherwise). A worker
    that never ran a Prefect task (scoring units are plain Dask tasks) has nothing to drain.
    """
    import sys

    if "prefect.events.worker" not in sys.modules and "prefect.logging.handlers" not in sys.modules:
        return

    def drain() -> None:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        for service in (APILogWorker, EventsWorker):
            with contextlib.suppress(Exception):
                service.drain_all(timeout=5)

    # Dask runs this in the worker's event loop; draining blocks, so it gets a thread of its own
    thread = threading.Thread(target=drain, name="laion-lake-drain-prefect", daemon=True)
    thread.start()
    thread.join(timeout=10)


@contextlib.contextmanager
def cluster_client(settings: ClusterSettings | Mapping[str, Any] | None) -> Iterator[Any]:
    """A ``distributed.Client`` of the settings' cluster for the duration (see :func:`cluster_address`).

    A ``cluster_class`` is imported and started here (``cluster_kwargs``, then ``adapt(**adapt_kwargs)``)
    and closed on exit; a class that cannot be imported is one :class:`PreflightError` line.
    """
    from distributed import Client

    settings = cluster_settings(settings)
    with cluster_address(settings) as address:
        if address:
            # not the default client: the flow's own dask calls (aggregates here) stay local
            with Client(address, timeout="30s", set_as_default=False) as client:
                yield client
            return
        cluster = _cluster_class(settings.cluster_class)(**settings.cluster_kwargs)
        try:
            if settings.adapt_kwargs is not None:
                cluster.adapt(**settings.adapt_kwargs)
            with Client(cluster, set_as_default=False) as client:
                yield client
        finally:
            cluster.close()


def _cluster_class(name: str | None) -> type:
    import importlib

    module, _, attribute = (name or "").rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise PreflightError(f"cluster_class {name!r} cannot be imported ({type(error).__name__}: {error})") from None


def check_reachable(settings: ClusterSettings, timeout: float = 5) -> None:
    """Pre-flight of a scheduler address (given or configured): one line when nothing answers there."""
    address = settings.address or (scheduler_address() if settings.is_local else None)
    if not address:
        return
    from distributed import Client

    try:
        Client(address, timeout=f"{timeout}s", set_as_default=False).close()
    except Exception as error:  # noqa: BLE001 - OSError, TimeoutError, a bad address: all one message
        raise PreflightError(f"no Dask scheduler answers at {address} within {timeout:.0f} s ({type(error).__name__}); check --scheduler or DASK_SCHEDULER_ADDRESS") from None
