"""Unbiased linear CKA (SPEC 3.4) against a direct evaluation of the formula and its known cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from laion_lake.compute.cka import UnbiasedGram, accumulate_gram, cka, linear_cka, pairwise_ceiling, unbiased_hsic


def hsic_by_the_formula(X: np.ndarray, Y: np.ndarray) -> float:
    """SPEC 3.4 written out term by term with explicit sums (no shared code with the module)."""
    n = X.shape[0]
    K = np.array([[float(np.dot(X[i], X[j])) if i != j else 0.0 for j in range(n)] for i in range(n)])
    L = np.array([[float(np.dot(Y[i], Y[j])) if i != j else 0.0 for j in range(n)] for i in range(n)])
    ones = np.ones(n)
    first = sum(K[i, j] * L[i, j] for i in range(n) for j in range(n))
    second = (ones @ K @ ones) * (ones @ L @ ones) / ((n - 1) * (n - 2))
    third = 2.0 / (n - 2) * sum((K @ ones)[i] * (L @ ones)[i] for i in range(n))
    return (first + second - third) / (n * (n - 3))


def cka_by_the_formula(X: np.ndarray, Y: np.ndarray) -> float:
    xx, yy = hsic_by_the_formula(X, X), hsic_by_the_formula(Y, Y)
    return 0.0 if xx * yy <= 0 else hsic_by_the_formula(X, Y) / (np.sqrt(xx * yy) + 1e-12)


def test_estimator_matches_the_formula_term_by_term():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 7)) + 0.5  # not centred: the estimator takes raw representations
    Y = X[:, :3] @ rng.normal(size=(3, 11)) + rng.normal(size=(23, 11))
    K, L = UnbiasedGram.from_features(X), UnbiasedGram.from_features(Y)
    assert unbiased_hsic(K, L) == pytest.approx(hsic_by_the_formula(X, Y), rel=1e-10)
    assert unbiased_hsic(K, K) == pytest.approx(hsic_by_the_formula(X, X), rel=1e-10)
    assert linear_cka(X, Y) == pytest.approx(cka_by_the_formula(X, Y), rel=1e-10)
    assert 0.2 < linear_cka(X, Y) < 1.0


def test_identical_representations_give_one_and_independent_about_zero():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 30))
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-9)
    independent = [linear_cka(rng.normal(size=(400, 30)), rng.normal(size=(400, 20))) for _ in range(5)]
    # unbiased: independent representations average 0 (the biased CKA would sit near sqrt(d/n) > 0)
    assert abs(np.mean(independent)) < 0.01
    assert max(abs(v) for v in independent) < 0.03


def test_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 12))
    Y = np.tanh(X @ rng.normal(size=(12, 9))) + 0.3 * rng.normal(size=(60, 9))
    reference = linear_cka(X, Y)
    Q = ortho_group.rvs(12, random_state=3)
    assert linear_cka(X @ Q, Y) == pytest.approx(reference, rel=1e-9)
    assert linear_cka(7.5 * X, 0.01 * Y) == pytest.approx(reference, rel=1e-9)
    # and not to an anisotropic scaling (so the two checks above can fail)
    assert abs(linear_cka(X * np.linspace(0.1, 10, 12), Y) - reference) > 1e-3


def test_zero_when_a_self_hsic_is_not_positive():
    X = np.zeros((10, 3))
    assert linear_cka(X, np.random.default_rng(0).normal(size=(10, 4))) == 0.0


def test_gram_accumulated_by_feature_chunks_equals_one_product():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(15, 50))
    gram = np.zeros((15, 15))
    for start in range(0, 50, 16):
        accumulate_gram(gram, X[:, start : start + 16])
    np.testing.assert_allclose(gram, X @ X.T, rtol=1e-12)
    assert cka(UnbiasedGram.from_gram(gram), UnbiasedGram.from_features(X[:, :5])) == pytest.approx(linear_cka(X, X[:, :5]), rel=1e-12)


def test_needs_four_stimuli():
    with pytest.raises(ValueError, match="n >= 4"):
        UnbiasedGram.from_features(np.ones((3, 2)))


def test_pairwise_ceiling_pairs_mean_sem_and_subject_means():
    rng = np.random.default_rng(5)
    shared = rng.normal(size=(80, 6))
    subjects = {f"s{i}": shared @ rng.normal(size=(6, 20 + i)) + (0.5 + i) * rng.normal(size=(80, 20 + i)) for i in range(4)}
    ceiling = pairwise_ceiling([(name, UnbiasedGram.from_features(Y)) for name, Y in subjects.items()])
    assert len(ceiling.pairs) == 6
    expected = {pair: cka_by_the_formula(subjects[pair[0]], subjects[pair[1]]) for pair, _ in ceiling.pairs}
    for pair, value in ceiling.pairs:
        assert value == pytest.approx(expected[pair], rel=1e-9)
    values = np.array(list(expected.values()))
    assert ceiling.value == pytest.approx(values.mean())
    assert ceiling.error == pytest.approx(values.std(ddof=1) / np.sqrt(6))
    assert ceiling.subject_means["s0"] == pytest.approx(np.mean([v for p, v in expected.items() if "s0" in p]))
    # noisier subjects agree less with the others
    assert ceiling.subject_means["s0"] > ceiling.subject_means["s3"]
    with pytest.raises(ValueError, match="at least 2 subjects"):
        pairwise_ceiling([("s0", UnbiasedGram.from_features(subjects["s0"]))])
