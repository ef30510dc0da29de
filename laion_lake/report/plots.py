"""The report's figures, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend).

Every function takes report rows and a path, writes one PNG and returns the path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from laion_lake.report.collect import ReportScore, benchmark_order, feature_set_order
from storage_schemas.vocabulary import REGIONS

DPI = 110
# one colour per feature set, in leaderboard order (tab10, then tab20 for more)
_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def model_colours(feature_sets: Sequence[str]) -> dict[str, str]:
    if len(feature_sets) <= len(_TAB10):
        palette = _TAB10
    else:
        from matplotlib import colormaps

        cmap = colormaps["tab20"]
        palette = [cmap(i % 20) for i in range(len(feature_sets))]
    return {fs: palette[i % len(palette)] for i, fs in enumerate(feature_sets)}


def _figure(width: float, height: float):  # -> matplotlib.figure.Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, facecolor="white")
    return path


REGION_ORDER = REGIONS
# figure width in inches (about the page's width at DPI) and the slot width of one region group
FIGURE_WIDTH = 12.0


def _region_rank(region: str) -> tuple[int, str]:
    return (REGION_ORDER.index(region) if region in REGION_ORDER else len(REGION_ORDER), region)


def _panel_name(row: ReportScore) -> str:
    """What a panel of a family's chart shows: split and metric, plus non-default settings."""
    settings = row.benchmark_key[len(row.benchmark):]
    return " \u00b7 ".join(p for p in (row.split, row.metric) if p) + (f"\n{settings}" if settings else "")


def _pack_rows(panels: Sequence[tuple[str, int]], capacity: float) -> list[list[tuple[str, int]]]:
    """Greedy rows of panels whose region counts fit ``capacity``."""
    rows: list[list[tuple[str, int]]] = [[]]
    for panel in panels:
        if rows[-1] and sum(n for _, n in rows[-1]) + panel[1] > capacity:
            rows.append([])
        rows[-1].append(panel)
    return rows


