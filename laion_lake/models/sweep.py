"""Layer sweep: extract every chosen layer of one model in one pass, then score them all as one batch.

>>> result = sweep_layers("lake/", "torchvision:resnet50", ["layer*"], images="stimuli/", weights="none")
>>> result.rows[0]
{'model': 'torchvision:resnet50@random-s0', 'layer': 'layer1', 'benchmark': 'LAION_fMRI.V1-tau-ridgecv', 'value': ..., ...}

Scoring goes through :func:`laion_lake.scoring.score_many` (one kernel per feature set, subject and
train set, shared by every region and benchmark). The CLI (``laion-lake sweep``) can instead run
the same feature sets through the score flow on a Dask cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from laion_lake.models.extract import ExtractionRun, extract_model_features


@dataclass
class SweepResult:
    """The extraction run and one score row per (layer, benchmark)."""

    extraction: ExtractionRun
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.extraction.layers[0].model

    @property
    def feature_sets(self) -> list[tuple[str, str]]:
        return [(layer.model, layer.layer) for layer in self.extraction.layers]


def score_rows(scores: dict[tuple[str, str, str], Any], identities: dict[str, str]) -> list[dict[str, Any]]:
    """Leaderboard rows from :func:`score_many`'s Scores, each naming its feature set's provenance identity."""
    return [{"model": m, "layer": layer, "benchmark": b, "value": float(s), "error": s.attrs["error"],
             "feature_set": identities.get(layer, "")} for (m, layer, b), s in scores.items()]


def sweep_layers(lake: Any, model: str, layers: Iterable[str], images: str, benchmarks: Iterable[str] | None = None,
                 score: bool = True, progress: bool = True, **extract_options: Any) -> SweepResult:
    """Extract ``layers`` (names or glob patterns) of ``model`` and score every one on ``benchmarks``.

    ``extract_options`` go to :func:`extract_model_features` (weights, metadata, name, batch_size,
    device, seed, threads, overwrite). Layers extracted before with the same provenance are not
    extracted again, only scored.
    """
    from laion_lake.lake import Lake, open_lake
    from laion_lake.scoring import score_many

    lake = lake if isinstance(lake, Lake) else open_lake(str(lake))
    benchmarks = list(benchmarks) if benchmarks else None
    run = extract_model_features(lake, model, layers, images, benchmarks=benchmarks, progress=progress, **extract_options)
    result = SweepResult(run)
    if score:
        from laion_lake.benchmarks import list_benchmarks

        scores = score_many(open_lake(lake.url, lake.storage_options), result.feature_sets, benchmarks or list_benchmarks(), progress=progress)
        result.rows = score_rows(scores, {layer.layer: layer.provenance.get("identity_sha256", "") for layer in run.layers})
    return result


__all__ = ["SweepResult", "score_rows", "sweep_layers"]
