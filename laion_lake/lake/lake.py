"""The :class:`Lake`: one URL (an Icechunk repository), one snapshot read, and lazy xarray views of it.

The manifest is not a file: it is the list of stores (groups carrying their entry) in the
snapshot read, so a store and its manifest entry are written in one commit.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr
import zarr

from laion_lake.errors import LakeNotFoundError, UnknownNameError
from laion_lake.lake.annotate import annotated
from laion_lake.lake.features import feature_key, features_path, name_from_component, open_features, write_features
from laion_lake.lake.manifest import (  # re-exported: the manifest reading moved to manifest
    FIXED_GROUPS,
    MANIFEST_PATHS,
    RESULTS_GROUP,
    SCHEMAS,
    _entries,
    _new_root_attrs,
    read_manifest,
)
from laion_lake.lake.responses import subject_responses
from laion_lake.lake.snapshot_cache import snapshot_cached
from laion_lake.lake.storage import LakeStorage, writable_group
from laion_lake.lake.subjects import SubjectStore, subject_manifest_entry, write_subject
from laion_lake.lake.tables import (
    SPLITS_PATH,
    STIMULI_PATH,
    TEST,
    TRAIN,
    read_table,
    splits_dataset_from_documents,
    write_table,
)
from storage_schemas.variables import with_variable_attrs


class Lake:
    """A LAION-fMRI lake at a URL, read at one snapshot. Opening reads metadata only; every array lazily.

    Parameters
    ----------
    url : str
        A local path (the embedded default), ``s3://bucket/prefix``, ``memory://name``.
    storage_options : dict, optional
        S3 endpoint, credentials and network settings, e.g. ``{"endpoint_url": "http://127.0.0.1:5000"}``
        (key and secret may come from the environment instead).
    branch, tag, snapshot : str, optional
        The snapshot read: a snapshot id, else a tag (e.g. a release version), else the head of
        ``branch`` (default ``main``). A lake opened at a tag or snapshot id is read-only. Every
        write commits to ``main``; the lake then reads the snapshot it committed.
    """

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        branch: str | None = None,
        tag: str | None = None,
        snapshot: str | None = None,
    ) -> None:
        self.storage = LakeStorage(url, storage_options, branch=branch, tag=tag, snapshot=snapshot)
        self.manifest  # noqa: B018  (fail now when there is no lake)

    def __repr__(self) -> str:
        pinned = self.storage.pinned
        at = f"tag {pinned['tag']}" if pinned["tag"] else (pinned["branch"] or ("main" if not pinned["snapshot"] else "snapshot"))
        n_stimuli = int(self.manifest.get("stimuli", {}).get("stimulus_id", 0))
        return f"Lake({self.url!r} @ {at} {self.snapshot_id[:8]}: {len(self.subjects)} subjects, {n_stimuli} stimuli, {len(self.feature_sets)} feature sets)"

    def __reduce__(self) -> tuple[Any, ...]:
        # a Lake travels to Dask workers as its URL, options and pin; they reopen it
        pinned = self.storage.pinned
        return (type(self), (self.storage.url, self.storage.storage_options, pinned["branch"], pinned["tag"], pinned["snapshot"]))

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def storage_options(self) -> dict[str, Any]:
        return self.storage.storage_options

    @property
    def snapshot_id(self) -> str:
        """The Icechunk snapshot this lake reads (cite it with the results)."""
        return self.storage.snapshot_id

    # -- manifest ------------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        """What the snapshot holds: subjects, stimuli, splits, pools, features (entries), provenance."""
        cached = self.__dict__.get("_manifest")
        if cached is None or cached[0] != self.storage.snapshot_id:
            self._forget()
            cached = (self.storage.snapshot_id, copy.deepcopy(snapshot_cached(self.storage, "manifest", MANIFEST_PATHS, lambda: read_manifest(self.storage))))
            self.__dict__["_manifest"] = cached
        return cached[1]

    def _forget(self) -> None:
        for name in ("stimuli", "_splits", "_subject_stores", "_manifest"):
            self.__dict__.pop(name, None)

    def refresh(self) -> None:
        """Read the newest head of the branch (a lake opened at a tag or snapshot stays there)."""
        if not self.storage.read_only:
            self.storage.refresh()
        self._forget()

    @contextlib.contextmanager
    def transaction(self, message: str) -> Iterator[Lake]:
        """Every write inside the block goes into one session and one commit (all or nothing).

        >>> with lake.transaction("synthetic lake"):
        ...     lake.write_stimuli(...); lake.write_subject(...)
        """
        with self.storage.transaction(message):
            yield self
        self._forget()

    def set_provenance(self, provenance: Mapping[str, Any]) -> None:
        """Merge ``provenance`` into the lake's provenance record (root group attributes)."""

        def change(session: Any) -> None:
            root = writable_group(session, "")
            root.attrs["provenance"] = {**dict(root.attrs.get("provenance", {})), **dict(provenance)}

        self.storage.write("provenance", change)
        self._forget()

    def log(self) -> list[dict[str, Any]]:
        """The commits of ``main``, newest first: id, time, message, and the tags naming each."""
        tags: dict[str, list[str]] = {}
        for name, snapshot in self.storage.repository.tags().items():
            tags.setdefault(snapshot, []).append(name)
        return [
            {"snapshot": info.id, "written_at": info.written_at.isoformat(timespec="seconds"), "message": info.message, "tags": tags.get(info.id, [])}
            for info in self.storage.repository.log()
        ]

    def tag(self, name: str, snapshot: str | None = None) -> str:
        """Tag a snapshot (default the one this lake reads) as ``name``, e.g. a release version."""
        return self.storage.repository.tag(name, snapshot or self.snapshot_id)

    @property
    def subjects(self) -> list[str]:
        """Subjects whose assembly is in the snapshot, sorted."""
        return sorted(self.manifest.get("subjects", {}))

    @property
    def pools(self) -> list[str]:
        return list(self.manifest.get("pools", []))

    @property
    def feature_sets(self) -> list[tuple[str, str]]:
        """(model, layer) pairs the lake holds, sorted."""
        return sorted((entry["model"], entry["layer"]) for entry in self.manifest.get("features", {}).values())

    def feature_entry(self, model: str, layer: str) -> dict[str, Any]:
        """The manifest entry of one feature set (path, sizes, checksum, provenance)."""
        key = feature_key(model, layer)
        entries = self.manifest.get("features", {})
        if key not in entries:
            raise UnknownNameError("feature set", f"{model}/{layer}", list(entries), where=self.url)
        return dict(entries[key])

    def _require_subject(self, subject: str) -> None:
        if subject not in self.manifest.get("subjects", {}):
            raise UnknownNameError("subject", subject, self.subjects, where=self.url)

    # -- writers (each one commit, or part of a transaction) -----------------------------------
    def write_stimuli(self, stimuli: xr.Dataset, overwrite: bool = False) -> None:
        """Write the stimulus table (see storage_schemas/stimuli.v1.json)."""
        write_table(self.storage, STIMULI_PATH, stimuli, "stimuli", overwrite=overwrite)
        self._forget()

    def write_splits(self, documents: Iterable[Mapping[str, Any]], overwrite: bool = False) -> None:
        """Ingest published split documents (see :func:`laion_lake.lake.tables.read_published_splits`).

        Each document needs ``lake_pool`` (``shared`` or a subject id); every id must be in the
        stimulus table, so write the stimuli first.
        """
        ds = splits_dataset_from_documents(documents, self.stimuli["stimulus_id"].values)
        write_table(self.storage, SPLITS_PATH, ds, "splits", overwrite=overwrite, extra={"pools": sorted(set(ds["pool"].values.tolist()))})
        self._forget()

    def write_subject(self, subject: str, assembly: xr.Dataset, overwrite: bool = False) -> None:
        """Write one subject's trial-level assembly (see storage_schemas/subject_assembly.v1.json)."""
        write_subject(self.storage, subject, assembly, overwrite=overwrite)
        self._forget()

    def register_subject(self, subject: str) -> None:
        """Read the newest head and check that ``subject`` is in it (a streamed write commits it itself:
        see :func:`laion_lake.lake.subjects.write_subject_streaming`)."""
        self.refresh()
        subject_manifest_entry(self.storage, subject)

    def write_features(self, model: str, layer: str, data: Any, overwrite: bool = False, provenance: dict[str, Any] | None = None) -> None:
        """Write a model layer's activations, a DataArray (stimulus_id, feature) keyed by stimulus id.

        ``provenance`` (JSON-able dict, e.g. source file, sha256, date) is kept in the store's attrs
        and in the manifest entry.
        """
        known = self.stimuli["stimulus_id"].values if "stimuli" in self.manifest else None
        write_features(self.storage, model, layer, data, known_stimuli=known, overwrite=overwrite, provenance=provenance)
        self._forget()

    # -- readers ---------------------------------------------------------------------------------
    @cached_property
    def stimuli(self) -> xr.Dataset:
        """The stimulus table: source, shared, ood_category, owner, design_repeats, n_repeats (stimulus_id, subject)."""
        if "stimuli" not in self.manifest:
            raise LakeNotFoundError(f"{self.url} has no stimulus table yet")
        table = snapshot_cached(self.storage, "stimuli", (f"/{STIMULI_PATH}",), lambda: with_variable_attrs(read_table(self.storage, STIMULI_PATH, "stimuli")))
        return table.copy(deep=False)  # kept for the process: a caller's new variable or attribute stays its own

    @cached_property
    def _splits(self) -> xr.Dataset:
        if "splits" not in self.manifest:
            raise LakeNotFoundError(f"{self.url} has no splits yet")
        return snapshot_cached(self.storage, "splits", (f"/{SPLITS_PATH}",), lambda: read_table(self.storage, SPLITS_PATH, "splits")).copy(deep=False)

    def split_names(self, pool: str) -> list[str]:
        """Stored split names of ``pool`` plus the derived ``ood_<category>`` ones."""
        splits = self._splits
        names = sorted(set(splits["name"].values[splits["pool"].values == pool].tolist()))
        if "ood" in names:
            categories = sorted(set(self.stimuli["ood_category"].values.tolist()) - {""})
            names += [f"ood_{category}" for category in categories]
        return names

    def split(self, pool: str, name: str, variant: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(train_ids, test_ids) of a split, each sorted.

        ``ood_<category>`` is the ``ood`` split with its test set restricted to one OOD category.
        """
        splits = self._splits
        pools = sorted(set(splits["pool"].values.tolist()))
        if pool not in pools:
            raise UnknownNameError("pool", pool, pools, where=self.storage.display(SPLITS_PATH))
        stored_name, category = name, None
        if name.startswith("ood_"):
            stored_name, category = "ood", name.removeprefix("ood_")
        key = f"{pool}/{stored_name}/{variant}"
        if key not in splits["split"].values or (category is not None and name not in self.split_names(pool)):
            raise UnknownNameError("split", name, self.split_names(pool), where=f"pool {pool!r}")
        membership = splits["membership"].sel(split=key).values
        ids = splits["stimulus_id"].values
        train, test = ids[membership == TRAIN], ids[membership == TEST]
        if category is not None:
            test_categories = self.stimuli["ood_category"].sel(stimulus_id=test).values
            test = test[test_categories == category]
        return np.sort(train), np.sort(test)

    @cached_property
    def _subject_stores(self) -> dict[str, SubjectStore]:
        return {}

    def _subject_store(self, subject: str) -> SubjectStore:
        """The opened store of one subject, kept: its trial table is read once per Lake."""
        self._require_subject(subject)
        if subject not in self._subject_stores:
            self._subject_stores[subject] = SubjectStore(self.storage, subject)
        return self._subject_stores[subject]

    def subject(self, subject: str) -> xr.Dataset:
        """One subject's trial-level assembly: betas (trial, neuroid), lazy, with every coordinate."""
        return annotated(self._subject_store(subject).assembly())  # attrs, and indexes on stimulus_id and neuroid_id

    def regions(self, subject: str) -> list[str]:
        """Regions available for ``subject`` (stored ones, then derived ones like IT_full)."""
        return self._subject_store(subject).region_names()

    def responses(
        self,
        subject: str,
        region: str,
        stimulus_ids: Iterable[str] | None = None,
        nc_threshold: float | None = 30.0,
        nc_coord: str = "nc_12rep",
    ) -> xr.DataArray:
        """Repeat-averaged responses of one subject and region, lazy.

        Parameters
        ----------
        subject, region : str
            E.g. ``"sub-01"``, ``"V1"`` (or the derived ``"IT_full"``).
        stimulus_ids : iterable of str, optional
            Stimuli wanted; default every stimulus the subject saw. Returned sorted.
        nc_threshold : float or None
            Keep voxels with ``nc_coord > nc_threshold`` (strict); None keeps every voxel.
        nc_coord : str
            Noise-ceiling coordinate the threshold applies to.

        Returns
        -------
        xarray.DataArray of shape (n_stimuli, n_neuroids)
            float32, dask-backed; coordinate ``n_repeats`` (stimulus_id) counts the trials averaged.

        Raises
        ------
        MissingStimuliError
            A wanted stimulus was never shown to this subject; the message names it.
        """
        return subject_responses(self._subject_store(subject), subject, region, stimulus_ids, nc_threshold, nc_coord)

    def voxel_scores(self, model: str, layer: str, benchmark: Any, quantity: str = "r") -> xr.DataArray:
        """Per-voxel results of a scored regression benchmark, lazy (dask-backed): (subject, neuroid),
        NaN-padded, with each voxel's coordinates (neuroid_id, x, y, z, roi, region, nc_*, nc_nsd),
        read from the arrays stored next to the unit records.

        ``quantity``: ``"r"`` (Pearson r) or ``"r2_nsd"`` (``r**2 / (NC/100)``, the ``nsd`` convention,
        NC for the test design, its coordinate ``nc_nsd``). See
        :func:`laion_lake.scoring.voxel_scores.stored_voxel_scores`.
        """
        from laion_lake.scoring.voxel_scores import stored_voxel_scores  # scoring sits above the lake layer

        return stored_voxel_scores(self, model, layer, benchmark, quantity)

    def features(self, model: str, layer: str, stimulus_ids: Iterable[str] | None = None) -> xr.DataArray:
        """A model layer's activations (stimulus_id, feature), lazy; in ``stimulus_ids`` order when given."""
        self.feature_entry(model, layer)
        wanted = None if stimulus_ids is None else np.asarray(list(stimulus_ids)).astype(str)
        return with_variable_attrs(open_features(self.storage, model, layer, wanted, needed_by="the request"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lake) and (self.url, self.storage_options, self.storage.pinned) == (other.url, other.storage_options, other.storage.pinned)

    def __hash__(self) -> int:
        return hash(self.url)

    # -- for notebook users (logic in laion_lake.lake.table and laion_lake.lake.html) -------------
    def scores(
        self, model: str | None = None, layer: str | None = None, benchmark: str | None = None, per_subject: bool = False, stale: bool = False
    ) -> Any:
        """The recorded scores as a tidy pandas DataFrame, one row per (model, layer, benchmark).

        Columns: model, layer, benchmark (key), family, region, split, metric, convention, value
        (ceiled), error, raw, ceiling, n_subjects, n_folds, stale, created. ``per_subject=True``
        gives the long form, one row per subject and fold (value = that cell's ceiled score, raw,
        ceiling, alpha, n_train, n_test, n_voxels). Records whose inputs were replaced since are
        left out unless ``stale=True`` (then ``stale`` is True on them). Filters as
        :func:`laion_lake.scoring.records.load_scores`.
        """
        from laion_lake.lake.table import score_table

        return score_table(self, model, layer, benchmark, per_subject=per_subject, stale=stale)

    def summary(self) -> dict[str, Any]:
        """What the snapshot holds (subjects with voxels per region, stimuli, feature sets, record
        counts, snapshot, branch, tag), from metadata only; see :func:`laion_lake.lake.html.lake_summary`."""
        from laion_lake.lake.html import lake_summary

        return lake_summary(self)

    def _repr_html_(self) -> str:
        from laion_lake.lake.html import lake_html

        return lake_html(self.summary())


def open_lake(
    url: str, storage_options: dict[str, Any] | None = None, snapshot: str | None = None, tag: str | None = None, branch: str | None = None
) -> Lake:
    """Open the lake at ``url`` at one snapshot: ``snapshot`` id, else ``tag``, else the head of ``branch`` (``main``)."""
    return Lake(url, storage_options, branch=branch, tag=tag, snapshot=snapshot)


def create_lake(url: str, storage_options: dict[str, Any] | None = None) -> Lake:
    """Open the lake at ``url``, creating the repository, its root attributes and fixed groups first if needed."""
    storage = LakeStorage(url, storage_options)
    storage.repository.create()

    def change(session: Any) -> None:
        root = zarr.open_group(session.store, mode="a")
        if root.attrs.get("format") == "laion-lake":
            return
        root.attrs.update(_new_root_attrs())
        for name in FIXED_GROUPS:
            zarr.open_group(session.store, path=name, mode="a")

    storage.write("create the lake", change)
    return Lake(url, storage_options)


__all__ = ["Lake", "create_lake", "open_lake", "features_path", "name_from_component", "read_manifest"]
