"""Bring a feature file into the lake: read it, check its ids, record where it came from.

>>> from laion_lake.features import add_features
>>> result = add_features(lake, "resnet50", "layer4", "resnet50_layer4.npy", ids_path="ids.txt")
>>> result.coverage["LAION_fMRI.IT-tau-ridgecv"].n_missing
0
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from laion_lake.errors import LakeError, describe_ids
from laion_lake.features.readers import detect_format, is_local_path, read_feature_file

# bytes read per step when hashing a source file
_HASH_BLOCK = 1 << 22


class UnknownStimuliError(LakeError, ValueError):
    """A feature file names stimulus ids the lake's stimulus table does not hold."""

    def __init__(self, message: str, unknown: Iterable[str]) -> None:
        super().__init__(message)
        self.unknown = list(unknown)


class IncompleteCoverageError(LakeError, ValueError):
    """A feature set lacks ids that a benchmark it was required to cover needs."""


@dataclass(frozen=True)
class Coverage:
    """How many of the stimuli a benchmark reads a feature set holds."""

    benchmark: str
    n_needed: int
    missing: tuple[str, ...]

    @property
    def n_missing(self) -> int:
        return len(self.missing)

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        """One line naming a few of the missing ids."""
        if self.complete:
            return f"{self.benchmark}: all {self.n_needed} needed ids present"
        return f"{self.benchmark}: {self.n_missing} of {self.n_needed} needed ids missing ({describe_ids(self.missing, shown=3)})"

    def summary(self) -> str:
        """``benchmark n_missing/n_needed missing``, for lists of many benchmarks."""
        return f"{self.benchmark} {self.n_missing}/{self.n_needed} missing"


def summarize_shortfall(coverage: Mapping[str, Coverage], shown: int = 4) -> str:
    """``k of n benchmarks lack ids: a 3/120 missing, b ... and 2 more`` (empty when all are covered)."""
    lacking = [c for c in coverage.values() if not c.complete]
    if not lacking:
        return ""
    text = ", ".join(c.summary() for c in lacking[:shown])
    more = f" ... and {len(lacking) - shown} more" if len(lacking) > shown else ""
    return f"{len(lacking)} of {len(coverage)} benchmarks lack ids: {text}{more}"


@dataclass(frozen=True)
class AddedFeatures:
    """What :func:`add_features` wrote: the manifest entry (with its provenance) and the benchmark coverage."""

    model: str
    layer: str
    entry: dict[str, Any]
    coverage: dict[str, Coverage] = field(default_factory=dict)

    @property
    def provenance(self) -> dict[str, Any]:
        return self.entry.get("provenance", {})

    def uncovered(self) -> list[Coverage]:
        return [c for c in self.coverage.values() if not c.complete]


