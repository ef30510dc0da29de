"""From cell results to a benchmark score: mean over subjects, then over folds, with a bootstrap error."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from laion_lake.benchmarks import BenchmarkSpec
from laion_lake.compute.bootstrap import bootstrap_mean_error
from laion_lake.scoring.units import CellResult

N_BOOTSTRAP = 200
BOOTSTRAP_SEED = 0


def aggregate_score(spec: BenchmarkSpec, model: str, layer: str, results: Sequence[CellResult], lake: Any = None) -> xr.DataArray:
    """The benchmark score of one feature set from its per-subject (per-fold) cell results.

    Multi-subject: each subject scored alone, ceiled score = mean of the subjects' ceiled scores.
    K-fold: mean over folds of the per-fold multi-subject score. Error: bootstrap (200 seeded draws,
    with replacement) over subjects, or over folds when there are several; NaN with a reason for one.

    Returns
    -------
    xarray.DataArray, 0-d
        The ceiled score, with attrs ``raw``, ``ceiling``, ``error``, ``error_over``,
        ``n_bootstrap``, ``error_reason``, ``alphas``, ``convention``, ``benchmark``,
        ``benchmark_key``, ``benchmark_version``, ``model``, ``layer``, ``detail`` (one dict per
        subject and fold: raw, ceiling, ceiled, alpha, ...) and ``citation``. A CKA score given the
        ``lake`` also carries its ceiling's pair values (see :mod:`laion_lake.scoring.cka_unit`);
        any score given the ``lake`` carries ``feature_set`` (:func:`feature_set_identity`).
    """
    if not results:
        raise ValueError(f"no results to aggregate for {model}/{layer} on {spec.key}")
    by_fold: dict[int, list[CellResult]] = defaultdict(list)
    for result in sorted(results, key=lambda r: (r.fold, r.subject)):
        by_fold[result.fold].append(result)
    fold_means = {
        fold: {name: float(np.mean([getattr(r, name) for r in rows])) for name in ("ceiled", "raw", "ceiling")}
        for fold, rows in by_fold.items()
    }
    value = float(np.mean([m["ceiled"] for m in fold_means.values()]))
    raw = float(np.mean([m["raw"] for m in fold_means.values()]))
    ceiling = float(np.mean([m["ceiling"] for m in fold_means.values()]))
    if len(by_fold) > 1:
        error_over, samples = "folds", [m["ceiled"] for m in fold_means.values()]
    else:
        error_over, samples = "subjects", [r.ceiled for r in by_fold[next(iter(by_fold))]]
    bootstrap = bootstrap_mean_error(np.asarray(samples), n_draws=N_BOOTSTRAP, seed=BOOTSTRAP_SEED)
    detail = [r.to_dict() for r in sorted(results, key=lambda r: (r.fold, r.subject))]
    score = xr.DataArray(
        value,
        name="score",
        attrs={
            "raw": raw,
            "ceiling": ceiling,
            "error": float(bootstrap.error),
            "error_over": error_over,
            "error_reason": bootstrap.reason or "",
            "n_bootstrap": N_BOOTSTRAP,
            "bootstrap_seed": BOOTSTRAP_SEED,
            "alphas": {f"{r.subject}/fold{r.fold}": r.alpha for r in results},
            "convention": spec.convention,
            "benchmark": spec.identifier,
            "benchmark_key": spec.key,
            "benchmark_version": spec.version,
            "model": model,
            "layer": layer,
            "n_subjects": len({r.subject for r in results}),
            "n_folds": len(by_fold),
            "fold_scores": [fold_means[f]["ceiled"] for f in sorted(fold_means)],
            "detail": detail,
            "citation": spec.citation,
        },
    )
    if spec.kind == "cka" and lake is not None:
        from laion_lake.scoring.cka_unit import cka_score_attrs

        score.attrs.update(cka_score_attrs(lake, spec))
    if lake is not None:
        score.attrs["feature_set"] = feature_set_identity(lake, model, layer)
    return score


def feature_set_identity(lake: Any, model: str, layer: str) -> dict[str, Any]:
    """What names the scored activations: their content checksum and their provenance (for an
    extracted feature set: model, weights and their sha256, library versions, preprocessing, layer
    and ``identity_sha256``; for an added file: its source and sha256)."""
    entry = lake.feature_entry(model, layer)
    return {"checksum": entry.get("checksum"), "provenance": dict(entry.get("provenance") or {})}


def score_table(scores: Sequence[xr.DataArray]) -> Any:
    """A pandas table (one row per score) of model, layer, benchmark, value, error, raw, ceiling."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "model": s.attrs["model"],
                "layer": s.attrs["layer"],
                "benchmark": s.attrs["benchmark_key"],
                "value": float(s.values),
                "error": s.attrs["error"],
                "raw": s.attrs["raw"],
                "ceiling": s.attrs["ceiling"],
                "convention": s.attrs["convention"],
            }
            for s in scores
        ]
    )
