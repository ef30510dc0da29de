"""Check a subject in the lake against the release it came from, without the code that wrote it.

Verification recomputes what the lake should hold straight from the source files, with nibabel,
pandas and numpy written out here in the order SPEC section 1 states; it never calls the ingest's
own transform, voxel-selection or trial-table code (``transform``, ``voxels``, ``trials``,
``plan``), so a bug there cannot hide itself. What it checks:

- trials: every session's TSV, sorted by (run, beta_index), against the stored ``stimulus_id``,
  ``session``, ``run``, ``beta_index``; ``repetition`` = 1-based count of each stimulus so far;
- voxels: the region of every brain-mask voxel from the ROI masks (V1 = V1v + V1d, ..., a later
  retinotopic ROI overwrites an earlier one, IT = laionventral minus every retinotopic ROI) against
  the stored regions, and for a sample of stored voxels their brain-mask index, x/y/z, roi and the
  three noise ceilings (read at x/y/z, NaN -> 0, clipped to [0, 100]);
- betas: for the sampled voxels, each session's statmap streamed once, z-scored per voxel
  (nanmean / nanstd ddof 0 over finite trials, sd 0 or non-finite -> 1, then NaN/inf -> 0) and
  compared with the stored float32 values to ``RTOL``/``ATOL``;
- the stimulus table's repeat counts of this subject against the TSVs.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from laion_lake.ingest.layout import ReleaseLayout
from laion_lake.ingest.nifti import VOLUMES_PER_READ, load_image_bytes, open_image_stream
from laion_lake.lake import Lake
from storage_schemas.vocabulary import NOISE_CEILING_MAPS, REGION_OF_ROI, RETINOTOPIC_ROIS, STORED_REGIONS, VENTRAL_ROI

SHOWN = 3
DEFAULT_SAMPLE = 1024
# float32 storage of a float64 z-score: a few ulps at |z| ~ 10
RTOL, ATOL = 1e-6, 1e-6


def _mask(path: Any, what: str) -> np.ndarray:
    data = np.asarray(load_image_bytes(path, what).dataobj, dtype=np.float64)
    return np.nan_to_num(data, nan=0.0) > 0


def _regions_of_brain(layout: ReleaseLayout, subject: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(brain mask, region and roi of each brain voxel in C order ('' when in no ROI))."""
    brain = _mask(layout.brain_mask(subject), "brain mask")
    in_brain = brain.ravel(order="C")
    roi = np.full(int(in_brain.sum()), "", dtype=object)
    retinotopic = np.zeros(len(roi), dtype=bool)
    for name in RETINOTOPIC_ROIS:  # in this order, each overwriting the last
        here = _mask(layout.roi_mask(subject, name), f"ROI mask {name}").ravel(order="C")[in_brain]
        roi[here] = name
        retinotopic |= here
    ventral = _mask(layout.roi_mask(subject, VENTRAL_ROI), "ROI mask laionventral").ravel(order="C")[in_brain]
    roi[ventral & ~retinotopic] = VENTRAL_ROI
    region = np.array([REGION_OF_ROI.get(r, "") for r in roi], dtype=object)
    return brain, region, roi


def _session_tables(layout: ReleaseLayout, subject: str) -> list[tuple[int, Any]]:
    import pandas as pd

    tables = []
    for session in layout.sessions(subject):
        path = layout.trials(subject, session)
        table = pd.read_csv(io.BytesIO(path.read_bytes("trials table")), sep="\t", dtype=str, keep_default_na=False)
        table = table.assign(run=table["run"].astype(float).astype(int), beta_index=table["beta_index"].astype(float).astype(int))
        tables.append((session, table.sort_values(["run", "beta_index"], kind="stable").reset_index(drop=True)))
    return tables


