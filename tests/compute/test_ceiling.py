"""NSD noise ceilings, their conversions between designs, and the ceiling conventions."""

from __future__ import annotations

import numpy as np
import pytest

from laion_lake.compute.ceiling import (
    MEAN_INVERSE_REPEATS_4REP,
    MEAN_INVERSE_REPEATS_12REP,
    brainscore_ceiled_score,
    brainscore_ceiling,
    convert_noise_ceiling,
    estimate_ncsnr_from_repeats,
    mean_inverse_repeats,
    ncsnr_from_noise_ceiling,
    noise_ceiling_for_design,
    noise_ceiling_from_ncsnr,
    nsd_ceiled_score,
    nsd_normalized_r2,
    nsd_noise_ceiling_for_test_design,
    rdm_ceiled_score,
    rdm_ceiling,
)


def test_noise_ceiling_formula_closed_form() -> None:
    # ncsnr 1 over 12 repeats: 100 * 1 / (1 + 1/12) = 1200 / 13
    assert noise_ceiling_from_ncsnr(np.array([1.0]), 1 / 12)[0] == pytest.approx(1200 / 13, rel=1e-14)
    # ncsnr 0.5 over 4 repeats: 100 * 0.25 / (0.25 + 0.25) = 50
    assert noise_ceiling_from_ncsnr(np.array([0.5]), 1 / 4)[0] == pytest.approx(50.0, rel=1e-14)
    np.testing.assert_array_equal(noise_ceiling_from_ncsnr(np.array([0.0, np.inf]), 1 / 12), [0.0, 100.0])
    assert np.isnan(noise_ceiling_from_ncsnr(np.array([np.nan]), 1 / 12)[0])


@pytest.mark.parametrize("k", [MEAN_INVERSE_REPEATS_12REP, MEAN_INVERSE_REPEATS_4REP, 0.17])
def test_ncsnr_round_trips_through_the_noise_ceiling(k: float) -> None:
    ncsnr = np.array([0.0, 0.05, 0.3, 1.0, 2.5, 10.0])
    np.testing.assert_allclose(ncsnr_from_noise_ceiling(noise_ceiling_from_ncsnr(ncsnr, k), k), ncsnr, rtol=1e-12)
    nc = np.array([0.0, 1.0, 30.0, 77.7, 99.9])
    np.testing.assert_allclose(noise_ceiling_from_ncsnr(ncsnr_from_noise_ceiling(nc, k), k), nc, rtol=1e-12, atol=1e-12)


def test_ncsnr_from_out_of_range_noise_ceilings() -> None:
    np.testing.assert_array_equal(ncsnr_from_noise_ceiling(np.array([-3.0, 0.0, 100.0, 101.0]), 1 / 12), [0.0, 0.0, np.inf, np.inf])


def test_twelve_repeat_ceiling_from_a_four_repeat_one() -> None:
    # a 4-rep NC of 50% means ncsnr^2 = (1/4) * 0.5 / 0.5 = 1/4; over 12 repeats:
    # 100 * (1/4) / (1/4 + 1/12) = 75
    assert convert_noise_ceiling(np.array([50.0]), 1 / 4, 1 / 12)[0] == pytest.approx(75.0, rel=1e-13)
    nc_4 = np.array([5.0, 20.0, 60.0])
    ncsnr = ncsnr_from_noise_ceiling(nc_4, 1 / 4)
    np.testing.assert_allclose(convert_noise_ceiling(nc_4, 1 / 4, 1 / 12), noise_ceiling_from_ncsnr(ncsnr, 1 / 12), rtol=1e-14)
    assert np.all(convert_noise_ceiling(nc_4, 1 / 4, 1 / 12) > nc_4)  # more repeats, higher ceiling


def test_noise_ceiling_for_a_repeat_design() -> None:
    # the shared pool: 881 images x 12 and 611 x 4, and one image that lost a repeat
    counts = np.array([12] * 880 + [11] + [4] * 611)
    k = (880 / 12 + 1 / 11 + 611 / 4) / 1492
    assert mean_inverse_repeats(counts) == pytest.approx(k, rel=1e-14)
    ncsnr = np.array([0.2, 0.8])
    np.testing.assert_allclose(noise_ceiling_for_design(ncsnr, counts), 100 * ncsnr**2 / (ncsnr**2 + k), rtol=1e-14)
    np.testing.assert_allclose(nsd_noise_ceiling_for_test_design(ncsnr, [4, 4, 3]), 100 * ncsnr**2 / (ncsnr**2 + (1 / 4 + 1 / 4 + 1 / 3) / 3), rtol=1e-14)
    with pytest.raises(ValueError):
        mean_inverse_repeats([4, 0])


