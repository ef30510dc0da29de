"""Per-voxel results of a regression score, as one DataArray (subject, neuroid) with the voxels' coordinates.

Subjects have different voxels, so ``neuroid`` is a position within each subject's voxel list
(padded with NaN up to the largest subject) and every voxel coordinate (``neuroid_id``, ``x``,
``y``, ``z``, ``roi``, ``region``, ``nc_*``, ``ncsnr``) is 2-D (subject, neuroid). For a k-fold
benchmark a voxel's r is its mean over folds. In memory only: :func:`laion_lake.scoring.score`
attaches it as ``score.attrs["voxel_r"]``; it is never written into a JSON record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from laion_lake.scoring.units import CellResult

VOXEL_ATTR = "voxel_r"
# neuroid coordinates carried along when the subject store has them
VOXEL_COORDS = ("x", "y", "z", "roi", "region", "nc_4rep", "nc_12rep", "nc_allrep", "ncsnr", "voxel_index_in_brain_mask")


def _subject_voxel_r(results: Sequence[CellResult]) -> tuple[np.ndarray, np.ndarray]:
    """(neuroid ids, r) of one subject: the mean over its folds, in the first fold's voxel order."""
    first = results[0]
    ids = np.asarray(first.neuroid).astype(str)
    stacked = []
    for result in results:
        order = pd.Index(np.asarray(result.neuroid).astype(str)).get_indexer(ids)
        if (order < 0).any():
            raise ValueError(f"{result.benchmark_key}: folds of {result.subject} scored different voxels")
        stacked.append(np.asarray(result.voxel_r, dtype=np.float64)[order])
    return ids, np.mean(stacked, axis=0)


def _neuroid_table(lake: Any, subject: str, cache: dict[str, pd.DataFrame] | None) -> pd.DataFrame:
    """A subject's neuroid coordinates (index: neuroid_id), read once per ``cache``."""
    if cache is not None and subject in cache:
        return cache[subject]
    assembly = lake.subject(subject)
    table = pd.DataFrame({name: np.asarray(assembly[name].values) for name in VOXEL_COORDS if name in assembly.coords},
                         index=pd.Index(assembly["neuroid_id"].values.astype(str)))
    if cache is not None:
        cache[subject] = table
    return table


def voxel_scores(lake: Any, results: Sequence[CellResult], cache: dict[str, pd.DataFrame] | None = None) -> xr.DataArray | None:
    """Per-voxel Pearson r of a score's regression cells, (subject, neuroid), NaN-padded; None without any.

    Parameters
    ----------
    lake : Lake
        Read for the voxels' coordinates (the subject stores' neuroid coordinates; lazy, no betas).
    results : sequence of CellResult
        One benchmark's cell results, with ``voxel_r`` and ``neuroid`` filled.
    cache : dict, optional
        Subject -> neuroid coordinates, shared by the calls of one scoring run (read each subject once).
    """
    by_subject: dict[str, list[CellResult]] = defaultdict(list)
    for result in results:
        if result.voxel_r is not None and result.neuroid is not None:
            by_subject[result.subject].append(result)
    if not by_subject:
        return None
    subjects = sorted(by_subject)
    per_subject = {s: _subject_voxel_r(sorted(by_subject[s], key=lambda r: r.fold)) for s in subjects}
    width = max(len(ids) for ids, _ in per_subject.values())
    values = np.full((len(subjects), width), np.nan)
    ids_2d = np.full((len(subjects), width), "", dtype=object)
    coords: dict[str, np.ndarray] = {}
    for i, subject in enumerate(subjects):
        ids, r = per_subject[subject]
        values[i, : len(r)] = r
        ids_2d[i, : len(ids)] = ids
        table = _neuroid_table(lake, subject, cache)
        position = table.index.get_indexer(ids)
        for name in table.columns:
            column = table[name].to_numpy()[position]
            if name not in coords:
                fill: Any = "" if column.dtype.kind in "OUS" else np.nan
                coords[name] = np.full((len(subjects), width), fill, dtype=object if column.dtype.kind in "OUS" else np.float64)
            coords[name][i, : len(ids)] = column
    first = results[0]
    return xr.DataArray(
        values,
        dims=("subject", "neuroid"),
        coords={
            "subject": subjects,
            "neuroid": np.arange(width),
            "neuroid_id": (("subject", "neuroid"), ids_2d.astype(str)),
            **{name: (("subject", "neuroid"), column.astype(str) if column.dtype == object else column) for name, column in coords.items()},
            "n_voxels": ("subject", np.array([len(per_subject[s][0]) for s in subjects])),
        },
        name=VOXEL_ATTR,
        attrs={"benchmark_key": first.benchmark_key, "region": first.region, "metric": first.metric,
               "description": "per-voxel Pearson r on the test images (mean over folds); NaN pads subjects with fewer voxels"},
    )


__all__ = ["VOXEL_ATTR", "voxel_scores"]
