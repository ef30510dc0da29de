"""How score records are stored: their groups, inputs, per-voxel arrays and JSON form.

Holds the layout of ``results/`` (:data:`UNITS`, :data:`AGGREGATES`, the record attribute and
each unit's ``voxels/`` arrays) with the paths of a unit or aggregate record, the reading and
writing of one record group, the input checksums a record names (:func:`unit_inputs`,
:func:`aggregate_inputs`), the per-voxel arrays of a cell, and the conversion between a Score
and its JSON document (:func:`score_to_record`, :func:`record_to_score`). No scoring runs here;
:mod:`laion_lake.scoring.records` computes, batches and loads records and re-exports these names.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.scoring.plan import Aggregate, WorkUnit, escape_key_component
from laion_lake.scoring.units import CellResult
from storage_schemas.names import KEY_JOINER, KEY_SEPARATOR, join_key

UNITS, AGGREGATES = "results/units", "results/aggregates"
RECORD_ATTR = "record"
# per-voxel arrays of a unit's cells: results/units/<unit>/voxels/<cell>, written in the record's commit
VOXELS = "voxels"
# the float arrays stored per cell there, one value per neuroid_id (CellResult fields of the same name)
VOXEL_ARRAYS = ("voxel_r", "voxel_r2_nsd", "voxel_nc_nsd")
# test_restriction of a cell that tests on the whole test set (no OOD category is named so)
_WHOLE_TEST_SET = "whole-test-set"


def _group_name(key: str) -> str:
    # key parts are escaped: neither '/' nor '~' occurs inside one, so this is reversible
    return key.replace(KEY_SEPARATOR, KEY_JOINER)


def unit_record_path(unit: WorkUnit) -> str:
    return f"{UNITS}/{_group_name(unit.key)}"


def aggregate_record_path(aggregate: Aggregate) -> str:
    return f"{AGGREGATES}/{_group_name(aggregate.key)}"


def _read_record(session_or_storage: Any, relative: str) -> dict[str, Any] | None:
    """The record at ``relative`` in a session (or the snapshot a LakeStorage reads), or None."""
    import zarr

    store = session_or_storage.session.store if hasattr(session_or_storage, "repository") else session_or_storage.store
    try:
        attrs = zarr.open_group(store, path=relative, mode="r").attrs
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        return None
    return dict(attrs[RECORD_ATTR]) if RECORD_ATTR in attrs else None


def _write_record(session: Any, relative: str, record: Mapping[str, Any]) -> None:
    import zarr

    zarr.open_group(session.store, path=relative, mode="a").attrs[RECORD_ATTR] = dict(record)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _table_inputs(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {"splits": manifest.get("splits"), "stimuli": manifest.get("stimuli")}


def unit_inputs(lake: Any, unit: WorkUnit) -> dict[str, Any]:
    """Content checksums of what a unit reads, from the manifest: a changed input makes its record stale."""
    manifest = lake.manifest
    features = manifest["features"].get(escape_key_component(unit.model) + KEY_SEPARATOR + escape_key_component(unit.layer))
    subject = manifest["subjects"].get(unit.subject)
    return {
        "features": None if features is None else features.get("checksum"),
        "subject": None if subject is None else subject.get("checksum"),
        **_table_inputs(manifest),
    }


def aggregate_inputs(lake: Any, model: str, layer: str, subjects: Iterable[str]) -> dict[str, Any]:
    """Content checksums of what an aggregate was computed from: the feature set, each subject, the tables."""
    manifest = lake.manifest
    features = manifest["features"].get(escape_key_component(model) + KEY_SEPARATOR + escape_key_component(layer))
    return {
        "features": None if features is None else features.get("checksum"),
        "subjects": {s: manifest["subjects"].get(s, {}).get("checksum") for s in sorted(set(subjects))},
        **_table_inputs(manifest),
    }


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _json_ready(value: Any) -> Any:
    """NaN/inf -> None (JSON has no NaN); numpy scalars -> Python; recursively."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return _finite_or_none(value)


def _nan_if_none(value: Any) -> float:
    return float("nan") if value is None else float(value)


def read_unit_record(lake: Any, unit: WorkUnit) -> dict[str, Any] | None:
    """The stored record of a unit in the snapshot the lake reads, or None when there is none."""
    return _read_record(lake.storage, unit_record_path(unit))


