"""Stimulus images for a lake's ids, in both published layouts: a folder named by id, and the release's .h5 + metadata.csv."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def image_bytes(stimulus_id: str, size: int = 24, seed: int = 0, format: str = "JPEG") -> bytes:
    """A small deterministic image for one id: smooth colour gradients plus noise, different per id."""
    from PIL import Image

    rng = np.random.default_rng([seed, *map(ord, stimulus_id)])
    y, x = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(0, 255, 3) * np.stack([x, y, 1 - x], axis=-1)
    pixels = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=format, quality=90)
    return buffer.getvalue()


def write_image_folder(folder: Path, ids: Sequence[str], size: int = 24, seed: int = 0) -> Path:
    """One JPEG per id, named by the id (the dataset's ids are file names such as ``x.jpg``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stimulus_id in ids:
        (folder / stimulus_id).write_bytes(image_bytes(stimulus_id, size, seed))
    return folder


def write_release_stimuli(stimuli_dir: Path, ids: Sequence[str], size: int = 24, seed: int = 0, opaque: bool = False) -> Path:
    """``task-images_stimuli.h5`` (dataset ``images``: one JPEG per row) and the row-aligned ``task-images_metadata.csv``.

    Rows are in a shuffled order (the release's order is not the sorted one). Each row is a
    variable-length ``uint8`` array, or with ``opaque`` a fixed-size opaque (``V``) element.
    """
    import h5py

    stimuli_dir.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed + 1).permutation(len(ids))
    rows = [str(ids[i]) for i in order]
    h5_path = stimuli_dir / "task-images_stimuli.h5"
    with h5py.File(h5_path, "w") as handle:
        if opaque:
            # one fixed-size opaque element per row, zero-padded (JPEG readers stop at the end-of-image marker)
            encoded = [image_bytes(stimulus_id, size, seed) for stimulus_id in rows]
            width = max(map(len, encoded))
            dataset = handle.create_dataset("images", (len(rows),), dtype=f"V{width}")
            for row, data in enumerate(encoded):
                dataset[row] = np.void(data.ljust(width, b"\0"))
        else:
            dataset = handle.create_dataset("images", (len(rows),), dtype=h5py.vlen_dtype(np.uint8))
            for row, stimulus_id in enumerate(rows):
                dataset[row] = np.frombuffer(image_bytes(stimulus_id, size, seed), dtype=np.uint8)
    with (stimuli_dir / "task-images_metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "n_reps", "dataset", "unique_or_shared"])
        for stimulus_id in rows:
            writer.writerow([stimulus_id, 12 if stimulus_id.startswith("shared") else 4, "LAION", "shared" if stimulus_id.startswith("shared") else "unique"])
    return h5_path
