"""Score records in the lake (``scores/``): append-only, idempotent per key, never half-written.

Layout::

    scores/units/<model>/<layer>/<subject>/<pool>/<split>.json     one work unit's cell results
    scores/aggregates/<model>/<layer>/<benchmark key>.json         one aggregated Score

Each record is one JSON document written whole (a local rename or one S3 PUT), so a reader sees
a complete record or none. A unit record carries the checksums of the inputs it was computed
from (feature set, subject assembly, splits); when an input is replaced, the record no longer
matches and the unit is computed again instead of being skipped.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.benchmarks import BenchmarkSpec
from laion_lake.scoring.aggregate import aggregate_score
from laion_lake.scoring.plan import Aggregate, Cell, UnitWork, WorkUnit, escape_key_component
from laion_lake.scoring.units import CellResult, run_unit
from storage_schemas import check_record, latest_version

UNITS, AGGREGATES = "scores/units", "scores/aggregates"


def unit_record_path(unit: WorkUnit) -> str:
    return f"{UNITS}/{unit.key}.json"


def aggregate_record_path(aggregate: Aggregate) -> str:
    return f"{AGGREGATES}/{aggregate.key}.json"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def unit_inputs(lake: Any, unit: WorkUnit) -> dict[str, Any]:
    """Checksums of what a unit reads, from the manifest: a changed input invalidates its record."""
    manifest = lake.manifest
    return {
        "features": manifest["features"][f"{unit.model}/{unit.layer}"].get("checksum"),
        "subject": manifest["subjects"][unit.subject].get("checksum"),
        "splits": manifest.get("splits"),
        "stimuli": manifest.get("stimuli"),
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
    """The stored record of a unit, or None when there is none."""
    path = unit_record_path(unit)
    return lake.storage.read_json(path) if lake.storage.exists(path) else None


def _cells_covered(record: Mapping[str, Any], cells: Iterable[Cell]) -> bool:
    stored = {(c["benchmark_key"], c["region"], c["metric"], c["test_restriction"], c["fold"]) for c in record["results"]}
    return all((c.benchmark_key, c.region, c.metric, c.test_restriction, c.fold) in stored for c in cells)


def compute_unit_record(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec], force: bool = False) -> str:
    """Compute one unit and store its record, unless a valid record covering its cells exists.

    Returns
    -------
    str
        ``"skipped"`` (a record with the same inputs covering every cell exists) or ``"computed"``.
    """
    inputs = unit_inputs(lake, work.unit)
    existing = None if force else read_unit_record(lake, work.unit)
    if existing is not None and existing.get("inputs") == inputs and _cells_covered(existing, work.cells):
        return "skipped"
    results = run_unit(lake, work, specs)
    # keep cells of other benchmarks computed earlier on the same inputs: records only grow
    kept = []
    if existing is not None and existing.get("inputs") == inputs:
        new = {(r.benchmark_key, r.region, r.metric, r.test_restriction, r.fold) for r in results}
        kept = [c for c in existing["results"] if (c["benchmark_key"], c["region"], c["metric"], c["test_restriction"], c["fold"]) not in new]
    record = {
        "key": work.unit.key,
        "kind": "unit",
        "schema": "score_record",
        "schema_version": latest_version("score_record"),
        "unit": {"model": work.unit.model, "layer": work.unit.layer, "subject": work.unit.subject, "pool": work.unit.pool, "split": work.unit.split_name},
        "inputs": inputs,
        "results": kept + [_json_ready(r.to_dict()) for r in results],
        "created": _now(),
    }
    lake.storage.write_json(unit_record_path(work.unit), record)
    return "computed"


def cell_results_for(lake: Any, pairs: Sequence[tuple[WorkUnit, Cell]]) -> list[CellResult]:
    """The stored cell results that feed one aggregate, in (fold, subject) order."""
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
        results.append(CellResult(**fields))
    return results


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
        **{k: v for k, v in attrs.items() if k not in ("model", "layer", "benchmark", "benchmark_version", "convention", "voxel_r")},
    }
    return _json_ready(record)


def record_to_score(record: Mapping[str, Any]) -> xr.DataArray:
    """Inverse of :func:`score_to_record` (NaN restored where JSON holds null)."""
    attrs = {k: v for k, v in record.items() if k not in ("value", "key", "kind", "created", "schema", "schema_version", "benchmark_spec")}
    for name in ("raw", "ceiling", "error"):
        attrs[name] = _nan_if_none(attrs.get(name))
    attrs["created"] = record.get("created")
    return xr.DataArray(_nan_if_none(record["value"]), name="score", attrs=attrs)


def write_aggregate_record(lake: Any, aggregate: Aggregate, spec: BenchmarkSpec, pairs: Sequence[tuple[WorkUnit, Cell]]) -> xr.DataArray:
    """Aggregate the stored unit records of one (feature set, benchmark) and store the Score."""
    score = aggregate_score(spec, aggregate.model, aggregate.layer, cell_results_for(lake, pairs), lake=lake)
    record = {**score_to_record(score), "benchmark_spec": _json_ready(spec.to_dict())}
    check_record(record, "score_record", where=lake.storage.display(aggregate_record_path(aggregate)))
    lake.storage.write_json(aggregate_record_path(aggregate), record)
    return score


def load_scores(lake: Any, model: str | None = None, layer: str | None = None, benchmark: str | None = None) -> list[xr.DataArray]:
    """Every aggregated Score stored in the lake, optionally filtered; sorted by (model, layer, benchmark)."""
    fs = lake.storage.fs
    root = lake.storage.path(AGGREGATES)
    if not fs.exists(root):
        return []
    scores = []
    for path in sorted(fs.find(root)):
        if not path.endswith(".json"):
            continue
        relative = f"{AGGREGATES}/{path[len(root) + 1:]}"
        record = lake.storage.read_json(relative)
        if model not in (None, record["model"]) or layer not in (None, record["layer"]):
            continue
        if benchmark not in (None, record["benchmark"], record.get("benchmark_key")):
            continue
        scores.append(record_to_score(record))
    return sorted(scores, key=lambda s: (s.attrs["model"], s.attrs["layer"], s.attrs["benchmark_key"]))


__all__ = [
    "compute_unit_record",
    "escape_key_component",
    "load_scores",
    "read_unit_record",
    "record_to_score",
    "score_to_record",
    "write_aggregate_record",
]
