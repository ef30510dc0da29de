"""Repeat-averaged responses stored beside the trial-level betas: what units and ``Lake.responses`` read.

Every unit needs a region's betas averaged over each stimulus' repeats. Averaged at read time,
that means reading every trial (a full-scale subject: 31,856 trials, ~0.8 GB for the four
headline regions) to keep 6,204 rows; stored averaged, a unit reads a fifth of the bytes and no
arithmetic. Layout, in the subject's group and in the same commit as its betas::

    averaged/<region>/   responses (stimulus_id, neuroid) float32, the mean of each stimulus'
                         trials; coordinates stimulus_id (every stimulus the subject saw, sorted),
                         n_repeats, neuroid_id

The means are computed by :class:`laion_lake.compute.averaging.RepeatAverager` (float64
accumulation, one stored column chunk at a time), the very computation ``Lake.responses`` applies
to trial-level betas: each stimulus' mean depends only on its own trials, in trial order, so the
stored rows are bit-identical to averaging at read time for any stimulus subset or column block.
The subject's root attribute :data:`AVERAGED_ATTR` says the group is there; a store written
before it existed (no attribute) is averaged at read time, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
import zarr

from laion_lake.compute.averaging import RepeatAverager
from laion_lake.lake.zarr_io import as_str_array, open_dataset_group, write_dataset_group
from storage_schemas.variables import with_variable_attrs

AVERAGED_GROUP = "averaged"
# root attribute of a subject store whose averaged/ group is complete, and the version of its recipe
AVERAGED_ATTR = "averaged_version"
AVERAGING_VERSION = 1
# rows per stored chunk: a full-scale subject's 6,204 stimuli in one chunk row (12.7 MB per 512 voxels)
ROW_CHUNK = 8192
CHECK_COLUMNS = 512


def averaged_path(relative: str, region: str) -> str:
    """The group of one stored region's averaged responses inside the subject group ``relative``."""
    return f"{relative}/{AVERAGED_GROUP}/{region}"


def columns_by_component(widths: Sequence[int], keep: np.ndarray) -> list[np.ndarray]:
    """``keep`` (positions in a region's neuroid order: its components concatenated) split into each
    component's own column positions, in order."""
    edges = np.concatenate([[0], np.cumsum(widths, dtype=np.intp)])
    return [keep[(keep >= start) & (keep < stop)] - start for start, stop in zip(edges[:-1], edges[1:])]


