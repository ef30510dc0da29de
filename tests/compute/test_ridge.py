"""Dual kernel ridge and its LOO / GCV alpha selection, against scikit-learn and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV

from laion_lake.compute.kernel import compute_centered_linear_kernels
from laion_lake.compute.ridge import (
    DEFAULT_ALPHAS,
    _loo_error_sums_per_target,
    _loo_error_sums_shared,
    _project_targets,
    _target_means,
    _dual_weights,
    eigendecompose_centered_kernel,
    kernel_ridge_cv_predict,
    kernel_ridge_predict,
    solve_kernel_ridge_cv_eigen,
    solve_kernel_ridge_eigen,
)


def make_regression(n_train: int, n_test: int, n_features: int, n_targets: int, seed: int, noise: float = 2.0):
    """Features with a decaying spectrum and offsets, linear targets with noise and offsets.

    The decaying spectrum puts the LOO optimum at an interior alpha (1 .. 1e3), far from the
    1e-10 .. 1e-6 plateau where LOO values differ only by rounding and any two implementations
    may legitimately pick different alphas.
    """
    rng = np.random.default_rng(seed)
    scales = 3.0 / np.sqrt(1.0 + np.arange(n_features))
    X = rng.standard_normal((n_train + n_test, n_features)) * scales + rng.normal(0, 2, n_features)
    beta = rng.standard_normal((n_features, n_targets)) * scales[:, None]
    Y = X @ beta + rng.standard_normal((n_train + n_test, n_targets)) * noise + rng.normal(0, 5, n_targets)
    return X[:n_train], X[n_train:], Y[:n_train]


def decompose(X_train, X_test, chunk: int = 64):
    K, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=chunk)
    return eigendecompose_centered_kernel(K, K_test)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# shapes: features > samples (kernel full rank), features < samples (kernel rank deficient),
# and more targets than samples (the QR path with a square triangular factor)
SHAPES = [(80, 300, 6), (150, 40, 5), (60, 200, 90)]


@pytest.mark.parametrize(("n_train", "n_features", "n_targets"), SHAPES)
def test_fixed_alpha_matches_sklearn_ridge(n_train: int, n_features: int, n_targets: int) -> None:
    X_train, X_test, Y_train = make_regression(n_train, 25, n_features, n_targets, seed=0)
    decomposition = decompose(X_train, X_test)
    for alpha in (1.0, 1e-3, 1e4):
        ours = solve_kernel_ridge_eigen(decomposition, Y_train, alpha=alpha, target_batch_size=4)
        reference = Ridge(alpha=alpha).fit(X_train, Y_train).predict(X_test)
        assert relative_error(ours, reference) < 1e-8, alpha


@pytest.mark.parametrize(("n_train", "n_features", "n_targets"), SHAPES)
def test_shared_alpha_loo_matches_sklearn_ridgecv(n_train: int, n_features: int, n_targets: int) -> None:
    X_train, X_test, Y_train = make_regression(n_train, 25, n_features, n_targets, seed=0)
    reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=False, store_cv_results=True).fit(X_train, Y_train)
    assert 1e-3 <= reference.alpha_ <= 1e6, "test data should have an interior optimum"

    result = solve_kernel_ridge_cv_eigen(decompose(X_train, X_test), Y_train, target_batch_size=7)
    assert result.alpha == reference.alpha_
    assert np.all(result.best_alphas == reference.alpha_)
    assert relative_error(result.predictions, reference.predict(X_test)) < 1e-5
    # the whole LOO curve, where sklearn's own rounding (it subtracts the intercept term) is small
    sklearn_curve = reference.cv_results_.mean(axis=(0, 1))
    usable = DEFAULT_ALPHAS >= 1e-3
    np.testing.assert_allclose(result.cv_errors[usable], sklearn_curve[usable], rtol=1e-8)
    assert result.cv_errors.min() == pytest.approx(-reference.best_score_, rel=1e-10)


@pytest.mark.parametrize(("n_train", "n_features", "n_targets", "noise"), [(80, 300, 6, 8.0), (120, 30, 200, 2.0)])
def test_per_target_alphas_match_sklearn(n_train: int, n_features: int, n_targets: int, noise: float) -> None:
    X_train, X_test, Y_train = make_regression(n_train, 25, n_features, n_targets, seed=0, noise=noise)
    reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=True, store_cv_results=True).fit(X_train, Y_train)
    assert reference.alpha_.min() >= 1e-3, "test data should have interior optima"

    result = solve_kernel_ridge_cv_eigen(decompose(X_train, X_test), Y_train, alpha_per_target=True, target_batch_size=16)
    assert result.alpha is None
    np.testing.assert_array_equal(result.best_alphas, reference.alpha_)
    assert relative_error(result.predictions, reference.predict(X_test)) < 1e-5
    sklearn_curves = reference.cv_results_.mean(axis=0).T  # (n_alphas, n_targets)
    usable = DEFAULT_ALPHAS >= 1e-3
    np.testing.assert_allclose(result.cv_errors[usable], sklearn_curves[usable], rtol=1e-8)


def brute_force_loo_errors(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """Squared LOO residuals by refitting ridge with intercept n times: (n_samples, n_targets)."""
    n = X.shape[0]
    errors = np.empty(Y.shape)
    for i in range(n):
        keep = np.arange(n) != i
        model = Ridge(alpha=alpha, solver="cholesky").fit(X[keep], Y[keep])
        errors[i] = (model.predict(X[i : i + 1])[0] - Y[i]) ** 2
    return errors


@pytest.mark.parametrize(("n_train", "n_features"), [(14, 40), (25, 6)])
def test_loo_curve_equals_refitting_without_each_sample(n_train: int, n_features: int) -> None:
    X_train, X_test, Y_train = make_regression(n_train, 3, n_features, 4, seed=2)
    alphas = np.array([1e-2, 1.0, 1e2, 1e4])
    decomposition = decompose(X_train, X_test)
    shared = solve_kernel_ridge_cv_eigen(decomposition, Y_train, alphas=alphas)
    per_target = solve_kernel_ridge_cv_eigen(decomposition, Y_train, alphas=alphas, alpha_per_target=True)
    for a, alpha in enumerate(alphas):
        errors = brute_force_loo_errors(X_train, Y_train, alpha)
        assert shared.cv_errors[a] == pytest.approx(errors.mean(), rel=1e-7)
        np.testing.assert_allclose(per_target.cv_errors[a], errors.mean(axis=0), rtol=1e-7)


def brute_force_gcv_errors(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """GCV per target from the explicit hat matrix of ridge with intercept: (n_targets,)."""
    n = X.shape[0]
    Xc = X - X.mean(axis=0)
    hat = np.full((n, n), 1.0 / n) + Xc @ np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T)
    residuals = Y - hat @ Y
    return (residuals**2).mean(axis=0) / (1.0 - np.trace(hat) / n) ** 2


def test_gcv_equals_the_trace_formula() -> None:
    X_train, X_test, Y_train = make_regression(30, 5, 50, 7, seed=3)
    alphas = np.array([1e-1, 1.0, 10.0, 1e3])
    decomposition = decompose(X_train, X_test)
    shared = solve_kernel_ridge_cv_eigen(decomposition, Y_train, alphas=alphas, criterion="gcv")
    per_target = solve_kernel_ridge_cv_eigen(decomposition, Y_train, alphas=alphas, criterion="gcv", alpha_per_target=True)
    curves = np.stack([brute_force_gcv_errors(X_train, Y_train, alpha) for alpha in alphas])
    np.testing.assert_allclose(shared.cv_errors, curves.mean(axis=1), rtol=1e-8)
    np.testing.assert_allclose(per_target.cv_errors, curves, rtol=1e-8)
    assert shared.alpha == alphas[np.argmin(curves.mean(axis=1))]
    np.testing.assert_array_equal(per_target.best_alphas, alphas[np.argmin(curves, axis=0)])
    refit = Ridge(alpha=shared.alpha).fit(X_train, Y_train).predict(X_test)
    assert relative_error(shared.predictions, refit) < 1e-8


def test_float32_relu_features_match_float64_sklearn() -> None:
    # non-negative float32 features with mean ~5: the centring must not cancel
    rng = np.random.default_rng(4)
    X = np.maximum(rng.normal(5.0, 1.0, size=(130, 600)), 0).astype(np.float32)
    Y = (X.astype(np.float64) - 5.0) @ rng.standard_normal((600, 4)) * 0.1 + rng.standard_normal((130, 4))
    Y = Y.astype(np.float32)
    X_train, X_test, Y_train = X[:100], X[100:], Y[:100]
    X64, Y64 = X_train.astype(np.float64), Y_train.astype(np.float64)

    ours = kernel_ridge_predict(X_train, Y_train, X_test, alpha=1.0, feature_chunk_size=128)
    reference = Ridge(alpha=1.0).fit(X64, Y64).predict(X_test.astype(np.float64))
    assert relative_error(ours, reference) < 1e-6

    result = kernel_ridge_cv_predict(X_train, Y_train, X_test, feature_chunk_size=128)
    reference_cv = RidgeCV(alphas=DEFAULT_ALPHAS).fit(X64, Y64)
    assert result.alpha == reference_cv.alpha_
    assert relative_error(result.predictions, reference_cv.predict(X_test.astype(np.float64))) < 1e-5


def test_qr_shortcut_equals_explicit_loo_residuals() -> None:
    # the shared-alpha path (QR + TRMM) against the per-target path (explicit GEMMs), summed,
    # for fewer and for more targets than samples
    X_train, X_test, _ = make_regression(50, 5, 120, 1, seed=5)
    decomposition = decompose(X_train, X_test)
    Q, eigenvalues = decomposition.eigenvectors, decomposition.eigenvalues
    rng = np.random.default_rng(5)
    for n_targets in (1, 13, 50, 77):
        Y = rng.standard_normal((50, n_targets)) + rng.normal(0, 3, n_targets)
        B = _project_targets(Q, Y, _target_means(Y, 8), 8)
        weights = np.stack([_dual_weights(eigenvalues, alpha) for alpha in DEFAULT_ALPHAS], axis=1)
        d_all = (Q * Q) @ weights
        shared = _loo_error_sums_shared(Q, eigenvalues, B, DEFAULT_ALPHAS, d_all)
        explicit = _loo_error_sums_per_target(Q, eigenvalues, B, DEFAULT_ALPHAS, d_all, 8).sum(axis=1)
        np.testing.assert_allclose(shared, explicit, rtol=1e-9)


def test_decomposition_properties_and_drivers() -> None:
    X_train, X_test, _ = make_regression(40, 6, 25, 1, seed=6)  # rank deficient: 25 < 39
    K, K_test = compute_centered_linear_kernels(X_train, X_test)
    decompositions = {driver: eigendecompose_centered_kernel(K, K_test, driver=driver) for driver in ("evd", "evr", "numpy")}
    d = decompositions["evd"]
    Q, lam = d.eigenvectors, d.eigenvalues
    np.testing.assert_allclose(Q.T @ Q, np.eye(40), atol=1e-12)
    np.testing.assert_allclose(Q[:, 0], np.full(40, 1 / np.sqrt(40)), atol=1e-14)
    np.testing.assert_allclose(Q * lam @ Q.T, K, atol=1e-10 * np.abs(K).max())
    assert lam[0] == 0 and np.all(lam >= 0) and np.count_nonzero(lam) == 25
    np.testing.assert_allclose(d.test_kernel_in_eigenbasis, K_test @ Q, atol=1e-10 * np.abs(K_test).max())
    for other in decompositions.values():
        np.testing.assert_allclose(other.eigenvalues, lam, atol=1e-10 * lam.max())
    # destroying the kernel in place gives the same decomposition
    in_place = eigendecompose_centered_kernel(K.copy(order="F"), K_test, overwrite_kernel=True)
    np.testing.assert_allclose(in_place.eigenvalues, lam, rtol=1e-12, atol=1e-12 * lam.max())


def test_one_decomposition_serves_many_target_sets() -> None:
    X_train, X_test, Y_train = make_regression(70, 10, 200, 12, seed=7)
    decomposition = decompose(X_train, X_test)
    together = decomposition.ridgecv(Y_train, alpha_per_target=True)
    first = decomposition.ridgecv(Y_train[:, :5], alpha_per_target=True)
    second = decomposition.ridgecv(Y_train[:, 5:], alpha_per_target=True)
    np.testing.assert_array_equal(together.best_alphas, np.concatenate([first.best_alphas, second.best_alphas]))
    np.testing.assert_allclose(together.predictions, np.hstack([first.predictions, second.predictions]), rtol=1e-12)
    np.testing.assert_allclose(decomposition.ridge(Y_train), solve_kernel_ridge_eigen(decomposition, Y_train), rtol=0)


def test_ties_go_to_the_first_alpha() -> None:
    X_train, X_test, _ = make_regression(30, 4, 50, 1, seed=8)
    Y = np.full((30, 3), 2.5)  # constant targets: every alpha has LOO error 0
    alphas = np.array([1e3, 1.0, 1e-3])
    decomposition = decompose(X_train, X_test)
    shared = decomposition.ridgecv(Y, alphas=alphas)
    per_target = decomposition.ridgecv(Y, alphas=alphas, alpha_per_target=True)
    assert shared.alpha == 1e3 and np.all(per_target.best_alphas == 1e3)
    np.testing.assert_allclose(shared.predictions, 2.5, rtol=1e-12)


def test_bad_inputs_are_refused() -> None:
    X_train, X_test, Y_train = make_regression(20, 4, 30, 2, seed=9)
    decomposition = decompose(X_train, X_test)
    with pytest.raises(ValueError, match="alpha"):
        decomposition.ridge(Y_train, alpha=0.0)
    with pytest.raises(ValueError, match="alphas"):
        decomposition.ridgecv(Y_train, alphas=[1.0, -1.0])
    with pytest.raises(ValueError, match="criterion"):
        decomposition.ridgecv(Y_train, criterion="kfold")
    with pytest.raises(ValueError, match="rows"):
        decomposition.ridgecv(Y_train[:10])
    with pytest.raises(ValueError, match="2-D"):
        decomposition.ridge(Y_train[:, 0])
    no_test = eigendecompose_centered_kernel(compute_centered_linear_kernels(X_train)[0])
    with pytest.raises(ValueError, match="K_test"):
        no_test.ridge(Y_train)
    assert no_test.ridgecv(Y_train, predict=False).predictions is None


def test_non_finite_targets_are_refused_and_c_ordered_kernels_overwrite() -> None:
    X_train, X_test, Y_train = make_regression(20, 4, 30, 3, seed=10)
    K, K_test = compute_centered_linear_kernels(X_train, X_test)
    reference = eigendecompose_centered_kernel(K, K_test)
    c_ordered = np.ascontiguousarray(K)
    in_place = eigendecompose_centered_kernel(c_ordered, K_test, overwrite_kernel=True)
    np.testing.assert_allclose(in_place.eigenvalues, reference.eigenvalues, rtol=1e-12, atol=1e-12 * reference.eigenvalues.max())
    Y_bad = Y_train.copy()
    Y_bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="column 1"):
        reference.ridgecv(Y_bad)


def test_repeat_averager_is_bit_identical_to_average_rows_by_group():
    from laion_lake.compute.averaging import RepeatAverager, average_rows_by_group

    rng = np.random.default_rng(3)
    group = rng.integers(0, 40, 300)
    group[group == 7] = 8  # one empty group: NaN
    averager = RepeatAverager(group, 40, 16)
    for width in (16, 5, 1):
        values = rng.standard_normal((300, 24), dtype=np.float32)[:, :width]  # a strided view too
        expected = average_rows_by_group(values, group, 40)
        np.testing.assert_array_equal(averager.average(values), expected)
        out = np.empty((40, width), np.float32)
        averager.average(values, out=out)
        np.testing.assert_array_equal(out, expected)
        assert np.isnan(out[7]).all()
