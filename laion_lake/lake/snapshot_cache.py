"""What a lake's snapshot holds at a few paths (the manifest, the stimulus and split tables), kept per process
and carried forward to later snapshots that did not change those paths.

Every unit of a sweep opens the lake afresh (on a Dask worker it arrives as a URL) and commits its
record, so each unit reads a new snapshot: reading the manifest and the two tables again cost
~0.35 s of a tiny-lake unit's ~0.5 s. Those paths change only at ingest; score records live under
``results/``. Here a value read at snapshot A is served at snapshot B when Icechunk's diff of A..B
(~20 ms, from the commits' transaction logs) touches none of the value's paths. Anything else
(B not a descendant of A, a failing diff, another repository at the same URL) reads again. Inside an
open transaction the cache is bypassed: the session's uncommitted writes are not in any snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_entries: dict[tuple[str, str], tuple[str, Any]] = {}  # (lake url, name) -> (snapshot id, value)
_last_diff: list[Any] = [None, None]  # (lake url, old, new), its changed paths: the values of one lake share it
_lock = threading.Lock()


def changed_paths(repository: Any, old_snapshot: str, new_snapshot: str) -> set[str] | None:
    """Node paths (``/subjects/sub-01``, ...) changed from ``old_snapshot`` to ``new_snapshot``; None when
    Icechunk cannot tell (not an ancestor, another repository)."""
    try:
        diff = repository.diff(from_snapshot_id=old_snapshot, to_snapshot_id=new_snapshot)
    except Exception:  # noqa: BLE001 - any doubt means "read again"
        return None
    return {*diff.new_groups, *diff.new_arrays, *diff.deleted_groups, *diff.deleted_arrays, *diff.updated_groups,
            *diff.updated_arrays, *diff.updated_chunks}  # fmt: skip


def touches(paths: set[str], prefixes: Sequence[str]) -> bool:
    """Whether a changed path is one of ``prefixes`` (``/`` is the root group itself) or below one."""
    for path in paths:
        for prefix in prefixes:
            if path == prefix or (prefix != "/" and path.startswith(prefix + "/")):
                return True
    return False


def snapshot_cached(storage: Any, name: str, prefixes: Sequence[str], read: Callable[[], T]) -> T:
    """``read()`` of ``storage``'s snapshot, or the value kept for an earlier snapshot when no path under
    ``prefixes`` changed since.

    Parameters
    ----------
    storage : LakeStorage
        The lake storage read (its URL names the entry; its snapshot id dates it).
    name : str
        What the value is, e.g. ``"manifest"``.
    prefixes : sequence of str
        Icechunk node paths the value is read from (``"/"``: the root group's attributes).
    read : callable
        Reads the value at the storage's snapshot.
    """
    if storage.in_transaction:
        return read()
    key, snapshot = (storage.url, name), storage.snapshot_id
    with _lock:
        kept = _entries.get(key)
    if kept is not None:
        kept_snapshot, value = kept
        if kept_snapshot == snapshot:
            return value
        with _lock:
            paths = _last_diff[1] if _last_diff[0] == (storage.url, kept_snapshot, snapshot) else None
        if paths is None:
            paths = changed_paths(storage.repository.repo, kept_snapshot, snapshot)
            with _lock:
                _last_diff[:] = [(storage.url, kept_snapshot, snapshot), paths]
        if paths is not None and not touches(paths, prefixes):
            with _lock:
                _entries[key] = (snapshot, value)
            return value
    value = read()
    with _lock:
        _entries[key] = (snapshot, value)
    return value


def clear() -> None:
    """Forget every kept value (tests)."""
    with _lock:
        _entries.clear()
        _last_diff[:] = [None, None]
