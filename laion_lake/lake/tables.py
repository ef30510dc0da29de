"""The stimulus table (group ``stimuli``) and the split store (group ``splits``), and the published split JSONs.

Splits are data published with the dataset, one JSON per (pool, split name): keys ``name``,
``pool``, ``splitter``, ``params``, ``n_train``, ``n_test``, ``variants`` (one variant, with
``variant_id``, ``train_ids``, ``test_ids``). Both the real files and the synthetic lake's splits
go through :func:`splits_dataset_from_documents`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.errors import describe_ids
from laion_lake.lake.storage import LakeStorage
from laion_lake.lake.zarr_io import ENTRY_ATTR, open_dataset_group, plain_strings, require_complete, write_dataset_group, write_store
from storage_schemas import check_dataset, latest_version

STIMULI_PATH = "stimuli"
SPLITS_PATH = "splits"
SPLIT_NAMES = ("tau", "ood") + tuple(f"random_{k}" for k in range(5)) + tuple(f"cluster_k5_{k}" for k in range(5))
NOT_IN_SPLIT, TRAIN, TEST = 0, 1, 2
_REQUIRED_SPLIT_KEYS = ("name", "variants")


def pool_of_document(document: Mapping[str, Any], source: str) -> str:
    """The pool a published split belongs to: the folder it came from (``shared``, ``sub-01``)."""
    pool = document.get("lake_pool") or Path(source).parent.name
    if pool != "shared" and not pool.startswith("sub-"):
        raise ValueError(f"{source}: cannot tell the pool (expected a folder named 'shared' or 'sub-XX')")
    return pool


def read_published_splits(directory: str | Path) -> list[dict[str, Any]]:
    """Read every ``<pool>/<name>.json`` under ``directory`` (the published layout).

    Each returned document carries ``lake_pool`` (the folder) and ``source`` (the file path).
    """
    directory = Path(directory)
    paths = sorted(directory.glob("*/*.json"))
    if not paths:
        raise FileNotFoundError(f"no split JSON files (<pool>/<name>.json) under {directory}")
    documents = []
    for path in paths:
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        document["source"] = str(path)
        document["lake_pool"] = pool_of_document(document, str(path))
        documents.append(document)
    return documents


def _check_document(document: Mapping[str, Any]) -> None:
    source = document.get("source", f"split {document.get('name')!r}")
    missing = [key for key in _REQUIRED_SPLIT_KEYS if key not in document]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}")
    for variant in document["variants"]:
        train, test = list(map(str, variant["train_ids"])), list(map(str, variant["test_ids"]))
        overlap = sorted(set(train) & set(test))
        if overlap:
            raise ValueError(f"{source}: {len(overlap)} id(s) both in train and test: {describe_ids(overlap)}")
        for label, ids in (("train_ids", train), ("test_ids", test)):
            if len(set(ids)) != len(ids):
                duplicates = sorted({i for i in ids if ids.count(i) > 1})
                raise ValueError(f"{source}: duplicate {label}: {describe_ids(duplicates)}")
        for label, ids, declared in (("train", train, document.get("n_train")), ("test", test, document.get("n_test"))):
            if declared is not None and declared != len(ids):
                raise ValueError(f"{source}: n_{label}={declared} but {len(ids)} {label} ids")


def splits_dataset_from_documents(documents: Iterable[Mapping[str, Any]], stimulus_ids: np.ndarray) -> xr.Dataset:
    """Build the split store's dataset from published split documents.

    Parameters
    ----------
    documents : iterable of dict
        Published split documents, each with ``lake_pool`` set (see :func:`read_published_splits`).
    stimulus_ids : array of shape (n_stimuli,)
        The lake's stimulus table ids; every split id must be among them.

    Returns
    -------
    xarray.Dataset
        ``membership`` (split, stimulus_id) int8: 0 not in the split's pool, 1 train, 2 test.
    """
    stimulus_ids = np.sort(np.asarray(stimulus_ids).astype(str))
    keys, pools, names, variants, rows, metadata = [], [], [], [], [], {}
    for document in documents:
        _check_document(document)
        source = document.get("source", f"split {document['name']!r}")
        pool = document["lake_pool"]
        for variant in document["variants"]:
            key = f"{pool}/{document['name']}/{int(variant['variant_id'])}"
            row = np.zeros(len(stimulus_ids), dtype=np.int8)
            for label, value in (("train_ids", TRAIN), ("test_ids", TEST)):
                ids = np.asarray(variant[label]).astype(str)
                position = np.clip(np.searchsorted(stimulus_ids, ids), 0, len(stimulus_ids) - 1)
                unknown = ids[stimulus_ids[position] != ids]
                if len(unknown):
                    raise ValueError(f"{source}: {len(unknown)} {label} not in the stimulus table: {describe_ids(unknown)}")
                row[position] = value
            keys.append(key)
            pools.append(pool)
            names.append(str(document["name"]))
            variants.append(int(variant["variant_id"]))
            rows.append(row)
            metadata[key] = {k: document[k] for k in ("name", "pool", "splitter", "params", "n_train", "n_test", "source") if k in document}
    if len(set(keys)) != len(keys):
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"split(s) given twice: {describe_ids(duplicates)}")
    order = np.argsort(keys)
    return xr.Dataset(
        {"membership": (("split", "stimulus_id"), np.stack(rows)[order])},
        coords={
            "split": np.asarray(keys)[order],
            "pool": ("split", np.asarray(pools)[order]),
            "name": ("split", np.asarray(names)[order]),
            "variant": ("split", np.asarray(variants, dtype=np.int16)[order]),
            "stimulus_id": stimulus_ids,
        },
        attrs={"split_metadata": metadata},
    )


def write_table(
    storage: LakeStorage, relative: str, ds: xr.Dataset, schema: str, overwrite: bool, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate and write a small table store (stimuli or splits) in one commit; return its manifest entry.

    ``extra`` is merged into the entry (the split store's pools).
    """
    check_dataset(ds, schema, where=storage.display(relative))
    entry = {"path": relative, "schema_version": latest_version(schema), **{d: int(n) for d, n in ds.sizes.items()}, **dict(extra or {})}

    def write_groups(store: Any, group: str) -> dict[str, Any]:
        write_dataset_group(store, ds, group)
        return {"schema": schema, "schema_version": latest_version(schema), ENTRY_ATTR: entry}

    write_store(storage, relative, write_groups, overwrite=overwrite, message=f"{schema}{' (overwrite)' if overwrite else ''}")
    return entry


def read_table(storage: LakeStorage, relative: str, schema: str) -> xr.Dataset:
    """Open and load a small table store, validated against its stored schema version."""
    root = require_complete(storage, relative)
    ds = plain_strings(open_dataset_group(storage.store(), relative).load())
    check_dataset(ds, schema, version=int(root.attrs.get("schema_version", 1)), where=storage.display(relative))
    return ds
