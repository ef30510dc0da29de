"""The primal route against the dual route, scikit-learn and a brute-force leave-one-out; range errors; memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV

from laion_lake.compute.correlation import pearson_r_per_column
from laion_lake.compute.kernel import compute_centered_linear_kernels
from laion_lake.compute.primal import decompose_centered_features
from laion_lake.compute.ridge import DEFAULT_ALPHAS, eigendecompose_centered_kernel
from laion_lake.compute.solvers import (
    ConstantInputError,
    FeatureRangeError,
    choose_route,
    decompose_train_features,
    regression_peak_bytes,
)
from tests.compute.test_ridge import make_regression


def dual(X_train, X_test):
    K, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=32)
    return eigendecompose_centered_kernel(K, K_test)


# features well below, just below the train count, and more targets than features
SHAPES = [(150, 40, 5), (120, 110, 8), (200, 30, 90)]


@pytest.mark.parametrize(("n_train", "n_features", "n_targets"), SHAPES)
def test_primal_dual_and_sklearn_agree_on_alpha_predictions_and_voxel_r(n_train, n_features, n_targets):
    X_train, X_test, Y_train = make_regression(n_train, 40, n_features, n_targets, seed=1)
    Y_test = make_regression(n_train, 40, n_features, n_targets, seed=2)[2][:40]
    primal = decompose_centered_features(X_train, X_test).ridgecv(Y_train)
    kernel = dual(X_train, X_test).ridgecv(Y_train)
    reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=False).fit(X_train, Y_train)
    assert primal.alpha == kernel.alpha == reference.alpha_
    np.testing.assert_allclose(primal.cv_errors, kernel.cv_errors, rtol=1e-9)
    np.testing.assert_allclose(primal.predictions, reference.predict(X_test), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(primal.predictions, kernel.predictions, rtol=1e-9, atol=1e-9)
    r_primal = pearson_r_per_column(primal.predictions, Y_test)
    r_dual = pearson_r_per_column(kernel.predictions, Y_test)
    assert np.abs(r_primal - r_dual).max() < 1e-6


def test_primal_loo_errors_equal_brute_force_leave_one_out():
    X_train, _, Y_train = make_regression(40, 5, 12, 3, seed=3)
    alphas = np.array([1e-2, 1.0, 30.0, 1e4])
    ours = decompose_centered_features(X_train).ridgecv(Y_train, alphas=alphas, predict=False)
    brute = []
    for alpha in alphas:
        errors = [
            Y_train[i] - Ridge(alpha=alpha).fit(np.delete(X_train, i, 0), np.delete(Y_train, i, 0)).predict(X_train[i : i + 1])[0]
            for i in range(len(X_train))
        ]
        brute.append(np.mean(np.square(errors)))
    np.testing.assert_allclose(ours.cv_errors, brute, rtol=1e-8)


def test_one_sweep_for_many_target_sets_equals_one_each():
    X_train, X_test, Y_train = make_regression(100, 30, 25, 12, seed=4)
    decomposition = decompose_centered_features(X_train, X_test)
    together = decomposition.ridgecv_many([Y_train[:, :5], Y_train[:, 5:]])
    for result, Y in zip(together, (Y_train[:, :5], Y_train[:, 5:])):
        alone = decomposition.ridgecv(Y)
        assert result.alpha == alone.alpha
        np.testing.assert_array_equal(result.cv_errors, alone.cv_errors)
        np.testing.assert_array_equal(result.predictions, alone.predictions)


def test_rank_deficient_features_give_the_dual_routes_fit():
    X_train, X_test, Y_train = make_regression(90, 20, 15, 4, seed=5)
    X_train, X_test = np.hstack([X_train, X_train[:, :5]]), np.hstack([X_test, X_test[:, :5]])  # duplicated columns
    primal = decompose_centered_features(X_train, X_test)
    assert primal.rank == 15
    ours, theirs = primal.ridgecv(Y_train), dual(X_train, X_test).ridgecv(Y_train)
    assert ours.alpha == theirs.alpha
    np.testing.assert_allclose(ours.predictions, theirs.predictions, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(primal.ridge(Y_train, 3.0), Ridge(alpha=3.0).fit(X_train, Y_train).predict(X_test), rtol=1e-8, atol=1e-8)


def test_route_follows_the_shape():
    assert choose_route(n_train=100, n_features=99) == "primal"
    assert choose_route(n_train=100, n_features=100) == "dual"
    X_train, X_test, _ = make_regression(50, 10, 20, 1, seed=6)
    assert type(decompose_train_features(X_train, X_test)).__name__ == "CenteredPrimalDecomposition"
    assert type(decompose_train_features(X_train[:15], X_test)).__name__ == "CenteredKernelEigendecomposition"


@pytest.mark.parametrize("n_train", [60, 15])  # primal, dual
@pytest.mark.parametrize(("scale", "error"), [(1e200, FeatureRangeError), (1e-160, FeatureRangeError), (0.0, ConstantInputError)])
def test_features_out_of_float64_range_or_constant_are_named_errors(n_train, scale, error):
    X_train, X_test, _ = make_regression(n_train, 10, 20, 1, seed=7)
    offset = 1.0 if scale == 0.0 else 0.0  # scale 0: a constant feature set
    with pytest.raises(error, match="overflow|underflow|constant"):
        decompose_train_features(X_train * scale + offset, X_test * scale + offset)


@pytest.mark.parametrize(("n_train", "n_features"), [(400, 150), (300, 700)])  # primal, dual
def test_peak_memory_stays_within_the_stated_formula(n_train, n_features):
    n_test, n_voxels = 80, 60
    X_train, X_test, Y_train = make_regression(n_train, n_test, n_features, n_voxels, seed=8)
    stated = regression_peak_bytes(n_train, n_test, n_features, n_voxels, feature_chunk_size=256)
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    decomposition = decompose_train_features(X_train, X_test, feature_chunk_size=256)
    decomposition.ridgecv_many([Y_train])
    decomposition.ridge(Y_train, 1.0)
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    assert peak <= stated, (peak, stated)
    assert peak >= stated / 4, (peak, stated)  # the formula is a bound that means something


def test_gram_route_on_a_well_conditioned_layer_equals_the_svd_and_an_ill_conditioned_one_falls_back():
    from laion_lake.compute.primal import GRAM_CONDITION_LIMIT, _well_conditioned_basis

    X_train, X_test, Y_train = make_regression(300, 50, 40, 6, seed=9)
    Xc = X_train - X_train.mean(axis=0)
    U, s, _ = _well_conditioned_basis(Xc.copy())
    assert U is not None  # Gaussian features: squared condition number in the tens
    reference_s = np.linalg.svd(Xc, compute_uv=False)
    np.testing.assert_allclose(s, reference_s, rtol=1e-12)
    assert np.abs(U.T @ U - np.eye(U.shape[1])).max() < 1e-12
    ours = decompose_centered_features(X_train, X_test).ridgecv(Y_train)
    reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=False).fit(X_train, Y_train)
    assert ours.alpha == reference.alpha_
    np.testing.assert_allclose(ours.predictions, reference.predict(X_test), rtol=1e-9, atol=1e-9)

    # one direction squeezed past the limit: still full rank, but the Gram matrix would lose it
    squeeze = np.ones(X_train.shape[1])
    squeeze[-1] = 1e-4
    assert (reference_s[0] / (reference_s[-1] * 1e-4)) ** 2 > GRAM_CONDITION_LIMIT
    ill_train, ill_test = X_train * squeeze, X_test * squeeze
    assert _well_conditioned_basis(ill_train - ill_train.mean(axis=0))[0] is None
    fallback = decompose_centered_features(ill_train, ill_test)
    assert fallback.rank == X_train.shape[1]
    ours = fallback.ridgecv(Y_train)
    reference = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=False).fit(ill_train, Y_train)
    assert ours.alpha == reference.alpha_
    np.testing.assert_allclose(ours.predictions, reference.predict(ill_test), rtol=1e-8, atol=1e-8)
