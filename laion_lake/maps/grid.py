"""Each subject's voxel grid (shape and affine) and per-voxel values placed on it: numpy only, no I/O.

A subject store of an ingested release can carry its brain mask's grid in its attrs
(``brain_mask_affine`` or ``affine``: 4 x 4, voxel -> mm; ``brain_mask_shape`` or ``shape``: 3 ints).
A store without them (a synthetic lake, a Brain-Score NetCDF assembly) gets a synthetic grid: the
bounding box of its voxels' (x, y, z) indices at the dataset's 1.8 mm, centred on the origin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

VOXEL_SIZE_MM = 1.8  # SPEC 1: T1w native space, 1.8 mm
AFFINE_ATTRS = ("brain_mask_affine", "affine")
SHAPE_ATTRS = ("brain_mask_shape", "shape")


@dataclass(frozen=True)
class Grid:
    """A 3-D voxel grid: ``shape`` (3 ints), ``affine`` (4 x 4 voxel -> mm) and where they came from."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    source: str


def _attr(attrs: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in attrs and attrs[name] is not None:
            value = attrs[name]
            return json.loads(value) if isinstance(value, str) else value
    return None


def subject_grid(attrs: Mapping[str, Any], x: np.ndarray, y: np.ndarray, z: np.ndarray, where: str = "") -> Grid:
    """The grid of a subject: the stored one when the attrs hold it, else a synthetic one from the voxels.

    Parameters
    ----------
    attrs : mapping
        The subject store's attrs.
    x, y, z : int arrays of shape (n_voxels,)
        Voxel indices of every voxel of the subject (the grid must contain them all).
    where : str
        Named in errors (the subject store).

    Raises
    ------
    ValueError
        A stored affine that is not 4 x 4, a shape that is not 3 positive ints, or a voxel outside the grid.
    """
    ijk = np.stack([np.asarray(x), np.asarray(y), np.asarray(z)], axis=1).astype(np.int64)
    affine, shape = _attr(attrs, AFFINE_ATTRS), _attr(attrs, SHAPE_ATTRS)
    if affine is not None and shape is not None:
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"{where}: the stored affine has shape {affine.shape}, expected (4, 4)")
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) <= 0:
            raise ValueError(f"{where}: the stored grid shape {shape} is not 3 positive sizes")
        grid = Grid(shape, affine, "stored in the subject's attrs")  # type: ignore[arg-type]
    else:
        shape = tuple(int(s) for s in ijk.max(axis=0) + 1)
        affine = np.diag([VOXEL_SIZE_MM] * 3 + [1.0])
        affine[:3, 3] = -VOXEL_SIZE_MM * (np.asarray(shape) - 1) / 2.0
        grid = Grid(shape, affine, f"synthetic: the voxels' bounding box at {VOXEL_SIZE_MM} mm, centred")  # type: ignore[arg-type]
    if (ijk < 0).any() or (ijk >= np.asarray(grid.shape)).any():
        raise ValueError(f"{where}: voxel indices (x, y, z) fall outside the grid of shape {grid.shape}")
    return grid


def place_on_grid(values: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A float32 volume of ``shape``: ``values`` at the voxels (x, y, z), NaN everywhere else."""
    volume = np.full(shape, np.nan, dtype=np.float32)
    volume[np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64), np.asarray(z, dtype=np.int64)] = values
    return volume


__all__ = ["Grid", "VOXEL_SIZE_MM", "place_on_grid", "subject_grid"]