def test_brainscore_convention() -> None:
    nc_12rep = np.array([36.0, 64.0, 81.0, 120.0, -5.0])  # clipped to [0, 100]: sqrt -> .6 .8 .9 1 0
    ceiling = brainscore_ceiling(nc_12rep)
    assert ceiling == pytest.approx(0.8)
    assert brainscore_ceiled_score(0.5, ceiling) == pytest.approx(0.25 / 0.8)
    assert brainscore_ceiled_score(0.95, 0.5) == pytest.approx(1.805)  # no clipping


def test_nsd_convention() -> None:
    r = np.array([0.3, 0.5, 0.2])
    nc_test = np.array([50.0, 50.0, 10.0])  # r^2 / f = 0.18, 0.5, 0.4 -> median 0.4
    assert nsd_ceiled_score(r, nc_test) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        nsd_ceiled_score(r, nc_test[:2])


def test_nsd_normalized_r2_per_voxel_against_numpy() -> None:
    """#12: the stored per-voxel quantity is r_v^2 / (NC_v / 100), NC_v for the test design from ncsnr."""
    rng = np.random.default_rng(3)
    r = rng.uniform(-0.3, 0.9, 50)
    ncsnr = rng.uniform(0.05, 2.0, 50)
    repeats = rng.integers(1, 5, 30)
    nc = nsd_noise_ceiling_for_test_design(ncsnr, repeats)
    k = np.mean(1.0 / repeats)
    direct = r**2 / (ncsnr**2 / (ncsnr**2 + k))  # written out from SPEC 3.3, not through the module
    np.testing.assert_allclose(nsd_normalized_r2(r, nc), direct, rtol=1e-12)
    assert nsd_ceiled_score(r, nc) == np.median(nsd_normalized_r2(r, nc))
    # closed forms: r 0.5 at NC 50 % -> 0.5; NC 0 -> inf (r != 0), NaN (r == 0)
    np.testing.assert_array_equal(nsd_normalized_r2(np.array([0.5, 0.3, 0.0]), np.array([50.0, 0.0, 0.0])), [0.5, np.inf, np.nan])
    with pytest.raises(ValueError, match="one value per voxel"):
        nsd_normalized_r2(np.ones(3), np.ones(2))


def test_rdm_convention() -> None:
    nc_12rep = np.array([25.0, 64.0, 100.0])  # sqrt: .5 .8 1 -> mean 0.7667
    assert rdm_ceiling(nc_12rep) == pytest.approx(2.3 / 3)
    assert rdm_ceiled_score(0.23, rdm_ceiling(nc_12rep)) == pytest.approx(0.3)


def reference_ncsnr(betas: np.ndarray, stimulus_index: np.ndarray) -> np.ndarray:
    """The estimator written out plainly, one stimulus at a time."""
    variances = [betas[stimulus_index == s].var(axis=0, ddof=1) for s in np.unique(stimulus_index) if np.sum(stimulus_index == s) >= 2]
    noise = np.mean(variances, axis=0)
    signal = np.maximum(betas.var(axis=0) - noise, 0.0)
    return np.sqrt(signal / noise)


def test_ncsnr_estimator_matches_its_definition_and_the_truth() -> None:
    rng = np.random.default_rng(0)
    n_stimuli, n_voxels = 300, 6
    signal_sd = np.array([0.0, 0.2, 0.5, 1.0, 2.0, 0.7])
    repeats = rng.choice([1, 3, 4, 12], size=n_stimuli)  # single-shown stimuli: total variance only
    stimulus_index = np.repeat(np.arange(n_stimuli) * 7 + 5, repeats)  # arbitrary integer labels
    order = rng.permutation(len(stimulus_index))
    stimulus_index = stimulus_index[order]
    signal = rng.standard_normal((n_stimuli, n_voxels)) * signal_sd
    betas = signal[(stimulus_index - 5) // 7] + rng.standard_normal((len(stimulus_index), n_voxels))
    betas = ((betas - betas.mean(axis=0)) / betas.std(axis=0)).astype(np.float32)  # z-scored as shipped

    ncsnr = estimate_ncsnr_from_repeats(betas, stimulus_index, voxel_chunk_size=4)
    np.testing.assert_allclose(ncsnr, reference_ncsnr(betas.astype(np.float64), stimulus_index), rtol=1e-10, atol=1e-12)
    # the true ncsnr is signal_sd / 1 (noise sd 1), before z-scoring, which preserves the ratio
    np.testing.assert_allclose(ncsnr[2:], signal_sd[2:], rtol=0.2)  # weak signals: too noisy to check
    assert ncsnr[0] < 0.15


def test_ncsnr_estimator_degenerate_cases() -> None:
    assert np.all(np.isnan(estimate_ncsnr_from_repeats(np.ones((3, 2)), [0, 1, 2])))  # no repeats
    assert np.isnan(estimate_ncsnr_from_repeats(np.array([[1.0], [1.0], [2.0], [2.0]]), [0, 0, 1, 1])[0])  # no noise
    with pytest.raises(ValueError):
        estimate_ncsnr_from_repeats(np.ones((3, 2)), [0, 1])
