"""Memory per work unit, known before any unit runs: stated peaks and the check of a worker limit.

Holds :func:`check_memory` (the one planning step that looks at a lake, through lazy metadata
only: split sizes, feature width, voxels past each NC filter), :func:`unit_peak_bytes`,
:func:`process_peak_bytes` for a process running several units at once, :class:`MemoryNeeds` and
:class:`WorkerMemoryError`. The plan's types come from :mod:`laion_lake.scoring.plan`, which
re-exports these names (so it imports them only when called).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from laion_lake.benchmarks import load_benchmark

if TYPE_CHECKING:
    from laion_lake.benchmarks import BenchmarkSpec
    from laion_lake.scoring.plan import WorkUnit


class WorkerMemoryError(ValueError):
    """A worker memory limit too small for a unit of the plan (the message names the unit and bytes)."""


def _plan_units(plan: Iterable) -> list[tuple[WorkUnit, list[tuple[str, BenchmarkSpec]]]]:
    """(unit, [(region, spec), ...]) from a plan_work() tuple or a runner ScorePlan (keys)."""
    from laion_lake.scoring.plan import UnitWork, WorkUnit  # plan re-exports this module: no import at load

    out = []
    units = getattr(plan, "units", plan)
    for item in units:
        if isinstance(item, UnitWork):
            out.append((item.unit, [(cell.region, load_benchmark(cell.benchmark_key)) for cell in item.cells]))
        else:
            key, benchmark_keys = item
            unit = WorkUnit.from_key(key)
            specs = [load_benchmark(k) for k in benchmark_keys]
            out.append((unit, [(spec.region, spec) for spec in specs]))
    return out


def _unit_parts(lake: object, unit: WorkUnit, regions: Iterable[tuple[str, BenchmarkSpec]]) -> tuple[int, int]:
    """(solver and read peak bytes, float32 bytes of the unit's response blocks) from its shapes (lazy metadata reads only)."""
    n_features = int(lake.features(unit.model, unit.layer).shape[1])
    from laion_lake.scoring.reads import region_read_bytes

    voxels, block_bytes = [], 0
    for region, spec in {(r, (s.nc_threshold, s.nc_coord)): (r, s) for r, s in regions}.values():
        responses = lake.responses(unit.subject, region, nc_threshold=spec.nc_threshold, nc_coord=spec.nc_coord)
        voxels.append(int(responses.sizes["neuroid"]))
        block_bytes += 4 * int(responses.sizes["stimulus_id"]) * voxels[-1]
    # a region is read (and averaged) while the unit's decomposition is held: its transient adds up.
    # The trial route's slabs are counted even where stored means are read (a fifth of it): at 128
    # features two in-process units measured 1,473 MB against 1,223 MB stated without that margin
    reading = region_read_bytes(int(lake.manifest["subjects"][unit.subject]["n_trials"]))
    solver, blocks = _solver_bytes(lake, unit, n_features, voxels), block_bytes
    return solver + reading, blocks


def _solver_bytes(lake: object, unit: WorkUnit, n_features: int, voxels: list[int]) -> int:
    from laion_lake.compute.solvers import rdm_peak_bytes, regression_peak_bytes

    if unit.kind in ("rdm", "cka"):
        # a CKA unit holds Gram matrices over the rdm stimuli (model, brain, one temporary), as an rdm unit its RDMs
        from laion_lake.scoring.units import rdm_stimuli

        return rdm_peak_bytes(len(rdm_stimuli(lake)), n_features, max(voxels, default=0))
    train, test = lake.split(unit.pool, unit.split_name)
    from laion_lake.scoring.reads import feature_array, streamed_read_bytes
    from laion_lake.scoring.units import FEATURE_CHUNK_SIZE

    read = streamed_read_bytes(feature_array(lake, unit.model, unit.layer)[0], len(train) + len(test))
    return regression_peak_bytes(len(train), len(test), n_features, max(voxels, default=0), FEATURE_CHUNK_SIZE, read_bytes=read)


def _cache_bound() -> int:
    from laion_lake.scoring.cache import process_cache

    return process_cache().max_bytes


def unit_peak_bytes(lake: object, unit: WorkUnit, regions: Iterable[tuple[str, BenchmarkSpec]]) -> int:
    """Peak resident bytes of one unit running alone in a process, from its shapes (lazy metadata reads only).

    The process base (``BASE_PROCESS_BYTES``), the solver's peak for the unit's shape
    (:func:`laion_lake.compute.solvers.regression_peak_bytes` / ``rdm_peak_bytes``, largest region)
    and the per-process cache: the larger of its bound and the float32 response blocks of the
    unit's regions (a block larger than the bound is held by the unit, not the cache).
    """
    from laion_lake.compute.solvers import BASE_PROCESS_BYTES

    solver, blocks = _unit_parts(lake, unit, regions)
    return BASE_PROCESS_BYTES + solver + max(blocks, _cache_bound())


class MemoryNeeds(dict):
    """Unit key -> peak bytes of that unit alone (:func:`unit_peak_bytes`), and the process's figure.

    Attributes
    ----------
    process_bytes : int
        Peak of one worker process running ``concurrent_units`` of these units at once: the base
        once, the cache once (its bound, or the largest blocks of the units at once if larger) and
        the solvers of the ``concurrent_units`` largest units (:func:`process_peak_bytes`).
    concurrent_units : int
    """

    process_bytes: int
    concurrent_units: int


def process_peak_bytes(parts: Mapping[str, tuple[int, int]], concurrent_units: int = 1, cache_bytes: int | None = None) -> int:
    """Peak of one process running ``concurrent_units`` units at once (its unit slots).

    Parameters
    ----------
    parts : mapping of unit key -> (solver bytes, response block bytes)
    concurrent_units : int
    cache_bytes : int, optional
        The response cache's bound (default this process's).
    """
    from laion_lake.compute.solvers import BASE_PROCESS_BYTES

    k = max(1, concurrent_units)
    solvers = sorted((solver for solver, _ in parts.values()), reverse=True)[:k]
    blocks = sorted((block for _, block in parts.values()), reverse=True)[:k]
    bound = _cache_bound() if cache_bytes is None else cache_bytes
    return BASE_PROCESS_BYTES + sum(solvers) + max(bound, sum(blocks))


def check_memory(plan: Iterable, worker_memory_bytes: int, lake: object, concurrent_units: int = 1) -> MemoryNeeds:
    """Refuse a worker memory limit too small for the units of ``plan``, before a cluster starts.

    Parameters
    ----------
    plan : tuple of UnitWork (:func:`plan_work`) or a runner ``ScorePlan`` (``plan_keys``)
    worker_memory_bytes : int
        Memory limit of one worker (process).
    lake : Lake
        Where the shapes come from (split sizes, feature width, voxels past each NC filter).
    concurrent_units : int
        Units one worker runs at once (its threads, its unit slots): each needs its own solver
        memory; the process base and the response cache are counted once.

    Returns
    -------
    MemoryNeeds
        Unit key -> peak bytes of that unit alone; ``.process_bytes`` the process's peak with
        ``concurrent_units`` units at once (``.process_bytes / concurrent_units`` per slot).

    Raises
    ------
    WorkerMemoryError
        Naming the first unit (largest need) that does not fit, the bytes it needs and the limit.
    """
    parts = {unit.key: _unit_parts(lake, unit, regions) for unit, regions in _plan_units(plan)}
    from laion_lake.compute.solvers import BASE_PROCESS_BYTES

    bound = _cache_bound()
    needs = MemoryNeeds({key: BASE_PROCESS_BYTES + solver + max(blocks, bound) for key, (solver, blocks) in parts.items()})
    needs.concurrent_units = max(1, concurrent_units)
    needs.process_bytes = process_peak_bytes(parts, concurrent_units, bound) if parts else BASE_PROCESS_BYTES
    for key, need in sorted(needs.items(), key=lambda item: -item[1]):
        # with several slots the largest unit shares the process with the next largest ones
        total = need if concurrent_units <= 1 else max(need, needs.process_bytes)
        if total > worker_memory_bytes:
            raise WorkerMemoryError(
                f"unit {key} needs {total} bytes ({total / 2**30:.2f} GiB"
                + (f" for {concurrent_units} units at once, {total / concurrent_units / 2**30:.2f} GiB per unit slot" if concurrent_units > 1 else "")
                + f") but the worker memory limit is {worker_memory_bytes} bytes ({worker_memory_bytes / 2**30:.2f} GiB); "
                "give workers more memory or fewer threads"
            )
    return needs
