"""Read model activations from the files people bring them in, as one (stimulus_id, feature) DataArray.

Formats, chosen by the path's suffix (or ``format=``):

``.npy``      an array (n_stimuli, ...) plus an ids file (``ids_path``): one id per line, or a JSON list
``.npz``      arrays ``activations`` (or ``features``) and ``stimulus_id`` (or ``ids``)
``.nc``       a NetCDF DataArray, or a Dataset with ``activations`` (or one data variable), dim ``stimulus_id``
``.zarr``     the same as ``.nc``, as a Zarr store (a folder, or any fsspec URL)
``.parquet``  a ``stimulus_id`` column plus one numeric column per feature, or plus one list column

Every dimension after the first is flattened into ``feature`` (a conv layer's (C, H, W) becomes
C*H*W features, C-order). Rows keep the file's order.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.errors import describe_ids

FORMATS = ("npy", "npz", "nc", "zarr", "parquet")
ARRAY_NAMES = ("activations", "features")
ID_NAMES = ("stimulus_id", "ids", "stimulus_ids", "id")


class FeatureFileError(ValueError):
    """A feature file (or its ids file) cannot be read as (stimulus_id, feature) activations."""


def detect_format(path: str | Path) -> str:
    """``npy``, ``npz``, ``nc``, ``zarr`` or ``parquet`` from the path's suffix."""
    name = str(path).rstrip("/").lower()
    for fmt, suffixes in (("npy", (".npy",)), ("npz", (".npz",)), ("nc", (".nc", ".nc4", ".netcdf")),
                          ("zarr", (".zarr",)), ("parquet", (".parquet", ".pq"))):
        if name.endswith(suffixes):
            return fmt
    raise FeatureFileError(f"{path}: cannot tell the format from the name; pass format= one of {', '.join(FORMATS)}")


def _open_bytes(path: str | Path, storage_options: Mapping[str, Any] | None = None) -> bytes:
    import fsspec

    with fsspec.open(str(path), "rb", **dict(storage_options or {})) as handle:
        return handle.read()


def is_local_path(path: str | Path) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def _local_or_buffer(path: str | Path, storage_options: Mapping[str, Any] | None = None) -> Any:
    """A local path as is (read lazily or memory-mapped), a remote file's bytes as a buffer."""
    if is_local_path(path):
        return str(path).removeprefix("file://")
    return io.BytesIO(_open_bytes(path, storage_options))


def read_ids_file(path: str | Path, storage_options: Mapping[str, Any] | None = None) -> np.ndarray:
    """Stimulus ids from a text file (one per line, blank lines ignored) or a ``.json`` list."""
    text = _open_bytes(path, storage_options).decode("utf-8")
    if str(path).lower().endswith(".json"):
        ids = json.loads(text)
        if isinstance(ids, Mapping):  # {"stimulus_id": [...]} is accepted too
            key = next((k for k in ID_NAMES if k in ids), None)
            if key is None:
                raise FeatureFileError(f"{path}: a JSON ids file is a list of ids, or an object with one of {ID_NAMES}")
            ids = ids[key]
        if not isinstance(ids, list):
            raise FeatureFileError(f"{path}: a JSON ids file holds a list of ids, not {type(ids).__name__}")
        return np.asarray([str(i) for i in ids])
    return np.asarray([line.strip() for line in text.splitlines() if line.strip()])


def _pick(names: list[str], wanted: str | None, defaults: tuple[str, ...], what: str, where: str) -> str:
    if wanted is not None:
        if wanted not in names:
            raise FeatureFileError(f"{where}: no {what} named {wanted!r}; it holds {describe_ids(names, shown=12)}")
        return wanted
    found = [n for n in defaults if n in names]
    if not found:
        raise FeatureFileError(f"{where}: no {what} named {' or '.join(map(repr, defaults))}; it holds {describe_ids(names, shown=12)}")
    return found[0]


