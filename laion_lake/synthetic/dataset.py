"""The synthetic LAION-fMRI dataset as in-memory xarray objects, one subject at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.synthetic import features as _features
from laion_lake.synthetic import generative as _generative
from laion_lake.synthetic.design import (
    OOD_CATEGORIES,
    SUBJECTS,
    Scale,
    StimulusSet,
    TrialTable,
    get_scale,
    shared_stimuli,
    stream,
    subject_trials,
    unique_stimuli,
)
from laion_lake.synthetic.generative import GenerativeModel, Latents
from laion_lake.synthetic.splits import pool_split_documents
from laion_lake.synthetic.voxels import REGIONS, VoxelLayout, voxel_layout
from storage_schemas.variables import with_variable_attrs

GENERATOR = "laion_lake.synthetic"


@dataclass(frozen=True)
class GroundTruth:
    """What the generator knows and a test may ask.

    Attributes
    ----------
    model : GenerativeModel
        Latent distributions and the region transforms (``transform_low``, ``transform_high``).
    low_level_weight : dict region -> fraction of voxel signal variance from f_low
    ceiling_target, fraction_below_filter : dict region -> float
        What the ncsnr distributions were solved for (filter ``nc_12rep > 30``).
    expected_ranking : dict (metric kind, region) -> models, best first
    expected_linear_fraction : dict (model, region) -> reachable fraction of signal variance
    feature_views : dict model -> (f_low indices, f_high indices) its expansion sees
    """

    dataset: SyntheticDataset = field(repr=False)
    model: GenerativeModel = field(repr=False)
    low_level_weight: dict[str, float]
    ceiling_target: dict[str, float]
    fraction_below_filter: dict[str, float]
    expected_ranking: dict[tuple[str, str], tuple[str, ...]]
    expected_linear_fraction: dict[tuple[str, str], float]
    feature_views: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]

    def ncsnr(self, subject: str) -> np.ndarray:
        """True ncsnr of every voxel, in the subject assembly's neuroid order (float64)."""
        return _generative.subject_ncsnr(self.dataset.seed, subject, self.dataset.voxels(subject))

    def voxels(self, subject: str, region: str) -> _generative.RegionVoxels:
        """The parameters of one region's voxels (ncsnr, weights over f_low / f_high, noise loadings)."""
        layout = self.dataset.voxels(subject)
        return _generative.region_voxels(self.dataset.seed, subject, region, int((layout.region == region).sum()))

    def signal(self, subject: str, region: str) -> xr.DataArray:
        """Noise-free signal (stimulus_id, neuroid) of one region: unit variance over the subject's
        trials; a trial's beta before drift and z-scoring is ``ncsnr * signal + noise``."""
        trials = self.dataset.trials(subject)
        f_low, f_high = self.model.transforms(self.dataset.subject_latents(subject))
        values = _generative.region_signal(f_low, f_high, self.voxels(subject, region), trials.n_repeats.astype(np.float64))
        layout = self.dataset.voxels(subject)
        in_region = layout.region == region
        return xr.DataArray(
            values,
            dims=("stimulus_id", "neuroid"),
            coords={
                "stimulus_id": trials.stimuli.stimulus_id,
                "neuroid_id": ("neuroid", _neuroid_ids(subject, layout.voxel_index[in_region])),
            },
            attrs={"subject": subject, "region": region},
        )


def _neuroid_ids(subject: str, voxel_index: np.ndarray) -> np.ndarray:
    return np.array([f"{subject}.{int(i)}" for i in voxel_index])