def zscore_reference(values: np.ndarray) -> np.ndarray:
    """SPEC section 1, written out: (n_trials, n_voxels) raw betas of one session -> z-scores (float64)."""
    values = np.asarray(values, dtype=np.float64)
    values = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a voxel without a finite trial: mean NaN, z 0
        mean = np.nanmean(values, axis=0)
        sd = np.nanstd(values, axis=0, ddof=0)
        sd = np.where((sd == 0) | ~np.isfinite(sd), 1.0, sd)
        z = (values - mean) / sd
    return np.where(np.isfinite(z), z, 0.0)


def _differ(subject: str, name: str, stored: np.ndarray, expected: np.ndarray, ids: np.ndarray) -> list[str]:
    if stored.shape != expected.shape:
        return [f"{subject} {name}: stored shape {stored.shape}, source {expected.shape}"]
    bad = np.flatnonzero(stored.astype(str) != expected.astype(str)) if stored.dtype.kind in "OUS" or expected.dtype.kind in "OUS" else np.flatnonzero(stored != expected)
    if not len(bad):
        return []
    shown = ", ".join(f"{ids[i]}: stored {stored[i]!r}, source {expected[i]!r}" for i in bad[:SHOWN])
    return [f"{subject} {name}: {len(bad)} value(s) differ ({shown}{' ...' if len(bad) > SHOWN else ''})"]


def sample_voxels(n_voxels: int, sample: int | None, seed: int = 0) -> np.ndarray:
    """Sorted positions of the voxels checked: all when ``sample`` is None or >= n_voxels, else a seeded sample."""
    if sample is None or sample >= n_voxels:
        return np.arange(n_voxels)
    return np.sort(np.random.default_rng(seed).choice(n_voxels, size=sample, replace=False))


