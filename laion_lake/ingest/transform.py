"""The values written for a release: per-session z-scoring, noise ceilings and ncsnr (pure numpy)."""

from __future__ import annotations

import warnings

import numpy as np

from laion_lake.compute.ceiling import MEAN_INVERSE_REPEATS_12REP, ncsnr_from_noise_ceiling

# voxels converted to float64 at a time when z-scoring
_VOXEL_CHUNK = 8192


def zscore_session(raw: np.ndarray) -> np.ndarray:
    """Z-score each voxel within one session, as SPEC section 1 (and Brain-Score's packaging) says.

    In this order, in float64: mean and population sd (ddof 0) over the session's *finite* trials
    (``nanmean``/``nanstd``, inf treated as missing too); sd of 0 or non-finite (a constant voxel,
    a voxel with no finite trial) -> 1; ``z = (beta - mean) / sd``; only then NaN/inf -> 0. So a
    NaN trial does not move the mean or sd of the other trials.

    Parameters
    ----------
    raw : array of shape (n_trials, n_voxels)
        Every trial of the session.

    Returns
    -------
    array of shape (n_trials, n_voxels), float32
    """
    out = np.empty(raw.shape, dtype=np.float32)
    for start in range(0, raw.shape[1], _VOXEL_CHUNK):
        block = np.array(raw[:, start : start + _VOXEL_CHUNK], dtype=np.float64)
        finite = np.isfinite(block)
        masked = np.where(finite, block, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": a voxel with no finite trial
            mean = np.nanmean(masked, axis=0)
            sd = np.nanstd(masked, axis=0, ddof=0)
            sd = np.where((sd == 0) | ~np.isfinite(sd), 1.0, sd)
            z = (block - mean) / sd
        out[:, start : start + _VOXEL_CHUNK] = np.where(np.isfinite(z), z, 0.0)
    return out


def clean_noise_ceiling(values: np.ndarray) -> tuple[np.ndarray, int]:
    """NC percent as stored: non-finite -> 0, clipped to [0, 100], float32; and how many changed."""
    values = np.asarray(values, dtype=np.float64)
    cleaned = np.clip(np.nan_to_num(values, nan=0.0, posinf=100.0, neginf=0.0), 0.0, 100.0)
    changed = int(np.sum(~np.isfinite(values) | (values != cleaned)))
    return cleaned.astype(np.float32), changed


def ncsnr_from_nc_12rep(nc_12rep: np.ndarray) -> tuple[np.ndarray, int]:
    """ncsnr from the 12-repeat NC (``k = 1/12``, SPEC section 1), float32, finite.

    NC = 100 means an infinite ncsnr; it is stored as float32's largest value (the schema wants
    finite values). Returns the ncsnr and how many such voxels there were.
    """
    ncsnr = ncsnr_from_noise_ceiling(nc_12rep, MEAN_INVERSE_REPEATS_12REP)
    infinite = int(np.sum(~np.isfinite(ncsnr)))
    largest = float(np.finfo(np.float32).max)
    return np.nan_to_num(ncsnr, posinf=largest).astype(np.float32), infinite
