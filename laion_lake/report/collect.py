"""Scores in, report rows out: one flat, typed row per (feature set, benchmark), plus its per-subject detail.

Accepts what :func:`laion_lake.scoring.score_many` returns (a dict of Score DataArrays), a list of
Score DataArrays (e.g. :func:`laion_lake.scoring.records.load_scores`), or score records (dicts as
:func:`laion_lake.scoring.records.score_to_record` writes them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

FAMILY_ORDER = ("LAION_fMRI", "LAION_fMRI_persubject")
CEILING_DETAIL = ("ceiling_error", "ceiling_error_over", "ceiling_pairs", "ceiling_subject_means")


@dataclass(frozen=True)
class SubjectScore:
    """One subject's (one fold's) part of a score."""

    subject: str
    fold: int
    raw: float
    ceiling: float
    ceiled: float
    alpha: float | None
    n_train: int
    n_test: int
    n_voxels: int


@dataclass(frozen=True)
class ReportScore:
    """One (feature set, benchmark) score as the report shows it."""

    model: str
    layer: str
    benchmark: str  # canonical identifier
    benchmark_key: str  # identifier plus non-default settings; the column the report keys on
    family: str
    region: str
    split: str | None
    metric: str
    convention: str
    version: int
    value: float  # ceiled score (mean over subjects, then folds)
    error: float
    error_over: str
    error_reason: str
    raw: float
    ceiling: float
    n_subjects: int
    n_folds: int
    created: str | None
    citation: str
    settings: dict[str, Any] = field(default_factory=dict)
    subjects: tuple[SubjectScore, ...] = ()
    # CKA: the inter-subject ceiling's SEM, pair values and per-subject means (SPEC 3.4)
    ceiling_detail: dict[str, Any] = field(default_factory=dict)
    # per-voxel r (subject, neuroid): in-process scores carry it; for records the report reads the stored arrays
    voxel_r: Any = field(default=None, compare=False, repr=False)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other spellings of the benchmark key (``Zerbe2026_fmri.*``)."""
        from laion_lake.benchmarks import identifier_aliases

        return identifier_aliases(self.benchmark_key)

    @property
    def feature_set(self) -> str:
        return f"{self.model}/{self.layer}"

    @property
    def short_benchmark(self) -> str:
        """The identifier without its family: ``V1-tau-ridgecv``, plus settings when not default."""
        short = self.benchmark.split(".", 1)[-1]
        settings = self.benchmark_key[len(self.benchmark):]
        return short + settings

    def per_subject(self) -> dict[str, float]:
        """Each subject's ceiled score, averaged over folds when the benchmark has several."""
        by_subject: dict[str, list[float]] = {}
        for s in self.subjects:
            by_subject.setdefault(s.subject, []).append(s.ceiled)
        return {subject: sum(v) / len(v) for subject, v in by_subject.items()}

    def subject_ceilings(self) -> dict[str, float]:
        by_subject: dict[str, list[float]] = {}
        for s in self.subjects:
            by_subject.setdefault(s.subject, []).append(s.ceiling)
        return {subject: sum(v) / len(v) for subject, v in by_subject.items()}


def _float(value: Any) -> float:
    try:
        return float("nan") if value is None else float(value)
    except (TypeError, ValueError):
        return float("nan")


def _parse(identifier: str) -> tuple[str, str, str | None, str]:
    from laion_lake.benchmarks import parse_identifier

    try:
        return parse_identifier(identifier)
    except ValueError:
        family, _, rest = identifier.partition(".")
        parts = rest.split("-")
        return family, parts[0], "-".join(parts[1:-1]) or None, parts[-1]


def _settings(key: str) -> dict[str, Any]:
    """Voxel filter and subjects of a benchmark, from its spec (empty when it cannot be loaded)."""
    from laion_lake.benchmarks import load_benchmark

    try:
        spec = load_benchmark(key)
    except Exception:  # a record of a benchmark this version no longer defines: show what it says
        return {}
    return {"nc_threshold": spec.nc_threshold, "nc_coord": spec.nc_coord, "subjects": list(spec.subjects),
            "alphas": list(spec.alphas), "folds": list(spec.folds)}


