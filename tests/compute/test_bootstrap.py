"""Seeded bootstrap of a mean: the documented procedure, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from laion_lake.compute.bootstrap import bootstrap_mean_error


def test_bootstrap_follows_its_definition_bit_for_bit() -> None:
    values = np.array([0.31, 0.42, 0.27, 0.55, 0.38])
    result = bootstrap_mean_error(values, n_draws=200, seed=7)
    rng = np.random.default_rng(7)
    expected_means = np.array([values[rng.integers(0, 5, size=5)].mean() for _ in range(200)])
    np.testing.assert_array_equal(result.draw_means, expected_means)
    assert result.error == expected_means.std(ddof=1)
    assert result.reason is None
    assert 0.01 < result.error < 0.1  # about sd / sqrt(n) = 0.05


def test_bootstrap_is_deterministic_per_seed() -> None:
    values = np.linspace(0, 1, 5)
    first, second = bootstrap_mean_error(values, seed=3), bootstrap_mean_error(values, seed=3)
    np.testing.assert_array_equal(first.draw_means, second.draw_means)
    assert first.error == second.error
    assert bootstrap_mean_error(values, seed=4).error != first.error
    assert len(first.draw_means) == 200


def test_single_or_no_value_gives_nan_with_a_reason() -> None:
    single = bootstrap_mean_error([0.4])
    assert np.isnan(single.error) and "single value" in single.reason and single.draw_means.size == 0
    empty = bootstrap_mean_error([])
    assert np.isnan(empty.error) and empty.reason
    with pytest.raises(ValueError):
        bootstrap_mean_error([1.0, 2.0], n_draws=1)
