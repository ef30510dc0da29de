"""Synthetic model feature sets whose ranking per region is known by construction.

Models (``model`` / ``layer``):

- ``ground_truth`` / ``latent``: ``[f_low, f_high]`` (32 features), the concatenation of the
  distinct region transforms (V1-V3 encode f_low, IT f_high, V4 a mixture): what the voxels
  actually encode, linearly.
- ``early_model`` / ``conv2``: ``relu(view @ G + b + 0.1 * noise)``, a random expansion of an
  *early view*: 10 of the 16 f_low features plus 3 of the 16 f_high features (a little semantics
  leaks into an early layer).
- ``late_model`` / ``fc6``: the same for a *late view*: 10 of the 16 f_high features plus 3 of
  the 16 f_low features.
- ``random_model`` / ``fc``: Gaussian features independent of the latent code.

The views are what make the ranking strict: voxel weights are isotropic over the whitened
features, so the variance of a region's signal that a model can reach linearly is (in
distribution) ``a * p_low + (1 - a) * p_high`` with ``a`` the region's low-level weight and
``p`` the fraction of each transform the model sees (:data:`EXPECTED_LINEAR_FRACTION`):

=============  =====  =====  =====  =======
model          V1-V3  V4     IT     IT_full
=============  =====  =====  =====  =======
ground_truth   1.00   1.00   1.00   1.00
early_model    0.62   0.34   0.19   0.22
late_model     0.19   0.47   0.62   0.59
random_model   0      0      0      0
=============  =====  =====  =====  =======

(IT_full = V4 + IT voxels, weighted by their nominal counts 700 : 2400.)

The ReLU expansion (width >> 13) approximates linear functions of its view well, and the feature
noise is small, so a linear readout of a model recovers about that fraction and ridge scores
follow the order above. A model can also exploit nonlinear dependence between the features it
sees and those it misses (the semantic clusters make f_high dims dependent), which can only raise
the *early* model in IT a little; the gaps above are wide enough for that.

How reliable: with a well-chosen alpha (ridgecv) the order holds for every region, pool and
split at the small and full scales (checked over seeds with an independent kernel ridge: e.g.
small, per-subject pool, V1: ground 0.69 > early 0.53 > late 0.24 > random ~0; IT: 0.56 > 0.45 >
0.21 > ~0). At the tiny scale (~100-200 training images) the gaps between the two weak entries
(late vs random in V1, early vs random in IT) are within noise for fixed-alpha ``ridge`` on the
``ood`` split; use ``small`` to test rankings. A ridgecv that picks alpha by leave-one-out must
exclude the null direction of the centred kernel (the intercept), or it picks the smallest alpha
when features outnumber samples and the weak entries collapse towards zero.
RDMs: the early view is mostly f_low, the late view mostly f_high, so the early model's RDM is
closer to V1/V2's, the late model's to IT's; the ground truth weights f_low and f_high equally,
so its RDM sits between the two and no RDM rank is claimed for it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from laion_lake.synthetic.design import Scale, get_scale, stream
from laion_lake.synthetic.generative import D_HIGH, D_LOW, LOW_LEVEL_WEIGHT, GenerativeModel, Latents
from storage_schemas.vocabulary import REGIONS

MODEL_LAYERS = {"ground_truth": "latent", "early_model": "conv2", "late_model": "fc6", "random_model": "fc"}
# which transform features each model's expansion sees: (f_low indices, f_high indices)
VIEWS = {
    "early_model": (tuple(range(0, 10)), tuple(range(0, 3))),
    "late_model": (tuple(range(10, 13)), tuple(range(3, 13))),
}
FEATURE_NOISE = 0.1
BIAS_MEAN, BIAS_SD = 0.25, 0.25


def _seen_fraction(model: str) -> tuple[float, float]:
    if model == "ground_truth":
        return 1.0, 1.0
    if model == "random_model":
        return 0.0, 0.0
    low, high = VIEWS[model]
    return len(low) / D_LOW, len(high) / D_HIGH


def _linear_fraction(model: str, region: str) -> float:
    p_low, p_high = _seen_fraction(model)
    if region == "IT_full":  # a voxel mixture, not a signal mixture: the mean over its parts, V4 ~ 700 and IT ~ 2400 voxels
        return (700 * _linear_fraction(model, "V4") + 2400 * _linear_fraction(model, "IT")) / 3100
    a = LOW_LEVEL_WEIGHT[region]
    return a * p_low + (1.0 - a) * p_high


BENCHMARK_REGIONS = REGIONS
EXPECTED_LINEAR_FRACTION: dict[tuple[str, str], float] = {
    (model, region): _linear_fraction(model, region) for model in MODEL_LAYERS for region in BENCHMARK_REGIONS
}


def _ranking(region: str, models: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(models, key=lambda m: -EXPECTED_LINEAR_FRACTION[(m, region)]))


# (metric kind, region) -> models, best first. Regression metrics (ridge, ridgecv) rank all four;
# the RDM metric ranks early, late and random only (see the module docstring).
EXPECTED_RANKING: dict[tuple[str, str], tuple[str, ...]] = {
    **{(kind, region): _ranking(region, tuple(MODEL_LAYERS)) for kind in ("ridge", "ridgecv") for region in BENCHMARK_REGIONS},
    **{("rdm", region): _ranking(region, ("early_model", "late_model", "random_model")) for region in BENCHMARK_REGIONS},
    # CKA compares Gram matrices as the RDM compares dissimilarities: the same order of the three views
    # (ground truth scores at least as high, tied with the matching view in V1/V2 and IT; see tests/scoring/test_cka_cells.py)
    **{("cka", region): _ranking(region, ("early_model", "late_model", "random_model")) for region in BENCHMARK_REGIONS},
}


def model_features(model: str, generative: GenerativeModel, latents: Latents, scale: str | Scale, seed: int) -> np.ndarray:
    """Activations (n_stimuli, n_features) float32 of ``model`` for images with codes ``latents``.

    The expansion weights depend only on (seed, model), the noise on the rows' order: pass the
    whole stimulus table, sorted, to get the lake's feature set.
    """
    scale = get_scale(scale)
    rng = stream(seed, "features", model)
    n = len(latents)
    if model == "random_model":
        return rng.standard_normal((n, scale.feature_width[model]), dtype=np.float32)
    f_low, f_high = generative.transforms(latents)
    if model == "ground_truth":
        return np.concatenate([f_low, f_high], axis=1).astype(np.float32)
    if model not in VIEWS:
        raise ValueError(f"unknown synthetic model {model!r}; choose one of {sorted(MODEL_LAYERS)}")
    low, high = VIEWS[model]
    view = np.concatenate([f_low[:, list(low)], f_high[:, list(high)]], axis=1)
    width = scale.feature_width[model]
    weights = rng.standard_normal((view.shape[1], width)) / np.sqrt(view.shape[1])
    bias = rng.normal(BIAS_MEAN, BIAS_SD, width)
    pre = (view @ weights + bias).astype(np.float32)
    pre += np.float32(FEATURE_NOISE) * rng.standard_normal(pre.shape, dtype=np.float32)
    return np.maximum(pre, np.float32(0.0), out=pre)


def feature_array(model: str, activations: np.ndarray, stimulus_ids: np.ndarray) -> xr.DataArray:
    """Wrap activations as the lake's feature DataArray: dims (stimulus_id, feature), attrs model/layer."""
    return xr.DataArray(
        activations,
        dims=("stimulus_id", "feature"),
        coords={"stimulus_id": np.asarray(stimulus_ids).astype(str)},
        name="activations",
        attrs={"model": model, "layer": MODEL_LAYERS[model], "generator": "laion_lake.synthetic"},
    )
