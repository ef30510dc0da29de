"""From a model name to feature sets in the lake: the benchmarks' stimuli, batched, deterministic, streamed.

>>> from laion_lake.models import extract_model_features
>>> results = extract_model_features("lake/", "torchvision:alexnet", ["features.5"], images="stimuli/", weights="none")
>>> results[0].status, results[0].model, results[0].n_features
('written', 'torchvision:alexnet@random-s0', 43264)

Only the stimuli some benchmark reads are extracted (in sorted id order); a needed id the source
lacks is an error naming it. Every layer streams into the lake as batches finish
(:mod:`laion_lake.features.stream`). Each feature set's provenance names the model, the weights
(sha256 of their tensors), library versions, preprocessing, layer and the images (sha256 of their
bytes); its ``identity_sha256`` hashes those, and a feature set with the same identity is not
extracted again.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laion_lake.errors import LakeError, StoreExistsError
from laion_lake.features.images import ImageSource, open_images, select_stimuli
from laion_lake.features.stream import DEFAULT_BUFFER_BYTES, FeatureStreamWriter, write_feature_streams
from laion_lake.models.layers import LayerRecorder, list_layers, resolve_layers
from laion_lake.models.zoo import NO_WEIGHTS, LoadedModel, load_model

# torch intra-op threads during extraction: a fixed count, so the same inputs give the same bits
DEFAULT_THREADS = 2
DEFAULT_BATCH_SIZE = 32
# threads decoding and transforming images ahead of the model (order kept: output does not depend on it)
DEFAULT_LOADERS = 2
# provenance fields that say what the activations are (not when, where or how fast they were made)
IDENTITY_FIELDS = ("model", "weights_sha256", "versions", "preprocessing", "layer", "stimuli_sha256", "dtype", "flatten")


class ProvenanceConflictError(LakeError, FileExistsError):
    """A feature set of that name exists with a different provenance; the message names what differs."""


@dataclass
class ExtractedLayer:
    """What :func:`extract_model_features` did for one layer."""

    model: str
    layer: str
    status: str  # "written", "overwritten" or "skipped" (same provenance already in the lake)
    n_stimuli: int
    n_features: int
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExtractionRun:
    """Every layer's outcome, plus what the pass cost."""

    layers: list[ExtractedLayer]
    n_images: int = 0
    n_skipped_ids: int = 0
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.seconds if self.seconds else float("nan")


def default_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def deterministic_torch(threads: int) -> Iterator[None]:
    """Deterministic algorithms, no cuDNN autotuning, a fixed thread count; the previous settings come back after."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, needed before CUDA work
    previous = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.set_num_threads(previous[0])
        torch.use_deterministic_algorithms(previous[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[2], previous[3]


def identity_sha256(provenance: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the provenance fields that define the activations."""
    identity = {key: provenance[key] for key in IDENTITY_FIELDS}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def feature_provenance(loaded: LoadedModel, layer: str, source: ImageSource, n_stimuli: int, stimuli_sha256: str) -> dict[str, Any]:
    """The provenance of one extracted layer (JSON-able), with its ``identity_sha256``."""
    provenance: dict[str, Any] = {
        "extractor": "laion_lake.models",
        "model": loaded.name,
        "weights": dict(loaded.weights),
        "weights_sha256": loaded.weights["sha256"],
        "versions": dict(loaded.versions),
        "preprocessing": dict(loaded.preprocessing),
        "layer": layer,
        "stimuli": {"source": source.location, "kind": source.kind, "n": n_stimuli},
        "stimuli_sha256": stimuli_sha256,
        "dtype": "float32",
        "flatten": "per stimulus, C-order over the layer output's non-batch axes",
    }
    provenance["identity_sha256"] = identity_sha256(provenance)
    return provenance


