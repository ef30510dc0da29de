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
``sum_j C_ij^2`` is the diagonal of ``Q W B B^T W Q^T``. Partial fractions in ``w`` give it for
every alpha from one (n x n) product (:mod:`laion_lake.compute.loo_fractions`). An alpha where that
form could round badly, and that could be the chosen one, is evaluated directly: with the QR
factorisation ``B^T = U R`` (so ``B B^T = R^T R``) the diagonal is the row sums of squares of
``Q W R^T``, an (n x min(n, n_targets)) product formed by blocks of rows of ``Q W``. Householder QR
is backward stable per row of ``B``, so the result is as accurate as forming ``C`` itself.

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
from scipy.linalg import blas

from laion_lake.compute.kernel import DEFAULT_FEATURE_CHUNK_SIZE, compute_centered_linear_kernels
from laion_lake.compute.ridge_cv import (  # re-exported: the alpha-selecting solve moved to ridge_cv
    KernelRidgeCVResult, _gcv_error_sums, _loo_error_sums_per_target, _loo_error_sums_shared, _predict_with_alphas,
    solve_kernel_ridge_cv_eigen,
)
from laion_lake.compute.ridge_linalg import (  # re-exported: the shared pieces moved to ridge_linalg
    DEFAULT_ALPHAS, DEFAULT_TARGET_BATCH_SIZE, Criterion, _check_lapack_info, _check_targets, _dual_weights, _gemm,
    _project_target_batch, _project_targets, _require_test_kernel, _target_means,
)

EighDriver = Literal["evd", "evr", "ev", "numpy"]


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
        returns it) to be destroyed, which saves one (n x n) copy at peak memory: its buffer ends
        up holding the eigenvectors.

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
    block_eigenvalues, block_eigenvectors = _eigh(block, driver)
    del block

    eigenvalues = np.empty(n)
    eigenvalues[0] = 0.0
    eigenvalues[1:] = block_eigenvalues
    # Q = P [[1, 0], [0, V]]: column 0 is the constant vector, the others P applied to [0; V].
    # Q is written into K's buffer (the block there is spent): the caller's reference keeps that
    # buffer alive through the call anyway, so a new array would make three (n x n) at the peak.
    # A driver that returned V inside the buffer (syevd overwriting the block) gets a new array.
    Q = np.empty((n, n), order="F") if np.shares_memory(block_eigenvectors, K) else K
    del K
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