def source_sha256(path: str | Path, storage_options: Mapping[str, Any] | None = None) -> str:
    """sha256 of a file's bytes; for a folder (a ``.zarr`` store), of its sorted file listing.

    A folder hashes the lines ``<relative path> <sha256 of the file>\\n`` of every file under it,
    sorted by path, so the same store content gives the same checksum wherever it lies.
    """
    import fsspec

    fs, root = fsspec.core.url_to_fs(str(path), **dict(storage_options or {}))

    def file_digest(name: str) -> str:
        digest = hashlib.sha256()
        with fs.open(name, "rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
        return digest.hexdigest()

    if not fs.isdir(root):
        return file_digest(root)
    listing = hashlib.sha256()
    base = root.rstrip("/")
    for name in sorted(fs.find(root)):
        relative = PurePosixPath(name).relative_to(PurePosixPath(base)).as_posix() if name.startswith(base) else name
        listing.update(f"{relative} {file_digest(name)}\n".encode())
    return listing.hexdigest()


def _display_source(path: str | Path) -> str:
    return os.path.abspath(str(path).removeprefix("file://")) if is_local_path(path) else str(path)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("laion-lake")
    except PackageNotFoundError:
        return "unknown"


def needed_stimuli(lake: Any, benchmark: Any) -> np.ndarray:
    """Every stimulus id a benchmark reads features of, over its subjects (and folds), sorted.

    Subjects whose pool the lake lacks are skipped: a lake with fewer subjects needs fewer ids.
    """
    from laion_lake.benchmarks import BenchmarkSpec, load_benchmark
    from laion_lake.scoring.units import rdm_stimuli

    spec = benchmark if isinstance(benchmark, BenchmarkSpec) else load_benchmark(benchmark)
    if spec.kind in ("rdm", "cka"):  # no split: every shared non-OOD image
        return rdm_stimuli(lake)
    pools = sorted({spec.pool_for(subject) for subject in spec.subjects} & set(lake.pools))
    ids = [np.concatenate(lake.split(pool, fold)) for pool in pools for fold in spec.folds]
    return np.unique(np.concatenate(ids)) if ids else np.array([], dtype=str)


def benchmark_coverage(lake: Any, stimulus_ids: Iterable[str], benchmarks: Iterable[Any] | None = None) -> dict[str, Coverage]:
    """Per benchmark (default: the 24 leaderboard ones), how many of its needed ids ``stimulus_ids`` lacks."""
    from laion_lake.benchmarks import BenchmarkSpec, list_benchmarks

    have = np.asarray(list(stimulus_ids)).astype(str)
    if "splits" not in lake.manifest:
        return {}
    coverage = {}
    for benchmark in list_benchmarks() if benchmarks is None else benchmarks:
        name = benchmark.key if isinstance(benchmark, BenchmarkSpec) else str(benchmark)
        needed = needed_stimuli(lake, benchmark)
        coverage[name] = Coverage(name, len(needed), tuple(np.setdiff1d(needed, have).tolist()))
    return coverage


def _extension_hint(unknown: np.ndarray, known: np.ndarray) -> str:
    """A hint when the unknown ids match the table once a file extension is added, removed or changed."""
    known_set = set(known.tolist())
    by_stem = {Path(k).stem: k for k in known_set}
    for u in map(str, unknown[:100]):
        match = by_stem.get(u) or by_stem.get(Path(u).stem) or (Path(u).stem if Path(u).stem in known_set else None)
        if match is not None:
            return f" (hint: {u!r} differs from the table's {match!r} only in its file extension)"
    return ""


def check_stimulus_ids(lake: Any, stimulus_ids: np.ndarray, where: str, benchmarks: Iterable[Any] | None = None) -> dict[str, Coverage]:
    """Raise :class:`UnknownStimuliError` for ids outside the stimulus table; return the benchmark coverage.

    The error names the unknown ids and says how many ids each benchmark would still miss.
    """
    known = np.asarray(lake.stimuli["stimulus_id"].values).astype(str)
    ids = np.asarray(stimulus_ids).astype(str)
    unknown = np.setdiff1d(ids, known)
    coverage = benchmark_coverage(lake, np.intersect1d(ids, known), benchmarks)
    if len(unknown):
        shortfall = summarize_shortfall(coverage)
        summary = f"; with the known ids, {shortfall}" if shortfall else "; the known ids cover every benchmark checked"
        raise UnknownStimuliError(
            f"{where}: {len(unknown)} of {len(ids)} stimulus id(s) are not in the lake's stimulus table "
            f"({len(known)} ids): {describe_ids(unknown)}{_extension_hint(unknown, known)}{summary}",
            unknown,
        )
    return coverage


def add_features(
    lake: Any,
    model: str,
    layer: str,
    path: str | Path,
    ids_path: str | Path | None = None,
    overwrite: bool = False,
    format: str | None = None,
    variable: str | None = None,
    id_name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    benchmarks: Iterable[Any] | None = None,
    require_benchmarks: Iterable[str] = (),
) -> AddedFeatures:
    """Read a feature file, check its stimulus ids, and write it to the lake with its provenance.

    Parameters
    ----------
    lake : Lake or str
        The lake (or its URL); it needs a stimulus table.
    model, layer : str
        Names of the feature set (``features/<model>/<layer>.zarr``).
    path, ids_path, format, variable, id_name :
        The source file; see :func:`laion_lake.features.read_feature_file`.
    overwrite : bool
        Replace a feature set of the same name.
    storage_options : dict, optional
        fsspec options for reading ``path`` and ``ids_path`` (the lake has its own).
    benchmarks : iterable of str, optional
        Benchmarks whose coverage is reported (default: the 24 leaderboard ones).
    require_benchmarks : iterable of str
        Benchmarks the file must cover fully; a missing id is then an error, and nothing is written.

    Returns
    -------
    AddedFeatures
        The manifest entry, whose ``provenance`` holds ``source``, ``sha256`` (of the source file),
        ``format``, ``added`` (UTC ISO date), ``ids_source``/``ids_sha256`` when an ids file was
        given, and the coverage per benchmark.

    Raises
    ------
    UnknownStimuliError
        Ids outside the stimulus table (named in the message, with each benchmark's shortfall).
    IncompleteCoverageError
        A benchmark of ``require_benchmarks`` needs ids the file lacks.
    FeatureFileError
        The file cannot be read as activations.
    """
    from laion_lake.lake import Lake, open_lake

    lake = lake if isinstance(lake, Lake) else open_lake(str(lake))
    fmt = format or detect_format(path)
    data = read_feature_file(path, ids_path, format=fmt, variable=variable, id_name=id_name, storage_options=storage_options)
    required = list(require_benchmarks)
    checked = list(dict.fromkeys([*(benchmarks if benchmarks is not None else _headline()), *required]))
    coverage = check_stimulus_ids(lake, data["stimulus_id"].values, where=_display_source(path), benchmarks=checked)
    short = [coverage[b].describe() for b in required if b in coverage and not coverage[b].complete]
    if short:
        raise IncompleteCoverageError(f"{_display_source(path)} does not cover the required benchmarks: " + "; ".join(short))
    provenance: dict[str, Any] = {
        "source": _display_source(path),
        "format": fmt,
        "sha256": source_sha256(path, storage_options),
        "added": _now(),
        "added_with": f"laion-lake {_package_version()}",
    }
    if ids_path is not None:
        provenance.update(ids_source=_display_source(ids_path), ids_sha256=source_sha256(ids_path, storage_options))
    lake.write_features(model, layer, data, overwrite=overwrite, provenance=provenance)
    return AddedFeatures(model, layer, lake.feature_entry(model, layer), coverage)


def _headline() -> list[str]:
    from laion_lake.benchmarks import list_benchmarks

    return list_benchmarks()


__all__ = [
    "AddedFeatures",
    "Coverage",
    "IncompleteCoverageError",
    "UnknownStimuliError",
    "add_features",
    "benchmark_coverage",
    "check_stimulus_ids",
    "summarize_shortfall",
    "needed_stimuli",
    "source_sha256",
]
