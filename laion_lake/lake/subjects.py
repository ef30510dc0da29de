"""Subject assemblies: trial-level betas stored one Zarr group per region.

Layout of ``subjects/<subject>.zarr``::

    zarr.json               root attributes: subject, regions (stored order), sizes, checksum, complete
    trials/                 stimulus_id, session, run, beta_index, repetition  (dim trial)
    regions/<region>/       betas (trial, neuroid) + that region's neuroid coordinates

A region is its own array, so reading V1 reads only V1's chunks and no chunk straddles two regions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
import zarr

from laion_lake.errors import StoreExistsError
from laion_lake.lake.storage import LakeStorage
from laion_lake.lake.zarr_io import (
    COMPLETE_ATTR,
    checksum_header,
    content_checksum,
    is_complete,
    open_dataset_group,
    replace_with_staged,
    plain_strings,
    require_complete,
    update_checksum,
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


# root attributes of a streamed store while it is being written (dropped when it completes)
STREAMING_PLAN_ATTR = "streaming_plan"
STREAMING_PROGRESS_ATTR = "streaming_progress"


@dataclass(frozen=True)
class TrialBlock:
    """One block of trial rows for :func:`write_subject_streaming` (e.g. one session).

    Attributes
    ----------
    key : str
        Name of the block (``"ses-01"``), unique within the store.
    start, stop : int
        Trial rows ``[start, stop)`` it fills; blocks are contiguous and in order.
    fingerprint : str
        Identity of the block's source: on a resumed write, a block already written with the same
        fingerprint is skipped (``load`` is not called).
    load : callable
        ``load() -> array of shape (stop - start, n_neuroids)``, float32, in the neuroid order given.
    """

    key: str
    start: int
    stop: int
    fingerprint: str
    load: Callable[[], np.ndarray] = field(compare=False, repr=False)


@dataclass
class StreamingResult:
    """What :func:`write_subject_streaming` did: the manifest entry, blocks written and skipped."""

    entry: dict[str, Any]
    written: list[str]
    skipped: list[str]


def subject_manifest_entry(storage: LakeStorage, subject: str) -> dict[str, Any]:
    """The manifest entry of a complete subject store, from its root attributes."""
    attrs = dict(require_complete(storage, subject_path(subject)).attrs)
    sizes = {str(r): int(n) for r, n in attrs["region_sizes"].items()}
    return {
        "path": subject_path(subject),
        "n_trials": int(attrs["n_trials"]),
        "n_neuroids": int(sum(sizes.values())),
        "regions": sizes,
        "checksum": attrs["checksum"],
        "schema_version": int(attrs.get("schema_version", latest_version(SCHEMA))),
    }


def _streaming_plan(coords: xr.Dataset, blocks: Sequence[TrialBlock], regions: list[str]) -> str:
    """Identity of a streamed store's skeleton: a resumed write must have the very same one."""
    digest = hashlib.sha256(content_checksum(coords).encode())
    digest.update(repr([(b.key, b.start, b.stop) for b in blocks]).encode())
    digest.update(repr((regions, _chunk_shape("trial"), _chunk_shape("neuroid"), latest_version(SCHEMA))).encode())
    return digest.hexdigest()


def _resumable_progress(storage: LakeStorage, relative: str, plan: str) -> dict[str, str] | None:
    """Blocks already written to an incomplete store of the same plan; None if nothing to resume."""
    if not storage.exists(f"{relative}/zarr.json"):
        return None
    try:
        attrs = dict(zarr.open_group(storage.zarr_store(relative), mode="r").attrs)
    except Exception:  # an unreadable leftover: start again
        return None
    if attrs.get(COMPLETE_ATTR) or attrs.get(STREAMING_PLAN_ATTR) != plan:
        return None
    return {str(k): str(v) for k, v in dict(attrs.get(STREAMING_PROGRESS_ATTR, {})).items()}


