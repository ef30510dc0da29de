"""Fast reads of what a unit needs: a region's repeat-averaged betas and a feature set's rows.

The lake's lazy readers (``Lake.responses``, ``Lake.features``) build Dask graphs; for a unit,
which wants the whole block in memory at once, the graph costs more than the reads (a full-scale
region: 0.9-1.4 s per region through Dask against 0.2-0.4 s for Zarr's own concurrent chunk reads).
Here the same stored arrays are read with Zarr directly, one stored column chunk (all trials) at a
time, and each slab is repeat-averaged at once with the very function ``Lake.responses`` maps over
its blocks (:class:`laion_lake.compute.averaging.RepeatAverager`, :func:`average_rows_by_group`
without its allocations): the values are
bit-identical to ``Lake.responses(...).values`` and the float64 slab it averages is one stored
chunk wide, never the region.

Feature rows are read the same way, by stored chunks: only the row chunks holding a wanted row,
column block by column block, keeping only the wanted rows (``read_feature_rows``), so a wide
layer is never held whole and a unit on the shared pool reads 2 of a full-scale lake's 25 row
chunks.

Metadata comes from the lake's own subject store (its trial table) and, for a region's neuroid
coordinates and the NC filter, from the region's small coordinate arrays read with Zarr (kept per
store); names the store does not know raise the lake's own errors.
"""

from __future__ import annotations

import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import xarray as xr
import zarr

from laion_lake.compute.averaging import RepeatAverager
from laion_lake.lake.averages import AVERAGED_GROUP, columns_by_component, trial_grouping
from laion_lake.lake.subjects import SCHEMA
from laion_lake.lake.zarr_io import plain_strings
from storage_schemas import load_schema

