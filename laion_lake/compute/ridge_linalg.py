"""The BLAS wrapper, constants and per-target preparation steps shared by the ridge solves.

Holds the defaults (candidate alphas, target batch size, criterion names), :func:`_gemm` (every
heavy product of the ridge modules goes through numpy's BLAS), and the steps every solve on a
:class:`~laion_lake.compute.ridge.CenteredKernelEigendecomposition` takes first: checking the
targets, their train means, their projection onto the eigenbasis, and the dual weights
``1 / (lam + alpha)``. Used by :mod:`laion_lake.compute.ridge`, :mod:`laion_lake.compute.ridge_cv`
and the primal route; arrays in, arrays out, no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from laion_lake.compute.ridge import CenteredKernelEigendecomposition

DEFAULT_ALPHAS = 10.0 ** np.arange(-10, 11)
DEFAULT_TARGET_BATCH_SIZE = 1024

Criterion = Literal["loo", "gcv"]
ROW_BLOCK = 512  # rows of an (n x n) basis scaled or squared at a time: no (n x n) temporary


def _squared_rows_times(Q: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(Q * Q) @ weights`` by blocks of rows of ``Q``: shape (n, weights.shape[1]), no (n x n) temporary."""
    out = np.empty((Q.shape[0], weights.shape[1]))
    for start in range(0, Q.shape[0], ROW_BLOCK):
        rows = slice(start, min(start + ROW_BLOCK, Q.shape[0]))
        out[rows] = np.square(Q[rows]) @ weights
    return out


def _gemm(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """``op(a) @ op(b)`` through numpy's BLAS, F-ordered, without copying C- or F-ordered operands.

    numpy and scipy wheels each bundle their own OpenBLAS. Units run concurrently in one process,
    one BLAS thread each, and scipy's (0.3.30 in scipy 1.17) runs calls from concurrent threads one
    at a time (two threads' DGEMMs took 1.6-1.8x as long as one alone, numpy's 1.0x): the hot
    products and the primal SVD therefore go through numpy. The result is computed as the
    transpose of ``op(b)^T @ op(a)^T`` (which numpy writes in C order), so it is F-ordered, as the
    LAPACK-facing code of the dual route expects.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    return np.matmul(op_b.T, op_a.T).T


def _symmetric(upper: np.ndarray, block: int = 512) -> np.ndarray:
    """The full symmetric matrix from the upper triangle a SYRK wrote, in place, by column blocks
    (an (n x n) Gram matrix is never copied, nor indexed by its n^2 / 2 pairs)."""
    for start in range(0, upper.shape[0], block):
        stop = min(start + block, upper.shape[0])
        upper[start:stop, :start] = upper[:start, start:stop].T
        square = upper[start:stop, start:stop]
        lower = np.tril_indices(stop - start, k=-1)
        square[lower] = square.T[lower]
    return upper


def _check_lapack_info(routine: str, info: int) -> None:
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK {routine} failed with info = {info}")


def _dual_weights(eigenvalues: np.ndarray, alpha: float) -> np.ndarray:
    """``1 / (lam + alpha)``, with weight 0 for the (unpenalised, intercept) constant direction 0."""
    weights = 1.0 / (eigenvalues + alpha)
    weights[0] = 0.0
    return weights


def _check_targets(Y_train: np.ndarray, n_train: int) -> np.ndarray:
    if Y_train.ndim != 2:
        raise ValueError(f"Y_train must be 2-D (n_samples, n_targets), got shape {Y_train.shape}")
    if Y_train.shape[0] != n_train:
        raise ValueError(f"Y_train has {Y_train.shape[0]} rows, the kernel has n_train = {n_train}")
    return Y_train


def _target_means(Y_train: np.ndarray, target_batch_size: int) -> np.ndarray:
    """Train mean of each target, refusing NaN or inf (they would poison every LOO value)."""
    n_targets = Y_train.shape[1]
    means = np.empty(n_targets)
    for start in range(0, n_targets, target_batch_size):
        stop = min(start + target_batch_size, n_targets)
        means[start:stop] = np.asarray(Y_train[:, start:stop], dtype=np.float64).mean(axis=0)
    if not np.all(np.isfinite(means)):
        bad = np.flatnonzero(~np.isfinite(means))
        raise ValueError(f"Y_train holds NaN or inf in {bad.size} target(s), e.g. column {bad[0]}")
    return means


def _project_target_batch(
    Q: np.ndarray, Y_train: np.ndarray, Y_mean: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """``Q^T (Y - mean)`` for targets ``start:stop``: shape (n_train, stop - start)."""
    Yc = np.asarray(Y_train[:, start:stop], dtype=np.float64) - Y_mean[start:stop]
    return _gemm(Q, Yc, trans_a=True)


def _project_targets(
    Q: np.ndarray, Y_train: np.ndarray, Y_mean: np.ndarray, target_batch_size: int
) -> np.ndarray:
    n_targets = Y_train.shape[1]
    B = np.empty((Q.shape[0], n_targets), order="F")  # column slices stay contiguous
    for start in range(0, n_targets, target_batch_size):
        stop = min(start + target_batch_size, n_targets)
        B[:, start:stop] = _project_target_batch(Q, Y_train, Y_mean, start, stop)
    return B


def _require_test_kernel(decomposition: CenteredKernelEigendecomposition) -> np.ndarray:
    if decomposition.test_kernel_in_eigenbasis is None:
        raise ValueError("the decomposition was built without K_test: there is nothing to predict")
    return decomposition.test_kernel_in_eigenbasis
