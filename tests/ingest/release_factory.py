"""Write a LAION-fMRI release in the published layout (docs/release-format.md) with nibabel, and what a test expects of it.

What the published release has, in miniature: ``ses-01`` session labels in the trial tables (one
variant writes plain integers), no ``splits/`` folder (the splits ship with laion-lake), the
held-out sessions 31-34 absent, images that lost a repeat, a few NaN trials, overlapping
retinotopic ROI masks (the later ROI wins), ROI voxels outside the brain mask, and the stimuli
``.h5`` (dataset ``images``, JPEG bytes) with its row-aligned metadata ``.csv``. Stimulus ids are
real ones, drawn from the packaged split JSONs, so the published splits apply to the release.

Five subjects, sessions 1, 30 and 35. Sizes: ``tiny`` (tests: a 10 x 10 x 8 grid, ~34 trials a
session) and ``large`` (benchmarks: a 20 x 20 x 16 grid, ~1,100 trials a session, as many as a
real session). Every expectation a test
checks is recomputed here from the files with plain numpy, independently of laion_lake.ingest.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from laion_lake.published_splits import published_split_documents

SUBJECTS = ("sub-01", "sub-03", "sub-05", "sub-06", "sub-07")
HELD_OUT_SESSIONS = (31, 32, 33, 34)
RETINOTOPIC = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4")
# boxes (x, y, z) on the 10 x 10 x 8 grid (scaled for larger sizes). Overlaps: V1d/V2d (V2d wins),
# V3v and V3d with hV4 (hV4 wins); laionventral overlaps V3 and hV4 (they stay retinotopic) and
# reaches outside the brain mask.
BOXES = {
    "V1v": ((1, 3), (2, 5), (2, 4)),
    "V1d": ((1, 4), (5, 8), (2, 4)),
    "V2v": ((3, 5), (2, 5), (2, 4)),
    "V2d": ((3, 5), (4, 8), (2, 4)),
    "V3v": ((5, 7), (2, 5), (2, 4)),
    "V3d": ((5, 7), (5, 8), (2, 4)),
    "hV4": ((6, 9), (3, 7), (2, 4)),
    "laionventral": ((6, 10), (1, 9), (3, 7)),
}
REGION_OF_ROI = {"V1v": "V1", "V1d": "V1", "V2v": "V2", "V2d": "V2", "V3v": "V3", "V3d": "V3", "hV4": "V4", "laionventral": "IT"}
CONSTANT = np.float32(3.25)
STIMULI_H5 = "stimuli/task-images_stimuli.h5"
METADATA_CSV = "stimuli/task-images_metadata.csv"


@dataclass(frozen=True)
class ReleaseSize:
    """How big a release the factory writes.

    ``shared_12``, ``shared_nsd``, ``unique``: images taken from the published tau split's
    (train, test) ids; ``ood``: images per OOD category (from the ood test ids); ``repeats``:
    presentations of a 12-rep and of a 4-rep image.
    """

    name: str
    grid_factor: int
    shared_12: tuple[int, int]
    shared_nsd: tuple[int, int]
    ood_categories: tuple[str, ...]
    ood: int
    unique: tuple[int, int]
    repeats: tuple[int, int]
    sessions: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (10 * self.grid_factor, 10 * self.grid_factor, 8 * self.grid_factor)


SIZES = {
    "tiny": ReleaseSize("tiny", 1, (6, 3), (2, 1), ("shape", "illusion-classic", "gabor", "cropped"), 1, (6, 3), (6, 3), (1, 30, 35)),
    "large": ReleaseSize(
        "large", 2, (120, 30), (40, 10),
        ("shape", "relations", "unusual", "cropped", "selfmade", "gaudy", "illusion-classic", "gabor", "illusion-natural"), 4,
        (240, 60), (12, 4), (1, 30, 35),
    ),
}  # fmt: skip
TINY = SIZES["tiny"]
SHAPE = TINY.shape
SESSIONS = TINY.sessions


@functools.cache
def _documents() -> dict[tuple[str, str], dict]:
    return {(d["lake_pool"], d["name"]): d for d in published_split_documents()}


def _published(pool: str, name: str) -> dict:
    return _documents()[(pool, name)]["variants"][0]


def shared_ids(size: ReleaseSize = TINY) -> tuple[list[str], list[str]]:
    """(12-rep images, 4-rep images) of the release: real ids from the published shared splits."""
    tau = _published("shared", "tau")
    pick = lambda ids, prefix, n: sorted(i for i in ids if i.startswith(prefix))[:n]  # noqa: E731
    twelve = pick(tau["train_ids"], "shared_12rep_", size.shared_12[0]) + pick(tau["test_ids"], "shared_12rep_", size.shared_12[1])
    four = pick(tau["train_ids"], "shared_4rep_NSD", size.shared_nsd[0]) + pick(tau["test_ids"], "shared_4rep_NSD", size.shared_nsd[1])
    ood = _published("shared", "ood")["test_ids"]
    for category in size.ood_categories:
        four += pick(ood, f"shared_4rep_OOD_{category}_", size.ood)
    return twelve, four


def unique_ids(subject: str, size: ReleaseSize = TINY) -> list[str]:
    """The subject's own images: real ids from its published tau split."""
    tau = _published(subject, "tau")
    pick = lambda ids, n: sorted(i for i in ids if i.startswith("unique_"))[:n]  # noqa: E731
    return pick(tau["train_ids"], size.unique[0]) + pick(tau["test_ids"], size.unique[1])


