"""The report's ``index.html``: one self-explaining page (inline CSS, PNGs beside it, no JavaScript)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from laion_lake.benchmarks import aliases_text
from laion_lake.report.collect import ReportScore, benchmark_order, feature_set_order

# the heat-map colour of a cell runs from white (0) to this blue (the table's best score)
_HEAT_RGB = (37, 99, 168)

FAMILY_TEXT = {
    "LAION_fMRI": "shared pool: images every subject saw; each subject is scored alone on the same split, then the "
                  "subjects' ceiled scores are averaged",
    "LAION_fMRI_persubject": "per-subject pool: each subject's shared non-OOD images plus the images only that subject "
                             "saw, split per subject; subjects scored alone, then averaged",
}
METRIC_TEXT = {
    "ridgecv": "ridge regression from the features to every voxel (one alpha per fit, chosen from 10<sup>-10</sup>..10<sup>10</sup> "
               "by leave-one-out); raw = median over voxels of the Pearson r between prediction and response on the test images",
    "ridge": "ridge regression with alpha = 1; raw = median over voxels of the test-set Pearson r",
    "rdm-pearson": "representational dissimilarity matrices (1 &minus; Pearson r between image patterns) of model and brain over "
                   "the shared non-OOD images; raw = Spearman r between their upper triangles",
    "cka": "unbiased linear CKA (centred kernel alignment) between the model's and the subject's image-by-image similarity "
           "(Gram) matrices over the shared non-OOD images; raw = mean over subjects; ceiling = mean CKA between two "
           "subjects over the 10 subject pairs (how well brains agree with each other); <b>ceiled = raw / ceiling</b>",
}
CONVENTION_TEXT = {
    "brainscore": "<b>brainscore</b> (parity with the published Brain-Score benchmark). Regression: "
                  "ceiling = median over voxels of &radic;(NC<sub>12rep</sub>/100), <b>ceiled = raw&sup2; / ceiling</b> "
                  "(an r&sup2; numerator over an r-scale ceiling, unclipped: a ceiled score is not a fraction of the ceiling). "
                  "RDM: ceiling = mean over voxels of &radic;(NC<sub>12rep</sub>/100), <b>ceiled = raw / ceiling</b>. "
                  "CKA: ceiling = the inter-subject CKA, <b>ceiled = raw / ceiling</b>.",
    "nsd": "<b>nsd</b> (noise-normalised variance explained): <b>ceiled = median over voxels of r<sub>v</sub>&sup2; / "
           "(NC<sub>v</sub>/100)</b>, with NC<sub>v</sub> each voxel's noise ceiling for the repeats actually averaged on "
           "the test images; the ceiling column shows the median &radic;(NC<sub>v</sub>/100).",
}


def format_value(value: float) -> str:
    """How the report prints a score (ceiled, raw or ceiling): three decimals, ``n/a`` for NaN."""
    if not math.isfinite(value):
        return "n/a"
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def format_error(error: float) -> str:
    return f"&plusmn;{error:.3f}" if math.isfinite(error) else "&plusmn;n/a"


def split_text(split: str | None) -> str:
    if split is None:
        return "no split (every shared non-OOD image)"
    if split == "tau":
        return "the published <i>tau</i> train/test split"
    if split == "ood":
        return "train on the non-OOD images, test on the out-of-distribution (OOD) images"
    if split.startswith("ood_"):
        return f"the ood split, test restricted to OOD category <i>{escape(split[4:])}</i>"
    if split.startswith("cluster_k5"):
        return "5 folds, each testing on one k-means cluster of images; mean over folds" if split == "cluster_k5" else f"cluster fold {escape(split[-1])}"
    if split.startswith("random_"):
        return f"the published random split {escape(split.split('_')[-1])}"
    return escape(split)


CEILING_WORDS = (
    "<li><b>What the ceiling is, in plain words.</b> The ceiling is how well the data could be predicted at best, given "
    "its noise: for a voxel, how strongly its responses to repeats of the same image agree (the noise ceiling, NC); for "
    "CKA, how similar two different people's brains are on the same images. Dividing by it puts regions with clean and "
    "noisy data on a more comparable footing.</li>"
    "<li><b>A ceiled score above 1</b> does not mean the model is better than the brain. Under <i>brainscore</i> a "
    "regression score is raw&sup2; / ceiling, an r&sup2; over an r-scale ceiling, so it is not a fraction of anything; "
    "RDM and CKA scores are raw / ceiling, where the CKA ceiling is the agreement between two noisy subjects: a "
    "noise-free model can agree with each subject more than two noisy subjects agree with each other (few or noisy "
    "voxels give a low ceiling). Read values above 1 as &ldquo;as good as the data can tell&rdquo;, and compare models "
    "within a column, not across columns.</li>"
)


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


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1480px;padding:0 20px;color:#1b1b1b;line-height:1.45}
h1{margin-bottom:4px}h2{margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{border-collapse:collapse;margin:10px 0 16px}.meta td{padding:2px 14px 2px 0;vertical-align:top}.meta td:first-child{color:#555;white-space:nowrap}
.explain{background:#f5f7fa;border-left:4px solid #2563a8;padding:10px 16px;margin:14px 0}
.explain li{margin:3px 0}
.scroll{overflow-x:auto;margin:10px 0}
table.board,table.numbers,table.bench{border-collapse:collapse;font-size:13.5px}
table.board th,table.board td,table.numbers th,table.numbers td,table.bench th,table.bench td{border:1px solid #d8d8d8;padding:4px 7px}
table.board th{background:#f3f3f3;font-weight:600;text-align:center}
table.board th.b{font-weight:400;font-size:12.5px;line-height:1.25;min-width:54px}
table.board th .m{font-size:11px;color:#555}table.board th .s{font-size:11px;color:#7a3e00;white-space:nowrap}
table.board td.mean{background:#fafafa;font-weight:600}
h3{margin:22px 0 2px}
table.board td.v{text-align:center;min-width:54px;padding:4px 5px;font-variant-numeric:tabular-nums;white-space:nowrap}
table.board td.v .e{display:block;font-size:11px;opacity:.85}
table.board td.v.best{outline:2px solid #111;outline-offset:-2px;font-weight:700}
table.board th.fs,table.board td.fs{text-align:left;white-space:nowrap;position:sticky;left:0;background:#fff;z-index:1}
table.board th.fs{background:#f3f3f3}
table.numbers td,table.bench td{font-variant-numeric:tabular-nums}
table.numbers td.n{text-align:right}
table.numbers th,table.bench th{background:#f3f3f3;text-align:left}
table.bench td.nw,table.numbers td.nw{white-space:nowrap}
.legend{font-size:12.5px;color:#444}.swatch{display:inline-block;width:120px;height:10px;vertical-align:middle;margin:0 6px;
background:linear-gradient(90deg,#fff,rgb(37,99,168));border:1px solid #ccc}
figure{margin:14px 0 26px}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:13px;color:#333;max-width:1000px}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}
code{background:#f1f1f1;padding:0 3px;border-radius:3px}
.small{font-size:12.5px;color:#555}
"""


