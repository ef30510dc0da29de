"""Run one work unit: load one subject's slices from the lake, fit once, score every cell.

A regression unit decomposes its feature set on its train set once, by the cheaper exact route
(:func:`laion_lake.compute.solvers.decompose_train_features`: a thin SVD of the features when
they are fewer than the train stimuli, else the eigendecomposition of the centred kernel, built by
streaming feature chunks); every region, both ridge metrics and every test restriction (the nine
``ood_<category>`` cells) reuse that decomposition. Responses come through the per-process cache
(:mod:`laion_lake.scoring.cache`): a subject's regions are read once per process, not once per unit.
Inputs no score can be computed from (a constant feature set, no voxel past the NC threshold,
features that over- or underflow float64) raise a named
:class:`~laion_lake.compute.solvers.NumericalInputError`, never a silent NaN. An rdm unit builds the model RDM once and
compares it with each region's brain RDM. One subject at a time, dense: no block-diagonal array.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from laion_lake.benchmarks import BenchmarkSpec
from laion_lake.compute.ceiling import (
    brainscore_ceiled_score,
    brainscore_ceiling,
    nsd_ceiled_score,
    nsd_noise_ceiling_for_test_design,
    nsd_normalized_r2,
    rdm_ceiled_score,
    rdm_ceiling,
)
from laion_lake.compute.correlation import pearson_r_per_column, representational_dissimilarity_matrix, spearman_rdm_similarity
from laion_lake.compute.solvers import ConstantInputError, FeatureRangeError, NumericalInputError, decompose_train_features
from laion_lake.scoring.cache import Responses, features_for, responses_for
from laion_lake.scoring.plan import Cell, UnitWork, WorkUnit
from laion_lake.scoring.reads import feature_array, read_feature_rows, rows_of

# feature columns streamed per kernel GEMM step: bounds memory for very wide layers
FEATURE_CHUNK_SIZE = 2048
# feature blocks up to this size (float32 as stored) are read whole (one read); wider ones are
# streamed chunk by chunk, so that a unit never holds a (stimuli x features) block of a wide layer
IN_MEMORY_FEATURE_BYTES = 256 << 20


@dataclass(frozen=True)
class CellResult:
    """One subject's (or fold's) score on one cell.

    Attributes
    ----------
    raw : float
        Median over voxels of the per-voxel Pearson r (regression), or the Spearman r of the RDMs.
    ceiling : float
        The convention's ceiling (for ``nsd``, the median per-voxel noise ceiling as r, for display).
    ceiled : float
        The ceiled score under the convention.
    alpha : float or None
        The alpha of the fit (ridgecv's choice), None for rdm.
    voxel_r : array of shape (n_voxels,), float64, or None
        Per-voxel Pearson r of a regression cell, in the order of ``neuroid``; not in :meth:`to_dict`.
    neuroid : str array of shape (n_voxels,), or None
        The neuroid ids of the cell's responses; not in :meth:`to_dict`.
    voxel_r2_nsd : array of shape (n_voxels,), float64, or None
        Per-voxel NC-normalised r^2 under the ``nsd`` convention, ``r_v**2 / (NC_v / 100)``
        (:func:`~laion_lake.compute.ceiling.nsd_normalized_r2`), whatever the cell's convention;
        not in :meth:`to_dict`.
    voxel_nc_nsd : array of shape (n_voxels,), float64, or None
        The ``NC_v`` (percent) used for it: each voxel's ncsnr for the cell's test design as
        averaged (its test stimuli's repeat counts); not in :meth:`to_dict`.
    """

    unit_key: str
    benchmark_key: str
    subject: str
    fold: int
    region: str
    metric: str
    test_restriction: str | None
    convention: str
    raw: float
    ceiling: float
    ceiled: float
    alpha: float | None
    n_train: int
    n_test: int
    n_voxels: int
    voxel_r: np.ndarray | None = field(default=None, compare=False, repr=False)
    neuroid: np.ndarray | None = field(default=None, compare=False, repr=False)
    voxel_r2_nsd: np.ndarray | None = field(default=None, compare=False, repr=False)
    voxel_nc_nsd: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The scalar fields (JSON-ready but for NaN); the per-voxel arrays are left out."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _ARRAY_FIELDS}


_ARRAY_FIELDS = ("voxel_r", "neuroid", "voxel_r2_nsd", "voxel_nc_nsd")


def _voxel_group(spec: BenchmarkSpec) -> tuple[float | None, str]:
    return (spec.nc_threshold, spec.nc_coord)


def regression_ceiled(spec: BenchmarkSpec, r: np.ndarray, nc: np.ndarray, ncsnr: np.ndarray, test_repeats: np.ndarray) -> tuple[float, float, float]:
    """(raw, ceiling, ceiled) of per-voxel correlations under the spec's convention.

    Parameters
    ----------
    r : array of shape (n_voxels,)
        Per-voxel Pearson r on the test stimuli (NaN for a constant prediction or response).
    nc : array of shape (n_voxels,)
        The spec's noise-ceiling coordinate, percent (``brainscore`` ceiling).
    ncsnr : array of shape (n_voxels,)
        Per-voxel ncsnr (``nsd`` ceiling for the test design).
    test_repeats : int array of shape (n_test,)
        Repeats averaged per test stimulus.
    """
    finite = np.isfinite(r)
    raw = float(np.median(r[finite])) if finite.any() else float("nan")
    if spec.convention == "brainscore":
        ceiling = brainscore_ceiling(nc)
        return raw, ceiling, brainscore_ceiled_score(raw, ceiling)
    nc_test = nsd_noise_ceiling_for_test_design(ncsnr, test_repeats)
    ceiling = float(np.median(np.sqrt(nc_test / 100.0)))
    return raw, ceiling, nsd_ceiled_score(r[finite], nc_test[finite])


def _context(unit: WorkUnit, region: str | None = None) -> str:
    where = f"{unit.model}/{unit.layer} on {unit.subject}"
    return f"{where} {region}" if region else where


def _named(error: NumericalInputError, context: str) -> NumericalInputError:
    """The same error class, its message prefixed with the model, layer, subject (and region)."""
    return type(error)(f"{context}: {error}")


def _check_voxels(responses: Responses, unit: WorkUnit, region: str, threshold: float | None, nc_coord: str) -> None:
    if responses.n_neuroids == 0:
        rule = "no filter" if threshold is None else f"{nc_coord} > {threshold:g}"
        raise ConstantInputError(f"{_context(unit, region)}: no voxel passes the noise-ceiling threshold ({rule}); the cell has no score")


class ColumnChunks:
    """A lazy (rows x features) block of a stored feature array, read by column slices.

    What the streaming kernel and RDM builders read from: ``X[:, a:b]`` gives a numpy array, so no
    (stimuli x features) block of a wide layer is ever held whole. Reads are aligned to the
    store's feature chunks: the storage-chunk-wide block holding ``a:b`` is read once (float32,
    as stored) and kept until a slice outside it is asked for, so a solver streaming narrower
    slices never reads a stored chunk twice; only the row chunks holding one of ``rows`` are read
    (Zarr directly, never through a Dask cluster the unit may be running on).
    """

    def __init__(self, array: Any, rows: np.ndarray) -> None:
        self.array, self.row_index = array, np.asarray(rows)
        self.shape = (len(self.row_index), int(array.shape[1]))
        self.nbytes = self.shape[0] * self.shape[1] * array.dtype.itemsize
        self._bounds = np.append(np.arange(0, self.shape[1], array.chunks[1]), self.shape[1])
        self._block: tuple[int, int, np.ndarray] | None = None
        self._views: list[RowsOf] = []

    def _read_block(self, column: int) -> tuple[int, int, np.ndarray]:
        index = int(np.searchsorted(self._bounds, column, side="right")) - 1
        start, stop = int(self._bounds[index]), int(self._bounds[index + 1])
        self._block = None  # free the previous block before reading the next
        self._block = (start, stop, read_feature_rows(self.array, self.row_index, slice(start, stop)))
        return self._block

    def __getitem__(self, index: Any) -> Any:
        if not (isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None) and isinstance(index[1], slice)):
            view = RowsOf(self, np.asarray(index))
            self._views.append(view)
            return view
        first, last, _ = index[1].indices(self.shape[1])
        parts = []
        while first < last:
            start, stop, block = self._block if self._block and self._block[0] <= first < self._block[1] else self._read_block(first)
            parts.append(block[:, first - start : min(last, stop) - start])
            first = min(last, stop)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


class RowsOf:
    """Rows of a :class:`ColumnChunks` (train or test), sharing its block: a stored chunk is read once for both."""

    def __init__(self, parent: ColumnChunks, rows: np.ndarray) -> None:
        self.parent, self.rows = parent, rows
        self.shape = (len(rows), parent.shape[1])
        self.nbytes = parent.nbytes // max(parent.shape[0], 1) * len(rows)

    def __getitem__(self, index: Any) -> np.ndarray:
        out = self.parent[index][self.rows]
        if isinstance(index, tuple) and isinstance(index[1], slice) and index[1].indices(self.shape[1])[1] == self.shape[1]:
            # every view has read the last columns: the solver is done streaming, so the block is
            # released before it decomposes (it would otherwise sit beside the kernel at the peak)
            self.finished = True
            if all(getattr(view, "finished", False) for view in self.parent._views):
                self.parent._block = None
        return out


def _features_block(lake: Any, unit: WorkUnit, ids: np.ndarray) -> Any:
    """The unit's feature rows: read whole when small, else lazy, to be streamed by column chunks."""
    cached = features_for(lake, unit.model, unit.layer, ids)
    if cached is not None:
        return cached
    array, stored_ids = feature_array(lake, unit.model, unit.layer)
    rows = rows_of(stored_ids, np.asarray(ids).astype(str))
    if rows is None:
        lake.features(unit.model, unit.layer, ids)  # raises the lake's named error
        raise KeyError(f"stimuli missing from {unit.model}/{unit.layer}")
    if len(rows) * array.shape[1] * array.dtype.itemsize <= IN_MEMORY_FEATURE_BYTES:
        return read_feature_rows(array, rows)
    return ColumnChunks(array, rows)


def run_regression_unit(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec]) -> list[CellResult]:
    """Score every cell of a regression unit (one decomposition, by the cheaper exact route)."""
    unit = work.unit
    train_ids, test_ids = lake.split(unit.pool, unit.split_name)
    ids = np.concatenate([train_ids, test_ids])
    order = np.argsort(ids)
    ids = ids[order]
    is_train = np.zeros(len(ids), bool)
    is_train[np.searchsorted(ids, train_ids)] = True
    features = _features_block(lake, unit, ids)
    X_train, X_test = features[np.flatnonzero(is_train)], features[np.flatnonzero(~is_train)]
    del features
    try:
        decomposition = decompose_train_features(X_train, X_test, feature_chunk_size=FEATURE_CHUNK_SIZE)
    except NumericalInputError as error:
        raise _named(error, _context(unit)) from None
    del X_train, X_test
    test_categories = lake.stimuli["ood_category"].sel(stimulus_id=ids[~is_train]).values

    by_region: dict[tuple[str, float | None, str], list[Cell]] = defaultdict(list)
    for cell in work.cells:
        by_region[(cell.region, *_voxel_group(specs[cell.benchmark_key]))].append(cell)
    groups = sorted(by_region.items(), key=lambda item: str(item[0]))
    responses = {}
    for group, _ in groups:
        region, threshold, nc_coord = group
        responses[group] = responses_for(lake, unit.subject, region, ids, threshold, nc_coord)
        _check_voxels(responses[group], unit, region, threshold, nc_coord)

    # fits: (metric, alphas) -> region group -> (predictions, alpha); ridgecv of every region in one
    # sweep (the primal route shares its per-alpha work across regions)
    fits: dict[tuple[str, tuple[float, ...]], dict[tuple, tuple[np.ndarray, float]]] = {}
    for group, cells in groups:
        for cell in cells:
            spec = specs[cell.benchmark_key]
            fits.setdefault((cell.metric, tuple(spec.alphas)), {})[group] = None  # type: ignore[assignment]
    for (metric, alphas), members in fits.items():
        names = list(members)
        if metric == "ridgecv":
            # a generator: each region's train rows are copied as its solve starts and freed after it,
            # never every region's at once beside the sweep's (n x n) arrays
            outcomes = decomposition.ridgecv_many((responses[g].values[is_train] for g in names), alphas=np.asarray(alphas))
            for group, outcome in zip(names, outcomes):
                members[group] = (outcome.predictions, float(outcome.alpha))
        else:
            for group in names:
                members[group] = (decomposition.ridge(responses[group].values[is_train], alpha=alphas[0]), float(alphas[0]))

    results = []
    for group, cells in groups:
        region, threshold, nc_coord = group
        block = responses[group]
        Y_test = np.asarray(block.values[~is_train], dtype=np.float64)
        test_repeats = block.n_repeats[~is_train]
        nc, ncsnr = block.coords[nc_coord], block.coords["ncsnr"]
        for cell in cells:
            spec = specs[cell.benchmark_key]
            predictions, alpha = fits[(cell.metric, tuple(spec.alphas))][group]
            rows = np.ones(len(Y_test), bool) if cell.test_restriction is None else test_categories == cell.test_restriction
            r = pearson_r_per_column(predictions[rows], Y_test[rows])
            if not np.isfinite(r).any():
                raise FeatureRangeError(
                    f"{_context(unit, region)}: every voxel's prediction (or response) is constant on the test stimuli "
                    f"(alpha {alpha:g}): the fitted signal under- or overflows float64 next to the intercept; rescale the features"
                )
            raw, ceiling, ceiled = regression_ceiled(spec, r, nc, ncsnr, test_repeats[rows])
            # per-voxel nsd quantities for every regression cell (kept with the record, #12)
            nc_nsd = nsd_noise_ceiling_for_test_design(ncsnr, test_repeats[rows])
            results.append(
                CellResult(unit.key, cell.benchmark_key, unit.subject, cell.fold, region, cell.metric, cell.test_restriction,
                           spec.convention, raw, ceiling, ceiled, alpha, int(is_train.sum()), int(rows.sum()), int(block.n_neuroids),
                           voxel_r=r, neuroid=np.asarray(block.coords.get("neuroid_id", block.coords["neuroid"])).astype(str),
                           voxel_r2_nsd=nsd_normalized_r2(r, nc_nsd), voxel_nc_nsd=np.asarray(nc_nsd, dtype=np.float64))
            )
    return results


