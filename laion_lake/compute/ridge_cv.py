"""Ridge with intercept, alpha chosen by exact leave-one-out or GCV, on a centred-kernel eigendecomposition.

Holds :func:`solve_kernel_ridge_cv_eigen` and its :class:`KernelRidgeCVResult`, the per-alpha
error sums of the three selection paths (shared-alpha LOO through the QR of ``B^T``, per-target
LOO, GCV) and the refit with the chosen alpha(s). The derivations are in the docstring of
:mod:`laion_lake.compute.ridge`, which builds the decomposition and re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import blas, lapack

from laion_lake.compute.loo_fractions import GramFactor, fraction_sums, needs_direct
from laion_lake.compute.ridge_linalg import (
    DEFAULT_ALPHAS,
    DEFAULT_TARGET_BATCH_SIZE,
    ROW_BLOCK,
    Criterion,
    _check_lapack_info,
    _check_targets,
    _dual_weights,
    _gemm,
    _symmetric,
    _project_targets,
    _require_test_kernel,
    _squared_rows_times,
    _target_means,
)

if TYPE_CHECKING:
    from laion_lake.compute.ridge import CenteredKernelEigendecomposition


@dataclass(frozen=True, eq=False)
class KernelRidgeCVResult:
    """Outcome of :func:`solve_kernel_ridge_cv_eigen`.

    Attributes
    ----------
    predictions : array of shape (n_test, n_targets), or None
        Test predictions of the refit with the chosen alpha(s), intercept included.
    alpha : float or None
        The alpha shared by all targets; None when ``alpha_per_target``.
    best_alphas : array of shape (n_targets,)
        The alpha used for each target (all equal to ``alpha`` when shared).
    cv_errors : array of shape (n_alphas,) or (n_alphas, n_targets)
        Mean squared LOO (or GCV) error per candidate alpha: over samples and targets when the
        alpha is shared, over samples per target otherwise.
    candidate_alphas : array of shape (n_alphas,)
    criterion : {"loo", "gcv"}
    """

    predictions: np.ndarray | None
    alpha: float | None
    best_alphas: np.ndarray
    cv_errors: np.ndarray
    candidate_alphas: np.ndarray
    criterion: str


def _loo_error_sums_per_target(
    Q: np.ndarray,
    eigenvalues: np.ndarray,
    B: np.ndarray,
    alphas: np.ndarray,
    d_all: np.ndarray,
    target_batch_size: int,
) -> np.ndarray:
    """``sum_i (C_ij / d_i)^2`` per alpha and target, with explicit GEMMs: (n_alphas, n_targets)."""
    n, n_targets = B.shape
    sums = np.empty((len(alphas), n_targets))
    scaled_Q = np.empty((n, n), order="F")
    for a, alpha in enumerate(alphas):
        np.multiply(Q, _dual_weights(eigenvalues, alpha), out=scaled_Q)
        inverse_d = 1.0 / d_all[:, a]
        for start in range(0, n_targets, target_batch_size):
            stop = min(start + target_batch_size, n_targets)
            C = _gemm(scaled_Q, B[:, start:stop])
            C *= inverse_d[:, None]
            sums[a, start:stop] = np.einsum("ij,ij->j", C, C)
    return sums


def _loo_error_sums_shared(
    Q: np.ndarray, eigenvalues: np.ndarray, B: np.ndarray, alphas: np.ndarray, d_all: np.ndarray,
    fitted_norms: np.ndarray | None = None,
) -> np.ndarray:
    """``sum_ij (C_ij / d_i)^2`` per alpha, (n_alphas,).

    Every alpha at once by partial fractions (:func:`laion_lake.compute.loo_fractions.fraction_sums`
    on the non-constant directions, ``omega = 1 / d^2``: one (n x n) product); an alpha whose
    rounding bound there is not small and that could be the chosen one is evaluated directly (see
    :func:`_loo_error_sums_direct`). ``fitted_norms``: ``||Yc_i||^2`` (the centred targets' row
    norms, which ``Q B`` reproduces), computed from ``B`` when not given.
    """
    basis, values, B_rest = Q[:, 1:], eigenvalues[1:], B[1:]  # the constant direction has weight 0
    if fitted_norms is None:
        projected = _gemm(basis, B_rest)
        fitted_norms = np.einsum("ij,ij->i", projected, projected)
        del projected
    # fewer targets than samples (a region's voxels): G's rows are formed by blocks from B, so the
    # sweep holds one (n x n) array (Q), not two
    gram = GramFactor(B_rest) if B_rest.shape[1] < B_rest.shape[0] else _symmetric(blas.dsyrk(1.0, B_rest))
    fractions = fraction_sums(basis, values, gram, fitted_norms, 1.0 / d_all**2, alphas)
    del gram
    sums = fractions.sums.copy()
    direct = np.flatnonzero(needs_direct(fractions.error_bounds, sums))
    if direct.size:
        sums[direct] = _loo_error_sums_direct(Q, eigenvalues, B, alphas[direct], d_all[:, direct])
    return sums


def _loo_error_sums_direct(
    Q: np.ndarray, eigenvalues: np.ndarray, B: np.ndarray, alphas: np.ndarray, d_all: np.ndarray
) -> np.ndarray:
    """``sum_ij (C_ij / d_i)^2`` per alpha via ``B^T = U R``: ``Q W R^T`` by blocks of rows, (n_alphas,)."""
    n, n_targets = B.shape
    # Householder QR of B^T (n_targets x n), in place in a copy (B is kept for the refit):
    # R = the upper triangle of its first r rows, R^T R = B B^T, so the row norms of Q W R^T are
    # those of C = Q W B with r <= n_targets columns; L = R^T (n x r) is lower triangular on rows :r.
    B_transposed = np.array(B.T, order="F")
    lwork, info = lapack.dgeqrf_lwork(*B_transposed.shape)
    _check_lapack_info("dgeqrf_lwork", info)
    qr, _, _, info = lapack.dgeqrf(B_transposed, lwork=int(lwork), overwrite_a=1)
    _check_lapack_info("dgeqrf", info)
    del B_transposed
    r = min(n_targets, n)
    L = np.empty((n, r))  # R^T: lower triangular on its first r rows, dense below
    L[:r] = np.tril(qr[:r, :r].T)
    L[r:] = qr[:r, r:].T
    del qr

    sums = np.empty(len(alphas))
    for a, alpha in enumerate(alphas):
        weights = _dual_weights(eigenvalues, alpha)
        total = 0.0
        # by blocks of rows of Q W: no (n x n) scaled copy beside Q
        for start in range(0, n, ROW_BLOCK):
            rows = slice(start, min(start + ROW_BLOCK, n))
            M = (Q[rows] * weights) @ L
            total += np.einsum("ij,ij->i", M, M) @ (1.0 / d_all[rows, a] ** 2)
        sums[a] = total
    return sums


def _gcv_error_sums(
    eigenvalues: np.ndarray, B: np.ndarray, alphas: np.ndarray, per_target: bool, target_batch_size: int
) -> np.ndarray:
    """``sum_i (C_ij / mean(d))^2`` per alpha (and target): (n_alphas,) or (n_alphas, n_targets)."""
    n, n_targets = B.shape
    squared_weights = np.empty((len(alphas), n))
    mean_d = np.empty(len(alphas))
    for a, alpha in enumerate(alphas):
        weights = _dual_weights(eigenvalues, alpha)
        squared_weights[a] = weights**2
        mean_d[a] = weights.sum() / n  # columns of Q have unit norm
    if not per_target:
        return _gemm(squared_weights, np.einsum("kj,kj->k", B, B)[:, None])[:, 0] / mean_d**2
    sums = np.empty((len(alphas), n_targets))
    for start in range(0, n_targets, target_batch_size):
        stop = min(start + target_batch_size, n_targets)
        sums[:, start:stop] = _gemm(squared_weights, B[:, start:stop] ** 2)
    return sums / mean_d[:, None] ** 2


def _predict_with_alphas(
    test_in_basis: np.ndarray,
    eigenvalues: np.ndarray,
    B: np.ndarray,
    Y_mean: np.ndarray,
    best_alphas: np.ndarray,
    target_batch_size: int,
) -> np.ndarray:
    n_test, n_targets = test_in_basis.shape[0], B.shape[1]
    predictions = np.empty((n_test, n_targets))
    for alpha in np.unique(best_alphas):
        targets = np.flatnonzero(best_alphas == alpha)
        weights = _dual_weights(eigenvalues, alpha)
        for start in range(0, len(targets), target_batch_size):
            chosen = targets[start : start + target_batch_size]
            contiguous = chosen[-1] - chosen[0] + 1 == len(chosen)
            columns = slice(chosen[0], chosen[-1] + 1) if contiguous else chosen
            predictions[:, columns] = _gemm(test_in_basis, weights[:, None] * B[:, columns]) + Y_mean[columns]
    return predictions


def solve_kernel_ridge_cv_eigen(
    decomposition: CenteredKernelEigendecomposition,
    Y_train: np.ndarray,
    alphas: np.ndarray = DEFAULT_ALPHAS,
    criterion: Criterion = "loo",
    alpha_per_target: bool = False,
    target_batch_size: int = DEFAULT_TARGET_BATCH_SIZE,
    predict: bool = True,
) -> KernelRidgeCVResult:
    """Ridge with intercept, alpha chosen by exact leave-one-out (or GCV), refit and predicted.

    The default reproduces ``sklearn.linear_model.RidgeCV(alphas, alpha_per_target=False,
    fit_intercept=True)`` on its eigen-of-Gram path: the alpha minimising the mean over samples and
    targets of the squared LOO residuals, ties going to the first alpha in ``alphas``.

    Parameters
    ----------
    decomposition : CenteredKernelEigendecomposition
        From :func:`eigendecompose_centered_kernel` (with ``K_test`` when ``predict``).
    Y_train : array of shape (n_train, n_targets)
        Train targets (any float dtype; centred in float64 on their train means).
    alphas : array of shape (n_alphas,)
        Candidate regularisations, all > 0. Default ``10**k, k = -10..10``.
    criterion : {"loo", "gcv"}
        ``"loo"``: exact efficient leave-one-out. ``"gcv"``: generalized cross-validation, each
        sample's leverage replaced by the mean leverage (trace based).
    alpha_per_target : bool
        Choose one alpha per target (each target's own mean over samples) instead of one shared.
    target_batch_size : int
        Targets processed at a time in the per-target paths and the refit.
    predict : bool
        Compute test predictions with the chosen alpha(s).

    Returns
    -------
    KernelRidgeCVResult

    Notes
    -----
    Cost after the decomposition: ``Q^T Y`` (2 n^2 n_targets), then (shared alpha, LOO) ``B B^T``
    and one product of 2 n^3 flops for every alpha at once, plus a product of 2 n^2 min(n, n_targets)
    flops for each alpha where that form could round badly and the alpha could be chosen (see
    :mod:`laion_lake.compute.loo_fractions`); per alpha a GEMM of 2 n^2 n_targets (per-target LOO),
    or O(n n_targets) (GCV). Extra memory: ``B`` (n x n_targets), one transient copy of it for the
    QR, and, beside ``Q``, blocks of ``ROW_BLOCK`` (512) rows (shared alpha) or one (n x n) array
    (per-target LOO).
    """
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.all(alphas > 0):
        raise ValueError(f"alphas must be a non-empty list of values > 0, got {alphas}")
    if criterion not in ("loo", "gcv"):
        raise ValueError(f"criterion must be 'loo' or 'gcv', got {criterion!r}")
    Y_train = _check_targets(Y_train, decomposition.n_train)
    test_in_basis = _require_test_kernel(decomposition) if predict else None
    Q, eigenvalues = decomposition.eigenvectors, decomposition.eigenvalues
    n, n_targets = Y_train.shape

    Y_mean = _target_means(Y_train, target_batch_size)
    B = _project_targets(Q, Y_train, Y_mean, target_batch_size)

    if criterion == "gcv":
        sums = _gcv_error_sums(eigenvalues, B, alphas, alpha_per_target, target_batch_size)
    else:
        weights_all = np.stack([_dual_weights(eigenvalues, alpha) for alpha in alphas], axis=1)
        d_all = _squared_rows_times(Q, weights_all)  # diag of the regularised inverse, (n, n_alphas)
        if alpha_per_target:
            sums = _loo_error_sums_per_target(Q, eigenvalues, B, alphas, d_all, target_batch_size)
        else:
            centred = np.asarray(Y_train, dtype=np.float64) - Y_mean
            fitted_norms = np.einsum("ij,ij->i", centred, centred)
            del centred
            sums = _loo_error_sums_shared(Q, eigenvalues, B, alphas, d_all, fitted_norms)

    if alpha_per_target:
        cv_errors = sums / n
        best_alphas = alphas[np.argmin(cv_errors, axis=0)]  # argmin: ties -> first alpha
        alpha = None
    else:
        cv_errors = sums / (n * n_targets)
        alpha = float(alphas[np.argmin(cv_errors)])
        best_alphas = np.full(n_targets, alpha)

    predictions = None
    if predict:
        predictions = _predict_with_alphas(test_in_basis, eigenvalues, B, Y_mean, best_alphas, target_batch_size)
    return KernelRidgeCVResult(predictions, alpha, best_alphas, cv_errors, alphas, criterion)
