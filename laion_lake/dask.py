"""Scoring on a plain Dask cluster: plan, submit, gather. No Prefect anywhere on this path.

For Dask users who do not run Prefect::

    from distributed import Client
    import laion_lake.dask as lld

    client = Client()                                   # or Client("tcp://scheduler:8786")
    plan = lld.plan("./lake", ["early_model/conv2"], ["LAION_fMRI.V1-tau-ridgecv"])
    futures = lld.submit(client, plan)                  # keys: unit-early_model-conv2-sub-01-shared-tau, ...
    report = lld.gather(futures, progress=True)         # {"units", "computed", "skipped", "failed", "scores"}

:func:`plan` checks the whole request in this process first (:mod:`laion_lake.preflight`): a bad
name is one ``ValueError`` line before anything is submitted. Each work unit is one Dask task keyed
``unit-<model>-<layer>-<subject>-<pool>-<split>`` (so the dashboard says what runs); each aggregate
is one task keyed ``aggregate-<model>-<layer>-<benchmark>`` that depends on its units only, so it
runs as soon as they are done. Each :func:`submit` call ends its keys in one 8-hex token of its own
(``...-split-1f2e3d4c``; Dask's task groups ignore it), so that submitting a plan again, ``force``
or not, never meets the results of an earlier submission still held on the scheduler. Tasks pass the lake URL and keys, never arrays; records land in the
lake exactly as the Prefect flows write them. A unit that fails on bad data is not retried (it
returns its error, see :class:`UnitFailure`); other errors are retried ``retries`` times by Dask.
:func:`gather` raises :class:`UnitsFailedError`, naming every failed unit, after every unit ran.

Which scheduler: an explicit ``Client``; :func:`client_for` uses Dask's own configuration
(``DASK_SCHEDULER_ADDRESS`` / ``dask.config`` ``scheduler-address``) when it is set, else starts a
:func:`local_cluster`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask

from laion_lake.preflight import ScoreRequest, check_score_request, check_workers, is_deterministic, parse_memory_limit
from laion_lake.scoring.runner import aggregate_by_key, plan_keys, run_unit_by_key

# the embedded local cluster: one thread per worker (units run single-threaded BLAS), sized for 2 cores
DEFAULT_WORKERS, DEFAULT_MEMORY_LIMIT = 2, "4GiB"
UNIT_RETRIES = 2
# at most this many failed units are named one per line in a summary
SHOWN_FAILURES = 10


@dataclass(frozen=True)
class Plan:
    """A checked request and its work: unit keys (with the benchmark keys each serves) and aggregates."""

    request: ScoreRequest
    units: tuple[tuple[str, tuple[str, ...]], ...]
    aggregates: tuple[tuple[str, str, str], ...]
    # the caller's options, credentials included: Dask task arguments are not stored anywhere
    storage_options: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def units_of(self, aggregate: tuple[str, str, str]) -> list[str]:
        """Keys of the units whose cells ``aggregate`` (model, layer, benchmark key) is made of."""
        model, layer, benchmark = aggregate
        return [key for key, benchmarks in self.units if benchmark in benchmarks and key_parts(key)[:2] == (model, layer)]


@dataclass(frozen=True)
class UnitFailure:
    """A unit that failed on bad data: its key and the one-line error (returned, not raised: no retry)."""

    unit_key: str
    error: str


class UnitsFailedError(RuntimeError):
    """Some work units failed (exit code 1); the message names each one (model/layer/subject/pool/split)."""

    def __init__(self, failures: Sequence[UnitFailure], total: int) -> None:
        self.failures = list(failures)
        lines = [f"  {f.unit_key}: {f.error}" for f in self.failures[:SHOWN_FAILURES]]
        if len(self.failures) > SHOWN_FAILURES:
            lines.append(f"  ... and {len(self.failures) - SHOWN_FAILURES} more")
        super().__init__(f"{len(self.failures)} of {total} work unit(s) failed (model/layer/subject/pool/split):\n" + "\n".join(lines))


def key_parts(unit_key: str) -> tuple[str, ...]:
    """(model, layer, subject, pool, split) of a unit key."""
    from laion_lake.scoring.plan import WorkUnit

    unit = WorkUnit.from_key(unit_key)
    return (unit.model, unit.layer, unit.subject, unit.pool, unit.split_name or "rdm")


def unit_task_key(unit_key: str) -> str:
    """The Dask key of a unit: ``unit-<model>-<layer>-<subject>-<pool>-<split>``."""
    return "unit-" + unit_key.replace("/", "-")


def aggregate_task_key(model: str, layer: str, benchmark_key: str) -> str:
    """The Dask key of an aggregate: ``aggregate-<model>-<layer>-<benchmark>``."""
    return f"aggregate-{model}-{layer}-{benchmark_key}"


def one_line(error: BaseException) -> str:
    """``TypeName: first line of the message``: what a summary shows of an error."""
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    cause = error.__cause__ or error.__context__
    return f"{line} (from {one_line(cause)})" if cause is not None and cause is not error else line


def plan(
    lake_url: str,
    feature_sets: Iterable[str | Sequence[str]] | None = None,
    benchmarks: Iterable[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Plan:
    """Check the request here (see :mod:`laion_lake.preflight`) and plan its units and aggregates.

    Parameters
    ----------
    lake_url : str
    feature_sets : iterable of ``"model/layer"``, ``"model"`` or (model, layer), optional
        Default every feature set in the lake.
    benchmarks : iterable of str, optional
        Identifiers or keys; default the leaderboard benchmarks.
    storage_options : dict, optional
        fsspec options of the lake, used here only; the plan keeps them without credentials
        (workers read credentials from their environment or a profile).
    """
    request = check_score_request(lake_url, storage_options, feature_sets, benchmarks)
    keys = plan_keys(request.feature_sets, request.benchmarks)
    return Plan(request, keys.units, keys.aggregates, None if storage_options is None else dict(storage_options))


def run_unit(lake_url: str, storage_options: dict | None, unit_key: str, benchmark_keys: Sequence[str], force: bool = False) -> str | UnitFailure:
    """One unit as a task: ``"computed"``/``"skipped"``, or a :class:`UnitFailure` for bad data (no retry)."""
    try:
        return run_unit_by_key(lake_url, storage_options, unit_key, list(benchmark_keys), force)
    except Exception as error:
        if is_deterministic(error):
            return UnitFailure(unit_key, one_line(error))
        raise


def run_aggregate(lake_url: str, storage_options: dict | None, aggregate: tuple[str, str, str], *unit_statuses: Any) -> dict[str, Any] | None:
    """One aggregate as a task, after its units (``unit_statuses`` makes them Dask dependencies); None if one failed."""
    if any(isinstance(status, UnitFailure) for status in unit_statuses):
        return None
    return aggregate_by_key(lake_url, storage_options, *aggregate)


def done_units(plan: Plan) -> set[str]:
    """Keys of the plan's units whose record is in the lake, current and covering every cell asked of it.

    The same test :func:`~laion_lake.scoring.records.compute_unit_record` makes before it skips a
    unit, made here first so that a run with nothing to compute starts no cluster. Any trouble
    reading the records means "not done": the unit then goes to the cluster and decides there.
    """
    try:
        with dask.config.set(scheduler="threads"):
            return _done_units(plan)
    except Exception:  # noqa: BLE001 - an optimisation only: the units themselves decide
        return set()


def _done_units(plan: Plan) -> set[str]:
    from laion_lake.lake import open_lake
    from laion_lake.scoring.plan import WorkUnit, plan_work, specs_by_key
    from laion_lake.scoring.records import read_unit_record, unit_inputs

    lake = open_lake(plan.request.lake_url, plan.storage_options)
    work = {w.unit.key: w for w in plan_work(plan.request.feature_sets, specs_by_key(plan.request.benchmarks).values())}
    done = set()
    for key, _ in plan.units:
        record = read_unit_record(lake, WorkUnit.from_key(key))
        if record is None or record.get("inputs") != unit_inputs(lake, WorkUnit.from_key(key)):
            continue
        stored = {(c["benchmark_key"], c["region"], c["metric"], c["test_restriction"], c["fold"]) for c in record["results"]}
        if all((c.benchmark_key, c.region, c.metric, c.test_restriction, c.fold) in stored for c in work[key].cells):
            done.add(key)
    return done


@dataclass
class Submitted:
    """Futures of one submitted plan."""

    plan: Plan
    units: dict[str, Any]
    aggregates: dict[tuple[str, str, str], Any]
    started: float = field(default_factory=time.perf_counter)


def submit(client: Any, plan: Plan, force: bool = False, retries: int = UNIT_RETRIES) -> Submitted:
    """Submit every unit and aggregate of ``plan`` to ``client`` (a ``distributed.Client``)."""
    import uuid

    url, options = plan.request.lake_url, plan.storage_options
    token = uuid.uuid4().hex[:8]
    units = {
        key: client.submit(run_unit, url, options, key, benchmarks, force, key=f"{unit_task_key(key)}-{token}", retries=retries, pure=False)
        for key, benchmarks in plan.units
    }
    aggregates = {
        aggregate: client.submit(run_aggregate, url, options, aggregate, *[units[k] for k in plan.units_of(aggregate)],
                                 key=f"{aggregate_task_key(*aggregate)}-{token}", retries=retries, pure=False)  # fmt: skip
        for aggregate in plan.aggregates
    }
    return Submitted(plan, units, aggregates)


class UnitProgress:
    """A terminal progress bar of units: computed / skipped / failed, elapsed and remaining (tqdm)."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "work units") -> None:
        from tqdm import tqdm

        self.counts = {"computed": 0, "skipped": 0, "failed": 0}
        self.bar = tqdm(total=total, desc=desc, unit="unit", disable=not enabled, dynamic_ncols=True)

    def update(self, status: str) -> None:
        self.counts[status] += 1
        self.bar.set_postfix(self.counts, refresh=False)
        self.bar.update(1)

    def note(self, text: str) -> None:
        """A line above the bar (stderr, as the bar), when the bar is shown."""
        if not self.bar.disable:
            self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def gather(submitted: Submitted, progress: bool = False) -> dict[str, Any]:
    """Wait for every unit and aggregate; return ``units``, ``computed``, ``skipped``, ``failed``, ``scores``.

    Raises
    ------
    UnitsFailedError
        After every unit ran, when some failed (on bad data, or after their retries).
    """
    bar = UnitProgress(len(submitted.units), progress)
    try:
        scores, failures = collect(submitted, bar)
    finally:
        bar.close()
    if failures:
        raise UnitsFailedError(failures, len(submitted.units))
    return {"units": len(submitted.units), **bar.counts, "scores": scores}


