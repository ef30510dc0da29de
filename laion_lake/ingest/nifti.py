"""Reading NIfTI files of a release (local or in a bucket) with errors that name the file.

3D images (masks, maps) are read whole into memory. A 4D statmap is streamed: one file object,
gzip-decompressed on the fly and read front to back, ``VOLUMES_PER_READ`` volumes at a time (a
NIfTI stores volume after volume, so a block of volumes is one contiguous, forward read).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import numpy as np

from laion_lake.ingest.errors import IngestError
from laion_lake.ingest.layout import require_file
from laion_lake.ingest.source import ReleaseFile

# volumes read from a 4D statmap at a time (bounds memory to a few hundred MB on the real grid)
VOLUMES_PER_READ = 32
_GZIP_MAGIC = b"\x1f\x8b"


def _image_from_stream(stream: IO[bytes]) -> Any:
    import nibabel

    return nibabel.Nifti1Image.from_stream(stream)


def load_image_bytes(path: ReleaseFile, what: str) -> Any:
    """The nibabel image of a small file read whole into memory (data in memory too)."""
    import nibabel  # noqa: F401  (the ``ingest`` extra)

    require_file(path, what)
    data = path.read_bytes(what)
    try:
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        return _image_from_stream(io.BytesIO(data))
    except Exception as error:
        raise IngestError(f"{path}: cannot read {what} as NIfTI ({type(error).__name__}: {error})") from error


@contextmanager
def open_image_stream(path: ReleaseFile, what: str) -> Iterator[Any]:
    """The nibabel image of a (large) file, its data read lazily from one sequential stream."""
    import nibabel  # noqa: F401

    require_file(path, what)
    raw = path.open(what)
    try:
        with path.errors(what):
            head = raw.read(2)
            raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if head == _GZIP_MAGIC else raw
        try:
            with path.errors(what):
                image = _image_from_stream(stream)
        except IngestError:
            raise
        except Exception as error:
            raise IngestError(f"{path}: cannot read {what} as NIfTI ({type(error).__name__}: {error})") from error
        yield image
    finally:
        raw.close()


def read_volume(path: ReleaseFile, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A whole 3D image (mask or map), checked against ``shape`` (the brain mask's) when given."""
    image = load_image_bytes(path, what)
    if len(image.shape) != 3:
        raise IngestError(f"{path}: {what} must be a 3D image, has shape {image.shape}")
    if shape is not None and tuple(image.shape) != tuple(shape):
        raise IngestError(f"{path}: {what} has shape {tuple(image.shape)}, but the brain mask has {tuple(shape)}")
    try:
        return np.asanyarray(image.dataobj)
    except Exception as error:
        raise IngestError(f"{path}: {what} is truncated or corrupt ({type(error).__name__}: {error})") from error


def read_mask(path: ReleaseFile, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A boolean mask: finite values > 0."""
    values = read_volume(path, what, shape)
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0) > 0


def statmap_volumes(path: ReleaseFile, spatial_shape: tuple[int, ...]) -> int:
    """Number of volumes (trials) of a 4D statmap, from its header (only the file's start is read); checks its grid."""
    with open_image_stream(path, "single-trial statmap") as image:
        shape = tuple(image.shape)
    if len(shape) != 4:
        raise IngestError(f"{path}: single-trial statmap must be 4D (one volume per trial), has shape {shape}")
    if shape[:3] != tuple(spatial_shape):
        raise IngestError(f"{path}: statmap grid {shape[:3]} differs from the brain mask's {tuple(spatial_shape)}")
    return int(shape[3])


def iter_statmap_voxels(path: ReleaseFile, voxels: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_volume, values)`` blocks of a 4D statmap, ``values`` of shape (n_volumes_in_block, n_voxels).

    Only ``VOLUMES_PER_READ`` volumes are in memory at a time; the file is streamed once, front to
    back. ``voxels`` are (x, y, z) index arrays. Values keep the file's float dtype (float64 if scaled).
    """
    x, y, z = voxels
    with open_image_stream(path, "single-trial statmap") as image:
        proxy = image.dataobj
        n_volumes = int(image.shape[3])
        for start in range(0, n_volumes, VOLUMES_PER_READ):
            try:
                with path.errors("single-trial statmap"):
                    block = np.asanyarray(proxy[..., start : min(start + VOLUMES_PER_READ, n_volumes)])
            except IngestError:
                raise
            except Exception as error:
                raise IngestError(f"{path}: single-trial statmap is truncated or corrupt ({type(error).__name__}: {error})") from error
            yield start, np.ascontiguousarray(block[x, y, z, :].T)
