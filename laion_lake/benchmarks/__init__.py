"""LAION-fMRI benchmarks: identifiers -> frozen :class:`BenchmarkSpec` values, from tables.

>>> from laion_lake.benchmarks import list_benchmarks, load_benchmark
>>> len(list_benchmarks())
20
>>> load_benchmark("LAION_fMRI.IT-ood_gabor-ridgecv").folds
('ood',)
"""

from laion_lake.benchmarks.registry import HEADLINE_TABLE, is_headline, list_benchmarks, load_benchmark
from laion_lake.benchmarks.spec import (
    OVERRIDABLE,
    BenchmarkSpec,
    UnknownBenchmarkError,
    format_identifier,
    parse_identifier,
    valid_identifiers,
)
from laion_lake.benchmarks.vocabulary import (
    CONVENTIONS,
    FAMILY_POOLS,
    METRICS,
    NC_COORDS,
    OOD_CATEGORIES,
    REGION_COMPONENTS,
    REGIONS,
    RIDGECV_ALPHAS,
    SHARED_POOL,
    SPLITS,
    STORED_SPLITS,
    SUBJECTS,
)

__all__ = [
    "BenchmarkSpec",
    "CONVENTIONS",
    "FAMILY_POOLS",
    "HEADLINE_TABLE",
    "METRICS",
    "NC_COORDS",
    "OOD_CATEGORIES",
    "OVERRIDABLE",
    "REGIONS",
    "REGION_COMPONENTS",
    "RIDGECV_ALPHAS",
    "SHARED_POOL",
    "SPLITS",
    "STORED_SPLITS",
    "SUBJECTS",
    "UnknownBenchmarkError",
    "format_identifier",
    "is_headline",
    "list_benchmarks",
    "load_benchmark",
    "parse_identifier",
    "valid_identifiers",
]
