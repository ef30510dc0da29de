"""Ingest a LAION-fMRI release (docs/release-format.md) into a lake, session by session and resumably.

>>> report = ingest_release("s3://BUCKET/PREFIX", "./lake", source_storage_options={"anon": True})
>>> print(report.summary())

The release is read where it is (a local folder, or a bucket through fsspec), each file streamed
once (see :mod:`laion_lake.ingest.source`); nothing is copied to local disk first.

Per subject: plan (read tables, masks and maps; check them), then stream the sessions through
:func:`laion_lake.lake.subjects.write_subject_streaming`: one session's 4D statmap is read volume
block by volume block, z-scored and written, so memory holds one session's (trials x voxels)
betas, whatever the scope. Each written session is recorded inside the incomplete store; a re-run
skips those whose source is unchanged. The store is marked complete, and listed in the manifest,
only at the end. Then the stimulus table is rebuilt and the published splits (shipped with the
package, :mod:`laion_lake.published_splits`) written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from laion_lake.ingest.catalog import finalize_ingest
from laion_lake.ingest.layout import IngestError, ReleaseLayout
from laion_lake.ingest.plan import SubjectPlan, load_session_betas, plan_subject
from laion_lake.ingest.verify import DEFAULT_SAMPLE, verify_subject
from laion_lake.ingest.voxels import SCOPES
from laion_lake.lake import create_lake, open_lake
from laion_lake.lake.subjects import SubjectStore, TrialBlock, subject_path, write_subject_streaming
from laion_lake.lake.zarr_io import is_complete


@dataclass
class SubjectReport:
    """What happened to one subject.

    ``status``: ``"ingested"`` (written in this run, possibly resuming an interrupted one) or
    ``"already in the lake"`` (complete store found, nothing written). ``differences`` is None when
    not verified, else the list of what differs from the source (empty: identical).
    """

    subject: str
    status: str
    sessions_written: list[str] = field(default_factory=list)
    sessions_skipped: list[str] = field(default_factory=list)
    n_trials: int = 0
    regions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    differences: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (what a flow task returns)."""
        return asdict(self)

    def summary(self) -> str:
        regions = ", ".join(f"{r} {n:,}" for r, n in self.regions.items())
        line = f"{self.subject}: {self.status}; {self.n_trials:,} trials; {regions}"
        if self.sessions_written or self.sessions_skipped:
            line += f"; sessions written {len(self.sessions_written)}, skipped (already written) {len(self.sessions_skipped)}"
        lines = [line] + [f"  note: {n}" for n in self.notes]
        if self.differences is not None:
            lines.append(f"  verify: {'identical to the source' if not self.differences else f'{len(self.differences)} difference(s)'}")
            lines += [f"    {d}" for d in self.differences]
        return "\n".join(lines)


