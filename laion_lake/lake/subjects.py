"""Subject assemblies: trial-level betas stored one Zarr group per region.

Layout of group ``subjects/<subject>`` in the lake's repository::

    (group attributes)      subject, regions (stored order), sizes, checksum, manifest entry
    trials/                 stimulus_id, session, run, beta_index, repetition  (dim trial)
    regions/<region>/       betas (trial, neuroid) + that region's neuroid coordinates
    averaged/<region>/      responses (stimulus_id, neuroid): betas averaged over repeats
                            (:mod:`laion_lake.lake.averages`), what scoring reads

A region is its own array, so reading V1 reads only V1's chunks and no chunk straddles two regions.
A subject is written in one commit, by :func:`write_subject` (in memory) or block by block by
:func:`write_subject_streaming` (resumable: its uncommitted work is kept in a local resume file).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from laion_lake.lake.averages import AVERAGED_ATTR, AVERAGING_VERSION, write_averages
from laion_lake.lake.storage import LakeStorage
from laion_lake.lake.subject_layout import (  # re-exported: the layout's names moved to subject_layout
    SCHEMA,
    SUBJECTS_GROUP,
    TRIAL_COORDS,
    _chunk_shape,
    subject_path,
)
from laion_lake.lake.subject_streaming import (  # re-exported: the streamed write moved to subject_streaming
    RESUME_DIR_ENV,
    StreamingResult,
    TrialBlock,
    _head_has_subject,
    _load_resume,
    _save_resume,
    _streaming_plan,
    _write_skeleton,
    resume_path,
    streaming_progress,
    write_subject_streaming,
)
from laion_lake.lake.zarr_io import (
    ENTRY_ATTR,
    check_finite_rows,
    content_checksum,
    open_dataset_group,
    plain_strings,
    require_complete,
    write_dataset_group,
    write_store,
)
from storage_schemas import check_dataset, latest_version, load_schema
from storage_schemas.variables import with_variable_attrs
from storage_schemas.vocabulary import DERIVED_REGIONS


def write_subject(storage: LakeStorage, subject: str, ds: xr.Dataset, overwrite: bool = False) -> dict[str, Any]:
    """Validate and write one subject's assembly; return its manifest entry.

    Parameters
    ----------
    storage : LakeStorage
    subject : str
        Must equal ``ds.attrs["subject"]``.
    ds : xarray.Dataset
        Dims (trial, neuroid); ``betas`` float32 and every coordinate of the subject_assembly
        schema; neuroids grouped by region.
    overwrite : bool
        Replace a complete store of this subject (the old one survives a failed write).
    """
    relative = subject_path(subject)
    where = storage.display(relative)
    check_dataset(ds, SCHEMA, where=where)
    if ds.attrs.get("subject") != subject:
        raise ValueError(f"{where}: dataset attribute subject={ds.attrs.get('subject')!r} does not match {subject!r}")
    # units, long_name, description of each variable are stored with it (never in the checksum)
    ds = with_variable_attrs(ds.load())
    check_finite_rows(ds["betas"].values, f"subject {subject} betas ({where})", ds["stimulus_id"].values, ds["neuroid_id"].values)
    region_of_voxel = np.asarray(ds["region"].values).astype(str)
    # stored order = order of first appearance (the dataset is grouped by region: checked above)
    _, first = np.unique(region_of_voxel, return_index=True)
    regions = [str(region_of_voxel[i]) for i in sorted(first)]
    trial_chunk, neuroid_chunk = _chunk_shape("trial"), _chunk_shape("neuroid")
    checksum = content_checksum(ds)
    entry = {
        "path": relative,
        "n_trials": int(ds.sizes["trial"]),
        "n_neuroids": int(ds.sizes["neuroid"]),
        "regions": {r: int((region_of_voxel == r).sum()) for r in regions},
        "checksum": checksum,
        "schema_version": latest_version(SCHEMA),
    }

    def write_groups(store: Any, group: str) -> dict[str, Any]:
        trials = xr.Dataset({name: ds[name].variable for name in TRIAL_COORDS})
        write_dataset_group(store, trials, f"{group}/trials", {name: (trial_chunk * 16,) for name in TRIAL_COORDS})
        for region in regions:
            part = ds.isel(neuroid=np.flatnonzero(region_of_voxel == region)).drop_vars(list(TRIAL_COORDS))
            shape = (min(trial_chunk, part.sizes["trial"]), min(neuroid_chunk, part.sizes["neuroid"]))
            write_dataset_group(store, part, f"{group}/regions/{region}", {"betas": shape})
        # regions are contiguous column ranges (the dataset is grouped by region): views, no copies
        betas, first_column = ds["betas"].values, {r: int(np.flatnonzero(region_of_voxel == r)[0]) for r in regions}
        write_averages(store, group, ds["stimulus_id"].values, {
            r: (lambda start, stop, r=r: betas[:, first_column[r] + start : first_column[r] + stop], ds["neuroid_id"].values[region_of_voxel == r])
            for r in regions
        }, neuroid_chunk)  # fmt: skip
        return {
            "schema": SCHEMA,
            "schema_version": latest_version(SCHEMA),
            "subject": subject,
            "regions": regions,
            "region_sizes": {r: int((region_of_voxel == r).sum()) for r in regions},
            "n_trials": int(ds.sizes["trial"]),
            "checksum": checksum,
            **{k: v for k, v in ds.attrs.items() if k not in ("subject", "regions", AVERAGED_ATTR)},
            AVERAGED_ATTR: AVERAGING_VERSION,
            ENTRY_ATTR: entry,
        }

    write_store(storage, relative, write_groups, overwrite=overwrite, message=f"subject {subject}{' (overwrite)' if overwrite else ''}")
    return entry


def subject_manifest_entry(storage: LakeStorage, subject: str) -> dict[str, Any]:
    """The manifest entry of a subject store in the snapshot, from its group attributes."""
    return dict(require_complete(storage, subject_path(subject)).attrs[ENTRY_ATTR])


class SubjectStore:
    """Lazy access to one complete subject store (metadata and small coordinates only on open)."""

    def __init__(self, storage: LakeStorage, subject: str) -> None:
        self.storage = storage
        self.subject = subject
        self.relative = subject_path(subject)
        self.where = storage.display(self.relative)
        root = require_complete(storage, self.relative)
        self.attrs = dict(root.attrs)
        self.regions: list[str] = list(self.attrs["regions"])
        self._store = storage.store()
        # repeat means stored with the betas (stores written before them are averaged at read time)
        self.averaged = self.attrs.get(AVERAGED_ATTR) == AVERAGING_VERSION
        self.trials = plain_strings(open_dataset_group(self._store, f"{self.relative}/trials").load())

    def region_names(self) -> list[str]:
        """Stored regions plus the derived ones whose components are all stored."""
        derived = [name for name, parts in DERIVED_REGIONS.items() if all(p in self.regions for p in parts)]
        return self.regions + derived

    def components(self, region: str) -> tuple[str, ...]:
        from laion_lake.errors import UnknownNameError

        if region in self.regions:
            return (region,)
        if region in DERIVED_REGIONS and all(p in self.regions for p in DERIVED_REGIONS[region]):
            return DERIVED_REGIONS[region]
        raise UnknownNameError("region", region, self.region_names(), where=self.where)

    def region(self, region: str) -> xr.Dataset:
        """betas (trial, neuroid) of one region (or derived region), lazy, with every coordinate."""
        parts = []
        for name in self.components(region):
            part = open_dataset_group(self._store, f"{self.relative}/regions/{name}")
            neuroid_coords = [c for c in load_schema(SCHEMA)["coords"] if c in part.variables]
            part = plain_strings(part.assign_coords({c: part[c].load() for c in neuroid_coords}).set_coords(neuroid_coords))
            parts.append(part)
        ds = parts[0] if len(parts) == 1 else xr.concat(parts, dim="neuroid")
        ds = ds.assign_coords({name: self.trials[name].variable for name in TRIAL_COORDS})
        return ds.assign_attrs(subject=self.subject, region=region)

    def assembly(self) -> xr.Dataset:
        """The whole trial-level assembly: every stored region concatenated along neuroid."""
        parts = [self.region(name) for name in self.regions]
        ds = xr.concat(parts, dim="neuroid") if len(parts) > 1 else parts[0]
        check_dataset(ds, SCHEMA, version=int(self.attrs.get("schema_version", 1)), where=self.where)
        ds.attrs = dict(self.attrs)
        return ds
