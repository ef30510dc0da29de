"""In-process scoring: ``score`` and ``score_many`` run every work unit here, ``workers`` at a time.

Units run side by side in a thread pool (one per core by default), each with BLAS pinned to one
thread (see :mod:`laion_lake.scoring.runner`): every core is busy and the scores are bit-identical
whatever the number of workers. Threads share the process's responses cache
(:mod:`laion_lake.scoring.cache`), so a subject's data is read once for all its units.

The Prefect flows in ``flows/`` run the same units as Dask tasks (see :mod:`laion_lake.scoring.runner`).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import xarray as xr

from laion_lake.benchmarks import BenchmarkSpec, load_benchmark
from laion_lake.scoring.aggregate import aggregate_score, score_table
from laion_lake.scoring.plan import FeatureSet, UnitWork, WorkUnit, group_by_aggregate, plan_work, specs_by_key
from laion_lake.scoring.runner import default_workers, fixed_blas_threads, local_dask_reads
from laion_lake.scoring.schedule import longest_first
from laion_lake.scoring.units import CellResult, run_unit
from laion_lake.scoring.voxel_scores import QUANTITIES, voxel_scores


def _as_lake(lake: Any, storage_options: dict | None = None) -> Any:
    from laion_lake.lake import Lake, open_lake

    return lake if isinstance(lake, Lake) else open_lake(str(lake), storage_options)


def _as_spec(benchmark: BenchmarkSpec | str) -> BenchmarkSpec:
    return benchmark if isinstance(benchmark, BenchmarkSpec) else load_benchmark(benchmark)


def score_many(
    lake: Any,
    feature_sets: Iterable[tuple[str, str] | FeatureSet],
    benchmarks: Iterable[BenchmarkSpec | str],
    progress: bool = False,
    workers: int | None = None,
    voxels: bool = False,
) -> dict[tuple[str, str, str], xr.DataArray]:
    """Score many feature sets on many benchmarks, sharing each kernel across everything that uses it.

    Parameters
    ----------
    lake : Lake or str
        An open lake or its URL.
    feature_sets : iterable of (model, layer)
    benchmarks : iterable of BenchmarkSpec or identifier
    progress : bool
        Show a progress bar over work units.
    workers : int, optional
        Units run at once (threads of this process); default one per available core. The scores
        do not depend on it.
    voxels : bool
        Attach each regression score's per-voxel r as ``attrs["voxel_r"]`` and its NC-normalised r^2
        (``nsd`` convention) as ``attrs["voxel_r2_nsd"]`` (DataArrays (subject,
        neuroid) with the voxel coordinates; see :mod:`laion_lake.scoring.voxel_scores`). In memory
        only: a stored record never holds it.

    Returns
    -------
    dict of (model, layer, benchmark_key) -> Score (0-d DataArray, see :func:`aggregate_score`)
    """
    lake = _as_lake(lake)
    specs = [_as_spec(b) for b in benchmarks]
    by_key = specs_by_key(specs)
    plan = plan_work(feature_sets, specs)
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan), desc="work units", unit="unit")

    def run(work: UnitWork) -> list[CellResult]:
        results = run_unit(lake, work, by_key)
        if bar is not None:
            bar.update(1)
        return results

    # BLAS pinned per unit, as on cluster workers: bit-identical scores whatever runs at once.
    # (Units compute their lake reads with a local thread pool themselves; the config is set here,
    # once, because dask.config.set is process-wide and not safe to nest across threads.)
    with fixed_blas_threads(), local_dask_reads():
        if workers == 1:
            order = list(plan)
            outcomes = [run(work) for work in order]
        else:
            # longest first, so that the cheap units fill in behind the long ones instead of
            # leaving the two longest side by side at the end (the order never changes a score)
            order = longest_first(lake, plan) if len(plan) > workers else list(plan)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="laion-lake-unit") as pool:
                outcomes = list(pool.map(run, order))
    if bar is not None:
        bar.close()
    results: dict[WorkUnit, list[CellResult]] = {work.unit: outcome for work, outcome in zip(order, outcomes)}
    scores = {}
    voxel_coords: dict[str, Any] = {}  # each subject's neuroid coordinates, read once
    for aggregate, pairs in group_by_aggregate(plan).items():
        cell_results = [
            result
            for unit, cell in pairs
            for result in results[unit]
            if (result.benchmark_key, result.region, result.metric, result.test_restriction, result.fold)
            == (cell.benchmark_key, cell.region, cell.metric, cell.test_restriction, cell.fold)
        ]
        spec = by_key[aggregate.benchmark_key]
        scores[(aggregate.model, aggregate.layer, aggregate.benchmark_key)] = aggregate_score(spec, aggregate.model, aggregate.layer, cell_results, lake=lake)
        # per-voxel r (subject, neuroid) with the voxels' coordinates, in memory only (never in a JSON record)
        for quantity, (_, attr, _) in QUANTITIES.items():
            per_voxel = voxel_scores(lake, cell_results, voxel_coords, quantity=quantity) if voxels else None
            if per_voxel is not None:
                scores[(aggregate.model, aggregate.layer, aggregate.benchmark_key)].attrs[attr] = per_voxel
    return scores


def score(
    lake: Any, model: str, layer: str, benchmark: BenchmarkSpec | str, workers: int | None = None, voxels: bool = True
) -> xr.DataArray:
    """Score one model layer on one benchmark; see :func:`aggregate_score` for what a Score holds.

    A regression score carries its per-voxel r as ``attrs["voxel_r"]`` and NC-normalised r^2 as
    ``attrs["voxel_r2_nsd"]`` unless ``voxels=False``.
    """
    spec = _as_spec(benchmark)
    return score_many(lake, [(model, layer)], [spec], workers=workers, voxels=voxels)[(model, layer, spec.key)]


__all__ = ["CellResult", "aggregate_score", "plan_work", "run_unit", "score", "score_many", "score_table"]
