"""Validate xarray datasets and JSON records against the schema documents.

The validator reports *every* problem it finds, each with where it is (store path, variable,
coordinate) and the first offending ids, so that a user fixing a bad file sees the whole list at
once instead of one error per attempt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

SCHEMA_DIR = Path(__file__).parent
_FILE_PATTERN = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.json$")
# how many offending ids an error message shows before "... and N more"
_SHOWN_IDS = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store or record.

    Attributes
    ----------
    where : str
        Store path or file the problem is in.
    item : str
        Variable, coordinate, attribute or field at fault ("" for the whole store).
    message : str
        What is wrong, including the first offending ids where there are any.
    """

    where: str
    item: str
    message: str

    def __str__(self) -> str:
        item = f" [{self.item}]" if self.item else ""
        return f"{self.where}{item}: {self.message}"


class SchemaError(ValueError):
    """A store or record does not follow its schema. ``problems`` lists everything found."""

    def __init__(self, schema: str, version: int, problems: list[Problem]) -> None:
        # keep the constructor arguments in ``args`` so the error pickles across Dask workers
        super().__init__(schema, version, problems)
        self.schema = schema
        self.version = version
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [f"{len(self.problems)} problem(s) against schema {self.schema} v{self.version}:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _available() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in SCHEMA_DIR.glob("*.json"):
        match = _FILE_PATTERN.match(path.name)
        if match:
            found.setdefault(match["name"], []).append(int(match["version"]))
    return {name: sorted(versions) for name, versions in found.items()}


def latest_version(name: str) -> int:
    """Newest version of schema ``name``."""
    versions = _available().get(name)
    if not versions:
        raise KeyError(f"no schema named {name!r}; known: {sorted(_available())}")
    return versions[-1]


@lru_cache(maxsize=None)
def _load(name: str, version: int) -> str:
    path = SCHEMA_DIR / f"{name}.v{version}.json"
    if not path.exists():
        raise KeyError(f"no schema {name!r} version {version}; known versions: {_available().get(name, [])}")
    return path.read_text()


def load_schema(name: str, version: int | None = None) -> dict[str, Any]:
    """The schema document ``name`` at ``version`` (default: the newest), as a fresh dict."""
    return json.loads(_load(name, version if version is not None else latest_version(name)))


def _describe_ids(values: np.ndarray) -> str:
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:_SHOWN_IDS])
    more = len(values) - _SHOWN_IDS
    return shown + (f" ... and {more} more" if more > 0 else "")


def _dtype_ok(actual: np.dtype, expected: str) -> bool:
    if expected == "string":
        return actual.kind in "OUS" or str(actual).startswith("StringDType")
    if expected == "float":
        return actual.kind == "f"
    return actual == np.dtype(expected)


def _ids_along(ds: Any, dim: str, index: Mapping[str, str]) -> np.ndarray:
    """Values that name positions along ``dim`` in error messages (ids, or plain positions)."""
    name = index.get(dim)
    if name and name in ds.variables and ds[name].dims == (dim,):
        return np.asarray(ds[name].values)
    return np.arange(ds.sizes[dim])


def _check_values(ds: Any, name: str, rule: Mapping[str, Any], index: Mapping[str, str], where: str) -> list[Problem]:
    """Value-level checks on one small 1-D variable: finite, range, allowed, unique."""
    problems: list[Problem] = []
    var = ds[name]
    if var.ndim != 1:
        return problems
    values = np.asarray(var.values)
    ids = _ids_along(ds, var.dims[0], index)
    numeric = values.dtype.kind in "fiu"
    if rule.get("finite") and numeric:
        bad = ~np.isfinite(values)
        if bad.any():
            problems.append(Problem(where, name, f"{int(bad.sum())} non-finite value(s) at {var.dims[0]} {_describe_ids(ids[bad])}"))
    if numeric and "min" in rule:
        bad = values < rule["min"]
        if bad.any():
            problems.append(Problem(where, name, f"{int(bad.sum())} value(s) below {rule['min']} at {var.dims[0]} {_describe_ids(ids[bad])}"))
    if numeric and "max" in rule:
        bad = values > rule["max"]
        if bad.any():
            problems.append(Problem(where, name, f"{int(bad.sum())} value(s) above {rule['max']} at {var.dims[0]} {_describe_ids(ids[bad])}"))
    if "allowed" in rule:
        bad = ~np.isin(values.astype(str), rule["allowed"])
        if bad.any():
            problems.append(Problem(where, name, f"value(s) {_describe_ids(np.unique(values[bad]))} not in {rule['allowed']}"))
    if rule.get("unique"):
        uniques, counts = np.unique(values, return_counts=True)
        if (counts > 1).any():
            problems.append(Problem(where, name, f"duplicate value(s): {_describe_ids(uniques[counts > 1])}"))
    return problems


