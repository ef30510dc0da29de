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


class RepeatAverager:
    """:func:`average_rows_by_group` for many column blocks of the same rows, without its per-call
    allocations: the averaging matrix is built once and the float64 copy of each block goes into
    one reused buffer (fresh 100+ MB arrays cost as much in page faults as the arithmetic).

    The result is bit-identical to :func:`average_rows_by_group` (same matrix, same float64
    values, same sparse product).

    Parameters
    ----------
    group : int array of shape (n_rows,)
        Group of each row, in ``[0, n_groups)``.
    n_groups : int
    max_columns : int
        Widest block :meth:`average` accepts (the buffer is n_rows x max_columns float64).
    """

    def __init__(self, group: np.ndarray, n_groups: int, max_columns: int) -> None:
        group = np.asarray(group)
        counts = np.bincount(group, minlength=n_groups).astype(np.float64)
        with np.errstate(divide="ignore"):
            weight = 1.0 / counts[group]
        self.averaging = scipy.sparse.csr_matrix((weight, (group, np.arange(len(group)))), shape=(n_groups, len(group)))
        self.empty = counts == 0
        self.n_rows, self.max_columns = len(group), max_columns
        self._buffer = np.empty((len(group), max_columns), dtype=np.float64)

    def average(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Group means of ``values`` (n_rows, c <= max_columns), in ``values``' dtype (into ``out`` if given)."""
        c = values.shape[1]
        if values.shape[0] != self.n_rows or c > self.max_columns:
            raise ValueError(f"values must have shape ({self.n_rows}, <= {self.max_columns}), got {values.shape}")
        buffer = self._buffer.reshape(-1)[: self.n_rows * c].reshape(self.n_rows, c)  # C-contiguous, reused
        np.copyto(buffer, values, casting="safe" if values.dtype.kind == "f" else "unsafe")
        means = np.asarray(self.averaging @ buffer)
        means[self.empty] = np.nan
        if out is None:
            return means.astype(values.dtype, copy=False)
        out[...] = means
        return out
