"""Planning the work of scoring feature sets on benchmarks: pure, deterministic, no I/O.

The expensive step of a regression benchmark is the kernel of the train features and its
eigendecomposition. It depends only on the feature set, the subject and the train set, not on the
region, the test set or the ceiling convention, so one :class:`WorkUnit` per
(model, layer, subject, pool, stored split) serves every (benchmark, region, fold) that trains on
it: all four headline regions, ridge and ridgecv, and all nine ``ood_<category>`` benchmarks (the
``ood`` train set restricted only at test time). RDM benchmarks need no fit and get their own
units, one per subject. :func:`group_by_aggregate` inverts the plan: which (unit, cell) results
one aggregated score is made of. :func:`check_memory` (the one function here that looks at a lake,
through lazy metadata only) states each unit's peak memory from its shapes and refuses a worker
memory limit too small for one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import storage_schemas.names as _names
from laion_lake.benchmarks import SHARED_POOL, BenchmarkSpec, load_benchmark

# the one naming rule (storage_schemas.names): a component never holds '/', so a key splits back
KEY_SEPARATOR = _names.KEY_SEPARATOR
# split component of an rdm unit's key: not a stored split name, so it cannot collide with one
RDM_SPLIT_COMPONENT = "rdm"
# split_name of a CKA unit (one per subject, no fit; see laion_lake.scoring.cka_unit): not a stored split name either
CKA_SPLIT_NAME = "cka"


def escape_key_component(name: str) -> str:
    """``name`` as one path component, by the one naming rule (:func:`storage_schemas.names.escape_component`)."""
    return _names.escape_component(name)


def unescape_key_component(component: str) -> str:
    """Inverse of :func:`escape_key_component`."""
    return _names.unescape_component(component)


@dataclass(frozen=True)
class FeatureSet:
    """One model layer's activations: what a kernel is computed from."""

    model: str
    layer: str

    def __post_init__(self) -> None:
        for name in ("model", "layer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"feature set {name} must be a non-empty str, got {value!r}")


@dataclass(frozen=True)
class WorkUnit:
    """One fit: a feature set's kernel and eigendecomposition on one subject's train set.

    Attributes
    ----------
    model, layer : str
        The feature set.
    subject : str
        Whose responses are predicted.
    pool : str
        ``"shared"`` or the subject's own pool (the split store's pool name).
    split_name : str or None
        Stored split whose train set the kernel is built on (``"ood"`` for every
        ``ood_<category>``, ``"cluster_k5_3"`` for fold 3); None for an rdm unit.
    """

    model: str
    layer: str
    subject: str
    pool: str
    split_name: str | None

    @property
    def kind(self) -> str:
        """``"regression"`` (a fit on a train set), ``"rdm"`` or ``"cka"`` (no fit)."""
        if self.split_name == CKA_SPLIT_NAME:
            return "cka"
        return "rdm" if self.split_name is None else "regression"

    @property
    def feature_set(self) -> FeatureSet:
        return FeatureSet(self.model, self.layer)

    @property
    def key(self) -> str:
        """``model/layer/subject/pool/split`` with each part escaped, e.g. ``alexnet/conv1/sub-01/shared/tau``.

        Usable as a relative path or an object key; rdm units end in ``/rdm``.
        """
        split = RDM_SPLIT_COMPONENT if self.split_name is None else self.split_name
        parts = (self.model, self.layer, self.subject, self.pool, split)
        return KEY_SEPARATOR.join(escape_key_component(part) for part in parts)

    @classmethod
    def from_key(cls, key: str) -> WorkUnit:
        """Inverse of :attr:`key`."""
        parts = key.split(KEY_SEPARATOR)
        if len(parts) != 5:
            raise ValueError(f"a work unit key has 5 parts (model/layer/subject/pool/split), got {key!r}")
        model, layer, subject, pool, split = (unescape_key_component(p) for p in parts)
        return cls(model, layer, subject, pool, None if split == RDM_SPLIT_COMPONENT else split)

    def sort_key(self) -> tuple[str, str, str, str, str]:
        # None (rdm) sorts before every split name, and never meets a str in a comparison
        return (self.model, self.layer, self.subject, self.pool, self.split_name or "")


@dataclass(frozen=True)
class Cell:
    """One result a work unit produces: a benchmark's region, metric and test set on that fit.

    Attributes
    ----------
    benchmark_key : str
        :attr:`BenchmarkSpec.key` of the benchmark served (settings included).
    region : str
        Region whose voxels are predicted (or whose RDM is compared).
    metric : str
        ``ridgecv``, ``ridge`` or ``rdm-pearson``.
    test_restriction : str or None
        OOD category the test set is restricted to, else None.
    fold : int
        Index of the unit's split among the benchmark's folds; 0 for single-split and rdm benchmarks.
    """

    benchmark_key: str
    region: str
    metric: str
    test_restriction: str | None
    fold: int

    def sort_key(self) -> tuple[str, int, str, str, str]:
        return (self.benchmark_key, self.fold, self.region, self.metric, self.test_restriction or "")


@dataclass(frozen=True)
class UnitWork:
    """A work unit and every cell it serves, cells sorted."""

    unit: WorkUnit
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Aggregate:
    """One aggregated score: a feature set on a benchmark (mean over subjects, then folds)."""

    model: str
    layer: str
    benchmark_key: str

    @property
    def key(self) -> str:
        """``model/layer/benchmark_key``, each part escaped."""
        return KEY_SEPARATOR.join(escape_key_component(p) for p in (self.model, self.layer, self.benchmark_key))


def _feature_sets(feature_sets: Iterable[FeatureSet | tuple[str, str]]) -> list[FeatureSet]:
    return sorted(
        {fs if isinstance(fs, FeatureSet) else FeatureSet(*fs) for fs in feature_sets},
        key=lambda fs: (fs.model, fs.layer),
    )


def _benchmarks(benchmarks: Iterable[BenchmarkSpec | str]) -> list[BenchmarkSpec]:
    specs = {b.key: b for b in (b if isinstance(b, BenchmarkSpec) else load_benchmark(b) for b in benchmarks)}
    return [specs[key] for key in sorted(specs)]


def cells_of(spec: BenchmarkSpec, subject: str) -> list[tuple[str, str | None, Cell]]:
    """(pool, split_name, cell) for each fit ``spec`` needs for ``subject``, fold order."""
    pool = spec.pool_for(subject)
    if spec.kind == "rdm":
        return [(SHARED_POOL, None, Cell(spec.key, spec.region, spec.metric, None, 0))]
    if spec.kind == "cka":
        return [(SHARED_POOL, CKA_SPLIT_NAME, Cell(spec.key, spec.region, spec.metric, None, 0))]
    return [
        (pool, split_name, Cell(spec.key, spec.region, spec.metric, spec.test_ood_category, fold))
        for fold, split_name in enumerate(spec.folds)
    ]


def plan_work(
    feature_sets: Iterable[FeatureSet | tuple[str, str]],
    benchmarks: Iterable[BenchmarkSpec | str],
) -> tuple[UnitWork, ...]:
    """The work units needed to score every feature set on every benchmark, and the cells each serves.

    Parameters
    ----------
    feature_sets : iterable of FeatureSet or (model, layer)
        Duplicates are dropped.
    benchmarks : iterable of BenchmarkSpec or str
        Specs, or identifiers/keys for :func:`load_benchmark`. Specs with the same key are one.

    Returns
    -------
    tuple of UnitWork
        Sorted by unit (model, layer, subject, pool, split; rdm first), cells sorted within each,
        so the same request always gives the same plan.
    """
    specs = _benchmarks(benchmarks)
    cells: dict[WorkUnit, set[Cell]] = defaultdict(set)
    for fs in _feature_sets(feature_sets):
        for spec in specs:
            for subject in spec.subjects:
                for pool, split_name, cell in cells_of(spec, subject):
                    cells[WorkUnit(fs.model, fs.layer, subject, pool, split_name)].add(cell)
    return tuple(
        UnitWork(unit, tuple(sorted(cells[unit], key=Cell.sort_key)))
        for unit in sorted(cells, key=WorkUnit.sort_key)
    )


def group_by_aggregate(plan: Iterable[UnitWork]) -> dict[Aggregate, tuple[tuple[WorkUnit, Cell], ...]]:
    """Which (unit, cell) results feed each aggregated score.

    Parameters
    ----------
    plan : iterable of UnitWork
        As returned by :func:`plan_work`.

    Returns
    -------
    dict of Aggregate -> tuple of (WorkUnit, Cell)
        One pair per (fold, subject), sorted by fold then subject; aggregates in sorted order.
        A benchmark's aggregate averages the subjects of each fold, then the folds.
    """
    groups: dict[Aggregate, list[tuple[WorkUnit, Cell]]] = defaultdict(list)
    for work in plan:
        for cell in work.cells:
            groups[Aggregate(work.unit.model, work.unit.layer, cell.benchmark_key)].append((work.unit, cell))
    return {
        aggregate: tuple(sorted(groups[aggregate], key=lambda pair: (pair[1].fold, pair[0].subject)))
        for aggregate in sorted(groups, key=lambda a: (a.model, a.layer, a.benchmark_key))
    }


def specs_by_key(benchmarks: Iterable[BenchmarkSpec | str]) -> Mapping[str, BenchmarkSpec]:
    """Benchmark key -> spec, for a runner that reads a cell's settings (nc filter, alphas, convention)."""
    return {spec.key: spec for spec in _benchmarks(benchmarks)}


# --------------------------------------------------------------------------------------------------
# memory per unit, known before any unit runs
# --------------------------------------------------------------------------------------------------


class WorkerMemoryError(ValueError):
    """A worker memory limit too small for a unit of the plan (the message names the unit and bytes)."""


def _plan_units(plan: Iterable) -> list[tuple[WorkUnit, list[tuple[str, BenchmarkSpec]]]]:
    """(unit, [(region, spec), ...]) from a plan_work() tuple or a runner ScorePlan (keys)."""
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
