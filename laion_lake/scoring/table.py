"""The leaderboard as fixed-width text: benchmarks down the side, feature sets across."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from laion_lake.benchmarks import list_benchmarks


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    error = row.get("error")
    error_text = "nan" if error is None or (isinstance(error, float) and math.isnan(error)) else f"{error:.3f}"
    return f"{row['value']:.3f} ± {error_text}"


def leaderboard_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """Benchmarks (rows) x feature sets (columns) of ``value ± error``.

    Parameters
    ----------
    rows : sequence of mappings with ``model``, ``layer``, ``benchmark``, ``value``, ``error``
        One per score (as the score flow or ``laion-lake scores`` produce them).

    Benchmarks go down the side because there are many (24 leaderboard cells) and feature sets few; the
    headline ones in SPEC order, then the others alphabetically.
    """
    if not rows:
        return "(no scores)"
    headline = {name: i for i, name in enumerate(list_benchmarks())}
    models = sorted({f"{r['model']}/{r['layer']}" for r in rows})
    benchmarks = sorted({r["benchmark"] for r in rows}, key=lambda b: (headline.get(b, len(headline)), b))
    cells = {(r["benchmark"], f"{r['model']}/{r['layer']}"): r for r in rows}
    width = max(17, *(len(m) + 2 for m in models))
    name_width = max(len("benchmark"), *(len(b) for b in benchmarks)) + 2
    lines = [f"{'benchmark':<{name_width}}" + "".join(f"{m:>{width}}" for m in models)]
    for benchmark in benchmarks:
        lines.append(f"{benchmark:<{name_width}}" + "".join(f"{_cell(cells.get((benchmark, m))):>{width}}" for m in models))
    return "\n".join(lines)
