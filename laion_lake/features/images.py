"""Stimulus images as the dataset publishes them, read where they lie (nothing unpacked to disk).

Two sources, chosen by what ``--images`` names:

``folder``  image files directly under it, named by stimulus id (``<id>`` or ``<id>.<suffix>``;
            the dataset's ids are themselves file names such as ``abc123.jpg``)
``.h5``     the release's ``stimuli/task-images_stimuli.h5``: dataset ``images``, one JPEG per row
            (variable-length ``uint8`` or ``bytes``), row-aligned with ``task-images_metadata.csv``
            beside it, whose ``image_name`` column is the stimulus id

>>> source = open_images("stimuli/task-images_stimuli.h5")
>>> source.ids[:2], source.load(source.ids[0]).size
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from laion_lake.errors import LakeError, describe_ids
from laion_lake.features.extract import IMAGE_SUFFIXES
H5_SUFFIXES = (".h5", ".hdf5")
H5_DATASET = "images"
METADATA_ID_COLUMN = "image_name"
# the release names the pair task-images_stimuli.h5 / task-images_metadata.csv
H5_NAME_SUFFIX, METADATA_NAME_SUFFIX = "_stimuli", "_metadata.csv"


class ImageSourceError(LakeError, ValueError):
    """An image source cannot be read, or lacks stimuli it is asked for (the message names them)."""


def decode_rgb(data: bytes, where: str) -> Any:
    """A fully read RGB ``PIL.Image.Image`` from encoded image bytes."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ImageSourceError(f"{where}: not a readable image ({error})") from error


class ImageSource:
    """Encoded images keyed by stimulus id. Subclasses give :attr:`ids` and :meth:`read_bytes`."""

    location: str
    kind: str
    ids: np.ndarray

    def read_bytes(self, stimulus_id: str) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def where(self, stimulus_id: str) -> str:
        return f"{self.location} (stimulus {stimulus_id!r})"

    def load(self, stimulus_id: str) -> Any:
        """The image of ``stimulus_id`` as RGB ``PIL.Image``."""
        return decode_rgb(self.read_bytes(stimulus_id), self.where(stimulus_id))

    def digest(self, stimulus_ids: Iterable[str]) -> str:
        """sha256 over ``<id> <sha256 of its bytes>\\n`` in the given order: the images' identity."""
        digest = hashlib.sha256()
        for stimulus_id in stimulus_ids:
            digest.update(f"{stimulus_id} {hashlib.sha256(self.read_bytes(stimulus_id)).hexdigest()}\n".encode())
        return digest.hexdigest()

    def close(self) -> None:
        """Release open files (a no-op for folders)."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FolderImages(ImageSource):
    """Image files directly under a folder; the id is the file name, or its stem when the lake's ids lack suffixes."""

    kind = "folder"

    def __init__(self, folder: str | Path, wanted: Iterable[str] | None = None) -> None:
        self.folder = Path(folder)
        self.location = str(self.folder.resolve())
        files = sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        wanted_set = None if wanted is None else set(map(str, wanted))
        self._paths: dict[str, Path] = {}
        for path in files:
            # a file 'abc.jpg' serves id 'abc.jpg', or id 'abc' when that is what the lake calls it
            key = path.name if wanted_set is None or path.name in wanted_set or path.stem not in wanted_set else path.stem
            if key in self._paths:
                raise ImageSourceError(f"{self.location}: two files serve stimulus id {key!r} ({self._paths[key].name}, {path.name})")
            self._paths[key] = path
        self.ids = np.asarray(sorted(self._paths), dtype=str)

    def read_bytes(self, stimulus_id: str) -> bytes:
        return self._paths[stimulus_id].read_bytes()

    def where(self, stimulus_id: str) -> str:
        return str(self._paths[stimulus_id].resolve())


def metadata_path_for(h5_path: str | Path) -> Path:
    """``task-images_metadata.csv`` beside ``task-images_stimuli.h5`` (the release's pair of names)."""
    path = Path(h5_path)
    stem = path.stem.removesuffix(H5_NAME_SUFFIX)
    return path.with_name(f"{stem}{METADATA_NAME_SUFFIX}")