# stored chunk columns read per Zarr call (512 neuroids x 31,856 trials: 65 MB of float32 at full
# scale, 16 chunks in flight, 16 more for the prefetched one); columns averaged per step (the
# float64 copy of one slab part)
READ_CHUNK_COLUMNS = 1
AVERAGE_COLUMNS = 512
# decoded feature chunks read per Zarr call (a full-scale 8,192-feature chunk is 32 MB)
MAX_READ_BYTES = 96 * 2**20
TRIAL_BETAS = "{relative}/regions/{name}/betas"
AVERAGED_RESPONSES = "{relative}/%s/{name}/responses" % AVERAGED_GROUP
# subject store -> (sorted unique stimulus ids, group of each trial, repeats per stimulus)
_GROUPINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# subject store -> region -> its per-neuroid coordinates (all neuroids, before any NC filter)
_COORDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _trial_grouping(store: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stimulus ids seen, sorted; each trial's position among them; trials per stimulus), once per store."""
    cached = _GROUPINGS.get(store)
    if cached is None:
        cached = trial_grouping(store.trials["stimulus_id"].values)
        _GROUPINGS[store] = cached
    return cached


def read_region_average(
    lake: Any, subject: str, region: str, nc_threshold: float | None, nc_coord: str, from_trials: bool = False
) -> dict[str, Any]:
    """One subject's region, repeat-averaged over every stimulus the subject saw.

    The stored repeat means are read (:mod:`laion_lake.lake.averages`) where the store has them;
    otherwise, or with ``from_trials``, every trial is read and averaged here (the same values).

    Parameters
    ----------
    lake : Lake
    subject, region : str
    nc_threshold : float or None
        Keep voxels with ``nc_coord > nc_threshold`` (strict), as ``Lake.responses``.
    nc_coord : str

    Returns
    -------
    dict with
        ``values`` float32 (n_stimuli, n_neuroids), ``stimulus_id`` str (n_stimuli,) sorted,
        ``n_repeats`` int16 (n_stimuli,), ``neuroid_coords`` name -> (n_neuroids,) arrays.
        Equal, bit for bit, to ``lake.responses(subject, region, None, nc_threshold, nc_coord)``.
    """
    store = lake._subject_store(subject)  # the lake's kept store: its trial table is read once
    all_coords = _neuroid_coords(store, region)
    if nc_threshold is not None and nc_coord not in all_coords:
        lake.responses(subject, region, None, nc_threshold=nc_threshold, nc_coord=nc_coord)  # the lake's named error
    n_neuroids = len(next(iter(all_coords.values()))) if all_coords else _region_width(store, region)
    keep = np.arange(n_neuroids) if nc_threshold is None else np.flatnonzero(all_coords[nc_coord] > nc_threshold)
    wanted, group, counts = _trial_grouping(store)
    coords = {name: values[keep] for name, values in all_coords.items()}
    # no stored "neuroid" variable: xarray's default index of the selection, as store.region(...).isel would give
    coords.setdefault("neuroid", np.arange(len(keep)))
    read = _read_stored_means if store.averaged and not from_trials else _average_trials
    values = read(store, region, keep, wanted, group)
    return {"values": values, "stimulus_id": wanted, "n_repeats": counts.astype(np.int16), "neuroid_coords": coords}


def _neuroid_coords(store: Any, region: str) -> dict[str, np.ndarray]:
    """Every per-neuroid schema coordinate of a region, its components concatenated, read with Zarr.

    The values ``store.region(region)`` loads (decoded by xarray's own CF decoding, strings as numpy
    ``str``), without opening the trial-level dataset: that open (every array's metadata, the trial
    coordinates) cost ~0.1-0.15 s per region, more than reading the region's stored means. Kept
    per store and region (a store is one commit of a subject: its coordinates never change).
    """
    cache = _COORDS.setdefault(store, {})
    if region not in cache:
        parts = [_component_coords(store, name) for name in store.components(region)]
        names = [name for name in parts[0] if all(name in part for part in parts)]
        cache[region] = {name: np.concatenate([part[name] for part in parts]) for name in names}
    return cache[region]


def _component_coords(store: Any, name: str) -> dict[str, np.ndarray]:
    group = zarr.open_group(store._store, path=f"{store.relative}/regions/{name}", mode="r")
    wanted = [c for c, entry in load_schema(SCHEMA)["coords"].items() if entry["dims"] == ["neuroid"]]
    arrays = {c: group[c] for c in wanted if c in group}
    raw = xr.Dataset({c: xr.Variable(("neuroid",), a[:], dict(a.attrs)) for c, a in arrays.items()})
    decoded = plain_strings(xr.decode_cf(raw))  # as xr.open_zarr decodes them (fill values, units)
    return {c: np.asarray(decoded[c].values) for c in arrays}


def _region_width(store: Any, region: str) -> int:
    """Neuroids of a region whose components store no per-neuroid coordinate (the betas' width)."""
    return sum(zarr.open_array(store._store, path=TRIAL_BETAS.format(relative=store.relative, name=n), mode="r").shape[1] for n in store.components(region))


def _component_columns(store: Any, region: str, keep: np.ndarray, array_path: str) -> list[tuple[str, zarr.Array, np.ndarray]]:
    """(name, stored array, the kept columns within it) of each component of ``region``, in order."""
    names = store.components(region)
    arrays = [zarr.open_array(store._store, path=array_path.format(relative=store.relative, name=name), mode="r") for name in names]
    return list(zip(names, arrays, columns_by_component([a.shape[1] for a in arrays], keep)))


def _read_stored_means(store: Any, region: str, keep: np.ndarray, wanted: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The kept columns of the stored repeat means (Zarr reads the chunks holding them, concurrently)."""
    values = np.empty((len(wanted), len(keep)), dtype=np.float32)
    filled = 0
    for name, array, columns in _component_columns(store, region, keep, AVERAGED_RESPONSES):
        if array.shape[0] != len(wanted):
            raise ValueError(f"{store.where}: averaged responses of {name} hold {array.shape[0]} stimuli, the trial table {len(wanted)}")
        if len(columns):
            values[:, filled : filled + len(columns)] = array.get_orthogonal_selection((slice(None), columns))
        filled += len(columns)
    return values


def _average_trials(store: Any, region: str, keep: np.ndarray, wanted: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The kept columns averaged here from every trial, one stored chunk column at a time."""
    n_trials = len(group)
    # (component array, first stored column, stop, kept columns within [first, stop)) per read:
    # READ_CHUNK_COLUMNS stored chunk columns at a time (Zarr reads their chunks concurrently)
    reads = []
    for name, betas, mine in _component_columns(store, region, keep, TRIAL_BETAS):
        if betas.shape[0] != n_trials:
            raise ValueError(f"{store.where}: region {name} has {betas.shape[0]} trials, the trial table {n_trials}")
        step = betas.chunks[1] * READ_CHUNK_COLUMNS
        for start in range(0, betas.shape[1], step):
            stop = min(start + step, betas.shape[1])
            columns = mine[(mine >= start) & (mine < stop)]
            if len(columns):  # stored chunks with no kept voxel are never read
                reads.append((betas, start, stop, columns))

    def read(index: int) -> np.ndarray:
        betas, start, stop, columns = reads[index]
        slab = betas[:, start:stop]  # every trial of a few chunk columns, float32 as stored
        return slab if len(columns) == stop - start else slab[:, columns - start]

    values = np.empty((len(wanted), len(keep)), dtype=np.float32)
    averager = RepeatAverager(group, len(wanted), AVERAGE_COLUMNS)
    filled = 0
    # the next slab is read while this one is averaged (Zarr's fetch and decompression release the GIL)
    with ThreadPoolExecutor(1) as prefetch:
        pending = prefetch.submit(read, 0) if reads else None
        for index in range(len(reads)):
            selected = pending.result()
            pending = prefetch.submit(read, index + 1) if index + 1 < len(reads) else None
            # averaged AVERAGE_COLUMNS at a time: the float64 copy it makes stays one chunk wide
            for a in range(0, selected.shape[1], AVERAGE_COLUMNS):
                part = selected[:, a : a + AVERAGE_COLUMNS]
                averager.average(part, out=values[:, filled : filled + part.shape[1]])
                filled += part.shape[1]
            del selected, part
    return values


def region_read_bytes(n_trials: int, chunk_width: int = 512) -> int:
    """Transient bytes of :func:`read_region_average` beyond its result: the slab being averaged and
    the prefetched one (float32, each with its compressed chunks in flight) and the float64 buffer."""
    slab = n_trials * chunk_width * READ_CHUNK_COLUMNS * 4
    return 2 * 2 * slab + n_trials * AVERAGE_COLUMNS * 8


def streamed_read_bytes(array: zarr.Array, n_rows: int) -> int:
    """Transient bytes of a streamed feature read beside a kernel step: the stored column block
    (float32, ``n_rows`` rows, one stored chunk wide) and the decoded and compressed chunks in
    flight (:func:`read_feature_rows`); 0 for a layer a unit reads whole."""
    from laion_lake.scoring.units import IN_MEMORY_FEATURE_BYTES

    if 4 * n_rows * int(array.shape[1]) <= IN_MEMORY_FEATURE_BYTES:
        return 0
    height, width = (int(x) for x in array.chunks)
    chunk = 4 * height * width
    return 4 * n_rows * min(width, int(array.shape[1])) + 2 * max(MAX_READ_BYTES // chunk, 1) * chunk


def feature_array(lake: Any, model: str, layer: str) -> tuple[zarr.Array, np.ndarray]:
    """The stored activations array of a feature set and its stimulus ids (stored order)."""
    from laion_lake.lake.features import features_path

    lake.feature_entry(model, layer)  # the lake's named error for an unknown set
    group = zarr.open_group(lake.storage.store(), path=features_path(model, layer), mode="r")
    ids = np.asarray(group["stimulus_id"][:]).astype(object).astype(str)
    return group["activations"], ids


def rows_of(stored_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray | None:
    """Stored row of each wanted id (in the order given), or None when one is missing."""
    order = np.argsort(stored_ids, kind="stable")
    at = np.clip(np.searchsorted(stored_ids, wanted, sorter=order), 0, max(len(stored_ids) - 1, 0))
    rows = order[at] if len(stored_ids) else np.zeros(len(wanted), np.intp)
    if len(stored_ids) == 0 or np.any(stored_ids[rows] != wanted):
        return None
    return rows


def read_feature_rows(array: zarr.Array, rows: np.ndarray, columns: slice = slice(None), max_read_bytes: int | None = None) -> np.ndarray:
    """``array[rows, columns]`` (float32, in the order of ``rows``).

    Zarr reads only the stored chunks holding a wanted row (concurrently, each decoded once) and
    copies out only the wanted rows; the rows are asked sorted and put back in the order given.
    The stored row chunks are read in groups of at most ``max_read_bytes`` of decoded chunks
    (default :data:`MAX_READ_BYTES`), so a wide column block never has all its chunks in flight.
    """
    rows = np.asarray(rows, dtype=np.intp)
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    first, last, _ = columns.indices(array.shape[1])
    height, width = array.chunks
    chunk_bytes = height * (-(-(last - first) // width) * width) * array.dtype.itemsize
    per_read = max(1, (max_read_bytes or MAX_READ_BYTES) // max(chunk_bytes, 1))
    chunk_of = sorted_rows // height
    touched = np.unique(chunk_of)
    out = np.empty((len(rows), last - first), dtype=array.dtype)
    for group in range(0, len(touched), per_read):
        inside = np.flatnonzero((chunk_of >= touched[group]) & (chunk_of <= touched[min(group + per_read, len(touched)) - 1]))
        out[inside] = array.get_orthogonal_selection((sorted_rows[inside], slice(first, last)))
    if np.array_equal(order, np.arange(len(rows))):
        return out
    result = np.empty_like(out)
    result[order] = out
    return result


__all__ = ["feature_array", "read_feature_rows", "read_region_average", "region_read_bytes", "rows_of", "streamed_read_bytes"]
