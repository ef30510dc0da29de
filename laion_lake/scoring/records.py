"""Score records in the lake's repository (group ``results/``): they only grow, one commit each.

Layout (one group per record directly under a fixed parent; the key's ``/`` become ``~``)::

    results/units/<model>~<layer>~<subject>~<pool>~<split>     attrs["record"]: one unit's cell results
    results/aggregates/<model>~<layer>~<benchmark key>         attrs["record"]: one aggregated Score

Every record names its inputs (:func:`unit_inputs`, :func:`aggregate_inputs`: the content
checksums of the feature set, subject assemblies, splits and stimulus table it was computed from).
The skip check and :func:`load_scores` use only records whose inputs equal what the lake holds now;
a replaced input makes its records stale (kept, never used, counted). A unit record is merged in
its commit's session: cells of other benchmarks already recorded on the same inputs are kept,
with or without ``force``, and a writer that meets a concurrent one redoes the merge on the new
head, so no interleaving drops a cell.
"""

from __future__ import annotations
import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import xarray as xr

from laion_lake.benchmarks import BenchmarkSpec
from laion_lake.scoring.aggregate import aggregate_score
from laion_lake.scoring.plan import Aggregate, Cell, UnitWork, WorkUnit, escape_key_component
from laion_lake.scoring.record_format import (  # re-exported: the record layout and JSON form moved to record_format
    _WHOLE_TEST_SET,
    AGGREGATES,
    RECORD_ATTR,
    UNITS,
    VOXEL_ARRAYS,
    VOXELS,
    _cell_key,
    _finite_or_none,
    _group_name,
    _json_ready,
    _nan_if_none,
    _now,
    _read_record,
    _table_inputs,
    _write_cell_voxels,
    _write_record,
    aggregate_inputs,
    aggregate_record_path,
    cell_voxels_path,
    read_cell_voxels,
    read_unit_record,
    record_to_score,
    score_to_record,
    unit_inputs,
    unit_record_path,
)
from laion_lake.scoring.units import CellResult, run_unit
from storage_schemas import check_record, latest_version


def _cells_covered(record: Mapping[str, Any], cells: Iterable[Cell]) -> bool:
    stored = {(c["benchmark_key"], c["region"], c["metric"], c["test_restriction"], c["fold"]) for c in record["results"]}
    return all((c.benchmark_key, c.region, c.metric, c.test_restriction, c.fold) in stored for c in cells)


def compute_unit_record(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec], force: bool = False) -> str:
    """Compute one unit and store its record, unless a record on the same inputs covering its cells exists.

    ``force`` recomputes the unit's cells even so; cells of other benchmarks in the record are
    kept either way (records only grow).

    Returns
    -------
    str
        ``"skipped"`` (a record with the same inputs covering every cell exists) or ``"computed"``.
    """
    inputs = unit_inputs(lake, work.unit)
    existing = read_unit_record(lake, work.unit)
    if not force and existing is not None and existing.get("inputs") == inputs and _cells_covered(existing, work.cells):
        return "skipped"
    cell_results = run_unit(lake, work, specs)
    results = [_json_ready(r.to_dict()) for r in cell_results]
    relative = unit_record_path(work.unit)

    def change(session: Any) -> None:
        # merge on the head this commit lands on: cells another writer recorded meanwhile are kept
        current = _read_record(session, relative)
        new = {_cell_key(r) for r in results}
        kept = []
        if current is not None and current.get("inputs") == inputs:
            kept = [c for c in current["results"] if _cell_key(c) not in new]
        _write_record(session, relative, {
            "key": work.unit.key,
            "kind": "unit",
            "schema": "score_record",
            "schema_version": latest_version("score_record"),
            "unit": {"model": work.unit.model, "layer": work.unit.layer, "subject": work.unit.subject, "pool": work.unit.pool, "split": work.unit.split_name},
            "inputs": inputs,
            "results": kept + results,
            "created": _now(),
        })
        for result in cell_results:
            if result.voxel_r is not None and result.neuroid is not None:
                _write_cell_voxels(session, work.unit, result)

    batch = _batches.get(lake.url)
    if batch is not None:
        batch.add(f"unit record {work.unit.key}", change)  # committed with its batch (see batched_records)
    else:
        lake.storage.write(f"unit record {work.unit.key}", change)
    return "computed"


# lake URL -> the batch its unit records go to in this process (batched_records)
_batches: dict[str, Any] = {}
_batches_lock = threading.Lock()


@contextlib.contextmanager
def batched_records(lake: Any, every: int | None = None, seconds: float | None = None) -> Iterator[Any]:
    """Inside the block, unit records of ``lake`` computed in this process (any thread) are
    committed in batches: every ``every`` units or once the oldest waited ``seconds`` (defaults
    :data:`laion_lake.lake.batch.DEFAULT_EVERY` / ``DEFAULT_SECONDS``), and the rest at the end
    of the block, also when it raises. Still resumable: a killed run loses at most its last
    batch (those units are computed again), never a committed one; each record is merged on the
    head it lands on, so no other benchmark's cells are dropped. Aggregates written in this
    process commit the batch first. Records computed in other processes are not batched.
    """
    from laion_lake.lake.batch import DEFAULT_EVERY, DEFAULT_SECONDS, BatchedWrites

    batch = BatchedWrites(lake.storage, every or DEFAULT_EVERY, DEFAULT_SECONDS if seconds is None else seconds)
    with _batches_lock:
        if lake.url in _batches:
            raise RuntimeError(f"unit records of {lake.url} are already batched in this process")
        _batches[lake.url] = batch
    try:
        yield batch
    finally:
        with _batches_lock:
            del _batches[lake.url]
        batch.flush()


