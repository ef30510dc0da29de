"""The synthetic brain: a brain-mask grid and each subject's voxels, placed region by region.

Bookkeeping only (which voxel, where, in which ROI), no responses; see :mod:`.design` for the
randomness streams and scales it draws on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from laion_lake.synthetic.design import Scale, get_scale, stream
from storage_schemas.vocabulary import ROIS_OF_REGION as ROI_LABELS
from storage_schemas.vocabulary import STORED_REGIONS as REGIONS

# brain mask: an ellipsoid on a 1.8 mm grid holding ~100k voxels (semi-axes in voxels: x, y, z)
MASK_SEMI_AXES = (30, 38, 21)
MASK_MARGIN = 4


@lru_cache(maxsize=1)
def brain_mask_coordinates() -> np.ndarray:
    """(x, y, z) of every brain-mask voxel, in C order of the grid (row i = voxel index i), int16.

    An ellipsoid of ~100k voxels on a 1.8 mm grid; y grows from the occipital pole forwards,
    z from ventral to dorsal.
    """
    a, b, c = MASK_SEMI_AXES
    shape = tuple(2 * s + 2 * MASK_MARGIN + 1 for s in MASK_SEMI_AXES)
    centre = np.array([s + MASK_MARGIN for s in MASK_SEMI_AXES], dtype=np.float64)
    grid = np.indices(shape).reshape(3, -1).T
    inside = (((grid - centre) / np.array([a, b, c])) ** 2).sum(axis=1) <= 1.0
    coords = grid[inside].astype(np.int16)
    coords.setflags(write=False)
    return coords


def _region_centres() -> dict[str, list[np.ndarray]]:
    """Bilateral centres (left, right) of each region on the mask grid, in voxels."""
    a, b, c = MASK_SEMI_AXES
    cx, cy, cz = (s + MASK_MARGIN for s in MASK_SEMI_AXES)
    pole = cy - b  # occipital pole
    early = [np.array([cx - 5, pole + 7, cz]), np.array([cx + 5, pole + 7, cz])]
    return {
        # V1, V2, V3 share a centre: V2 is the shell around V1, V3 the shell around V2
        "V1": early, "V2": early, "V3": early,
        "V4": [np.array([cx - 15, pole + 14, cz - 8]), np.array([cx + 15, pole + 14, cz - 8])],
        "IT": [np.array([cx - 17, pole + 27, cz - 11]), np.array([cx + 17, pole + 27, cz - 11])],
    }  # fmt: skip


@dataclass(frozen=True)
class VoxelLayout:
    """One subject's voxels, sorted by region (V1, V2, V3, V4, IT) then by brain-mask index.

    Attributes
    ----------
    region, roi : str arrays (n_voxels,)
    voxel_index : int64 array, index in the brain mask
    x, y, z : int16 arrays
    """

    region: np.ndarray
    roi: np.ndarray
    voxel_index: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    def __len__(self) -> int:
        return len(self.region)

    def region_slice(self, region: str) -> slice:
        where = np.flatnonzero(self.region == region)
        return slice(int(where[0]), int(where[-1]) + 1) if len(where) else slice(0, 0)

    def counts(self) -> dict[str, int]:
        return {r: int((self.region == r).sum()) for r in REGIONS}


def voxel_counts(scale: str | Scale, seed: int, subject: str) -> dict[str, int]:
    """Voxels per region of ``subject``: the scale's nominal counts, each varied by ~5 %."""
    scale = get_scale(scale)
    rng = stream(seed, "voxel_counts", subject)
    jitter = 1.0 + scale.voxel_count_jitter * rng.standard_normal(len(REGIONS))
    return {r: max(4, int(round(scale.voxels[r] * j))) for r, j in zip(REGIONS, jitter)}


def voxel_layout(scale: str | Scale, seed: int, subject: str) -> VoxelLayout:
    """Voxels of each region: the mask voxels nearest the region's (jittered, bilateral) centres,
    regions claimed in order so V2 and V3 form shells around V1 and IT excludes the retinotopic ROIs."""
    counts = voxel_counts(scale, seed, subject)
    rng = stream(seed, "voxel_layout", subject)
    coords = brain_mask_coordinates().astype(np.float64)
    taken = np.zeros(len(coords), bool)
    jitter = {r: rng.normal(0.0, 1.5, 3) for r in ("early", "V4", "IT")}
    parts = []
    for region in REGIONS:
        centres = _region_centres()[region]
        shift = jitter["early" if region in ("V1", "V2", "V3") else region]
        distance = np.min([np.linalg.norm(coords - (centre + shift), axis=1) for centre in centres], axis=0)
        distance[taken] = np.inf
        chosen = np.sort(np.argpartition(distance, counts[region])[: counts[region]])
        taken[chosen] = True
        labels = ROI_LABELS[region]
        if len(labels) == 2:  # ventral below the region's centre, dorsal above
            z_centre = centres[0][2] + shift[2]
            roi = np.where(coords[chosen, 2] < z_centre, labels[0], labels[1])
        else:
            roi = np.full(len(chosen), labels[0])
        parts.append((np.full(len(chosen), region), roi.astype(str), chosen))
    index = np.concatenate([p[2] for p in parts]).astype(np.int64)
    xyz = brain_mask_coordinates()[index]
    return VoxelLayout(
        region=np.concatenate([p[0] for p in parts]).astype(str),
        roi=np.concatenate([p[1] for p in parts]),
        voxel_index=index,
        x=xyz[:, 0].copy(),
        y=xyz[:, 1].copy(),
        z=xyz[:, 2].copy(),
    )