@dataclass
class IngestReport:
    """What :func:`ingest_release` did, per subject, and the tables it rebuilt."""

    lake_url: str
    subjects: dict[str, SubjectReport] = field(default_factory=dict)
    n_stimuli: int = 0
    pools: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def differences(self) -> list[str]:
        """Every difference found by verification (empty if none, or if not verified)."""
        return [d for r in self.subjects.values() for d in (r.differences or [])]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return asdict(self)

    def summary(self) -> str:
        lines = [f"lake {self.lake_url}"] + [r.summary() for r in self.subjects.values()]
        lines.append(f"stimulus table: {self.n_stimuli:,} stimuli; split pools: {', '.join(self.pools) or '-'}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _progress_bar(enabled: bool, total: int, subject: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=subject, unit="session")


def ingest_subject(
    src: str | Path,
    lake_url: str,
    subject: str,
    storage_options: dict[str, Any] | None = None,
    scope: str = "rois",
    overwrite: bool = False,
    verify: bool = False,
    progress: bool = False,
    register: bool = True,
    source_storage_options: dict[str, Any] | None = None,
    verify_sample: int | None = DEFAULT_SAMPLE,
) -> SubjectReport:
    """Ingest one subject of the release at ``src`` (a local folder or fsspec URL) into the lake at ``lake_url``.

    Writes the subject's store (and, with ``register``, its manifest entry) only: the stimulus
    table and the splits span subjects, so :func:`finalize_ingest` rebuilds them once after all.

    Parameters
    ----------
    src : str or Path
        Release root (holds ``derivatives/``): a local folder or e.g. ``s3://bucket/prefix``.
    lake_url, storage_options
        The lake (created if absent).
    subject : str
        ``sub-XX``.
    scope : {"rois", "brain"}
        The visual ROIs (V1, V2, V3, V4, IT) or every brain-mask voxel (others in region ``other``).
    overwrite : bool
        Rewrite a complete store (the old one stays until the new one is complete) and restart an
        interrupted one instead of resuming it.
    verify : bool
        Afterwards, check the lake against the source independently of the code that wrote it
        (:mod:`laion_lake.ingest.verify`): every coordinate, and the betas of ``verify_sample``
        voxels (None: all) recomputed from the statmaps.
    progress : bool
        A tqdm bar over sessions.
    register : bool
        List the subject in the manifest when done. Parallel ingests of several subjects pass
        False and call :func:`finalize_ingest` once (the manifest is rewritten whole).
    source_storage_options : dict, optional
        fsspec options of ``src`` (e.g. ``{"anon": True}`` for the public bucket).

    Raises
    ------
    IngestError
        A missing, truncated or inconsistent source file; the message names it. Sessions written
        before the failure are kept in the incomplete store for a re-run to skip.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, not {scope!r}")
    layout = ReleaseLayout(src, source_storage_options)
    lake = create_lake(lake_url, storage_options)
    if is_complete(lake.storage, subject_path(subject)) and not overwrite:
        if register and subject not in lake.subjects:
            lake.register_subject(subject)
        attrs = SubjectStore(lake.storage, subject).attrs
        report = SubjectReport(subject, "already in the lake", n_trials=int(attrs["n_trials"]), regions=dict(attrs["region_sizes"]))
        if verify:
            report.differences = verify_subject(lake, layout, subject, sample=verify_sample)
        return report

    plan = plan_subject(layout, subject, scope)
    bar = _progress_bar(progress, len(plan.sessions), subject)
    try:
        result = write_subject_streaming(
            lake.storage,
            subject,
            plan.trials,
            plan.neuroids,
            _blocks(plan),
            attrs={"ingest": plan.provenance(), **plan.grid},
            overwrite=overwrite,
            on_block=(lambda block, skipped: bar.update(1)) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    if register:
        lake.register_subject(subject)
    report = SubjectReport(
        subject,
        "ingested",
        sessions_written=result.written,
        sessions_skipped=result.skipped,
        n_trials=result.entry["n_trials"],
        regions=result.entry["regions"],
        notes=list(plan.notes),
    )
    if verify:
        report.differences = verify_subject(lake, layout, subject, sample=verify_sample)
    return report


def _blocks(plan: SubjectPlan) -> list[TrialBlock]:
    return [
        TrialBlock(s.key, s.start, s.stop, s.fingerprint, lambda s=s: load_session_betas(plan, s))
        for s in plan.sessions
    ]


def release_subjects(layout: ReleaseLayout, subjects: Iterable[str] | None = None) -> list[str]:
    """``subjects`` checked against the release's ``sub-XX`` folders (default: all of them).

    Raises
    ------
    IngestError
        One line naming the release folder and the subjects it lacks, with the ones it has.
    """
    available = layout.subjects()
    wanted = list(subjects) if subjects is not None else available
    unknown = [s for s in wanted if s not in available]
    if unknown:
        raise IngestError(f"{layout.betas_root}: no folder for subject(s) {unknown} (release has {', '.join(available) or 'none'})")
    return wanted


def ingest_release(
    src: str | Path,
    lake_url: str,
    storage_options: dict[str, Any] | None = None,
    subjects: Iterable[str] | None = None,
    scope: str = "rois",
    overwrite: bool = False,
    verify: bool = False,
    progress: bool = False,
    splits_dir: str | Path | None = None,
    source_storage_options: dict[str, Any] | None = None,
    verify_sample: int | None = DEFAULT_SAMPLE,
) -> IngestReport:
    """Ingest a release: every subject (or ``subjects``), then the stimulus table and the splits.

    ``splits_dir`` holds split JSONs (``<pool>/<name>.json``) to use instead of the published ones
    shipped with laion-lake (the default). Other parameters as in :func:`ingest_subject`. Subjects
    already complete in the lake are skipped (and verified when ``verify``); an interrupted
    subject resumes where it stopped.
    """
    layout = ReleaseLayout(src, source_storage_options)
    wanted = release_subjects(layout, subjects)
    report = IngestReport(create_lake(lake_url, storage_options).url)
    for subject in wanted:
        report.subjects[subject] = ingest_subject(
            layout.root, lake_url, subject, storage_options, scope=scope, overwrite=overwrite, verify=False, progress=progress,
            source_storage_options=source_storage_options,
        )  # fmt: skip
    tables = finalize_ingest(lake_url, storage_options, subjects=wanted, splits_dir=splits_dir)
    report.n_stimuli, report.pools, report.notes = tables["n_stimuli"], tables["pools"], tables["notes"]
    if verify:
        # after the stimulus table is rebuilt, so that its repeat counts are checked too
        lake = create_lake(lake_url, storage_options)
        for subject in wanted:
            report.subjects[subject].differences = verify_subject(lake, layout, subject, sample=verify_sample)
    return report


def verify_release(
    src: str | Path,
    lake_url: str,
    storage_options: dict[str, Any] | None = None,
    subjects: Iterable[str] | None = None,
    source_storage_options: dict[str, Any] | None = None,
    sample: int | None = DEFAULT_SAMPLE,
) -> list[str]:
    """Every difference between the lake and the release at ``src`` (default: the subjects in both); empty if identical.

    Independent of the ingest code (see :mod:`laion_lake.ingest.verify`); ``sample`` voxels per
    subject have their betas recomputed (None: all).
    """
    layout = ReleaseLayout(src, source_storage_options)
    lake = open_lake(lake_url, storage_options)
    wanted = list(subjects) if subjects is not None else [s for s in layout.subjects() if s in lake.subjects]
    differences: list[str] = []
    for subject in wanted:
        differences += verify_subject(lake, layout, subject, sample=sample)
    return differences
