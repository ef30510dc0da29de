"""Planning the work of scoring feature sets on benchmarks: pure, deterministic, no I/O.

The expensive step of a regression benchmark is the kernel of the train features and its
eigendecomposition. It depends only on the feature set, the subject and the train set, not on the
region, the test set or the ceiling convention, so one :class:`WorkUnit` per
(model, layer, subject, pool, stored split) serves every (benchmark, region, fold) that trains on
it: all four headline regions, ridge and ridgecv, and all nine ``ood_<category>`` benchmarks (the
``ood`` train set restricted only at test time). RDM benchmarks need no fit and get their own
units, one per subject. :func:`group_by_aggregate` inverts the plan: which (unit, cell) results
one aggregated score is made of. :func:`check_memory` (in :mod:`laion_lake.scoring.memory`,
re-exported here: it looks at a lake, through lazy metadata only) states each unit's peak memory
from its shapes and refuses a worker memory limit too small for one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import storage_schemas.names as _names
from laion_lake.benchmarks import SHARED_POOL, BenchmarkSpec, load_benchmark
from laion_lake.scoring.memory import (  # re-exported: the memory checks moved to memory
    MemoryNeeds,
    WorkerMemoryError,
    _cache_bound,
    _plan_units,
    _solver_bytes,
    _unit_parts,
    check_memory,
    process_peak_bytes,
    unit_peak_bytes,
)

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
