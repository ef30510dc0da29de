"""Plan one subject's ingest from a release: trial and voxel coordinates, and the sessions to stream.

Planning reads the trial tables, the masks, the noise-ceiling maps and the statmaps' headers, never
the betas; every problem it can see (a missing file, a bad table, a mask of the wrong shape) is
raised before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from laion_lake.ingest.layout import HELD_OUT_SESSIONS, NOISE_CEILING_MAPS, RETINOTOPIC_ROIS, ROIS_ROOT, VENTRAL_ROI, IngestError, ReleaseLayout, require_file
from laion_lake.ingest.nifti import iter_statmap_voxels, load_image_bytes, read_mask, read_volume, statmap_volumes
from laion_lake.ingest.source import ReleaseFile
from laion_lake.ingest.transform import clean_noise_ceiling, ncsnr_from_nc_12rep, zscore_session
from laion_lake.ingest.trials import SessionTrials, read_session_trials, trial_coordinates
from laion_lake.ingest.voxels import VoxelSelection, select_voxels

# bumped when the values written for the same source change (invalidates resumable progress);
# 2: z-scoring over finite trials before NaN -> 0, later retinotopic ROI wins (SPEC section 1)
TRANSFORM_VERSION = 2


@dataclass(frozen=True)
class SessionSource:
    """One session to stream: its files, its rows in the subject's trial order, and its fingerprint."""

    session: int
    statmap: ReleaseFile
    trials: SessionTrials
    start: int
    stop: int

    @property
    def key(self) -> str:
        return f"ses-{self.session:02d}"

    @property
    def fingerprint(self) -> str:
        return f"v{TRANSFORM_VERSION}:{self.trials.digest[:16]}:{self.statmap.fingerprint('single-trial statmap')}"


@dataclass
class SubjectPlan:
    """What an ingest of one subject writes, except the betas themselves."""

    subject: str
    scope: str
    layout: ReleaseLayout
    sessions: list[SessionSource]
    trials: xr.Dataset
    neuroids: xr.Dataset
    selection: VoxelSelection
    notes: list[str] = field(default_factory=list)
    # the brain mask's grid (x, y, z index it), kept in the subject's attrs so maps land in T1w space
    grid: dict = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return int(self.trials.sizes["trial"])

    def provenance(self) -> dict:
        return {
            "source": self.layout.root,
            "scope": self.scope,
            "sessions": [s.key for s in self.sessions],
            "transform_version": TRANSFORM_VERSION,
            "notes": list(self.notes),
        }


def neuroid_coordinates(subject: str, selection: VoxelSelection, maps: dict[str, np.ndarray]) -> tuple[xr.Dataset, list[str]]:
    """Neuroid coordinates of the selected voxels; ``maps`` holds the three NC maps (3D)."""
    notes = []
    coords: dict[str, tuple[str, np.ndarray]] = {
        "neuroid_id": ("neuroid", np.array([f"{subject}.{i}" for i in selection.brain_index.tolist()], dtype=str)),
        "region": ("neuroid", selection.region.astype(str)),
        "roi": ("neuroid", selection.roi.astype(str)),
        "voxel_index_in_brain_mask": ("neuroid", selection.brain_index.astype(np.int64)),
    }
    for name in ("nc_4rep", "nc_12rep", "nc_allrep"):
        values, changed = clean_noise_ceiling(maps[name][selection.xyz])
        if changed:
            notes.append(f"{name}: {changed} value(s) non-finite or outside [0, 100], set to 0 or clipped")
        coords[name] = ("neuroid", values)
    ncsnr, infinite = ncsnr_from_nc_12rep(coords["nc_12rep"][1])
    if infinite:
        notes.append(f"ncsnr: {infinite} voxel(s) with nc_12rep = 100 (infinite ncsnr) stored as float32 max")
    coords["ncsnr"] = ("neuroid", ncsnr)
    for axis, name in enumerate("xyz"):
        coords[name] = ("neuroid", selection.xyz[axis].astype(np.int16))
    return xr.Dataset(coords), notes


def plan_subject(layout: ReleaseLayout, subject: str, scope: str = "rois") -> SubjectPlan:
    """Read everything but the betas and check it; see the module doc."""
    brain_path = layout.brain_mask(subject)
    brain = read_mask(brain_path, "brain mask (meanR2gt15mask)")
    shape = brain.shape
    # read again for its header only (a small 3D file): the affine maps voxel indices to T1w mm
    affine = np.asarray(load_image_bytes(brain_path, "brain mask (meanR2gt15mask)").affine, dtype=np.float64)
    grid = {"brain_mask_affine": affine.tolist(), "brain_mask_shape": [int(n) for n in shape]}
    if not brain.any():
        raise IngestError(f"{brain_path}: the brain mask selects no voxel")
    roi_masks = {roi: read_mask(layout.roi_mask(subject, roi), f"ROI mask {roi}", shape) for roi in (*RETINOTOPIC_ROIS, VENTRAL_ROI)}
    maps = {name: read_volume(layout.noise_ceiling(subject, name), f"noise-ceiling map {desc}", shape) for name, desc in NOISE_CEILING_MAPS.items()}
    selection = select_voxels(brain, roi_masks, scope)
    if len(selection) == 0:
        raise IngestError(f"{layout.file(f'{ROIS_ROOT}/{subject}')}: no ROI voxel inside the brain mask {brain_path.name}")
    neuroids, notes = neuroid_coordinates(subject, selection, maps)

    sessions, start = [], 0
    for session in layout.sessions(subject):
        statmap = require_file(layout.statmap(subject, session), "single-trial statmap")
        n_volumes = statmap_volumes(statmap, shape)
        table = read_session_trials(layout.trials(subject, session), session, n_volumes, statmap)
        sessions.append(SessionSource(session, statmap, table, start, start + n_volumes))
        start += n_volumes
    trials = trial_coordinates([s.trials for s in sessions])
    held_out = [s for s in layout.session_folders(subject) if s in HELD_OUT_SESSIONS]
    if held_out:
        notes.append(f"held-out session(s) {', '.join(layout.session_label(s) for s in held_out)} present in the source: not read")
    return SubjectPlan(subject, scope, layout, sessions, trials, neuroids, selection, selection.notes + notes, grid)


def load_session_betas(plan: SubjectPlan, session: SessionSource) -> np.ndarray:
    """One session's z-scored betas of the selected voxels, rows in the subject's trial order.

    Returns
    -------
    array of shape (n_trials_in_session, n_neuroids), float32
    """
    row_of_volume = np.empty(len(session.trials), dtype=np.int64)
    row_of_volume[session.trials.beta_index] = np.arange(len(session.trials))
    raw = None
    for first, values in iter_statmap_voxels(session.statmap, plan.selection.xyz):
        if raw is None:
            dtype = np.float32 if values.dtype == np.float32 else np.float64
            raw = np.empty((len(session.trials), len(plan.selection)), dtype=dtype)
        raw[row_of_volume[first : first + len(values)]] = values
    if raw is None:
        raise IngestError(f"{session.statmap}: no volume read")
    # z-scored in place when the file is float32 (as published): one session's betas in memory, not two
    return zscore_session(raw, out=raw if raw.dtype == np.float32 else None)
