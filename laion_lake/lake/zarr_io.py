"""Writing and opening xarray datasets as Zarr v3 groups of the lake's Icechunk repository.

A *store* of the lake (the stimulus table, one subject, one feature set) is one group; it is written
in one session and one commit (:func:`write_store`), so a reader sees all of it or none of it. Its
attributes carry its manifest entry (:data:`ENTRY_ATTR`): the manifest is the snapshot's list of
such groups, so a store and its manifest entry change in the same commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr
import zarr

from laion_lake.errors import IncompleteStoreError, NonFiniteDataError, StoreExistsError, describe_ids
from laion_lake.lake.storage import LakeStorage, remove_node

COMPLETE_ATTR = "laion_lake_complete"
# the manifest entry of a store, kept in its group attributes
ENTRY_ATTR = "lake_entry"
# rows hashed per step when checksumming (bounds memory for dask-backed inputs)
_CHECKSUM_ROWS = 4096


def _variable_length_strings(ds: xr.Dataset) -> xr.Dataset:
    """Store strings as zarr's variable-length UTF-8 (object dtype), the stable v3 string encoding."""
    converted = {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "US" or str(var.dtype).startswith("StringDType"):
            converted[name] = var.astype(object)
    return ds.assign(**{k: v for k, v in converted.items() if k in ds.data_vars}).assign_coords(
        **{k: v for k, v in converted.items() if k in ds.coords}
    )


def as_str_array(values: Any) -> np.ndarray:
    """numpy ``str`` array from object, StringDType or str input (StringDType cannot cast directly)."""
    values = np.asarray(values)
    if values.dtype.kind == "U":
        return values
    return values.astype(object).astype(str)


def plain_strings(ds: xr.Dataset) -> xr.Dataset:
    """Read-side counterpart: numpy ``str`` arrays for every string coordinate and variable."""
    for name in list(ds.variables):
        var = ds[name]
        if var.dtype.kind == "O" or str(var.dtype).startswith("StringDType"):
            values = as_str_array(var.values)
            if name in ds.coords:
                ds = ds.assign_coords({name: (var.dims, values)})
            else:
                ds[name] = (var.dims, values)
    return ds


def content_checksum(ds: xr.Dataset) -> str:
    """sha256 over every variable's values (sorted by name), read in row blocks.

    The same logical content gives the same checksum whatever the chunking, so ``validate --deep``
    can recompute it from the lake and compare.
    """
    digest = hashlib.sha256()
    for name in sorted(map(str, ds.variables)):
        update_checksum(digest, name, ds[name])
    return digest.hexdigest()


def checksum_header(name: str, dims: tuple[str, ...], kind: str, shape: tuple[int, ...]) -> bytes:
    """What :func:`content_checksum` hashes before a variable's values."""
    return f"{name}:{dims}:{kind}:{shape}".encode()


def update_checksum(digest: Any, name: str, var: Any) -> None:
    """Feed one variable (header, then values in row blocks) into a running sha256, as
    :func:`content_checksum` does. Numeric values are hashed as C-order bytes, so a writer that
    streams a 2-D variable's rows in order can feed them block by block and get the same digest."""
    digest.update(checksum_header(name, var.dims, var.dtype.kind, var.shape))
    if var.ndim == 0:
        digest.update(np.asarray(var.values).astype(str).tobytes() if var.dtype.kind in "OUS" else np.asarray(var.values).tobytes())
        return
    for start in range(0, var.shape[0], _CHECKSUM_ROWS):
        block = np.asarray(var[start : start + _CHECKSUM_ROWS].values)
        if block.dtype.kind in "OUS" or str(block.dtype).startswith("StringDType"):
            digest.update("\x00".join(block.astype(str).ravel().tolist()).encode())
        else:
            digest.update(np.ascontiguousarray(block).tobytes())


def is_complete(storage: LakeStorage, relative: str) -> bool:
    """Whether the snapshot holds a store (a group with its manifest entry) at ``relative``."""
    group = storage.group(relative)
    return group is not None and bool(group.attrs.get(COMPLETE_ATTR, False))


def require_complete(storage: LakeStorage, relative: str) -> zarr.Group:
    """The group of a store; a clear error when the snapshot has none."""
    group = storage.group(relative)
    if group is None:
        raise FileNotFoundError(f"no store at {storage.display(relative)} (snapshot {storage.snapshot_id})")
    if not group.attrs.get(COMPLETE_ATTR, False):
        raise IncompleteStoreError(f"{storage.display(relative)} is not a complete store of the lake")
    return group


def write_store(
    storage: LakeStorage,
    relative: str,
    write_groups: Callable[[Any, str], Mapping[str, Any]],
    overwrite: bool = False,
    message: str | None = None,
) -> Mapping[str, Any]:
    """Write one store in one commit: all of it or none of it.

    Parameters
    ----------
    storage : LakeStorage
    relative : str
        Group path in the repository, e.g. ``subjects/sub-01``.
    write_groups : callable
        ``write_groups(session_store, relative) -> attrs``: writes the store's content under
        ``relative``, returns the group attributes (manifest entry included, see
        :data:`ENTRY_ATTR`). It may be called again on a fresh session (a redo after a conflict).
    overwrite : bool
        Replace a store that is there (in the same commit: readers see the old or the new one).
    message : str, optional
        Commit message; default ``write <relative>``.

    Raises
    ------
    StoreExistsError
        A store is there (in the head the commit lands on) and ``overwrite`` is False.
    """

    def change(session: Any) -> Mapping[str, Any]:
        parent, _, name = relative.rpartition("/")
        group = zarr.open_group(session.store, path=parent, mode="r") if parent else zarr.open_group(session.store, mode="r")
        if name in group:
            if not overwrite and zarr.open_group(session.store, path=relative, mode="r").attrs.get(COMPLETE_ATTR):
                raise StoreExistsError(f"{storage.display(relative)} already exists; pass overwrite=True (--overwrite) to replace it")
            remove_node(session, relative)
        attrs = dict(write_groups(session.store, relative))
        zarr.open_group(session.store, path=relative, mode="a").attrs.update({**attrs, COMPLETE_ATTR: True})
        return attrs

    return storage.write(message or f"write {relative}", change)


def check_finite_rows(values: np.ndarray, where: str, row_ids: np.ndarray, column_names: np.ndarray | None = None, offset: int = 0) -> None:
    """Refuse NaN/inf in a 2-D block, naming the first row ids and columns at fault.

    ``offset`` is the block's first row (for streamed blocks); ``column_names`` default to positions.
    """
    finite = np.isfinite(values)
    if finite.all():
        return
    bad_rows, bad_cols = np.nonzero(~finite)
    rows = np.unique(bad_rows)
    columns = np.unique(bad_cols)
    ids = np.asarray(row_ids)[rows + offset] if row_ids is not None else rows + offset
    names = np.asarray(column_names)[columns] if column_names is not None else columns
    raise NonFiniteDataError(
        f"{where}: {int((~finite).sum())} non-finite value(s) (NaN/inf) in {len(rows)} row(s), first "
        f"{describe_ids(ids)}; column(s) {describe_ids(names)}"
    )


def write_dataset_group(
    store: Any, ds: xr.Dataset, group: str | None, chunks: Mapping[str, tuple[int, ...]] | None = None, compute: bool = True
) -> None:
    """Write one xarray dataset as a group of ``store`` (Zarr v3, variable-length strings).

    ``compute=False`` writes the numpy-backed variables and only the metadata of dask-backed ones
    (their chunks are filled later, e.g. by a streaming writer).
    """
    encoding = {name: {"chunks": shape} for name, shape in (chunks or {}).items()}
    prepared = _variable_length_strings(ds.drop_encoding())
    prepared.to_zarr(store, group=group, mode="w-", zarr_format=3, consolidated=False, encoding=encoding, compute=compute)


def open_dataset_group(store: Any, group: str | None) -> xr.Dataset:
    """Open one group lazily (dask-backed, chunked as stored)."""
    return xr.open_zarr(store, group=group, consolidated=False, zarr_format=3)
