"""Dual (kernel) ridge regression for many targets, with efficient leave-one-out alpha selection.

The expensive step, the eigendecomposition of the centred train kernel, is done once by
:func:`eigendecompose_centered_kernel`; the result then serves any number of target matrices (one
per brain region) and both metrics, fixed-alpha ``ridge`` and ``ridgecv``. The
(n_features x n_targets) coefficient matrix is never built: predictions are
``K_test @ dual_coef + mean(Y_train)``, computed in the eigenbasis.

Intercept. Fitting an intercept is ridge on centred features and targets with the constant
direction left unpenalised. The centred kernel annihilates the constant vector, so the constant
direction is split off exactly (a Householder reflection maps it to the first coordinate) and the
remaining (n - 1) x (n - 1) block is eigendecomposed. The constant direction then gets weight 0 in
every solve, which is what scikit-learn's ``RidgeCV(fit_intercept=True)`` does on its eigen-of-Gram
path (older versions by eigendecomposing ``Kc + 1 1^T`` and zeroing the weight of the constant
eigenvector, newer ones by subtracting its contribution); the three are equal in exact arithmetic,
and the split avoids both the eigenvector mixing and the cancellation of those two variants.

Leave-one-out. With ``Kc = Q diag(lam) Q^T``, ``w = 1 / (lam + alpha)`` (0 for the constant
direction) and ``B = Q^T Yc``, the dual coefficients are ``C = Q diag(w) B``, the diagonal of the
regularised inverse is ``d = (Q * Q) @ w`` and the exact LOO residuals are ``C / d[:, None]``
(Rifkin & Lippert 2007; scikit-learn ``_RidgeGCV``).

For one alpha shared by all targets only ``sum_i ||C_i||^2 / d_i^2`` is needed, and
``sum_j C_ij^2`` is the diagonal of ``Q W B B^T W Q^T``. With the QR factorisation
``B^T = U R`` (so ``B B^T = R^T R``) this is the row sums of squares of ``Q W R^T``, whose right
factor is triangular: a TRMM of n^3 flops per alpha instead of a GEMM of 2 n^2 n_targets, and the
targets drop out of the per-alpha cost. Householder QR is backward stable per row of ``B``, so the
result is as accurate as forming ``C`` itself.

Generalized cross-validation (``criterion="gcv"``) replaces each ``d_i`` by its mean
``mean(d) = sum(w) / n``; then ``||C||_F^2 = sum_k w_k^2 ||B_k||^2`` because ``Q`` is orthogonal, so
the GCV curve costs O(n n_targets) in all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

from laion_lake.compute.kernel import DEFAULT_FEATURE_CHUNK_SIZE, compute_centered_linear_kernels

DEFAULT_ALPHAS = 10.0 ** np.arange(-10, 11)
DEFAULT_TARGET_BATCH_SIZE = 1024

EighDriver = Literal["evd", "evr", "ev", "numpy"]
Criterion = Literal["loo", "gcv"]


# --------------------------------------------------------------------------------------------------
# eigendecomposition (once per feature set x train set)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CenteredKernelEigendecomposition:
    """Eigendecomposition of a centred train kernel, with its cross kernel in the same basis.

    Attributes
    ----------
    eigenvalues : array of shape (n_train,)
        Eigenvalues of the centred kernel. Index 0 is the constant direction (value 0, never
        regularised, weight 0 in every solve); the others are ascending, clipped at 0, and those
        below the numerical-rank tolerance ``n_train * eps * max(eigenvalues)`` are set to 0.
    eigenvectors : array of shape (n_train, n_train), Fortran order
        Orthonormal columns ``Q``; column 0 is exactly ``1 / sqrt(n_train)``.
    test_kernel_in_eigenbasis : array of shape (n_test, n_train), or None
        ``K_test @ Q``; the columns of directions with eigenvalue 0 are set to 0, as they are in
        exact arithmetic (``Xc^T q = 0`` there), so that ``1 / alpha`` does not amplify rounding.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    test_kernel_in_eigenbasis: np.ndarray | None

    @property
    def n_train(self) -> int:
        return self.eigenvalues.shape[0]

    @property
    def n_test(self) -> int:
        return 0 if self.test_kernel_in_eigenbasis is None else self.test_kernel_in_eigenbasis.shape[0]

    def ridge(self, Y_train: np.ndarray, alpha: float = 1.0, **options: Any) -> np.ndarray:
        """Shortcut for :func:`solve_kernel_ridge_eigen` on this decomposition."""
        return solve_kernel_ridge_eigen(self, Y_train, alpha=alpha, **options)

    def ridgecv(self, Y_train: np.ndarray, **options: Any) -> KernelRidgeCVResult:
        """Shortcut for :func:`solve_kernel_ridge_cv_eigen` on this decomposition."""
        return solve_kernel_ridge_cv_eigen(self, Y_train, **options)

    def ridgecv_many(self, targets: Iterable[np.ndarray], alphas: np.ndarray = DEFAULT_ALPHAS, predict: bool = True) -> list[KernelRidgeCVResult]:
        """One shared-alpha ``ridgecv`` per target matrix (e.g. one per region), as the primal route offers.

        ``targets`` may be a generator: each matrix is solved as it comes, so only one is held at a time.
        """
        return [solve_kernel_ridge_cv_eigen(self, Y, alphas=alphas, predict=predict) for Y in targets]


