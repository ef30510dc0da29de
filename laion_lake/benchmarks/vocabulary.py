"""The words benchmark identifiers are built from, as data (SPEC sections 1-3).

Every valid family, split, metric and convention is listed here once, on top of the dataset's own
vocabulary (subjects, regions, OOD categories, noise-ceiling coordinates: one table in
``storage_schemas/vocabulary.json``); identifiers, validation and error suggestions are all derived
from these tables, so adding a region or a split is a one-line change with no new hand-written
identifiers.
"""

from __future__ import annotations

from types import MappingProxyType

from storage_schemas.vocabulary import (
    DERIVED_REGIONS,
    N_CLUSTER_FOLDS,
    NC_COORDS,
    N_RANDOM_SPLITS,
    OOD_CATEGORIES,
    SHARED_POOL,
    STORED_REGIONS,
    SUBJECTS,
)

# family -> which pool its splits come from: "shared" or one pool per subject
FAMILY_POOLS = MappingProxyType({"LAION_fMRI": SHARED_POOL, "LAION_fMRI_persubject": "subject"})

# the one table of family spellings: alias -> canonical family. Brain-Score renamed the families
# (SPEC 3); an alias resolves to the very same BenchmarkSpec (same key, so the same score records),
# and the canonical spelling stays the one records, reports and ``list_benchmarks()`` use.
FAMILY_ALIASES = MappingProxyType({"Zerbe2026_fmri": "LAION_fMRI", "Zerbe2026_fmri_persubject": "LAION_fMRI_persubject"})

# region -> the stored regions (voxel sets in a subject assembly) it is the union of (the dataset's
# vocabulary: storage_schemas/vocabulary.json); derived regions are concatenations, never stored
REGION_COMPONENTS = MappingProxyType({region: (region,) for region in STORED_REGIONS} | dict(DERIVED_REGIONS))
REGIONS = tuple(REGION_COMPONENTS)

CLUSTER_PREFIX = f"cluster_k{N_CLUSTER_FOLDS}"
OOD_PREFIX = "ood_"

# split names as published: one JSON per (pool, name)
STORED_SPLITS = (
    ("tau", "ood")
    + tuple(f"random_{k}" for k in range(N_RANDOM_SPLITS))
    + tuple(f"{CLUSTER_PREFIX}_{k}" for k in range(N_CLUSTER_FOLDS))
)

# benchmark split -> stored splits whose train sets it fits on (one per fold), and the OOD category
# its test set is restricted to. Derived, not typed: ood_<category> and cluster_k5 are families of
# splits over the same stored data.
SPLIT_FOLDS: MappingProxyType[str, tuple[tuple[str, ...], str | None]] = MappingProxyType(
    {name: ((name,), None) for name in STORED_SPLITS}
    | {f"{OOD_PREFIX}{category}": (("ood",), category) for category in OOD_CATEGORIES}
    | {CLUSTER_PREFIX: (tuple(f"{CLUSTER_PREFIX}_{k}" for k in range(N_CLUSTER_FOLDS)), None)}
)
SPLITS = tuple(SPLIT_FOLDS)

RIDGECV = "ridgecv"
RIDGE = "ridge"
RDM_PEARSON = "rdm-pearson"
CKA = "cka"
REGRESSION_METRICS = (RIDGECV, RIDGE)
# metrics without a split or a fit: every shared non-OOD image, one subject at a time (SPEC 3.3, 3.4)
SHARED_IMAGE_METRICS = (RDM_PEARSON, CKA)
METRICS = REGRESSION_METRICS + SHARED_IMAGE_METRICS

# the 21 candidate alphas 10**k, k = -10..10 (SPEC 3.1); ridge uses a fixed alpha of 1
RIDGECV_ALPHAS = tuple(10.0**k for k in range(-10, 11))
DEFAULT_ALPHAS = MappingProxyType({RIDGECV: RIDGECV_ALPHAS, RIDGE: (1.0,), RDM_PEARSON: (), CKA: ()})

CONVENTIONS = ("brainscore", "nsd")

DEFAULT_CONVENTION = "brainscore"
DEFAULT_NC_THRESHOLD = 30.0
DEFAULT_NC_COORD = "nc_12rep"
FIRST_VERSION = 1

CITATION = (
    "Zerbe, Roth, Mell, Herholz, Knapen & Hebart. The LAION-fMRI 7T fMRI dataset. "
    "Vision Sciences Society (VSS) 2026. "
    "Benchmarked with Brain-Score: Schrimpf et al., Brain-Score: Which Artificial Neural Network "
    "for Object Recognition is most Brain-Like? bioRxiv 407007 (2018); Schrimpf et al., Integrative "
    "Benchmarking to Advance Neurally Mechanistic Models of Human Intelligence, Neuron (2020)."
)

BIBTEX = """@misc{zerbe2026laionfmri,
  author = {Zerbe and Roth and Mell and Herholz and Knapen and Hebart},
  title = {{LAION-fMRI}},
  howpublished = {Vision Sciences Society (VSS)},
  year = {2026}
}
@article{schrimpf2018brainscore,
  author = {Schrimpf, Martin and Kubilius, Jonas and Hong, Ha and Majaj, Najib J. and Rajalingham, Rishi and Issa, Elias B. and Kar, Kohitij and Bashivan, Pouya and Prescott-Roy, Jonathan and Geiger, Franziska and Schmidt, Kailyn and Yamins, Daniel L. K. and DiCarlo, James J.},
  title = {Brain-Score: Which Artificial Neural Network for Object Recognition is most Brain-Like?},
  journal = {bioRxiv},
  doi = {10.1101/407007},
  year = {2018}
}
@article{schrimpf2020integrative,
  author = {Schrimpf, Martin and Kubilius, Jonas and Lee, Michael J. and Murty, N. Apurva Ratan and Ajemian, Robert and DiCarlo, James J.},
  title = {Integrative Benchmarking to Advance Neurally Mechanistic Models of Human Intelligence},
  journal = {Neuron},
  doi = {10.1016/j.neuron.2020.07.040},
  year = {2020}
}"""
