"""Resumable block-by-block write of one subject's assembly, in one commit.

Holds :func:`write_subject_streaming` with its :class:`TrialBlock` and :class:`StreamingResult`,
and the local resume file that keeps an unfinished write's Icechunk fork between runs
(:func:`resume_path`, :func:`streaming_progress`, :data:`RESUME_DIR_ENV`). The store it writes has
the layout of :mod:`laion_lake.lake.subjects` (which re-exports these names) and the same checksum
as :func:`~laion_lake.lake.subjects.write_subject`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
import zarr

from laion_lake.errors import StoreExistsError
from laion_lake.lake.averages import AVERAGED_ATTR, AVERAGING_VERSION, write_averages
from laion_lake.lake.storage import LakeStorage, remove_node, while_writing
from laion_lake.lake.subject_layout import SCHEMA, TRIAL_COORDS, _chunk_shape, subject_path
from laion_lake.lake.zarr_io import (
    COMPLETE_ATTR,
    ENTRY_ATTR,
    check_finite_rows,
    checksum_header,
    content_checksum,
    update_checksum,
    write_dataset_group,
)
from storage_schemas import check_dataset, latest_version
from storage_schemas.variables import with_variable_attrs

# where a streamed write keeps its uncommitted work between runs (default: the user's cache)
RESUME_DIR_ENV = "LAION_LAKE_RESUME_DIR"


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


def _streaming_plan(coords: xr.Dataset, blocks: Sequence[TrialBlock], regions: list[str]) -> str:
    """Identity of a streamed store's skeleton: a resumed write must have the very same one."""
    digest = hashlib.sha256(content_checksum(coords).encode())
    digest.update(repr([(b.key, b.start, b.stop) for b in blocks]).encode())
    digest.update(repr((regions, _chunk_shape("trial"), _chunk_shape("neuroid"), latest_version(SCHEMA))).encode())
    return digest.hexdigest()


def resume_path(storage: LakeStorage, subject: str) -> str:
    """The local file holding an unfinished streamed write of ``subject`` to this lake.

    It holds the plan, the blocks written and the Icechunk fork session with their chunks
    (already in the lake's storage, uncommitted, invisible to readers).
    """
    root = os.environ.get(RESUME_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "laion-lake", "resume")
    lake = hashlib.sha256(storage.url.encode()).hexdigest()[:16]
    return os.path.join(root, lake, f"{subject}.pickle")


def streaming_progress(storage: LakeStorage, subject: str) -> dict[str, str] | None:
    """Blocks (key -> fingerprint) an unfinished streamed write of ``subject`` has done; None if none."""
    state = _load_resume(resume_path(storage, subject))
    return None if state is None else dict(state["progress"])


def _load_resume(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError):
        return None  # none, or unreadable: start again


