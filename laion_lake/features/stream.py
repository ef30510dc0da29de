"""Write feature sets row block by row block, as a model's batches finish, never holding a layer whole.

:meth:`Lake.write_features` takes a whole (stimulus_id, feature) array. A wide layer (800,000
features x 6,204 stimuli is 20 GB in float32) cannot be held, so this module writes the same
store (same schema, same layout, same content checksum as :func:`content_checksum`, same manifest
entry) from an iterator of row blocks: only ``buffer_bytes`` of rows per layer are in memory.

This is the one place that writes feature stores outside ``Lake.write_features``. Every writer's
group, its rows and its manifest entry go into one session of the lake's Icechunk repository and
one commit: a failure or a kill during extraction leaves the last commit as it was, and an
overwrite replaces the old store in that same commit. :class:`FeatureStreamWriter` only needs a
Zarr store (the session's) to write into.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.errors import describe_ids
from laion_lake.lake.features import SCHEMA, feature_key, features_path
import zarr

from laion_lake.lake.zarr_io import COMPLETE_ATTR, ENTRY_ATTR, checksum_header, prepare_store, update_checksum, write_dataset_group
from storage_schemas import check_dataset, latest_version, load_schema

# rows of one layer kept before a chunk-aligned write: bounds memory per layer being extracted
DEFAULT_BUFFER_BYTES = 256 << 20


class FeatureStreamWriter:
    """One feature set written block of rows by block of rows into a Zarr store.

    Parameters
    ----------
    model, layer : str
        The feature set's names.
    stimulus_ids : array of str, shape (n_stimuli,)
        Every row's id, in the order the blocks will arrive.
    n_features : int
        Columns per row (the layer's flattened size).
    provenance : dict
        JSON-able; stored in the store's attrs and in the manifest entry.
    buffer_bytes : int
        Rows are gathered into chunk-aligned bands of at most this many bytes (and at most the
        schema's 1,024 rows) before each write: memory per layer is about this much.
    """

    def __init__(self, model: str, layer: str, stimulus_ids: np.ndarray, n_features: int,
                 provenance: dict[str, Any], buffer_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        self.model, self.layer = model, layer
        self.stimulus_ids = np.asarray(stimulus_ids).astype(str)
        self.n_stimuli, self.n_features = len(self.stimulus_ids), int(n_features)
        self.provenance = dict(provenance)
        chunks = load_schema(SCHEMA)["chunks"]
        row_bytes = 4 * self.n_features
        self.rows_per_chunk = int(max(1, min(int(chunks["stimulus_id"]), self.n_stimuli, buffer_bytes // row_bytes)))
        self.feature_chunk = int(min(int(chunks["feature"]), self.n_features))
        self._buffer = np.empty((self.rows_per_chunk, self.n_features), dtype=np.float32)
        self._filled = 0  # rows in the buffer
        self._written = 0  # rows already in the store
        self._digest = hashlib.sha256()
        self._array: Any = None

    @property
    def relative(self) -> str:
        return features_path(self.model, self.layer)

    def skeleton(self) -> xr.Dataset:
        """The store's dataset with a lazy, never computed activations array (metadata only)."""
        import dask.array as da

        zeros = da.zeros((self.n_stimuli, self.n_features), dtype=np.float32, chunks=(self.rows_per_chunk, self.feature_chunk))
        ds = xr.Dataset({"activations": (("stimulus_id", "feature"), zeros)}, coords={"stimulus_id": self.stimulus_ids})
        return ds.assign_attrs(model=self.model, layer=self.layer)

    def begin(self, store: Any, group: str | None = None) -> None:
        """Write coordinates and array metadata into ``store`` (at ``group``); blocks go in next.

        Starts the writer afresh, so a write redone on a new session (after a conflicting commit)
        gives the same store and checksum.
        """
        import zarr

        ds = self.skeleton()
        check_dataset(ds, SCHEMA, where=f"{self.model}/{self.layer}", check_values=False)
        write_dataset_group(store, ds, group, {"activations": (self.rows_per_chunk, self.feature_chunk)}, compute=False)
        self._array = zarr.open_array(store, path=f"{group}/activations" if group else "activations", mode="r+")
        self._filled = self._written = 0
        self._digest = hashlib.sha256()
        # content_checksum hashes variables by name: 'activations' (header, rows in order), then 'stimulus_id'
        self._digest.update(checksum_header("activations", ("stimulus_id", "feature"), "f", (self.n_stimuli, self.n_features)))

    def append(self, block: np.ndarray) -> None:
        """Add the next rows, shape (n_rows, n_features); written once a chunk's rows are gathered."""
        block = np.asarray(block, dtype=np.float32)
        start = self._written + self._filled
        if block.ndim != 2 or block.shape[1] != self.n_features:
            raise ValueError(f"{self.model}/{self.layer}: block of shape {block.shape}, expected (n_rows, {self.n_features})")
        if start + len(block) > self.n_stimuli:
            raise ValueError(f"{self.model}/{self.layer}: {start + len(block)} rows for {self.n_stimuli} stimuli")
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad) + start
            raise ValueError(f"{self.model}/{self.layer}: non-finite activations for stimuli {describe_ids(self.stimulus_ids[rows])}")
        offset = 0
        while offset < len(block):
            take = min(self.rows_per_chunk - self._filled, len(block) - offset)
            self._buffer[self._filled : self._filled + take] = block[offset : offset + take]
            self._filled += take
            offset += take
            if self._filled == self.rows_per_chunk:
                self._flush()

    def _flush(self) -> None:
        if not self._filled:
            return
        band = self._buffer[: self._filled]
        self._array[self._written : self._written + self._filled, :] = band
        self._digest.update(np.ascontiguousarray(band).tobytes())
        self._written += self._filled
        self._filled = 0

    def finish(self) -> dict[str, Any]:
        """Write the last rows; return the store's root attrs (schema, checksum, provenance)."""
        self._flush()
        if self._written != self.n_stimuli:
            raise ValueError(f"{self.model}/{self.layer}: {self._written} of {self.n_stimuli} rows written")
        update_checksum(self._digest, "stimulus_id", xr.Variable(("stimulus_id",), self.stimulus_ids))
        self._buffer = np.empty((0, self.n_features), dtype=np.float32)
        return {"schema": SCHEMA, "schema_version": latest_version(SCHEMA), "checksum": self.checksum, "provenance": self.provenance}

    @property
    def checksum(self) -> str:
        return self._digest.hexdigest()

    def manifest_entry(self) -> dict[str, Any]:
        """The manifest entry, as ``Lake.write_features`` lists a feature set."""
        return {"path": self.relative, "model": self.model, "layer": self.layer, "n_stimuli": self.n_stimuli,
                "n_features": self.n_features, "checksum": self.checksum, "schema_version": latest_version(SCHEMA),
                "provenance": self.provenance}


def write_feature_streams(lake: Any, writers: Sequence[FeatureStreamWriter], fill: Callable[[], None], overwrite: bool = False) -> None:
    """Open every writer's store, run ``fill()`` (which appends every block), finish, list them in the manifest.

    One commit holds every store and manifest entry (all or nothing; an exception in ``fill``
    commits nothing). ``fill`` may be called again when the commit meets a conflicting writer
    and is redone on a fresh session, so it must be repeatable (extraction is deterministic).
    """
    known = set(np.asarray(lake.stimuli["stimulus_id"].values).astype(str).tolist())
    for writer in writers:
        unknown = [i for i in writer.stimulus_ids.tolist() if i not in known]
        if unknown:
            raise ValueError(f"{writer.model}/{writer.layer}: {len(unknown)} stimulus id(s) not in the lake's stimulus table: {describe_ids(unknown)}")

    def change(session: Any) -> None:
        # every writer's store, the fill and the manifest entries are one commit: all or nothing
        for writer in writers:
            prepare_store(session, lake.storage, writer.relative, overwrite)
            writer.begin(session.store, writer.relative)
        fill()
        for writer in writers:
            attrs = {**writer.finish(), ENTRY_ATTR: writer.manifest_entry(), COMPLETE_ATTR: True}
            zarr.open_group(session.store, path=writer.relative, mode="a").attrs.update(attrs)

    names = ", ".join(feature_key(w.model, w.layer) for w in writers)  # escaped: one message per key
    lake.storage.write(f"features {names} (streamed){' (overwrite)' if overwrite else ''}", change)
    lake.refresh()


__all__ = ["DEFAULT_BUFFER_BYTES", "FeatureStreamWriter", "write_feature_streams"]
