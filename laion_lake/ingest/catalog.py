"""After subjects are in the lake: list them in the manifest, rebuild the stimulus table, write splits."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from laion_lake.lake import Lake, create_lake, read_published_splits
from laion_lake.lake.naming import stimulus_table
from laion_lake.lake.subjects import SubjectStore, subject_path
from laion_lake.lake.zarr_io import is_complete
from laion_lake.published_splits import published_split_documents
from storage_schemas.variables import with_variable_attrs


def observed_repeats(lake: Lake, subject: str) -> dict[str, int]:
    """Presentations of each stimulus to ``subject``, counted from its stored trials."""
    ids, counts = np.unique(SubjectStore(lake.storage, subject).trials["stimulus_id"].values, return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))


def restrict_to_lake(documents: list[dict[str, Any]], stimulus_ids: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The split documents with their ids limited to the lake's stimuli, and notes on what was left out.

    The full release holds every id of the published splits, so nothing is left out; a partial
    release (some subjects, a test miniature) keeps the part of each split it has. A split left
    with no train or no test id is not written (and noted).
    """
    known = set(stimulus_ids)
    kept, notes = [], []
    named: dict[str, set[str]] = {}
    for document in documents:
        variants, empty = [], False
        for variant in document["variants"]:
            train = [i for i in map(str, variant["train_ids"]) if i in known]
            test = [i for i in map(str, variant["test_ids"]) if i in known]
            named.setdefault(document["lake_pool"], set()).update(map(str, variant["train_ids"] + variant["test_ids"]))
            empty |= not train or not test
            variants.append({**variant, "train_ids": train, "test_ids": test})
        if empty:
            notes.append(f"split {document['lake_pool']}/{document['name']}: no train or no test stimulus in this lake, not written")
            continue
        kept.append({**document, "variants": variants, "n_train": len(variants[0]["train_ids"]), "n_test": len(variants[0]["test_ids"])})
    for pool, ids in sorted(named.items()):
        absent = len(ids - known)
        if absent:
            notes.append(f"splits of pool {pool}: {absent:,} of their {len(ids):,} stimuli are not in this lake and were left out (a partial release)")
    return kept, notes


def finalize_ingest(
    lake_url: str,
    storage_options: dict[str, Any] | None = None,
    subjects: Iterable[str] | None = None,
    splits_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Make ingested subjects part of the lake, then rebuild the tables that span subjects.

    1. List every complete subject store (``subjects``, default all under ``subjects/``) in the
       manifest; a flow that ingested subjects in parallel with ``register=False`` calls this once.
    2. Rebuild the stimulus table from every listed subject's trials (counts from the data).
    3. Write the published splits of the pools the lake can hold (``shared`` and each listed
       subject): the ones shipped with laion-lake (:mod:`laion_lake.published_splits`), or those
       under ``splits_dir`` (``<pool>/<name>.json``); ids the lake does not hold are left out
       (:func:`restrict_to_lake`).

    Returns
    -------
    dict with ``subjects``, ``n_stimuli``, ``pools``, ``notes`` (what the splits left out).
    """
    lake = create_lake(lake_url, storage_options)
    candidates = list(subjects) if subjects is not None else lake.storage.listdir("subjects")
    for subject in candidates:
        if is_complete(lake.storage, subject_path(subject)) and subject not in lake.subjects:
            lake.register_subject(subject)
    if not lake.subjects:
        return {"subjects": [], "n_stimuli": 0, "pools": [], "notes": []}
    repeats = {subject: observed_repeats(lake, subject) for subject in lake.subjects}
    ids = sorted(set().union(*repeats.values()))
    lake.write_stimuli(with_variable_attrs(stimulus_table(ids, lake.subjects, n_repeats=repeats)), overwrite=True)
    wanted = {"shared", *lake.subjects}
    published = read_published_splits(splits_dir) if splits_dir is not None else published_split_documents()
    documents, notes = restrict_to_lake([d for d in published if d["lake_pool"] in wanted], ids)
    pools: list[str] = []
    if documents:
        lake.write_splits(documents, overwrite=True)
        pools = lake.pools
    return {"subjects": lake.subjects, "n_stimuli": len(ids), "pools": pools, "notes": notes}