def verify_subject(lake: Lake, layout: ReleaseLayout, subject: str, sample: int | None = DEFAULT_SAMPLE) -> list[str]:
    """Every difference found between the lake's copy of ``subject`` and the release (empty if none); see the module doc."""
    ds = lake.subject(subject)
    differences: list[str] = []

    # trials
    tables = _session_tables(layout, subject)
    n_trials = sum(len(t) for _, t in tables)
    if ds.sizes["trial"] != n_trials:
        return [f"{subject}: lake holds {ds.sizes['trial']} trials, the release {n_trials}"]
    labels = np.concatenate([t["label"].str.strip().to_numpy(dtype=str) for _, t in tables])
    repetition = np.zeros(n_trials, dtype=np.int64)
    for stimulus_id in np.unique(labels):
        where = np.flatnonzero(labels == stimulus_id)
        repetition[where] = np.arange(1, len(where) + 1)
    expected_trials = {
        "stimulus_id": labels,
        "session": np.concatenate([np.full(len(t), s) for s, t in tables]),
        "run": np.concatenate([t["run"].to_numpy() for _, t in tables]),
        "beta_index": np.concatenate([t["beta_index"].to_numpy() for _, t in tables]),
        "repetition": repetition,
    }
    trial_ids = np.array([f"trial {i} ({s})" for i, s in enumerate(labels)])
    for name, expected in expected_trials.items():
        stored = np.asarray(ds[name].values)
        differences += _differ(subject, name, stored.astype(str) if name == "stimulus_id" else stored.astype(np.int64), expected, trial_ids)

    # voxels: the regions of the whole brain, then a sample in detail
    brain, region_of_brain, roi_of_brain = _regions_of_brain(layout, subject)
    stored_index = np.asarray(ds["voxel_index_in_brain_mask"].values).astype(np.int64)
    stored_region = np.asarray(ds["region"].values).astype(str)
    for region in STORED_REGIONS:
        expected = np.flatnonzero(region_of_brain == region)
        here = np.sort(stored_index[stored_region == region])
        if not np.array_equal(here, expected):
            missing, extra = np.setdiff1d(expected, here), np.setdiff1d(here, expected)
            differences.append(f"{subject} region {region}: {len(missing)} voxel(s) of the masks not stored as {region} (e.g. {missing[:SHOWN].tolist()}), {len(extra)} stored but not in it (e.g. {extra[:SHOWN].tolist()})")
    picked = sample_voxels(len(stored_index), sample)
    neuroid_ids = np.asarray(ds["neuroid_id"].values).astype(str)[picked]
    index = stored_index[picked]
    if index.min(initial=0) < 0 or index.max(initial=-1) >= len(region_of_brain):
        return differences + [f"{subject}: voxel_index_in_brain_mask outside the brain mask's {len(region_of_brain)} voxels"]
    flat = np.flatnonzero(brain.ravel(order="C"))[index]
    xyz = np.unravel_index(flat, brain.shape, order="C")
    for axis, name in enumerate("xyz"):
        differences += _differ(subject, name, np.asarray(ds[name].values)[picked].astype(np.int64), xyz[axis].astype(np.int64), neuroid_ids)
    expected_roi = roi_of_brain[index].astype(str)
    expected_roi = np.where(expected_roi == "", "other", expected_roi)
    differences += _differ(subject, "roi", np.asarray(ds["roi"].values)[picked].astype(str), expected_roi, neuroid_ids)
    for name in NOISE_CEILING_MAPS:
        data = np.asarray(load_image_bytes(layout.noise_ceiling(subject, name), f"noise-ceiling map {name}").dataobj, dtype=np.float64)
        expected = np.clip(np.nan_to_num(data[xyz], nan=0.0, posinf=100.0, neginf=0.0), 0, 100).astype(np.float32)
        differences += _differ(subject, name, np.asarray(ds[name].values)[picked].astype(np.float32), expected, neuroid_ids)

    # betas of the sampled voxels, session by session
    stored_betas = np.asarray(ds["betas"].isel(neuroid=picked).values)
    start = 0
    for session, table in tables:
        statmap = layout.statmap(subject, session)
        with open_image_stream(statmap, "single-trial statmap") as image:
            n_volumes = int(image.shape[3])
            raw = np.empty((n_volumes, len(picked)))
            for first in range(0, n_volumes, VOLUMES_PER_READ):
                block = np.asanyarray(image.dataobj[..., first : first + VOLUMES_PER_READ])
                raw[first : first + block.shape[3]] = block[xyz[0], xyz[1], xyz[2], :].T
        expected = zscore_reference(raw)[table["beta_index"].to_numpy()]
        stored = stored_betas[start : start + len(table)].astype(np.float64)
        bad = np.argwhere(~np.isclose(stored, expected, rtol=RTOL, atol=ATOL))
        if len(bad):
            shown = ", ".join(
                f"trial {start + r} ({labels[start + r]}) x {neuroid_ids[c]}: stored {stored[r, c]!r}, source {expected[r, c]!r}" for r, c in bad[:SHOWN]
            )
            differences.append(f"{subject} betas ses-{session:02d}: {len(bad)} value(s) differ ({shown}{' ...' if len(bad) > SHOWN else ''})")
        start += len(table)

    # the stimulus table's repeat counts
    if "stimuli" in lake.manifest and subject in lake.stimuli["subject"].values:
        table = lake.stimuli["n_repeats"].sel(subject=subject)
        stored_counts = {k: v for k, v in zip(table["stimulus_id"].values.tolist(), table.values.tolist()) if v}
        ids, counts = np.unique(labels, return_counts=True)
        expected_counts = dict(zip(ids.tolist(), counts.tolist()))
        wrong = sorted(i for i in set(stored_counts) | set(expected_counts) if stored_counts.get(i, 0) != expected_counts.get(i, 0))
        if wrong:
            shown = ", ".join(f"{i}: table {stored_counts.get(i, 0)}, source {expected_counts.get(i, 0)}" for i in wrong[:SHOWN])
            differences.append(f"{subject} stimulus table n_repeats: {len(wrong)} stimulus(es) differ ({shown})")
    return differences

