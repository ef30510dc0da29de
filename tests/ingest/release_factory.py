"""Write a miniature LAION-fMRI release (SPEC section 5 layout) with nibabel, and what a test expects of it.

A 10 x 10 x 8 grid, subjects sub-01 and sub-03, sessions 1-3 present (session 4 held out: absent),
two runs per session. Shared images repeat across sessions, a few lost a repeat; a few edge voxels
hold NaN; one ROI voxel is constant within a session (zero sd). Everything the test checks is
recomputed from these files with plain numpy, independently of laion_lake.ingest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (10, 10, 8)
SUBJECTS = ("sub-01", "sub-03")
SESSIONS = (1, 2, 3)
HELD_OUT_SESSIONS = (4,)
CODES = {"sub-01": "p01", "sub-03": "p04"}
RETINOTOPIC = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4")
# boxes (x, y, z slices); V1d and V2d overlap (first listed wins), laionventral overlaps V3 and hV4
ROI_BOXES = {
    "V1v": (slice(1, 3), slice(2, 5), slice(2, 4)),
    "V1d": (slice(1, 4), slice(5, 8), slice(2, 4)),
    "V2v": (slice(3, 5), slice(2, 5), slice(2, 4)),
    "V2d": (slice(3, 5), slice(4, 8), slice(2, 4)),
    "V3v": (slice(5, 7), slice(2, 5), slice(2, 4)),
    "V3d": (slice(5, 7), slice(5, 8), slice(2, 4)),
    "hV4": (slice(7, 9), slice(3, 7), slice(2, 4)),
    "laionventral": (slice(6, 10), slice(1, 9), slice(3, 7)),
}
REGION_OF_ROI = {"V1v": "V1", "V1d": "V1", "V2v": "V2", "V2d": "V2", "V3v": "V3", "V3d": "V3", "hV4": "V4", "laionventral": "IT"}
SHARED_12 = [f"shared_12rep_LAION_cluster_{k}_i0.jpg" for k in range(4)] + ["shared_12rep_THINGS+_aardvark_01s.jpg"]
SHARED_4 = [
    "shared_4rep_NSD_special1000_nsd0001.png",
    "shared_4rep_NSD_special1000_nsd0002.png",
    "shared_4rep_OOD_shape_blob-01.png",
    "shared_4rep_OOD_illusion-classic_classic-illusion-3-ponzo.png",
    "shared_4rep_OOD_gabor_gabor-1-radial.jpg",
]
# presentations lost (the data has one fewer than the design)
LOST = {"sub-01": [SHARED_12[1], "unique_LAION_initial_cluster_2_i0_p01.jpg"], "sub-03": [SHARED_4[0]]}
CONSTANT = np.float32(3.25)


def unique_ids(subject: str) -> list[str]:
    code = CODES[subject]
    return [f"unique_LAION_initial_cluster_{k}_i0_{code}.jpg" for k in range(5)] + [f"unique_THINGS_dog_01b_{code}.jpg"]


def statmap_path(root: Path, subject: str, session: int) -> Path:
    ses = f"ses-{session:02d}"
    return root / "derivatives/glmsingle-tedana" / subject / ses / "func" / f"{subject}_{ses}_task-images_space-T1w_stat-effect_desc-SingletrialBetas_statmap.nii.gz"


def trials_path(root: Path, subject: str, session: int) -> Path:
    ses = f"ses-{session:02d}"
    return root / "derivatives/glmsingle-tedana" / subject / ses / "func" / f"{subject}_{ses}_task-images_desc-SingletrialBetas_trials.tsv"


def nc_path(root: Path, subject: str, desc: str) -> Path:
    return root / "derivatives/glmsingle-tedana" / subject / f"{subject}_task-images_space-T1w_desc-{desc}_statmap.nii.gz"


def brain_mask_path(root: Path, subject: str) -> Path:
    return root / "derivatives/glmsingle-tedana" / subject / f"{subject}_task-images_space-T1w_desc-meanR2gt15mask_mask.nii.gz"


def roi_path(root: Path, subject: str, roi: str) -> Path:
    kind = "selectivity" if roi == "laionventral" else "retinotopy"
    return root / "derivatives/rois" / subject / kind / f"{subject}_space-T1w_res-1pt8_label-{roi}_mask.nii.gz"


def save(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(data, np.diag([1.8, 1.8, 1.8, 1.0])).to_filename(str(path))


def brain_mask(subject: str) -> np.ndarray:
    x, y, z = np.indices(SHAPE)
    shift = 0.0 if subject == "sub-01" else 0.4
    return ((x - 4.5 - shift) / 4.6) ** 2 + ((y - 4.5) / 4.8) ** 2 + ((z - 3.5) / 3.9) ** 2 <= 1.0


def roi_masks() -> dict[str, np.ndarray]:
    masks = {}
    for roi, box in ROI_BOXES.items():
        mask = np.zeros(SHAPE, dtype=bool)
        mask[box] = True
        masks[roi] = mask
    return masks


@dataclass(frozen=True)
class SpecialVoxels:
    """Voxels (x, y, z) the factory gave NaNs or a constant, and in which session."""

    partial_nan: tuple[int, int, int]  # NaN on a few trials of session 1
    all_nan: tuple[int, int, int]  # NaN on every trial of session 2
    constant: tuple[int, int, int]  # CONSTANT on every trial of session 3


def presentations(subject: str) -> list[str]:
    ids = [i for i in SHARED_12 for _ in range(6)] + [i for i in SHARED_4 + unique_ids(subject) for _ in range(3)]
    for lost in LOST[subject]:
        ids.remove(lost)
    return ids


def write_subject(root: Path, subject: str, rng: np.random.Generator) -> SpecialVoxels:
    brain = brain_mask(subject)
    save(brain_mask_path(root, subject), brain.astype(np.uint8))
    masks = roi_masks()
    for roi, mask in masks.items():
        save(roi_path(root, subject, roi), mask.astype(np.uint8))
    for desc in ("Noiseceiling12rep", "Noiseceiling4rep", "NoiseceilingAllrep"):
        nc = np.where(brain, rng.uniform(0.0, 85.0, SHAPE), 0.0).astype(np.float32)
        save(nc_path(root, subject, desc), nc)

    # the voxels of the visual ROIs inside the brain, farthest from the centre first (the edge)
    in_roi = np.argwhere(np.any(list(masks.values()), axis=0) & brain)
    radius = np.sum(((in_roi - np.array([4.5, 4.5, 3.5])) / np.array([4.6, 4.8, 3.9])) ** 2, axis=1)
    edge = in_roi[np.argsort(-radius)]
    special = SpecialVoxels(*(tuple(int(v) for v in voxel) for voxel in (edge[0], edge[1], in_roi[len(in_roi) // 2])))

    # spread each image's presentations over the sessions, round robin
    per_session: dict[int, list[str]] = {s: [] for s in SESSIONS}
    for k, stimulus_id in enumerate(presentations(subject)):
        per_session[SESSIONS[k % len(SESSIONS)]].append(stimulus_id)
    for session in SESSIONS:
        labels = list(rng.permutation(per_session[session]))
        n = len(labels)
        runs = np.where(np.arange(n) < n // 2, 1, 2)
        offset = rng.normal(2.0 * session, 1.0, SHAPE)
        scale = rng.uniform(0.5, 3.0, SHAPE)
        betas = (offset[..., None] + scale[..., None] * rng.standard_normal((*SHAPE, n))).astype(np.float32)
        betas[~brain] = np.nan
        if session == 1:
            betas[special.partial_nan][rng.choice(n, 3, replace=False)] = np.nan
        if session == 2:
            betas[special.all_nan] = np.nan
        if session == 3:
            betas[special.constant] = CONSTANT
        save(statmap_path(root, subject, session), betas)
        rows = ["session\trun\tbeta_index\tlabel"] + [f"{session}\t{runs[b]}\t{b}\t{labels[b]}" for b in range(n)]
        # rows not in beta_index order: the ingest must sort by (session, run, beta_index)
        order = [0] + list(1 + rng.permutation(n))
        trials_path(root, subject, session).write_text("\n".join(rows[i] for i in order) + "\n")
    return special


def write_splits(root: Path) -> None:
    ood = [i for i in SHARED_4 if "_OOD_" in i]
    shared = sorted(i for i in SHARED_12 + SHARED_4 if i not in ood)
    pools = {"shared": shared, **{s: sorted(shared + unique_ids(s)) for s in SUBJECTS}}
    for pool, ids in pools.items():
        folder = root / "splits" / pool
        folder.mkdir(parents=True, exist_ok=True)
        tau_test = ids[::3]
        documents = {
            "tau": (sorted(set(ids) - set(tau_test)), tau_test),
            "ood": (ids, sorted(ood)),
        }
        for name, (train, test) in documents.items():
            document = {
                "name": name, "pool": pool, "splitter": "handmade", "params": {}, "n_train": len(train), "n_test": len(test),
                "variants": [{"variant_id": 0, "train_ids": train, "test_ids": test}],
            }
            (folder / f"{name}.json").write_text(json.dumps(document))


def write_release(root: Path, seed: int = 0) -> dict[str, SpecialVoxels]:
    """Write the miniature release under ``root``; return each subject's special voxels."""
    rng = np.random.default_rng(seed)
    special = {subject: write_subject(root, subject, rng) for subject in SUBJECTS}
    write_splits(root)
    return special