def validate_dataset(
    ds: Any,
    name: str,
    version: int | None = None,
    where: str = "<dataset>",
    check_values: bool = True,
) -> list[Problem]:
    """Every problem of ``ds`` against schema ``name``.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset (lazy is fine: only 1-D coordinates and small variables are loaded).
    name, version : str, int or None
        Schema and version; version None means the newest.
    where : str
        Store path used in the messages.
    check_values : bool
        Also check values (finite, ranges, allowed, unique) of 1-D variables; structure only when False.

    Returns
    -------
    list of Problem
        Empty when the dataset is valid.
    """
    schema = load_schema(name, version)
    index = schema.get("index", {})
    problems: list[Problem] = []
    for dim in schema["dims"]:
        if dim not in ds.dims:
            problems.append(Problem(where, dim, f"missing dimension {dim!r} (has {sorted(map(str, ds.dims))})"))
    for section in ("coords", "data_vars"):
        for var_name, rule in schema.get(section, {}).items():
            if var_name not in ds.variables:
                kind = "coordinate" if section == "coords" else "variable"
                problems.append(Problem(where, var_name, f"missing {kind} {var_name!r} with dims {tuple(rule['dims'])}"))
                continue
            var = ds[var_name]
            if tuple(var.dims) != tuple(rule["dims"]):
                problems.append(Problem(where, var_name, f"dims {tuple(var.dims)}, expected {tuple(rule['dims'])}"))
                continue
            if not _dtype_ok(var.dtype, rule["dtype"]):
                problems.append(Problem(where, var_name, f"dtype {var.dtype}, expected {rule['dtype']}"))
                continue
            if check_values:
                problems += _check_values(ds, var_name, rule, index, where)
    for attr, rule in schema.get("attrs", {}).items():
        problems += _check_field(ds.attrs, attr, rule, where, required=True)
    for dim, key in schema.get("sorted_by", {}).items():
        if check_values and key in ds.variables and ds[key].dims == (dim,):
            values = np.asarray(ds[key].values)
            # sorted by region means each region is one contiguous run
            starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
            if len(starts) != len(np.unique(values)):
                problems.append(Problem(where, key, f"{dim} is not grouped by {key}: each {key} must be one contiguous range"))
    return problems


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int, np.integer),
    "number": (int, float, np.integer, np.floating),
    "list": (list, tuple),
    "dict": (dict,),
}


def _check_field(record: Mapping[str, Any], name: str, rule: Mapping[str, Any], where: str, required: bool) -> list[Problem]:
    if name not in record:
        return [Problem(where, name, f"missing required field {name!r}")] if required else []
    value = record[name]
    if value is None:
        return [] if rule.get("nullable") else [Problem(where, name, "is null")]
    expected = _FIELD_TYPES[rule["type"]]
    if isinstance(value, bool) and rule["type"] in ("int", "number") or not isinstance(value, expected):
        return [Problem(where, name, f"has type {type(value).__name__}, expected {rule['type']}")]
    problems = []
    if "allowed" in rule and value not in rule["allowed"]:
        problems.append(Problem(where, name, f"value {value!r} not in {rule['allowed']}"))
    if "pattern" in rule and not re.match(rule["pattern"], value):
        problems.append(Problem(where, name, f"value {value!r} does not match {rule['pattern']}"))
    return problems


def validate_record(record: Mapping[str, Any], name: str, version: int | None = None, where: str = "<record>") -> list[Problem]:
    """Every problem of a JSON record against schema ``name`` (see :func:`validate_dataset`)."""
    schema = load_schema(name, version)
    problems: list[Problem] = []
    for field_name, rule in schema.get("fields", {}).items():
        problems += _check_field(record, field_name, rule, where, required=True)
    for field_name, rule in schema.get("optional_fields", {}).items():
        problems += _check_field(record, field_name, rule, where, required=False)
    return problems


def check_dataset(ds: Any, name: str, version: int | None = None, where: str = "<dataset>", check_values: bool = True) -> None:
    """Raise :class:`SchemaError` listing every problem, if ``ds`` does not follow the schema."""
    problems = validate_dataset(ds, name, version, where, check_values)
    if problems:
        raise SchemaError(name, version or latest_version(name), problems)


def check_record(record: Mapping[str, Any], name: str, version: int | None = None, where: str = "<record>") -> None:
    """Raise :class:`SchemaError` listing every problem, if ``record`` does not follow the schema."""
    problems = validate_record(record, name, version, where)
    if problems:
        raise SchemaError(name, version or latest_version(name), problems)
