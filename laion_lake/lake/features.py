"""Model feature sets: ``features/<model>/<layer>.zarr``, activations (stimulus_id, feature)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import xarray as xr

from laion_lake.errors import MissingStimuliError, describe_ids
from laion_lake.lake.storage import LakeStorage
from laion_lake.lake.zarr_io import (
    as_str_array,
    content_checksum,
    open_dataset_group,
    plain_strings,
    require_complete,
    write_dataset_group,
    write_store,
)
from storage_schemas import check_dataset, latest_version, load_schema

SCHEMA = "features"


def path_component(name: str) -> str:
    """A model or layer name made safe as one path component (``/`` and ``%`` escaped)."""
    return quote(name, safe="-_.+=,@")


def name_from_component(component: str) -> str:
    return unquote(component.removesuffix(".zarr"))


def features_path(model: str, layer: str) -> str:
    return f"features/{path_component(model)}/{path_component(layer)}.zarr"


def as_feature_dataset(data: Any, model: str, layer: str) -> xr.Dataset:
    """Accept a DataArray (stimulus_id, feature) or a Dataset with ``activations``; return the store's dataset."""
    if isinstance(data, xr.Dataset):
        data = data["activations"]
    if not isinstance(data, xr.DataArray):
        raise TypeError(f"features for {model}/{layer}: expected an xarray DataArray (stimulus_id, feature), got {type(data).__name__}")
    if data.ndim != 2 or "stimulus_id" not in data.dims:
        raise ValueError(f"features for {model}/{layer}: dims {data.dims}, expected ('stimulus_id', 'feature')")
    other = next(d for d in data.dims if d != "stimulus_id")
    data = data.rename({other: "feature"}).transpose("stimulus_id", "feature")
    if "stimulus_id" not in data.coords:
        raise ValueError(f"features for {model}/{layer}: no stimulus_id coordinate")
    ds = xr.Dataset({"activations": data.variable}, coords={"stimulus_id": np.asarray(data["stimulus_id"].values).astype(str)})
    return ds.assign_attrs({**data.attrs, "model": model, "layer": layer})


def write_features(
    storage: LakeStorage,
    model: str,
    layer: str,
    data: Any,
    known_stimuli: np.ndarray | None = None,
    overwrite: bool = False,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validate and write one feature set; return its manifest entry.

    Parameters
    ----------
    data : xarray.DataArray of shape (n_stimuli, n_features)
        Activations with a ``stimulus_id`` coordinate.
    known_stimuli : array of str, optional
        The stimulus table's ids: ids outside it are an error naming them.
    provenance : dict, optional
        Where the activations came from (JSON-able: source file, checksum, date, format);
        stored in the store's root attrs and in the returned manifest entry.
    """
    relative = features_path(model, layer)
    where = storage.display(relative)
    ds = as_feature_dataset(data, model, layer)
    check_dataset(ds, SCHEMA, where=where)
    if known_stimuli is not None:
        unknown = np.setdiff1d(ds["stimulus_id"].values, np.asarray(known_stimuli).astype(str))
        if len(unknown):
            raise ValueError(f"{where}: {len(unknown)} stimulus id(s) not in the lake's stimulus table: {describe_ids(unknown)}")
    chunks = load_schema(SCHEMA)["chunks"]
    shape = (min(int(chunks["stimulus_id"]), ds.sizes["stimulus_id"]), min(int(chunks["feature"]), ds.sizes["feature"]))
    checksum = content_checksum(ds)

    def write_groups(store: Any) -> dict[str, Any]:
        write_dataset_group(store, ds, None, {"activations": shape})
        attrs = {"schema": SCHEMA, "schema_version": latest_version(SCHEMA), "checksum": checksum}
        return attrs if provenance is None else {**attrs, "provenance": dict(provenance)}

    write_store(storage, relative, write_groups, overwrite=overwrite)
    entry = {
        "path": relative,
        "model": model,
        "layer": layer,
        "n_stimuli": int(ds.sizes["stimulus_id"]),
        "n_features": int(ds.sizes["feature"]),
        "checksum": checksum,
        "schema_version": latest_version(SCHEMA),
    }
    return entry if provenance is None else {**entry, "provenance": dict(provenance)}


def open_features(storage: LakeStorage, model: str, layer: str, stimulus_ids: Any = None, needed_by: str = "") -> xr.DataArray:
    """Activations (stimulus_id, feature), lazy; rows in the order of ``stimulus_ids`` when given.

    Raises
    ------
    MissingStimuliError
        Some of ``stimulus_ids`` have no activations; the message names them.
    """
    relative = features_path(model, layer)
    root = require_complete(storage, relative)
    ds = open_dataset_group(storage.zarr_store(relative), None)
    ds = ds.assign_coords(stimulus_id=as_str_array(ds["stimulus_id"].values))
    check_dataset(ds, SCHEMA, version=int(root.attrs.get("schema_version", 1)), where=storage.display(relative), check_values=False)
    activations = ds["activations"].assign_attrs(model=model, layer=layer)
    if stimulus_ids is None:
        return activations
    wanted = np.asarray(stimulus_ids).astype(str)
    have = activations["stimulus_id"].values
    order = np.argsort(have)
    position = np.clip(np.searchsorted(have, wanted, sorter=order), 0, len(have) - 1)
    rows = order[position]
    missing = wanted[have[rows] != wanted]
    if len(missing):
        raise MissingStimuliError(storage.display(relative), list(missing), needed_by)
    return activations.isel(stimulus_id=rows)
