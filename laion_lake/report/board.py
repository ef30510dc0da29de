"""The leaderboard tables: one heat-mapped board per benchmark family (one colour scale per column) and the overall means."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from laion_lake.report.collect import ReportScore, benchmark_order, feature_set_order
from laion_lake.report.text import FAMILY_TEXT, format_error, format_value

# the heat-map colour of a cell runs from white (0) to this blue (the table's best score)
_HEAT_RGB = (37, 99, 168)

def _column_tops(rows: Sequence[ReportScore], benchmarks: Sequence[str]) -> dict[str, float]:
    """The top of each column's colour scale: its best finite score (1 when none is positive)."""
    tops = {}
    for key in benchmarks:
        values = [r.value for r in rows if r.benchmark_key == key and math.isfinite(r.value)]
        tops[key] = max(values) if values and max(values) > 0 else 1.0
    return tops


def _heat(value: float, top: float) -> str:
    if not math.isfinite(value) or top <= 0:
        return ""
    t = min(max(value / top, 0.0), 1.0)
    r, g, b = (round(255 + (c - 255) * t) for c in _HEAT_RGB)
    text = "#ffffff" if t > 0.55 else "#111111"
    return f' style="background:rgb({r},{g},{b});color:{text}"'


def _column_label(row: ReportScore) -> str:
    """Region, then split, then metric, then settings: narrow columns, many benchmarks side by side."""
    settings = row.benchmark_key[len(row.benchmark):].lstrip("@")
    lines = [f"<b>{escape(row.region)}</b>", escape(row.split) if row.split else "&nbsp;", f"<span class=m>{escape(row.metric)}</span>"]
    lines += [f"<span class=s>@{escape(part)}</span>" for part in settings.split(",") if part]
    return "<br>".join(lines)


def _mean_cell(values: list[float], n_expected: int) -> str:
    mean = format_value(sum(values) / len(values)) if values else "n/a"
    note = "" if len(values) == n_expected else f'<span class="e">({len(values)} of {n_expected})</span>'
    return f'<td class="v mean">{mean}{note}</td>'


def _family_board(rows: Sequence[ReportScore], family: str) -> str:
    """One family's table: feature sets (rows, ranked by their mean) x benchmarks, heat-coloured per column."""
    rows = [r for r in rows if r.family == family]
    benchmarks = benchmark_order(rows)
    tops = _column_tops(rows, benchmarks)
    feature_sets = feature_set_order(rows)
    cell = {(r.feature_set, r.benchmark_key): r for r in rows}
    first: dict[str, ReportScore] = {}
    for r in rows:
        first.setdefault(r.benchmark_key, r)
    best = {}
    for key in benchmarks:
        values = [(cell[(fs, key)].value, fs) for fs in feature_sets if (fs, key) in cell and math.isfinite(cell[(fs, key)].value)]
        if len(values) > 1:
            best[key] = max(values)[1]
    head = '<tr><th class="fs">feature set (model / layer)</th>' + "".join(
        f'<th class="b" title="{escape(first[k].benchmark_key)} (version {first[k].version}, {escape(first[k].convention)} convention)">'
        f"{_column_label(first[k])}</th>"
        for k in benchmarks
    ) + '<th class="b" title="unweighted mean of the ceiled scores in the row"><b>mean</b><br>&nbsp;<br><span class=m>of the row</span></th></tr>'
    body = []
    for fs in feature_sets:
        cells = [f'<td class="fs">{escape(fs)}</td>']
        values = []
        for key in benchmarks:
            row = cell.get((fs, key))
            if row is None:
                cells.append('<td class="v" title="not scored">&ndash;</td>')
                continue
            if math.isfinite(row.value):
                values.append(row.value)
            klass = "v best" if best.get(key) == fs else "v"
            tip = f"{fs} on {row.benchmark_key}: raw {format_value(row.raw)}, ceiling {format_value(row.ceiling)}, {row.n_subjects} subjects"
            cells.append(f'<td class="{klass}"{_heat(row.value, tops[key])} title="{escape(tip)}">{format_value(row.value)}'
                         f'<span class="e">{format_error(row.error)}</span></td>')
        cells.append(_mean_cell(values, len(benchmarks)))
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<h3>{escape(family)}</h3><p class="small">{escape(FAMILY_TEXT.get(family, ""))}.</p>'
            f'<div class="scroll"><table class="board"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>')


def _overall(rows: Sequence[ReportScore], families: Sequence[str]) -> str:
    """Feature sets ranked by the mean over every benchmark, with each family's mean beside it."""
    benchmarks = benchmark_order(rows)
    per_family = {f: sum(r.family == f for r in {r.benchmark_key: r for r in rows}.values()) for f in families}
    head = ('<tr><th class="fs">feature set</th><th class="b"><b>mean</b><br><span class=m>all '
            f"{len(benchmarks)} benchmarks</span></th>"
            + "".join(f'<th class="b"><b>mean</b><br><span class=m>{escape(f)} ({per_family[f]})</span></th>' for f in families) + "</tr>")
    body = []
    for fs in feature_set_order(rows):
        mine = [r for r in rows if r.feature_set == fs and math.isfinite(r.value)]
        cells = [f'<td class="fs">{escape(fs)}</td>', _mean_cell([r.value for r in mine], len(benchmarks))]
        cells += [_mean_cell([r.value for r in mine if r.family == f], per_family[f]) for f in families]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<h3>Overall</h3><div class="scroll"><table class="board"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'
            '<p class="small">Unweighted means of ceiled scores across benchmarks of different scales: a summary for ranking, '
            "not a quantity of its own.</p>")


def _leaderboard(rows: Sequence[ReportScore]) -> str:
    families = list(dict.fromkeys(first.family for first in (next(r for r in rows if r.benchmark_key == k) for k in benchmark_order(rows))))
    legend = ('<p class="legend">Cell colour: <b>one scale per column</b>, from 0<span class="swatch"></span>the column\'s best score '
              "(benchmarks have different scales: an RDM or CKA column near 0.7 would otherwise drown a ridge column near 0.1); "
              "outlined: the best feature set of the column; rows ranked by their mean. Hover a cell for its raw score and ceiling, "
              "a column header for the benchmark's full key and version.</p>")
    parts = [legend] + [_family_board(rows, f) for f in families]
    if len(families) > 1:
        parts.append(_overall(rows, families))
    return "".join(parts)


__all__: list[str] = []  # page-internal: the page imports its pieces by name
