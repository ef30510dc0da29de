"""Brain maps of per-voxel scores: one NIfTI per subject in that subject's grid, and PNG views (nilearn).

>>> from laion_lake.maps import write_maps
>>> write_maps(lake, "ground_truth", "latent", "LAION_fMRI.V1-tau-ridgecv", "maps/")

Needs nibabel (NIfTI) and, for the PNGs, nilearn and matplotlib: the ``maps`` extra.
Modules: :mod:`~laion_lake.maps.grid` (grids and volumes, numpy only), :mod:`~laion_lake.maps.write`
(NIfTI and PNG files), :mod:`~laion_lake.maps.cli` (``laion-lake maps``).
"""

from __future__ import annotations

from typing import Any


def write_maps(*args: Any, **kwargs: Any) -> Any:
    """See :func:`laion_lake.maps.write.write_maps`."""
    from laion_lake.maps.write import write_maps as _write_maps

    return _write_maps(*args, **kwargs)


__all__ = ["write_maps"]