def _meta_table(rows: Sequence[ReportScore], lake_url: str | None, generated: str, extra: Mapping[str, str]) -> str:
    conventions = sorted({r.convention for r in rows})
    versions = sorted({(r.benchmark_key, r.version) for r in rows})
    by_version: dict[int, int] = {}
    for _, version in versions:
        by_version[version] = by_version.get(version, 0) + 1
    version_text = ", ".join(f"version {v} ({n} benchmark{'s' if n > 1 else ''})" for v, n in sorted(by_version.items()))
    subjects = sorted({s.subject for r in rows for s in r.subjects})
    created = sorted(str(r.created) for r in rows if r.created)
    computed = (f"{created[0]} .. {created[-1]}" if created[0] != created[-1] else created[0]) if created else f"{generated} (computed for this report)"
    items = [
        ("lake", f"<code>{escape(lake_url)}</code>" if lake_url else "not given"),
        ("report generated", escape(generated)),
        ("scores computed", escape(computed)),
        ("ceiling convention", ", ".join(f"<b>{escape(c)}</b>" for c in conventions)),
        ("benchmark version", escape(version_text)),
        ("subjects", f"{len(subjects)}: {escape(', '.join(subjects))}" if subjects else "n/a"),
        ("feature sets &times; benchmarks", f"{len({r.feature_set for r in rows})} &times; {len({r.benchmark_key for r in rows})} = {len(rows)} scores"),
        *((escape(k), escape(v)) for k, v in extra.items()),
    ]
    return '<table class="meta">' + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in items) + "</table>"