def _cell_key(cell: Mapping[str, Any]) -> tuple[Any, ...]:
    return (cell["benchmark_key"], cell["region"], cell["metric"], cell["test_restriction"], cell["fold"])


def cell_voxels_path(unit: WorkUnit, cell: Mapping[str, Any]) -> str:
    """Group of one cell's per-voxel arrays (``voxel_r``, ``voxel_r2_nsd``, ``voxel_nc_nsd``, ``neuroid_id``) under its unit record."""
    parts = (cell["benchmark_key"], cell["region"], cell["metric"], cell["test_restriction"] or _WHOLE_TEST_SET, str(cell["fold"]))
    return f"{unit_record_path(unit)}/{VOXELS}/{join_key(*parts, separator=KEY_JOINER)}"


def _write_cell_voxels(session: Any, unit: WorkUnit, result: CellResult) -> None:
    """Store a regression cell's per-voxel arrays next to its record (chunked, not JSON); replaces an older one.

    ``voxel_r`` (Pearson r), ``voxel_r2_nsd`` (``r**2 / (NC/100)``, the ``nsd`` convention) and
    ``voxel_nc_nsd`` (the NC used, percent, for the cell's test design), one value per ``neuroid_id``.
    """
    from laion_lake.lake.storage import remove_node
    from laion_lake.lake.zarr_io import write_dataset_group

    import zarr

    relative = cell_voxels_path(unit, result.to_dict())
    zarr.open_group(session.store, path=relative.rpartition("/")[0], mode="a")  # the unit's voxels/ group
    remove_node(session, relative)
    arrays = {name: ("neuroid", np.asarray(getattr(result, name), dtype=np.float64))
              for name in VOXEL_ARRAYS if getattr(result, name) is not None}
    voxels = xr.Dataset(arrays, coords={"neuroid_id": ("neuroid", np.asarray(result.neuroid).astype(str))})
    write_dataset_group(session.store, voxels, relative, {name: (4096,) for name in (*arrays, "neuroid_id")})


def read_cell_voxels(lake: Any, unit: WorkUnit, cell: Mapping[str, Any]) -> dict[str, Any] | None:
    """The per-voxel arrays stored for one cell of a unit record, or None when it has none.

    Returns
    -------
    dict or None
        ``neuroid`` (str array of shape (n_voxels,), loaded) and each stored array of
        :data:`VOXEL_ARRAYS` as a lazy dask array of shape (n_voxels,) (a record written before
        ``voxel_r2_nsd`` was stored lacks it and ``voxel_nc_nsd``).
    """
    from laion_lake.lake.zarr_io import open_dataset_group, plain_strings

    relative = cell_voxels_path(unit, cell)
    if not lake.storage.exists(relative):
        return None
    ds = open_dataset_group(lake.storage.store(), relative)
    ids = plain_strings(ds[["neuroid_id"]].load())["neuroid_id"].values.astype(str)
    return {"neuroid": ids, **{name: ds[name].data for name in VOXEL_ARRAYS if name in ds}}


def score_to_record(score: xr.DataArray) -> dict[str, Any]:
    """A Score as a score_record document (schema storage_schemas/score_record.v1.json)."""
    attrs = score.attrs
    record = {
        "key": f"{attrs['model']}/{attrs['layer']}/{attrs['benchmark_key']}",
        "kind": "aggregate",
        "model": attrs["model"],
        "layer": attrs["layer"],
        "benchmark": attrs["benchmark"],
        "benchmark_version": int(attrs["benchmark_version"]),
        "convention": attrs["convention"],
        "value": float(score.values),
        "created": _now(),
        **{k: v for k, v in attrs.items() if k not in ("model", "layer", "benchmark", "benchmark_version", "convention", "voxel_r", "voxel_r2_nsd")},
    }
    return _json_ready(record)


def record_to_score(record: Mapping[str, Any]) -> xr.DataArray:
    """Inverse of :func:`score_to_record` (NaN restored where JSON holds null)."""
    attrs = {k: v for k, v in record.items() if k not in ("value", "key", "kind", "created", "schema", "schema_version", "benchmark_spec", "inputs", "units")}
    for name in ("raw", "ceiling", "error"):
        attrs[name] = _nan_if_none(attrs.get(name))
    attrs["created"] = record.get("created")
    return xr.DataArray(_nan_if_none(record["value"]), name="score", attrs=attrs)
