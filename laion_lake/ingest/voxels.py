"""Which voxels a subject's assembly holds and their region (pure numpy, no I/O).

Regions from the release's ROI masks: V1 = V1v + V1d, V2 = V2v + V2d, V3 = V3v + V3d, V4 = hV4,
IT = laionventral minus every retinotopic ROI; with scope ``brain`` every other brain-mask voxel
is region ``other``. Only brain-mask voxels are kept (a neuroid is named by its brain-mask index).
A voxel in two retinotopic masks goes to the *later* one in V1v, V1d, V2v, V2d, V3v, V3d, hV4 order
(SPEC section 1: Brain-Score assigns them in that order, each overwriting the last).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from storage_schemas.vocabulary import OTHER_REGION, REGION_OF_ROI, RETINOTOPIC_ROIS, STORED_REGIONS, VENTRAL_ROI

REGION_ORDER = (*STORED_REGIONS, OTHER_REGION)
SCOPES = ("rois", "brain")


@dataclass(frozen=True)
class VoxelSelection:
    """The selected voxels, sorted by region (REGION_ORDER), then by brain-mask index.

    Attributes
    ----------
    brain_index : int64 array of shape (n_voxels,)
        Index among brain-mask voxels in C order.
    xyz : tuple of three int arrays
        Voxel indices in the image grid.
    region, roi : str arrays
    notes : list of str
        What was dropped or resolved (ROI voxels outside the brain mask, overlapping ROIs).
    """

    brain_index: np.ndarray
    xyz: tuple[np.ndarray, np.ndarray, np.ndarray]
    region: np.ndarray
    roi: np.ndarray
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.brain_index)


def select_voxels(brain_mask: np.ndarray, roi_masks: Mapping[str, np.ndarray], scope: str = "rois") -> VoxelSelection:
    """Voxels of the visual ROIs (``scope="rois"``) or of the whole brain mask (``"brain"``).

    Parameters
    ----------
    brain_mask : bool array of shape (X, Y, Z)
    roi_masks : mapping ROI label -> bool array of shape (X, Y, Z)
        The seven retinotopic ROIs and ``laionventral``.
    scope : {"rois", "brain"}
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    flat_brain = np.flatnonzero(brain_mask.ravel(order="C"))
    labels = np.full(len(flat_brain), "", dtype=object)
    notes = []
    retinotopic_count = np.zeros(len(flat_brain), dtype=np.int16)
    for roi in (*RETINOTOPIC_ROIS, VENTRAL_ROI):
        mask = roi_masks[roi].ravel(order="C")
        outside = int((mask & ~brain_mask.ravel(order="C")).sum())
        if outside:
            notes.append(f"{roi}: {outside} voxel(s) outside the brain mask dropped")
        inside = mask[flat_brain]
        if roi != VENTRAL_ROI:
            retinotopic_count += inside
            labels[inside] = roi  # a later retinotopic ROI overwrites an earlier one
        else:
            labels[inside & (labels == "")] = roi  # IT: the ventral mask minus every retinotopic ROI
    overlapping = int((retinotopic_count > 1).sum())
    if overlapping:
        notes.append(f"{overlapping} voxel(s) in two retinotopic ROIs: kept in the later of {', '.join(RETINOTOPIC_ROIS)}")
    if scope == "brain":
        labels[labels == ""] = "other"
    keep = np.flatnonzero(labels != "")
    roi = labels[keep].astype(str)
    region = np.array([REGION_OF_ROI.get(r, "other") for r in roi], dtype=object).astype(str)
    rank = np.array([REGION_ORDER.index(r) for r in region], dtype=np.int64)
    order = np.lexsort((keep, rank))
    keep, roi, region = keep[order], roi[order], region[order]
    x, y, z = np.unravel_index(flat_brain[keep], brain_mask.shape, order="C")
    return VoxelSelection(keep.astype(np.int64), (x, y, z), region, roi, notes)
