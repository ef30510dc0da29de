"""``laion-lake compare LAKE --a M1/L1 --b M2/L2 --benchmark ID [...]``: is A better than B beyond noise?"""

from __future__ import annotations

import argparse
import json
from typing import Any

from laion_lake.cli_common import add_lake_argument

EXIT_OK = 0


def _benchmarks(args: argparse.Namespace) -> list[str]:
    if args.benchmark:
        return [b for group in args.benchmark for b in group]
    from laion_lake.benchmarks import list_benchmarks

    return list_benchmarks()


def cmd_compare(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake
    from laion_lake.scoring.compare import compare, comparison_table

    lake = open_lake(args.lake, args.storage_options)
    comparisons = compare(lake, args.a, args.b, _benchmarks(args), n_bootstrap=args.n_bootstrap, seed=args.seed)
    if args.format == "json":
        print(json.dumps([c.to_dict() for c in comparisons], indent=1))
    else:
        print(comparison_table(comparisons))
    return EXIT_OK


def add_commands(subparsers: Any) -> None:
    """Register ``compare`` on the main parser's subparsers."""
    from laion_lake.benchmarks import aliases_text
    from laion_lake.scoring.compare import DEFAULT_N_BOOTSTRAP, DEFAULT_SEED

    parser = subparsers.add_parser(
        "compare",
        help="paired bootstrap of the score difference of two feature sets (A - B) per benchmark: difference, 95%% interval, p, verdict",
        description="Fits both feature sets here (in this process) and resamples subjects and, within each subject, the test "
                    "images (RDM and CKA: the shared images), with the same draws for A and B. " + aliases_text() + ".",
    )
    add_lake_argument(parser)
    parser.add_argument("--a", required=True, metavar="MODEL/LAYER", help="feature set A")
    parser.add_argument("--b", required=True, metavar="MODEL/LAYER", help="feature set B")
    parser.add_argument("--benchmark", action="append", nargs="+", metavar="ID",
                        help="benchmark ids or keys: regression, RDM or CKA (repeatable); default the 24 leaderboard cells")
    parser.add_argument("--n-bootstrap", type=int, default=DEFAULT_N_BOOTSTRAP, help=f"paired draws (default {DEFAULT_N_BOOTSTRAP})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the draws (default {DEFAULT_SEED})")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(run=cmd_compare)


__all__ = ["add_commands", "cmd_compare"]
