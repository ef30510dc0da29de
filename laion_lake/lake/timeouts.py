"""Network I/O with a deadline: a lake on S3 fails with the URL named instead of hanging.

Icechunk 1.1 bounds retries and stalled response streams but has no deadline for a request that
is accepted and never answered (a frozen endpoint hung ``ls`` for minutes). Two guards close that
gap, for object-store lakes only (local disk and memory need none):

- :class:`TimeoutStore` wraps the Zarr store of a session: every store operation (get, set,
  exists, list, ...) must finish within ``timeout`` seconds;
- :func:`call_with_timeout` bounds a blocking repository call (open, commit, log) the same way.

Both raise :class:`~laion_lake.errors.LakeStorageError` naming the lake URL and the setting.
Icechunk itself retries only transient errors (connection resets, 5xx, throttling), bounded by
``max_tries``; a wrong or missing credential is not retried.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import zarr.storage

from laion_lake.errors import LakeStorageError

T = TypeVar("T")


def timeout_error(url: str, seconds: float, doing: str) -> LakeStorageError:
    return LakeStorageError(
        f"cannot {doing} lake {url}: the endpoint did not answer within {seconds:g} s "
        "(storage option 'timeout' or LAION_LAKE_S3_TIMEOUT sets the limit)"
    )


def call_with_timeout(fn: Callable[[], T], seconds: float | None, url: str, doing: str) -> T:
    """``fn()``, or a :class:`LakeStorageError` after ``seconds`` (the call is abandoned in a daemon thread)."""
    if seconds is None:
        return fn()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True, name=f"laion-lake {doing}")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise timeout_error(url, seconds, doing)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class TimeoutStore(zarr.storage.WrapperStore):
    """A Zarr store whose every operation must finish within ``seconds``."""

    def __init__(self, store: Any, seconds: float, url: str) -> None:
        super().__init__(store)
        self.seconds = seconds
        self.url = url

    def _with_store(self, store: Any) -> TimeoutStore:
        return type(self)(store, self.seconds, self.url)

    async def _bounded(self, awaitable: Any, doing: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, self.seconds)
        except asyncio.TimeoutError:
            raise timeout_error(self.url, self.seconds, doing) from None

    async def _listing(self, iterator: AsyncIterator[str]) -> AsyncIterator[str]:
        async def collect() -> list[str]:
            return [item async for item in iterator]

        for item in await self._bounded(collect(), "list"):
            yield item

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        return await self._bounded(self._store.get(key, prototype, byte_range), "read")

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> Any:
        return await self._bounded(self._store.get_partial_values(prototype, key_ranges), "read")

    async def exists(self, key: str) -> bool:
        return await self._bounded(self._store.exists(key), "read")

    async def set(self, key: str, value: Any) -> None:
        await self._bounded(self._store.set(key, value), "write to")

    async def set_if_not_exists(self, key: str, value: Any) -> None:
        await self._bounded(self._store.set_if_not_exists(key, value), "write to")

    async def delete(self, key: str) -> None:
        await self._bounded(self._store.delete(key), "write to")

    async def delete_dir(self, prefix: str) -> None:
        await self._bounded(self._store.delete_dir(prefix), "write to")

    async def is_empty(self, prefix: str) -> bool:
        return await self._bounded(self._store.is_empty(prefix), "read")

    async def getsize(self, key: str) -> int:
        return await self._bounded(self._store.getsize(key), "read")

    def list(self) -> AsyncIterator[str]:
        return self._listing(self._store.list())

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        return self._listing(self._store.list_prefix(prefix))

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        return self._listing(self._store.list_dir(prefix))


class TimedSession:
    """An Icechunk session whose ``store`` is a :class:`TimeoutStore`; everything else is the session's."""

    def __init__(self, session: Any, seconds: float, url: str) -> None:
        self._session = session
        self.store = TimeoutStore(session.store, seconds, url)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)
