"""Repeat averaging: the mean response per stimulus over its presentations."""

from __future__ import annotations

import numpy as np
import scipy.sparse


def group_index_for_trials(trial_stimulus_ids: np.ndarray, stimulus_ids: np.ndarray) -> np.ndarray:
    """Position of each trial's stimulus in ``stimulus_ids``, or -1 where the trial's stimulus is not wanted.

    Parameters
    ----------
    trial_stimulus_ids : array of shape (n_trials,)
        Stimulus shown on each trial.
    stimulus_ids : array of shape (n_stimuli,)
        The wanted stimuli, sorted ascending and unique.

    Returns
    -------
    group : int array of shape (n_trials,)
    """
    trial_stimulus_ids = np.asarray(trial_stimulus_ids).astype(str)
    stimulus_ids = np.asarray(stimulus_ids).astype(str)
    position = np.searchsorted(stimulus_ids, trial_stimulus_ids)
    position = np.clip(position, 0, max(len(stimulus_ids) - 1, 0))
    found = len(stimulus_ids) > 0
    hit = stimulus_ids[position] == trial_stimulus_ids if found else np.zeros(len(trial_stimulus_ids), bool)
    return np.where(hit, position, -1)


def average_rows_by_group(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of the rows of ``values`` within each group.

    Parameters
    ----------
    values : array of shape (n_rows, n_columns)
        E.g. single-trial betas of the selected trials.
    group : int array of shape (n_rows,)
        Group (stimulus position) of each row, in ``[0, n_groups)``.
    n_groups : int

    Returns
    -------
    means : array of shape (n_groups, n_columns), dtype of ``values`` (accumulated in float64)
        A group with no rows gets NaN.
    """
    group = np.asarray(group)
    counts = np.bincount(group, minlength=n_groups).astype(np.float64)
    with np.errstate(divide="ignore"):
        weight = 1.0 / counts[group]
    # a sparse (n_groups x n_rows) averaging matrix: one pass over the data, no Python loop
    averaging = scipy.sparse.csr_matrix((weight, (group, np.arange(len(group)))), shape=(n_groups, len(group)))
    means = np.asarray(averaging @ np.asarray(values, dtype=np.float64))
    means[counts == 0] = np.nan
    return means.astype(values.dtype, copy=False)