def _write_skeleton(
    storage: LakeStorage,
    target: str,
    coords: xr.Dataset,
    neuroids: xr.Dataset,
    columns: Mapping[str, np.ndarray],
    region_attrs: dict[str, Any],
    plan: str,
) -> None:
    """Write a streamed store's skeleton: trials group, each region's coordinates and empty betas.

    On an object store the skeleton is built in a local temporary folder and uploaded in one
    batch (zarr's per-array existence checks would cost hundreds of round trips). The root
    ``zarr.json`` carrying the plan goes last: its presence marks the skeleton as whole.
    """
    import os
    import tempfile

    import dask.array as dask_array

    n_trials = int(coords.sizes["trial"])
    trial_chunk, neuroid_chunk = _chunk_shape("trial"), _chunk_shape("neuroid")

    def build(store: Any) -> None:
        zarr.open_group(store, mode="w")
        write_dataset_group(store, xr.Dataset(coords[list(TRIAL_COORDS)].variables), "trials", {n: (trial_chunk * 16,) for n in TRIAL_COORDS})
        for region, cols in columns.items():
            shape = (min(trial_chunk, n_trials), min(neuroid_chunk, len(cols)))
            empty = dask_array.empty((n_trials, len(cols)), chunks=shape, dtype=np.float32)
            part = xr.Dataset(
                {"betas": (("trial", "neuroid"), empty)},
                coords=neuroids.isel(neuroid=cols).variables,
                attrs=region_attrs,  # as write_subject: each region group carries subject and regions
            )
            write_dataset_group(store, part, f"regions/{region}", {"betas": shape}, compute=False)

    if storage.local:
        store = storage.zarr_store(target, read_only=False)
        build(store)
        zarr.open_group(store, mode="a").attrs.put({STREAMING_PLAN_ATTR: plan, STREAMING_PROGRESS_ATTR: {}})
        return
    with tempfile.TemporaryDirectory(prefix="laion-lake-skeleton-") as folder:
        local = zarr.storage.LocalStore(folder)
        build(local)
        zarr.open_group(local, mode="a").attrs.put({STREAMING_PLAN_ATTR: plan, STREAMING_PROGRESS_ATTR: {}})
        files = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, names in os.walk(folder) for f in names)
        rest = [f for f in files if f != "zarr.json"]
        remote = storage.path(target)
        storage.fs.put([os.path.join(folder, f) for f in rest], [f"{remote}/{f.replace(os.sep, '/')}" for f in rest])
        storage.fs.put_file(os.path.join(folder, "zarr.json"), f"{remote}/zarr.json")
        storage.fs.invalidate_cache()


