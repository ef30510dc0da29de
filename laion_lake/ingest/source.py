"""The files of a release wherever they are: a local folder or a bucket (``s3://BUCKET/PREFIX``), via fsspec.

Files are *streamed*, never copied to local disk first: a 4D statmap is read front to back through
one open file object (gzip-decompressed on the fly, volume block by volume block); small files
(tables, masks, maps) are read whole into memory. So an ingest from S3 needs no local space for
the release and holds one session's (trials x voxels) betas plus one read buffer.

Network reads have timeouts (connect and read) and a few bounded retries; a key that is missing,
denied (the real bucket denies the held-out sessions 31-34) or unreachable becomes one
:class:`IngestError` line naming the key.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import fsspec

from laion_lake.ingest.errors import IngestError

# seconds; botocore's own defaults are 60 s each, with retries that can stack up to minutes
S3_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 30}
S3_RETRIES = {"max_attempts": 2, "mode": "standard"}
# bytes fetched per range request when streaming a statmap (bounds the read buffer)
S3_BLOCK_SIZE = 16 * 2**20
# s3fs's own retries of transient errors (timeouts included), on top of botocore's attempts
S3FS_RETRIES = 2
_REMOTE_ERRORS = ("ClientError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionError", "NoCredentialsError")


def source_options(url: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """fsspec options for reading ``url``: the caller's, plus timeouts and bounded retries on S3."""
    options = dict(storage_options or {})
    if fsspec.utils.get_protocol(url) in ("s3", "s3a"):
        config = dict(options.get("config_kwargs") or {})
        for key, value in S3_TIMEOUTS.items():
            config.setdefault(key, value)
        config.setdefault("retries", dict(S3_RETRIES))
        options["config_kwargs"] = config
        options.setdefault("default_block_size", S3_BLOCK_SIZE)
        # a filesystem of its own: its retry count is set below, and must not leak into the lake's
        options.setdefault("skip_instance_cache", True)
    return options


class ReleaseFiles:
    """Read-only access to the files under a release root (local path or fsspec URL).

    Parameters
    ----------
    url : str
        ``/data/laion-fmri``, ``file:///...`` or ``s3://bucket/prefix``.
    storage_options : dict, optional
        fsspec options of the source (e.g. ``{"anon": true}`` for the public bucket).
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = str(url)
        self.protocol = fsspec.utils.get_protocol(self.url)
        self.fs, root = fsspec.core.url_to_fs(self.url, **source_options(self.url, storage_options))
        if hasattr(self.fs, "retries"):
            self.fs.retries = S3FS_RETRIES
        self.root = root.rstrip("/") or "/"

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    def path(self, relative: str) -> str:
        return posixpath.join(self.root, relative)

    def display(self, relative: str) -> str:
        """How messages name a file: the local path, or ``s3://bucket/key``."""
        full = self.path(relative)
        return full if self.is_local else f"{self.protocol}://{full}"

    @contextmanager
    def errors(self, relative: str, what: str) -> Iterator[None]:
        """Turn a failed read of ``relative`` into one IngestError line naming it."""
        try:
            yield
        except IngestError:
            raise
        except FileNotFoundError as error:
            raise IngestError(f"{self.display(relative)}: missing {what} (required by the release layout, docs/release-format.md)") from error
        except PermissionError as error:
            raise IngestError(f"{self.display(relative)}: access denied reading {what} ({error})") from error
        except Exception as error:
            if isinstance(error, OSError) or type(error).__name__ in _REMOTE_ERRORS or "botocore" in type(error).__module__:
                raise IngestError(f"{self.display(relative)}: cannot read {what} ({type(error).__name__}: {error})") from error
            raise

    def is_dir(self, relative: str) -> bool:
        with self.errors(relative, "folder"):
            return bool(self.fs.isdir(self.path(relative)))

    def is_file(self, relative: str) -> bool:
        """Whether ``relative`` is a file; a denied or unreachable one is an error, not a missing file."""
        with self.errors(relative, "file"):
            try:
                info = self.fs.info(self.path(relative))
            except FileNotFoundError:
                return False
        return info.get("type") == "file"

    def folders(self, relative: str) -> list[str]:
        """Names of the sub-folders of ``relative`` (empty if it is no folder)."""
        with self.errors(relative, "folder"):
            if not self.fs.isdir(self.path(relative)):
                return []
            entries = self.fs.ls(self.path(relative), detail=True)
        return sorted(posixpath.basename(e["name"].rstrip("/")) for e in entries if e.get("type") == "directory")

    def files(self, relative: str) -> list[str]:
        """Names of the files directly in ``relative``."""
        with self.errors(relative, "folder"):
            if not self.fs.isdir(self.path(relative)):
                return []
            entries = self.fs.ls(self.path(relative), detail=True)
        return sorted(posixpath.basename(e["name"]) for e in entries if e.get("type") == "file")

    def read_bytes(self, relative: str, what: str) -> bytes:
        with self.errors(relative, what):
            return bytes(self.fs.cat_file(self.path(relative)))

    def open(self, relative: str, what: str) -> IO[bytes]:
        """A binary file object, read sequentially (S3: range requests of ``S3_BLOCK_SIZE``)."""
        with self.errors(relative, what):
            if self.is_local:
                return self.fs.open(self.path(relative), "rb")
            return self.fs.open(self.path(relative), "rb", cache_type="readahead")

    def fingerprint(self, relative: str, what: str) -> str:
        """Size and version of a file (mtime locally, ETag on S3): what resumable progress is keyed on."""
        with self.errors(relative, what):
            info = self.fs.info(self.path(relative))
        version = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("last_modified") or ""
        return f"{info.get('size')}:{str(version).strip(chr(34))}"


@dataclass(frozen=True)
class ReleaseFile:
    """One file of a release: where it is (``files`` + ``relative``) and how messages name it (``str()``)."""

    files: ReleaseFiles
    relative: str

    @property
    def name(self) -> str:
        return posixpath.basename(self.relative)

    def __str__(self) -> str:
        return self.files.display(self.relative)

    def exists(self) -> bool:
        return self.files.is_file(self.relative)

    def read_bytes(self, what: str = "file") -> bytes:
        return self.files.read_bytes(self.relative, what)

    def open(self, what: str = "file") -> IO[bytes]:
        return self.files.open(self.relative, what)

    def fingerprint(self, what: str = "file") -> str:
        return self.files.fingerprint(self.relative, what)

    def errors(self, what: str) -> Any:
        return self.files.errors(self.relative, what)
