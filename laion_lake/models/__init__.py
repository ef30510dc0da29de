"""Models in: torchvision and timm models by name, their layers' activations on the benchmarks' stimuli, layer commitment.

>>> from laion_lake.models import extract_model_features, sweep_layers, commit_layers
>>> extract_model_features("lake/", "torchvision:alexnet", ["features.5"], images="stimuli/", weights="none")
>>> sweep_layers("lake/", "torchvision:resnet50", ["layer*"], images="stimuli/task-images_stimuli.h5")
>>> commit_layers("lake/", "torchvision:resnet50@random-s0").layers
{'V1': 'layer1', 'V2': 'layer2', 'V4': 'layer3', 'IT': 'layer4'}

Modules: :mod:`~laion_lake.models.zoo` (loading, weights identity, preprocessing),
:mod:`~laion_lake.models.layers` (names, patterns, hooks), :mod:`~laion_lake.models.extract`
(batched, deterministic, streamed extraction with provenance), :mod:`~laion_lake.models.commit`
(commitment split, region-to-layer map), :mod:`~laion_lake.models.sweep` (extract and score many
layers), :mod:`~laion_lake.models.cli` (``laion-lake sweep|commit-layers``). Needs the ``models``
extra (torch, torchvision, timm, h5py); importing this package imports none of them.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "extract_model_features": "laion_lake.models.extract",
    "describe_layers": "laion_lake.models.extract",
    "ExtractionRun": "laion_lake.models.extract",
    "ExtractedLayer": "laion_lake.models.extract",
    "ProvenanceConflictError": "laion_lake.models.extract",
    "load_model": "laion_lake.models.zoo",
    "LoadedModel": "laion_lake.models.zoo",
    "ModelSpecError": "laion_lake.models.zoo",
    "list_layers": "laion_lake.models.layers",
    "resolve_layers": "laion_lake.models.layers",
    "commit_layers": "laion_lake.models.commit",
    "read_layer_commitment": "laion_lake.models.commit",
    "LayerCommitment": "laion_lake.models.commit",
    "committed_leaderboard_row": "laion_lake.models.commit",
    "sweep_layers": "laion_lake.models.sweep",
}


def __getattr__(name: str) -> Any:
    # lazy: `import laion_lake.models` must not import torch
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'laion_lake.models' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
