"""Layer commitment: one layer per region, chosen without touching test data, stored in the lake.

For every region of the headline regression benchmarks (V1, V2, V4, IT), each candidate layer is
scored on a **commitment split nested inside each benchmark's training set**: the train ids of
the benchmark's (pool, split), per subject, are permuted with a seeded generator
(``numpy.random.default_rng([seed, crc32(pool/split)])``) and cut into a fit part (80 %) and a
validation part (20 %). The benchmark's own metric (ridge CV over its alphas, its voxel filter and
ceiling convention) is fitted on the fit part and scored on the validation part. A layer's
commitment score in a region is the mean of those ceiled scores over the region's benchmarks and
their subjects; the committed layer is the best one (the first in model order on a tie). The test
ids of every split are never read.

The region-to-layer map is kept in the lake's manifest provenance (``layer_commitments``, one
entry per model: layers, the per-layer commitment scores, the split rule and seed); read it with
:func:`read_layer_commitment`. A model's leaderboard row is the score of its committed layer on
each benchmark (:func:`committed_leaderboard_row`), as Brain-Score's region-layer map gives.
"""

from __future__ import annotations

import datetime as _dt
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laion_lake.errors import LakeError

COMMITMENTS_KEY = "layer_commitments"
COMMIT_FRACTION = 0.8  # of each benchmark's train set used to fit; the rest validates
DEFAULT_SEED = 0
SPLIT_RULE = ("per (benchmark pool, split) and subject: the benchmark's train ids, permuted by "
              "numpy.random.default_rng([seed, crc32('pool/split')]), first 80% fit, last 20% validate; test ids never read")


class NoCommitmentError(LakeError, KeyError):
    """The lake holds no committed layers for a model (run ``laion-lake commit-layers``)."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class LayerCommitment:
    """One model's region-to-layer map and the evidence for it.

    Attributes
    ----------
    model : str
    layers : dict of region -> layer
    scores : dict of region -> {layer: mean ceiled score on the commitment split}
    benchmarks : dict of region -> benchmark keys whose train sets were used
    seed, fraction, rule, committed :
        How the commitment split was made, and when.
    """

    model: str
    layers: dict[str, str]
    scores: dict[str, dict[str, float]]
    benchmarks: dict[str, list[str]]
    seed: int = DEFAULT_SEED
    fraction: float = COMMIT_FRACTION
    rule: str = SPLIT_RULE
    committed: str = ""
    feature_sets: dict[str, str] = field(default_factory=dict)  # layer -> identity_sha256 of the feature set

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "scores": self.scores, "benchmarks": self.benchmarks, "seed": self.seed,
                "fraction": self.fraction, "rule": self.rule, "committed": self.committed, "feature_sets": self.feature_sets}

    @classmethod
    def from_dict(cls, model: str, data: Mapping[str, Any]) -> LayerCommitment:
        return cls(model, dict(data["layers"]), {r: dict(s) for r, s in data["scores"].items()},
                   {r: list(b) for r, b in data["benchmarks"].items()}, int(data["seed"]), float(data["fraction"]),
                   str(data["rule"]), str(data.get("committed", "")), dict(data.get("feature_sets", {})))

    def profile(self, region: str) -> list[tuple[str, float, bool]]:
        """(layer, commitment score, is committed) in the model's layer order: the score-vs-layer profile."""
        return [(layer, value, layer == self.layers[region]) for layer, value in self.scores[region].items()]