def collect(submitted: Submitted, bar: UnitProgress, on_unit: Callable[[str, str], None] | None = None) -> tuple[list[dict[str, Any]], list[UnitFailure]]:
    """Wait for every unit of ``submitted``, counting each on ``bar`` as it ends, then for the aggregates.

    Parameters
    ----------
    submitted : Submitted
    bar : UnitProgress
        Counts ``computed`` / ``skipped`` / ``failed``.
    on_unit : callable, optional
        Called as ``on_unit(unit_key, status)`` as each unit ends (the flow logs it).

    Returns
    -------
    scores : list of dict
        One row per aggregate whose units all succeeded.
    failures : list of UnitFailure
        Sorted by unit key: units that failed on bad data, or after their retries.
    """
    from distributed import as_completed

    by_future = {future.key: key for key, future in submitted.units.items()}
    failures: list[UnitFailure] = []
    futures = [*submitted.units.values(), *submitted.aggregates.values()]
    if not futures:
        return [], []
    client = futures[0].client  # the futures' own client, which need not be the default one (a flow's is not)
    for future in as_completed(list(submitted.units.values()), loop=client.loop):
        key = by_future[future.key]
        result = UnitFailure(key, one_line(future.exception())) if future.status == "error" else future.result()
        if isinstance(result, UnitFailure):
            failures.append(result)
        status = "failed" if isinstance(result, UnitFailure) else result
        bar.update(status)
        if on_unit is not None:
            on_unit(key, status)
    # an aggregate that errored (after its retries) has no row; one whose unit failed returns None
    scores = [row for row in client.gather(list(submitted.aggregates.values()), errors="skip") if row is not None]
    return scores, sorted(failures, key=lambda f: f.unit_key)


