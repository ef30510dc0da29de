"""laion-lake: score vision models against LAION-fMRI, with the dataset kept as a Zarr data lake.

The public API is re-exported here lazily, so that ``import laion_lake`` stays cheap and the pure
numerical core (:mod:`laion_lake.compute`) never pulls in zarr, dask or prefect.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "open_lake": "laion_lake.lake",
    "Lake": "laion_lake.lake",
    "make_lake": "laion_lake.synthetic",
    "list_benchmarks": "laion_lake.benchmarks",
    "load_benchmark": "laion_lake.benchmarks",
    "score": "laion_lake.scoring.api",
    "score_many": "laion_lake.scoring.api",
    "compare": "laion_lake.scoring.compare",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'laion_lake' has no attribute {name!r}")
