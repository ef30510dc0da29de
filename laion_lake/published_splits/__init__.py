"""The split JSONs published with the LAION-fMRI dataset, shipped as package data (BSD-3, see LICENSE).

The release itself has no splits folder (SPEC section 5): the 72 files (6 pools x 12 names) live in
the dataset's Python package, so laion-lake carries the same files under
``laion_lake/published_splits/{pool}/{name}.json``. This module is the one place that lists them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from storage_schemas.vocabulary import SHARED_POOL, SUBJECTS

POOLS = (SHARED_POOL, *SUBJECTS)
N_FILES = 72


def published_splits_dir() -> Path:
    """The folder of the packaged split JSONs (``<pool>/<name>.json``), as a local path.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its data (e.g. from a zip that is not unpacked).
    """
    root = files(__name__)
    path = Path(str(root))
    if not isinstance(root, Path) or not (path / "shared").is_dir():
        raise FileNotFoundError(f"{path}: laion_lake's packaged split JSONs are missing (reinstall laion-lake)")
    return path


def published_split_documents() -> list[dict[str, Any]]:
    """Every packaged split document, parsed, with ``lake_pool`` and ``source`` set."""
    from laion_lake.lake import read_published_splits

    return read_published_splits(published_splits_dir())