def report_score(score: xr.DataArray | Mapping[str, Any]) -> ReportScore:
    """One Score DataArray (or score record) as a :class:`ReportScore`."""
    if isinstance(score, Mapping):
        from laion_lake.scoring.records import record_to_score

        score = record_to_score(score)
    attrs = score.attrs
    identifier = str(attrs["benchmark"])
    key = str(attrs.get("benchmark_key", identifier))
    family, region, split, metric = _parse(identifier)
    subjects = tuple(
        SubjectScore(
            subject=str(d.get("subject")), fold=int(d.get("fold", 0) or 0), raw=_float(d.get("raw")),
            ceiling=_float(d.get("ceiling")), ceiled=_float(d.get("ceiled")),
            alpha=None if d.get("alpha") is None else float(d["alpha"]),
            n_train=int(d.get("n_train", 0) or 0), n_test=int(d.get("n_test", 0) or 0), n_voxels=int(d.get("n_voxels", 0) or 0),
        )
        for d in attrs.get("detail", []) or []
    )
    return ReportScore(
        model=str(attrs["model"]), layer=str(attrs["layer"]), benchmark=identifier, benchmark_key=key,
        family=family, region=region, split=split, metric=metric, convention=str(attrs.get("convention", "?")),
        version=int(attrs.get("benchmark_version", 0) or 0), value=_float(score.values),
        error=_float(attrs.get("error")), error_over=str(attrs.get("error_over", "")),
        error_reason=str(attrs.get("error_reason", "") or ""), raw=_float(attrs.get("raw")), ceiling=_float(attrs.get("ceiling")),
        n_subjects=int(attrs.get("n_subjects", len({s.subject for s in subjects})) or 0),
        n_folds=int(attrs.get("n_folds", 1) or 1), created=attrs.get("created"), citation=str(attrs.get("citation", "") or ""),
        settings=_settings(key), subjects=subjects,
        ceiling_detail={k: attrs[k] for k in CEILING_DETAIL if k in attrs}, voxel_r=attrs.get("voxel_r"),
    )


def collect_scores(scores: Any) -> list[ReportScore]:
    """Rows from a ``score_many`` dict, a list of Score DataArrays, or a list of score records.

    Raises
    ------
    ValueError
        No scores, or two scores for the same (feature set, benchmark key).
    """
    if isinstance(scores, xr.DataArray):
        items: list[Any] = [scores]
    elif isinstance(scores, Mapping):  # one record, or score_many's {(model, layer, key): Score}
        items = [scores] if "benchmark" in scores else list(scores.values())
    else:
        items = list(scores)
    rows = [report_score(s) for s in items]
    if not rows:
        raise ValueError("no scores to report")
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row.feature_set, row.benchmark_key)
        if key in seen:
            raise ValueError(f"two scores for {row.feature_set} on {row.benchmark_key}; pass one per (feature set, benchmark)")
        seen.add(key)
    return rows


def benchmark_order(rows: Iterable[ReportScore]) -> list[str]:
    """Benchmark keys: families in FAMILY_ORDER, headline benchmarks in SPEC order, then the rest by name."""
    from laion_lake.benchmarks import list_benchmarks

    headline = {name: i for i, name in enumerate(list_benchmarks())}
    firsts = {}
    for row in rows:
        firsts.setdefault(row.benchmark_key, row)
    family_rank = {f: i for i, f in enumerate(FAMILY_ORDER)}

    def sort_key(key: str) -> tuple[Any, ...]:
        row = firsts[key]
        return (family_rank.get(row.family, len(family_rank)), row.family, headline.get(key, len(headline)), key)

    return sorted(firsts, key=sort_key)


def feature_set_order(rows: Iterable[ReportScore]) -> list[str]:
    """Feature sets ranked by their mean ceiled score over the benchmarks they have (best first)."""
    totals: dict[str, list[float]] = {}
    for row in rows:
        totals.setdefault(row.feature_set, [])
        if math.isfinite(row.value):
            totals[row.feature_set].append(row.value)
    return sorted(totals, key=lambda fs: (-(sum(totals[fs]) / len(totals[fs])) if totals[fs] else math.inf, fs))


__all__ = ["ReportScore", "SubjectScore", "benchmark_order", "collect_scores", "feature_set_order", "report_score"]
