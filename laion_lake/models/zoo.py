"""Models by name from torchvision and timm, with their weights' identity and their own preprocessing.

``torchvision:NAME`` is ``torchvision.models.get_model(NAME)``; ``timm:NAME`` is
``timm.create_model(NAME)``. Weights:

``none``     random initialisation from ``torch.manual_seed(seed)``; the standard ImageNet
             preprocessing (resize 256, centre crop 224, bilinear, ImageNet mean and std)
``default``  the library's default pretrained weights (torchvision's ``DEFAULT`` enum, timm's
             default pretrained tag), read from the library's cache (downloaded by the library
             the first time, as it always does); preprocessing from those weights
``PATH``     a state dict (``.pt``/``.pth`` via ``torch.load(weights_only=True)``, or
             ``.safetensors``); preprocessing from the architecture's default weights' metadata

Every loaded model carries ``weights`` (source, name, seed, sha256 of the state dict's tensors,
sha256 of the file), ``preprocessing`` (resize, crop, image size, interpolation, mean, std and the
transform's own description) and ``versions`` of the libraries involved: what provenance records.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Callable

from laion_lake.errors import LakeError

LIBRARIES = ("torchvision", "timm")
NO_WEIGHTS, DEFAULT_WEIGHTS = "none", "default"
# the standard ImageNet evaluation preprocessing, for random weights (Brain-Score's default too)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_RESIZE, IMAGENET_CROP = 256, 224


class ModelSpecError(LakeError, ValueError):
    """A model name, weights setting or layer names nothing the library defines (the message lists choices)."""


@dataclass
class LoadedModel:
    """A model ready to run: the torch module (eval mode), its transform, and what identifies them."""

    library: str
    architecture: str
    module: Any
    transform: Callable[[Any], Any]
    weights: dict[str, Any]
    preprocessing: dict[str, Any]
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.library}:{self.architecture}"

    @property
    def weights_tag(self) -> str:
        """Short weights label for the lake's model name: ``random-s0``, ``IMAGENET1K_V1`` (timm: its pretrained tag), ``<file stem>-<sha8>``."""
        source = self.weights["source"]
        if source == NO_WEIGHTS:
            return f"random-s{self.weights['seed']}"
        if source == DEFAULT_WEIGHTS:
            return str(self.weights.get("tag") or self.weights["name"])
        return f"{Path(source).stem}-{self.weights['file_sha256'][:8]}"


def parse_model(model: str) -> tuple[str, str]:
    """``("torchvision", "alexnet")`` from ``"torchvision:alexnet"``."""
    library, sep, architecture = model.partition(":")
    if not sep or library not in LIBRARIES or not architecture:
        raise ModelSpecError(f"model {model!r}: expected LIBRARY:NAME with LIBRARY one of {', '.join(LIBRARIES)} (e.g. torchvision:alexnet, timm:resnet18)")
    return library, architecture


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def library_versions(library: str) -> dict[str, str]:
    """Versions of every package whose code shapes the activations."""
    names = ["torch", "torchvision", "pillow", "numpy", "laion-lake"] + (["timm"] if library == "timm" else [])
    return {name: _version(name) for name in names}