class SyntheticDataset:
    """A synthetic LAION-fMRI dataset with known ground truth.

    Parameters
    ----------
    scale : {"tiny", "small", "full"} or Scale
        Counts (see :data:`laion_lake.synthetic.design.SCALES`).
    seed : int
        Same seed, bit-identical output; every subject, split and feature set has its own stream.

    Subjects are generated on demand (:meth:`subject`), one at a time; the stimulus table, splits
    and designs are cheap and cached on the instance.
    """

    def __init__(self, scale: str | Scale = "tiny", seed: int = 0) -> None:
        self.scale = get_scale(scale)
        self.seed = int(seed)
        self.subjects: tuple[str, ...] = SUBJECTS
        self.model = GenerativeModel.from_seed(self.seed)
        self._trials: dict[str, TrialTable] = {}
        self._layouts: dict[str, VoxelLayout] = {}

    def __repr__(self) -> str:
        return f"SyntheticDataset(scale={self.scale.name!r}, seed={self.seed})"

    @property
    def provenance(self) -> dict[str, Any]:
        return {"generator": GENERATOR, "scale": self.scale.name, "seed": self.seed}

    # -- design ----------------------------------------------------------------------------------
    def _check_subject(self, subject: str) -> None:
        if subject not in self.subjects:
            raise ValueError(f"unknown subject {subject!r}; choose one of {self.subjects}")

    def trials(self, subject: str) -> TrialTable:
        """The subject's trial design (chronological)."""
        self._check_subject(subject)
        if subject not in self._trials:
            self._trials[subject] = subject_trials(self.scale, self.seed, subject)
        return self._trials[subject]

    def voxels(self, subject: str) -> VoxelLayout:
        """The subject's voxels, sorted by region then brain-mask index."""
        self._check_subject(subject)
        if subject not in self._layouts:
            self._layouts[subject] = voxel_layout(self.scale, self.seed, subject)
        return self._layouts[subject]

    @cached_property
    def _shared(self) -> StimulusSet:
        return shared_stimuli(self.scale, self.seed)

    @cached_property
    def _shared_latents(self) -> Latents:
        return self.model.sample_latents(self._shared, stream(self.seed, "latent", "shared"))

    def _unique_latents(self, subject: str) -> tuple[StimulusSet, Latents]:
        unique = unique_stimuli(self.scale, self.seed, subject)
        return unique, self.model.sample_latents(unique, stream(self.seed, "latent", subject))

    def subject_latents(self, subject: str) -> Latents:
        """Latent codes of the subject's images, rows as ``trials(subject).stimuli`` (shared, then unique)."""
        self._check_subject(subject)
        return Latents.concatenate([self._shared_latents, self._unique_latents(subject)[1]])

    @cached_property
    def _all_stimuli(self) -> tuple[np.ndarray, StimulusSet, Latents]:
        """Every stimulus sorted by id: (ids, StimulusSet, Latents)."""
        parts, latents = [self._shared], [self._shared_latents]
        for subject in self.subjects:
            unique, codes = self._unique_latents(subject)
            parts.append(unique)
            latents.append(codes)
        stimuli, codes = StimulusSet.concatenate(parts), Latents.concatenate(latents)
        order = np.argsort(stimuli.stimulus_id)
        sorted_set = StimulusSet(*(getattr(stimuli, f)[order] for f in StimulusSet.__dataclass_fields__))
        return sorted_set.stimulus_id, sorted_set, codes.take(order)

    def latents(self) -> tuple[np.ndarray, Latents]:
        """(stimulus ids sorted, their latent codes): every stimulus of the stimulus table."""
        ids, _, codes = self._all_stimuli
        return ids, codes

    @cached_property
    def stimuli(self) -> xr.Dataset:
        """The stimulus table (storage_schemas/stimuli.v1.json), sorted by stimulus id."""
        ids, table, _ = self._all_stimuli
        n_repeats = np.zeros((len(ids), len(self.subjects)), dtype=np.int16)
        for j, subject in enumerate(self.subjects):
            trials = self.trials(subject)
            position = np.searchsorted(ids, trials.stimuli.stimulus_id)
            n_repeats[position, j] = trials.n_repeats
        return with_variable_attrs(xr.Dataset(
            {
                "source": ("stimulus_id", table.source),
                "shared": ("stimulus_id", table.shared),
                "ood_category": ("stimulus_id", table.ood_category),
                "owner": ("stimulus_id", table.owner),
                "design_repeats": ("stimulus_id", table.design_repeats.astype(np.int16)),
                "n_repeats": (("stimulus_id", "subject"), n_repeats),
            },
            coords={"stimulus_id": ids, "subject": np.array(self.subjects)},
            attrs=dict(self.provenance),
        ))

    # -- splits ----------------------------------------------------------------------------------
    def split_documents(self) -> list[dict[str, Any]]:
        """The 12 splits of the shared pool and of every subject's pool, in the published JSON format
        (plus ``lake_pool``)."""
        shared, codes = self._shared, self._shared_latents
        is_ood = shared.ood_category != ""
        ood_ids = shared.stimulus_id[is_ood]
        categories = sorted(set(shared.ood_category[is_ood].tolist()))
        documents = pool_split_documents("shared", shared.stimulus_id[~is_ood], codes.high[~is_ood], ood_ids, categories, self.seed)
        for subject in self.subjects:
            unique, unique_codes = self._unique_latents(subject)
            ids = np.concatenate([shared.stimulus_id[~is_ood], unique.stimulus_id])
            points = np.concatenate([codes.high[~is_ood], unique_codes.high])
            documents += pool_split_documents(subject, ids, points, ood_ids, categories, self.seed)
        return documents

    # -- subjects --------------------------------------------------------------------------------
    def subject(self, subject: str) -> xr.Dataset:
        """One subject's trial-level assembly (storage_schemas/subject_assembly.v1.json)."""
        trials, layout = self.trials(subject), self.voxels(subject)
        f_low, f_high = self.model.transforms(self.subject_latents(subject))
        factors = _generative.trial_noise_factors(self.seed, subject, trials.n_trials)
        betas = np.empty((trials.n_trials, len(layout)), dtype=np.float32)
        ncsnr = np.empty(len(layout))
        for region in REGIONS:
            columns = layout.region_slice(region)
            voxels = _generative.region_voxels(self.seed, subject, region, columns.stop - columns.start)
            ncsnr[columns] = voxels.ncsnr
            _generative.generate_region_betas(
                self.seed, subject, region, trials, f_low, f_high, voxels, factors, self.scale.n_sessions, out=betas[:, columns]
            )
        shown = trials.n_repeats[trials.n_repeats > 0].astype(np.float64)
        k_all = float(np.mean(1.0 / shown))
        nc = {name: _generative.nc_from_ncsnr(ncsnr, k).astype(np.float32) for name, k in (("nc_4rep", 1 / 4), ("nc_12rep", 1 / 12), ("nc_allrep", k_all))}
        regions = [r for r in REGIONS if (layout.region == r).any()]
        # each variable carries its units, long_name and description (storage_schemas/variables.json)
        return with_variable_attrs(xr.Dataset(
            {"betas": (("trial", "neuroid"), betas)},
            coords={
                "stimulus_id": ("trial", trials.stimulus_id),
                "session": ("trial", trials.session),
                "run": ("trial", trials.run),
                "beta_index": ("trial", trials.beta_index),
                "repetition": ("trial", trials.repetition),
                "neuroid_id": ("neuroid", _neuroid_ids(subject, layout.voxel_index)),
                "region": ("neuroid", layout.region),
                "roi": ("neuroid", layout.roi),
                **{name: ("neuroid", values) for name, values in nc.items()},
                "ncsnr": ("neuroid", ncsnr.astype(np.float32)),
                "voxel_index_in_brain_mask": ("neuroid", layout.voxel_index),
                "x": ("neuroid", layout.x),
                "y": ("neuroid", layout.y),
                "z": ("neuroid", layout.z),
            },
            attrs={"subject": subject, "regions": regions, **self.provenance},
        ))

    # -- features --------------------------------------------------------------------------------
    def feature_set(self, model: str) -> xr.DataArray:
        """One model's activations over every stimulus of the stimulus table (stimulus_id, feature)."""
        ids, codes = self.latents()
        return with_variable_attrs(_features.feature_array(model, _features.model_features(model, self.model, codes, self.scale, self.seed), ids))

    def features(self) -> dict[tuple[str, str], xr.DataArray]:
        """Every synthetic feature set, keyed by (model, layer)."""
        return {(model, layer): self.feature_set(model) for model, layer in _features.MODEL_LAYERS.items()}

    @cached_property
    def ground_truth(self) -> GroundTruth:
        return GroundTruth(
            dataset=self,
            model=self.model,
            low_level_weight=dict(_generative.LOW_LEVEL_WEIGHT),
            ceiling_target=dict(_generative.CEILING_TARGET),
            fraction_below_filter=dict(_generative.FRACTION_BELOW_FILTER),
            expected_ranking=dict(_features.EXPECTED_RANKING),
            expected_linear_fraction=dict(_features.EXPECTED_LINEAR_FRACTION),
            feature_views=dict(_features.VIEWS),
        )


__all__ = ["GENERATOR", "GroundTruth", "OOD_CATEGORIES", "SyntheticDataset"]