def write_subject_streaming(
    storage: LakeStorage,
    subject: str,
    trials: xr.Dataset,
    neuroids: xr.Dataset,
    blocks: Sequence[TrialBlock],
    attrs: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    on_block: Callable[[TrialBlock, bool], None] | None = None,
) -> StreamingResult:
    """Write one subject's assembly block of trials by block, resumably; same layout as :func:`write_subject`.

    Only one block's betas are in memory at a time. The store's skeleton (trial group, each
    region's neuroid coordinates and an empty ``betas`` array) is written first; each block then
    fills its rows of every region's array and is recorded in the root attribute
    ``streaming_progress``. The completion marker is set last, with the final attributes, so an
    interrupted write never looks complete. Re-running with the same trials, neuroids and blocks
    resumes: blocks recorded with an unchanged fingerprint are skipped (read back only to
    checksum them). The checksum equals :func:`content_checksum` of the whole assembly.

    Parameters
    ----------
    storage : LakeStorage
    subject : str
    trials : xarray.Dataset
        Dim ``trial``: stimulus_id, session, run, beta_index, repetition.
    neuroids : xarray.Dataset
        Dim ``neuroid``: every neuroid coordinate of the schema, grouped by region.
    blocks : sequence of TrialBlock
        Contiguous, in order, covering every trial.
    attrs : mapping, optional
        Extra root attributes (provenance).
    overwrite : bool
        Replace a complete store (written beside it, moved in once complete) and restart an
        incomplete one instead of resuming it.
    on_block : callable, optional
        ``on_block(block, skipped)`` after each block.

    Raises
    ------
    StoreExistsError
        A complete store is there and ``overwrite`` is False.
    """
    relative = subject_path(subject)
    where = storage.display(relative)
    n_trials, n_neuroids = int(trials.sizes["trial"]), int(neuroids.sizes["neuroid"])
    region_of_voxel = np.asarray(neuroids["region"].values).astype(str)
    _, first = np.unique(region_of_voxel, return_index=True)
    regions = [str(region_of_voxel[i]) for i in sorted(first)]
    columns = {r: np.flatnonzero(region_of_voxel == r) for r in regions}
    coords = xr.Dataset({**{n: trials[n].variable for n in TRIAL_COORDS}, **{n: v for n, v in neuroids.variables.items()}})
    skeleton = xr.Dataset(
        {"betas": (("trial", "neuroid"), np.broadcast_to(np.float32(0), (n_trials, n_neuroids)))},
        coords=coords.variables,
        attrs={"subject": subject, "regions": regions},
    )
    check_dataset(skeleton, SCHEMA, where=where)
    edges = [0] + [b.stop for b in blocks]
    if [b.start for b in blocks] != edges[:-1] or edges[-1] != n_trials or any(b.stop <= b.start for b in blocks):
        raise ValueError(f"{where}: blocks must be contiguous, non-empty and cover trials 0..{n_trials}")
    if len({b.key for b in blocks}) != len(blocks):
        raise ValueError(f"{where}: block keys must be unique")

    existing = is_complete(storage, relative)
    if existing and not overwrite:
        raise StoreExistsError(f"{where} already exists; pass overwrite=True to replace it")
    target = storage.staging_path(relative.rsplit("/", 1)[-1]) if existing else relative
    plan = _streaming_plan(coords, blocks, regions)
    progress = None if overwrite else _resumable_progress(storage, target, plan)
    store = storage.zarr_store(target, read_only=False)
    if progress is None:
        storage.remove(target)
        _write_skeleton(storage, target, coords, neuroids, columns, dict(skeleton.attrs), plan)
        progress = {}
    root = zarr.open_group(store, mode="a")
    arrays = {r: zarr.open_array(store, path=f"regions/{r}/betas", mode="r+") for r in regions}

    digest = hashlib.sha256()
    names = sorted([*map(str, coords.variables), "betas"])
    for name in names[: names.index("betas")]:
        update_checksum(digest, name, coords[name])
    digest.update(checksum_header("betas", ("trial", "neuroid"), "f", (n_trials, n_neuroids)))
    written, skipped = [], []
    for block in blocks:
        rows = slice(block.start, block.stop)
        if progress.get(block.key) == block.fingerprint:
            values = np.empty((block.stop - block.start, n_neuroids), np.float32)
            for region in regions:
                values[:, columns[region]] = arrays[region][rows]
            skipped.append(block.key)
        else:
            values = np.asarray(block.load())
            if values.shape != (block.stop - block.start, n_neuroids) or values.dtype != np.float32:
                raise ValueError(
                    f"{where}: block {block.key!r} loaded {values.dtype} {values.shape}, "
                    f"expected float32 {(block.stop - block.start, n_neuroids)}"
                )
            for region in regions:
                arrays[region][rows] = values[:, columns[region]]
            progress[block.key] = block.fingerprint
            root.attrs[STREAMING_PROGRESS_ATTR] = dict(progress)
            written.append(block.key)
        digest.update(np.ascontiguousarray(values).tobytes())
        if on_block is not None:
            on_block(block, block.key in skipped)
    for name in names[names.index("betas") + 1 :]:
        update_checksum(digest, name, coords[name])

    region_sizes = {r: int(len(columns[r])) for r in regions}
    final = {
        **{k: v for k, v in dict(attrs or {}).items() if k not in ("subject", "regions")},
        "schema": SCHEMA,
        "schema_version": latest_version(SCHEMA),
        "subject": subject,
        "regions": regions,
        "region_sizes": region_sizes,
        "n_trials": n_trials,
        "checksum": digest.hexdigest(),
    }
    # one metadata write: the final attributes and the completion marker together, progress dropped
    root.attrs.put({**final, COMPLETE_ATTR: True})
    if existing:
        replace_with_staged(storage, target, relative)
    return StreamingResult(subject_manifest_entry(storage, subject), written, skipped)


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