def read_metadata_ids(path: str | Path) -> np.ndarray:
    """The ``image_name`` column of the release's metadata table, in row order."""
    path = Path(path)
    if not path.is_file():
        raise ImageSourceError(f"{path}: no metadata table (the release's task-images_metadata.csv, row-aligned with the .h5); pass metadata=")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if METADATA_ID_COLUMN not in (reader.fieldnames or []):
            raise ImageSourceError(f"{path}: no {METADATA_ID_COLUMN!r} column (it has {', '.join(reader.fieldnames or [])})")
        return np.asarray([row[METADATA_ID_COLUMN] for row in reader], dtype=str)


def _element_bytes(element: Any) -> bytes:
    """One row of the ``images`` dataset as bytes, whichever way the JPEG was stored."""
    if isinstance(element, bytes):
        return element
    if isinstance(element, np.void):  # opaque
        return element.tobytes()
    return np.asarray(element, dtype=np.uint8).tobytes()


class H5Images(ImageSource):
    """The release's HDF5 stimulus file, read one row at a time with h5py (nothing unpacked)."""

    kind = "h5"

    def __init__(self, path: str | Path, metadata: str | Path | None = None) -> None:
        try:
            import h5py
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError("reading the release's stimuli .h5 needs h5py (pip install 'laion-lake[models]')") from error
        self.path = Path(path)
        self.location = str(self.path.resolve())
        metadata_path = Path(metadata) if metadata is not None else metadata_path_for(self.path)
        ids = read_metadata_ids(metadata_path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as error:
            raise ImageSourceError(f"{self.location}: not a readable HDF5 file ({error})") from error
        if H5_DATASET not in self._file:
            names = list(self._file)
            self._file.close()
            raise ImageSourceError(f"{self.location}: no dataset {H5_DATASET!r} (it holds {describe_ids(names)})")
        self._images = self._file[H5_DATASET]
        if self._images.shape[0] != len(ids):
            n_rows = self._images.shape[0]
            self._file.close()
            raise ImageSourceError(f"{self.location}: {n_rows} images but {metadata_path} lists {len(ids)} rows; they must be row-aligned")
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            self._file.close()
            raise ImageSourceError(f"{metadata_path}: {METADATA_ID_COLUMN} repeats {describe_ids(unique[counts > 1])}")
        self._row = {stimulus_id: row for row, stimulus_id in enumerate(ids.tolist())}
        self.ids = np.sort(ids)

    def read_bytes(self, stimulus_id: str) -> bytes:
        return _element_bytes(self._images[self._row[stimulus_id]])

    def where(self, stimulus_id: str) -> str:
        return f"{self.location} row {self._row[stimulus_id]} (stimulus {stimulus_id!r})"

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()


def open_images(source: str | Path, metadata: str | Path | None = None, wanted: Iterable[str] | None = None) -> ImageSource:
    """An :class:`ImageSource` for a folder of images or the release's ``.h5`` (with its metadata table).

    Parameters
    ----------
    source : str or Path
        A folder of images named by stimulus id, or ``task-images_stimuli.h5``.
    metadata : str or Path, optional
        The ``.h5``'s metadata table; default ``task-images_metadata.csv`` beside it.
    wanted : iterable of str, optional
        The ids the caller will ask for: lets a folder's ``abc.jpg`` serve an id written ``abc``.
    """
    path = Path(source)
    if path.is_dir():
        return FolderImages(path, wanted)
    if path.suffix.lower() in H5_SUFFIXES:
        if not path.is_file():
            raise ImageSourceError(f"{path}: no such stimuli file")
        return H5Images(path, metadata)
    raise ImageSourceError(f"{path}: --images takes a folder of images named by stimulus id or the release's task-images_stimuli.h5")


def select_stimuli(source: ImageSource, needed: np.ndarray, needed_by: str) -> tuple[np.ndarray, int]:
    """The needed ids, sorted, and how many of the source's ids no benchmark needs (skipped).

    Raises
    ------
    ImageSourceError
        The source lacks ids that ``needed_by`` needs; one line naming them.
    """
    needed = np.unique(np.asarray(needed).astype(str))
    missing = np.setdiff1d(needed, source.ids)
    if len(missing):
        raise ImageSourceError(f"{source.location}: {len(missing)} of {len(needed)} stimuli that {needed_by} need(s) are not in it: {describe_ids(missing)}")
    return needed, int(len(np.setdiff1d(source.ids, needed)))


__all__ = [
    "FolderImages",
    "H5Images",
    "ImageSource",
    "ImageSourceError",
    "decode_rgb",
    "metadata_path_for",
    "open_images",
    "read_metadata_ids",
    "select_stimuli",
]
