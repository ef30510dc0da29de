"""Scoring: plan the work for (feature set, benchmark) pairs, run each unit, aggregate, bootstrap.

The public functions live in :mod:`laion_lake.scoring.api` and are re-exported lazily, so that the
pure planning module (:mod:`laion_lake.scoring.plan`) imports without dask, xarray or zarr.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "score": "laion_lake.scoring.api",
    "score_many": "laion_lake.scoring.api",
    "aggregate_score": "laion_lake.scoring.aggregate",
    "score_table": "laion_lake.scoring.aggregate",
    "CellResult": "laion_lake.scoring.units",
    "run_unit": "laion_lake.scoring.units",
    "plan_work": "laion_lake.scoring.plan",
    "specs_by_key": "laion_lake.scoring.plan",
    "group_by_aggregate": "laion_lake.scoring.plan",
    "load_scores": "laion_lake.scoring.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'laion_lake.scoring' has no attribute {name!r}")
