"""Layers by module name: list them, pick them by name or pattern, record their outputs with forward hooks.

A layer is a submodule's name as ``module.named_modules()`` gives it (``features.5``,
``layer4.2.relu``, ``blocks.3``), the names Brain-Score's layer maps use. Its activation is the
module's output for one forward pass, copied when the hook runs (torchvision's AlexNet and ResNet
apply ``ReLU(inplace=True)`` to conv and batch-norm outputs, which would otherwise overwrite them);
a module called more than once in a pass (torchvision's ResNet blocks reuse one ``relu``) keeps its
last call, as Brain-Score's PyTorch wrapper does. Tuple outputs keep their first tensor.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from difflib import get_close_matches
from typing import Any

from laion_lake.models.zoo import ModelSpecError

PATTERN_CHARS = set("*?[")


def list_layers(module: Any) -> list[str]:
    """Every submodule's name, in registration (roughly execution) order; the root is left out."""
    return [name for name, _ in module.named_modules() if name]


def resolve_layers(module: Any, requested: Iterable[str], model: str = "the model") -> list[str]:
    """Layer names from names and glob patterns (``layer*``, ``features.?``), in the model's order, once each.

    Raises
    ------
    ModelSpecError
        A name the model does not have (with close matches), or a pattern that matches nothing.
    """
    names = list_layers(module)
    chosen: set[str] = set()
    for item in requested:
        item = item.strip()
        if not item:
            continue
        if PATTERN_CHARS & set(item):
            matched = fnmatch.filter(names, item)
            if not matched:
                raise ModelSpecError(f"{model}: no layer matches {item!r} (see --list-layers; {len(names)} layers)")
            chosen.update(matched)
        elif item in names:
            chosen.add(item)
        else:
            close = get_close_matches(item, names, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ModelSpecError(f"{model}: no layer {item!r}{hint} (see --list-layers)")
    if not chosen:
        raise ModelSpecError(f"{model}: no layers requested")
    return [name for name in names if name in chosen]


def _first_tensor(output: Any) -> Any:
    if isinstance(output, (tuple, list)):
        return next((_first_tensor(o) for o in output if _first_tensor(o) is not None), None)
    return output if hasattr(output, "detach") else None


class LayerRecorder:
    """Forward hooks on the named layers; ``outputs`` holds each one's last output of the pass.

    >>> with LayerRecorder(module, ["features.5"]) as recorder:
    ...     module(batch)
    ...     recorder.outputs["features.5"].shape
    """

    def __init__(self, module: Any, layers: Sequence[str]) -> None:
        self.module, self.layers = module, list(layers)
        self.outputs: dict[str, Any] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> LayerRecorder:
        modules = dict(self.module.named_modules())
        for name in self.layers:
            self._handles.append(modules[name].register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name: str) -> Any:
        def record(_module: Any, _inputs: Any, output: Any) -> None:
            tensor = _first_tensor(output)
            if tensor is None:
                raise ModelSpecError(f"layer {name!r} returned {type(output).__name__}, not a tensor; pick another layer")
            # a copy: a later in-place op (ReLU(inplace=True) after a conv or batch norm) would change it otherwise
            self.outputs[name] = tensor.detach().clone()

        return record

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def run(self, batch: Any) -> dict[str, Any]:
        """One forward pass; each layer's output flattened per stimulus, shape (n_images, n_features), float32."""
        self.outputs.clear()
        self.module(batch)
        missing = [name for name in self.layers if name not in self.outputs]
        if missing:
            raise ModelSpecError(f"layers {missing} were not called in the forward pass (modules outside it); pick others")
        return {name: self.outputs[name].reshape(batch.shape[0], -1).float() for name in self.layers}


__all__ = ["LayerRecorder", "list_layers", "resolve_layers"]