SHARED_12, SHARED_4 = shared_ids()
# presentations lost (the data has one fewer than the design)
LOST = {"sub-01": [SHARED_12[1], unique_ids("sub-01")[2]], "sub-03": [SHARED_4[0]], "sub-05": [], "sub-06": [SHARED_12[0]], "sub-07": []}


def _lost(subject: str, size: ReleaseSize) -> list[str]:
    if size.name == "tiny":
        return LOST[subject]
    twelve, four = shared_ids(size)
    return [twelve[1], four[0], unique_ids(subject, size)[2]] if subject in ("sub-01", "sub-03") else [twelve[0]]


# -- paths -------------------------------------------------------------------------------------------


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


# -- the release -------------------------------------------------------------------------------------


def brain_mask(subject: str, size: ReleaseSize = TINY) -> np.ndarray:
    f = size.grid_factor
    x, y, z = np.indices(size.shape) / f
    shift = 0.0 if subject == "sub-01" else 0.4
    return ((x - 4.5 - shift) / 4.6) ** 2 + ((y - 4.5) / 4.8) ** 2 + ((z - 3.5) / 3.9) ** 2 <= 1.0


def roi_masks(size: ReleaseSize = TINY) -> dict[str, np.ndarray]:
    f = size.grid_factor
    masks = {}
    for roi, box in BOXES.items():
        mask = np.zeros(size.shape, dtype=bool)
        mask[tuple(slice(a * f, b * f) for a, b in box)] = True
        masks[roi] = mask
    return masks


