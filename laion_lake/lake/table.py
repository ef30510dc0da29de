"""The lake's recorded scores as one tidy pandas table (``Lake.scores()``), read through the records API.

One row per aggregated score (model, layer, benchmark) or, in the long form, one row per subject
and fold of each score (the per-subject cells kept in the aggregate record's ``detail``). Records
whose inputs were replaced since (stale) are left out unless asked for, then flagged.
Nothing is computed here and nothing is written: the values are the records' own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

# the columns of the two forms, in order
SCORE_COLUMNS = (
    "model", "layer", "benchmark", "family", "region", "split", "metric", "convention",
    "value", "error", "raw", "ceiling", "n_subjects", "n_folds", "stale", "created",
)  # fmt: skip
SUBJECT_COLUMNS = (
    "model", "layer", "benchmark", "family", "region", "split", "metric", "convention",
    "subject", "fold", "value", "raw", "ceiling", "alpha", "n_train", "n_test", "n_voxels", "stale",
)  # fmt: skip
_FLOATS = ("value", "error", "raw", "ceiling", "alpha")


def _number(value: Any) -> float:
    """A record's number as float; JSON null (a NaN when written) back to NaN."""
    return float("nan") if value is None else float(value)


def _benchmark_columns(attrs: Mapping[str, Any]) -> dict[str, Any]:
    from laion_lake.benchmarks import parse_identifier

    family, region, split, metric = parse_identifier(str(attrs["benchmark"]))
    return {
        "model": attrs["model"],
        "layer": attrs["layer"],
        "benchmark": attrs.get("benchmark_key", attrs["benchmark"]),
        "family": family,
        "region": region,
        "split": split,
        "metric": metric,
        "convention": attrs.get("convention"),
    }


def _score_row(score: Any, stale: bool) -> dict[str, Any]:
    attrs = score.attrs
    return {
        **_benchmark_columns(attrs),
        "value": _number(score.values.item()),
        **{name: _number(attrs.get(name)) for name in ("error", "raw", "ceiling")},
        "n_subjects": int(attrs.get("n_subjects", 0)),
        "n_folds": int(attrs.get("n_folds", 0)),
        "stale": stale,
        "created": attrs.get("created"),
    }


def _subject_rows(score: Any, stale: bool) -> list[dict[str, Any]]:
    """One row per (subject, fold) cell of a score: its ceiled value, raw and ceiling as recorded."""
    common = _benchmark_columns(score.attrs)
    rows = []
    for cell in score.attrs.get("detail") or []:
        rows.append({
            **common,
            "subject": cell["subject"],
            "fold": int(cell.get("fold", 0)),
            "value": _number(cell.get("ceiled")),
            "raw": _number(cell.get("raw")),
            "ceiling": _number(cell.get("ceiling")),
            "alpha": _number(cell.get("alpha")),
            **{name: int(cell[name]) if cell.get(name) is not None else -1 for name in ("n_train", "n_test", "n_voxels")},
            "stale": stale,
        })  # fmt: skip
    return rows


def _stale_scores(lake: Any, current: Iterable[Any], model: str | None, layer: str | None, benchmark: str | None) -> list[Any]:
    """The aggregate records left out of :func:`load_scores` (inputs replaced since), as Scores."""
    from laion_lake.scoring.records import AGGREGATES, RECORD_ATTR, record_to_score

    kept = {(s.attrs["model"], s.attrs["layer"], s.attrs["benchmark_key"]) for s in current}
    group = lake.storage.group(AGGREGATES)
    found = []
    for _, child in [] if group is None else sorted(group.groups(), key=lambda item: item[0]):
        if RECORD_ATTR not in child.attrs:
            continue
        score = record_to_score(dict(child.attrs[RECORD_ATTR]))
        attrs = score.attrs
        if model not in (None, attrs["model"]) or layer not in (None, attrs["layer"]):
            continue
        if benchmark not in (None, attrs["benchmark"], attrs.get("benchmark_key")):
            continue
        if (attrs["model"], attrs["layer"], attrs.get("benchmark_key")) not in kept:
            found.append(score)
    return found


def score_table(
    lake: Any,
    model: str | None = None,
    layer: str | None = None,
    benchmark: str | None = None,
    per_subject: bool = False,
    stale: bool = False,
) -> pd.DataFrame:
    """The recorded scores of a lake as a tidy table; see :meth:`laion_lake.lake.Lake.scores`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCORE_COLUMNS` (one row per score), or :data:`SUBJECT_COLUMNS` with
        ``per_subject`` (one row per subject and fold; ``value`` is that cell's ceiled score).
        Sorted by model, layer, benchmark (then subject, fold); NaN where a record holds null.
    """
    from laion_lake.benchmarks import canonical_identifier
    from laion_lake.scoring.records import load_scores

    benchmark = None if benchmark is None else canonical_identifier(benchmark)  # Zerbe2026_fmri.* finds LAION_fMRI.*
    if not lake.storage.read_only:
        # as load_scores: records are written by other processes; read the branch's newest head
        lake = type(lake)(lake.url, lake.storage_options, branch=lake.storage.pinned["branch"])
    current = list(load_scores(lake, model, layer, benchmark))
    scores = [(s, False) for s in current]
    if stale:
        scores += [(s, True) for s in _stale_scores(lake, current, model, layer, benchmark)]
    if per_subject:
        rows = [row for s, is_stale in scores for row in _subject_rows(s, is_stale)]
        columns, order = SUBJECT_COLUMNS, ["model", "layer", "benchmark", "subject", "fold"]
    else:
        rows = [_score_row(s, is_stale) for s, is_stale in scores]
        columns, order = SCORE_COLUMNS, ["model", "layer", "benchmark"]
    table = pd.DataFrame(rows, columns=list(columns))
    for name in _FLOATS:
        if name in table:
            table[name] = table[name].astype(np.float64)
    table["stale"] = table["stale"].astype(bool)
    return table.sort_values(order, kind="stable").reset_index(drop=True)


__all__ = ["SCORE_COLUMNS", "SUBJECT_COLUMNS", "score_table"]