def _legend_columns(labels: Sequence[str], width: float) -> int:
    """Columns of a bottom legend that fit ``width`` inches (about 0.08 in per character at 9 pt)."""
    widest = max(0.8 + 0.08 * len(label) for label in labels)
    return max(1, min(len(labels), int(width // widest)))


def _style(ax) -> None:
    ax.grid(axis="y", color="#e5e5e5", zorder=0)
    ax.set_axisbelow(True)
    ax.axhline(0, color="#888888", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def family_bar_chart(rows: Sequence[ReportScore], family: str, path: Path, colours: dict[str, str]) -> Path:
    """Bars of one family's scores: a panel per split and metric, a group of bars per region, a bar per feature set.

    Bar = ceiled score, whisker = bootstrap error, dots = each subject's ceiled score.
    """
    rows = [r for r in rows if r.family == family]
    feature_sets = feature_set_order(rows)
    cell = {(r.feature_set, r.benchmark_key): r for r in rows}
    panels: dict[str, list[ReportScore]] = {}
    for key in benchmark_order(rows):
        first = next(r for r in rows if r.benchmark_key == key)
        panels.setdefault(_panel_name(first), []).append(first)
    for name in panels:
        panels[name].sort(key=lambda r: _region_rank(r.region))
    n_models = max(len(feature_sets), 1)
    slot = 0.22 * n_models + 0.45  # inches per region group
    capacity = max(1.0, (FIGURE_WIDTH - 0.8) / slot)
    layout = _pack_rows([(name, len(group)) for name, group in panels.items()], capacity)
    if len(layout) == 1:  # one row: as wide as its panels need (at least the title's width), no wider
        capacity = max(sum(n for _, n in layout[0]), 6.5 / slot)
    fig_width = min(FIGURE_WIDTH, 0.8 + capacity * slot)
    figure = _figure(fig_width, 0.9 + 3.3 * len(layout))
    subfigures = figure.subfigures(len(layout), 1, squeeze=False)[:, 0]
    values = [v for r in rows for v in (r.value - (r.error if math.isfinite(r.error) else 0), r.value + (r.error if math.isfinite(r.error) else 0),
                                        *r.per_subject().values()) if math.isfinite(v)]
    low, high = min([0.0, *values]), max([0.05, *values])
    pad = 0.06 * (high - low)
    rng = np.random.default_rng(0)  # fixed jitter: the same scores draw the same picture
    group, width = 0.8, 0.8 / n_models
    for subfigure, row_panels in zip(subfigures, layout):
        ratios = [n for _, n in row_panels]
        spare = capacity - sum(ratios)
        filler = spare > 0.4 * capacity
        axes = subfigure.subplots(1, len(ratios) + filler, squeeze=False, width_ratios=ratios + ([spare] if filler else []))[0]
        if filler:
            axes[-1].axis("off")
        for ax, (name, _) in zip(axes, row_panels):
            benchmarks = panels[name]
            for i, fs in enumerate(feature_sets):
                xs, heights, errors = [], [], []
                for j, first in enumerate(benchmarks):
                    row = cell.get((fs, first.benchmark_key))
                    if row is None:
                        continue
                    x = j - group / 2 + width * (i + 0.5)
                    xs.append(x)
                    heights.append(row.value)
                    errors.append(row.error if math.isfinite(row.error) else 0.0)
                    dots = list(row.per_subject().values())
                    if dots:
                        jitter = rng.uniform(-width * 0.25, width * 0.25, len(dots))
                        ax.scatter(x + jitter, dots, s=8, color="black", alpha=0.5, linewidths=0, zorder=3)
                ax.bar(xs, heights, width=width * 0.9, color=colours[fs], label=fs, zorder=2)
                ax.errorbar(xs, heights, yerr=errors, fmt="none", ecolor="#222222", elinewidth=1.0, capsize=2, zorder=4)
            ax.set_xticks(range(len(benchmarks)), [r.region for r in benchmarks])
            ax.set_xlim(-0.55, len(benchmarks) - 0.45)
            ax.set_ylim(low - pad, high + pad)
            ax.set_title(name, fontsize=10)
            _style(ax)
        axes[0].set_ylabel("ceiled score")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[fs]) for fs in feature_sets]
    handles.append(Line2D([], [], marker="o", linestyle="none", markersize=3.5, color="black", alpha=0.5))
    labels = [*feature_sets, "one subject"]
    figure.legend(handles, labels, loc="outside lower center", ncols=_legend_columns(labels, fig_width), fontsize=9, frameon=False)
    figure.suptitle(f"{family}: ceiled score (bar), bootstrap error (whisker), one dot per subject", fontsize=11)
    return _save(figure, path)


def _settings_besides_convention(row: ReportScore) -> str:
    """``@nc_threshold=20`` of a key, without the convention (which the label names already)."""
    parts = [p for p in row.benchmark_key[len(row.benchmark):].lstrip("@").split(",") if p and not p.startswith("convention=")]
    return f" @{','.join(parts)}" if parts else ""


def _ceiling_group(row: ReportScore) -> str:
    kind = {"rdm-pearson": "RDM", "cka": "CKA, inter-subject"}.get(row.metric, "regression")
    settings = _settings_besides_convention(row)
    design = f", {row.split} test" if row.convention == "nsd" else ""
    return f"{kind}, {row.convention}{design}{settings}"


def ceilings_chart(rows: Sequence[ReportScore], path: Path) -> Path:
    """Noise ceiling per region: a bar per ceiling definition (mean over subjects), a dot per subject.

    Ceilings depend on the voxels and the test design, not on the model or the family: benchmarks
    whose per-subject ceilings agree share a bar (the first feature set's detail is used).
    """
    first: dict[str, ReportScore] = {}
    for r in rows:
        first.setdefault(r.benchmark_key, r)
    # (group, region) -> per-subject ceilings; a group splits by family when its families disagree
    bars: dict[tuple[str, str], dict[str, float]] = {}
    for key in benchmark_order(rows):
        r = first[key]
        label = _ceiling_group(r)
        # a CKA ceiling is one number over subject pairs: its dots are each subject's mean over its pairs
        ceilings = r.ceiling_detail.get("ceiling_subject_means") or r.subject_ceilings() or {"all": r.ceiling}
        known = bars.get((label, r.region))
        if known is not None and all(abs(known.get(s, math.inf) - c) < 1e-9 for s, c in ceilings.items()):
            continue
        if known is not None:
            label = f"{label} ({r.family}, {r.split or 'all'})"
        bars.setdefault((label, r.region), ceilings)
    labels = list(dict.fromkeys(label for label, _ in bars))
    regions = sorted({region for _, region in bars}, key=_region_rank)
    palette = ["#8fb1d6", "#c3a8dc", "#f2b880", "#9fd3a6", "#e8a0a0", "#c9c9c9"]
    figure = _figure(min(FIGURE_WIDTH, max(6.0, 3.6 + len(regions) * (0.5 + 0.42 * len(labels)))), 4.2)
    ax = figure.add_subplot()
    rng = np.random.default_rng(0)
    width = min(0.8 / len(labels), 0.3)
    labelled: set[str] = set()
    for i, label in enumerate(labels):
        for j, region in enumerate(regions):
            ceilings = bars.get((label, region))
            if ceilings is None:
                continue
            x = j - width * len(labels) / 2 + width * (i + 0.5)
            values = list(ceilings.values())
            mean = float(np.mean(values))
            ax.bar(x, mean, width=width * 0.9, color=palette[i % len(palette)], label=None if label in labelled else label, zorder=2)
            labelled.add(label)
            ax.scatter(x + rng.uniform(-width * 0.2, width * 0.2, len(values)), values, s=10, color="black", alpha=0.6, linewidths=0, zorder=3)
            ax.text(x, max([mean, *values]) + 0.015, f"{mean:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(regions)), regions)
    ax.set_xlim(-0.6, len(regions) - 0.4)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("noise ceiling (r scale)")
    _style(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8.5, frameon=False, title="ceiling of", title_fontsize=9)
    ax.set_title("Noise ceiling per region\nbar = mean over subjects (value above it), dot = one subject", fontsize=10.5)
    return _save(figure, path)


def raw_vs_ceiled_chart(rows: Sequence[ReportScore], path: Path, colours: dict[str, str]) -> Path:
    """Raw score (x) against ceiled score (y), one point per (feature set, benchmark)."""
    figure = _figure(8.4, 5.4)
    ax = figure.add_subplot()
    markers = {"LAION_fMRI": "o", "LAION_fMRI_persubject": "s"}
    finite = [r for r in rows if math.isfinite(r.raw) and math.isfinite(r.value)]
    top = max([0.05] + [abs(r.raw) for r in finite] + [abs(r.value) for r in finite]) * 1.08
    low = min([0.0] + [r.raw for r in finite] + [r.value for r in finite]) * 1.08
    ax.plot([low, top], [low, top], color="#999999", linestyle="--", linewidth=1, label="ceiled = raw", zorder=1)
    for fs in feature_set_order(rows):
        for r in (r for r in finite if r.feature_set == fs):
            marker = {"rdm-pearson": "^", "cka": "v"}.get(r.metric) or markers.get(r.family, "D")
            ax.scatter(r.raw, r.value, color=colours[fs], marker=marker, s=34, edgecolors="white", linewidths=0.5, zorder=3)
    for fs in feature_set_order(rows):
        ax.scatter([], [], color=colours[fs], marker="o", s=34, label=fs)
    for label, marker in (("LAION_fMRI regression", "o"), ("LAION_fMRI_persubject regression", "s"), ("RDM (rdm-pearson)", "^"), ("CKA", "v")):
        ax.scatter([], [], color="#555555", marker=marker, s=34, label=label)
    ax.set_xlim(low, top)
    ax.set_ylim(low, top)
    ax.set_xlabel("raw score (median voxel r, RDM Spearman r, or CKA)")
    ax.set_ylabel("ceiled score")
    ax.set_title("Raw vs ceiled score, one point per (feature set, benchmark)", fontsize=10.5)
    ax.grid(color="#eeeeee")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _save(figure, path)


__all__ = ["ceilings_chart", "family_bar_chart", "model_colours", "raw_vs_ceiled_chart"]
