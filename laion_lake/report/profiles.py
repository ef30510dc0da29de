"""The report's figures about layers and voxels: score-vs-layer profiles, and per-voxel r against the noise ceiling.

Drawn with matplotlib's object API on the Agg canvas, like :mod:`laion_lake.report.plots`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from laion_lake.benchmarks.vocabulary import REGRESSION_METRICS
from laion_lake.report.collect import ReportScore, benchmark_order, feature_set_order
from laion_lake.report.plots import _figure, _region_rank, _save, _style

_LINE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def layer_order(layers: Sequence[str]) -> list[str]:
    """Layers in natural order (``layer2`` before ``layer10``), which is depth order for the usual names."""
    def key(name: str) -> list[object]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    return sorted(dict.fromkeys(layers), key=key)


def models_with_layers(rows: Sequence[ReportScore]) -> list[str]:
    """Models scored with at least two layers (the ones a profile is drawn for)."""
    layers: dict[str, set[str]] = {}
    for r in rows:
        layers.setdefault(r.model, set()).add(r.layer)
    return sorted(m for m, ls in layers.items() if len(ls) > 1)


def committed_layers(lake: Any, model: str) -> dict[str, str]:
    """Region -> committed layer of ``model`` stored in ``lake`` by ``laion-lake commit-layers`` ({} when none)."""
    from laion_lake.models.commit import NoCommitmentError, read_layer_commitment

    try:
        return dict(read_layer_commitment(lake, model).layers)
    except NoCommitmentError:
        return {}


def layer_profile_chart(rows: Sequence[ReportScore], model: str, path: Path, committed: Mapping[str, str] | None = None) -> Path:
    """Ceiled score against layer, one panel per region, one line per benchmark; the best layer of each line
    starred; ``committed`` (region -> layer, from ``commit-layers``) drawn as a dashed line per region."""
    committed = dict(committed or {})
    mine = [r for r in rows if r.model == model]
    layers = layer_order([r.layer for r in mine])
    regions = sorted({r.region for r in mine}, key=_region_rank)
    keys = benchmark_order(mine)
    figure = _figure(min(12.0, 1.2 + 3.0 * len(regions)), 3.9)
    axes = figure.subplots(1, len(regions), squeeze=False, sharey=False)[0]
    labels = {k: next(r for r in mine if r.benchmark_key == k) for k in keys}
    colour_of = {}
    for ax, region in zip(axes, regions):
        for key in (k for k in keys if labels[k].region == region):
            first = labels[key]
            name = " \u00b7 ".join(p for p in (first.family.replace("LAION_fMRI", "shared").replace("shared_persubject", "per-subject"),
                                              first.split, first.metric) if p)
            colour = colour_of.setdefault(name, _LINE_COLOURS[len(colour_of) % len(_LINE_COLOURS)])
            by_layer = {r.layer: r.value for r in mine if r.benchmark_key == key}
            xs = [i for i, layer in enumerate(layers) if layer in by_layer and math.isfinite(by_layer[layer])]
            ys = [by_layer[layers[i]] for i in xs]
            if not xs:
                continue
            ax.plot(xs, ys, marker="o", markersize=3.5, color=colour, linewidth=1.4, label=name)
            best = int(np.argmax(ys))
            ax.scatter([xs[best]], [ys[best]], marker="*", s=140, color=colour, edgecolors="black", linewidths=0.6, zorder=5)
        if committed.get(region) in layers:
            ax.axvline(layers.index(committed[region]), color="black", linestyle="--", linewidth=1.0, label="committed layer")
        ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=8)
        ax.set_title(region, fontsize=10)
        _style(ax)
    axes[0].set_ylabel("ceiled score")
    handles, names = [], []
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            if name not in names:
                handles.append(handle)
                names.append(name)
    figure.legend(handles, names, loc="outside lower center", ncols=min(4, max(1, len(names))), fontsize=8.5, frameon=False)
    dashed = "; dashed = committed layer" if committed else ""
    figure.suptitle(f"{model}: score per layer (star = best layer of each benchmark{dashed})", fontsize=11)
    return _save(figure, path)


def best_layer_rows(rows: Sequence[ReportScore]) -> list[ReportScore]:
    """The rows of each model's best layer only (highest mean ceiled score): a layer sweep is the profile's job,
    the bar charts compare models."""
    keep = set()
    for model in {r.model for r in rows}:
        keep.add(feature_set_order([r for r in rows if r.model == model])[0])
    return [r for r in rows if r.feature_set in keep]


def best_layers(rows: Sequence[ReportScore], model: str) -> dict[str, tuple[str, float]]:
    """benchmark key -> (best layer, its score) for one model."""
    out: dict[str, tuple[str, float]] = {}
    for r in rows:
        if r.model == model and math.isfinite(r.value) and (r.benchmark_key not in out or r.value > out[r.benchmark_key][1]):
            out[r.benchmark_key] = (r.layer, r.value)
    return out


def voxel_panels(rows: Sequence[ReportScore]) -> list[tuple[str, list[ReportScore]]]:
    """One panel per region: the first regression benchmark of the region (leaderboard order) that has per-voxel r."""
    panels = []
    for key in benchmark_order(rows):
        column = [r for r in rows if r.benchmark_key == key and r.voxel_r is not None]
        if column and column[0].region not in {c[0].region for _, c in panels}:
            panels.append((key, column))
    return sorted(panels, key=lambda p: _region_rank(p[1][0].region))


def attach_stored_voxels(rows: Sequence[ReportScore], lake: Any, say: Callable[[str], None] | None = None) -> list[ReportScore]:
    """Rows with per-voxel r for the scatter and maps: read from the arrays stored with the score records.

    Only the benchmarks the figures use get it (per region, the first regression benchmark in
    leaderboard order). A row already carrying per-voxel r (scored in this process) keeps it; a
    row whose units have no current record is recomputed in this process, said in one line to
    ``say`` (default: stderr).
    """
    from laion_lake.maps.write import voxel_r

    wanted, regions = set(), set()
    for key in benchmark_order(rows):
        first = next(r for r in rows if r.benchmark_key == key)
        if first.metric in REGRESSION_METRICS and first.region not in regions:
            wanted.add(key)
            regions.add(first.region)
    return [
        replace(row, voxel_r=voxel_r(lake, row.model, row.layer, row.benchmark_key, say=say))
        if row.voxel_r is None and row.benchmark_key in wanted else row
        for row in rows
    ]


def voxel_vs_ceiling_chart(rows: Sequence[ReportScore], path: Path, colours: dict[str, str]) -> Path | None:
    """Per-voxel r (y) against the voxel's noise ceiling as r, sqrt(NC_12rep / 100) (x): the best and the worst feature set."""
    panels = voxel_panels(rows)
    if not panels:
        return None
    figure = _figure(min(12.0, 1.0 + 2.9 * len(panels)), 3.8)
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, (key, column) in zip(axes, panels):
        ranked = [r for fs in feature_set_order(column) for r in column if r.feature_set == fs]
        shown = [ranked[-1], ranked[0]] if len(ranked) > 1 else ranked[:1]  # worst first, so the best is drawn on top
        for row in shown:
            voxels = row.voxel_r
            r = np.asarray(voxels.values, dtype=np.float64).ravel()
            nc = np.sqrt(np.clip(np.asarray(voxels["nc_12rep"].values, dtype=np.float64).ravel(), 0, 100) / 100)
            keep = np.isfinite(r) & np.isfinite(nc)
            colour = colours.get(row.feature_set, "#555555") if row is ranked[0] else "#b0b0b0"
            ax.scatter(nc[keep], r[keep], s=5, alpha=0.5, color=colour, linewidths=0, label=row.feature_set)
        ax.plot([0, 1], [0, 1], color="#444444", linestyle="--", linewidth=1, label="r = noise ceiling")
        ax.set_xlim(0, 1)
        ax.set_title(f"{column[0].region}  ({key.split('.', 1)[-1]})", fontsize=9.5)
        ax.set_xlabel("noise ceiling, \u221a(NC\u2081\u2082/100)")
        _style(ax)
        ax.legend(loc="upper left", fontsize=7.5, frameon=False, markerscale=2)
    axes[0].set_ylabel("voxel r (test images)")
    figure.suptitle("Per-voxel r against the voxel's noise ceiling: best feature set (colour) and worst (grey), all subjects", fontsize=10.5)
    return _save(figure, path)