def _gemm(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """``op(a) @ op(b)`` through scipy's BLAS, F-ordered, without copying C-ordered operands.

    All heavy products of this module go through scipy's BLAS (as do its SYRK, TRMM and LAPACK
    calls) rather than numpy's ``@``: numpy and scipy wheels each bundle their own OpenBLAS, and
    alternating between two thread pools that spin-wait after each call makes them compete for
    the same cores.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not a.flags.f_contiguous and a.flags.c_contiguous:
        a, trans_a = a.T, not trans_a
    if not b.flags.f_contiguous and b.flags.c_contiguous:
        b, trans_b = b.T, not trans_b
    return blas.dgemm(1.0, a, b, trans_a=int(trans_a), trans_b=int(trans_b))


def _householder_vector_to_constant(n: int) -> tuple[np.ndarray, float]:
    """``v, beta`` with ``P = I - beta v v^T`` symmetric orthogonal and ``P e_0 = 1 / sqrt(n)``."""
    u = np.full(n, 1.0 / np.sqrt(n))
    v = -u
    v[0] += 1.0
    return v, 2.0 / (v @ v)


def _trailing_block(K: np.ndarray, in_place: bool) -> np.ndarray:
    """``K[1:, 1:]`` as an F-contiguous array; with ``in_place``, compacted inside K's own buffer.

    Compacting in place avoids one (n x n) float64 copy at the memory peak of the pipeline.
    """
    n = K.shape[0]
    if not in_place:
        return np.asfortranarray(K[1:, 1:])
    flat = K.reshape(-1, order="F")  # a view: K is F-contiguous here
    m = n - 1
    for j in range(m):
        # destination j*m starts before source (j+1)*n + 1: a left-to-right move never clobbers
        # a column that is still to be read; numpy buffers the overlapping copy correctly.
        flat[j * m : (j + 1) * m] = flat[(j + 1) * n + 1 : (j + 2) * n]
    return flat[: m * m].reshape((m, m), order="F")


def _eigh(A: np.ndarray, driver: EighDriver) -> tuple[np.ndarray, np.ndarray]:
    """Ascending eigenvalues and eigenvectors of the symmetric ``A`` (lower triangle read; may be overwritten)."""
    if driver == "numpy":
        return np.linalg.eigh(A)
    return scipy.linalg.eigh(A, lower=True, driver=driver, overwrite_a=True, check_finite=False)


def eigendecompose_centered_kernel(
    K_train: np.ndarray,
    K_test: np.ndarray | None = None,
    driver: EighDriver = "evd",
    overwrite_kernel: bool = False,
) -> CenteredKernelEigendecomposition:
    """Eigendecompose a centred train kernel once, to serve many targets and alphas.

    Parameters
    ----------
    K_train : array of shape (n_train, n_train)
        Centred train kernel ``Xc @ Xc.T`` (``Xc`` centred on the train means), symmetric.
    K_test : array of shape (n_test, n_train), optional
        Cross kernel ``(X_test - mean_train) @ Xc.T``. Needed for predictions.
    driver : {"evd", "evr", "ev", "numpy"}
        LAPACK driver of ``scipy.linalg.eigh`` (``"numpy"``: ``np.linalg.eigh``, also syevd).
        ``"evd"`` (divide and conquer) is usually fastest for full decompositions; ``"evr"`` uses
        far less workspace (``evd`` needs about 2 n^2 floats).
    overwrite_kernel : bool
        Allow ``K_train`` (if float64 and contiguous, as :func:`compute_centered_linear_kernels`
        returns it) to be destroyed, which saves one (n x n) copy at peak memory.

    Returns
    -------
    CenteredKernelEigendecomposition
    """
    K_train = np.asarray(K_train)
    n = K_train.shape[0]
    if K_train.ndim != 2 or K_train.shape[1] != n:
        raise ValueError(f"K_train must be square, got shape {K_train.shape}")
    if n < 2:
        raise ValueError(f"need at least 2 train samples to fit a ridge with intercept, got {n}")
    if K_test is not None and np.shape(K_test)[1] != n:
        raise ValueError(f"K_test has {np.shape(K_test)[1]} columns, expected n_train = {n}")

    if overwrite_kernel and K_train.dtype == np.float64 and K_train.flags.f_contiguous:
        K = K_train
    elif overwrite_kernel and K_train.dtype == np.float64 and K_train.flags.c_contiguous:
        K = K_train.T  # symmetric: the transpose is the same matrix, and F-contiguous
    else:
        K = np.array(K_train, dtype=np.float64, order="F")

    # P K P with P the Householder reflection taking e_0 to the constant direction: a rank-2
    # update K - v a^T - a v^T. Row and column 0 of the result are K's action on the constant
    # vector, zero up to rounding, and are dropped: that is the exact projection onto 1^perp.
    v, beta = _householder_vector_to_constant(n)
    z = blas.dgemv(1.0, K, v)
    a = beta * z - (0.5 * beta * beta * (v @ z)) * v
    K = blas.dsyr2(-1.0, v, a, a=K, lower=1, overwrite_a=1)  # lower triangle only
    block = _trailing_block(K, in_place=True)  # K is our own array or one we may destroy
    del K
    block_eigenvalues, block_eigenvectors = _eigh(block, driver)
    del block

    eigenvalues = np.empty(n)
    eigenvalues[0] = 0.0
    eigenvalues[1:] = block_eigenvalues
    # Q = P [[1, 0], [0, V]]: column 0 is the constant vector, the others P applied to [0; V].
    Q = np.empty((n, n), order="F")
    Q[0, 1:] = 0.0
    Q[1:, 1:] = block_eigenvectors
    del block_eigenvectors
    Q[:, 0] = 0.0
    Q[0, 0] = 1.0
    Q = blas.dger(-beta, v, blas.dgemv(1.0, Q, v, trans=1), a=Q, overwrite_a=1)  # in place: no (n x n) temporary

    # K is positive semi-definite: negative eigenvalues are rounding, and so are positive ones
    # below the numerical-rank tolerance; leaving them would let 1/(lam + alpha) amplify noise.
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    tolerance = n * np.finfo(np.float64).eps * eigenvalues.max(initial=0.0)
    null_directions = eigenvalues <= tolerance
    eigenvalues[null_directions] = 0.0

    test_in_basis = None
    if K_test is not None:
        test_in_basis = _gemm(K_test, Q)
        test_in_basis[:, null_directions] = 0.0
    return CenteredKernelEigendecomposition(eigenvalues, Q, test_in_basis)


# --------------------------------------------------------------------------------------------------
# shared pieces of the solves
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# fixed alpha
# --------------------------------------------------------------------------------------------------


def solve_kernel_ridge_eigen(
    decomposition: CenteredKernelEigendecomposition,
    Y_train: np.ndarray,
    alpha: float = 1.0,
    target_batch_size: int = DEFAULT_TARGET_BATCH_SIZE,
) -> np.ndarray:
    """Ridge with intercept at a fixed alpha: predictions for the test set.

    Parameters
    ----------
    decomposition : CenteredKernelEigendecomposition
        From :func:`eigendecompose_centered_kernel`, built with ``K_test``.
    Y_train : array of shape (n_train, n_targets)
        Train targets (any float dtype; centred in float64 on their train means).
    alpha : float
        Regularisation, > 0. Same scale as scikit-learn's ``Ridge(alpha)``.
    target_batch_size : int
        Targets processed at a time; bounds the extra memory to a few (n_train, batch) arrays.

    Returns
    -------
    predictions : array of shape (n_test, n_targets), float64
        ``K_test (Kc + alpha I)^-1 Yc + mean(Y_train)``.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    Y_train = _check_targets(Y_train, decomposition.n_train)
    test_in_basis = _require_test_kernel(decomposition)
    Q = decomposition.eigenvectors
    weights = _dual_weights(decomposition.eigenvalues, alpha)
    Y_mean = _target_means(Y_train, target_batch_size)
    n_targets = Y_train.shape[1]
    predictions = np.empty((decomposition.n_test, n_targets))
    for start in range(0, n_targets, target_batch_size):
        stop = min(start + target_batch_size, n_targets)
        B = _project_target_batch(Q, Y_train, Y_mean, start, stop)
        B *= weights[:, None]
        predictions[:, start:stop] = _gemm(test_in_basis, B) + Y_mean[start:stop]
    return predictions


# --------------------------------------------------------------------------------------------------
# alpha chosen by leave-one-out or GCV
# --------------------------------------------------------------------------------------------------


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
    Q: np.ndarray, eigenvalues: np.ndarray, B: np.ndarray, alphas: np.ndarray, d_all: np.ndarray
) -> np.ndarray:
    """``sum_ij (C_ij / d_i)^2`` per alpha via ``B^T = U R``: one TRMM per alpha, (n_alphas,)."""
    n, n_targets = B.shape
    # Householder QR of B^T (n_targets x n), in place in a copy (B is kept for the refit):
    # R = the upper triangle of its first r rows, R^T R = B B^T. L = R^T (n x r) has rows :r lower
    # triangular (TRMM reads only that triangle, so the reflectors left above it are harmless) and
    # rows r: dense.
    B_transposed = np.array(B.T, order="F")
    lwork, info = lapack.dgeqrf_lwork(*B_transposed.shape)
    _check_lapack_info("dgeqrf_lwork", info)
    qr, _, _, info = lapack.dgeqrf(B_transposed, lwork=int(lwork), overwrite_a=1)
    _check_lapack_info("dgeqrf", info)
    del B_transposed
    r = min(n_targets, n)
    L_triangular = np.empty((r, r), order="F")
    L_triangular[...] = qr[:r, :r].T
    L_dense = np.array(qr[:r, r:].T, order="F") if r < n else None
    del qr

    sums = np.empty(len(alphas))
    scaled_Q = np.empty((n, n), order="F")
    for a, alpha in enumerate(alphas):
        np.multiply(Q, _dual_weights(eigenvalues, alpha), out=scaled_Q)
        # M = (Q W)[:, :r] @ L[:r] + (Q W)[:, r:] @ L[r:], written over the first r columns.
        M = blas.dtrmm(1.0, L_triangular, scaled_Q[:, :r], side=1, lower=1, overwrite_b=1)
        if L_dense is not None:
            M = blas.dgemm(1.0, scaled_Q[:, r:], L_dense, beta=1.0, c=M, overwrite_c=1)
        row_sums_of_squares = np.einsum("ij,ij->i", M, M)
        sums[a] = np.sum(row_sums_of_squares / d_all[:, a] ** 2)
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
    Cost after the decomposition: ``Q^T Y`` (2 n^2 n_targets), then per alpha a TRMM of n^3 flops
    (shared alpha, LOO: see the module docstring), a GEMM of 2 n^2 n_targets (per-target LOO), or
    O(n n_targets) (GCV). Extra memory: ``B`` (n x n_targets), one transient copy of it for the QR,
    and two (n x n) arrays.
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
        d_all = _gemm(Q * Q, weights_all)  # diag of the regularised inverse, (n, n_alphas)
        if alpha_per_target:
            sums = _loo_error_sums_per_target(Q, eigenvalues, B, alphas, d_all, target_batch_size)
        else:
            sums = _loo_error_sums_shared(Q, eigenvalues, B, alphas, d_all)

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