def latent(stimulus_id: str, dim: int = 16) -> np.ndarray:
    """A stimulus's latent code (seeded by its id): the signal in the betas, and the factory's 'model features'."""
    seed = int.from_bytes(hashlib.sha256(stimulus_id.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim)


@dataclass(frozen=True)
class SpecialVoxels:
    """Voxels (x, y, z) the factory gave NaNs or a constant, and in which session."""

    partial_nan: tuple[int, int, int]  # NaN on a few trials of the first session
    all_nan: tuple[int, int, int]  # NaN on every trial of the second session
    constant: tuple[int, int, int]  # CONSTANT on every trial of the third session
    nan_trials: tuple[int, ...]  # the volumes (beta_index) of partial_nan that are NaN


def presentations(subject: str, size: ReleaseSize = TINY) -> list[str]:
    twelve, four = shared_ids(size)
    ids = [i for i in twelve for _ in range(size.repeats[0])] + [i for i in four + unique_ids(subject, size) for _ in range(size.repeats[1])]
    for lost in _lost(subject, size):
        ids.remove(lost)
    return ids


def write_subject(root: Path, subject: str, rng: np.random.Generator, size: ReleaseSize = TINY, session_labels: str = "bids") -> SpecialVoxels:
    shape = size.shape
    brain = brain_mask(subject, size)
    save(brain_mask_path(root, subject), brain.astype(np.uint8))
    masks = roi_masks(size)
    for roi, mask in masks.items():
        save(roi_path(root, subject, roi), mask.astype(np.uint8))
    assert (masks["laionventral"] & ~brain).any()  # ROI voxels outside the brain mask
    for desc in ("Noiseceiling12rep", "Noiseceiling4rep", "NoiseceilingAllrep"):
        nc = np.where(brain, rng.uniform(0.0, 85.0, shape), 0.0).astype(np.float32)
        save(nc_path(root, subject, desc), nc)

    # the voxels of the visual ROIs inside the brain, farthest from the centre first (the edge)
    in_roi = np.argwhere(np.any(list(masks.values()), axis=0) & brain)
    centre = np.array([4.5, 4.5, 3.5]) * size.grid_factor
    radius = np.sum(((in_roi - centre) / (np.array([4.6, 4.8, 3.9]) * size.grid_factor)) ** 2, axis=1)
    edge = in_roi[np.argsort(-radius)]
    first, second, third = size.sessions[:3]
    voxel_weights = rng.standard_normal((*shape, 4)).astype(np.float32)

    # spread each image's presentations over the sessions, round robin
    per_session: dict[int, list[str]] = {s: [] for s in size.sessions}
    for k, stimulus_id in enumerate(presentations(subject, size)):
        per_session[size.sessions[k % len(size.sessions)]].append(stimulus_id)
    nan_trials: tuple[int, ...] = ()
    for session in size.sessions:
        labels = list(rng.permutation(per_session[session]))
        n = len(labels)
        runs = np.where(np.arange(n) < n // 2, 1, 2)
        offset = rng.normal(2.0 * (size.sessions.index(session) + 1), 1.0, shape).astype(np.float32)  # a per-session offset
        scale = rng.uniform(0.5, 3.0, shape).astype(np.float32)
        signal = np.stack([latent(label)[:4] for label in labels]).astype(np.float32)  # (n, 4)
        betas = np.einsum("xyzk,nk->xyzn", voxel_weights, signal) * np.float32(0.6)
        betas += rng.standard_normal((*shape, n), dtype=np.float32)
        betas = offset[..., None] + scale[..., None] * betas
        betas[~brain] = np.nan
        if session == first:
            nan_trials = tuple(sorted(int(v) for v in rng.choice(n, 3, replace=False)))
            betas[tuple(edge[0])][list(nan_trials)] = np.nan
        if session == second:
            betas[tuple(edge[1])] = np.nan
        if session == third:
            betas[tuple(in_roi[len(in_roi) // 2])] = CONSTANT
        save(statmap_path(root, subject, session), betas)
        label = f"ses-{session:02d}" if session_labels == "bids" else str(session)
        rows = ["session\trun\tbeta_index\tlabel"] + [f"{label}\t{runs[b]}\t{b}\t{labels[b]}" for b in range(n)]
        # rows not in beta_index order: the ingest must sort by (session, run, beta_index)
        order = [0] + list(1 + rng.permutation(n))
        trials_path(root, subject, session).write_text("\n".join(rows[i] for i in order) + "\n")
    voxel = lambda v: tuple(int(c) for c in v)  # noqa: E731
    return SpecialVoxels(voxel(edge[0]), voxel(edge[1]), voxel(in_roi[len(in_roi) // 2]), nan_trials)


def _jpeg(stimulus_id: str) -> bytes:
    from PIL import Image

    colour = tuple(int(v) for v in (np.abs(latent(stimulus_id)[:3]) * 80).clip(0, 255))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_stimuli(root: Path, size: ReleaseSize = TINY) -> list[str]:
    """``stimuli/task-images_stimuli.h5`` (dataset ``images``: JPEG bytes) and the row-aligned metadata CSV."""
    import h5py
    import pandas as pd

    twelve, four = shared_ids(size)
    rows = [(i, 12 if i in twelve else 4, i.split("_")[2], "shared") for i in twelve + four]
    rows += [(i, 4, i.split("_")[1], "unique") for s in SUBJECTS for i in unique_ids(s, size)]
    (root / "stimuli").mkdir(parents=True, exist_ok=True)
    with h5py.File(root / STIMULI_H5, "w") as handle:
        images = handle.create_dataset("images", (len(rows),), dtype=h5py.vlen_dtype(np.uint8))
        for k, (stimulus_id, *_) in enumerate(rows):
            images[k] = np.frombuffer(_jpeg(stimulus_id), dtype=np.uint8)
    pd.DataFrame(rows, columns=["image_name", "n_reps", "dataset", "unique_or_shared"]).to_csv(root / METADATA_CSV, index=False)
    return [r[0] for r in rows]


def write_release(root: Path, seed: int = 0, size: str = "tiny", session_labels: str = "bids") -> dict[str, SpecialVoxels]:
    """Write a release under ``root``; return each subject's special voxels.

    ``session_labels``: ``"bids"`` (``ses-01``, as published) or ``"integer"`` (``1``).
    """
    spec = SIZES[size]
    rng = np.random.default_rng(seed)
    special = {subject: write_subject(root, subject, rng, spec, session_labels) for subject in SUBJECTS}
    write_stimuli(root, spec)
    return special


def upload_release(root: Path, url: str, storage_options: dict) -> None:
    """Copy a written release to ``url`` (e.g. ``s3://bucket/prefix`` on moto), file by file."""
    import fsspec

    fs, prefix = fsspec.core.url_to_fs(url, **storage_options)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"{prefix}/{path.relative_to(root).as_posix()}")


def write_features(path: Path, stimulus_ids: list[str], dim: int = 16) -> Path:
    """An ``.npz`` feature file (``features``, ``stimulus_id``): the latent codes plus noise (a model that sees the signal)."""
    rng = np.random.default_rng(1)
    features = np.stack([latent(i, dim) for i in stimulus_ids]) + 0.5 * rng.standard_normal((len(stimulus_ids), dim))
    np.savez(path, features=features.astype(np.float32), stimulus_id=np.asarray(stimulus_ids))
    return path


# -- what a test expects, from the files alone ---------------------------------------------------------


def sessions_of(root: Path, subject: str) -> list[int]:
    folder = root / "derivatives/glmsingle-tedana" / subject
    return sorted(int(p.name[4:]) for p in folder.glob("ses-*") if p.is_dir())


def read_trials(root: Path, subject: str) -> list[dict]:
    """Every trial of a subject, sorted by (session, run, beta_index), with its 1-based repetition."""
    rows = []
    for session in sessions_of(root, subject):
        lines = trials_path(root, subject, session).read_text().splitlines()
        header = lines[0].split("\t")
        for line in lines[1:]:
            values = dict(zip(header, line.split("\t")))
            assert values["session"] in (f"ses-{session:02d}", str(session))
            rows.append({"session": session, "run": int(values["run"]), "beta_index": int(values["beta_index"]), "label": values["label"]})
    rows.sort(key=lambda r: (r["session"], r["run"], r["beta_index"]))
    seen: dict[str, int] = {}
    for row in rows:
        seen[row["label"]] = seen.get(row["label"], 0) + 1
        row["repetition"] = seen[row["label"]]
    return rows


def expected_voxels(root: Path, subject: str, scope: str = "rois") -> dict[str, dict]:
    """region -> {brain_index: (x, y, z, roi)} from the mask files; a later retinotopic ROI overwrites an earlier one."""
    brain = np.asarray(nib.load(str(brain_mask_path(root, subject))).dataobj) > 0
    index = -np.ones(brain.shape, dtype=np.int64)
    index[brain] = np.arange(int(brain.sum()))  # boolean indexing is C order
    masks = {roi: np.asarray(nib.load(str(roi_path(root, subject, roi))).dataobj) > 0 for roi in BOXES}
    owner = np.full(brain.shape, "", dtype=object)
    for roi in RETINOTOPIC:
        owner[masks[roi]] = roi
    retinotopic_any = owner != ""
    owner[masks["laionventral"] & ~retinotopic_any] = "laionventral"
    if scope == "brain":
        owner[owner == ""] = "other"
    regions: dict[str, dict] = {}
    for x, y, z in np.argwhere(brain & (owner != "")):
        roi = owner[x, y, z]
        regions.setdefault(REGION_OF_ROI.get(roi, "other"), {})[int(index[x, y, z])] = (x, y, z, roi)
    return regions


def zscore_reference(values: np.ndarray) -> np.ndarray:
    """SPEC section 1 in its stated order: nanmean/nanstd (ddof 0) over finite trials, sd 0 -> 1, z, then NaN -> 0."""
    mean = np.nanmean(values, axis=0)
    sd = np.nanstd(values, axis=0)
    sd[(sd == 0) | ~np.isfinite(sd)] = 1.0
    return np.nan_to_num((values - mean) / sd, nan=0.0)


def expected_betas(root: Path, subject: str, voxels_xyz: np.ndarray) -> np.ndarray:
    """z-scored betas (trials sorted as read_trials, voxels as given), float64, computed plainly."""
    out = []
    trials = read_trials(root, subject)
    for session in sessions_of(root, subject):
        data = np.asarray(nib.load(str(statmap_path(root, subject, session))).get_fdata(dtype=np.float64))
        rows = [r for r in trials if r["session"] == session]
        values = np.stack([data[x, y, z, :] for x, y, z in voxels_xyz], axis=1)  # (volumes, voxels)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN voxel
                z = zscore_reference(values)
        out.append(z[[r["beta_index"] for r in rows]])
    return np.concatenate(out)
