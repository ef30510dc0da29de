"""Pearson per column, RDMs, upper triangles and Spearman, against scipy and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from laion_lake.compute.correlation import (
    pearson_r_per_column,
    representational_dissimilarity_matrix,
    spearman_r,
    spearman_rdm_similarity,
    upper_triangle,
)


def test_pearson_per_column_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 8))
    b = 0.5 * a + rng.standard_normal((50, 8)) + 100.0  # a large offset must not matter
    r = pearson_r_per_column(a, b.astype(np.float32))
    expected = [scipy.stats.pearsonr(a[:, j], b.astype(np.float32)[:, j].astype(np.float64)).statistic for j in range(8)]
    np.testing.assert_allclose(r, expected, rtol=1e-10)
    assert r.dtype == np.float64


def test_pearson_constant_column_is_nan() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((20, 3))
    b = rng.standard_normal((20, 3))
    a[:, 1] = 0.1  # constant: its float mean rounds, the variance test must not
    b[:, 2] = 7.0
    r = pearson_r_per_column(a, b)
    assert np.isnan(r[1]) and np.isnan(r[2]) and np.isfinite(r[0])
    assert np.all(np.isnan(pearson_r_per_column(a[:1], b[:1])))
    with pytest.raises(ValueError):
        pearson_r_per_column(a, b[:, :2])


@pytest.mark.parametrize("chunk", [3, 64, 10_000])
def test_rdm_is_one_minus_correlation_of_rows(chunk: int) -> None:
    rng = np.random.default_rng(2)
    patterns = rng.standard_normal((30, 200)) * rng.uniform(0.5, 2, (30, 1)) + rng.uniform(-3, 3, (30, 1))
    rdm = representational_dissimilarity_matrix(patterns, unit_chunk_size=chunk)
    expected = 1.0 - np.corrcoef(patterns)
    np.testing.assert_allclose(rdm, expected, atol=1e-12)
    assert rdm.shape == (30, 30) and np.array_equal(rdm, rdm.T) and np.all(np.diag(rdm) == 0)


def test_rdm_of_large_mean_float32_features() -> None:
    rng = np.random.default_rng(3)
    features = np.maximum(rng.normal(5.0, 1.0, size=(25, 3000)), 0).astype(np.float32)
    rdm = representational_dissimilarity_matrix(features, unit_chunk_size=512)
    expected = 1.0 - np.corrcoef(features.astype(np.float64))
    np.testing.assert_allclose(rdm, expected, atol=1e-12)


def test_rdm_constant_pattern_gives_nan_row() -> None:
    rng = np.random.default_rng(4)
    patterns = rng.standard_normal((5, 10))
    patterns[2] = 3.0
    rdm = representational_dissimilarity_matrix(patterns)
    assert np.all(np.isnan(rdm[2])) and np.all(np.isnan(rdm[:, 2]))
    keep = [0, 1, 3, 4]
    np.testing.assert_allclose(rdm[np.ix_(keep, keep)], 1 - np.corrcoef(patterns[keep]), atol=1e-12)


def test_upper_triangle_excludes_the_diagonal_row_by_row() -> None:
    matrix = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(upper_triangle(matrix), [1, 2, 3, 6, 7, 11])
    assert upper_triangle(np.zeros((1121, 1121))).shape == (1121 * 1120 // 2,)
    with pytest.raises(ValueError):
        upper_triangle(np.zeros((3, 4)))


def test_spearman_of_rdms_matches_scipy_with_ties() -> None:
    rng = np.random.default_rng(5)
    rdm_a = representational_dissimilarity_matrix(rng.standard_normal((40, 30)))
    rdm_b = representational_dissimilarity_matrix(rng.standard_normal((40, 30)) + 0.05 * np.arange(30))
    rdm_a = np.round(rdm_a, 1)  # many ties: ranks must be averaged
    rho = spearman_rdm_similarity(rdm_a, rdm_b)
    expected = scipy.stats.spearmanr(upper_triangle(rdm_a), upper_triangle(rdm_b)).statistic
    assert rho == pytest.approx(expected, abs=1e-12)
    assert spearman_rdm_similarity(rdm_a, rdm_a) == pytest.approx(1.0)


def test_spearman_degenerate_inputs_are_nan() -> None:
    assert np.isnan(spearman_r([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]))
    assert np.isnan(spearman_r([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
    assert np.isnan(spearman_r([1.0], [2.0]))
    assert spearman_r([1, 2, 3, 4], [10, 20, 30, 25]) == pytest.approx(scipy.stats.spearmanr([1, 2, 3, 4], [10, 20, 30, 25]).statistic)
    with pytest.raises(ValueError):
        spearman_rdm_similarity(np.zeros((3, 3)), np.zeros((4, 4)))