def provenance_difference(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Identity fields (dotted one level down) whose values differ."""
    differ = []
    for key in IDENTITY_FIELDS:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differ += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            differ.append(key)
    return differ


def needed_ids(lake: Any, benchmarks: Iterable[str] | None) -> tuple[np.ndarray, str]:
    """Every stimulus id the benchmarks read (default: the 24 leaderboard ones), and a label for messages."""
    from laion_lake.benchmarks import list_benchmarks
    from laion_lake.features.add import needed_stimuli

    chosen = list(benchmarks) if benchmarks else list_benchmarks()
    parts = [needed_stimuli(lake, b) for b in chosen]
    ids = np.unique(np.concatenate(parts)) if parts else np.array([], dtype=str)
    label = f"the {len(chosen)} headline benchmarks" if not benchmarks else ", ".join(chosen)
    return ids, label


def _batches(ids: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _prepared_batches(loaded: LoadedModel, source: ImageSource, ids: np.ndarray, batch_size: int, device: str,
                      loaders: int) -> Iterator[tuple[np.ndarray, Any]]:
    """(batch ids, preprocessed tensor) in order; ``loaders`` threads decode and transform the next batch
    while the model runs on this one (at most two batches prepared ahead: bounded memory)."""
    import collections
    from concurrent.futures import ThreadPoolExecutor

    import torch

    def prepare(stimulus_id: str) -> Any:
        return loaded.transform(source.load(str(stimulus_id)))

    with ThreadPoolExecutor(max_workers=max(1, loaders), thread_name_prefix="laion-lake-images") as pool:
        pending: collections.deque = collections.deque()
        batches = _batches(ids, batch_size)
        for batch_ids in batches:
            pending.append((batch_ids, [pool.submit(prepare, i) for i in batch_ids]))
            if len(pending) < 2:
                continue
            done_ids, futures = pending.popleft()
            yield done_ids, torch.stack([f.result() for f in futures]).to(device)
        while pending:
            done_ids, futures = pending.popleft()
            yield done_ids, torch.stack([f.result() for f in futures]).to(device)


def _decide(lake: Any, name: str, layer: str, provenance: dict[str, Any], overwrite: bool) -> str:
    """``write``, ``overwrite`` or ``skip`` for one layer, or a :class:`ProvenanceConflictError`."""
    entry = lake.manifest.get("features", {}).get(f"{name}/{layer}")
    if entry is None:
        return "write"
    old = entry.get("provenance") or {}
    if old.get("identity_sha256") == provenance["identity_sha256"] and not overwrite:
        return "skip"
    if overwrite:
        return "overwrite"
    differ = provenance_difference(old, provenance) or ["(no extraction provenance recorded)"]
    raise ProvenanceConflictError(
        f"feature set {name}/{layer} exists with a different provenance (differs in {', '.join(differ)}); "
        "pass --overwrite to replace it or --name for a new feature set"
    )


def extract_model_features(
    lake: Any,
    model: str | LoadedModel,
    layers: Iterable[str],
    images: str,
    weights: str = NO_WEIGHTS,
    metadata: str | None = None,
    benchmarks: Iterable[str] | None = None,
    name: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
    seed: int = 0,
    threads: int = DEFAULT_THREADS,
    loaders: int = DEFAULT_LOADERS,
    overwrite: bool = False,
    progress: bool = True,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
) -> ExtractionRun:
    """Extract layers of a torchvision or timm model on the benchmarks' stimuli and write them to the lake.

    Parameters
    ----------
    lake : Lake or str
        The lake (or its URL); it needs a stimulus table and splits.
    model : str or LoadedModel
        ``torchvision:NAME`` or ``timm:NAME`` (or a model already loaded with :func:`load_model`).
    layers : iterable of str
        Module names or glob patterns (see :func:`laion_lake.models.layers.resolve_layers`).
    images : str
        A folder of images named by stimulus id, or the release's ``task-images_stimuli.h5``.
    weights : str
        ``none`` (random, seeded), ``default`` or a state-dict path.
    metadata : str, optional
        The ``.h5``'s metadata table (default ``task-images_metadata.csv`` beside it).
    benchmarks : iterable of str, optional
        Whose stimuli to extract (default: the 24 leaderboard benchmarks').
    name : str, optional
        The lake's model name; default ``library:arch@weights`` (e.g. ``torchvision:alexnet@random-s0``).
    batch_size, device, seed, threads :
        Images per forward pass; ``cpu``/``cuda`` (default: a GPU when present); the seed of
        random weights; torch's thread count (fixed, for bit-identical output).
    loaders : int
        Threads decoding and preprocessing the next batch while the model runs.
    overwrite : bool
        Replace a feature set of the same name whatever its provenance.
    buffer_bytes : int
        Rows of one layer gathered before each write to the lake (memory per layer).

    Returns
    -------
    ExtractionRun
        One :class:`ExtractedLayer` per layer (written, overwritten or skipped).

    Raises
    ------
    ImageSourceError
        The source lacks stimuli a benchmark needs (one line naming them).
    ProvenanceConflictError
        A feature set of that name holds activations of a different provenance.
    ModelSpecError
        Unknown model, weights or layer.
    """
    from tqdm.auto import tqdm

    from laion_lake.lake import Lake, open_lake

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lake = lake if isinstance(lake, Lake) else open_lake(str(lake))
    needed, needed_by = needed_ids(lake, benchmarks)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, weights, seed)
    import torch

    chosen = resolve_layers(loaded.module, layers, loaded.name)
    name = name or f"{loaded.name}@{loaded.weights_tag}"
    device = device or default_device()
    started = time.perf_counter()
    with open_images(images, metadata, wanted=needed) as source:
        ids, n_unneeded = select_stimuli(source, needed, needed_by)
        stimuli_sha256 = source.digest(ids)
        provenances = {layer: feature_provenance(loaded, layer, source, len(ids), stimuli_sha256) for layer in chosen}
        order = {layer: i for i, layer in enumerate(list_layers(loaded.module))}
        decisions = {layer: _decide(lake, name, layer, provenances[layer], overwrite) for layer in chosen}
        results = {layer: ExtractedLayer(name, layer, "skipped", len(ids), int(lake.manifest["features"][f"{name}/{layer}"]["n_features"]),
                                         provenances[layer]) for layer in chosen if decisions[layer] == "skip"}
        todo = [layer for layer in chosen if decisions[layer] != "skip"]
        if todo:
            module = loaded.module.to(device)
            with deterministic_torch(threads), torch.inference_mode(), LayerRecorder(module, todo) as recorder:
                batches = _prepared_batches(loaded, source, ids, batch_size, device, loaders)
                first_ids, first_batch = next(batches)
                first = recorder.run(first_batch)
                run_info = {"device": device, "threads": threads, "batch_size": batch_size,
                            "extracted": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
                writers = [FeatureStreamWriter(name, layer, ids, first[layer].shape[1],
                                               {**provenances[layer], **run_info, "layer_index": order[layer]}, buffer_bytes)
                           for layer in todo]

                def fill() -> None:
                    with tqdm(total=len(ids), desc=f"extracting {name}", unit="image", disable=not progress) as bar:
                        for writer in writers:
                            writer.append(first[writer.layer].cpu().numpy())
                        first.clear()  # one batch of a wide layer is large: not kept for the whole pass
                        bar.update(len(first_ids))
                        for batch_ids, batch in batches:
                            outputs = recorder.run(batch)
                            for writer in writers:
                                writer.append(outputs[writer.layer].cpu().numpy())
                            bar.update(len(batch_ids))

                try:
                    write_feature_streams(lake, writers, fill, overwrite=any(decisions[layer] == "overwrite" for layer in todo))
                except StoreExistsError as error:  # a store without a manifest entry (written outside the lake's API)
                    raise ProvenanceConflictError(f"{error}; pass --overwrite to replace it") from error
            for writer in writers:
                status = "overwritten" if decisions[writer.layer] == "overwrite" else "written"
                results[writer.layer] = ExtractedLayer(name, writer.layer, status, len(ids), writer.n_features, writer.provenance)
    seconds = time.perf_counter() - started
    return ExtractionRun([results[layer] for layer in chosen], len(ids) if todo else 0, n_unneeded, seconds)


def describe_layers(loaded: LoadedModel, threads: int = DEFAULT_THREADS) -> list[tuple[str, str, int]]:
    """(name, module type, features per image) of every layer, from one forward pass of a blank image."""
    import torch
    from PIL import Image

    names = list_layers(loaded.module)
    size = loaded.preprocessing["image_size"]
    blank = loaded.transform(Image.new("RGB", (int(size[-1]), int(size[0])), (128, 128, 128)))[None]
    modules = dict(loaded.module.named_modules())
    widths: dict[str, int] = {}
    hooks = []
    for layer in names:
        def record(_m: Any, _i: Any, output: Any, layer: str = layer) -> None:
            tensor = output[0] if isinstance(output, (tuple, list)) and output else output
            if hasattr(tensor, "numel"):
                widths[layer] = int(tensor.numel() // max(1, tensor.shape[0])) if tensor.ndim else 1
        hooks.append(modules[layer].register_forward_hook(record))
    try:
        with deterministic_torch(threads), torch.inference_mode():
            loaded.module.cpu()(blank)
    finally:
        for hook in hooks:
            hook.remove()
    return [(layer, type(modules[layer]).__name__, widths.get(layer, 0)) for layer in names]


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_THREADS",
    "ExtractedLayer",
    "ExtractionRun",
    "ProvenanceConflictError",
    "default_device",
    "describe_layers",
    "deterministic_torch",
    "extract_model_features",
    "feature_provenance",
    "identity_sha256",
    "needed_ids",
]