def cell_results_for(lake: Any, pairs: Sequence[tuple[WorkUnit, Cell]], voxels: bool = False) -> list[CellResult]:
    """The stored cell results that feed one aggregate, in (fold, subject) order (with their
    per-voxel r when ``voxels``)."""
    results, records = [], {}
    for unit, cell in pairs:
        if unit not in records:
            record = read_unit_record(lake, unit)
            if record is None:
                raise FileNotFoundError(f"no score record for unit {unit.key} in {lake.url}; run its unit first")
            records[unit] = record
        match = [
            r for r in records[unit]["results"]
            if (r["benchmark_key"], r["region"], r["metric"], r["test_restriction"], r["fold"])
            == (cell.benchmark_key, cell.region, cell.metric, cell.test_restriction, cell.fold)
        ]
        if not match:
            raise FileNotFoundError(f"unit record {unit.key} lacks cell {cell}; run the unit again")
        fields = {k: (_nan_if_none(v) if k in ("raw", "ceiling", "ceiled") else v) for k, v in match[-1].items()}
        stored = read_cell_voxels(lake, unit, match[-1]) if voxels else None
        if stored is not None:
            fields.update(stored)
        results.append(CellResult(**fields))
    return results


def write_aggregate_record(lake: Any, aggregate: Aggregate, spec: BenchmarkSpec, pairs: Sequence[tuple[WorkUnit, Cell]]) -> xr.DataArray:
    """Aggregate the stored unit records of one (feature set, benchmark) and store the Score.

    The record names its inputs (:func:`aggregate_inputs`) and the unit records it came from.
    """
    if lake.url in _batches:
        _batches[lake.url].flush()  # this process's queued unit records first
    lake.refresh()  # the units were recorded by other writers after this lake was opened
    score = aggregate_score(spec, aggregate.model, aggregate.layer, cell_results_for(lake, pairs), lake=lake)
    record = {
        **score_to_record(score),
        "benchmark_spec": _json_ready(spec.to_dict()),
        "inputs": aggregate_inputs(lake, aggregate.model, aggregate.layer, [unit.subject for unit, _ in pairs]),
        "units": sorted({unit.key for unit, _ in pairs}),
    }
    relative = aggregate_record_path(aggregate)
    check_record(record, "score_record", where=lake.storage.display(relative))
    lake.storage.write(f"aggregate record {aggregate.key}", lambda session: _write_record(session, relative, record))
    return score


class Scores(list):
    """A list of Score DataArrays that also tells how many stale records were left out (``stale``)."""

    stale: int = 0


def _is_current(lake: Any, record: Mapping[str, Any]) -> bool:
    inputs = record.get("inputs")
    if inputs is None:
        return False  # a record that does not name its inputs cannot be trusted to be current
    return inputs == aggregate_inputs(lake, record["model"], record["layer"], inputs.get("subjects", {}))


def load_scores(lake: Any, model: str | None = None, layer: str | None = None, benchmark: str | None = None) -> Scores:
    """The aggregated Scores stored in the lake whose inputs equal what it holds now, optionally filtered.

    Sorted by (model, layer, benchmark). Records computed from inputs since replaced are left out
    and counted in the result's ``stale`` attribute. A lake on a branch is read at the branch's
    newest head (records are written by other processes meanwhile); a lake opened at a tag or
    snapshot is read there.
    """
    if not lake.storage.read_only:
        lake = type(lake)(lake.url, lake.storage_options, branch=lake.storage.pinned["branch"])
    scores = Scores()
    group = lake.storage.group(AGGREGATES)
    if group is None:
        return scores
    for _, child in sorted(group.groups(), key=lambda item: item[0]):
        if RECORD_ATTR not in child.attrs:
            continue
        record = dict(child.attrs[RECORD_ATTR])
        if model not in (None, record["model"]) or layer not in (None, record["layer"]):
            continue
        if benchmark not in (None, record["benchmark"], record.get("benchmark_key")):
            continue
        if not _is_current(lake, record):
            scores.stale += 1
            continue
        scores.append(record_to_score(record))
    scores.sort(key=lambda s: (s.attrs["model"], s.attrs["layer"], s.attrs["benchmark_key"]))
    return scores


def unit_records(lake: Any, model: str | None = None, layer: str | None = None) -> list[dict[str, Any]]:
    """Every unit record in the snapshot the lake reads, optionally of one model (and layer), by key."""
    group = lake.storage.group(UNITS)
    records = [] if group is None else [dict(child.attrs[RECORD_ATTR]) for _, child in group.groups() if RECORD_ATTR in child.attrs]
    records = [r for r in records if model in (None, r["unit"]["model"]) and layer in (None, r["unit"]["layer"])]
    return sorted(records, key=lambda r: r["key"])


__all__ = [
    "batched_records",
    "cell_voxels_path",
    "compute_unit_record",
    "read_cell_voxels",
    "escape_key_component",
    "load_scores",
    "read_unit_record",
    "record_to_score",
    "score_to_record",
    "unit_records",
    "write_aggregate_record",
]
