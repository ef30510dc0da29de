"""Small writes committed in batches: one commit for many changes, bounded in count and in time.

A commit costs ~150 ms locally and more on S3 (``benchmarks/bench_lake_commits.py``), so a run
that records one small document per work unit spends most of its record time committing.
:class:`BatchedWrites` queues such changes and commits them together every ``every`` changes or
once the oldest queued one is ``seconds`` old, and on :meth:`BatchedWrites.flush`. Each change is
applied to the commit's session when the batch is committed (and again on a redo after a
conflict), so a change that merges with what the head holds (a unit record keeping other
benchmarks' cells) still merges. A process killed with a batch queued loses that batch only:
every batch committed before stays, and nothing of a lost batch is visible.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

# defaults: a killed run loses at most this many changes, or this many seconds of them
DEFAULT_EVERY, DEFAULT_SECONDS = 25, 5.0


class BatchedWrites:
    """Changes queued and committed together on one lake (thread-safe).

    Parameters
    ----------
    storage : LakeStorage
        The lake written to (its branch head).
    every : int
        Commit when this many changes are queued.
    seconds : float
        Commit when the oldest queued change has waited this long (checked as changes arrive).
    """

    def __init__(self, storage: Any, every: int = DEFAULT_EVERY, seconds: float = DEFAULT_SECONDS) -> None:
        self.storage, self.every, self.seconds = storage, max(1, int(every)), float(seconds)
        self._pending: list[tuple[str, Callable[[Any], None]]] = []
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self.commits = 0

    def add(self, label: str, change: Callable[[Any], None]) -> None:
        """Queue ``change(session)``; commit the batch when it is full or old enough."""
        with self._lock:
            self._pending.append((label, change))
            self._oldest = self._oldest if self._oldest is not None else time.monotonic()
            due = len(self._pending) >= self.every or time.monotonic() - self._oldest >= self.seconds
        if due:
            self.flush()

    def flush(self) -> None:
        """Commit every queued change now, in one commit (nothing when none is queued)."""
        with self._lock:  # held through the commit: changes queued meanwhile go in the next batch
            pending, self._pending, self._oldest = self._pending, [], None
            if not pending:
                return

            def change(session: Any) -> None:
                for _, one in pending:
                    one(session)

            labels = [label for label, _ in pending]
            message = labels[0] if len(labels) == 1 else f"{len(labels)} changes: {labels[0]} … {labels[-1]}"
            self.storage.write(message, change)
            self.commits += 1

    def __len__(self) -> int:
        return len(self._pending)


__all__ = ["DEFAULT_EVERY", "DEFAULT_SECONDS", "BatchedWrites"]