# -- what a test expects, from the files alone ---------------------------------------------------------


def read_trials(root: Path, subject: str) -> list[dict]:
    """Every trial of a subject, sorted by (session, run, beta_index), with its 1-based repetition."""
    rows = []
    for session in SESSIONS:
        lines = trials_path(root, subject, session).read_text().splitlines()
        header = lines[0].split("\t")
        for line in lines[1:]:
            values = dict(zip(header, line.split("\t")))
            rows.append({"session": int(values["session"]), "run": int(values["run"]), "beta_index": int(values["beta_index"]), "label": values["label"]})
    rows.sort(key=lambda r: (r["session"], r["run"], r["beta_index"]))
    seen: dict[str, int] = {}
    for row in rows:
        seen[row["label"]] = seen.get(row["label"], 0) + 1
        row["repetition"] = seen[row["label"]]
    return rows


def expected_voxels(root: Path, subject: str, scope: str = "rois") -> dict[str, dict]:
    """region -> {brain_index: (x, y, z, roi)} from the mask files (sets, independent of the ordering code)."""
    brain = np.asarray(nib.load(str(brain_mask_path(root, subject))).dataobj) > 0
    index = -np.ones(SHAPE, dtype=np.int64)
    index[brain] = np.arange(int(brain.sum()))  # boolean indexing is C order
    masks = {roi: np.asarray(nib.load(str(roi_path(root, subject, roi))).dataobj) > 0 for roi in ROI_BOXES}
    retinotopic_any = np.any([masks[r] for r in RETINOTOPIC], axis=0)
    regions: dict[str, dict] = {}
    claimed = np.zeros(SHAPE, dtype=bool)
    for roi in RETINOTOPIC:
        here = masks[roi] & brain & ~claimed
        claimed |= here
        for x, y, z in np.argwhere(here):
            regions.setdefault(REGION_OF_ROI[roi], {})[int(index[x, y, z])] = (x, y, z, roi)
    it = masks["laionventral"] & brain & ~retinotopic_any
    for x, y, z in np.argwhere(it):
        regions.setdefault("IT", {})[int(index[x, y, z])] = (x, y, z, "laionventral")
    if scope == "brain":
        other = brain & ~retinotopic_any & ~masks["laionventral"]
        for x, y, z in np.argwhere(other):
            regions.setdefault("other", {})[int(index[x, y, z])] = (x, y, z, "other")
    return regions


def expected_betas(root: Path, subject: str, voxels_xyz: np.ndarray) -> np.ndarray:
    """z-scored betas (trials sorted as read_trials, voxels as given), float64, computed plainly."""
    out = []
    for session in SESSIONS:
        data = np.asarray(nib.load(str(statmap_path(root, subject, session))).get_fdata(dtype=np.float64))
        rows = [r for r in read_trials(root, subject) if r["session"] == session]
        values = np.stack([data[x, y, z, :] for x, y, z in voxels_xyz], axis=1)  # (volumes, voxels)
        values = np.where(np.isnan(values), 0.0, values)
        sd = values.std(axis=0)
        z = (values - values.mean(axis=0)) / np.where(sd == 0, 1.0, sd)
        out.append(z[[r["beta_index"] for r in rows]])
    return np.concatenate(out)