# --------------------------------------------------------------------------------------------------
# features in, predictions out
# --------------------------------------------------------------------------------------------------


def kernel_ridge_cv_predict(
    X_train: Any,
    Y_train: np.ndarray,
    X_test: Any,
    alphas: np.ndarray = DEFAULT_ALPHAS,
    criterion: Criterion = "loo",
    alpha_per_target: bool = False,
    feature_chunk_size: int = DEFAULT_FEATURE_CHUNK_SIZE,
    compute_dtype: type | str = np.float64,
    eigh_driver: EighDriver = "evd",
    target_batch_size: int = DEFAULT_TARGET_BATCH_SIZE,
) -> KernelRidgeCVResult:
    """Features in, ``ridgecv`` predictions out: kernels, eigendecomposition, LOO sweep, refit.

    Parameters
    ----------
    X_train : array of shape (n_train, n_features)
    Y_train : array of shape (n_train, n_targets)
    X_test : array of shape (n_test, n_features)
    Other parameters : see :func:`compute_centered_linear_kernels` and
        :func:`solve_kernel_ridge_cv_eigen`.

    Returns
    -------
    KernelRidgeCVResult
    """
    K_train, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size, compute_dtype)
    decomposition = eigendecompose_centered_kernel(K_train, K_test, driver=eigh_driver, overwrite_kernel=True)
    del K_train, K_test
    return solve_kernel_ridge_cv_eigen(
        decomposition, Y_train, alphas=alphas, criterion=criterion,
        alpha_per_target=alpha_per_target, target_batch_size=target_batch_size,
    )


def kernel_ridge_predict(
    X_train: Any,
    Y_train: np.ndarray,
    X_test: Any,
    alpha: float = 1.0,
    feature_chunk_size: int = DEFAULT_FEATURE_CHUNK_SIZE,
    compute_dtype: type | str = np.float64,
    eigh_driver: EighDriver = "evd",
    target_batch_size: int = DEFAULT_TARGET_BATCH_SIZE,
) -> np.ndarray:
    """Features in, fixed-alpha ``ridge`` predictions out, shape (n_test, n_targets)."""
    K_train, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size, compute_dtype)
    decomposition = eigendecompose_centered_kernel(K_train, K_test, driver=eigh_driver, overwrite_kernel=True)
    del K_train, K_test
    return solve_kernel_ridge_eigen(decomposition, Y_train, alpha=alpha, target_batch_size=target_batch_size)
