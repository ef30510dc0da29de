"""``laion-lake report LAKE --out DIR``: write the leaderboard report of a lake.

Scores come from (in this order): ``--scores-json FILE`` (a JSON list of score records),
``--from-records`` (the aggregated score records stored in the lake), or, by default, scoring
every feature set of the lake on the benchmarks here and now (``score_many``, in this process).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from laion_lake.cli_common import add_lake_argument

EXIT_OK = 0


def gather_scores(args: argparse.Namespace, lake: Any) -> tuple[list[Any], str]:
    """(scores, a line saying where they came from)."""
    if args.scores_json:
        records = json.loads(Path(args.scores_json).read_text())
        if not isinstance(records, list):
            raise ValueError(f"{args.scores_json}: expected a JSON list of score records")
        return records, f"score records from {args.scores_json}"
    from laion_lake.errors import UnknownNameError
    from laion_lake.scoring.records import load_scores

    known = sorted({model for model, _ in lake.feature_sets})
    for model in args.models or []:  # a typo is named, with what exists, not "the lake holds no records"
        if model not in known:
            raise UnknownNameError("model", model, known, where=str(lake.url))
    # the lake's records are the default source once any exist (e.g. after `make demo`)
    recorded = [] if args.recompute else load_scores(lake)
    if args.from_records or recorded:
        scores = recorded or load_scores(lake)
        if args.benchmark:
            from laion_lake.benchmarks import canonical_identifier

            wanted = {canonical_identifier(b) for b in args.benchmark}  # either family spelling
            scores = [s for s in scores if s.attrs["benchmark"] in wanted or s.attrs["benchmark_key"] in wanted]
        if args.models:
            scores = [s for s in scores if s.attrs["model"] in args.models]
        if not scores:
            raise ValueError(f"{lake.url} holds no score records{' for those benchmarks' if args.benchmark else ''}; run `laion-lake score` first")
        return scores, f"score records stored in the lake ({len(scores)})"
    from laion_lake.benchmarks import list_benchmarks
    from laion_lake.scoring import score_many

    feature_sets = [fs for fs in lake.feature_sets if not args.models or fs[0] in args.models]
    if not feature_sets:
        raise ValueError(f"no feature sets to score in {lake.url}" + (f" matching --models {args.models}" if args.models else ""))
    benchmarks = args.benchmark or list_benchmarks()
    scores = score_many(lake, feature_sets, benchmarks, progress=not args.quiet, voxels=True)
    return list(scores.values()), "computed for this report (score_many, in process)"


def cmd_report(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake
    from laion_lake.report import write_report

    lake = open_lake(args.lake, args.storage_options)
    scores, source = gather_scores(args, lake)
    page = write_report(scores, args.out, title=args.title, lake_url=lake.url, extra_meta={"scores from": source}, lake=lake)
    print(f"wrote {page} ({len(scores)} scores); open it in a browser")
    return EXIT_OK


def add_commands(subparsers: Any) -> None:
    """Register ``report`` on the main parser's subparsers."""
    from laion_lake.report import DEFAULT_TITLE

    report = subparsers.add_parser("report", help="write an HTML leaderboard report (index.html + PNG plots) of a lake's scores")
    report.add_argument("lake", help="lake URL: a local path, s3://bucket/prefix, memory://name")
    add_lake_argument(report, positional=False)
    report.add_argument("--out", required=True, help="folder to write index.html, the PNGs and scores.csv to")
    report.add_argument("--title", default=DEFAULT_TITLE)
    report.add_argument("--benchmark", action="append", help="benchmark id or key (repeatable); default the 24 leaderboard ids; Zerbe2026_fmri.* names are aliases of LAION_fMRI.*")
    report.add_argument("--models", nargs="*", help="models to include (default: every model in the lake)")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--from-records", action="store_true", help="use the score records stored in the lake (the default when it holds any); fail if there are none")
    source.add_argument("--recompute", action="store_true", help="score in this process now even if the lake holds records")
    source.add_argument("--scores-json", help="a JSON list of score records to report instead of scoring now")
    report.add_argument("--quiet", action="store_true", help="no progress bar")
    report.set_defaults(run=cmd_report)


__all__ = ["add_commands", "cmd_report", "gather_scores"]
