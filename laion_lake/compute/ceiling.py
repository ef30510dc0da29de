"""Noise ceilings (NSD's definition) and the two ceiling conventions of the benchmark.

NSD defines, per voxel, the noise-ceiling SNR ``ncsnr = signal sd / noise sd`` of single-trial
betas, and the noise ceiling of a design where stimulus ``c`` is averaged over ``n_c`` repeats as

    NC = 100 * ncsnr^2 / (ncsnr^2 + mean_c(1 / n_c))        (percent of variance explainable)

So an NC shipped for one design converts to any other through ncsnr:
``ncsnr^2 = k * f / (1 - f)`` with ``f = NC / 100`` and ``k = mean_c(1 / n_c)`` of the design the NC
was computed for (1/12 for ``nc_12rep``, 1/4 for ``nc_4rep``).

Conventions for the ceiled score (see SPEC 3.2, 3.3):

- ``brainscore``: ``c = median_v sqrt(clip(nc_12rep_v, 0, 100) / 100)``, ceiled = ``raw**2 / c``
  (an r^2 numerator over an r-scale ceiling, kept for parity with the published benchmark).
- ``nsd``: ceiled = ``median_v(r_v**2 / (NC_v / 100))`` with ``NC_v`` for the design actually
  averaged on the test set.
- RDM: ceiling = ``mean_v sqrt(clip(nc_12rep_v, 0, 100) / 100)``, ceiled = ``raw / ceiling``.

NaN handling: medians and means propagate NaN (a NaN voxel makes the result NaN), on purpose, so a
missing value is seen rather than silently dropped; filter voxels before calling.
"""

from __future__ import annotations

import numpy as np

MEAN_INVERSE_REPEATS_12REP = 1.0 / 12.0
MEAN_INVERSE_REPEATS_4REP = 1.0 / 4.0


def mean_inverse_repeats(repeat_counts: np.ndarray) -> float:
    """``k = mean_c(1 / n_c)`` of a design: the noise variance left after averaging, per unit.

    Parameters
    ----------
    repeat_counts : array of shape (n_stimuli,)
        Number of repeats averaged for each stimulus (positive integers; counted from the data,
        since some stimuli lost a repeat).
    """
    counts = np.asarray(repeat_counts, dtype=np.float64).ravel()
    if counts.size == 0 or np.any(counts < 1):
        raise ValueError("repeat_counts must be a non-empty array of counts >= 1")
    return float(np.mean(1.0 / counts))


def noise_ceiling_from_ncsnr(ncsnr: np.ndarray, mean_inverse_repeat_count: float) -> np.ndarray:
    """NC in percent: ``100 * ncsnr^2 / (ncsnr^2 + k)``, ``k = mean_c(1 / n_c)`` of the design.

    Parameters
    ----------
    ncsnr : array of shape (n_voxels,)
        Non-negative; ``inf`` gives 100.
    mean_inverse_repeat_count : float
        ``k`` of the design, e.g. from :func:`mean_inverse_repeats`.

    Returns
    -------
    nc : array of shape (n_voxels,), percent in [0, 100]
    """
    snr2 = np.asarray(ncsnr, dtype=np.float64) ** 2
    k = float(mean_inverse_repeat_count)
    with np.errstate(invalid="ignore"):
        fraction = np.where(np.isinf(snr2), 1.0, snr2 / (snr2 + k))
    return 100.0 * fraction


def noise_ceiling_for_design(ncsnr: np.ndarray, repeat_counts: np.ndarray) -> np.ndarray:
    """NC in percent for any repeat design given as the repeat count of each stimulus.

    Parameters
    ----------
    ncsnr : array of shape (n_voxels,)
    repeat_counts : array of shape (n_stimuli,)

    Returns
    -------
    nc : array of shape (n_voxels,)
    """
    return noise_ceiling_from_ncsnr(ncsnr, mean_inverse_repeats(repeat_counts))