def state_dict_sha256(module: Any) -> str:
    """sha256 over the state dict (names, dtypes, shapes, bytes, sorted by name): the weights' identity."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def require_libraries(library: str) -> None:
    """Import torch, torchvision (and timm for ``timm:``), or one line saying how to install them."""
    import importlib

    for package in ("torch", "torchvision", *(("timm",) if library == "timm" else ())):
        try:
            importlib.import_module(package)
        except ImportError as error:
            raise ModelSpecError(f"{library}: models need the 'models' extra ({package} failed to import: {error}); "
                                 "pip install 'laion-lake[models]' (README, Models)") from error


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of a checkpoint: ``.safetensors``, or a (possibly wrapped) state dict saved by ``torch.save``."""
    path = Path(path)
    if not path.is_file():
        raise ModelSpecError(f"--weights {path}: no such file (use none, default or a state-dict path)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a file that is not a checkpoint
        raise ModelSpecError(f"--weights {path}: not a torch checkpoint ({type(error).__name__}: {error})") from error
    for key in ("state_dict", "model"):  # common wrappers of training scripts
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelSpecError(f"--weights {path}: holds a {type(state).__name__}, not a state dict")
    return state


def _apply_state_dict(module: Any, path: str | Path) -> None:
    try:
        module.load_state_dict(load_state_dict(path), strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ModelSpecError(f"--weights {path}: does not fit the architecture ({first})") from error


def _interpolation_name(value: Any) -> str:
    return str(getattr(value, "value", value))


def _torchvision_preprocessing(preset: Any) -> dict[str, Any]:
    crop = list(preset.crop_size)
    return {
        "resize": list(preset.resize_size),
        "crop": crop,
        "image_size": crop * (2 if len(crop) == 1 else 1),
        "interpolation": _interpolation_name(preset.interpolation),
        "antialias": preset.antialias,
        "mean": [float(v) for v in preset.mean],
        "std": [float(v) for v in preset.std],
        "transform": " ".join(repr(preset).split()),
    }


def _standard_torchvision_preset() -> Any:
    # the class torchvision's classification weights return from .transforms(); defaults: resize 256, crop 224
    from torchvision.transforms._presets import ImageClassification

    return ImageClassification(crop_size=IMAGENET_CROP, resize_size=IMAGENET_RESIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD)


def _torchvision_weights_enum(architecture: str) -> Any:
    import torchvision.models as models

    try:
        return models.get_model_weights(architecture)
    except (ValueError, KeyError):
        return None


def _seeded(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def load_torchvision(architecture: str, weights: str, seed: int) -> LoadedModel:
    import torchvision.models as models

    names = models.list_models()
    if architecture not in names:
        close = get_close_matches(architecture, names, n=3)
        raise ModelSpecError(f"torchvision has no model {architecture!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    enum = _torchvision_weights_enum(architecture)
    if weights == DEFAULT_WEIGHTS:
        if enum is None:
            raise ModelSpecError(f"torchvision:{architecture} has no pretrained weights; use --weights none or a PATH")
        chosen = enum.DEFAULT
        module = models.get_model(architecture, weights=chosen)
        preset = chosen.transforms()
        identity: dict[str, Any] = {"source": DEFAULT_WEIGHTS, "name": f"{type(chosen).__name__}.{chosen.name}", "tag": chosen.name,
                                    "url": chosen.url}
    else:
        _seeded(seed)
        module = models.get_model(architecture, weights=None)
        if weights == NO_WEIGHTS:
            preset = _standard_torchvision_preset()
            identity = {"source": NO_WEIGHTS, "name": NO_WEIGHTS, "seed": seed}
        else:
            _apply_state_dict(module, weights)
            preset = enum.DEFAULT.transforms() if enum is not None else _standard_torchvision_preset()
            identity = {"source": str(Path(weights).resolve()), "name": Path(weights).name, "file_sha256": file_sha256(weights)}
    module.eval()
    identity["sha256"] = state_dict_sha256(module)
    return LoadedModel("torchvision", architecture, module, preset, identity, _torchvision_preprocessing(preset), library_versions("torchvision"))


def _timm_preprocessing(config: dict[str, Any], transform: Any) -> dict[str, Any]:
    import math

    size = list(config["input_size"][1:])
    crop_pct = float(config.get("crop_pct") or 1.0)
    resize = [math.floor(s / crop_pct) for s in size] if config.get("crop_mode", "center") == "center" else size
    return {
        "resize": resize,
        "crop": size,
        "image_size": size,
        "crop_pct": crop_pct,
        "crop_mode": config.get("crop_mode", "center"),
        "interpolation": str(config["interpolation"]),
        "mean": [float(v) for v in config["mean"]],
        "std": [float(v) for v in config["std"]],
        "transform": " ".join(repr(transform).split()),
    }


def load_timm(architecture: str, weights: str, seed: int) -> LoadedModel:
    import timm
    from timm.data import create_transform, resolve_model_data_config

    if not timm.is_model(architecture):
        close = get_close_matches(architecture, timm.list_models(), n=3)
        raise ModelSpecError(f"timm has no model {architecture!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    if weights == DEFAULT_WEIGHTS:
        module = timm.create_model(architecture, pretrained=True)
        tag = module.pretrained_cfg.get("tag") or ""
        identity: dict[str, Any] = {"source": DEFAULT_WEIGHTS, "name": f"{architecture}.{tag}" if tag else architecture,
                                    "tag": tag or "default", "hf_hub_id": module.pretrained_cfg.get("hf_hub_id")}
        config = resolve_model_data_config(module)
    else:
        _seeded(seed)
        module = timm.create_model(architecture, pretrained=False)
        if weights == NO_WEIGHTS:
            identity = {"source": NO_WEIGHTS, "name": NO_WEIGHTS, "seed": seed}
            config = {"input_size": (3, IMAGENET_CROP, IMAGENET_CROP), "interpolation": "bilinear", "mean": IMAGENET_MEAN,
                      "std": IMAGENET_STD, "crop_pct": IMAGENET_CROP / IMAGENET_RESIZE, "crop_mode": "center"}
        else:
            _apply_state_dict(module, weights)
            identity = {"source": str(Path(weights).resolve()), "name": Path(weights).name, "file_sha256": file_sha256(weights)}
            config = resolve_model_data_config(module)
    module.eval()
    transform = create_transform(**config, is_training=False)
    identity["sha256"] = state_dict_sha256(module)
    return LoadedModel("timm", architecture, module, transform, identity, _timm_preprocessing(config, transform), library_versions("timm"))


def load_model(model: str, weights: str = NO_WEIGHTS, seed: int = 0) -> LoadedModel:
    """Load ``library:name`` with ``weights`` (``none``, ``default`` or a state-dict path), in eval mode on the CPU.

    Raises
    ------
    ModelSpecError
        Unknown library or model (with close matches), or weights that do not fit.
        Also when torch / torchvision / timm do not import (``pip install 'laion-lake[models]'``).
    """
    library, architecture = parse_model(model)
    require_libraries(library)
    loader = load_torchvision if library == "torchvision" else load_timm
    return loader(architecture, weights, seed)


__all__ = ["LIBRARIES", "LoadedModel", "ModelSpecError", "library_versions", "load_model", "parse_model", "state_dict_sha256"]
