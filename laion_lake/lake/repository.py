"""Where a lake lives: one Icechunk repository at a URL, and the one way to write to it.

A lake URL is a local path (Icechunk's local filesystem storage), ``s3://bucket/prefix``
(Icechunk's own S3 storage; endpoint and credentials from the storage options or the environment)
or ``memory://name`` (in-memory storage, one per process). Every write is one writable session and
one commit on branch ``main`` (:meth:`LakeRepository.write`): a commit that meets a newer head is
rebased with :class:`icechunk.ConflictDetector` (writes to different groups merge), bounded; a
rebase that fails (two writers touched the same node) redoes the write on a fresh session, so the
write sees what the other one committed (and e.g. raises "already exists"). Icechunk's local
storage is not safe for concurrent commits (measured: 1 of 8 concurrent commits lost), so on local
disk every commit holds an OS file lock. Never fork a process after opening a repository (it
deadlocks): spawn worker processes.

Reading the lake with plain xarray, without this library::

    import icechunk, xarray as xr
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage("./lake"))
    session = repo.readonly_session("main")            # or tag="v1", snapshot_id="..."
    betas = xr.open_zarr(session.store, group="subjects/sub-01/regions/V1", consolidated=False)
    acts = xr.open_zarr(session.store, group="features/alexnet~conv1", consolidated=False)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import icechunk

from laion_lake.errors import LakeConflictError, LakeNotFoundError, LakeStorageError
from laion_lake.lake.timeouts import TimedSession, call_with_timeout
from laion_lake.lake.urls import (  # re-exported: the URL and storage helpers moved to urls
    DEFAULT_TIMEOUTS,
    _s3_settings,
    _storage,
    is_local,
    normalise_url,
    repository_config,
    s3_storage,
)

icechunk.set_logs_filter("error")  # the local-storage concurrency warning is handled by the commit lock

BRANCH = "main"
# a commit that meets a newer head is rebased up to this many times (ConflictDetector)
REBASE_TRIES = 50
# a write whose rebase fails (same node touched) is redone on a fresh session up to this many times
REDO_TRIES = 20
COMMIT_LOCK = ".laion-lake-commit.lock"
# held shared by every write on local storage from its first chunk to its commit, exclusively by
# garbage collection: while gc holds it no write is in flight, so every unreferenced chunk is garbage
WRITERS_LOCK = ".laion-lake-writers.lock"
T = TypeVar("T")

_memory_repositories: dict[str, icechunk.Repository] = {}
_memory_lock = threading.Lock()


class LakeRepository:
    """The Icechunk repository of one lake URL: open or create it, read a snapshot, write a commit.

    Parameters
    ----------
    url : str
        A local path, ``s3://bucket/prefix`` or ``memory://name``.
    storage_options : dict, optional
        S3 endpoint, credentials and network settings (see :func:`s3_storage`). Never logged.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = normalise_url(url)
        self.storage_options = dict(storage_options or {})
        self.local = is_local(self.url)
        # a deadline per storage operation, for object stores only (see laion_lake.lake.timeouts)
        self.timeout: float | None = None if self.local or self.url.startswith("memory://") else _s3_settings(self.storage_options)["timeout"]
        self._repo: icechunk.Repository | None = None

    def __getstate__(self) -> dict[str, Any]:
        # a repository holds runtimes and sockets: reopen it in the unpickling process
        return {"url": self.url, "storage_options": self.storage_options, "local": self.local, "timeout": self.timeout, "_repo": None}

    def _bounded(self, fn: Callable[[], T], doing: str) -> T:
        return call_with_timeout(fn, self.timeout, self.url, doing)

    def timed(self, session: Any) -> Any:
        """``session`` with a deadline on every store operation (object stores), else itself."""
        return session if self.timeout is None else TimedSession(session, self.timeout, self.url)

    def _translate(self, error: Exception, doing: str) -> Exception:
        """One line naming the lake URL for storage errors (credentials, endpoint, permissions)."""
        text = " ".join(str(error).split())
        for marker, why in (
            ("InvalidAccessKeyId", "the access key is not known to the endpoint"),
            ("SignatureDoesNotMatch", "the secret does not match the key"),
            ("AccessDenied", "access denied"),
            # Icechunk hides the S3 error code of a refused PUT (a reader's key says only this)
            ("writing object to object store service error", "the endpoint refused to store an object (are these credentials allowed to write?)"),
            ("NoSuchBucket", "no such bucket"),
            ("credentials", "no usable credentials"),
            ("dispatch failure", "the endpoint cannot be reached"),
            ("timeout", "the endpoint did not answer in time"),
            ("timed out", "the endpoint did not answer in time"),
            ("Permission denied", "permission denied"),
            ("Read-only file system", "the file system is read-only"),
            ("No space left", "no space left on the device"),
        ):
            if marker.lower() in text.lower():
                return LakeStorageError(f"cannot {doing} lake {self.url}: {why}")
        return LakeStorageError(f"cannot {doing} lake {self.url}: {text[:300]}")

    def _open_storage(self) -> icechunk.Storage:
        return _storage(self.url, self.storage_options)

    @property
    def repo(self) -> icechunk.Repository:
        """The opened repository; :class:`LakeNotFoundError` if there is none at the URL."""
        if self._repo is None:
            self._repo = self._open(create=False)
        return self._repo

    def _open(self, create: bool) -> icechunk.Repository:
        if self.url.startswith("memory://"):
            with _memory_lock:
                if self.url not in _memory_repositories:
                    if not create:
                        raise LakeNotFoundError(f"no lake at {self.url}; create one with `laion-lake synth` or create_lake()")
                    _memory_repositories[self.url] = icechunk.Repository.create(icechunk.in_memory_storage())
                return _memory_repositories[self.url]
        if self.local and not create and not os.path.isdir(os.path.join(self.url, "refs")):
            if os.path.exists(os.path.join(self.url, "lake.json")):
                raise LakeNotFoundError(f"{self.url} is a lake of the old format (lake.json); rebuild it (`laion-lake synth`, ingest)")
            raise LakeNotFoundError(f"no lake at {self.url}; create one with `laion-lake synth` or create_lake()")
        try:
            storage = self._open_storage()
            config = repository_config(self.url, self.storage_options)
            exists = self._bounded(lambda: icechunk.Repository.exists(storage), "open")
            if create and not exists:
                try:
                    return self._bounded(lambda: icechunk.Repository.create(storage, config), "create")
                except icechunk.IcechunkError:
                    pass  # another process created it meanwhile (or the place is not clean: then open fails too)
            elif not exists:
                raise LakeNotFoundError(f"no lake at {self.url}; create one with `laion-lake synth` or create_lake()")
            return self._bounded(lambda: icechunk.Repository.open(storage, config), "open")
        except LakeNotFoundError:
            raise
        except (icechunk.IcechunkError, ValueError, OSError) as error:
            raise self._translate(error, "open") from None

    def create(self) -> icechunk.Repository:
        self._repo = self._open(create=True)
        return self._repo

    @contextlib.contextmanager
    def commit_lock(self) -> Iterator[None]:
        """An exclusive OS file lock around a commit on local storage (none on S3: conditional writes)."""
        with self._flock(COMMIT_LOCK, fcntl.LOCK_EX):
            yield

    @contextlib.contextmanager
    def _flock(self, name: str, mode: int) -> Iterator[bool]:
        """Hold the OS file lock ``name`` in ``mode`` (LOCK_SH/LOCK_EX, optionally | LOCK_NB): yields
        False when a non-blocking lock is taken by someone else, True otherwise (always on S3/memory)."""
        if not self.local:
            yield True
            return
        try:
            os.makedirs(self.url, exist_ok=True)
            handle = open(os.path.join(self.url, name), "a+")
        except OSError:
            try:  # a read-only disk or folder: flock works on a read-only descriptor too
                handle = open(os.path.join(self.url, name))
            except OSError:  # no lock file and none can be made: nothing can be written here either
                yield True
                return
        with handle:
            try:
                fcntl.flock(handle.fileno(), mode)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def writing(self) -> contextlib.AbstractContextManager[bool]:
        """Held around a whole write on local storage (shared: writers run together), so that
        garbage collection, which takes it exclusively, never meets a write in flight."""
        return self._flock(WRITERS_LOCK, fcntl.LOCK_SH)

    @contextlib.contextmanager
    def no_writes(self, wait: bool = True) -> Iterator[bool]:
        """Exclusive: no write or commit in flight on local storage while held (yields False when
        ``wait`` is False and a write is in flight). On object stores there is no lock: True."""
        with self._flock(WRITERS_LOCK, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)) as free:
            if not free:
                yield False
                return
            with self.commit_lock():
                yield True

    def clean_after_failure(self) -> None:
        """After a failed write on local storage, delete the chunks no commit references (when no
        other write is in flight; otherwise a later failure or ``laion-lake gc`` does)."""
        if not self.local:
            return
        from laion_lake.lake.gc import collect_unreferenced

        with contextlib.suppress(Exception):  # best effort: the write's own error is what to report
            collect_unreferenced(self, wait=False)

    # -- reading -------------------------------------------------------------------------------
    def readonly_session(self, branch: str | None = BRANCH, tag: str | None = None, snapshot: str | None = None) -> icechunk.Session:
        """A read-only session of one snapshot: a tag, a snapshot id, or a branch head."""
        repo = self.repo
        try:
            if snapshot is not None:
                session = self._bounded(lambda: repo.readonly_session(snapshot_id=snapshot), "read")
            elif tag is not None:
                session = self._bounded(lambda: repo.readonly_session(tag=tag), "read")
            else:
                session = self._bounded(lambda: repo.readonly_session(branch=branch or BRANCH), "read")
            return self.timed(session)
        except icechunk.IcechunkError as error:
            what = f"snapshot {snapshot!r}" if snapshot else f"tag {tag!r}" if tag else f"branch {branch!r}"
            text = str(error).lower()
            if "not found" in text or "ref" in text or "invalid" in text:
                raise LakeNotFoundError(f"no {what} in lake {self.url}") from None
            raise self._translate(error, "read") from None

    def log(self, branch: str = BRANCH) -> list[icechunk.SnapshotInfo]:
        """Snapshots of ``branch``, newest first."""
        try:
            return self._bounded(lambda: list(self.repo.ancestry(branch=branch)), "read")
        except icechunk.IcechunkError as error:
            raise self._translate(error, "read") from None

    def tags(self) -> dict[str, str]:
        """tag -> snapshot id."""
        return self._bounded(lambda: {tag: self.repo.lookup_tag(tag) for tag in sorted(self.repo.list_tags())}, "read")

    def tag(self, name: str, snapshot: str | None = None) -> str:
        """Tag ``snapshot`` (default the head of ``main``) as ``name``; return the snapshot id."""
        snapshot = snapshot or self._bounded(lambda: self.repo.lookup_branch(BRANCH), "read")
        try:
            self._bounded(lambda: self.repo.create_tag(name, snapshot), "tag")
        except icechunk.IcechunkError as error:
            if "exist" in str(error).lower():
                raise LakeConflictError(f"tag {name!r} already exists in lake {self.url}") from None
            raise self._translate(error, "tag") from None
        return snapshot

    # -- writing -------------------------------------------------------------------------------
    def write(self, message: str, change: Callable[[icechunk.Session], T], metadata: Mapping[str, Any] | None = None) -> tuple[T, str]:
        """Apply ``change(session)`` in one writable session and commit it on ``main``, all or nothing.

        Parameters
        ----------
        message : str
            Commit message (``laion-lake log`` shows it).
        change : callable
            ``change(session) -> result``: writes through ``session.store``. It may be called more
            than once (a redo after a failed rebase, on a fresh session), so it must read what it
            depends on from that session.
        metadata : mapping, optional
            Commit metadata (JSON-able).

        Returns
        -------
        (result, snapshot_id)
            ``change``'s result and the snapshot committed (the head unchanged when nothing changed).

        Raises
        ------
        LakeConflictError
            The write met conflicting writers more than :data:`REDO_TRIES` times.
        LakeStorageError
            The storage refused the write (read-only disk, full disk, endpoint down): the last
            commit is untouched.
        """
        failed = False
        try:
            with self.writing():
                for _ in range(REDO_TRIES):
                    session = self.session_for_writing()
                    try:
                        result = change(session)
                    except icechunk.IcechunkError as error:
                        failed = True
                        raise self._translate(error, "write to") from None
                    except BaseException:
                        failed = _has_changes(session)
                        raise
                    if not session.has_uncommitted_changes:
                        return result, session.snapshot_id
                    try:
                        with self.commit_lock():
                            snapshot = self._commit(session, message, metadata)
                        return result, snapshot
                    except (icechunk.RebaseFailedError, icechunk.ConflictError):
                        time.sleep(0.01)
                        continue  # another writer touched the same node: redo on a fresh session
                    except icechunk.IcechunkError as error:
                        failed = True
                        raise self._translate(error, "commit to") from None
                    except BaseException:
                        failed = True
                        raise
        finally:
            if failed:
                self.clean_after_failure()  # outside the shared lock: it needs it exclusively
        raise LakeConflictError(f"{message}: gave up after {REDO_TRIES} conflicting commits to lake {self.url}")

    def session_for_writing(self) -> icechunk.Session:
        """A writable session on ``main`` for a caller that commits it with :meth:`commit`."""
        repo = self.repo
        try:
            return self.timed(self._bounded(lambda: repo.writable_session(BRANCH), "write to"))
        except icechunk.IcechunkError as error:
            raise self._translate(error, "write to") from None

    def _commit(self, session: Any, message: str, metadata: Mapping[str, Any] | None) -> str:
        solver = icechunk.ConflictDetector()
        return self._bounded(
            lambda: session.commit(message, metadata=dict(metadata or {}), rebase_with=solver, rebase_tries=REBASE_TRIES), "commit to"
        )

    def commit(self, session: icechunk.Session, message: str, metadata: Mapping[str, Any] | None = None) -> str:
        """Commit a session built by the caller; rebase when the head moved; a failed rebase is a :class:`LakeConflictError`."""
        try:
            with self.commit_lock():
                return self._commit(session, message, metadata)
        except (icechunk.RebaseFailedError, icechunk.ConflictError) as error:
            raise LakeConflictError(f"{message}: another writer changed the same data in lake {self.url} ({' '.join(str(error).split())[:200]})") from None
        except icechunk.IcechunkError as error:
            raise self._translate(error, "commit to") from None


def _has_changes(session: Any) -> bool:
    try:
        return bool(session.has_uncommitted_changes)
    except Exception:
        return True  # cannot tell: assume it wrote chunks
