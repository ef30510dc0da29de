"""LAION-fMRI benchmarks: identifiers -> frozen :class:`BenchmarkSpec` values, from tables.

>>> from laion_lake.benchmarks import list_benchmarks, load_benchmark
>>> len(list_benchmarks())
24
>>> load_benchmark("Zerbe2026_fmri.V1-tau-ridgecv") == load_benchmark("LAION_fMRI.V1-tau-ridgecv")
True
>>> load_benchmark("LAION_fMRI.IT-ood_gabor-ridgecv").folds
('ood',)
"""

from laion_lake.benchmarks.registry import HEADLINE_TABLE, alias_table, aliases_text, is_headline, list_benchmarks, load_benchmark
from laion_lake.benchmarks.identifiers import (
    UnknownBenchmarkError,
    canonical_family,
    canonical_identifier,
    family_aliases,
    format_identifier,
    identifier_aliases,
    parse_identifier,
    valid_identifiers,
)
from laion_lake.benchmarks.spec import OVERRIDABLE, BenchmarkSpec
from laion_lake.benchmarks.vocabulary import (
    CKA,
    CONVENTIONS,
    FAMILY_ALIASES,
    FAMILY_POOLS,
    METRICS,
    NC_COORDS,
    OOD_CATEGORIES,
    REGION_COMPONENTS,
    RDM_PEARSON,
    REGIONS,
    RIDGECV_ALPHAS,
    SHARED_IMAGE_METRICS,
    SHARED_POOL,
    SPLITS,
    STORED_SPLITS,
    SUBJECTS,
)

__all__ = [
    "BenchmarkSpec",
    "CKA",
    "CONVENTIONS",
    "FAMILY_ALIASES",
    "FAMILY_POOLS",
    "HEADLINE_TABLE",
    "METRICS",
    "NC_COORDS",
    "OOD_CATEGORIES",
    "OVERRIDABLE",
    "RDM_PEARSON",
    "REGIONS",
    "REGION_COMPONENTS",
    "RIDGECV_ALPHAS",
    "SHARED_IMAGE_METRICS",
    "SHARED_POOL",
    "SPLITS",
    "STORED_SPLITS",
    "SUBJECTS",
    "UnknownBenchmarkError",
    "alias_table",
    "aliases_text",
    "canonical_family",
    "canonical_identifier",
    "family_aliases",
    "format_identifier",
    "identifier_aliases",
    "is_headline",
    "list_benchmarks",
    "load_benchmark",
    "parse_identifier",
    "valid_identifiers",
]
