"""Subject assemblies: trial-level betas stored one Zarr group per region.

Layout of ``subjects/<subject>.zarr``::

    zarr.json               root attributes: subject, regions (stored order), sizes, checksum, complete
    trials/                 stimulus_id, session, run, beta_index, repetition  (dim trial)
    regions/<region>/       betas (trial, neuroid) + that region's neuroid coordinates

A region is its own array, so reading V1 reads only V1's chunks and no chunk straddles two regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from laion_lake.lake.storage import LakeStorage
from laion_lake.lake.zarr_io import (
    content_checksum,
    open_dataset_group,
    plain_strings,
    require_complete,
    write_dataset_group,
    write_store,
)
from storage_schemas import check_dataset, latest_version, load_schema

SCHEMA = "subject_assembly"
TRIAL_COORDS = ("stimulus_id", "session", "run", "beta_index", "repetition")
# regions made of stored regions: derived, never stored
DERIVED_REGIONS = {"IT_full": ("V4", "IT")}


def subject_path(subject: str) -> str:
    return f"subjects/{subject}.zarr"


def _chunk_shape(dim: str) -> int:
    return int(load_schema(SCHEMA)["chunks"][dim])


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
    region_of_voxel = np.asarray(ds["region"].values).astype(str)
    # stored order = order of first appearance (the dataset is grouped by region: checked above)
    _, first = np.unique(region_of_voxel, return_index=True)
    regions = [str(region_of_voxel[i]) for i in sorted(first)]
    trial_chunk, neuroid_chunk = _chunk_shape("trial"), _chunk_shape("neuroid")
    checksum = content_checksum(ds)

    def write_groups(store: Any) -> dict[str, Any]:
        trials = xr.Dataset({name: ds[name].variable for name in TRIAL_COORDS})
        write_dataset_group(store, trials, "trials", {name: (trial_chunk * 16,) for name in TRIAL_COORDS})
        for region in regions:
            part = ds.isel(neuroid=np.flatnonzero(region_of_voxel == region)).drop_vars(list(TRIAL_COORDS))
            shape = (min(trial_chunk, part.sizes["trial"]), min(neuroid_chunk, part.sizes["neuroid"]))
            write_dataset_group(store, part, f"regions/{region}", {"betas": shape})
        return {
            "schema": SCHEMA,
            "schema_version": latest_version(SCHEMA),
            "subject": subject,
            "regions": regions,
            "region_sizes": {r: int((region_of_voxel == r).sum()) for r in regions},
            "n_trials": int(ds.sizes["trial"]),
            "checksum": checksum,
            **{k: v for k, v in ds.attrs.items() if k not in ("subject", "regions")},
        }

    write_store(storage, relative, write_groups, overwrite=overwrite)
    return {
        "path": relative,
        "n_trials": int(ds.sizes["trial"]),
        "n_neuroids": int(ds.sizes["neuroid"]),
        "regions": {r: int((region_of_voxel == r).sum()) for r in regions},
        "checksum": checksum,
        "schema_version": latest_version(SCHEMA),
    }


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
        self._store = storage.zarr_store(self.relative)
        self.trials = plain_strings(open_dataset_group(self._store, "trials").load())

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
            part = open_dataset_group(self._store, f"regions/{name}")
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
