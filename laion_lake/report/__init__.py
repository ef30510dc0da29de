"""A leaderboard report: ``index.html`` plus PNG figures, readable by someone who did not run the scoring.

>>> from laion_lake.report import write_report
>>> scores = score_many(lake, lake.feature_sets, list_benchmarks())
>>> write_report(scores, "report/", lake_url=lake.url)      # or write_report(load_scores(lake), ...)
PosixPath('report/index.html')

Needs matplotlib (the ``report`` extra). Modules: :mod:`~laion_lake.report.collect` (scores -> rows),
:mod:`~laion_lake.report.plots` (figures), :mod:`~laion_lake.report.page` (HTML),
:mod:`~laion_lake.report.cli` (``laion-lake report``).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from laion_lake.report.collect import ReportScore, collect_scores
from laion_lake.report.page import format_error, format_value

DEFAULT_TITLE = "LAION-fMRI leaderboard"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _file_name(family: str) -> str:
    return "scores_" + _slug(family) + ".png"


def write_scores_csv(rows: list[ReportScore], path: Path) -> Path:
    import csv

    fields = ["model", "layer", "benchmark", "benchmark_key", "benchmark_version", "convention", "value", "error", "error_over",
              "raw", "ceiling", "n_subjects", "n_folds"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for r in rows:
            writer.writerow([r.model, r.layer, r.benchmark, r.benchmark_key, r.version, r.convention, r.value, r.error, r.error_over,
                             r.raw, r.ceiling, r.n_subjects, r.n_folds])
    return path


def write_report(
    scores: Any,
    out_dir: str | Path,
    title: str = DEFAULT_TITLE,
    lake_url: str | None = None,
    extra_meta: Mapping[str, str] | None = None,
    lake: Any = None,
    committed: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Write ``index.html``, its PNG figures and ``scores.csv`` to ``out_dir``; return the page's path.

    Parameters
    ----------
    scores : dict, list of xarray.DataArray, or list of dict
        What :func:`laion_lake.scoring.score_many` returns, Score DataArrays (e.g. from
        :func:`laion_lake.scoring.records.load_scores`), or score records.
    out_dir : str or Path
        Created if needed; files of the same names are replaced.
    title : str
    lake_url : str, optional
        Shown on the page so a reader knows which data were scored.
    extra_meta : dict of str -> str, optional
        More lines for the page's header table (e.g. a git commit, the scores' source).
    lake : Lake, optional
        Per-voxel r of recorded scores is read from the arrays stored with the records (recomputed,
        said in one line, only where no current record holds it), for the r-vs-ceiling scatter and
        the best feature set's brain map per region (needs the ``maps`` extra); the subjects' grids
        are read from it. Its stored layer
        commitments (``laion-lake commit-layers``) are marked on the score-vs-layer profiles.
    committed : dict of model -> {region: layer}, optional
        Committed layers to mark instead of the lake's.

    Returns
    -------
    pathlib.Path
        ``out_dir / "index.html"``.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ImportError("the report draws its figures with matplotlib: pip install 'laion-lake[report]'") from error
    from laion_lake.report.collect import feature_set_order
    from laion_lake.report.page import render_page
    from laion_lake.report.plots import ceilings_chart, family_bar_chart, model_colours, raw_vs_ceiled_chart
    from laion_lake.report.profiles import (
        attach_stored_voxels, best_layer_rows, best_model_maps, committed_layers, layer_profile_chart, models_with_layers, voxel_vs_ceiling_chart,
    )

    rows = collect_scores(scores)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    colours = model_colours(feature_set_order(rows))
    families = list(dict.fromkeys(r.family for r in sorted(rows, key=lambda r: (r.family != "LAION_fMRI", r.family))))
    figures: dict[str, Any] = {"families": {}}
    # one bar per model: a model scored with several layers shows its best one (its profile shows them all)
    bar_rows = best_layer_rows(rows)
    for family in families:
        figures["families"][family] = family_bar_chart(bar_rows, family, out / _file_name(family), colours).name
    figures["ceilings"] = ceilings_chart(rows, out / "ceilings.png").name
    figures["raw_vs_ceiled"] = raw_vs_ceiled_chart(rows, out / "raw_vs_ceiled.png", colours).name
    profiled = models_with_layers(rows)
    if committed is None:
        committed = {model: committed_layers(lake, model) for model in profiled} if lake is not None else {}
    figures["committed_layers"] = {model: dict(committed.get(model, {})) for model in profiled if committed.get(model)}
    figures["layer_profiles"] = {model: layer_profile_chart(rows, model, out / f"layers_{_slug(model)}.png", committed.get(model)).name
                                 for model in profiled}
    if lake is not None:  # per-voxel r of recorded scores: the arrays stored with the records
        rows = attach_stored_voxels(rows, lake)
    voxels = voxel_vs_ceiling_chart(rows, out / "voxel_r_vs_ceiling.png", colours)
    if voxels is not None:
        figures["voxel_r_vs_ceiling"] = voxels.name
    if lake is not None:
        figures["brain_maps"] = best_model_maps(rows, lake, out)
    write_scores_csv(rows, out / "scores.csv")
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = out / "index.html"
    page.write_text(render_page(rows, figures, title, lake_url, generated, extra_meta), encoding="utf-8")
    return page


__all__ = ["DEFAULT_TITLE", "ReportScore", "collect_scores", "format_error", "format_value", "write_report"]
