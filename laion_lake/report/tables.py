"""The report's detail tables: every number, per subject, per benchmark's settings, and the CKA ceilings."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from laion_lake.report.collect import ReportScore, benchmark_order, feature_set_order
from laion_lake.report.text import FAMILY_TEXT, format_error, format_value, split_text

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


__all__: list[str] = []  # page-internal: the page imports its pieces by name
