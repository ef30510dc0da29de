"""The report's ``index.html``: one self-explaining page (inline CSS, PNGs beside it, no JavaScript)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from laion_lake.report.collect import ReportScore, benchmark_order
from laion_lake.report.board import _leaderboard
from laion_lake.report.tables import _benchmark_table, _cka_ceiling_table, _numbers_table, _subject_table
from laion_lake.report.text import CSS, FAMILY_TEXT, _committed_caption, _explain, format_error, format_value


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
        parts.append('<p class="small">No per-voxel r to draw: these scores came without their lake. '
                     "<code>laion-lake report LAKE --out DIR</code> reads the per-voxel arrays stored with the score records "
                     "(or <code>--recompute</code> scores in this process).</p>")
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