def _explain(rows: Sequence[ReportScore]) -> str:
    conventions = sorted({r.convention for r in rows})
    metrics = list(dict.fromkeys(r.metric for r in rows))
    n_boot = "200"
    lines = [
        "<li>Each cell is a <b>ceiled score</b>: the model's raw agreement with the brain divided by (a function of) the "
        "noise ceiling, the agreement that the data's own noise allows. Higher is better; scores of different benchmarks "
        "are on different scales (early regions score higher), so compare models within a column.</li>",
        *(f"<li>Ceiling convention {CONVENTION_TEXT.get(c, escape(c))}</li>" for c in conventions),
        CEILING_WORDS,
        *(f"<li><b>{escape(m)}</b>: {METRIC_TEXT.get(m, escape(m))}.</li>" for m in metrics),
        "<li>Voxels: only those with NC<sub>12rep</sub> &gt; 30 % (noise ceiling of the 12-repeat design) enter a score, "
        "unless a benchmark key says otherwise. Repeats of an image are averaged before fitting and testing.</li>",
        f"<li><b>&plusmn;</b> is the bootstrap error over subjects ({n_boot} seeded draws of subjects with replacement; the "
        "standard deviation of the draws' means), or over folds for k-fold splits. A single subject has no error (n/a).</li>",
        "<li>Identifiers read <code>family.region-split-metric</code>; a key with <code>@setting=value</code> was scored with a "
        "non-default setting. Regions: V1, V2, V3 from retinotopy, V4 = hV4, IT = the ventral visual mask minus every "
        "retinotopic region, IT_full = V4 + IT.</li>",
        f"<li>{escape(aliases_text())}.</li>",
    ]
    return '<div class="explain"><b>How to read this page</b><ul>' + "".join(lines) + "</ul></div>"


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


def _alpha(alpha: float) -> str:
    """10<sup>k</sup> for the ridgecv grid's powers of ten, else the number."""
    if alpha > 0 and abs(math.log10(alpha) - round(math.log10(alpha))) < 1e-9:
        return f"10<sup>{round(math.log10(alpha))}</sup>"
    return f"{alpha:g}"


def _numbers_table(rows: Sequence[ReportScore]) -> str:
    order = {k: i for i, k in enumerate(benchmark_order(rows))}
    ranked = {fs: i for i, fs in enumerate(feature_set_order(rows))}
    head = ("<tr><th>feature set</th><th>benchmark</th><th>convention</th><th>raw</th><th>ceiling</th><th>ceiled</th>"
            "<th>&plusmn; error</th><th>error over</th><th>subjects</th><th>folds</th><th>alpha (ridgecv)</th></tr>")
    body = []
    for r in sorted(rows, key=lambda r: (order[r.benchmark_key], ranked[r.feature_set])):
        alphas = sorted({s.alpha for s in r.subjects if s.alpha is not None})
        alpha = "&ndash;" if not alphas else (_alpha(alphas[0]) if len(alphas) == 1 else f"{_alpha(alphas[0])} .. {_alpha(alphas[-1])}")
        error_over = escape(r.error_over) + (f" ({escape(r.error_reason)})" if r.error_reason else "")
        body.append(
            f'<tr><td class="nw">{escape(r.feature_set)}</td><td class="nw">{escape(r.benchmark_key)}</td><td>{escape(r.convention)}</td>'
            f'<td class="n">{format_value(r.raw)}</td><td class="n">{format_value(r.ceiling)}</td><td class="n"><b>{format_value(r.value)}</b></td>'
            f'<td class="n">{format_error(r.error)}</td><td>{error_over}</td><td class="n">{r.n_subjects}</td><td class="n">{r.n_folds}</td>'
            f"<td>{alpha}</td></tr>"
        )
    return f'<div class="scroll"><table class="numbers"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'


