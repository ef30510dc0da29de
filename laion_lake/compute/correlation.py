"""Pearson and Spearman correlations, and representational dissimilarity matrices (RDMs).

Everything is computed in float64 whatever the input dtype. Degenerate inputs give NaN, never an
exception or a silent 0: a column (or a stimulus pattern) whose values are all equal has no
defined correlation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.stats
from scipy.linalg import blas

DEFAULT_UNIT_CHUNK_SIZE = 4096


def _constant_columns(values: np.ndarray) -> np.ndarray:
    """True for columns whose values are all equal (the mean may round, so test the values)."""
    return np.all(values == values[:1], axis=0)


def pearson_r_per_column(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``predictions`` with the same column of ``targets``.

    Parameters
    ----------
    predictions : array of shape (n_samples, n_targets)
    targets : array of shape (n_samples, n_targets)

    Returns
    -------
    r : array of shape (n_targets,), float64
        NaN where either column is constant (zero variance; tested on the values, not on a
        rounded variance) or holds a NaN; otherwise in [-1, 1] (clipped against rounding).
    """
    a = np.asarray(predictions, dtype=np.float64)
    b = np.asarray(targets, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two arrays of the same 2-D shape, got {a.shape} and {b.shape}")
    if a.shape[0] < 2:
        return np.full(a.shape[1], np.nan)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ij,ij->j", a, b) / np.sqrt(np.einsum("ij,ij->j", a, a) * np.einsum("ij,ij->j", b, b))
    degenerate = _constant_columns(np.asarray(predictions)) | _constant_columns(np.asarray(targets))
    r[degenerate] = np.nan
    return np.clip(r, -1.0, 1.0)


def _power_of_two_at_least(values: np.ndarray) -> np.ndarray:
    """The smallest power of two >= each value (1 for 0), so that dividing by it is exact."""
    _, exponents = np.frexp(values)
    return np.where(values > 0, np.ldexp(1.0, exponents), 1.0)


def representational_dissimilarity_matrix(
    patterns: Any, unit_chunk_size: int = DEFAULT_UNIT_CHUNK_SIZE
) -> np.ndarray:
    """RDM = 1 - Pearson correlation between stimulus patterns (rows), across units (columns).

    Parameters
    ----------
    patterns : array of shape (n_stimuli, n_units)
        One response pattern per stimulus: voxels, or model features. Anything supporting
        ``patterns[:, a:b]`` and ``np.asarray`` on it; read in chunks of ``unit_chunk_size``
        columns, two passes (row means first, so that large-mean features do not cancel).
    unit_chunk_size : int

    Returns
    -------
    rdm : array of shape (n_stimuli, n_stimuli), float64
        Symmetric, diagonal 0, values in [0, 2]. Rows and columns of a constant pattern are NaN
        (its correlation is undefined), its diagonal entry included.
    """
    n_stimuli, n_units = patterns.shape
    if n_units < 2:
        raise ValueError(f"need at least 2 units to correlate patterns, got {n_units}")

    # Correlation is invariant to each pattern's offset and scale, so each row is divided by its
    # largest magnitude (a power of two: exact) before any product: patterns at 1e200 or 1e-300 give
    # the same RDM as at 1 instead of inf or 0. The row sums are kept in units of the running
    # maximum, so one pass finds both.
    row_sums = np.zeros(n_stimuli)
    row_scales = np.zeros(n_stimuli)
    constant = np.ones(n_stimuli, dtype=bool)
    first_values = np.asarray(patterns[:, 0:1], dtype=np.float64)[:, 0]
    for start in range(0, n_units, unit_chunk_size):
        chunk = np.asarray(patterns[:, start : start + unit_chunk_size], dtype=np.float64)
        constant &= np.all(chunk == first_values[:, None], axis=1)
        scales = np.maximum(row_scales, _power_of_two_at_least(np.abs(chunk).max(axis=1)))
        with np.errstate(invalid="ignore"):
            row_sums *= np.where(row_scales > 0, row_scales / scales, 0.0)
        row_sums += (chunk / scales[:, None]).sum(axis=1)
        row_scales = scales
    row_means = row_sums / n_units

    gram = np.zeros((n_stimuli, n_stimuli), order="F")
    for start in range(0, n_units, unit_chunk_size):
        chunk = np.asarray(patterns[:, start : start + unit_chunk_size], dtype=np.float64)
        chunk = chunk / row_scales[:, None] - row_means[:, None]
        gram = blas.dsyrk(1.0, np.ascontiguousarray(chunk).T, beta=1.0, c=gram, trans=1, overwrite_c=1)
    upper = np.triu_indices(n_stimuli, k=1)
    gram.T[upper] = gram[upper]  # dsyrk filled the upper triangle

    with np.errstate(invalid="ignore", divide="ignore"):
        inverse_norms = 1.0 / np.sqrt(np.diag(gram))
    inverse_norms[constant] = np.nan
    correlation = gram * inverse_norms[:, None] * inverse_norms[None, :]
    rdm = 1.0 - np.clip(correlation, -1.0, 1.0)
    rdm.T[upper] = rdm[upper]  # exactly symmetric: (g a_i) a_j and (g a_j) a_i round differently
    diagonal = np.arange(n_stimuli)
    rdm[diagonal, diagonal] = np.where(constant, np.nan, 0.0)
    return np.ascontiguousarray(rdm)


def upper_triangle(matrix: np.ndarray) -> np.ndarray:
    """Entries strictly above the diagonal, row by row.

    Parameters
    ----------
    matrix : array of shape (n, n)

    Returns
    -------
    values : array of shape (n * (n - 1) // 2,)
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {matrix.shape}")
    return matrix[np.triu_indices(matrix.shape[0], k=1)]


def spearman_r(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two vectors, ties given their average rank.

    Equal to ``scipy.stats.spearmanr(a, b).statistic``. NaN if either vector holds a NaN or is
    constant, or has fewer than 2 values.

    Parameters
    ----------
    a, b : arrays of shape (n,)
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"vectors of different lengths: {a.shape[0]} and {b.shape[0]}")
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    ranks = np.stack([scipy.stats.rankdata(a), scipy.stats.rankdata(b)], axis=1)
    return float(pearson_r_per_column(ranks[:, :1], ranks[:, 1:])[0])


def spearman_rdm_similarity(rdm_a: np.ndarray, rdm_b: np.ndarray) -> float:
    """Spearman correlation of the upper triangles (diagonal excluded) of two RDMs.

    Parameters
    ----------
    rdm_a, rdm_b : arrays of shape (n_stimuli, n_stimuli)
        Same stimuli in the same order.

    Returns
    -------
    rho : float
        NaN if either triangle holds a NaN (a constant pattern) or is constant.
    """
    if np.shape(rdm_a) != np.shape(rdm_b):
        raise ValueError(f"RDMs of different shapes: {np.shape(rdm_a)} and {np.shape(rdm_b)}")
    return spearman_r(upper_triangle(rdm_a), upper_triangle(rdm_b))