def best_model_maps(rows: Sequence[ReportScore], lake: object, out: Path) -> list[tuple[str, str, str]]:
    """(region, feature set, PNG file) of the best feature set's per-voxel r map per region, first subject.

    Empty when nilearn or nibabel is missing (the ``maps`` extra) or no row carries per-voxel r.
    """
    try:
        import nibabel  # noqa: F401
        import nilearn  # noqa: F401
    except ImportError:
        return []
    from laion_lake.maps.write import draw_map, subject_images, subject_table

    figures = []
    for key, column in voxel_panels(rows):
        best = next(r for fs in feature_set_order(column) for r in column if r.feature_set == fs)
        subject = str(best.voxel_r["subject"].values[0])
        image, background, _ = subject_images(lake, subject, subject_table(best.voxel_r, subject))
        name = f"map_{re.sub(r'[^A-Za-z0-9_.-]+', '_', best.region)}.png"
        draw_map(image, background, out / name, f"{subject} r  {best.feature_set}  {key.split('.', 1)[-1]}")
        figures.append((best.region, best.feature_set, name))
    return figures


__all__ = ["attach_stored_voxels", "best_layer_rows", "best_model_maps", "best_layers", "committed_layers", "layer_order", "layer_profile_chart", "models_with_layers", "voxel_vs_ceiling_chart"]