def rdm_stimuli(lake: Any) -> np.ndarray:
    """The RDM benchmark's stimuli: every shared, non-OOD image (1,121 in the real dataset), sorted."""
    table = lake.stimuli
    keep = table["shared"].values & (table["ood_category"].values == "")
    return np.sort(table["stimulus_id"].values[keep])


def _safe_rdm(patterns: Any, what: str) -> np.ndarray:
    """RDM of ``patterns``, refusing a constant pattern (its correlations are undefined) by name."""
    if patterns.shape[1] < 2:
        raise ConstantInputError(f"{what}: {patterns.shape[1]} unit(s); an RDM needs at least 2 to correlate patterns")
    rdm = representational_dissimilarity_matrix(patterns)
    constant = np.isnan(np.diag(rdm))
    if constant.any():
        raise ConstantInputError(f"{what}: {int(constant.sum())} stimulus pattern(s) are constant (first at row {int(np.flatnonzero(constant)[0])}): their dissimilarities are undefined")
    return rdm


def run_rdm_unit(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec]) -> list[CellResult]:
    """Score every cell of an rdm unit: one model RDM (features streamed by columns), one brain RDM per region."""
    unit = work.unit
    ids = rdm_stimuli(lake)
    features = _features_block(lake, unit, ids)
    model_rdm = _safe_rdm(features, f"{unit.model}/{unit.layer} features on the rdm stimuli")
    del features
    results = []
    for cell in work.cells:
        spec = specs[cell.benchmark_key]
        responses = responses_for(lake, unit.subject, cell.region, ids, spec.nc_threshold, spec.nc_coord)
        _check_voxels(responses, unit, cell.region, spec.nc_threshold, spec.nc_coord)
        brain_rdm = _safe_rdm(responses.values, f"{unit.subject} {cell.region} responses on the rdm stimuli")
        raw = spearman_rdm_similarity(model_rdm, brain_rdm)
        ceiling = rdm_ceiling(responses.coords[spec.nc_coord])
        results.append(
            CellResult(unit.key, cell.benchmark_key, unit.subject, cell.fold, cell.region, cell.metric, None,
                       spec.convention, raw, ceiling, rdm_ceiled_score(raw, ceiling), None, 0, len(ids), int(responses.n_neuroids))
        )
    return results


def run_unit(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec]) -> list[CellResult]:
    """Every cell result of one work unit."""
    if work.unit.kind == "cka":
        from laion_lake.scoring.cka_unit import run_cka_unit

        return run_cka_unit(lake, work, specs)
    if work.unit.kind == "rdm":
        return run_rdm_unit(lake, work, specs)
    return run_regression_unit(lake, work, specs)


__all__ = ["CellResult", "WorkUnit", "run_unit", "run_regression_unit", "run_rdm_unit", "rdm_stimuli"]
