"""Where the files of a LAION-fMRI release are (SPEC section 5), and the error raised on a bad one.

::

    derivatives/glmsingle-tedana/sub-XX/
        ses-YY/func/sub-XX_ses-YY_task-images_space-T1w_stat-effect_desc-SingletrialBetas_statmap.nii.gz
        ses-YY/func/sub-XX_ses-YY_task-images_desc-SingletrialBetas_trials.tsv
        sub-XX_task-images_space-T1w_desc-{Noiseceiling12rep,Noiseceiling4rep,NoiseceilingAllrep}_statmap.nii.gz
        sub-XX_task-images_space-T1w_desc-meanR2gt15mask_mask.nii.gz
    derivatives/rois/sub-XX/retinotopy/sub-XX_space-T1w_res-1pt8_label-<roi>_mask.nii.gz
    derivatives/rois/sub-XX/selectivity/sub-XX_space-T1w_res-1pt8_label-laionventral_mask.nii.gz
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from laion_lake.errors import LakeError

RETINOTOPIC_ROIS = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4")
VENTRAL_ROI = "laionventral"
# noise-ceiling coordinate -> the desc- of its map
NOISE_CEILING_MAPS = {"nc_12rep": "Noiseceiling12rep", "nc_4rep": "Noiseceiling4rep", "nc_allrep": "NoiseceilingAllrep"}
_SUBJECT = re.compile(r"^sub-\d{2}$")
_SESSION = re.compile(r"^ses-(\d+)$")


class IngestError(LakeError, ValueError):
    """A release or assembly file that cannot be ingested; the message names the file."""


@dataclass(frozen=True)
class ReleaseLayout:
    """Paths of one release rooted at ``root`` (a local folder)."""

    root: Path

    @property
    def betas_root(self) -> Path:
        return self.root / "derivatives" / "glmsingle-tedana"

    @property
    def rois_root(self) -> Path:
        return self.root / "derivatives" / "rois"

    def subjects(self) -> list[str]:
        """``sub-XX`` folders of the release, sorted."""
        if not self.betas_root.is_dir():
            raise IngestError(f"{self.betas_root}: not found (expected the release layout derivatives/glmsingle-tedana/sub-XX/)")
        return sorted(p.name for p in self.betas_root.iterdir() if p.is_dir() and _SUBJECT.match(p.name))

    def sessions(self, subject: str) -> list[int]:
        """Session numbers with a ``ses-YY/func`` folder, sorted (held-out sessions are simply absent)."""
        folder = self.betas_root / subject
        if not folder.is_dir():
            raise IngestError(f"{folder}: no such subject folder (release has {', '.join(self.subjects()) or 'none'})")
        found = [int(m[1]) for p in folder.iterdir() if p.is_dir() and (m := _SESSION.match(p.name))]
        if not found:
            raise IngestError(f"{folder}: no ses-YY session folders")
        return sorted(found)

    @staticmethod
    def session_label(session: int) -> str:
        return f"ses-{session:02d}"

    def statmap(self, subject: str, session: int) -> Path:
        ses = self.session_label(session)
        return self.betas_root / subject / ses / "func" / f"{subject}_{ses}_task-images_space-T1w_stat-effect_desc-SingletrialBetas_statmap.nii.gz"

    def trials(self, subject: str, session: int) -> Path:
        ses = self.session_label(session)
        return self.betas_root / subject / ses / "func" / f"{subject}_{ses}_task-images_desc-SingletrialBetas_trials.tsv"

    def noise_ceiling(self, subject: str, coordinate: str) -> Path:
        return self.betas_root / subject / f"{subject}_task-images_space-T1w_desc-{NOISE_CEILING_MAPS[coordinate]}_statmap.nii.gz"

    def brain_mask(self, subject: str) -> Path:
        exact = self.betas_root / subject / f"{subject}_task-images_space-T1w_desc-meanR2gt15mask_mask.nii.gz"
        # SPEC elides the prefix of the mask's name: accept any one file with the right desc
        return exact if exact.exists() else _single_match(exact, f"{subject}_*desc-meanR2gt15mask_mask.nii.gz")

    def roi_mask(self, subject: str, roi: str) -> Path:
        kind = "selectivity" if roi == VENTRAL_ROI else "retinotopy"
        return self.rois_root / subject / kind / f"{subject}_space-T1w_res-1pt8_label-{roi}_mask.nii.gz"


def _single_match(expected: Path, pattern: str) -> Path:
    matches = sorted(expected.parent.glob(pattern)) if expected.parent.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise IngestError(f"{expected.parent}: several files match {pattern}: {', '.join(m.name for m in matches)}")
    return expected


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file; an :class:`IngestError` naming it otherwise."""
    if not path.is_file():
        raise IngestError(f"{path}: missing {what} (required by the release layout, SPEC section 5)")
    return path