def _save_resume(path: str, state: Mapping[str, Any]) -> None:
    """Write the resume file whole (temporary file, then rename): a kill leaves the old or the new one."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".resume-")
    with os.fdopen(handle, "wb") as out:
        pickle.dump(dict(state), out)
    os.replace(temporary, path)


def _write_skeleton(store: Any, relative: str, coords: xr.Dataset, neuroids: xr.Dataset, columns: Mapping[str, np.ndarray], region_attrs: dict[str, Any]) -> None:
    """A streamed store's skeleton: trials group, each region's coordinates and empty betas."""
    import dask.array as dask_array

    n_trials = int(coords.sizes["trial"])
    trial_chunk, neuroid_chunk = _chunk_shape("trial"), _chunk_shape("neuroid")
    write_dataset_group(store, with_variable_attrs(xr.Dataset(coords[list(TRIAL_COORDS)].variables)), f"{relative}/trials", {n: (trial_chunk * 16,) for n in TRIAL_COORDS})
    for region, cols in columns.items():
        shape = (min(trial_chunk, n_trials), min(neuroid_chunk, len(cols)))
        empty = dask_array.empty((n_trials, len(cols)), chunks=shape, dtype=np.float32)
        part = with_variable_attrs(xr.Dataset(
            {"betas": (("trial", "neuroid"), empty)},
            coords=neuroids.isel(neuroid=cols).variables,
            attrs=region_attrs,  # as write_subject: each region group carries subject and regions
        ))
        write_dataset_group(store, part, f"{relative}/regions/{region}", {"betas": shape}, compute=False)


def _head_has_subject(storage: LakeStorage, relative: str) -> bool:
    head = storage.repository.readonly_session()
    try:
        return bool(zarr.open_group(head.store, path=relative, mode="r").attrs.get(COMPLETE_ATTR))
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        return False


@while_writing
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
    """Write one subject's assembly block of trials by block, resumably, in one commit; same layout as :func:`write_subject`.

    Only one block's betas are in memory at a time. The blocks are written into an Icechunk fork
    session; after each block the fork (chunk references, the blocks done) is saved in a local
    resume file (:func:`resume_path`). Nothing is visible to readers until the last block is
    written: then the fork is merged into a session of ``main`` and committed, so the lake holds
    the old state or the whole subject, never a part. Re-running with the same trials, neuroids
    and blocks resumes: blocks recorded with an unchanged fingerprint are skipped (read back only
    to checksum them). The checksum equals :func:`content_checksum` of the whole assembly.

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
        Replace a subject that is there (in the same commit) and restart an unfinished write
        instead of resuming it.
    on_block : callable, optional
        ``on_block(block, skipped)`` after each block.

    Raises
    ------
    StoreExistsError
        The subject is in the lake and ``overwrite`` is False.
    NonFiniteDataError
        A block holds NaN/inf (named: block, first stimulus ids, neuroids).
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

    existing = _head_has_subject(storage, relative)
    if existing and not overwrite:
        raise StoreExistsError(f"{where} already exists; pass overwrite=True (--overwrite) to replace it")
    plan = _streaming_plan(coords, blocks, regions)
    resume = resume_path(storage, subject)
    state = None if overwrite else _load_resume(resume)
    if state is not None and state.get("plan") == plan and state.get("url") == storage.url:
        fork, progress = state["fork"], dict(state["progress"])
    else:
        fork, progress = storage.repository.session_for_writing().fork(), {}
        if existing:
            remove_node(storage.repository.timed(fork), relative)
        _write_skeleton(storage.repository.timed(fork).store, relative, coords, neuroids, columns, dict(skeleton.attrs))
        _save_resume(resume, {"url": storage.url, "plan": plan, "progress": progress, "fork": fork})
    fork_store = storage.repository.timed(fork).store
    arrays = {r: zarr.open_array(fork_store, path=f"{relative}/regions/{r}/betas", mode="r+") for r in regions}
    trial_ids = np.asarray(trials["stimulus_id"].values).astype(str)
    neuroid_ids = np.asarray(neuroids["neuroid_id"].values).astype(str)

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
            check_finite_rows(values, f"subject {subject} betas, block {block.key!r} ({where})", trial_ids, neuroid_ids, offset=block.start)
            for region in regions:
                arrays[region][rows] = values[:, columns[region]]
            progress[block.key] = block.fingerprint
            _save_resume(resume, {"url": storage.url, "plan": plan, "progress": progress, "fork": fork})
            written.append(block.key)
        digest.update(np.ascontiguousarray(values).tobytes())
        if on_block is not None:
            on_block(block, block.key in skipped)
    for name in names[names.index("betas") + 1 :]:
        update_checksum(digest, name, coords[name])
    # the repeat means, from the betas just written (read back one stored column chunk at a time)
    write_averages(fork_store, relative, trial_ids, {
        r: (lambda start, stop, r=r: arrays[r][:, start:stop], neuroid_ids[columns[r]]) for r in regions
    }, _chunk_shape("neuroid"))  # fmt: skip

    region_sizes = {r: int(len(columns[r])) for r in regions}
    entry = {
        "path": relative,
        "n_trials": n_trials,
        "n_neuroids": n_neuroids,
        "regions": region_sizes,
        "checksum": digest.hexdigest(),
        "schema_version": latest_version(SCHEMA),
    }
    final = {
        **{k: v for k, v in dict(attrs or {}).items() if k not in ("subject", "regions", AVERAGED_ATTR)},
        AVERAGED_ATTR: AVERAGING_VERSION,
        "schema": SCHEMA,
        "schema_version": latest_version(SCHEMA),
        "subject": subject,
        "regions": regions,
        "region_sizes": region_sizes,
        "n_trials": n_trials,
        "checksum": entry["checksum"],
        ENTRY_ATTR: entry,
        COMPLETE_ATTR: True,
    }
    zarr.open_group(fork_store, path=relative, mode="a").attrs.put(final)
    if not overwrite and _head_has_subject(storage, relative):
        raise StoreExistsError(f"{where} was written by another writer meanwhile; pass overwrite=True (--overwrite) to replace it")
    session = storage.repository.session_for_writing()
    session.merge(fork)
    snapshot = storage.repository.commit(session, f"subject {subject} (streamed, {len(blocks)} blocks){' (overwrite)' if overwrite else ''}")
    storage.refresh(snapshot)
    try:
        os.remove(resume)
    except OSError:
        pass
    return StreamingResult(entry, written, skipped)
