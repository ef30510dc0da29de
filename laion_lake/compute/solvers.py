"""Choosing the exact ridge route by shape, checking its numerical range, and its memory in advance.

Two exact routes give the same fit, LOO errors and alpha:

- ``primal`` when ``n_features < n_train``: a thin SVD of the centred (n_train x n_features) train
  features, O(n p^2) (:mod:`laion_lake.compute.primal`);
- ``dual`` otherwise: an eigendecomposition of the (n_train x n_train) centred kernel, built by
  streaming feature chunks, O(n^2 p + n^3) (:mod:`laion_lake.compute.ridge`); the
  (n_features x n_targets) coefficient matrix is never built.

Numerical range. Ridge alphas are absolute (SPEC 3.1: ``10**k, k = -10..10``), so features are
not rescaled; instead a decomposition whose spectrum overflowed (``inf``), underflowed (the largest
squared singular value subnormal) or is zero (a constant feature set) is refused with a
:class:`NumericalInputError` subclass, never turned into a silent NaN score.

Memory. :func:`regression_peak_bytes` and :func:`rdm_peak_bytes` state a unit's peak working
memory from its shape (float64 arrays of the solver, counted from the code below and in the
solver modules; interpreter and library overhead excluded, see ``BASE_PROCESS_BYTES``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from laion_lake.compute.kernel import compute_centered_linear_kernels
from laion_lake.compute.primal import CenteredPrimalDecomposition, decompose_centered_features
from laion_lake.compute.ridge import CenteredKernelEigendecomposition, eigendecompose_centered_kernel
from laion_lake.compute.loo_fractions import FRACTION_ROW_BLOCK
from laion_lake.compute.ridge_linalg import DEFAULT_ALPHAS, ROW_BLOCK

Route = Literal["primal", "dual"]
# a worker process's resident size before any unit (python, numpy, scipy, xarray, zarr, dask)
BASE_PROCESS_BYTES = 350 * 2**20
_FLOAT = 8


class NumericalInputError(ValueError):
    """Inputs a score cannot be computed from in float64 (named, never a silent NaN)."""


class FeatureRangeError(NumericalInputError):
    """Features (or responses) so large or small that float64 ridge over- or underflows."""


class ConstantInputError(NumericalInputError):
    """A constant feature set, a constant pattern, or no voxel to predict: the score is undefined."""


def choose_route(n_train: int, n_features: int) -> Route:
    """``"primal"`` when features are fewer than training samples, else ``"dual"``."""
    return "primal" if n_features < n_train else "dual"


def check_spectrum(largest_squared: float, what: str = "the train features") -> None:
    """Refuse a decomposition whose largest squared singular value is inf, subnormal or 0."""
    if not np.isfinite(largest_squared):
        raise FeatureRangeError(
            f"{what} overflow float64 in the ridge (their squared norm is inf): "
            "rescale them (alphas are absolute, SPEC 3.1, so they are not rescaled here)"
        )
    if largest_squared == 0.0:
        raise ConstantInputError(f"{what} are constant over the train stimuli: nothing to regress on")
    if largest_squared < np.finfo(np.float64).tiny / np.finfo(np.float64).eps:
        raise FeatureRangeError(
            f"{what} underflow float64 in the ridge (largest squared singular value {largest_squared:.3g}): "
            "rescale them (alphas are absolute, SPEC 3.1, so they are not rescaled here)"
        )


def decompose_train_features(
    X_train: Any, X_test: Any, route: Route | None = None, feature_chunk_size: int = 8192
) -> CenteredPrimalDecomposition | CenteredKernelEigendecomposition:
    """The one decomposition a regression unit needs, by the cheaper exact route.

    Parameters
    ----------
    X_train : array of shape (n_train, n_features)
        For the dual route anything supporting ``X[:, a:b]`` (read chunk by chunk); the primal
        route reads it whole (it is smaller than the n_train x n_train kernel).
    X_test : array of shape (n_test, n_features)
    route : {"primal", "dual"}, optional
        Default :func:`choose_route`.

    Returns
    -------
    CenteredPrimalDecomposition or CenteredKernelEigendecomposition
        Both offer ``ridge(Y, alpha)``, ``ridgecv(Y, alphas)`` and ``ridgecv_many([Y...], alphas)``.

    Raises
    ------
    NumericalInputError
        Overflow, underflow or constant features (see :func:`check_spectrum`).
    """
    n_train, n_features = X_train.shape
    route = route or choose_route(n_train, n_features)
    if route == "primal":
        with np.errstate(over="ignore", invalid="ignore"):
            decomposition = decompose_centered_features(X_train, X_test)
            largest = float(np.square(decomposition.singular_values[0])) if decomposition.rank else 0.0
        check_spectrum(largest)
        if not np.all(np.isfinite(decomposition.test_in_basis)):
            raise FeatureRangeError("the test features overflow float64 in the ridge: rescale them")
        return decomposition
    with np.errstate(over="ignore", invalid="ignore"):
        K_train, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=feature_chunk_size)
    largest = float(np.max(np.diag(K_train)))  # the trace bounds the spectrum: same range test
    check_spectrum(largest if np.all(np.isfinite(K_train)) else float("inf"))
    if K_test is not None and not np.all(np.isfinite(K_test)):
        raise FeatureRangeError("the test features overflow float64 in the ridge: rescale them")
    # syevr (MRRR) needs O(n) workspace where syevd needs 2 n^2: n^2 floats less at the unit's peak
    decomposition = eigendecompose_centered_kernel(K_train, K_test, driver="evr", overwrite_kernel=True)
    del K_train, K_test
    return decomposition


def regression_peak_bytes(
    n_train: int, n_test: int, n_features: int, n_voxels: int, feature_chunk_size: int = 8192, route: Route | None = None,
    read_bytes: int = 0,
) -> int:
    """Peak working memory of one regression unit, in bytes (process base excluded).

    Parameters
    ----------
    n_train, n_test : int
        Stimuli of the unit's train and test sets.
    n_features : int
    n_voxels : int
        Voxels of the unit's largest region (its per-region arrays are freed between regions);
        the float32 responses of every region the unit reads are held by the responses cache and
        are not counted here (see ``laion_lake.scoring.cache``).
    feature_chunk_size : int
        Feature columns read per step of the dual route.
    read_bytes : int
        Transient bytes of the feature reader beside a kernel step (a streamed layer's stored
        column block and its chunks in flight); 0 for features held in memory.

    Returns
    -------
    int
        primal: ``8 * (3 n p + 2 n_test p + 3 p^2 + 2 n v + 2 p v + 2 n p)`` -- the float64
        features and the SVD's copy and U, the test features and their basis, the SVD workspace
        and per-alpha ``U^T W U``, then per region Y (float64), B, and the n x p summaries.
        dual: the larger of the kernel phase ``8 * (n^2 + n_test n + (n + n_test) c)`` plus
        ``4 (n + n_test) c`` float32 chunk and ``read_bytes``, the eigendecomposition phase
        ``8 * (2 n^2 + n_test n + 26 n)`` (the kernel's buffer, which then holds Q, and the
        block's eigenvectors; syevr workspace 26 n), and the sweep phase
        ``8 * (n^2 + n_test n + 3 n v + 2 n_test v + 1024 n) + 4 n v`` (Q, B, the QR's factor and
        the centred rows, the test basis and predictions, 512-row blocks of ``Q * Q`` or ``Q W``,
        one region's float32 train rows). Both routes add the partial-fraction sweep's blocks,
        ``8 * (7 n b + 3 n n_alphas)`` with ``b = min(256, r)``.
        Measured on an 8,192-feature unit (n 4,666, n_test 1,167, four regions of 451-1,701
        voxels, RSS sampled every 20 ms, process in all): the sweep phase 1,143 MB (1,255 MB while G
        was held whole), the kernel phase 1,134 MB, the eigendecomposition 1,054 MB.
    """
    n, t, p, v = n_train, n_test, n_features, max(n_voxels, 1)
    route = route or choose_route(n, p)
    # the partial-fraction sweep's blocks (laion_lake.compute.loo_fractions): a few (n x block)
    # products and a (block x r) slice of M, and the per-sample weights of every alpha
    fractions = _FLOAT * (7 * n * min(FRACTION_ROW_BLOCK, p if route == "primal" else n) + 3 * n * len(DEFAULT_ALPHAS))
    if route == "primal":
        return _FLOAT * (3 * n * p + 2 * t * p + 3 * p * p + 2 * n * v + 2 * p * v + 2 * n * p + t * v) + fractions
    c = min(feature_chunk_size, p)
    kernel_phase = _FLOAT * (n * n + t * n + (n + t) * c) + 4 * (n + t) * c + read_bytes
    eigen_phase = _FLOAT * (2 * n * n + t * n + 26 * n)
    # the sweep: Q, with G = B B^T formed by row blocks from B and a direct alpha's Q W by row
    # blocks (laion_lake.compute.ridge_linalg.ROW_BLOCK), so no second (n x n) array
    sweep_phase = _FLOAT * (n * n + t * n + 3 * n * v + 2 * t * v + 2 * ROW_BLOCK * n) + 4 * n * v + fractions
    return max(kernel_phase, eigen_phase, sweep_phase)


def rdm_peak_bytes(n_stimuli: int, n_features: int, n_voxels: int, unit_chunk_size: int = 4096) -> int:
    """Peak working memory of one rdm unit: ``8 * (4 s^2 + s c)`` plus the float32 chunk read.

    The model RDM and a brain RDM (s x s each), a Gram and a correlation temporary while one RDM is
    built, and one chunk of ``c`` columns; features are streamed by columns.
    """
    s = n_stimuli
    c = min(unit_chunk_size, max(n_features, n_voxels))
    return _FLOAT * (4 * s * s + 2 * s * c) + 4 * s * c


def regression_flops(n_train: int, n_test: int, n_features: int, n_voxels: Sequence[int], route: Route | None = None) -> float:
    """Leading-order floating-point operations of one regression unit (its weight in a schedule).

    Parameters
    ----------
    n_train, n_test, n_features : int
    n_voxels : sequence of int
        Voxels of each region the unit fits.

    Returns
    -------
    float
        primal: ``6 n p^2`` (the thin SVD: QR, then U formed) plus per region ``6 n p v + 2 t p v``
        (``U^T Y``, ``Yc B^T``, predictions) and ``2 n p^2`` (the partial-fraction product).
        dual: ``2 (n + t) n p`` (kernels) plus ``9 n^3`` (eigendecomposition with vectors) plus per
        region ``4 n^2 v + 2 t n v`` and ``2 n^3``.
    """
    n, t, p = float(n_train), float(n_test), float(n_features)
    per_region = [float(v) for v in n_voxels]
    if (route or choose_route(n_train, n_features)) == "primal":
        return 6 * n * p * p + sum(6 * n * p * v + 2 * t * p * v + 2 * n * p * p for v in per_region)
    return 2 * (n + t) * n * p + 9 * n**3 + sum(4 * n * n * v + 2 * t * n * v + 2 * n**3 for v in per_region)


def rdm_flops(n_stimuli: int, n_features: int, n_voxels: Sequence[int]) -> float:
    """Leading-order flops of one rdm (or CKA) unit: ``2 s^2`` per feature and per voxel (the Gram products)."""
    return 2.0 * float(n_stimuli) ** 2 * (float(n_features) + sum(float(v) for v in n_voxels))


__all__ = [
    "BASE_PROCESS_BYTES",
    "ConstantInputError",
    "FeatureRangeError",
    "NumericalInputError",
    "Route",
    "check_spectrum",
    "choose_route",
    "decompose_train_features",
    "rdm_flops",
    "rdm_peak_bytes",
    "regression_flops",
    "regression_peak_bytes",
]
