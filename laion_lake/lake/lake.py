"""The :class:`Lake`: one URL, a manifest (lake.json), and lazy xarray views of what it holds."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.compute.averaging import average_rows_by_group, group_index_for_trials
from laion_lake.errors import LakeNotFoundError, MissingStimuliError, UnknownNameError
from laion_lake.lake.features import features_path, name_from_component, open_features, write_features
from laion_lake.lake.storage import LakeStorage
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
from storage_schemas import check_record, latest_version

MANIFEST = "lake.json"
SCHEMAS = ("subject_assembly", "stimuli", "splits", "features", "score_record", "lake_manifest")


def _new_manifest() -> dict[str, Any]:
    return {
        "format": "laion-lake",
        "schema_versions": {name: latest_version(name) for name in SCHEMAS},
        "subjects": {},
        "pools": [],
        "provenance": {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")},
        "features": {},
    }


class Lake:
    """A LAION-fMRI lake at a URL. Opening reads lake.json only; every array is read lazily.

    Parameters
    ----------
    url : str
        A local path (the embedded default), ``s3://bucket/prefix``, ``memory://name``, ...
    storage_options : dict, optional
        fsspec options, e.g. ``{"endpoint_url": "http://127.0.0.1:5000", "key": ..., "secret": ...}``.
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.storage = LakeStorage(url, storage_options)
        if not self.storage.exists(MANIFEST):
            raise LakeNotFoundError(f"no lake at {self.storage.url} (no {MANIFEST}); create one with `laion-lake synth` or create_lake()")
        self.manifest = self.storage.read_json(MANIFEST)
        check_record(self.manifest, "lake_manifest", where=self.storage.display(MANIFEST))

    def __repr__(self) -> str:
        return f"Lake({self.url!r}: {len(self.subjects)} subjects, {len(self.feature_sets)} feature sets)"

    def __reduce__(self) -> tuple[Any, ...]:
        # a Lake travels to Dask workers as its URL and options; they reopen it
        return (type(self), (self.storage.url, self.storage.storage_options))

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def storage_options(self) -> dict[str, Any]:
        return self.storage.storage_options

    # -- manifest ------------------------------------------------------------------------------
    def _update_manifest(self, **changes: Any) -> None:
        manifest = self.storage.read_json(MANIFEST)
        for key, value in changes.items():
            if isinstance(value, Mapping) and isinstance(manifest.get(key), Mapping):
                manifest[key] = {**manifest[key], **value}
            else:
                manifest[key] = value
        check_record(manifest, "lake_manifest", where=self.storage.display(MANIFEST))
        self.storage.write_json(MANIFEST, manifest)
        self.manifest = manifest
        for cached in ("stimuli", "_splits", "_subject_stores"):
            self.__dict__.pop(cached, None)

    def set_provenance(self, provenance: Mapping[str, Any]) -> None:
        """Merge ``provenance`` into the manifest's provenance record."""
        self._update_manifest(provenance=dict(provenance))

    @property
    def subjects(self) -> list[str]:
        """Subjects whose assembly is complete in the lake, sorted."""
        return sorted(self.manifest.get("subjects", {}))

    @property
    def pools(self) -> list[str]:
        return list(self.manifest.get("pools", []))

    @property
    def feature_sets(self) -> list[tuple[str, str]]:
        """(model, layer) pairs the lake holds, sorted."""
        return sorted((entry["model"], entry["layer"]) for entry in self.manifest.get("features", {}).values())

    def _require_subject(self, subject: str) -> None:
        if subject not in self.manifest.get("subjects", {}):
            raise UnknownNameError("subject", subject, self.subjects, where=self.url)

    # -- writers ---------------------------------------------------------------------------------
    def write_stimuli(self, stimuli: xr.Dataset, overwrite: bool = False) -> None:
        """Write the stimulus table (see storage_schemas/stimuli.v1.json)."""
        entry = write_table(self.storage, STIMULI_PATH, stimuli, "stimuli", overwrite=overwrite)
        self._update_manifest(stimuli=entry)

    def write_splits(self, documents: Iterable[Mapping[str, Any]], overwrite: bool = False) -> None:
        """Ingest published split documents (see :func:`laion_lake.lake.tables.read_published_splits`).

        Each document needs ``lake_pool`` (``shared`` or a subject id); every id must be in the
        stimulus table, so write the stimuli first.
        """
        ds = splits_dataset_from_documents(documents, self.stimuli["stimulus_id"].values)
        entry = write_table(self.storage, SPLITS_PATH, ds, "splits", overwrite=overwrite)
        self._update_manifest(splits=entry, pools=sorted(set(ds["pool"].values.tolist())))

    def write_subject(self, subject: str, assembly: xr.Dataset, overwrite: bool = False) -> None:
        """Write one subject's trial-level assembly (see storage_schemas/subject_assembly.v1.json)."""
        entry = write_subject(self.storage, subject, assembly, overwrite=overwrite)
        self._update_manifest(subjects={subject: entry})

    def register_subject(self, subject: str) -> None:
        """List in the manifest a complete subject store written outside :meth:`write_subject`
        (e.g. streamed by :func:`laion_lake.lake.subjects.write_subject_streaming`)."""
        self._update_manifest(subjects={subject: subject_manifest_entry(self.storage, subject)})

    def write_features(self, model: str, layer: str, data: Any, overwrite: bool = False, provenance: dict[str, Any] | None = None) -> None:
        """Write a model layer's activations, a DataArray (stimulus_id, feature) keyed by stimulus id.

        ``provenance`` (JSON-able dict, e.g. source file, sha256, date) is kept in the store's attrs
        and in the manifest entry.
        """
        known = self.stimuli["stimulus_id"].values if "stimuli" in self.manifest else None
        entry = write_features(self.storage, model, layer, data, known_stimuli=known, overwrite=overwrite, provenance=provenance)
        self._update_manifest(features={f"{model}/{layer}": entry})

    # -- readers ---------------------------------------------------------------------------------
    @cached_property
    def stimuli(self) -> xr.Dataset:
        """The stimulus table: source, shared, ood_category, owner, design_repeats, n_repeats (stimulus_id, subject)."""
        if "stimuli" not in self.manifest:
            raise LakeNotFoundError(f"{self.url} has no stimulus table yet")
        return read_table(self.storage, STIMULI_PATH, "stimuli")

    @cached_property
    def _splits(self) -> xr.Dataset:
        if "splits" not in self.manifest:
            raise LakeNotFoundError(f"{self.url} has no splits yet")
        return read_table(self.storage, SPLITS_PATH, "splits")

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
        return self._subject_store(subject).assembly()

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
        store = self._subject_store(subject)
        ds = store.region(region)
        if nc_threshold is not None:
            if nc_coord not in ds.coords:
                choices = [c for c in ds.coords if str(c).startswith("nc")]
                raise UnknownNameError("noise-ceiling coordinate", nc_coord, choices, where=store.where)
            ds = ds.isel(neuroid=np.flatnonzero(ds[nc_coord].values > nc_threshold))
        trial_ids = store.trials["stimulus_id"].values
        seen = np.unique(trial_ids)
        wanted = seen if stimulus_ids is None else np.unique(np.asarray(list(stimulus_ids)).astype(str))
        missing = np.setdiff1d(wanted, seen)
        if len(missing):
            raise MissingStimuliError(f"{store.where} (subject {subject})", list(missing), needed_by=f"responses({region!r})")
        group = group_index_for_trials(trial_ids, wanted)
        trials = np.flatnonzero(group >= 0)
        betas = ds["betas"].data[trials]
        # one block per neuroid chunk holding all selected trials: bounded by trials x chunk width
        betas = betas.rechunk({0: -1})
        averaged = betas.map_blocks(
            average_rows_by_group,
            group[trials],
            len(wanted),
            chunks=((len(wanted),), betas.chunks[1]),
            dtype=betas.dtype,
        )
        counts = np.bincount(group[trials], minlength=len(wanted)).astype(np.int16)
        neuroid_coords = {name: ds[name].variable for name in ds.coords if ds[name].dims == ("neuroid",)}
        return xr.DataArray(
            averaged,
            dims=("stimulus_id", "neuroid"),
            coords={"stimulus_id": wanted, "n_repeats": ("stimulus_id", counts), **neuroid_coords},
            name="responses",
            attrs={"subject": subject, "region": region, "nc_threshold": nc_threshold, "nc_coord": nc_coord},
        )

    def features(self, model: str, layer: str, stimulus_ids: Iterable[str] | None = None) -> xr.DataArray:
        """A model layer's activations (stimulus_id, feature), lazy; in ``stimulus_ids`` order when given."""
        key = f"{model}/{layer}"
        if key not in self.manifest.get("features", {}):
            raise UnknownNameError("feature set", key, list(self.manifest.get("features", {})), where=self.url)
        wanted = None if stimulus_ids is None else np.asarray(list(stimulus_ids)).astype(str)
        return open_features(self.storage, model, layer, wanted, needed_by="the request")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lake) and (self.url, self.storage_options) == (other.url, other.storage_options)

    def __hash__(self) -> int:
        return hash(self.url)


def open_lake(url: str, storage_options: dict[str, Any] | None = None) -> Lake:
    """Open the lake at ``url`` (reads lake.json only)."""
    return Lake(url, storage_options)


def create_lake(url: str, storage_options: dict[str, Any] | None = None) -> Lake:
    """Open the lake at ``url``, writing an empty manifest first if there is none."""
    storage = LakeStorage(url, storage_options)
    if not storage.exists(MANIFEST):
        storage.write_json(MANIFEST, _new_manifest())
    return Lake(url, storage_options)


__all__ = ["Lake", "create_lake", "open_lake", "features_path", "name_from_component"]
