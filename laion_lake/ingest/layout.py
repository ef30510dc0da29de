"""Where the files of a LAION-fMRI release are (docs/release-format.md), locally or in a bucket.

::

    derivatives/glmsingle-tedana/sub-XX/
        ses-YY/func/sub-XX_ses-YY_task-images_space-T1w_stat-effect_desc-SingletrialBetas_statmap.nii.gz
        ses-YY/func/sub-XX_ses-YY_task-images_desc-SingletrialBetas_trials.tsv
        sub-XX_task-images_space-T1w_desc-{Noiseceiling12rep,Noiseceiling4rep,NoiseceilingAllrep}_statmap.nii.gz
        sub-XX_task-images_space-T1w_desc-meanR2gt15mask_mask.nii.gz
    derivatives/rois/sub-XX/retinotopy/sub-XX_space-T1w_res-1pt8_label-<roi>_mask.nii.gz
    derivatives/rois/sub-XX/selectivity/sub-XX_space-T1w_res-1pt8_label-laionventral_mask.nii.gz
    stimuli/task-images_stimuli.h5, stimuli/task-images_metadata.csv   (not read: the lake keeps no images)
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from pathlib import Path
from typing import Any

from laion_lake.ingest.errors import IngestError
from storage_schemas.vocabulary import NOISE_CEILING_MAPS, RETINOTOPIC_ROIS, VENTRAL_ROI
from laion_lake.ingest.source import ReleaseFile, ReleaseFiles

__all__ = ["IngestError", "ReleaseLayout", "parse_session_label", "require_file"]

# held out of the public release (the real bucket lists none or denies them): never read
HELD_OUT_SESSIONS = (31, 32, 33, 34)
BETAS_ROOT = "derivatives/glmsingle-tedana"
ROIS_ROOT = "derivatives/rois"
_SUBJECT = re.compile(r"^sub-\d{2}$")
_SESSION = re.compile(r"^ses-(\d+)$")
_SESSION_VALUE = re.compile(r"^(?:ses-)?0*(\d+)(?:\.0*)?$")


def parse_session_label(value: object) -> int | None:
    """The session number of a trials table's ``session`` value: ``ses-01`` (as published), ``1`` or ``1.0``; None if neither."""
    match = _SESSION_VALUE.match(str(value).strip())
    return int(match[1]) if match else None


class ReleaseLayout:
    """The files of one release rooted at ``root`` (a local folder or ``s3://bucket/prefix``).

    Parameters
    ----------
    root : str or Path
        The folder that holds ``derivatives/``.
    storage_options : dict, optional
        fsspec options of the source, e.g. ``{"anon": True}`` for the public bucket.
    """

    def __init__(self, root: str | Path, storage_options: dict[str, Any] | None = None) -> None:
        text = str(root)
        if "://" not in text:
            text = str(Path(text).expanduser().resolve())
        self.files = ReleaseFiles(text, storage_options)
        self.root = text

    def __repr__(self) -> str:
        return f"ReleaseLayout({self.root!r})"

    def file(self, relative: str) -> ReleaseFile:
        return ReleaseFile(self.files, relative)

    @property
    def betas_root(self) -> ReleaseFile:
        return self.file(BETAS_ROOT)

    @property
    def rois_root(self) -> ReleaseFile:
        return self.file(ROIS_ROOT)

    def subjects(self) -> list[str]:
        """``sub-XX`` folders of the release, sorted."""
        if not self.files.is_dir(BETAS_ROOT):
            raise IngestError(f"{self.betas_root}: not found (expected the release layout derivatives/glmsingle-tedana/sub-XX/, see docs/release-format.md)")
        return [name for name in self.files.folders(BETAS_ROOT) if _SUBJECT.match(name)]

    def session_folders(self, subject: str) -> list[int]:
        """Session numbers of every ``ses-YY`` folder of ``subject``, sorted."""
        folder = f"{BETAS_ROOT}/{subject}"
        if not self.files.is_dir(folder):
            raise IngestError(f"{self.file(folder)}: no such subject folder (release has {', '.join(self.subjects()) or 'none'})")
        return sorted(int(m[1]) for name in self.files.folders(folder) if (m := _SESSION.match(name)))

    def sessions(self, subject: str) -> list[int]:
        """The sessions to ingest, sorted: every ``ses-YY`` folder but the held-out sessions 31-34 (never read)."""
        found = [s for s in self.session_folders(subject) if s not in HELD_OUT_SESSIONS]
        if not found:
            raise IngestError(f"{self.file(f'{BETAS_ROOT}/{subject}')}: no ses-YY session folders (besides the held-out 31-34)")
        return found

    @staticmethod
    def session_label(session: int) -> str:
        return f"ses-{session:02d}"

    def statmap(self, subject: str, session: int) -> ReleaseFile:
        ses = self.session_label(session)
        return self.file(f"{BETAS_ROOT}/{subject}/{ses}/func/{subject}_{ses}_task-images_space-T1w_stat-effect_desc-SingletrialBetas_statmap.nii.gz")

    def trials(self, subject: str, session: int) -> ReleaseFile:
        ses = self.session_label(session)
        return self.file(f"{BETAS_ROOT}/{subject}/{ses}/func/{subject}_{ses}_task-images_desc-SingletrialBetas_trials.tsv")

    def noise_ceiling(self, subject: str, coordinate: str) -> ReleaseFile:
        return self.file(f"{BETAS_ROOT}/{subject}/{subject}_task-images_space-T1w_desc-{NOISE_CEILING_MAPS[coordinate]}_statmap.nii.gz")

    def brain_mask(self, subject: str) -> ReleaseFile:
        exact = self.file(f"{BETAS_ROOT}/{subject}/{subject}_task-images_space-T1w_desc-meanR2gt15mask_mask.nii.gz")
        if exact.exists():
            return exact
        # SPEC elides the prefix of the mask's name: accept any one file with the right desc
        folder = f"{BETAS_ROOT}/{subject}"
        matches = fnmatch.filter(self.files.files(folder), f"{subject}_*desc-meanR2gt15mask_mask.nii.gz")
        if len(matches) > 1:
            raise IngestError(f"{self.file(folder)}: several brain masks match *desc-meanR2gt15mask_mask.nii.gz: {', '.join(matches)}")
        return self.file(posixpath.join(folder, matches[0])) if matches else exact

    def roi_mask(self, subject: str, roi: str) -> ReleaseFile:
        kind = "selectivity" if roi == VENTRAL_ROI else "retinotopy"
        return self.file(f"{ROIS_ROOT}/{subject}/{kind}/{subject}_space-T1w_res-1pt8_label-{roi}_mask.nii.gz")


def require_file(path: ReleaseFile, what: str) -> ReleaseFile:
    """``path`` if it is a file; an :class:`IngestError` naming it otherwise."""
    if not path.exists():
        raise IngestError(f"{path}: missing {what} (required by the release layout, docs/release-format.md)")
    return path
