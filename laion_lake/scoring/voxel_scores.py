"""Per-voxel results of a regression score, as one DataArray (subject, neuroid) with the voxels' coordinates.

Two quantities: ``"r"`` (Pearson r on the test images) and ``"r2_nsd"`` (NC-normalised r^2 under the
``nsd`` convention, ``r_v**2 / (NC_v / 100)``, NC for the test design as averaged; that NC is the
``nc_nsd`` coordinate).

Subjects have different voxels, so ``neuroid`` is a position within each subject's voxel list
(padded with NaN up to the largest subject) and every voxel coordinate (``neuroid_id``, ``x``,
``y``, ``z``, ``roi``, ``region``, ``nc_*``, ``ncsnr``) is 2-D (subject, neuroid). For a k-fold
benchmark a voxel's value is its mean over folds. :func:`laion_lake.scoring.score` attaches both as
``score.attrs["voxel_r"]`` and ``score.attrs["voxel_r2_nsd"]``; the records path stores them as
chunked arrays next to each unit record (never in JSON), read back lazily by ``lake.voxel_scores``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from laion_lake.benchmarks.vocabulary import REGRESSION_METRICS
from laion_lake.scoring.units import CellResult

# quantity -> (CellResult field, DataArray name / score attr, description)
QUANTITIES = {
    "r": ("voxel_r", "voxel_r", "per-voxel Pearson r on the test images"),
    "r2_nsd": ("voxel_r2_nsd", "voxel_r2_nsd", "per-voxel NC-normalised r^2, r**2 / (NC/100), nsd convention, NC for the test design (coordinate nc_nsd)"),
}
VOXEL_ATTR = "voxel_r"
# neuroid coordinates carried along when the subject store has them
VOXEL_COORDS = ("x", "y", "z", "roi", "region", "nc_4rep", "nc_12rep", "nc_allrep", "ncsnr", "voxel_index_in_brain_mask")


def _check_quantity(quantity: str) -> str:
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity {quantity!r} is not one of {', '.join(map(repr, QUANTITIES))}")
    return QUANTITIES[quantity][0]


def _subject_values(results: Sequence[CellResult], field_name: str) -> tuple[np.ndarray, Any, Any]:
    """(neuroid ids, value, nc_nsd) of one subject: the mean over its folds, in the first fold's voxel order.

    Values stay as they come (numpy, or dask when read from the lake): nothing is computed here.
    """
    first = results[0]
    ids = np.asarray(first.neuroid).astype(str)
    values, ncs = [], []
    for result in results:
        order = pd.Index(np.asarray(result.neuroid).astype(str)).get_indexer(ids)
        if (order < 0).any():
            raise ValueError(f"{result.benchmark_key}: folds of {result.subject} scored different voxels")
        same = len(order) == len(ids) and bool((order == np.arange(len(ids))).all())
        value = da.asarray(getattr(result, field_name)).astype(np.float64)
        values.append(value if same else value[order])
        nc = result.voxel_nc_nsd
        if nc is not None:
            nc = da.asarray(nc).astype(np.float64)
            ncs.append(nc if same else nc[order])
    mean = values[0] if len(values) == 1 else da.stack(values).mean(axis=0)
    nc_mean = None if len(ncs) != len(values) else (ncs[0] if len(ncs) == 1 else da.stack(ncs).mean(axis=0))
    return ids, mean, nc_mean


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


def _padded(rows: Sequence[Any], width: int) -> Any:
    """(subjects, width) dask array of 1-D rows, NaN-padded on the right."""
    padded = [row if row.shape[0] == width else da.concatenate([row, da.full(width - row.shape[0], np.nan)]) for row in rows]
    return da.stack(padded)


def voxel_scores(
    lake: Any, results: Sequence[CellResult], cache: dict[str, pd.DataFrame] | None = None, quantity: str = "r", lazy: bool = False
) -> xr.DataArray | None:
    """Per-voxel results of a score's regression cells, (subject, neuroid), NaN-padded; None without any.

    Parameters
    ----------
    lake : Lake
        Read for the voxels' coordinates (the subject stores' neuroid coordinates; lazy, no betas).
    results : sequence of CellResult
        One benchmark's cell results, with ``neuroid`` and the quantity's array filled (numpy, or
        dask when read from the lake).
    cache : dict, optional
        Subject -> neuroid coordinates, shared by the calls of one scoring run (read each subject once).
    quantity : {"r", "r2_nsd"}
        Per-voxel Pearson r, or NC-normalised r^2 under the ``nsd`` convention.
    lazy : bool
        Keep the values (and the ``nc_nsd`` coordinate) dask-backed; else computed to numpy.

    Returns
    -------
    DataArray of shape (n_subjects, max voxels), or None
        Coordinates: subject, neuroid (position), neuroid_id, the voxel coordinates the subject
        stores hold (x, y, z, roi, region, nc_*, ncsnr), nc_nsd (NC used for r2_nsd) and n_voxels.
    """
    field_name = _check_quantity(quantity)
    by_subject: dict[str, list[CellResult]] = defaultdict(list)
    for result in results:
        if getattr(result, field_name) is not None and result.neuroid is not None:
            by_subject[result.subject].append(result)
    if not by_subject:
        return None
    subjects = sorted(by_subject)
    per_subject = {s: _subject_values(sorted(by_subject[s], key=lambda r: r.fold), field_name) for s in subjects}
    width = max(len(ids) for ids, _, _ in per_subject.values())
    ids_2d = np.full((len(subjects), width), "", dtype=object)
    coords: dict[str, np.ndarray] = {}
    for i, subject in enumerate(subjects):
        ids = per_subject[subject][0]
        ids_2d[i, : len(ids)] = ids
        table = _neuroid_table(lake, subject, cache)
        position = table.index.get_indexer(ids)
        for name in table.columns:
            column = table[name].to_numpy()[position]
            if name not in coords:
                fill: Any = "" if column.dtype.kind in "OUS" else np.nan
                coords[name] = np.full((len(subjects), width), fill, dtype=object if column.dtype.kind in "OUS" else np.float64)
            coords[name][i, : len(ids)] = column
    values = _padded([per_subject[s][1] for s in subjects], width)
    extra: dict[str, Any] = {}
    if all(per_subject[s][2] is not None for s in subjects):
        nc_nsd = _padded([per_subject[s][2] for s in subjects], width)
        extra["nc_nsd"] = (("subject", "neuroid"), nc_nsd if lazy else nc_nsd.compute(scheduler="threads"))
    first = results[0]
    _, name, description = QUANTITIES[quantity]
    return xr.DataArray(
        values if lazy else values.compute(scheduler="threads"),
        dims=("subject", "neuroid"),
        coords={
            "subject": subjects,
            "neuroid": np.arange(width),
            "neuroid_id": (("subject", "neuroid"), ids_2d.astype(str)),
            **{name: (("subject", "neuroid"), column.astype(str) if column.dtype == object else column) for name, column in coords.items()},
            **extra,
            "n_voxels": ("subject", np.array([len(per_subject[s][0]) for s in subjects])),
        },
        name=name,
        attrs={"benchmark_key": first.benchmark_key, "region": first.region, "metric": first.metric, "quantity": quantity,
               "description": f"{description} (mean over folds); NaN pads subjects with fewer voxels"},
    )


def stored_voxel_scores(lake: Any, model: str, layer: str, benchmark: Any, quantity: str = "r") -> xr.DataArray:
    """The stored per-voxel results of a feature set's regression cells on one benchmark, (subject, neuroid).

    Read from the unit records' arrays (written with each record): lazy (dask-backed values and
    ``nc_nsd``), with each voxel's coordinates (x, y, z, roi, region, nc_*) loaded; see
    :mod:`laion_lake.scoring.voxel_scores`. ``quantity`` is ``"r"`` or ``"r2_nsd"``.

    Raises
    ------
    FileNotFoundError
        A unit of the benchmark has no record yet (run ``laion-lake score`` first), its record is
        stale (an input changed since), or it was written before these per-voxel arrays were
        stored (score it again with ``--force``).
    ValueError
        Not a regression benchmark (RDM and CKA cells have no per-voxel values), or an unknown quantity.
    """
    from laion_lake.benchmarks import BenchmarkSpec, load_benchmark
    from laion_lake.scoring.plan import Aggregate, FeatureSet, group_by_aggregate, plan_work
    from laion_lake.scoring.records import cell_results_for, read_unit_record, unit_inputs  # records sit above

    field_name = _check_quantity(quantity)
    spec = benchmark if isinstance(benchmark, BenchmarkSpec) else load_benchmark(benchmark)
    if spec.metric not in REGRESSION_METRICS:
        raise ValueError(f"{spec.identifier} has no per-voxel results: only regression benchmarks ({', '.join(REGRESSION_METRICS)}) do, not {spec.metric}")
    pairs = group_by_aggregate(plan_work([FeatureSet(model, layer)], [spec]))[Aggregate(model, layer, spec.key)]
    for unit in dict.fromkeys(unit for unit, _ in pairs):
        record = read_unit_record(lake, unit)
        if record is not None and record.get("inputs") != unit_inputs(lake, unit):
            raise FileNotFoundError(f"the score record of unit {unit.key} is stale (its inputs changed since); score it again")
    results = cell_results_for(lake, pairs, voxels=True)
    missing = [r.unit_key for r in results if getattr(r, field_name) is None]
    if missing:
        raise FileNotFoundError(
            f"no per-voxel {quantity} stored for {model}/{layer} on {spec.identifier} (unit {missing[0]}); "
            "score it again with --force to store it"
        )
    scores = voxel_scores(lake, results, quantity=quantity, lazy=True)
    if scores is None:
        raise FileNotFoundError(f"{spec.identifier} has no per-voxel results")
    return scores


__all__ = ["QUANTITIES", "VOXEL_ATTR", "stored_voxel_scores", "voxel_scores"]
