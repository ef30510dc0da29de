"""Benchmark specifications: one frozen, hashable value per (identifier, settings).

An identifier names *what* is scored (``{family}.{region}-{split}-{metric}``); the settings
(ceiling convention, noise-ceiling filter, subjects, alphas) say *how*. Two specs with the same
identifier and different settings are different values with different :attr:`BenchmarkSpec.key`,
so their score records never collide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from laion_lake.benchmarks.identifiers import (
    UnknownBenchmarkError,
    canonical_family,
    format_identifier,
    identifier_aliases,
    split_choices,
    unknown,
)
from laion_lake.benchmarks.vocabulary import (
    BIBTEX,
    CITATION,
    CKA,
    CONVENTIONS,
    DEFAULT_ALPHAS,
    DEFAULT_CONVENTION,
    DEFAULT_NC_COORD,
    DEFAULT_NC_THRESHOLD,
    FAMILY_POOLS,
    FIRST_VERSION,
    METRICS,
    NC_COORDS,
    RDM_PEARSON,
    REGION_COMPONENTS,
    REGIONS,
    RIDGE,
    SHARED_IMAGE_METRICS,
    SHARED_POOL,
    SPLIT_FOLDS,
    SPLITS,
    SUBJECTS,
)

# settings a caller may change through load_benchmark(identifier, **overrides); everything else
# is part of the identifier (or the version, which only a new definition of the benchmark changes)
OVERRIDABLE = ("convention", "nc_threshold", "nc_coord", "subjects", "alphas")

# separators of BenchmarkSpec.key: '@' starts the settings, ',' separates them, '+' joins a list.
# None of them occurs in an identifier, and all are safe in file names and S3 keys.
KEY_SETTINGS, KEY_SEPARATOR, KEY_LIST = "@", ",", "+"
KEY_NONE = "none"

def _subjects_tuple(subjects: str | Iterable[str]) -> tuple[str, ...]:
    # a lone "sub-01" would otherwise iterate into characters
    return (subjects,) if isinstance(subjects, str) else tuple(subjects)


@dataclass(frozen=True)
class BenchmarkSpec:
    """What one benchmark scores and how: a frozen, hashable, JSON-able value.

    Build one with :func:`laion_lake.benchmarks.load_benchmark`; the constructor validates and
    normalises (subjects in dataset order, alphas sorted, the metric's default alphas when None).

    Attributes
    ----------
    family : str
        ``"LAION_fMRI"`` (shared pool) or ``"LAION_fMRI_persubject"`` (each subject's own pool);
        an alias (``Zerbe2026_fmri``, ``Zerbe2026_fmri_persubject``) is stored as its canonical name.
    region : str
        A key of ``REGION_COMPONENTS`` (V1, V2, V3, V4, IT, IT_full).
    split : str or None
        ``tau``, ``ood``, ``ood_<category>``, ``random_k``, ``cluster_k5`` (5 folds) or a single
        ``cluster_k5_k``; None for ``rdm-pearson`` and ``cka``.
    metric : str
        ``ridgecv``, ``ridge``, ``rdm-pearson`` or ``cka``.
    convention : str
        Ceiling convention, ``brainscore`` or ``nsd`` (SPEC 3.2).
    nc_threshold : float or None
        Voxels kept have ``nc_coord > nc_threshold`` (strict); None keeps every voxel.
    nc_coord : str
        Noise-ceiling coordinate the threshold applies to.
    subjects : tuple of str
        Subjects scored; each is scored alone and the scores are averaged.
    alphas : tuple of float
        Ridge penalties: the candidates of ``ridgecv``, the single fixed alpha of ``ridge``,
        empty for ``rdm-pearson`` and ``cka``.
    version : int
        Bumped when the benchmark's definition changes; recorded with every score.
    citation : str
        The dataset and Brain-Score; :attr:`bibtex` holds the BibTeX entries.
    """

    family: str
    region: str
    split: str | None
    metric: str
    convention: str = DEFAULT_CONVENTION
    nc_threshold: float | None = DEFAULT_NC_THRESHOLD
    nc_coord: str = DEFAULT_NC_COORD
    subjects: tuple[str, ...] = SUBJECTS
    alphas: tuple[float, ...] | None = None
    version: int = FIRST_VERSION
    citation: str = CITATION

    def __post_init__(self) -> None:
        object.__setattr__(self, "family", canonical_family(self.family))
        where = format_identifier(self.family, self.region, self.split, self.metric)
        if self.family not in FAMILY_POOLS:
            raise unknown("benchmark family", self.family, FAMILY_POOLS, where=where)
        if self.region not in REGION_COMPONENTS:
            raise unknown("region", self.region, REGIONS, where=where)
        if self.metric not in METRICS:
            raise unknown("metric", self.metric, METRICS, where=where)
        if self.metric in SHARED_IMAGE_METRICS:
            if self.split is not None:
                raise UnknownBenchmarkError(
                    f"{self.metric} takes no split (it uses every shared non-OOD image): got {self.split!r} in {where!r}; "
                    f"use {format_identifier('LAION_fMRI', self.region, None, self.metric)!r}"
                )
            if FAMILY_POOLS[self.family] != SHARED_POOL:
                raise UnknownBenchmarkError(
                    f"{self.metric} is defined on the shared pool only, not for {self.family!r}; "
                    f"use {format_identifier('LAION_fMRI', self.region, None, self.metric)!r}"
                )
        elif self.split is None:
            raise UnknownBenchmarkError(f"{self.metric} needs a split in {where!r}: valid splits: {', '.join(SPLITS)}")
        elif self.split not in SPLIT_FOLDS:
            raise unknown("split", self.split, split_choices(self.split), where=where)
        if self.convention not in CONVENTIONS:
            raise unknown("ceiling convention", self.convention, CONVENTIONS, where=where)
        if self.nc_coord not in NC_COORDS:
            raise unknown("noise-ceiling coordinate", self.nc_coord, NC_COORDS, where=where)
        object.__setattr__(self, "nc_threshold", self._checked_threshold(self.nc_threshold, where))
        object.__setattr__(self, "subjects", self._checked_subjects(self.subjects, where))
        object.__setattr__(self, "alphas", self._checked_alphas(self.alphas, where))
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < FIRST_VERSION:
            raise ValueError(f"benchmark version must be an int >= {FIRST_VERSION}, got {self.version!r}")

    @staticmethod
    def _checked_threshold(threshold: Any, where: str) -> float | None:
        if threshold is None:
            return None
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise ValueError(f"nc_threshold must be a finite number or None, got {threshold!r} for {where!r}")
        return float(threshold)

    @staticmethod
    def _checked_subjects(subjects: str | Iterable[str], where: str) -> tuple[str, ...]:
        subjects = _subjects_tuple(subjects)
        for subject in subjects:
            if subject not in SUBJECTS:
                raise unknown("subject", subject, SUBJECTS, where=where)
        if not subjects:
            raise ValueError(f"a benchmark needs at least one subject ({where!r})")
        # dataset order, no duplicates: the same set of subjects is the same benchmark
        return tuple(s for s in SUBJECTS if s in subjects)

    def _checked_alphas(self, alphas: Iterable[float] | None, where: str) -> tuple[float, ...]:
        if alphas is None:
            return DEFAULT_ALPHAS[self.metric]
        values = tuple(sorted({float(a) for a in alphas}))
        if self.metric in SHARED_IMAGE_METRICS:
            if values:
                raise ValueError(f"{self.metric} fits nothing and takes no alphas ({where!r})")
            return values
        if not values or not all(math.isfinite(a) and a > 0 for a in values):
            raise ValueError(f"alphas must be finite and > 0, at least one, got {alphas!r} for {where!r}")
        if self.metric == RIDGE and len(values) != 1:
            raise ValueError(f"{RIDGE} uses one fixed alpha, got {len(values)} for {where!r} (use ridgecv to choose)")
        return values

    # ---- derived from the identifier ---------------------------------------------------------

    @property
    def identifier(self) -> str:
        """The canonical identifier, ``{family}.{region}-{split}-{metric}``; settings excluded."""
        return format_identifier(self.family, self.region, self.split, self.metric)

    @property
    def kind(self) -> str:
        """``"regression"``, ``"rdm"`` or ``"cka"``."""
        return {RDM_PEARSON: "rdm", CKA: "cka"}.get(self.metric, "regression")

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other spellings of :attr:`identifier` that load this same spec (``Zerbe2026_fmri.*``)."""
        return identifier_aliases(self.identifier)

    @property
    def components(self) -> tuple[str, ...]:
        """The stored regions whose voxels make up :attr:`region`."""
        return REGION_COMPONENTS[self.region]

    @property
    def folds(self) -> tuple[str, ...]:
        """Stored split names whose train sets this benchmark fits on, one per fold; () for rdm."""
        return () if self.split is None else SPLIT_FOLDS[self.split][0]

    @property
    def n_folds(self) -> int:
        """Folds averaged by the aggregate; rdm counts as one."""
        return max(1, len(self.folds))

    @property
    def test_ood_category(self) -> str | None:
        """The OOD category the test set is restricted to (``ood_<category>`` splits), else None."""
        return None if self.split is None else SPLIT_FOLDS[self.split][1]

    @property
    def bibtex(self) -> str:
        """BibTeX entries for the dataset and Brain-Score."""
        return BIBTEX

    def pool_for(self, subject: str) -> str:
        """The split pool ``subject`` is scored on: ``"shared"``, or the subject's own pool."""
        if subject not in self.subjects:
            raise unknown("subject", subject, self.subjects, where=self.key)
        return SHARED_POOL if FAMILY_POOLS[self.family] == SHARED_POOL else subject

    # ---- settings and names ------------------------------------------------------------------

    @property
    def overrides(self) -> tuple[tuple[str, Any], ...]:
        """(name, value) of every setting that differs from the default, in :data:`OVERRIDABLE` order."""
        defaults = {
            "convention": DEFAULT_CONVENTION,
            "nc_threshold": DEFAULT_NC_THRESHOLD,
            "nc_coord": DEFAULT_NC_COORD,
            "subjects": SUBJECTS,
            "alphas": DEFAULT_ALPHAS[self.metric],
        }
        return tuple((name, getattr(self, name)) for name in OVERRIDABLE if getattr(self, name) != defaults[name])

    @property
    def key(self) -> str:
        """Name of this exact benchmark for score records: the identifier, plus ``@setting=value,...``
        for non-default settings (e.g. ``LAION_fMRI.V1-tau-ridgecv@convention=nsd,subjects=sub-01+sub-03``).

        Safe as a file name or S3 key; :func:`laion_lake.benchmarks.load_benchmark` reads it back.
        """
        if not self.overrides:
            return self.identifier
        settings = KEY_SEPARATOR.join(f"{name}={_format_setting(value)}" for name, value in self.overrides)
        return f"{self.identifier}{KEY_SETTINGS}{settings}"

    def __str__(self) -> str:
        return self.key

    # ---- records -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field, plus the derived identifier, key, folds and test category."""
        record: dict[str, Any] = {"identifier": self.identifier, "key": self.key}
        for field in fields(self):
            value = getattr(self, field.name)
            record[field.name] = list(value) if isinstance(value, tuple) else value
        record["folds"] = list(self.folds)
        record["test_ood_category"] = self.test_ood_category
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> BenchmarkSpec:
        """Inverse of :meth:`to_dict`; the derived entries, when present, must agree with the fields."""
        names = {field.name for field in fields(cls)}
        derived = {"identifier", "key", "folds", "test_ood_category"}
        extra = set(record) - names - derived
        if extra:
            raise ValueError(f"unexpected benchmark spec entries: {', '.join(sorted(extra))}")
        values = {name: record[name] for name in names if name in record}
        for name in ("subjects", "alphas"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        spec = cls(**values)
        restored = spec.to_dict()
        for name in derived & set(record):
            if record[name] != restored[name]:
                raise ValueError(
                    f"benchmark spec record disagrees with its fields on {name!r}: {record[name]!r} != {restored[name]!r}"
                )
        return spec


def _format_setting(value: Any) -> str:
    if value is None:
        return KEY_NONE
    if isinstance(value, tuple):
        return KEY_LIST.join(_format_setting(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def parse_key_settings(settings: str, where: str) -> dict[str, Any]:
    """The overrides encoded after ``@`` in a :attr:`BenchmarkSpec.key`."""
    overrides: dict[str, Any] = {}
    for part in settings.split(KEY_SEPARATOR):
        name, eq, text = part.partition("=")
        if not eq or name not in OVERRIDABLE:
            raise unknown("benchmark setting", name, OVERRIDABLE, where=where)
        if name in ("subjects", "alphas"):
            items = text.split(KEY_LIST) if text else []
            overrides[name] = tuple(float(t) for t in items) if name == "alphas" else tuple(items)
        elif name == "nc_threshold":
            overrides[name] = None if text == KEY_NONE else float(text)
        else:
            overrides[name] = text
    return overrides
