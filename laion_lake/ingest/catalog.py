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


def observed_repeats(lake: Lake, subject: str) -> dict[str, int]:
    """Presentations of each stimulus to ``subject``, counted from its stored trials."""
    ids, counts = np.unique(SubjectStore(lake.storage, subject).trials["stimulus_id"].values, return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))


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
    3. If ``splits_dir`` is given, write the published splits of the pools the lake can hold:
       ``shared`` and each listed subject.

    Returns
    -------
    dict with ``subjects``, ``n_stimuli``, ``pools``.
    """
    lake = create_lake(lake_url, storage_options)
    candidates = list(subjects) if subjects is not None else [
        name.removesuffix(".zarr") for name in lake.storage.listdir("subjects") if name.endswith(".zarr")
    ]
    for subject in candidates:
        if is_complete(lake.storage, subject_path(subject)) and subject not in lake.subjects:
            lake.register_subject(subject)
    if not lake.subjects:
        return {"subjects": [], "n_stimuli": 0, "pools": []}
    repeats = {subject: observed_repeats(lake, subject) for subject in lake.subjects}
    ids = sorted(set().union(*repeats.values()))
    lake.write_stimuli(stimulus_table(ids, lake.subjects, n_repeats=repeats), overwrite=True)
    pools: list[str] = []
    if splits_dir is not None:
        wanted = {"shared", *lake.subjects}
        documents = [d for d in read_published_splits(splits_dir) if d["lake_pool"] in wanted]
        if documents:
            lake.write_splits(documents, overwrite=True)
            pools = lake.pools
    return {"subjects": lake.subjects, "n_stimuli": len(ids), "pools": pools}
