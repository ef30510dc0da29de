"""Where a lake lives: one URL (a local path, ``s3://bucket/prefix``, ``memory://...``) plus fsspec options.

This module knows paths, JSON documents and Zarr stores; it does no math and knows no schema.
Local paths use zarr's ``LocalStore`` (no fsspec overhead); every other URL goes through fsspec.
Every Zarr store handed out is wrapped in a :class:`ReadCountingStore`, so that a query can report
how many chunks and bytes it read.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import zarr.storage
from zarr.abc.store import ByteRequest
from zarr.core.buffer import Buffer, BufferPrototype


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

    async def get(self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None) -> Buffer | None:
        value = await self._store.get(key, prototype, byte_range)
        if value is not None:
            self.stats.record(f"{self.prefix}/{key}", len(value))
        return value

    async def get_partial_values(self, prototype: BufferPrototype, key_ranges: Any) -> list[Buffer | None]:
        key_ranges = list(key_ranges)
        values = await self._store.get_partial_values(prototype, key_ranges)
        for (key, _), value in zip(key_ranges, values):
            if value is not None:
                self.stats.record(f"{self.prefix}/{key}", len(value))
        return values


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class LakeStorage:
    """Paths, JSON documents and Zarr stores under one lake URL.

    Parameters
    ----------
    url : str
        Lake root: a local path, ``file://``, ``s3://bucket/prefix``, ``memory://name``, ...
    storage_options : dict, optional
        Passed to fsspec (e.g. ``{"endpoint_url": ..., "key": ..., "secret": ...}`` for S3).
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.local = _is_local(url)
        if self.local:
            url = str(Path(url.removeprefix("file://")).expanduser().resolve())
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.stats = ReadStats()
        self._fs: fsspec.AbstractFileSystem | None = None
        self._async_fs: fsspec.AbstractFileSystem | None = None

    def __getstate__(self) -> dict[str, Any]:
        # filesystems hold sockets and event loops: rebuild them in the unpickling process
        return {"url": self.url, "storage_options": self.storage_options, "local": self.local}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stats = ReadStats()
        self._fs = self._async_fs = None

    def __repr__(self) -> str:
        return f"LakeStorage({self.url!r})"

    # -- paths -------------------------------------------------------------------------------
    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        if self._fs is None:
            self._fs, _ = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return self._fs

    @property
    def async_fs(self) -> fsspec.AbstractFileSystem:
        """One asynchronous filesystem for every Zarr store of this lake (one connection pool)."""
        if self._async_fs is None:
            fs, _ = fsspec.core.url_to_fs(self.url, **{"asynchronous": True, **self.storage_options})
            if not fs.async_impl:
                from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

                fs = AsyncFileSystemWrapper(fs)
            self._async_fs = fs
        return self._async_fs

    def path(self, relative: str) -> str:
        """The filesystem path of ``relative`` under the lake root (as the fs expects it)."""
        root = self.url if self.local else self.fs._strip_protocol(self.url)
        return f"{root}/{relative}".rstrip("/") if relative else root

    def display(self, relative: str) -> str:
        """The full URL of ``relative``, for messages."""
        return f"{self.url}/{relative}" if relative else self.url

    def exists(self, relative: str) -> bool:
        return self.fs.exists(self.path(relative))

    def listdir(self, relative: str) -> list[str]:
        """Names (not paths) of the entries directly under ``relative``; [] if it does not exist."""
        try:
            entries = self.fs.ls(self.path(relative), detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def remove(self, relative: str) -> None:
        """Delete ``relative`` (a file or a whole store), if present."""
        target = self.path(relative)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)
        if not self.local:
            self.fs.invalidate_cache()

    def move(self, source: str, destination: str) -> None:
        """Move a file or store. Atomic on a local filesystem; a copy then delete on object stores."""
        if self.local:
            os.makedirs(os.path.dirname(self.path(destination)), exist_ok=True)
            os.replace(self.path(source), self.path(destination))
        else:
            # object stores have no rename: copy every object, then delete the source
            self.fs.invalidate_cache()
            source_root, destination_root = self.path(source), self.path(destination)
            objects = self.fs.find(source_root)
            if not objects:
                raise FileNotFoundError(f"nothing to move at {self.display(source)}")
            for item in objects:
                self.fs.copy(item, destination_root + item[len(source_root):])
            self.fs.rm(source_root, recursive=True)
            self.fs.invalidate_cache()

    def staging_path(self, name: str) -> str:
        """A fresh relative path under ``_staging/`` for writing a store before it is moved in place."""
        return f"_staging/{uuid.uuid4().hex}/{name}"

    # -- JSON documents ----------------------------------------------------------------------
    def read_json(self, relative: str) -> Any:
        with self.fs.open(self.path(relative), "rb") as handle:
            return json.loads(handle.read())

    def write_json(self, relative: str, document: Any) -> None:
        """Write a JSON document whole: readers see the old or the new document, never a part.

        Local: write a temporary file beside it, then rename over it. Object stores: one PUT,
        which is atomic per object.
        """
        payload = json.dumps(document, indent=1, sort_keys=True, default=str).encode()
        target = self.path(relative)
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            temporary = f"{target}.tmp-{uuid.uuid4().hex}"
            with open(temporary, "wb") as handle:
                handle.write(payload)
            os.replace(temporary, target)
        else:
            self.fs.pipe_file(target, payload)
            self.fs.invalidate_cache()

    # -- Zarr ----------------------------------------------------------------------------------
    def zarr_store(self, relative: str, read_only: bool = True) -> ReadCountingStore:
        """A zarr v3 store rooted at ``relative``, counting its reads into :attr:`stats`."""
        if self.local:
            inner: zarr.abc.store.Store = zarr.storage.LocalStore(self.path(relative), read_only=read_only)
        else:
            inner = zarr.storage.FsspecStore(self.async_fs, read_only=read_only, path=self.path(relative))
        return ReadCountingStore(inner, self.stats, prefix=relative)
