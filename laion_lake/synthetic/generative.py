"""The ground truth of the synthetic dataset: latent codes, region transforms, voxels, betas.

Generative model
----------------
Each image has a latent code with two independent parts (in distribution):

- ``z_low`` (16-d, standard normal): low-level image statistics;
- ``z_high`` (16-d): semantics, a mixture of 8 Gaussian clusters with unequal weights, so that a
  k-means (k=5) on it finds real structure (the ``cluster_k5`` splits).

Sources shift both parts a little (THINGS+, THINGS and NSD images are not LAION images); each OOD
category draws from its own shifted and rescaled distribution (gabors and shapes far off in both
parts, ``relations`` close to natural images, ...).

Region transforms (fixed by the seed, the same for every subject):

- ``f_low = z_low @ R`` with R orthogonal: uncorrelated, unit-variance features (in distribution);
- ``f_high = whiten(tanh(g * z_high @ B))``: a nonlinear transform, whitened with constants measured
  once on a reference sample of in-distribution codes.

V1, V2 and V3 voxels encode ``f_low``; IT voxels encode ``f_high``; V4 voxels a fixed mixture,
35 % of their signal variance from ``f_low`` and 65 % from ``f_high`` (:data:`LOW_LEVEL_WEIGHT`).

Voxels and betas
----------------
Voxel v's signal is ``s_v(c) = sqrt(a) u_low + sqrt(1 - a) u_high`` with ``u = f @ w_v``
(random Gaussian weights), standardised to zero mean and unit variance over the subject's
trials (trial-weighted, so that the NSD estimator, which works on trials, sees exactly unit
signal variance). A trial of image c gives::

    raw = gain_v * (offset[session, v] + scale[session, v] * (ncsnr_v * s_v(c) + noise))
    noise = sqrt(1 - rho) * e + sqrt(rho) * eta_trial @ loading_v     (unit variance, rho = 0.15)

and each voxel is then z-scored within each session (NaN -> 0, zero sd -> 1), as the release is.
The per-session offset and scale (scanner drift) are an affine map per session and voxel, which
the per-session z-scoring removes exactly; what z-scoring itself does (divide signal and noise by
the same session sd, subtract a session mean estimated from ~1,000 trials) rescales signal and
noise alike, so ``ncsnr_v`` (signal sd / noise sd) survives: the stored ``ncsnr`` is the true one
and the NSD estimator recovers it without bias beyond O(1/trials per session). A drift *within*
a session (a trend) would bias it down; the generator has none, on purpose.

ncsnr per voxel is log-normal per region, with parameters solved so that a chosen fraction of
voxels falls at or below the benchmark filter ``nc_12rep > 30`` and the median of
``sqrt(nc_12rep / 100)`` over the kept voxels hits the real ceilings (:data:`CEILING_TARGET`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from laion_lake.synthetic.design import OOD_CATEGORIES, StimulusSet, TrialTable, stream
from laion_lake.synthetic.voxels import REGIONS, VoxelLayout

D_LOW = 16
D_HIGH = 16
N_SEMANTIC_CLUSTERS = 8
SEMANTIC_SEPARATION = 1.6  # sd of cluster centres (within-cluster sd is 1)
HIGH_GAIN = 0.6  # input gain of the tanh in f_high: moderately nonlinear
# fraction of each voxel's signal variance carried by the low-level transform
LOW_LEVEL_WEIGHT = {"V1": 1.0, "V2": 1.0, "V3": 1.0, "V4": 0.35, "IT": 0.0}
# median sqrt(nc_12rep/100) over voxels kept by the filter (the published ceilings), and the
# fraction of each region's voxels the filter drops
CEILING_TARGET = {"V1": 0.83, "V2": 0.83, "V3": 0.81, "V4": 0.80, "IT": 0.75}
FRACTION_BELOW_FILTER = {"V1": 0.25, "V2": 0.27, "V3": 0.30, "V4": 0.32, "IT": 0.36}
NC_FILTER = 30.0
SUBJECT_NCSNR_SD = 0.08  # sd of a per-subject shift of log ncsnr (ceilings differ a little per subject)
NOISE_SHARED_FRACTION = 0.15  # of the noise variance, shared across voxels through a few trial factors
N_NOISE_FACTORS = 3
SOURCE_SHIFT = {"LAION": 0.0, "THINGS+": 0.5, "THINGS": 0.6, "NSD": 0.5}
# OOD category -> (low shift, low scale, high shift, high scale): shifts are norms of a random direction
OOD_PROFILE = {
    "shape": (2.0, 0.6, 2.5, 0.5),
    "relations": (0.5, 1.0, 1.0, 0.9),
    "unusual": (0.8, 1.1, 1.5, 1.0),
    "cropped": (1.2, 0.9, 0.8, 0.9),
    "selfmade": (1.0, 1.0, 1.2, 1.0),
    "gaudy": (1.8, 1.2, 0.8, 1.0),
    "illusion-classic": (2.2, 0.7, 2.0, 0.6),
    "gabor": (3.0, 0.4, 3.0, 0.3),
    "illusion-natural": (0.6, 1.0, 1.2, 1.0),
}
_NOISE_BLOCK = 512  # voxels per noise draw: fixed, so the streams are consumed the same way every time
_REFERENCE_SAMPLE = 20_000


def nc_from_ncsnr(ncsnr: np.ndarray, k: float | np.ndarray) -> np.ndarray:
    """NSD noise ceiling in percent: ``100 * ncsnr^2 / (ncsnr^2 + k)``, k = mean(1/n_c) of the design."""
    snr2 = np.square(np.asarray(ncsnr, dtype=np.float64))
    return 100.0 * snr2 / (snr2 + k)


def ncsnr_lognormal_parameters(region: str) -> tuple[float, float]:
    """(mu, sigma) of log ncsnr so that FRACTION_BELOW_FILTER[region] of voxels have nc_12rep <= 30
    and the median of sqrt(nc_12rep/100) over the others is CEILING_TARGET[region]."""
    k12 = 1.0 / 12.0
    f_filter = NC_FILTER / 100.0
    snr_filter = math.sqrt(k12 * f_filter / (1.0 - f_filter))
    c = CEILING_TARGET[region]
    snr_median = math.sqrt(k12 * c**2 / (1.0 - c**2))
    p = FRACTION_BELOW_FILTER[region]
    z_p, z_q = NormalDist().inv_cdf(p), NormalDist().inv_cdf(p + (1.0 - p) / 2.0)
    sigma = (math.log(snr_median) - math.log(snr_filter)) / (z_q - z_p)
    return math.log(snr_filter) - sigma * z_p, sigma


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal(n)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class Latents:
    """Latent codes of a set of images: ``low`` (n, D_LOW), ``high`` (n, D_HIGH), float64."""

    low: np.ndarray
    high: np.ndarray

    def __len__(self) -> int:
        return len(self.low)

    def take(self, index: np.ndarray) -> Latents:
        return Latents(self.low[index], self.high[index])

    @staticmethod
    def concatenate(parts: list[Latents]) -> Latents:
        return Latents(np.concatenate([p.low for p in parts]), np.concatenate([p.high for p in parts]))


@dataclass(frozen=True)
class GenerativeModel:
    """The seed-fixed parameters shared by every subject: latent distributions and region transforms."""

    seed: int
    cluster_centres: np.ndarray  # (K, D_HIGH)
    cluster_weights: np.ndarray  # (K,)
    source_low: dict[str, np.ndarray]
    source_high: dict[str, np.ndarray]
    ood_low: dict[str, tuple[np.ndarray, float]]
    ood_high: dict[str, tuple[np.ndarray, float]]
    low_rotation: np.ndarray  # (D_LOW, D_LOW), orthogonal
    high_projection: np.ndarray  # (D_HIGH, D_HIGH), orthogonal
    high_mean: np.ndarray  # (D_HIGH,)
    high_whitening: np.ndarray  # (D_HIGH, D_HIGH)

    @classmethod
    def from_seed(cls, seed: int) -> GenerativeModel:
        rng = stream(seed, "model")
        centres = SEMANTIC_SEPARATION * rng.standard_normal((N_SEMANTIC_CLUSTERS, D_HIGH))
        weights = rng.dirichlet(np.full(N_SEMANTIC_CLUSTERS, 3.0))
        source_low = {s: m * _unit(rng, D_LOW) for s, m in SOURCE_SHIFT.items()}
        source_high = {s: m * _unit(rng, D_HIGH) for s, m in SOURCE_SHIFT.items()}
        ood_low, ood_high = {}, {}
        for category in OOD_CATEGORIES:
            low_shift, low_scale, high_shift, high_scale = OOD_PROFILE[category]
            ood_low[category] = (low_shift * _unit(rng, D_LOW), low_scale)
            ood_high[category] = (high_shift * _unit(rng, D_HIGH), high_scale)
        low_rotation = _orthogonal(rng, D_LOW)
        high_projection = _orthogonal(rng, D_HIGH)
        # whitening constants of f_high, measured once on a reference sample of LAION-like codes
        reference = centres[rng.choice(N_SEMANTIC_CLUSTERS, _REFERENCE_SAMPLE, p=weights)]
        reference = reference + rng.standard_normal(reference.shape)
        hidden = np.tanh(HIGH_GAIN * reference @ high_projection)
        mean = hidden.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(hidden, rowvar=False))
        whitening = eigenvectors @ np.diag(eigenvalues**-0.5) @ eigenvectors.T
        return cls(seed, centres, weights, source_low, source_high, ood_low, ood_high, low_rotation, high_projection, mean, whitening)

    def sample_latents(self, stimuli: StimulusSet, rng: np.random.Generator) -> Latents:
        """Latent codes of ``stimuli`` (one row each, in order), drawn from ``rng``."""
        n = len(stimuli)
        cluster = rng.choice(N_SEMANTIC_CLUSTERS, n, p=self.cluster_weights)
        high = self.cluster_centres[cluster] + rng.standard_normal((n, D_HIGH))
        low = rng.standard_normal((n, D_LOW))
        for source in self.source_low:
            rows = stimuli.source == source
            low[rows] += self.source_low[source]
            high[rows] += self.source_high[source]
        for category in OOD_CATEGORIES:
            rows = stimuli.ood_category == category
            (low_shift, low_scale), (high_shift, high_scale) = self.ood_low[category], self.ood_high[category]
            low[rows] = low[rows] * low_scale + low_shift
            high[rows] = high[rows] * high_scale + high_shift
        return Latents(low, high)

    def transform_low(self, low: np.ndarray) -> np.ndarray:
        """f_low: what V1-V3 encode (linear, uncorrelated unit-variance features in distribution)."""
        return low @ self.low_rotation

    def transform_high(self, high: np.ndarray) -> np.ndarray:
        """f_high: what IT encodes (nonlinear in z_high, whitened in distribution)."""
        return (np.tanh(HIGH_GAIN * high @ self.high_projection) - self.high_mean) @ self.high_whitening

    def transforms(self, latents: Latents) -> tuple[np.ndarray, np.ndarray]:
        return self.transform_low(latents.low), self.transform_high(latents.high)


@dataclass(frozen=True)
class RegionVoxels:
    """Parameters of one region's voxels in one subject.

    Attributes
    ----------
    ncsnr : (n,) true noise-ceiling SNR (signal sd / noise sd)
    low_weights : (D_LOW, n); high_weights : (D_HIGH, n)
    low_level_weight : float, fraction of signal variance from f_low
    noise_loadings : (N_NOISE_FACTORS, n), unit-norm columns
    gain : (n,) arbitrary units of the raw betas
    """

    ncsnr: np.ndarray
    low_weights: np.ndarray
    high_weights: np.ndarray
    low_level_weight: float
    noise_loadings: np.ndarray
    gain: np.ndarray


def region_voxels(seed: int, subject: str, region: str, n: int) -> RegionVoxels:
    """Draw the parameters of ``n`` voxels of ``region`` in ``subject``."""
    mu, sigma = ncsnr_lognormal_parameters(region)
    subject_shift = SUBJECT_NCSNR_SD * stream(seed, "ncsnr_subject", subject).standard_normal()
    rng = stream(seed, "voxels", subject, region)
    ncsnr = np.exp(mu + subject_shift + sigma * rng.standard_normal(n))
    loadings = rng.standard_normal((N_NOISE_FACTORS, n))
    loadings /= np.linalg.norm(loadings, axis=0)
    return RegionVoxels(
        ncsnr=ncsnr,
        low_weights=rng.standard_normal((D_LOW, n)),
        high_weights=rng.standard_normal((D_HIGH, n)),
        low_level_weight=LOW_LEVEL_WEIGHT[region],
        noise_loadings=loadings,
        gain=np.exp(rng.normal(0.0, 0.3, n)),
    )


def _standardise(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Columns to zero mean, unit variance under row weights (here: presentations per image)."""
    w = weights / weights.sum()
    mean = w @ values
    centred = values - mean
    sd = np.sqrt(w @ np.square(centred))
    return centred / np.where(sd > 0, sd, 1.0)


