"""The lake I/O layer: open and write the lake from a URL plus fsspec options; no math."""

from laion_lake.lake.lake import Lake, create_lake, open_lake
from laion_lake.lake.storage import LakeStorage, ReadStats
from laion_lake.lake.tables import SPLIT_NAMES, read_published_splits

__all__ = ["Lake", "LakeStorage", "ReadStats", "SPLIT_NAMES", "create_lake", "open_lake", "read_published_splits"]
