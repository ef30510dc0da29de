"""Run any model over a folder of images, in batches, and keep its activations keyed by file name.

The lake never holds the images (they are under a data use agreement); whoever has them runs
their model here and brings the activations to the lake:

>>> activations = extract_features(my_model, "laion_fmri_images/", layers=["layer4"])
>>> lake.write_features("my_model", "layer4", activations["layer4"])

``my_model`` is any callable ``images -> {layer: array of shape (n_images, ...)}`` (a torch hook
wrapper, a JAX function, a plain numpy function); this module imports no framework.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# the layer name given to a model that returns one array instead of a mapping
SINGLE_OUTPUT = "output"


def list_images(image_dir: str | Path, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly under ``image_dir`` (by suffix, case-insensitive), sorted by name."""
    folder = Path(image_dir)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of images")
    wanted = {s.lower() for s in suffixes}
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in wanted), key=lambda p: p.name)


def load_image_rgb(path: Path) -> Any:
    """The default loader: a ``PIL.Image.Image`` in RGB, fully read (the file is closed)."""
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("loading images needs Pillow (pip install pillow), or pass image_loader=") from error
    with Image.open(path) as image:
        return image.convert("RGB")


def as_numpy(values: Any) -> np.ndarray:
    """numpy array from numpy, a torch tensor (on any device) or anything ``np.asarray`` takes."""
    if hasattr(values, "detach"):  # torch: leave the graph and the GPU
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def extract_features(
    model_fn: Callable[[list[Any]], Mapping[str, Any] | Any],
    image_dir: str | Path,
    layers: Iterable[str] | None = None,
    batch_size: int = 32,
    progress: bool = True,
    image_loader: Callable[[Path], Any] | None = None,
    dtype: Any = np.float32,
) -> dict[str, xr.DataArray]:
    """Activations of ``model_fn`` on every image of ``image_dir``, one DataArray per layer.

    Parameters
    ----------
    model_fn : callable
        ``model_fn(images) -> {layer: array of shape (n_images, ...)}``, where ``images`` is a list
        of what ``image_loader`` returns (default: RGB ``PIL.Image`` objects), in file-name order.
        Returning a single array instead of a mapping names its layer ``"output"``. Arrays may be
        numpy arrays or torch tensors.
    image_dir : str or Path
        Folder of images (not searched recursively). The stimulus id of an image is its file name
        (as the dataset's trial tables label trials).
    layers : iterable of str, optional
        Layers to keep (default: every layer ``model_fn`` returns); a missing one is an error.
    batch_size : int
        Images per call of ``model_fn``.
    progress : bool
        Show a tqdm progress bar over images.
    image_loader : callable, optional
        ``image_loader(path) -> image``; default :func:`load_image_rgb` (needs Pillow).
    dtype : numpy dtype
        Dtype of the returned activations (float32 by default: half the bytes of float64).

    Returns
    -------
    dict of layer -> xarray.DataArray of shape (n_images, n_features)
        Each image's activations flattened (C-order), ``stimulus_id`` = file name; attrs record
        the image folder, the number of images and the date.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    paths = list_images(image_dir)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    loader = image_loader or load_image_rgb
    wanted = None if layers is None else list(layers)
    collected: dict[str, list[np.ndarray]] = {}
    from tqdm.auto import tqdm

    with tqdm(total=len(paths), desc="extracting features", unit="image", disable=not progress) as bar:
        for batch in _batches(paths, batch_size):
            outputs = model_fn([loader(path) for path in batch])
            if not isinstance(outputs, Mapping):
                outputs = {SINGLE_OUTPUT: outputs}
            missing = [name for name in (wanted or []) if name not in outputs]
            if missing:
                raise KeyError(f"model_fn returned no layer(s) {missing}; it returned {sorted(map(str, outputs))}")
            for name in wanted or list(outputs):
                values = as_numpy(outputs[name])
                if values.ndim == 0 or values.shape[0] != len(batch):
                    raise ValueError(f"layer {name!r}: model_fn returned shape {values.shape} for a batch of {len(batch)} images; "
                                     "the first axis must be the image")
                values = values.reshape(len(batch), -1).astype(dtype, copy=False)
                previous = collected.setdefault(str(name), [])
                if previous and previous[0].shape[1] != values.shape[1]:
                    raise ValueError(f"layer {name!r}: {values.shape[1]} features per image in this batch, {previous[0].shape[1]} before "
                                     "(do the images need resizing to one size?)")
                previous.append(values)
            bar.update(len(batch))
    ids = np.asarray([path.name for path in paths])
    attrs = {"image_dir": str(Path(image_dir).resolve()), "n_images": len(paths),
             "extracted": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return {
        name: xr.DataArray(np.concatenate(blocks), dims=("stimulus_id", "feature"), coords={"stimulus_id": ids},
                           name="activations", attrs={**attrs, "layer": name})
        for name, blocks in collected.items()
    }


__all__ = ["IMAGE_SUFFIXES", "extract_features", "list_images", "load_image_rgb"]
