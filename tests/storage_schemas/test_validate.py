"""The validator reports every problem with where it is."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from storage_schemas import SchemaError, check_record, latest_version, load_schema, validate_dataset
from tests.lake import handmade


def test_every_schema_document_loads_with_its_version():
    for name in ("subject_assembly", "stimuli", "splits", "features", "score_record", "lake_manifest"):
        schema = load_schema(name)
        assert schema["schema"] == name and schema["version"] == latest_version(name) == 1


def test_valid_assembly_has_no_problems():
    assert validate_dataset(handmade.assembly("sub-01"), "subject_assembly") == []


def test_all_problems_reported_at_once():
    ds = handmade.assembly("sub-01").drop_vars("roi")
    ds = ds.assign_coords(x=ds["x"].astype(np.int64), region=("neuroid", np.array(["V1", "IT"] * 7 + ["V9"])))
    ds["betas"] = ds["betas"].astype(np.float64)
    problems = validate_dataset(ds, "subject_assembly", where="mem://s.zarr")
    text = "\n".join(map(str, problems))
    assert "mem://s.zarr [roi]: missing coordinate 'roi'" in text
    assert "[x]: dtype int64, expected int16" in text
    assert "[betas]: dtype float64, expected float32" in text
    assert "[region]: value(s) 'V9' not in" in text
    assert "neuroid is not grouped by region" in text
    assert len(problems) == 5


def test_record_validation():
    with pytest.raises(SchemaError, match=r"\[value\]: has type str, expected number"):
        check_record({"key": "k", "kind": "unit", "model": "m", "layer": "l", "benchmark": "b", "benchmark_version": 1,
                      "convention": "brainscore", "value": "high", "raw": 0.1, "ceiling": 0.8, "created": "now"}, "score_record")
    with pytest.raises(SchemaError, match=r"\[convention\]: value 'other' not in"):
        check_record({"key": "k", "kind": "unit", "model": "m", "layer": "l", "benchmark": "b", "benchmark_version": 1,
                      "convention": "other", "value": None, "raw": None, "ceiling": None, "created": "now"}, "score_record")