def local_cluster(workers: int = DEFAULT_WORKERS, memory_limit: str | int | None = DEFAULT_MEMORY_LIMIT, dashboard_address: str | None = "127.0.0.1:0", **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of single-threaded worker processes, quiet (WARNING and up)."""
    from distributed import LocalCluster

    check_workers(workers)
    parse_memory_limit(memory_limit)
    options = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "memory_limit": memory_limit,
               "dashboard_address": dashboard_address, "silence_logs": logging.WARNING, **kwargs}  # fmt: skip
    return LocalCluster(**options)


def scheduler_address() -> str | None:
    """The scheduler Dask's own configuration names (``DASK_SCHEDULER_ADDRESS``, ``scheduler-address``)."""
    return dask.config.get("scheduler-address", None) or None


@contextlib.contextmanager
def client_for(address: str | None = None, workers: int = DEFAULT_WORKERS, memory_limit: str | int | None = DEFAULT_MEMORY_LIMIT) -> Iterator[Any]:
    """A client of ``address``, of Dask's configured scheduler, or of a local cluster closed on exit."""
    from distributed import Client

    address = address or scheduler_address()
    if address:
        with Client(address, timeout="30s") as client:
            yield client
        return
    with local_cluster(workers, memory_limit) as cluster, Client(cluster) as client:
        yield client


def score(
    lake_url: str,
    feature_sets: Iterable[str | Sequence[str]] | None = None,
    benchmarks: Iterable[str] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    force: bool = False,
    client: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """:func:`plan`, :func:`submit` and :func:`gather` in one call (on ``client``, else :func:`client_for`)."""
    work = plan(lake_url, feature_sets, benchmarks, storage_options)
    if client is not None:
        return gather(submit(client, work, force), progress)
    with client_for() as own:
        return gather(submit(own, work, force), progress)
