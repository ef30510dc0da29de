"""The dataset's shared vocabulary, read from the one table beside this file (``vocabulary.json``).

Subjects, regions and the ROI labels they are made of, derived regions, OOD categories, pools,
split naming and noise-ceiling coordinates are named once, as data; ingest, the synthetic lake,
the lake layer and the benchmark registry all import them from here instead of keeping copies.
Everything is immutable (tuples and read-only mappings).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

_TABLE: dict[str, Any] = json.loads(Path(__file__).with_name("vocabulary.json").read_text(encoding="utf-8"))

SUBJECTS: tuple[str, ...] = tuple(_TABLE["subjects"])
# participant code in a unique image's name -> subject, and the reverse
PARTICIPANT_CODES = MappingProxyType(dict(_TABLE["participant_codes"]["codes"]))
SUBJECT_PARTICIPANT_CODE = MappingProxyType({subject: code for code, subject in PARTICIPANT_CODES.items()})

# stored region -> its ROI labels, in storage order (voxels are sorted by region in this order)
ROIS_OF_REGION = MappingProxyType({region: tuple(rois) for region, rois in _TABLE["stored_regions"]["rois"].items()})
STORED_REGIONS: tuple[str, ...] = tuple(ROIS_OF_REGION)
REGION_OF_ROI = MappingProxyType({roi: region for region, rois in ROIS_OF_REGION.items() for roi in rois})
# the region of brain voxels in no ROI (kept only when ingesting the whole brain)
OTHER_REGION: str = _TABLE["other_region"]
# derived region -> the stored regions it is the union of
DERIVED_REGIONS = MappingProxyType({region: tuple(parts) for region, parts in _TABLE["derived_regions"]["components"].items()})
# every region a query or a benchmark may name, stored first
REGIONS: tuple[str, ...] = STORED_REGIONS + tuple(DERIVED_REGIONS)

RETINOTOPIC_ROIS: tuple[str, ...] = tuple(_TABLE["retinotopic_rois"]["order"])
VENTRAL_ROI: str = _TABLE["ventral_roi"]

OOD_COUNTS = MappingProxyType(dict(_TABLE["ood_categories"]["counts"]))
OOD_CATEGORIES: tuple[str, ...] = tuple(OOD_COUNTS)

SHARED_POOL: str = _TABLE["shared_pool"]
N_RANDOM_SPLITS: int = _TABLE["splits"]["n_random"]
N_CLUSTER_FOLDS: int = _TABLE["splits"]["n_cluster_folds"]

# noise-ceiling coordinate -> the desc- of its statmap in the release
NOISE_CEILING_MAPS = MappingProxyType(dict(_TABLE["noise_ceiling_maps"]["maps"]))
NC_COORDS: tuple[str, ...] = tuple(NOISE_CEILING_MAPS)

__all__ = [
    "DERIVED_REGIONS",
    "NC_COORDS",
    "NOISE_CEILING_MAPS",
    "N_CLUSTER_FOLDS",
    "N_RANDOM_SPLITS",
    "OOD_CATEGORIES",
    "OOD_COUNTS",
    "OTHER_REGION",
    "PARTICIPANT_CODES",
    "REGIONS",
    "REGION_OF_ROI",
    "RETINOTOPIC_ROIS",
    "ROIS_OF_REGION",
    "SHARED_POOL",
    "STORED_REGIONS",
    "SUBJECTS",
    "SUBJECT_PARTICIPANT_CODE",
    "VENTRAL_ROI",
]
