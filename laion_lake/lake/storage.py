"""A lake's storage as readers and writers see it: one pinned snapshot to read, commits to write.

:class:`LakeStorage` wraps the lake's Icechunk repository (:mod:`laion_lake.lake.repository`):
reads go through the read-only session of one snapshot (a branch head, a tag or a snapshot id),
writes through :meth:`LakeStorage.write` (one session, one commit), after which the storage reads
the snapshot just committed. It knows group paths and Zarr stores; no math, no schema. The store
handed out for reading is wrapped in a :class:`ReadCountingStore`, so that a query can report how
many chunks and bytes it read.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import zarr
import zarr.storage
from dask.tokenize import normalize_token
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype

from laion_lake.errors import LakeError, LakeStorageError
from laion_lake.lake.repository import BRANCH, LakeRepository

T = TypeVar("T")
# the attribute holding a document written by LakeStorage.write_json
DOCUMENT_ATTR = "document"


# bytes read through every lake store of this process, all lakes together (see process_bytes_read)
_process_bytes_read = [0]
_process_lock = threading.Lock()


def process_bytes_read() -> int:
    """Bytes read through the Zarr stores of every lake opened in this process since it started.

    Each :class:`LakeStorage` counts its own reads; this total also covers lakes that library code
    opened and dropped (a Dask task opens its own), so a benchmark can ask each worker process.
    """
    return _process_bytes_read[0]


@dataclass
class ReadStats:
    """Chunk reads and bytes read through the stores of one :class:`LakeStorage`."""

    keys: dict[str, int] = field(default_factory=dict)
    bytes_read: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, key: str, n_bytes: int) -> None:
        with self._lock:
            self.keys[key] = self.keys.get(key, 0) + 1
            self.bytes_read += n_bytes
        with _process_lock:
            _process_bytes_read[0] += n_bytes

    def reset(self) -> None:
        with self._lock:
            self.keys.clear()
            self.bytes_read = 0

    def chunk_keys(self, prefix: str = "") -> list[str]:
        """Keys of data chunks read (zarr v3 chunk keys contain ``/c/``), optionally under ``prefix``."""
        return sorted(k for k in self.keys if "/c/" in k and k.startswith(prefix))

    def __getstate__(self) -> dict[str, Any]:
        # counters are per process; a pickled copy (a Dask worker's) starts from zero
        return {"keys": {}, "bytes_read": 0}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.keys, self.bytes_read, self._lock = {}, 0, threading.Lock()


class ReadCountingStore(zarr.storage.WrapperStore):
    """A zarr store wrapper that records every key read, and its size, in a :class:`ReadStats`."""

    def __init__(self, store: zarr.abc.store.Store, stats: ReadStats | None = None, prefix: str = "") -> None:
        super().__init__(store)
        self.stats = stats if stats is not None else ReadStats()
        self.prefix = prefix

    def _with_store(self, store: zarr.abc.store.Store) -> "ReadCountingStore":
        return type(self)(store, self.stats, self.prefix)

    def __dask_tokenize__(self) -> tuple[str, int, str]:
        # what names the dask arrays xarray builds on this store. Without it dask pickles the
        # Icechunk store to tokenize it, and pickling a session while another thread lists the
        # same session deadlocked two units running in one process. The store object is unique
        # while it lives (one per opened snapshot), so its id names it.
        return ("laion-lake-store", id(self._store), self.prefix)

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        value = await self._store.get(key, prototype, byte_range)
        if value is not None:
            self.stats.record(f"{self.prefix}/{key}" if self.prefix else key, len(value))
        return value

    async def get_partial_values(self, prototype: BufferPrototype, key_ranges: Any) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        values = await self._store.get_partial_values(prototype, key_ranges)
        for (key, _), value in zip(key_ranges, values):
            if value is not None:
                self.stats.record(f"{self.prefix}/{key}" if self.prefix else key, len(value))
        return values


@normalize_token.register(zarr.storage.StorePath)
def _tokenize_store_path(path: zarr.storage.StorePath) -> tuple[Any, str]:
    """A StorePath tokenizes as its store (see :meth:`ReadCountingStore.__dask_tokenize__`) and path."""
    return (normalize_token(path.store), path.path)


class LakeStorage:
    """The groups of one lake snapshot, and commits to the lake's ``main`` branch.

    Parameters
    ----------
    url : str
        Lake root: a local path, ``file://``, ``s3://bucket/prefix``, ``memory://name``.
    storage_options : dict, optional
        S3 endpoint, credentials and network settings (see :func:`laion_lake.lake.repository.s3_storage`).
    branch, tag, snapshot : str, optional
        The snapshot read: a snapshot id, else a tag, else the head of ``branch`` (default ``main``).
        A storage opened at a tag or snapshot id is read-only.
    """

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        branch: str | None = None,
        tag: str | None = None,
        snapshot: str | None = None,
    ) -> None:
        self.repository = LakeRepository(url, storage_options)
        self.url = self.repository.url
        self.local = self.repository.local
        self.storage_options = self.repository.storage_options
        self.pinned = {"branch": branch, "tag": tag, "snapshot": snapshot}
        self.stats = ReadStats()
        self._session: Any = None
        self._transaction: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # sessions hold runtimes: the unpickling process reopens the same snapshot
        return {"url": self.url, "storage_options": self.storage_options, "pinned": {"branch": None, "tag": None, "snapshot": self.snapshot_id}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["storage_options"], **state["pinned"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"LakeStorage({self.url!r})"

    @property
    def read_only(self) -> bool:
        """True when pinned to a tag or snapshot id (writes go to ``main`` and need its head)."""
        return bool(self.pinned["tag"] or self.pinned["snapshot"])

    # -- the snapshot read ----------------------------------------------------------------------
    @property
    def session(self) -> Any:
        """The read-only Icechunk session of the snapshot this storage reads (inside
        :meth:`transaction`: the transaction's writable session)."""
        if self._transaction is not None:
            return self._transaction
        if self._session is None:
            self._session = self.repository.readonly_session(self.pinned["branch"] or BRANCH, self.pinned["tag"], self.pinned["snapshot"])
        return self._session

    @property
    def snapshot_id(self) -> str:
        return str(self.session.snapshot_id)

    @property
    def in_transaction(self) -> bool:
        """True inside :meth:`transaction` (reads then see uncommitted writes)."""
        return self._transaction is not None

    def refresh(self, snapshot: str | None = None) -> None:
        """Read ``snapshot`` (default: the head of the branch) from now on."""
        self._session = None
        if snapshot is not None:
            self._session = self.repository.readonly_session(snapshot=snapshot)

    def display(self, relative: str) -> str:
        """The lake URL and a group path, for messages."""
        return f"{self.url}/{relative}" if relative else self.url

    def store(self) -> ReadCountingStore:
        """The snapshot's Zarr store (read-only), counting reads into :attr:`stats`."""
        return ReadCountingStore(self.session.store, self.stats)

    def zarr_store(self, relative: str, read_only: bool = True) -> zarr.storage.StorePath:
        """The snapshot's store at group ``relative``, for ``zarr.open_group(..., mode="r")`` (reading only:
        every write is a commit, see :meth:`write`)."""
        if not read_only:
            raise LakeError(f"{self.display(relative)}: the lake is written through commits (LakeStorage.write), not through a writable store")
        return zarr.storage.StorePath(self.store(), relative)

    def group(self, relative: str) -> zarr.Group | None:
        """The group at ``relative`` in the snapshot, or None."""
        try:
            node = zarr.open_group(self.session.store, path=relative, mode="r") if relative else zarr.open_group(self.session.store, mode="r")
        except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
            return None
        return node

    def exists(self, relative: str) -> bool:
        """Whether a group or array is at ``relative`` in the snapshot."""
        parent, _, name = relative.rstrip("/").rpartition("/")
        group = self.group(parent)
        return group is not None and name in group

    def listdir(self, relative: str) -> list[str]:
        """Names of the groups and arrays directly under ``relative`` ([] when it does not exist)."""
        group = self.group(relative)
        return sorted(group.keys()) if group is not None else []

    # -- small JSON documents (thin shims for callers of the old file layout) --------------------
    def read_json(self, relative: str) -> Any:
        """The document stored by :meth:`write_json` at ``relative`` in the snapshot."""
        group = self.group(relative)
        if group is None or DOCUMENT_ATTR not in group.attrs:
            raise FileNotFoundError(f"no document at {self.display(relative)} (snapshot {self.snapshot_id})")
        return group.attrs[DOCUMENT_ATTR]

    def write_json(self, relative: str, document: Any) -> None:
        """Store a JSON-able document at ``relative`` (a group's attributes), one commit."""
        import json

        plain = json.loads(json.dumps(document, default=str))

        def change(session: Any) -> None:
            zarr.open_group(session.store, path=relative, mode="a").attrs[DOCUMENT_ATTR] = plain

        self.write(f"document {relative}", change)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, message: str, change: Callable[[Any], T], metadata: Mapping[str, Any] | None = None) -> T:
        """One commit on ``main`` (see :meth:`LakeRepository.write`); then read the new snapshot."""
        self._check_writable()
        if self._transaction is not None:
            return change(self._transaction)
        result, snapshot = self.repository.write(message, change, metadata)
        self.refresh(snapshot)
        return result

    def _check_writable(self) -> None:
        if self.read_only:
            pin = f"tag {self.pinned['tag']!r}" if self.pinned["tag"] else f"snapshot {self.pinned['snapshot']!r}"
            raise LakeError(f"{self.url} is open at {pin}: read-only; open its branch to write")

    @contextlib.contextmanager
    def transaction(self, message: str, metadata: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Every :meth:`write` inside the block goes into one session, committed at the end (all or nothing).

        An exception inside the block discards everything written in it. A commit whose rebase
        fails (another writer changed the same groups meanwhile) is a :class:`LakeConflictError`.
        """
        self._check_writable()
        if self._transaction is not None:
            yield self._transaction  # nested: part of the outer transaction
            return
        failed = True
        try:
            with self.repository.writing():  # no garbage collection while the transaction writes
                self._transaction = self.repository.session_for_writing()
                try:
                    yield self._transaction
                    session, self._transaction = self._transaction, None
                    snapshot = self.repository.commit(session, message, metadata) if session.has_uncommitted_changes else session.snapshot_id
                    failed = False
                finally:
                    self._transaction = None
        finally:
            if failed:  # a failed or aborted transaction deletes the chunks it wrote (local storage)
                self.repository.clean_after_failure()
        self.refresh(snapshot)


def while_writing(write: Callable[..., T]) -> Callable[..., T]:
    """Decorate ``write(storage: LakeStorage, ...)`` that builds its own sessions: it holds the
    lake's writers lock (shared) throughout, so garbage collection waits for it."""

    @functools.wraps(write)
    def locked(storage: LakeStorage, *args: Any, **kwargs: Any) -> T:
        with storage.repository.writing():
            return write(storage, *args, **kwargs)

    return locked


def writable_group(session: Any, relative: str) -> zarr.Group:
    """The group ``relative`` of a writable session (it must exist)."""
    return zarr.open_group(session.store, path=relative, mode="r+")


def remove_node(session: Any, relative: str) -> None:
    """Delete the group or array at ``relative`` (and everything under it) in a writable session."""
    parent, _, name = relative.rpartition("/")
    group = zarr.open_group(session.store, path=parent, mode="r+") if parent else zarr.open_group(session.store, mode="r+")
    if name in group:
        del group[name]


__all__ = ["LakeStorage", "LakeStorageError", "ReadCountingStore", "ReadStats", "process_bytes_read", "remove_node", "while_writing", "writable_group"]
