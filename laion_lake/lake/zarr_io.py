"""Writing and opening xarray datasets as Zarr v3 groups, with an all-or-nothing completion marker.

A store is *complete* only once its root attribute ``laion_lake_complete`` is true; that attribute
is written last, so an interrupted write never looks complete. Readers refuse incomplete stores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr
import zarr

from laion_lake.errors import IncompleteStoreError, StoreExistsError
from laion_lake.lake.storage import LakeStorage

COMPLETE_ATTR = "laion_lake_complete"
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
    """Whether ``relative`` is a Zarr store whose write finished."""
    if not storage.exists(f"{relative}/zarr.json"):
        return False
    group = zarr.open_group(storage.zarr_store(relative), mode="r")
    return bool(group.attrs.get(COMPLETE_ATTR, False))


def require_complete(storage: LakeStorage, relative: str) -> zarr.Group:
    """The root group of a complete store; a clear error otherwise."""
    where = storage.display(relative)
    if not storage.exists(f"{relative}/zarr.json"):
        raise FileNotFoundError(f"no Zarr store at {where}")
    group = zarr.open_group(storage.zarr_store(relative), mode="r")
    if not group.attrs.get(COMPLETE_ATTR, False):
        raise IncompleteStoreError(
            f"{where} is incomplete (an interrupted or failed write); the lake ignores it. "
            "Write it again to replace it."
        )
    return group


def write_store(
    storage: LakeStorage,
    relative: str,
    write_groups: Callable[[Any], Mapping[str, Any]],
    overwrite: bool = False,
) -> None:
    """Write a Zarr store all-or-nothing.

    Parameters
    ----------
    storage : LakeStorage
    relative : str
        Store path under the lake root, e.g. ``subjects/sub-01.zarr``.
    write_groups : callable
        ``write_groups(zarr_store) -> root_attrs``: writes the store's content, returns the root
        attributes to set (the completion marker is added after them).
    overwrite : bool
        Replace a complete store. The new store is written beside it and moved in only once
        complete, so a failed overwrite keeps the old store intact.

    Raises
    ------
    StoreExistsError
        A complete store is there and ``overwrite`` is False.
    """
    existing = is_complete(storage, relative)
    if existing and not overwrite:
        raise StoreExistsError(f"{storage.display(relative)} already exists; pass overwrite=True to replace it")
    # an existing complete store is kept until the new one is complete: write elsewhere first
    target = storage.staging_path(relative.rsplit("/", 1)[-1]) if existing else relative
    if not existing:
        storage.remove(relative)  # leftovers of an interrupted write hold nothing of value
    try:
        store = storage.zarr_store(target, read_only=False)
        attrs = dict(write_groups(store))
        root = zarr.open_group(store, mode="a")
        root.attrs.update({**attrs, COMPLETE_ATTR: True})
    except BaseException:
        storage.remove(target)
        raise
    if existing:
        replace_with_staged(storage, target, relative)


def replace_with_staged(storage: LakeStorage, staged: str, relative: str) -> None:
    """Move a complete staged store over ``relative``; the old store is removed only afterwards."""
    trash = storage.staging_path("replaced")
    storage.move(relative, trash)
    storage.move(staged, relative)
    storage.remove(trash.rsplit("/", 1)[0])
    storage.remove(staged.rsplit("/", 1)[0])


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
