"""Read once: a bounded per-process cache of repeat-averaged responses (and of narrow feature sets).

A model's sweep runs several units per subject (per-subject tau and ood, shared tau and ood, rdm),
and each needs the same subject's regions. Reading a region means reading every trial chunk of it
(train and test stimuli together touch all of them), so without a cache a subject's data is read
once per unit. Here a region is read and repeat-averaged once per process, over every stimulus
the subject saw, and units take their rows from the cached block.

Keys name what the block was computed from: the lake's URL, the subject's manifest entry (its
store checksum: a replaced subject is never served stale), the region and the voxel filter
(NC threshold and coordinate). Blocks are float32 as stored; the cache holds at most
``LAION_LAKE_RESPONSE_CACHE_BYTES`` bytes (default 384 MiB), least recently used out first. A block
larger than the bound is returned but not kept. Threads of one process share the cache, and a
block being read by one thread is waited for by the others, never read twice.

Narrow feature sets (at most ``FEATURE_CACHE_MAX_SET_BYTES`` stored) are kept the same way, keyed
by the feature set's manifest entry (its checksum); wide ones are streamed by each unit.

Blocks are read with Zarr directly from the lake's stores (:mod:`laion_lake.scoring.reads`:
no Dask graph), bit-identical to ``lake.responses`` and ``lake.features``.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

# a full-scale subject's four headline regions are ~110 MB (nc > 30): two unit slots on two
# subjects, and a CKA ceiling's pass over every subject's region, fit without re-reads
DEFAULT_CACHE_BYTES = 384 * 2**20
CACHE_BYTES_ENV = "LAION_LAKE_RESPONSE_CACHE_BYTES"


@dataclass(frozen=True, eq=False)
class ResponseBlock:
    """One subject's region, repeat-averaged over every stimulus the subject saw.

    Attributes
    ----------
    values : float32 array of shape (n_stimuli, n_neuroids)
    stimulus_id : str array of shape (n_stimuli,), sorted
    n_repeats : int array of shape (n_stimuli,)
    neuroid_coords : dict of name -> array of shape (n_neuroids,)
        Every per-neuroid coordinate (``neuroid``, ``nc_12rep``, ``ncsnr``, ...).
    """

    values: np.ndarray
    stimulus_id: np.ndarray
    n_repeats: np.ndarray
    neuroid_coords: dict[str, np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + sum(np.asarray(v).nbytes for v in self.neuroid_coords.values()))

    @property
    def n_neuroids(self) -> int:
        return self.values.shape[1]

    def positions(self, stimulus_ids: Iterable[str]) -> np.ndarray | None:
        """Row of each id (in the order given), or None if one is missing."""
        wanted = np.asarray(list(stimulus_ids)).astype(str)
        rows = np.clip(np.searchsorted(self.stimulus_id, wanted), 0, max(len(self.stimulus_id) - 1, 0))
        if len(self.stimulus_id) == 0 or np.any(self.stimulus_id[rows] != wanted):
            return None
        return rows


def _cache_bound() -> int:
    return int(os.environ.get(CACHE_BYTES_ENV, DEFAULT_CACHE_BYTES))


class ResponseCache:
    """LRU of :class:`ResponseBlock` bounded in bytes, shared by the threads of a process."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.max_bytes = _cache_bound() if max_bytes is None else max_bytes
        self._blocks: OrderedDict[tuple, Any] = OrderedDict()  # ResponseBlock or FeatureBlock
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self.reads = 0  # blocks read from the lake (misses)
        self.hits = 0

    @property
    def nbytes(self) -> int:
        return sum(block.nbytes for block in self._blocks.values())

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()

    def _lookup(self, key: tuple) -> ResponseBlock | None:
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
                self.hits += 1
            return block

    def _store(self, key: tuple, block: ResponseBlock) -> None:
        with self._lock:
            if block.nbytes > self.max_bytes:
                return
            self._blocks[key] = block
            total = sum(b.nbytes for b in self._blocks.values())
            while total > self.max_bytes:
                _, evicted = self._blocks.popitem(last=False)
                total -= evicted.nbytes

    def get(self, lake: Any, subject: str, region: str, nc_threshold: float | None, nc_coord: str) -> ResponseBlock:
        """The cached block, read (once, whatever the number of threads asking) when absent."""
        key = block_key(lake, subject, region, nc_threshold, nc_coord)
        return self.get_or_read(key, lambda: read_block(lake, subject, region, nc_threshold, nc_coord))

    def get_or_read(self, key: tuple, read: Any) -> Any:
        """The block under ``key``, or ``read()``'s result, stored; one reader per key at a time."""
        block = self._lookup(key)
        if block is not None:
            return block
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            block = self._lookup(key)
            if block is None:
                block = read()
                with self._lock:
                    self.reads += 1
                self._store(key, block)
        with self._lock:
            self._loading.pop(key, None)
        return block