def _subject_table(rows: Sequence[ReportScore]) -> str:
    subjects = sorted({s.subject for r in rows for s in r.subjects})
    order = {k: i for i, k in enumerate(benchmark_order(rows))}
    ranked = {fs: i for i, fs in enumerate(feature_set_order(rows))}
    head = "<tr><th>feature set</th><th>benchmark</th>" + "".join(f"<th>{escape(s)}</th>" for s in subjects) + "</tr>"
    body = []
    for r in sorted(rows, key=lambda r: (order[r.benchmark_key], ranked[r.feature_set])):
        per = r.per_subject()
        ceilings = r.subject_ceilings()
        raws: dict[str, list[float]] = {}
        for s in r.subjects:
            raws.setdefault(s.subject, []).append(s.raw)
        cells = "".join(
            f'<td class="n" title="raw {format_value(sum(raws[s]) / len(raws[s]))}, ceiling {format_value(ceilings[s])}">{format_value(per[s])}</td>'
            if s in per else "<td>&ndash;</td>"
            for s in subjects
        )
        body.append(f"<tr><td>{escape(r.feature_set)}</td><td>{escape(r.benchmark_key)}</td>{cells}</tr>")
    return f'<div class="scroll"><table class="numbers"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'


def _benchmark_table(rows: Sequence[ReportScore]) -> str:
    first: dict[str, ReportScore] = {}
    for r in rows:
        first.setdefault(r.benchmark_key, r)
    head = ("<tr><th>benchmark</th><th>also known as</th><th>version</th><th>family / pool</th><th>split</th><th>metric</th><th>convention</th>"
            "<th>voxel filter</th><th>images train / test per subject</th><th>voxels per subject</th></tr>")
    body = []
    for key in benchmark_order(rows):
        r = first[key]
        n_train = sorted({s.n_train for s in r.subjects})
        n_test = sorted({s.n_test for s in r.subjects})
        voxels = sorted({s.n_voxels for s in r.subjects})

        def span(values: list[int]) -> str:
            return "?" if not values else (str(values[0]) if len(values) == 1 else f"{values[0]}&ndash;{values[-1]}")

        images = f"{span(n_test)} (all)" if r.metric in ("rdm-pearson", "cka") else f"{span(n_train)} / {span(n_test)}"
        threshold = r.settings.get("nc_threshold")
        nc_filter = "none" if threshold is None and r.settings else (
            f"{escape(str(r.settings.get('nc_coord')))} &gt; {threshold:g}" if r.settings else "?")
        body.append(
            f'<tr><td class="nw"><code>{escape(key)}</code></td><td class="nw">{"<br>".join(f"<code>{escape(a)}</code>" for a in r.aliases) or "&ndash;"}</td><td>{r.version}</td><td>{escape(r.family)}</td><td>{split_text(r.split)}</td>'
            f'<td class="nw">{escape(r.metric)}</td><td>{escape(r.convention)}</td><td class="nw">{nc_filter}</td><td class="nw">{images}</td>'
            f'<td class="nw">{span(voxels)}</td></tr>'
        )
    families = sorted({r.family for r in rows})
    notes = "".join(f"<li><b>{escape(f)}</b>: {escape(FAMILY_TEXT.get(f, ''))}</li>" for f in families if f in FAMILY_TEXT)
    return f'<div class="scroll"><table class="bench"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div><ul class="small">{notes}</ul>'


