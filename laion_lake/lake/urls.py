"""Lake URLs and the Icechunk storage each one names: local path, ``s3://bucket/prefix`` or ``memory://``.

Holds the URL helpers (:func:`is_local`, :func:`normalise_url`), the S3 storage built from
fsspec/s3fs-style options (:func:`s3_storage`) with its network settings and bounded retries
(:data:`DEFAULT_TIMEOUTS`, :func:`repository_config`), and the choice of storage for a URL.
:mod:`laion_lake.lake.repository` opens the repository on it and re-exports these names; the
in-memory repositories themselves are kept there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import icechunk

from laion_lake.errors import LakeStorageError

# S3 network settings; each overridable by a storage option of that name or LAION_LAKE_S3_<NAME>:
# timeout: seconds any one storage operation may take (a frozen endpoint fails after it);
# network_stream_timeout_seconds: a stalled response stream; max_tries: attempts per request
# (Icechunk retries only transient errors); backoff between attempts in ms
DEFAULT_TIMEOUTS = {"timeout": 30, "network_stream_timeout_seconds": 20, "max_tries": 3, "initial_backoff_ms": 200, "max_backoff_ms": 2000}


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def normalise_url(url: str) -> str:
    """Absolute path for a local lake, the URL without a trailing ``/`` otherwise."""
    if is_local(url):
        return str(Path(url.removeprefix("file://")).expanduser().resolve())
    return url.rstrip("/")


def _s3_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """Network settings: storage options ``timeout``/``retries`` keys, else LAION_LAKE_S3_* variables, else defaults."""
    settings = dict(DEFAULT_TIMEOUTS)
    for name in settings:
        env = os.environ.get(f"LAION_LAKE_S3_{name.upper()}")
        if env:
            settings[name] = float(env)
    for name in settings:
        if name in options:
            settings[name] = float(options[name])
    return settings


def s3_storage(url: str, options: Mapping[str, Any]) -> icechunk.Storage:
    """Icechunk S3 storage for ``s3://bucket/prefix`` from fsspec/s3fs-style options.

    Understood options: ``endpoint_url`` (or ``client_kwargs.endpoint_url``), ``key``/``secret``/
    ``token``, ``region`` (or ``client_kwargs.region_name``), ``anon``, and the network settings
    of :data:`DEFAULT_TIMEOUTS`. Without a key, credentials come from the environment.
    """
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = dict(options.get("client_kwargs") or {})
    endpoint = options.get("endpoint_url") or client.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
    region = options.get("region") or client.get("region_name") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    key, secret = options.get("key"), options.get("secret")
    kwargs: dict[str, Any] = {"bucket": bucket, "prefix": prefix or None, "region": region}
    if endpoint:
        kwargs.update(endpoint_url=endpoint, allow_http=str(endpoint).startswith("http://"), force_path_style=True)
    if options.get("anon"):
        kwargs["anonymous"] = True
    elif key and secret:
        kwargs.update(access_key_id=key, secret_access_key=secret, session_token=options.get("token"))
    else:
        kwargs["from_env"] = True
    kwargs["network_stream_timeout_seconds"] = max(1, int(_s3_settings(options)["network_stream_timeout_seconds"]))
    return icechunk.s3_storage(**kwargs)


def repository_config(url: str, options: Mapping[str, Any]) -> icechunk.RepositoryConfig | None:
    """Bounded retries for object stores (transient errors only are retried by Icechunk)."""
    if is_local(url) or url.startswith("memory://"):
        return None
    settings = _s3_settings(options)
    retries = icechunk.StorageRetriesSettings(
        max_tries=int(settings["max_tries"]), initial_backoff_ms=int(settings["initial_backoff_ms"]), max_backoff_ms=int(settings["max_backoff_ms"])
    )
    return icechunk.RepositoryConfig(storage=icechunk.StorageSettings(retries=retries))


def _storage(url: str, options: Mapping[str, Any]) -> icechunk.Storage:
    if is_local(url):
        return icechunk.local_filesystem_storage(url)
    if url.startswith("s3://"):
        return s3_storage(url, options)
    raise LakeStorageError(f"unsupported lake URL {url!r}: use a local path, s3://bucket/prefix or memory://name")
