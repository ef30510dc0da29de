"""The partial-fraction LOO sweep against the direct one (per-alpha SYRK / TRMM) on both routes."""

from __future__ import annotations

import numpy as np
import pytest

import laion_lake.compute.loo_fractions as loo_fractions
import laion_lake.compute.ridge_cv as ridge_cv
from laion_lake.compute.kernel import compute_centered_linear_kernels
from laion_lake.compute.primal import decompose_centered_features
from laion_lake.compute.ridge import DEFAULT_ALPHAS, eigendecompose_centered_kernel, solve_kernel_ridge_cv_eigen
from laion_lake.compute.loo_fractions import fraction_sums


def _direct(basis, values, gram, omegas, alphas):
    out = []
    for a, alpha in enumerate(alphas):
        scaled = basis / (values + alpha)
        out.append(np.einsum("ik,ik->i", scaled @ gram, scaled) @ omegas[:, a])
    return np.array(out)


@pytest.mark.parametrize("gram_as", ["matrix", "factor"])
def test_fraction_sums_equal_the_direct_sums_with_equal_values_and_every_alpha(gram_as):
    rng = np.random.default_rng(3)
    n, r, v = 120, 40, 25
    basis = np.linalg.qr(rng.standard_normal((n, r)))[0]
    values = np.sort(rng.uniform(0.5, 50.0, r) ** 2)
    values[:6] = 0.0  # a group of equal values (null directions), as the dual route has
    values[10:13] = values[10]  # and one inside the spectrum
    B = rng.standard_normal((r, v))
    gram = B @ B.T
    fitted = np.einsum("ij,ij->i", basis @ B, basis @ B)
    omegas = rng.uniform(0.5, 3.0, (n, len(DEFAULT_ALPHAS)))
    given = gram if gram_as == "matrix" else loo_fractions.GramFactor(B)  # G's rows formed from B
    result = fraction_sums(basis, values, given, fitted, omegas, DEFAULT_ALPHAS)
    expected = _direct(basis, values, gram, omegas, DEFAULT_ALPHAS)
    np.testing.assert_allclose(result.sums, expected, rtol=1e-11, atol=0)
    assert np.all(result.error_bounds >= np.abs(result.sums - expected))  # the bound bounds


def _relu_features(rng, n, p):
    latent = rng.standard_normal((n, 12))
    return np.maximum(latent @ rng.standard_normal((12, p)) + 0.3 * rng.standard_normal((n, p)), 0)


@pytest.mark.parametrize("route", ["primal", "dual"])
def test_sweep_equals_the_direct_sweep_and_picks_the_same_alpha(route, monkeypatch):
    rng = np.random.default_rng(5)
    n, n_test = 300, 60
    p = 80 if route == "primal" else 700
    X = _relu_features(rng, n + n_test, p)
    Y = X[:, :30] @ rng.standard_normal((30, 50)) * 0.05 + rng.standard_normal((n + n_test, 50))
    targets = [Y[:n, :20], Y[:n, 20:]]

    def sweep():
        if route == "primal":
            decomposition = decompose_centered_features(X[:n], X[n:])
            return decomposition.ridgecv_many(targets)
        K, Kt = compute_centered_linear_kernels(X[:n], X[n:])
        decomposition = eigendecompose_centered_kernel(K, Kt)
        return [solve_kernel_ridge_cv_eigen(decomposition, t) for t in targets]

    fast = sweep()
    monkeypatch.setattr(loo_fractions, "FRACTION_TOLERANCE", -1.0)  # every alpha the direct way
    monkeypatch.setattr(loo_fractions, "REPORT_TOLERANCE", -1.0)
    direct = sweep()
    for a, b in zip(fast, direct):
        np.testing.assert_allclose(a.cv_errors, b.cv_errors, rtol=1e-10, atol=0)
        assert a.alpha == b.alpha
        np.testing.assert_array_equal(a.predictions, b.predictions)


def test_only_alphas_that_could_be_chosen_or_are_too_loose_to_report_go_direct():
    totals = np.array([10.0, 5.0, 5.0 + 1e-7, 8.0, 20.0, np.nan])
    bounds = np.array([1e-7, 1e-7, 1e-7, 1e-4, 1e-12, 0.0]) * np.nan_to_num(totals, nan=1.0)
    # 0: loose (1e-7 > 1e-8) but far above the best interval -> kept; 1, 2: loose and overlapping
    # the best -> direct; 3: looser than 1e-6 -> direct; 4: tight -> kept; 5: NaN -> direct
    np.testing.assert_array_equal(loo_fractions.needs_direct(bounds, totals), [False, True, True, True, False, True])


def test_with_every_bound_loose_only_the_candidates_go_direct_and_the_choice_is_the_direct_one(monkeypatch):
    rng = np.random.default_rng(8)
    n, n_test, p = 200, 40, 500
    X = _relu_features(rng, n + n_test, p)
    Y = X[:, :20] @ rng.standard_normal((20, 30)) * 0.05 + rng.standard_normal((n + n_test, 30))
    K, Kt = compute_centered_linear_kernels(X[:n], X[n:])
    decomposition = eigendecompose_centered_kernel(K, Kt)
    evaluated = []
    direct_sums = ridge_cv._loo_error_sums_direct

    def counting(Q, eigenvalues, B, alphas, d_all):
        evaluated.append(len(alphas))
        return direct_sums(Q, eigenvalues, B, alphas, d_all)

    monkeypatch.setattr(ridge_cv, "_loo_error_sums_direct", counting)
    monkeypatch.setattr(loo_fractions, "FRACTION_TOLERANCE", 0.0)  # every bound "too loose"
    chosen = solve_kernel_ridge_cv_eigen(decomposition, Y[:n])
    monkeypatch.setattr(loo_fractions, "REPORT_TOLERANCE", -1.0)  # and now every alpha direct
    direct = solve_kernel_ridge_cv_eigen(decomposition, Y[:n])
    assert evaluated[1] == len(DEFAULT_ALPHAS) and 1 <= evaluated[0] < len(DEFAULT_ALPHAS)
    assert chosen.alpha == direct.alpha
    np.testing.assert_array_equal(chosen.predictions, direct.predictions)
    np.testing.assert_allclose(chosen.cv_errors, direct.cv_errors, rtol=1e-6, atol=0)
