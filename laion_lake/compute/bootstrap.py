"""Seeded bootstrap of a mean, over subjects (or folds).

The procedure is part of the contract, so that anyone can recompute an error bar bit for bit:

    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, size=(n_draws, n))    # resample with replacement
    draw_means = values[indices].mean(axis=1)
    error = draw_means.std(ddof=1)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DEFAULT_N_DRAWS = 200


class BootstrapResult(NamedTuple):
    """Bootstrap error of a mean.

    Attributes
    ----------
    error : float
        Standard deviation (ddof=1) of the draw means; NaN when it cannot be computed.
    draw_means : array of shape (n_draws,)
        Mean of each resampled draw (empty when ``error`` is NaN for lack of values).
    reason : str or None
        Why ``error`` is NaN; None otherwise.
    """

    error: float
    draw_means: np.ndarray
    reason: str | None


def bootstrap_mean_error(values: np.ndarray, n_draws: int = DEFAULT_N_DRAWS, seed: int = 0) -> BootstrapResult:
    """Bootstrap standard error of the mean of ``values``.

    Parameters
    ----------
    values : array of shape (n_values,)
        E.g. one ceiled score per subject, or per fold. NaN values propagate (the error is NaN).
    n_draws : int
        Number of resamples, >= 2.
    seed : int
        Seed of ``np.random.default_rng``; the same values and seed give bit-identical results.

    Returns
    -------
    BootstrapResult
        With fewer than 2 values the error is NaN and ``reason`` says so: every resample of a
        single value is that value, which would report a spurious error of 0.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if n_draws < 2:
        raise ValueError(f"n_draws must be >= 2 for a standard deviation, got {n_draws}")
    n = values.size
    if n == 0:
        return BootstrapResult(float("nan"), np.empty(0), "no values to bootstrap")
    if n == 1:
        return BootstrapResult(
            float("nan"),
            np.empty(0),
            "a single value: resampling it always gives the same mean, so there is no spread to estimate",
        )
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, size=(n_draws, n))
    draw_means = values[indices].mean(axis=1)
    return BootstrapResult(float(draw_means.std(ddof=1)), draw_means, None)