def region_signal(f_low: np.ndarray, f_high: np.ndarray, voxels: RegionVoxels, presentations: np.ndarray) -> np.ndarray:
    """Noise-free signal of each image (rows) and voxel (columns), unit variance over trials."""
    a = voxels.low_level_weight
    signal = np.zeros((len(f_low), len(voxels.ncsnr)))
    if a > 0:
        signal += math.sqrt(a) * _standardise(f_low @ voxels.low_weights, presentations)
    if a < 1:
        signal += math.sqrt(1.0 - a) * _standardise(f_high @ voxels.high_weights, presentations)
    return _standardise(signal, presentations)


def zscore_within_sessions(raw: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Z-score each column within each session ``[bounds[i], bounds[i+1])`` (NaN -> 0, zero sd -> 1), in place."""
    for start, stop in zip(bounds[:-1], bounds[1:]):
        block = raw[start:stop]
        mean = block.mean(axis=0, dtype=np.float64)
        sd = block.std(axis=0, dtype=np.float64)
        sd[~(sd > 0)] = 1.0
        block -= mean.astype(raw.dtype)
        block /= sd.astype(raw.dtype)
    raw[np.isnan(raw)] = 0.0
    return raw


def generate_region_betas(
    seed: int,
    subject: str,
    region: str,
    trials: TrialTable,
    f_low: np.ndarray,
    f_high: np.ndarray,
    voxels: RegionVoxels,
    trial_factors: np.ndarray,
    n_sessions: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Single-trial betas (n_trials, n_voxels) float32 of one region, z-scored within sessions.

    ``f_low``/``f_high`` are the transforms of the subject's images (rows of ``trials.stimuli``),
    ``trial_factors`` (n_trials, N_NOISE_FACTORS) the shared noise of each trial; ``out``, when
    given, is a float32 (n_trials, n_voxels) array (e.g. a view of the subject's array) to fill.
    """
    n = len(voxels.ncsnr)
    signal = region_signal(f_low, f_high, voxels, trials.n_repeats.astype(np.float64)).astype(np.float32)
    drift = stream(seed, "drift", subject, region)
    offsets = drift.normal(0.0, 1.5, (n_sessions, n)).astype(np.float32)
    scales = np.exp(drift.normal(0.0, 0.25, (n_sessions, n))).astype(np.float32)
    noise_rng = stream(seed, "noise", subject, region)
    bounds = trials.session_bounds()
    session_of_block = trials.session[bounds[:-1]].astype(np.int64) - 1
    private, shared = np.float32(math.sqrt(1.0 - NOISE_SHARED_FRACTION)), np.float32(math.sqrt(NOISE_SHARED_FRACTION))
    betas = np.empty((trials.n_trials, n), dtype=np.float32) if out is None else out
    for start in range(0, n, _NOISE_BLOCK):
        cols = slice(start, min(start + _NOISE_BLOCK, n))
        raw = noise_rng.standard_normal((trials.n_trials, cols.stop - cols.start), dtype=np.float32)
        raw *= private
        raw += shared * (trial_factors @ voxels.noise_loadings[:, cols].astype(np.float32))
        raw += signal[:, cols][trials.image] * voxels.ncsnr[cols].astype(np.float32)
        # scanner drift: an affine map per session and voxel, in arbitrary units
        gain = voxels.gain[cols].astype(np.float32)
        for s, (lo, hi) in zip(session_of_block, zip(bounds[:-1], bounds[1:])):
            block = raw[lo:hi]
            block *= scales[s, cols]
            block += offsets[s, cols]
            block *= gain
        betas[:, cols] = zscore_within_sessions(raw, bounds)
    return betas


def trial_noise_factors(seed: int, subject: str, n_trials: int) -> np.ndarray:
    """Shared noise of each trial (n_trials, N_NOISE_FACTORS), float32."""
    return stream(seed, "noise", subject, "shared").standard_normal((n_trials, N_NOISE_FACTORS), dtype=np.float32)


def subject_ncsnr(seed: int, subject: str, layout: VoxelLayout) -> np.ndarray:
    """True ncsnr of every voxel of ``layout`` (cheap: no betas)."""
    return np.concatenate([region_voxels(seed, subject, r, int((layout.region == r).sum())).ncsnr for r in REGIONS])


__all__ = [
    "CEILING_TARGET",
    "D_HIGH",
    "D_LOW",
    "FRACTION_BELOW_FILTER",
    "GenerativeModel",
    "LOW_LEVEL_WEIGHT",
    "Latents",
    "NC_FILTER",
    "RegionVoxels",
    "generate_region_betas",
    "nc_from_ncsnr",
    "ncsnr_lognormal_parameters",
    "region_signal",
    "region_voxels",
    "subject_ncsnr",
    "trial_noise_factors",
    "zscore_within_sessions",
]