def ncsnr_from_noise_ceiling(nc_percent: np.ndarray, mean_inverse_repeat_count: float) -> np.ndarray:
    """Inverse of :func:`noise_ceiling_from_ncsnr`: ``ncsnr = sqrt(k f / (1 - f))``, ``f = NC / 100``.

    Parameters
    ----------
    nc_percent : array of shape (n_voxels,)
        NC in percent. Values are clipped to [0, 100] first (shipped maps can hold tiny
        negatives or rounding above 100); 100 maps to ``inf``.
    mean_inverse_repeat_count : float
        ``k`` of the design the NC was computed for (1/12 for ``nc_12rep``).

    Returns
    -------
    ncsnr : array of shape (n_voxels,)
    """
    fraction = np.clip(np.asarray(nc_percent, dtype=np.float64), 0.0, 100.0) / 100.0
    with np.errstate(divide="ignore"):
        return np.sqrt(float(mean_inverse_repeat_count) * fraction / (1.0 - fraction))


def convert_noise_ceiling(
    nc_percent: np.ndarray, from_mean_inverse_repeats: float, to_mean_inverse_repeats: float
) -> np.ndarray:
    """NC of one design re-expressed for another, through ncsnr (e.g. ``nc_4rep`` -> 12 repeats)."""
    return noise_ceiling_from_ncsnr(
        ncsnr_from_noise_ceiling(nc_percent, from_mean_inverse_repeats), to_mean_inverse_repeats
    )


