"""Work units addressed by keys: what a Prefect task (or any scheduler) calls.

Tasks pass a lake URL, storage options and string keys, never arrays; each call opens the lake
itself and reads only the slices its unit needs. BLAS runs with a fixed thread count
(``BLAS_THREADS`` = 1) inside every unit, so that a score does not depend on how many threads a
worker has or how many units run at once: the same inputs give bit-identical scores on one process
or on a cluster of any size. Parallelism comes from running units side by side (one per core:
Dask worker threads or processes, or :func:`laion_lake.scoring.api.score_many`'s thread pool), so
the machine is full but not oversubscribed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dask
from threadpoolctl import threadpool_limits

from laion_lake.benchmarks import BenchmarkSpec, list_benchmarks, load_benchmark
from laion_lake.scoring.plan import Aggregate, FeatureSet, WorkUnit, group_by_aggregate, plan_work, specs_by_key
from laion_lake.scoring.records import compute_unit_record, write_aggregate_record

# BLAS threads inside one unit (see the module docstring)
BLAS_THREADS = 1
# a unit reads its lake slices with a local thread pool, never through the cluster it runs on:
# a task that submitted its reads to the scheduler would block its worker's thread and deadlock
LOCAL_DASK = {"scheduler": "threads"}

class SharedProcessSetting:
    """A process-wide setting held while any unit of this process needs it.

    ``threadpool_limits`` and ``dask.config.set`` are process-wide and restore the previous value
    on exit: nested in several threads at once, the first unit to finish would undo the setting
    under the others (BLAS unpinned: results that depend on timing; or Dask's scheduler left set
    after the last one). Here the first unit in applies the setting and the last one out restores it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._restore: Callable[[], None] | None = None

    @contextlib.contextmanager
    def held(self, apply: Callable[[], Callable[[], None]]) -> Iterator[None]:
        """Hold the setting; ``apply()`` sets it (first user only) and returns how to restore it."""
        with self._lock:
            if self._users == 0:
                self._restore = apply()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._restore is not None:
                    restore, self._restore = self._restore, None
                    restore()


_blas_setting, _dask_setting = SharedProcessSetting(), SharedProcessSetting()


def fixed_blas_threads(n_threads: int = BLAS_THREADS) -> contextlib.AbstractContextManager[None]:
    """BLAS pinned to ``n_threads`` for as long as any unit of this process is running."""
    return _blas_setting.held(lambda: threadpool_limits(n_threads).restore_original_limits)


def local_dask_reads() -> contextlib.AbstractContextManager[None]:
    """Dask's local thread scheduler (:data:`LOCAL_DASK`) for lake reads while any unit of this process runs."""

    def apply() -> Callable[[], None]:
        setting = dask.config.set(LOCAL_DASK)
        return lambda: setting.__exit__(None, None, None)

    return _dask_setting.held(apply)


def default_workers() -> int:
    """Units run at once in process: one per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ScorePlan:
    """What a score run does, as plain keys: units (with the benchmarks they serve) and aggregates."""

    units: tuple[tuple[str, tuple[str, ...]], ...]
    aggregates: tuple[tuple[str, str, str], ...]


def plan_keys(feature_sets: Iterable[Sequence[str]], benchmarks: Iterable[str | BenchmarkSpec] | None = None) -> ScorePlan:
    """Plan a run: unit keys with the benchmark keys each serves, and (model, layer, benchmark key) aggregates.

    Parameters
    ----------
    feature_sets : iterable of (model, layer)
    benchmarks : identifiers, keys or specs; default the 24 leaderboard benchmarks
    """
    specs = [b if isinstance(b, BenchmarkSpec) else load_benchmark(b) for b in (benchmarks or list_benchmarks())]
    plan = plan_work([FeatureSet(*fs) for fs in feature_sets], specs)
    units = tuple((work.unit.key, tuple(sorted({cell.benchmark_key for cell in work.cells}))) for work in plan)
    aggregates = tuple((a.model, a.layer, a.benchmark_key) for a in group_by_aggregate(plan))
    return ScorePlan(units, aggregates)


def _open(lake_url: str, storage_options: dict[str, Any] | None) -> Any:
    from laion_lake.lake import open_lake

    return open_lake(lake_url, storage_options)


def run_unit_by_key(lake_url: str, storage_options: dict[str, Any] | None, unit_key: str, benchmark_keys: Sequence[str], force: bool = False) -> str:
    """Compute (or skip) one unit and store its record; returns ``"computed"`` or ``"skipped"``."""
    unit = WorkUnit.from_key(unit_key)
    specs = specs_by_key(benchmark_keys)
    work = next(w for w in plan_work([unit.feature_set], specs.values()) if w.unit == unit)
    with fixed_blas_threads(), local_dask_reads():
        return compute_unit_record(_open(lake_url, storage_options), work, specs, force=force)


def aggregate_by_key(lake_url: str, storage_options: dict[str, Any] | None, model: str, layer: str, benchmark_key: str) -> dict[str, Any]:
    """Aggregate one (feature set, benchmark) from its stored unit records, store the Score, return a summary row."""
    spec = load_benchmark(benchmark_key)
    aggregate = Aggregate(model, layer, spec.key)
    pairs = group_by_aggregate(plan_work([FeatureSet(model, layer)], [spec]))[aggregate]
    with local_dask_reads():
        score = write_aggregate_record(_open(lake_url, storage_options), aggregate, spec, pairs)
    return {
        "model": model,
        "layer": layer,
        "benchmark": spec.key,
        "value": float(score.values),
        "error": score.attrs["error"],
        "raw": score.attrs["raw"],
        "ceiling": score.attrs["ceiling"],
    }
