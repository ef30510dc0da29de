"""Model feature sets: group ``features/<model>~<layer>`` (names escaped by the one naming rule,
:mod:`storage_schemas.names`), activations (stimulus_id, feature)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from laion_lake.errors import MissingStimuliError, describe_ids
from laion_lake.lake.storage import LakeStorage
from laion_lake.lake.zarr_io import (
    ENTRY_ATTR,
    as_str_array,
    check_finite_rows,
    content_checksum,
    open_dataset_group,
    plain_strings,
    require_complete,
    write_dataset_group,
    write_store,
)
from storage_schemas import check_dataset, latest_version, load_schema
from storage_schemas.names import KEY_JOINER, KEY_SEPARATOR, join_key, split_key

SCHEMA = "features"


FEATURES_GROUP = "features"


def feature_key(model: str, layer: str) -> str:
    """The manifest key of a feature set: ``<model>/<layer>``, each escaped (plain names stay as they are)."""
    return join_key(model, layer, separator=KEY_SEPARATOR)


def features_path(model: str, layer: str) -> str:
    """The group of a feature set, one level under ``features/``."""
    return f"{FEATURES_GROUP}/{join_key(model, layer, separator=KEY_JOINER)}"


def name_from_component(component: str) -> tuple[str, str]:
    """(model, layer) of a feature set's group name (inverse of :func:`features_path`'s last part)."""
    model, layer = split_key(component, separator=KEY_JOINER)
    return model, layer


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
    where = f"feature set {model}/{layer} ({storage.display(relative)})"
    ds = as_feature_dataset(data, model, layer)
    check_dataset(ds, SCHEMA, where=where)
    ds = ds.load()
    check_finite_rows(ds["activations"].values, where, ds["stimulus_id"].values)
    if known_stimuli is not None:
        unknown = np.setdiff1d(ds["stimulus_id"].values, np.asarray(known_stimuli).astype(str))
        if len(unknown):
            raise ValueError(f"{where}: {len(unknown)} stimulus id(s) not in the lake's stimulus table: {describe_ids(unknown)}")
    chunks = load_schema(SCHEMA)["chunks"]
    shape = (min(int(chunks["stimulus_id"]), ds.sizes["stimulus_id"]), min(int(chunks["feature"]), ds.sizes["feature"]))
    checksum = content_checksum(ds)

    entry = {
        "path": relative,
        "model": model,
        "layer": layer,
        "n_stimuli": int(ds.sizes["stimulus_id"]),
        "n_features": int(ds.sizes["feature"]),
        "checksum": checksum,
        "schema_version": latest_version(SCHEMA),
    }
    if provenance is not None:
        entry["provenance"] = dict(provenance)

    def write_groups(store: Any, group: str) -> dict[str, Any]:
        write_dataset_group(store, ds, group, {"activations": shape})
        attrs = {"schema": SCHEMA, "schema_version": latest_version(SCHEMA), "checksum": checksum, ENTRY_ATTR: entry}
        return attrs if provenance is None else {**attrs, "provenance": dict(provenance)}

    write_store(storage, relative, write_groups, overwrite=overwrite, message=f"features {feature_key(model, layer)}{' (overwrite)' if overwrite else ''}")
    return entry


def open_features(storage: LakeStorage, model: str, layer: str, stimulus_ids: Any = None, needed_by: str = "") -> xr.DataArray:
    """Activations (stimulus_id, feature), lazy; rows in the order of ``stimulus_ids`` when given.

    Raises
    ------
    MissingStimuliError
        Some of ``stimulus_ids`` have no activations; the message names them.
    """
    relative = features_path(model, layer)
    root = require_complete(storage, relative)
    ds = open_dataset_group(storage.store(), relative)
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