def _from_arrays(values: Any, ids: Any, where: str) -> xr.DataArray:
    values = np.asarray(values)
    ids = np.asarray(ids)
    if values.ndim < 1:
        raise FeatureFileError(f"{where}: activations are a scalar, expected (n_stimuli, n_features)")
    if ids.ndim != 1:
        raise FeatureFileError(f"{where}: stimulus ids have shape {ids.shape}, expected one id per row")
    if values.shape[0] != len(ids):
        raise FeatureFileError(f"{where}: {values.shape[0]} rows of activations but {len(ids)} stimulus ids")
    if values.dtype.kind not in "fiub":
        raise FeatureFileError(f"{where}: activations have dtype {values.dtype}, expected numbers")
    if values.dtype.kind != "f":
        values = values.astype(np.float32)
    values = values.reshape(values.shape[0], -1)
    ids = ids.astype(object).astype(str) if ids.dtype.kind != "U" else ids
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise FeatureFileError(f"{where}: {int((counts > 1).sum())} stimulus id(s) occur more than once: {describe_ids(unique[counts > 1])}")
    return xr.DataArray(values, dims=("stimulus_id", "feature"), coords={"stimulus_id": ids}, name="activations")


def _from_xarray(obj: xr.Dataset | xr.DataArray, variable: str | None, where: str) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        names = [str(n) for n in obj.data_vars]
        if variable is None and len(names) == 1:
            variable = names[0]
        obj = obj[_pick(names, variable, ARRAY_NAMES, "data variable", where)]
    if "stimulus_id" not in obj.dims:
        raise FeatureFileError(f"{where}: activations have dims {obj.dims}; one must be 'stimulus_id'")
    other = [d for d in obj.dims if d != "stimulus_id"]
    obj = obj.transpose("stimulus_id", *other)
    if "stimulus_id" not in obj.coords:
        raise FeatureFileError(f"{where}: no stimulus_id coordinate on the activations")
    array = _from_arrays(obj.values, obj["stimulus_id"].values, where)
    if len(other) == 1 and other[0] in obj.coords:
        array = array.assign_coords(feature=np.asarray(obj[other[0]].values))
    return array


def _rekeyed(array: xr.DataArray, ids_path: Any, storage_options: Any, where: str) -> xr.DataArray:
    """The rows named by the ids file instead of the file's own ids (same order, same count)."""
    if ids_path is None:
        return array
    return _from_arrays(array.values, read_ids_file(ids_path, storage_options), where)


def _read_npy(path: str, ids_path: Any, storage_options: Any, **_: Any) -> xr.DataArray:
    if ids_path is None:
        raise FeatureFileError(f"{path}: a .npy file holds no stimulus ids; pass ids_path (one id per line, or a .json list)")
    source = _local_or_buffer(path, storage_options)
    # a local .npy is memory-mapped: a layer larger than memory is copied into the lake block by block
    values = np.load(source, allow_pickle=False, mmap_mode="r" if isinstance(source, str) else None)
    return _from_arrays(values, read_ids_file(ids_path, storage_options), path)


def _read_npz(path: str, ids_path: Any, storage_options: Any, variable: str | None = None, id_name: str | None = None) -> xr.DataArray:
    with np.load(_local_or_buffer(path, storage_options), allow_pickle=False) as archive:
        names = list(archive.files)
        values = archive[_pick(names, variable, ARRAY_NAMES, "array", path)]
        if ids_path is None:
            ids = archive[_pick(names, id_name, ID_NAMES, "ids array", path)]
        else:
            ids = read_ids_file(ids_path, storage_options)
    return _from_arrays(values, ids, path)


def _read_nc(path: str, ids_path: Any, storage_options: Any, variable: str | None = None, **_: Any) -> xr.DataArray:
    try:
        obj = xr.load_dataset(_local_or_buffer(path, storage_options))
    except ValueError as error:
        raise FeatureFileError(
            f"{path}: xarray could not read it ({error}). NetCDF4/HDF5 files need the h5netcdf or netCDF4 "
            "package; NetCDF3 files need only scipy"
        ) from error
    return _rekeyed(_from_xarray(obj, variable, path), ids_path, storage_options, path)


