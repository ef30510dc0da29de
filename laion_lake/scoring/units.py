"""Run one work unit: load one subject's slices lazily from the lake, fit once, score every cell.

A regression unit builds the centred kernel of its feature set on its train set and
eigendecomposes it once; every region, both ridge metrics and every test restriction (the nine
``ood_<category>`` cells) reuse that decomposition. An rdm unit builds the model RDM once and
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
    rdm_ceiled_score,
    rdm_ceiling,
)
from laion_lake.compute.correlation import pearson_r_per_column, representational_dissimilarity_matrix, spearman_rdm_similarity
from laion_lake.compute.kernel import compute_centered_linear_kernels
from laion_lake.compute.ridge import eigendecompose_centered_kernel
from laion_lake.scoring.plan import Cell, UnitWork, WorkUnit

# feature columns streamed per kernel GEMM step: bounds memory for very wide layers
FEATURE_CHUNK_SIZE = 8192
# feature sets up to this size are read whole (one read); wider ones are streamed chunk by chunk
IN_MEMORY_FEATURE_BYTES = 1 << 30


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
    voxel_r : array of shape (n_voxels,) or None
        Per-voxel Pearson r (float64) of a regression cell, in the order of ``neuroid``; not in :meth:`to_dict`.
    neuroid : array of str, shape (n_voxels,), or None
        The neuroid ids of ``voxel_r``.
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
    voxel_r: np.ndarray | None = field(default=None, repr=False, compare=False)
    neuroid: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Every scalar field (JSON-able); the per-voxel arrays are left out."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("voxel_r", "neuroid")}


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


def run_regression_unit(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec]) -> list[CellResult]:
    """Score every cell of a regression unit (one kernel and one eigendecomposition)."""
    unit = work.unit
    train_ids, test_ids = lake.split(unit.pool, unit.split_name)
    ids = np.concatenate([train_ids, test_ids])
    order = np.argsort(ids)
    ids = ids[order]
    is_train = np.zeros(len(ids), bool)
    is_train[np.searchsorted(ids, train_ids)] = True
    features = lake.features(unit.model, unit.layer, ids).data
    X_train, X_test = features[np.flatnonzero(is_train)], features[np.flatnonzero(~is_train)]
    if features.nbytes <= IN_MEMORY_FEATURE_BYTES:
        X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    # else the kernel streams feature chunks from the lake, so a wide layer never sits whole in memory
    K_train, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=FEATURE_CHUNK_SIZE)
    decomposition = eigendecompose_centered_kernel(K_train, K_test, overwrite_kernel=True)
    del K_train, K_test
    test_categories = lake.stimuli["ood_category"].sel(stimulus_id=ids[~is_train]).values

    by_region: dict[tuple[str, float | None, str], list[Cell]] = defaultdict(list)
    for cell in work.cells:
        by_region[(cell.region, *_voxel_group(specs[cell.benchmark_key]))].append(cell)
    results = []
    for (region, threshold, nc_coord), cells in sorted(by_region.items(), key=lambda item: str(item[0])):
        responses = lake.responses(unit.subject, region, ids, nc_threshold=threshold, nc_coord=nc_coord)
        Y = np.asarray(responses.values, dtype=np.float64)
        Y_train, Y_test = Y[is_train], Y[~is_train]
        test_repeats = responses["n_repeats"].values[~is_train]
        nc, ncsnr = responses[nc_coord].values, responses["ncsnr"].values
        fits: dict[tuple[str, tuple[float, ...]], tuple[np.ndarray, float]] = {}
        for cell in cells:
            spec = specs[cell.benchmark_key]
            fit_key = (cell.metric, tuple(spec.alphas))
            if fit_key not in fits:
                if cell.metric == "ridgecv":
                    outcome = decomposition.ridgecv(Y_train, alphas=np.asarray(spec.alphas))
                    fits[fit_key] = (outcome.predictions, float(outcome.alpha))
                else:
                    fits[fit_key] = (decomposition.ridge(Y_train, alpha=spec.alphas[0]), float(spec.alphas[0]))
            predictions, alpha = fits[fit_key]
            rows = np.ones(len(Y_test), bool) if cell.test_restriction is None else test_categories == cell.test_restriction
            r = pearson_r_per_column(predictions[rows], Y_test[rows])
            raw, ceiling, ceiled = regression_ceiled(spec, r, nc, ncsnr, test_repeats[rows])
            results.append(
                CellResult(unit.key, cell.benchmark_key, unit.subject, cell.fold, region, cell.metric, cell.test_restriction,
                           spec.convention, raw, ceiling, ceiled, alpha, int(is_train.sum()), int(rows.sum()), int(Y.shape[1]),
                           voxel_r=np.asarray(r, dtype=np.float64), neuroid=responses["neuroid_id"].values.astype(str))
            )
    return results


def rdm_stimuli(lake: Any) -> np.ndarray:
    """The RDM benchmark's stimuli: every shared, non-OOD image (1,121 in the real dataset), sorted."""
    table = lake.stimuli
    keep = table["shared"].values & (table["ood_category"].values == "")
    return np.sort(table["stimulus_id"].values[keep])


def run_rdm_unit(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec]) -> list[CellResult]:
    """Score every cell of an rdm unit: one model RDM, one brain RDM per region."""
    unit = work.unit
    ids = rdm_stimuli(lake)
    features = np.asarray(lake.features(unit.model, unit.layer, ids).values, dtype=np.float64)
    model_rdm = representational_dissimilarity_matrix(features)
    results = []
    for cell in work.cells:
        spec = specs[cell.benchmark_key]
        responses = lake.responses(unit.subject, cell.region, ids, nc_threshold=spec.nc_threshold, nc_coord=spec.nc_coord)
        brain_rdm = representational_dissimilarity_matrix(np.asarray(responses.values, dtype=np.float64))
        raw = spearman_rdm_similarity(model_rdm, brain_rdm)
        ceiling = rdm_ceiling(responses[spec.nc_coord].values)
        results.append(
            CellResult(unit.key, cell.benchmark_key, unit.subject, cell.fold, cell.region, cell.metric, None,
                       spec.convention, raw, ceiling, rdm_ceiled_score(raw, ceiling), None, 0, len(ids), int(responses.sizes["neuroid"]))
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