def commitment_split(train_ids: np.ndarray, pool: str, split: str, seed: int = DEFAULT_SEED,
                     fraction: float = COMMIT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(fit_ids, validation_ids), each sorted, from one benchmark split's train ids only."""
    train_ids = np.sort(np.asarray(train_ids).astype(str))
    rng = np.random.default_rng([seed, zlib.crc32(f"{pool}/{split}".encode())])
    order = rng.permutation(len(train_ids))
    n_fit = int(round(fraction * len(train_ids)))
    if n_fit < 2 or len(train_ids) - n_fit < 2:
        raise ValueError(f"pool {pool!r} split {split!r}: {len(train_ids)} train stimuli are too few for a commitment split")
    return np.sort(train_ids[order[:n_fit]]), np.sort(train_ids[order[n_fit:]])


def region_benchmarks(benchmarks: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """The regression benchmarks (default: the headline ones) grouped by region."""
    from laion_lake.benchmarks import list_benchmarks, load_benchmark

    grouped: dict[str, list[Any]] = defaultdict(list)
    for key in list(benchmarks) if benchmarks else list_benchmarks():
        spec = load_benchmark(key)
        if spec.kind == "regression" and spec.split is not None:
            grouped[spec.region].append(spec)
    return dict(grouped)


def _commitment_scores(lake: Any, model: str, layers: list[str], specs_by_region: Mapping[str, list[Any]], seed: int,
                       fraction: float) -> dict[str, dict[str, float]]:
    """Mean ceiled commitment-split score per region and layer.

    Work is grouped by (pool, split): its commitment split is cut once, every layer's kernel on it is
    eigendecomposed once, and each (subject, region)'s responses are read once and fitted by every
    layer; only one (pool, split)'s decompositions are held at a time.
    """
    from laion_lake.compute.correlation import pearson_r_per_column
    from laion_lake.compute.kernel import compute_centered_linear_kernels
    from laion_lake.compute.ridge import eigendecompose_centered_kernel
    from laion_lake.scoring.units import FEATURE_CHUNK_SIZE, regression_ceiled

    groups: dict[tuple[str, str], list[tuple[str, Any, str]]] = defaultdict(list)
    for region, specs in specs_by_region.items():
        for spec in specs:
            for subject in spec.subjects:
                if subject in lake.subjects:
                    groups[(spec.pool_for(subject), spec.folds[0])].append((region, spec, subject))
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # each (subject, region)'s repeat-averaged responses over all its stimuli, read once and kept (float32:
    # about 150 MB per subject at the real dataset's size), then indexed by every split that needs them
    responses_of: dict[tuple[str, str, Any, str], Any] = {}
    for (pool, split), cells in sorted(groups.items()):
        train_ids, _ = lake.split(pool, split)  # the test ids are never used
        fit, validate = commitment_split(train_ids, pool, split, seed, fraction)
        decompositions = {}
        for layer in layers:
            X_fit = np.asarray(lake.features(model, layer, fit).values)
            X_val = np.asarray(lake.features(model, layer, validate).values)
            K_fit, K_val = compute_centered_linear_kernels(X_fit, X_val, feature_chunk_size=FEATURE_CHUNK_SIZE)
            decompositions[layer] = eigendecompose_centered_kernel(K_fit, K_val, overwrite_kernel=True)
        ids = np.concatenate([fit, validate])
        for region, spec, subject in cells:
            key = (subject, region, spec.nc_threshold, spec.nc_coord)
            if key not in responses_of:
                responses_of[key] = lake.responses(subject, region, nc_threshold=spec.nc_threshold, nc_coord=spec.nc_coord).load()
            Y = responses_of[key].sel(stimulus_id=ids)
            Y_all = np.asarray(Y.values, np.float64)
            Y_fit, Y_val = Y_all[: len(fit)], Y_all[len(fit):]
            repeats, nc, ncsnr = Y["n_repeats"].values[len(fit):], Y[spec.nc_coord].values, Y["ncsnr"].values
            for layer, decomposition in decompositions.items():
                outcome = decomposition.ridgecv(Y_fit, alphas=np.asarray(spec.alphas))
                r = pearson_r_per_column(outcome.predictions, Y_val)
                values[region][layer].append(float(regression_ceiled(spec, r, nc, ncsnr, repeats)[2]))
    return {region: {layer: float(np.mean(by_layer[layer])) for layer in layers if by_layer.get(layer)} for region, by_layer in values.items()}


def _model_order(lake: Any, model: str, layers: list[str]) -> list[str]:
    """Layers in the model's own order when the extraction recorded it (``layer_index``), else as given."""
    entries = lake.manifest.get("features", {})
    index = {layer: (entries[f"{model}/{layer}"].get("provenance") or {}).get("layer_index") for layer in layers}
    if all(isinstance(i, int) for i in index.values()):
        return sorted(layers, key=lambda layer: index[layer])
    return list(layers)


def commit_layers(
    lake: Any,
    model: str,
    layers: Iterable[str] | None = None,
    benchmarks: Iterable[str] | None = None,
    seed: int = DEFAULT_SEED,
    fraction: float = COMMIT_FRACTION,
    store: bool = True,
) -> LayerCommitment:
    """Choose one layer per region for ``model`` on commitment splits and (by default) store the map in the lake.

    Parameters
    ----------
    lake : Lake or str
    model : str
        The lake's model name (e.g. ``torchvision:resnet50@random-s0``).
    layers : iterable of str, optional
        Candidates (default: every layer of ``model`` in the lake, in the model's order when the
        extraction recorded it, else sorted).
    benchmarks : iterable of str, optional
        Regression benchmarks whose train sets commit (default: the headline ones).
    seed, fraction :
        The commitment split (see the module docstring).
    store : bool
        Write the map into the manifest's provenance (``layer_commitments``).
    """
    from laion_lake.lake import Lake, open_lake

    lake = lake if isinstance(lake, Lake) else open_lake(str(lake))
    held = [layer for m, layer in lake.feature_sets if m == model]
    if not held:
        models = sorted({m for m, _ in lake.feature_sets})
        raise NoCommitmentError(f"the lake holds no feature sets of model {model!r} (it has {', '.join(models) or 'none'})")
    candidates = list(layers) if layers else _model_order(lake, model, held)
    absent = [layer for layer in candidates if layer not in held]
    if absent:
        raise ValueError(f"model {model!r} has no feature sets for layer(s) {absent} (it has {held})")
    specs = region_benchmarks(benchmarks)
    scores = {region: s for region, s in _commitment_scores(lake, model, candidates, specs, seed, fraction).items() if s}
    chosen = {region: max(s, key=lambda layer: (s[layer], -candidates.index(layer))) for region, s in scores.items()}
    entries = lake.manifest.get("features", {})
    identities = {layer: str((entries[f"{model}/{layer}"].get("provenance") or {}).get("identity_sha256", entries[f"{model}/{layer}"]["checksum"]))
                  for layer in candidates}
    commitment = LayerCommitment(model, chosen, scores, {r: [s.key for s in specs[r]] for r in scores}, seed, fraction, SPLIT_RULE,
                                 _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), identities)
    if store:
        stored = dict(lake.manifest.get("provenance", {}).get(COMMITMENTS_KEY, {}))
        stored[model] = commitment.to_dict()
        lake.set_provenance({COMMITMENTS_KEY: stored})
    return commitment


def read_layer_commitment(lake: Any, model: str) -> LayerCommitment:
    """The stored region-to-layer map of ``model`` (with the per-layer commitment scores: the layer profile)."""
    from laion_lake.lake import Lake, open_lake

    lake = lake if isinstance(lake, Lake) else open_lake(str(lake))
    stored = lake.manifest.get("provenance", {}).get(COMMITMENTS_KEY, {})
    if model not in stored:
        raise NoCommitmentError(f"no committed layers for model {model!r} in {lake.url} (committed: {', '.join(sorted(stored)) or 'none'}); "
                                "run `laion-lake commit-layers`")
    return LayerCommitment.from_dict(model, stored[model])


def committed_leaderboard_row(lake: Any, model: str, benchmarks: Iterable[str] | None = None,
                              scores: Mapping[tuple[str, str, str], Any] | None = None) -> list[dict[str, Any]]:
    """Score rows of ``model`` whose layer is the committed one for each benchmark's region.

    ``scores`` maps (model, layer, benchmark_key) to Scores (as :func:`score_many` returns); when
    absent the committed layers are scored here in process. Every row names its layer and the
    feature set's provenance identity.
    """
    from laion_lake.benchmarks import list_benchmarks, load_benchmark
    from laion_lake.scoring import score_many

    commitment = read_layer_commitment(lake, model)
    specs = [load_benchmark(b) for b in (list(benchmarks) if benchmarks else list_benchmarks())]
    specs = [s for s in specs if s.region in commitment.layers]
    if scores is None:
        pairs = sorted({(model, commitment.layers[s.region]) for s in specs})
        scores = score_many(lake, pairs, specs)
    rows = []
    for spec in specs:
        layer = commitment.layers[spec.region]
        value = scores[(model, layer, spec.key)]
        rows.append({"model": model, "layer": layer, "benchmark": spec.key, "value": float(value), "error": value.attrs["error"],
                     "feature_set": commitment.feature_sets.get(layer, "")})
    return rows


__all__ = [
    "COMMITMENTS_KEY",
    "LayerCommitment",
    "NoCommitmentError",
    "commit_layers",
    "commitment_split",
    "committed_leaderboard_row",
    "read_layer_commitment",
    "region_benchmarks",
]