def _cka_ceiling_table(rows: Sequence[ReportScore]) -> str:
    """Each CKA benchmark's inter-subject ceiling: value, SEM over pairs, each subject's mean, each pair."""
    first: dict[str, ReportScore] = {}
    for r in rows:
        if r.metric == "cka":
            first.setdefault(r.benchmark_key, r)
    if not first:
        return ""
    head = "<tr><th>benchmark</th><th>ceiling</th><th>&plusmn; SEM over pairs</th><th>each subject's mean over its pairs</th><th>subject pairs</th></tr>"
    body = []
    for key in benchmark_order(list(first.values())):
        r = first[key]
        detail = r.ceiling_detail
        error = detail.get("ceiling_error")
        means = ", ".join(f"{escape(s)} {format_value(float(v))}" for s, v in (detail.get("ceiling_subject_means") or {}).items())
        pairs = ", ".join(f"{escape(p['subjects'][0][-2:])}/{escape(p['subjects'][1][-2:])} {format_value(float(p['cka']))}"
                          for p in detail.get("ceiling_pairs") or [])
        body.append(f'<tr><td class="nw"><code>{escape(key)}</code></td><td class="n"><b>{format_value(r.ceiling)}</b></td>'
                    f'<td class="n">{format_error(float("nan") if error is None else float(error))}</td><td class="small">{means or "n/a"}</td>'
                    f'<td class="small">{pairs or "n/a"}</td></tr>')
    return ('<h2>CKA ceilings</h2><p>The CKA columns are divided by how similar two subjects\' brains are on the same images: '
            "the mean over the subject pairs of CKA(subject<sub>i</sub>, subject<sub>j</sub>), computed once per region from the data "
            "and stored in the lake. Voxels never correspond across subjects, so subjects are compared in pairs, never through a "
            "mean brain.</p>"
            f'<div class="scroll"><table class="numbers"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>')


def _committed_caption(layers: Mapping[str, str]) -> str:
    if not layers:
        return ""
    return "; committed layers: " + ", ".join(f"{escape(region)}: <b>{escape(layer)}</b>" for region, layer in layers.items())


def _layer_section(rows: Sequence[ReportScore], files: Mapping[str, str], committed: Mapping[str, Mapping[str, str]]) -> str:
    from laion_lake.report.profiles import best_layers

    parts = ["<h2>Score per layer</h2><p>For models scored with several layers: how the ceiled score changes with depth, "
             "one panel per region, one line per benchmark; the star marks the best layer on the test set, the dashed "
             "line the layer committed by <code>laion-lake commit-layers</code> (chosen on a split inside each "
             "benchmark's training set, never on test data: the leaderboard row uses it).</p>"]
    for model, file in files.items():
        best = best_layers(rows, model)
        listed = "; ".join(f"{escape(k.split('.', 1)[-1])}: <b>{escape(layer)}</b> ({format_value(v)})" for k, (layer, v) in
                           sorted(best.items(), key=lambda kv: benchmark_order(rows).index(kv[0])))
        parts.append(f'<figure><img src="{escape(file)}" alt="score per layer of {escape(model)}"><figcaption><b>{escape(model)}</b>, '
                     f"best layer per benchmark: {listed}{_committed_caption(committed.get(model, {}))}</figcaption></figure>")
    return "".join(parts)


