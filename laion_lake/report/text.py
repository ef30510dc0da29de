"""The report's words: what each family, metric and convention means, the ceiling explained, the page's CSS."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from laion_lake.benchmarks import aliases_text
from laion_lake.report.collect import ReportScore

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


def _committed_caption(layers: Mapping[str, str]) -> str:
    if not layers:
        return ""
    return "; committed layers: " + ", ".join(f"{escape(region)}: <b>{escape(layer)}</b>" for region, layer in layers.items())


__all__ = ["CEILING_WORDS", "CONVENTION_TEXT", "CSS", "FAMILY_TEXT", "METRIC_TEXT", "format_error", "format_value", "split_text"]