def trial_grouping(trial_stimulus_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stimuli seen, sorted unique; each trial's position among them; trials per stimulus).

    Parameters
    ----------
    trial_stimulus_ids : array of shape (n_trials,)

    Returns
    -------
    seen : str array (n_stimuli,), group : intp array (n_trials,), counts : int array (n_stimuli,)
    """
    seen, group = np.unique(np.asarray(trial_stimulus_ids).astype(str), return_inverse=True)
    return seen, group.astype(np.intp), np.bincount(group, minlength=len(seen))


def write_averages(
    store: Any,
    relative: str,
    trial_stimulus_ids: np.ndarray,
    regions: Mapping[str, tuple[Callable[[int, int], np.ndarray], np.ndarray]],
    column_chunk: int,
) -> None:
    """Write ``averaged/<region>`` for every region into ``store`` (a session's store, before its commit).

    Parameters
    ----------
    store : zarr store
    relative : str
        The subject's group.
    trial_stimulus_ids : array of shape (n_trials,)
    regions : mapping region -> (read, neuroid_id)
        ``read(start, stop)`` returns that region's betas of every trial for columns
        ``start:stop``, float32 of shape (n_trials, stop - start); ``neuroid_id`` (n_neuroids,).
    column_chunk : int
        Columns averaged (and stored) per step: the betas' stored chunk width, so the float64
        copy of a step stays one chunk wide.
    """
    import dask.array as dask_array

    seen, group, counts = trial_grouping(trial_stimulus_ids)
    averager = RepeatAverager(group, len(seen), column_chunk)
    for region, (read, neuroid_id) in regions.items():
        width = len(neuroid_id)
        shape = (min(ROW_CHUNK, max(len(seen), 1)), min(column_chunk, max(width, 1)))
        empty = dask_array.empty((len(seen), width), chunks=shape, dtype=np.float32)
        part = with_variable_attrs(xr.Dataset(
            {"responses": (("stimulus_id", "neuroid"), empty)},
            coords={"stimulus_id": seen, "n_repeats": ("stimulus_id", counts.astype(np.int16)), "neuroid_id": ("neuroid", np.asarray(neuroid_id))},
        ))  # fmt: skip
        path = averaged_path(relative, region)
        write_dataset_group(store, part, path, {"responses": shape}, compute=False)
        out = zarr.open_array(store, path=f"{path}/responses", mode="r+")
        for start in range(0, width, column_chunk):
            stop = min(start + column_chunk, width)
            out[:, start:stop] = averager.average(read(start, stop))


def stored_means(store: Any, region: str, neuroids: np.ndarray, rows: np.ndarray) -> Any:
    """Lazy (dask) stored repeat means of a subject's region (or derived region).

    Parameters
    ----------
    store : SubjectStore
        A store with ``averaged`` true.
    region : str
    neuroids : int array of shape (n_neuroids,)
        Columns wanted, positions in the region's neuroid order (its components concatenated).
    rows : int array of shape (n_stimuli,)
        Rows wanted, positions among the stimuli the subject saw (sorted).

    Returns
    -------
    dask array of shape (n_stimuli, n_neuroids), float32
    """
    import dask.array as dask_array

    stored = [open_dataset_group(store._store, averaged_path(store.relative, name))["responses"].data for name in store.components(region)]
    parts = [array[:, mine] for array, mine in zip(stored, columns_by_component([a.shape[1] for a in stored], neuroids))]
    data = parts[0] if len(parts) == 1 else dask_array.concatenate(parts, axis=1)
    return data if len(rows) == data.shape[0] and np.array_equal(rows, np.arange(len(rows))) else data[rows]


def stored_mismatches(store: Any, relative: str, trial_stimulus_ids: np.ndarray, betas: Mapping[str, np.ndarray], where: str) -> list[str]:
    """What differs between a store's averaged responses and the repeat means of its betas (empty if none).

    ``betas`` maps each stored region to its trial-level betas (n_trials, n_neuroids), in memory.
    """
    seen, group, _ = trial_grouping(trial_stimulus_ids)
    problems = []
    for region, values in betas.items():
        path = averaged_path(relative, region)
        stored_ids = as_str_array(zarr.open_array(store, path=f"{path}/stimulus_id", mode="r")[:])
        stored = zarr.open_array(store, path=f"{path}/responses", mode="r")[:]
        if not np.array_equal(stored_ids, seen):
            problems.append(f"{where}: averaged responses of {region} list other stimuli than its trials")
            continue
        if stored.shape != (len(seen), values.shape[1]):
            problems.append(f"{where}: averaged responses of {region} have shape {stored.shape}, its betas {(len(seen), values.shape[1])}")
            continue
        averager, changed = RepeatAverager(group, len(seen), CHECK_COLUMNS), 0
        for start in range(0, values.shape[1], CHECK_COLUMNS):  # the float64 copy stays CHECK_COLUMNS wide
            block = slice(start, start + CHECK_COLUMNS)
            changed += int(np.sum(stored[:, block] != averager.average(values[:, block])))
        if changed:
            problems.append(f"{where}: averaged responses of {region} differ from the repeat means of its betas in {changed} value(s)")
    return problems


__all__ = ["AVERAGED_ATTR", "AVERAGING_VERSION", "averaged_path", "columns_by_component", "stored_means", "stored_mismatches", "trial_grouping", "write_averages"]
