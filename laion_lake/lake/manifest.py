"""The lake's manifest, read from the snapshot, and the root attributes and fixed groups of a new lake.

Holds :func:`read_manifest` (the list of complete stores, each group carrying its own manifest
entry, checked against the ``lake_manifest`` schema), the schema names a lake records, and the
groups :func:`laion_lake.lake.lake.create_lake` makes once with the lake. Re-exported by
:mod:`laion_lake.lake.lake`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator
from typing import Any

from laion_lake.errors import LakeNotFoundError
from laion_lake.lake.features import FEATURES_GROUP, feature_key
from laion_lake.lake.storage import LakeStorage
from laion_lake.lake.subjects import SUBJECTS_GROUP
from laion_lake.lake.tables import SPLITS_PATH, STIMULI_PATH
from laion_lake.lake.zarr_io import COMPLETE_ATTR, ENTRY_ATTR
from storage_schemas import check_record, latest_version

SCHEMAS = ("subject_assembly", "stimuli", "splits", "features", "score_record", "lake_manifest")
# groups created once, with the lake: two sessions that both create a new parent group cannot be rebased
RESULTS_GROUP = "results"
FIXED_GROUPS = (SUBJECTS_GROUP, FEATURES_GROUP, RESULTS_GROUP, f"{RESULTS_GROUP}/units", f"{RESULTS_GROUP}/aggregates")
# the Icechunk nodes read_manifest reads ("/": the root group's attributes); score records are not among them
MANIFEST_PATHS = ("/", f"/{SUBJECTS_GROUP}", f"/{FEATURES_GROUP}", f"/{STIMULI_PATH}", f"/{SPLITS_PATH}")


def _new_root_attrs() -> dict[str, Any]:
    return {
        "format": "laion-lake",
        "schema_versions": {name: latest_version(name) for name in SCHEMAS},
        "provenance": {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
    }


def _entries(storage: LakeStorage, parent: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group name, manifest entry) of every complete store directly under ``parent``."""
    group = storage.group(parent)
    if group is None:
        return
    for name, child in group.groups():
        attrs = child.attrs
        if attrs.get(COMPLETE_ATTR) and ENTRY_ATTR in attrs:
            yield name, dict(attrs[ENTRY_ATTR])


def read_manifest(storage: LakeStorage) -> dict[str, Any]:
    """The manifest (what lake.json used to hold) of the snapshot ``storage`` reads."""
    root = storage.group("")
    if root is None or root.attrs.get("format") != "laion-lake":
        raise LakeNotFoundError(f"no lake at {storage.url}; create one with `laion-lake synth` or create_lake()")
    attrs = root.attrs.asdict()
    manifest: dict[str, Any] = {
        "format": attrs["format"],
        "schema_versions": dict(attrs.get("schema_versions", {})),
        "provenance": dict(attrs.get("provenance", {})),
        "subjects": dict(_entries(storage, SUBJECTS_GROUP)),
        "pools": [],
        "features": {},
    }
    for name, path in (("stimuli", STIMULI_PATH), ("splits", SPLITS_PATH)):
        group = storage.group(path)
        if group is not None and group.attrs.get(COMPLETE_ATTR):
            manifest[name] = dict(group.attrs[ENTRY_ATTR])
    if "splits" in manifest:
        manifest["pools"] = list(manifest["splits"].get("pools", []))
    for _, entry in _entries(storage, FEATURES_GROUP):
        manifest["features"][feature_key(entry["model"], entry["layer"])] = entry
    check_record(manifest, "lake_manifest", where=f"{storage.url} (snapshot {storage.snapshot_id})")
    return manifest