def block_key(lake: Any, subject: str, region: str, nc_threshold: float | None, nc_coord: str) -> tuple:
    """What a block is computed from: lake URL, the subject's manifest entry (checksum), region, filter."""
    entry = lake.manifest.get("subjects", {}).get(subject)
    return (str(lake.url), json.dumps(entry, sort_keys=True, default=str), region, nc_threshold, nc_coord)


def read_block(lake: Any, subject: str, region: str, nc_threshold: float | None, nc_coord: str) -> ResponseBlock:
    """Read and repeat-average one region over every stimulus the subject saw (Zarr directly, by
    stored column chunks: :func:`laion_lake.scoring.reads.read_region_average`)."""
    from laion_lake.scoring.reads import read_region_average

    return ResponseBlock(**read_region_average(lake, subject, region, nc_threshold, nc_coord))


_PROCESS_CACHE = ResponseCache()


def process_cache() -> ResponseCache:
    """This process's cache (one per Dask worker process, shared by its threads)."""
    return _PROCESS_CACHE


@dataclass(frozen=True, eq=False)
class Responses:
    """A unit's rows of a region: values (float32), repeats and per-neuroid coordinates."""

    values: np.ndarray
    n_repeats: np.ndarray
    coords: dict[str, np.ndarray]

    @property
    def n_neuroids(self) -> int:
        return self.values.shape[1]


def responses_for(
    lake: Any, subject: str, region: str, stimulus_ids: np.ndarray, nc_threshold: float | None, nc_coord: str,
    cache: ResponseCache | None = None,
) -> Responses:
    """Rows ``stimulus_ids`` (sorted) of a region, through the cache.

    When they are every row of the cached block, its values come back as a read-only view (a
    full-scale region's copy is 25-60 MB, held beside the unit's solver), else as a copy.

    An id the subject never saw is reported by the lake itself (its named error), by asking it.
    """
    block = (cache or process_cache()).get(lake, subject, region, nc_threshold, nc_coord)
    rows = block.positions(stimulus_ids)
    if rows is None:
        lake.responses(subject, region, stimulus_ids, nc_threshold=nc_threshold, nc_coord=nc_coord)
        raise KeyError(f"stimuli missing from {subject} {region}")  # the lake raised above
    if len(rows) == len(block.stimulus_id) and np.array_equal(rows, np.arange(len(rows))):  # every row, in order: no copy
        values = block.values.view()
        values.flags.writeable = False  # the cache's own array: a unit writing into it would raise
        return Responses(values, block.n_repeats, block.neuroid_coords)
    return Responses(block.values[rows], block.n_repeats[rows], block.neuroid_coords)


# a feature set whose whole store (float32) is at most this size is read once per process and kept
# (LRU, in the same cache); wider ones are streamed by each unit, never held whole
FEATURE_CACHE_MAX_SET_BYTES = 128 * 2**20


@dataclass(frozen=True, eq=False)
class FeatureBlock:
    """A whole (narrow) feature set: values (n_stimuli, n_features) float32 in stored order, ids sorted order."""

    values: np.ndarray
    stimulus_id: np.ndarray
    order: np.ndarray  # argsort of the stored ids

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    def rows(self, stimulus_ids: np.ndarray) -> np.ndarray | None:
        wanted = np.asarray(stimulus_ids).astype(str)
        sorted_ids = self.stimulus_id[self.order]
        at = np.clip(np.searchsorted(sorted_ids, wanted), 0, max(len(sorted_ids) - 1, 0))
        if len(sorted_ids) == 0 or np.any(sorted_ids[at] != wanted):
            return None
        return self.values[self.order[at]]


def features_for(lake: Any, model: str, layer: str, stimulus_ids: np.ndarray, cache: ResponseCache | None = None) -> np.ndarray | None:
    """Rows of a narrow feature set through the cache (read whole once per process), else None.

    None means the set is wider than ``FEATURE_CACHE_MAX_SET_BYTES``: the caller streams it.
    """
    from laion_lake.scoring.reads import feature_array

    entry = lake.feature_entry(model, layer)  # the lake's named error for an unknown set
    if 4 * int(entry["n_stimuli"]) * int(entry["n_features"]) > FEATURE_CACHE_MAX_SET_BYTES:  # float32 as stored
        return None
    cache = cache or process_cache()
    key = ("features", str(lake.url), model, layer, json.dumps(entry, sort_keys=True, default=str))

    def read() -> FeatureBlock:
        array, ids = feature_array(lake, model, layer)
        return FeatureBlock(np.asarray(array[:]), ids, np.argsort(ids))

    block = cache.get_or_read(key, read)
    rows = block.rows(stimulus_ids)
    if rows is None:
        lake.features(model, layer, stimulus_ids)  # raises the lake's named error
        raise KeyError(f"stimuli missing from {model}/{layer}")
    return rows


__all__ = ["FeatureBlock", "features_for", "ResponseBlock", "ResponseCache", "Responses", "process_cache", "responses_for"]
