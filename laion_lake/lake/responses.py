"""Repeat-averaged responses of one subject and region, read from its opened subject store.

Holds :func:`subject_responses`: voxel selection by noise ceiling, the stimulus check, and the
means over each stimulus' repeats, read from the stored averages
(:mod:`laion_lake.lake.averages`) or computed lazily from the trial-level betas for stores
written before them. :meth:`laion_lake.lake.lake.Lake.responses` documents the parameters.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from laion_lake.compute.averaging import average_rows_by_group, group_index_for_trials
from laion_lake.errors import MissingStimuliError, UnknownNameError
from laion_lake.lake.annotate import annotated
from laion_lake.lake.averages import stored_means
from laion_lake.lake.subjects import SubjectStore


def subject_responses(
    store: SubjectStore,
    subject: str,
    region: str,
    stimulus_ids: Iterable[str] | None,
    nc_threshold: float | None,
    nc_coord: str,
) -> xr.DataArray:
    """Repeat-averaged responses of ``subject``'s ``region`` from its opened ``store``, lazy.

    Parameters
    ----------
    store : SubjectStore
        The subject's opened store.
    subject, region, stimulus_ids, nc_threshold, nc_coord
        As :meth:`laion_lake.lake.lake.Lake.responses`, which also states what is returned and raised.
    """
    ds = store.region(region)
    if nc_threshold is not None:
        if nc_coord not in ds.coords:
            choices = [c for c in ds.coords if str(c).startswith("nc")]
            raise UnknownNameError("noise-ceiling coordinate", nc_coord, choices, where=store.where)
    keep = np.arange(ds.sizes["neuroid"]) if nc_threshold is None else np.flatnonzero(ds[nc_coord].values > nc_threshold)
    ds = ds.isel(neuroid=keep)
    trial_ids = store.trials["stimulus_id"].values
    seen = np.unique(trial_ids)
    wanted = seen if stimulus_ids is None else np.unique(np.asarray(list(stimulus_ids)).astype(str))
    missing = np.setdiff1d(wanted, seen)
    if len(missing):
        raise MissingStimuliError(f"{store.where} (subject {subject})", list(missing), needed_by=f"responses({region!r})")
    group = group_index_for_trials(trial_ids, wanted)
    trials = np.flatnonzero(group >= 0)
    counts = np.bincount(group[trials], minlength=len(wanted)).astype(np.int16)
    if store.averaged:  # the repeat means stored with the betas: a fifth of the bytes, the same values
        averaged = stored_means(store, region, keep, np.searchsorted(seen, wanted))
    else:
        betas = ds["betas"].data[trials]
        # one block per neuroid chunk holding all selected trials: bounded by trials x chunk width
        betas = betas.rechunk({0: -1})
        averaged = betas.map_blocks(
            average_rows_by_group,
            group[trials],
            len(wanted),
            chunks=((len(wanted),), betas.chunks[1]),
            dtype=betas.dtype,
        )
    neuroid_coords = {name: ds[name].variable for name in ds.coords if ds[name].dims == ("neuroid",)}
    return annotated(xr.DataArray(
        averaged,
        dims=("stimulus_id", "neuroid"),
        coords={"stimulus_id": wanted, "n_repeats": ("stimulus_id", counts), **neuroid_coords},
        name="responses",
        attrs={"subject": subject, "region": region, "nc_threshold": nc_threshold, "nc_coord": nc_coord},
    ))