def _read_zarr(path: str, ids_path: Any, storage_options: Any, variable: str | None = None, **_: Any) -> xr.DataArray:
    options = dict(storage_options) if storage_options else None
    with warnings.catch_warnings():
        # a store without consolidated metadata (the Zarr v3 default) reads fine; the warning only says it is slower
        warnings.filterwarnings("ignore", message=".*consolidated metadata.*", category=RuntimeWarning)
        obj = xr.open_zarr(path, storage_options=options, consolidated=None)
    return _rekeyed(_from_xarray(obj, variable, path), ids_path, storage_options, path)


def _read_parquet(path: str, ids_path: Any, storage_options: Any, variable: str | None = None, id_name: str | None = None) -> xr.DataArray:
    import pandas as pd

    table = pd.read_parquet(_local_or_buffer(path, storage_options))
    columns = [str(c) for c in table.columns]
    if ids_path is None:
        id_column = _pick(columns, id_name, ID_NAMES, "ids column", path)
        ids = table[id_column].to_numpy()
    else:
        id_column, ids = None, read_ids_file(ids_path, storage_options)
    rest = [c for c in table.columns if str(c) != id_column]
    list_columns = [c for c in rest if table[c].dtype == object and len(table) and isinstance(table[c].iloc[0], (list, np.ndarray))]
    if variable is not None or list_columns:
        column = _pick([str(c) for c in list_columns], variable, tuple(map(str, list_columns[:1])), "list column", path)
        values = np.stack([np.asarray(v) for v in table[column].to_numpy()])
        return _from_arrays(values, ids, path)
    numeric = [c for c in rest if table[c].dtype.kind in "fiub"]
    if len(numeric) != len(rest):
        odd = [str(c) for c in rest if c not in numeric]
        raise FeatureFileError(f"{path}: columns that are neither the ids nor numeric features: {describe_ids(odd)}")
    if not numeric:
        raise FeatureFileError(f"{path}: no feature columns besides {id_column!r}")
    array = _from_arrays(table[numeric].to_numpy(), ids, path)
    return array.assign_coords(feature=np.asarray([str(c) for c in numeric]))


READERS = {"npy": _read_npy, "npz": _read_npz, "nc": _read_nc, "zarr": _read_zarr, "parquet": _read_parquet}


def read_feature_file(
    path: str | Path,
    ids_path: str | Path | None = None,
    format: str | None = None,
    variable: str | None = None,
    id_name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Activations from a file, as a DataArray (stimulus_id, feature) in the file's row order.

    Parameters
    ----------
    path : str or Path
        A local path or an fsspec URL; the format comes from the suffix (see the module docstring).
    ids_path : str or Path, optional
        Stimulus ids, one per line or a ``.json`` list: required for ``.npy``; for the other
        formats it replaces the ids the file holds.
    format : {"npy", "npz", "nc", "zarr", "parquet"}, optional
        Overrides the suffix.
    variable : str, optional
        The array (``.npz``), data variable (``.nc``, ``.zarr``) or list column (``.parquet``)
        holding the activations, when it is not ``activations``/``features`` (or the only one).
    id_name : str, optional
        The ids array (``.npz``) or column (``.parquet``) when not ``stimulus_id``/``ids``.
    storage_options : dict, optional
        fsspec options for remote paths.

    Returns
    -------
    xarray.DataArray of shape (n_stimuli, n_features)
        Float (integers become float32); every dimension after the first flattened.

    Raises
    ------
    FeatureFileError
        The file cannot be read as activations; the message says what is missing or wrong.
    """
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise FeatureFileError(f"unknown feature file format {fmt!r}; valid: {', '.join(FORMATS)}")
    kwargs: dict[str, Any] = {"variable": variable}
    if fmt in ("npz", "parquet"):
        kwargs["id_name"] = id_name
    return READERS[fmt](str(path), ids_path, storage_options, **kwargs)


__all__ = ["FORMATS", "FeatureFileError", "detect_format", "read_feature_file", "read_ids_file"]