def estimate_ncsnr_from_repeats(
    betas: np.ndarray, stimulus_index: np.ndarray, voxel_chunk_size: int = 4096
) -> np.ndarray:
    """NSD's ncsnr estimator from single-trial betas.

    ``noise variance`` = mean, over stimuli shown at least twice, of the variance across that
    stimulus's trials (ddof=1); ``total variance`` = variance of all the given trials (ddof=0);
    ``signal variance = max(total - noise, 0)``; ``ncsnr = sqrt(signal / noise)``.

    Assumptions: the betas are z-scored per voxel within session, as the dataset ships them, so
    the total variance is about 1 (NSD takes it as exactly 1; here it is measured on the trials
    given, which is the same for z-scored data and still meaningful otherwise). Stimuli with a
    single trial count in the total variance but not in the noise variance.

    Parameters
    ----------
    betas : array of shape (n_trials, n_voxels)
    stimulus_index : int array of shape (n_trials,)
        Stimulus of each trial (any integer labels).
    voxel_chunk_size : int
        Voxels converted to float64 at a time.

    Returns
    -------
    ncsnr : array of shape (n_voxels,)
        0 where the signal variance is 0; NaN where the noise variance is 0 (and so undefined) or
        no stimulus has two trials.
    """
    betas = np.asarray(betas)
    stimulus_index = np.asarray(stimulus_index).ravel()
    if betas.ndim != 2 or betas.shape[0] != stimulus_index.shape[0]:
        raise ValueError(
            f"betas {betas.shape} and stimulus_index {stimulus_index.shape} disagree on the number of trials"
        )
    _, group, counts = np.unique(stimulus_index, return_inverse=True, return_counts=True)
    repeated = counts >= 2
    n_voxels = betas.shape[1]
    if not repeated.any():
        return np.full(n_voxels, np.nan)

    # sort trials by stimulus so each stimulus is a contiguous run for np.add.reduceat
    order = np.argsort(group, kind="stable")
    run_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    group_sorted = group[order]

    ncsnr = np.empty(n_voxels)
    for start in range(0, n_voxels, voxel_chunk_size):
        stop = min(start + voxel_chunk_size, n_voxels)
        chunk = np.asarray(betas[order, start:stop], dtype=np.float64)
        means = np.add.reduceat(chunk, run_starts, axis=0) / counts[:, None]
        # two passes (deviations from the stimulus mean) rather than E[x^2] - E[x]^2
        squared_deviations = (chunk - means[group_sorted]) ** 2
        within_sum = np.add.reduceat(squared_deviations, run_starts, axis=0)
        within_variance = within_sum[repeated] / (counts[repeated, None] - 1)
        noise_variance = within_variance.mean(axis=0)
        total_variance = chunk.var(axis=0)
        signal_variance = np.maximum(total_variance - noise_variance, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ncsnr[start:stop] = np.where(noise_variance > 0, np.sqrt(signal_variance / noise_variance), np.nan)
    return ncsnr


# --------------------------------------------------------------------------------------------------
# the ceiling conventions
# --------------------------------------------------------------------------------------------------


def brainscore_ceiling(nc_12rep_percent: np.ndarray) -> float:
    """``c = median_v sqrt(clip(nc_12rep_v, 0, 100) / 100)`` (r scale).

    Parameters
    ----------
    nc_12rep_percent : array of shape (n_voxels,)
    """
    nc = np.clip(np.asarray(nc_12rep_percent, dtype=np.float64), 0.0, 100.0)
    return float(np.median(np.sqrt(nc / 100.0)))


def brainscore_ceiled_score(raw: float, ceiling: float) -> float:
    """``raw**2 / ceiling``, no clipping (parity with the published benchmark, see the module doc)."""
    return float(raw) ** 2 / float(ceiling)


def nsd_normalized_r2(r_per_voxel: np.ndarray, nc_test_percent: np.ndarray) -> np.ndarray:
    """Per-voxel noise-normalised variance explained: ``r_v**2 / (NC_v / 100)`` (the ``nsd`` convention).

    Parameters
    ----------
    r_per_voxel : array of shape (n_voxels,)
        Pearson r of prediction and repeat-averaged response on the test set.
    nc_test_percent : array of shape (n_voxels,)
        Each voxel's NC (percent) for the test design as averaged.

    Returns
    -------
    r2_nsd : array of shape (n_voxels,), float64
        ``inf`` where NC is 0 and r is not, NaN where both are 0 or r is NaN.
    """
    r = np.asarray(r_per_voxel, dtype=np.float64)
    nc = np.asarray(nc_test_percent, dtype=np.float64)
    if r.shape != nc.shape:
        raise ValueError(f"r {r.shape} and NC {nc.shape} must have one value per voxel each")
    with np.errstate(divide="ignore", invalid="ignore"):
        return r**2 / (nc / 100.0)


def nsd_ceiled_score(r_per_voxel: np.ndarray, nc_test_percent: np.ndarray) -> float:
    """``median_v(r_v**2 / (NC_v / 100))``: noise-normalised variance explained (Algonauts 2023).

    Parameters
    ----------
    r_per_voxel : array of shape (n_voxels,)
        Pearson r of prediction and repeat-averaged response on the test set.
    nc_test_percent : array of shape (n_voxels,)
        Each voxel's NC for the test design, e.g. :func:`nsd_noise_ceiling_for_test_design`.
        A voxel with NC 0 gives ``inf`` (or NaN if r is 0 too).
    """
    return float(np.median(nsd_normalized_r2(r_per_voxel, nc_test_percent)))


def nsd_noise_ceiling_for_test_design(
    ncsnr: np.ndarray, test_repeat_counts: np.ndarray
) -> np.ndarray:
    """Per-voxel NC (percent) for the test set as averaged: ``k`` = mean of ``1 / n_c`` over test stimuli."""
    return noise_ceiling_for_design(ncsnr, test_repeat_counts)


def rdm_ceiling(nc_12rep_percent: np.ndarray) -> float:
    """RDM ceiling: ``mean_v sqrt(clip(nc_12rep_v, 0, 100) / 100)``."""
    nc = np.clip(np.asarray(nc_12rep_percent, dtype=np.float64), 0.0, 100.0)
    return float(np.mean(np.sqrt(nc / 100.0)))


def rdm_ceiled_score(raw: float, ceiling: float) -> float:
    """``raw / ceiling``."""
    return float(raw) / float(ceiling)
