"""Garbage collection: delete the chunks and manifests that no commit references, keep every snapshot.

A write that fails or is killed leaves its chunks in the lake's storage, referenced by no snapshot
(readers never see them, but the folder or bucket grows). :func:`collect_garbage` deletes them with
Icechunk's ``Repository.garbage_collect``, which keeps everything reachable from a branch or a tag.
Snapshots are never expired: ``laion-lake log`` and every tag stay readable.

What must not be collected are the chunks of writes still in flight, which no snapshot references
yet either:

- on local storage every write holds the lake's writers lock (shared) from its first chunk to its
  commit, and collection holds it, and the commit lock, exclusively: nothing is in flight, so every
  unreferenced object may go (``older_than`` defaults to 0);
- on S3 there is no lock: only objects older than ``older_than`` (default one day) are deleted, so a
  write has that long to commit;
- a resumable streamed ingest (:func:`laion_lake.lake.subjects.write_subject_streaming`) keeps an
  uncommitted fork session in a resume file across processes; its chunks are newer than the
  snapshot it forked from, so the cutoff is moved back to before that snapshot for every resume
  file of this lake found on this machine (a stream resumed on another machine is protected by
  ``older_than`` alone).
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from laion_lake.lake.repository import LakeRepository

# default age below which objects are kept, per storage kind (see the module docstring)
DEFAULT_OLDER_THAN = {"local": dt.timedelta(0), "remote": dt.timedelta(days=1)}
# the cutoff is kept this far before an in-flight fork's base snapshot: file-time granularity
# locally, clock skew between this machine and an object store's server otherwise
FORK_MARGIN = {"local": dt.timedelta(seconds=2), "remote": dt.timedelta(minutes=10)}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """``"0"``, ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1w"`` (or combinations: ``"1d12h"``)."""
    value = text.strip().lower()
    if value in ("0", "0s"):
        return dt.timedelta(0)
    parts = re.fullmatch(r"((\d+(\.\d+)?)[smhdw])+", value)
    if not parts:
        raise ValueError(f"invalid duration {text!r}: use a number with a unit s, m, h, d or w, e.g. 90s, 15m, 2h, 1d")
    seconds = sum(float(n) * _UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)([smhdw])", value))
    return dt.timedelta(seconds=seconds)


@dataclass
class GCResult:
    """What one collection deleted (or, dry run, would delete)."""

    url: str
    cutoff: dt.datetime
    dry_run: bool
    chunks: int = 0
    bytes: int = 0
    manifests: int = 0
    snapshots: int = 0
    transaction_logs: int = 0
    attributes: int = 0
    forks: list[str] = field(default_factory=list)  # in-flight streamed ingests whose chunks were kept

    def line(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        kept = f"; kept the chunks of {len(self.forks)} unfinished streamed write(s): {', '.join(self.forks)}" if self.forks else ""
        return (
            f"{verb} {self.chunks} chunk(s), {self.bytes} bytes, {self.manifests} manifest(s), "
            f"{self.snapshots} unreferenced snapshot(s), {self.transaction_logs} transaction log(s) "
            f"from {self.url} (objects older than {self.cutoff.isoformat(timespec='seconds')}; no snapshot of a branch or tag touched){kept}"
        )


def _in_flight_forks(repository: LakeRepository) -> list[tuple[str, dt.datetime]]:
    """(subject, written_at of the fork's base snapshot) of each unfinished streamed write of this lake here."""
    folder = _resume_folder(repository)
    found = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if not name.endswith(".pickle"):
            continue
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                state = pickle.load(handle)
            if state.get("url") != repository.url:
                continue
            base = state["fork"].snapshot_id
            written = repository.repo.lookup_snapshot(base).written_at
        except Exception:
            continue  # unreadable, or forked from a snapshot this lake does not have: nothing to keep
        found.append((name.removesuffix(".pickle"), written))
    return found


def _resume_folder(repository: LakeRepository) -> str:
    from laion_lake.lake.subjects import resume_path

    class _Where:  # resume_path needs only the URL
        url = repository.url

    return os.path.dirname(resume_path(_Where(), "_"))  # type: ignore[arg-type]


def _collect(repository: LakeRepository, older_than: dt.timedelta, dry_run: bool) -> GCResult:
    kind = "local" if repository.local else "remote"
    cutoff = dt.datetime.now(dt.timezone.utc) - older_than
    forks = _in_flight_forks(repository)
    for _, written in forks:
        cutoff = min(cutoff, written - FORK_MARGIN[kind])
    try:
        summary = repository._bounded(lambda: repository.repo.garbage_collect(cutoff, dry_run=dry_run), "collect garbage in")
    except Exception as error:  # icechunk's errors: one line naming the lake
        from laion_lake.errors import LakeError

        if isinstance(error, LakeError):
            raise
        raise repository._translate(error, "collect garbage in") from None
    return GCResult(
        repository.url, cutoff, dry_run,
        chunks=summary.chunks_deleted, bytes=summary.bytes_deleted, manifests=summary.manifests_deleted,
        snapshots=summary.snapshots_deleted, transaction_logs=summary.transaction_logs_deleted,
        attributes=summary.attributes_deleted, forks=[s for s, _ in forks],
    )


def collect_garbage(
    repository: LakeRepository, older_than: dt.timedelta | None = None, dry_run: bool = False, wait: bool = True
) -> GCResult | None:
    """Delete the objects of ``repository`` that no branch or tag references (snapshots are never expired).

    Parameters
    ----------
    repository : LakeRepository
    older_than : timedelta, optional
        Keep objects younger than this. Default: 0 on local storage (collection holds the writers
        lock, so no write is in flight), one day on object stores (no lock: a write in flight has
        this long to commit).
    dry_run : bool
        Count what would be deleted, delete nothing.
    wait : bool
        Local storage: wait for writes in flight to finish (else return None when there are some).

    Returns
    -------
    GCResult or None
        None only when ``wait`` is False and a local write is in flight.
    """
    if older_than is None:
        older_than = DEFAULT_OLDER_THAN["local" if repository.local else "remote"]
    with repository.no_writes(wait=False) as free:
        if free:
            return _collect(repository, older_than, dry_run)
    if not wait:
        return None
    print(f"waiting for the writes in flight on {repository.url} to finish", file=sys.stderr, flush=True)
    with repository.no_writes(wait=True):
        return _collect(repository, older_than, dry_run)


def collect_unreferenced(repository: LakeRepository, wait: bool = False) -> GCResult | None:
    """After a failed local write: delete every unreferenced object, when no other write is in flight."""
    return collect_garbage(repository, dt.timedelta(0), dry_run=False, wait=wait)


def gc_lake(url: str, storage_options: dict[str, Any] | None = None, older_than: dt.timedelta | None = None, dry_run: bool = False) -> GCResult:
    """:func:`collect_garbage` on the lake at ``url``."""
    result = collect_garbage(LakeRepository(url, storage_options), older_than, dry_run)
    assert result is not None  # waited
    return result
