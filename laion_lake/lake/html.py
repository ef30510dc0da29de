"""What a :class:`~laion_lake.lake.Lake` shows in a notebook (``_repr_html_``) and as plain text.

Everything comes from the manifest and the listing of the record groups: no array is read, so
the repr of a lake on S3 costs a few metadata requests.
"""

from __future__ import annotations

from html import escape
from string import Template
from typing import Any

from storage_schemas.vocabulary import DERIVED_REGIONS


def lake_summary(lake: Any) -> dict[str, Any]:
    """What the snapshot holds, as plain data.

    Returns
    -------
    dict
        ``url``, ``snapshot``, ``branch``, ``tag``, ``subjects`` (subject -> n_trials, n_neuroids,
        regions: region -> voxel count, derived regions included), ``n_stimuli``, ``pools``,
        ``feature_sets`` ("model/layer" -> n_stimuli, n_features), ``records`` (units, aggregates).
    """
    from laion_lake.scoring.records import AGGREGATES, UNITS  # records sit above the lake layer

    manifest = lake.manifest
    pinned = lake.storage.pinned
    subjects = {}
    for subject, entry in sorted(manifest.get("subjects", {}).items()):
        regions = {str(r): int(n) for r, n in dict(entry.get("regions", {})).items()}
        for name, parts in DERIVED_REGIONS.items():
            if all(p in regions for p in parts):
                regions[name] = sum(regions[p] for p in parts)
        subjects[subject] = {"n_trials": int(entry.get("n_trials", 0)), "n_neuroids": int(entry.get("n_neuroids", 0)), "regions": regions}
    features = {
        f"{entry['model']}/{entry['layer']}": {"n_stimuli": int(entry.get("n_stimuli", 0)), "n_features": int(entry.get("n_features", 0))}
        for entry in sorted(manifest.get("features", {}).values(), key=lambda e: (e["model"], e["layer"]))
    }
    records = {}
    for name, path in (("units", UNITS), ("aggregates", AGGREGATES)):
        group = lake.storage.group(path)
        records[name] = 0 if group is None else sum(1 for _ in group.group_keys())
    return {
        "url": lake.url,
        "snapshot": lake.snapshot_id,
        "branch": pinned["branch"] or (None if pinned["tag"] or pinned["snapshot"] else "main"),
        "tag": pinned["tag"],
        "subjects": subjects,
        "n_stimuli": int(manifest.get("stimuli", {}).get("stimulus_id", 0)),
        "pools": list(manifest.get("pools", [])),
        "feature_sets": features,
        "records": records,
    }


def _where(summary: dict[str, Any]) -> str:
    pin = f"tag {summary['tag']}" if summary["tag"] else f"branch {summary['branch']}" if summary["branch"] else "snapshot"
    return f"{pin} @ {summary['snapshot'][:8]}"


def lake_text(summary: dict[str, Any]) -> str:
    """The same summary as a few lines of plain text (for a terminal or a log)."""
    lines = [f"Lake {summary['url']} ({_where(summary)})"]
    for subject, info in summary["subjects"].items():
        regions = ", ".join(f"{r} {n}" for r, n in info["regions"].items())
        lines.append(f"  {subject}: {info['n_trials']} trials, {info['n_neuroids']} voxels ({regions})")
    lines.append(f"  stimuli: {summary['n_stimuli']}; pools: {', '.join(summary['pools']) or '-'}")
    lines.append(f"  feature sets: {', '.join(summary['feature_sets']) or '-'}")
    lines.append(f"  records: {summary['records']['aggregates']} scores, {summary['records']['units']} unit records")
    return "\n".join(lines)


_PAGE = Template(
    """<div class="laion-lake-repr" style="font-family: sans-serif; font-size: 13px">
<div><b>Lake</b> <code>$url</code> &middot; $where</div>
<div style="color: #555">snapshot <code>$snapshot</code> &middot; $n_stimuli stimuli &middot; pools: $pools &middot;
$n_scores scores, $n_units unit records</div>
<details open><summary><b>$n_subjects subjects</b> (trials, voxels, voxels per region; derived: $derived)</summary>
<table style="border-collapse: collapse"><thead><tr>$subject_head</tr></thead><tbody>
$subject_rows
</tbody></table></details>
<details open><summary><b>$n_features feature sets</b></summary>
<table style="border-collapse: collapse"><thead><tr><th style="$name">model/layer</th><th style="$cell">stimuli</th><th style="$cell">features</th></tr></thead><tbody>
$feature_rows
</tbody></table></details>
</div>"""
)
_CELL = "padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right"


_NAME = _CELL.replace("right", "left")


def _row(cells: list[Any]) -> str:
    """A table row: the first cell (a name) left-aligned, the numbers right-aligned."""
    return "<tr>" + "".join(f'<td style="{_NAME if i == 0 else _CELL}">{escape(str(c))}</td>' for i, c in enumerate(cells)) + "</tr>"


def lake_html(summary: dict[str, Any]) -> str:
    """The HTML block a notebook shows for a lake (every name escaped)."""
    regions: list[str] = []
    for info in summary["subjects"].values():
        regions += [r for r in info["regions"] if r not in regions]
    head = ["subject", "trials", "voxels", *regions]
    subject_rows = [
        _row([subject, info["n_trials"], info["n_neuroids"], *(info["regions"].get(r, "-") for r in regions)])
        for subject, info in summary["subjects"].items()
    ]
    feature_rows = [_row([name, info["n_stimuli"], info["n_features"]]) for name, info in summary["feature_sets"].items()]
    return _PAGE.substitute(
        url=escape(summary["url"]),
        where=escape(_where(summary)),
        snapshot=escape(summary["snapshot"]),
        n_stimuli=summary["n_stimuli"],
        pools=escape(", ".join(summary["pools"]) or "-"),
        n_scores=summary["records"]["aggregates"],
        n_units=summary["records"]["units"],
        n_subjects=len(summary["subjects"]),
        derived=escape(", ".join(f"{name} = {' + '.join(parts)}" for name, parts in DERIVED_REGIONS.items())),
        subject_head="".join(f'<th style="{_NAME if i == 0 else _CELL}">{escape(h)}</th>' for i, h in enumerate(head)),
        subject_rows="\n".join(subject_rows),
        n_features=len(summary["feature_sets"]),
        cell=_CELL,
        name=_NAME,
        feature_rows="\n".join(feature_rows),
    )


__all__ = ["lake_html", "lake_summary", "lake_text"]
