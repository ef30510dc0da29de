"""Reading NIfTI files of a release with errors that name the file; 4D statmaps read volume block by block."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from laion_lake.ingest.layout import IngestError, require_file

# volumes read from a 4D statmap at a time (bounds memory to a few hundred MB on the real grid)
VOLUMES_PER_READ = 32


def load_image(path: Path, what: str) -> Any:
    """The nibabel image (header read, data not yet), or an :class:`IngestError` naming ``path``."""
    import nibabel

    require_file(path, what)
    try:
        # keep_file_open: successive volume reads of a .gz continue the stream instead of restarting it
        return nibabel.load(str(path), keep_file_open=True)
    except Exception as error:
        raise IngestError(f"{path}: cannot read {what} as NIfTI ({type(error).__name__}: {error})") from error


def read_volume(path: Path, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A whole 3D image (mask or map), checked against ``shape`` (the brain mask's) when given."""
    image = load_image(path, what)
    if len(image.shape) != 3:
        raise IngestError(f"{path}: {what} must be a 3D image, has shape {image.shape}")
    if shape is not None and tuple(image.shape) != tuple(shape):
        raise IngestError(f"{path}: {what} has shape {tuple(image.shape)}, but the brain mask has {tuple(shape)}")
    try:
        return np.asanyarray(image.dataobj)
    except Exception as error:
        raise IngestError(f"{path}: {what} is truncated or corrupt ({type(error).__name__}: {error})") from error


def read_mask(path: Path, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A boolean mask: finite values > 0."""
    values = read_volume(path, what, shape)
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0) > 0


def statmap_volumes(path: Path, spatial_shape: tuple[int, ...]) -> int:
    """Number of volumes (trials) of a 4D statmap, from its header; checks its grid."""
    image = load_image(path, "single-trial statmap")
    if len(image.shape) != 4:
        raise IngestError(f"{path}: single-trial statmap must be 4D (one volume per trial), has shape {image.shape}")
    if tuple(image.shape[:3]) != tuple(spatial_shape):
        raise IngestError(f"{path}: statmap grid {tuple(image.shape[:3])} differs from the brain mask's {tuple(spatial_shape)}")
    return int(image.shape[3])


def iter_statmap_voxels(path: Path, voxels: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_volume, values)`` blocks of a 4D statmap, ``values`` of shape (n_volumes_in_block, n_voxels).

    Only ``VOLUMES_PER_READ`` volumes are in memory at a time; the file is read once, front to back.
    ``voxels`` are (x, y, z) index arrays. Values keep the file's float dtype (float64 if scaled).
    """
    image = load_image(path, "single-trial statmap")
    proxy = image.dataobj
    n_volumes = int(image.shape[3])
    x, y, z = voxels
    try:
        for start in range(0, n_volumes, VOLUMES_PER_READ):
            block = np.asanyarray(proxy[..., start : min(start + VOLUMES_PER_READ, n_volumes)])
            yield start, np.ascontiguousarray(block[x, y, z, :].T)
    except IngestError:
        raise
    except Exception as error:
        raise IngestError(f"{path}: single-trial statmap is truncated or corrupt ({type(error).__name__}: {error})") from error
    finally:
        opener = getattr(proxy, "_opener", None)
        if opener is not None:  # close the file kept open for sequential reads
            opener.close_if_mine()