def render_page(
    rows: Sequence[ReportScore],
    figures: Mapping[str, Any],
    title: str,
    lake_url: str | None,
    generated: str,
    extra_meta: Mapping[str, str] | None = None,
) -> str:
    """The whole page. ``figures``: ``{"families": {family: file}, "ceilings": file, "raw_vs_ceiled": file}``."""
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        '<p class="small">Vision models scored against the LAION-fMRI 7T fMRI dataset, Brain-Score style.</p>',
        _meta_table(rows, lake_url, generated, extra_meta or {}),
        _explain(rows),
        "<h2>Leaderboard</h2>",
        "<p>Ceiled score per feature set (rows) and benchmark (columns), &plusmn; bootstrap error over subjects; one table per "
        "benchmark family.</p>",
        _leaderboard(rows),
        _cka_ceiling_table(rows),
    ]
    if figures.get("layer_profiles"):
        parts.append(_layer_section(rows, figures["layer_profiles"], figures.get("committed_layers", {})))
    parts.append("<h2>Per-voxel r and the noise ceiling</h2>")
    if "voxel_r_vs_ceiling" in figures:
        parts.append(
            f'<figure><img src="{escape(figures["voxel_r_vs_ceiling"])}" alt="per-voxel r against noise ceiling"><figcaption>Each dot '
            "is one voxel of one subject: its test-set r (y) against its noise ceiling on the r scale, &radic;(NC<sub>12rep</sub>/100) "
            "(x). Points near the dashed line are predicted about as well as their noise allows; the spread below it is what a "
            "better model could still gain. The median of the y values is the raw score.</figcaption></figure>")
        for region, feature_set, file in figures.get("brain_maps", []):
            parts.append(f'<figure><img src="{escape(file)}" alt="brain map of {escape(region)}"><figcaption><b>{escape(region)}</b>: '
                         f"per-voxel r of the best feature set, <b>{escape(feature_set)}</b>, in the first subject's own grid "
                         "(<code>laion-lake maps</code> writes every subject as NIfTI).</figcaption></figure>")
    else:
        parts.append('<p class="small">Per-voxel r is kept only when the report scores in this process (it is not in the score '
                     "records): run <code>laion-lake report LAKE --out DIR --recompute</code> to draw it.</p>")
    families = figures.get("families", {})
    if families:
        parts.append("<h2>Scores per family, with the subjects' spread</h2>")
    for family, file in families.items():
        parts.append(
            f'<figure><img src="{escape(file)}" alt="bar chart of {escape(family)} scores"><figcaption><b>{escape(family)}</b>: '
            f"{escape(FAMILY_TEXT.get(family, ''))}. Bar = ceiled score (mean over subjects), whisker = &plusmn; bootstrap error, "
            "each dot = one subject's ceiled score (for k-fold splits, the subject's mean over folds). The spread of the dots "
            "is what the error summarises. A model scored with several layers appears with its best layer (highest mean "
            "ceiled score); its other layers are in the score-per-layer profile.</figcaption></figure>"
        )
    if "ceilings" in figures:
        parts += [
            "<h2>Noise ceilings</h2>",
            f'<figure><img src="{escape(figures["ceilings"])}" alt="noise ceilings per region"><figcaption>The ceiling the scores are '
            "divided by, per region and subject. It depends on the voxels kept and, under <i>nsd</i>, on the repeats of the test "
            "images; not on the model. Under <i>brainscore</i> every regression benchmark of a region shares one ceiling (median "
            "over voxels) and every RDM benchmark another (mean over voxels), whatever the split or family. A CKA "
            "ceiling is the mean inter-subject CKA over subject pairs; its dots are each subject's mean over its pairs. A low ceiling makes "
            "the ceiled score noisier.</figcaption></figure>",
        ]
    if "raw_vs_ceiled" in figures:
        parts += [
            "<h2>Raw vs ceiled</h2>",
            f'<figure><img src="{escape(figures["raw_vs_ceiled"])}" alt="raw against ceiled score"><figcaption>Under the '
            "<i>brainscore</i> convention a regression score is raw&sup2; / ceiling, so it falls below the dashed line whenever "
            "raw &lt; ceiling (and a negative raw r still gives a positive score); an RDM score is raw / ceiling and lies above "
            "the line. Under <i>nsd</i> each voxel's r&sup2; is divided by its own noise ceiling before the median, so the points "
            "do not follow either curve exactly.</figcaption></figure>",
            "<details><summary>Every number: raw score, ceiling, ceiled score, error, alphas (one row per score)</summary>",
            _numbers_table(rows),
            "</details>",
        ]
    parts += [
        "<h2>Per subject</h2>",
        "<details><summary>Ceiled score of each subject (hover for raw and ceiling)</summary>",
        _subject_table(rows),
        "</details>",
        "<h2>Benchmarks</h2>",
        _benchmark_table(rows),
    ]
    citations = sorted({r.citation for r in rows if r.citation})
    if citations:
        parts.append("<h2>Cite</h2>" + "".join(f'<p class="small">{escape(c)}</p>' for c in citations))
    parts.append('<p class="small">Also in this folder: <code>scores.csv</code> (one row per score).</p></body></html>')
    return "\n".join(parts)


__all__ = ["format_error", "format_value", "render_page"]
