"""``laion-lake sweep`` and ``laion-lake commit-layers``: from a model to a leaderboard row.

Wired into the main parser with ``add_commands(subparsers)``; each command returns an exit code.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from laion_lake.cli_common import add_lake_argument

EXIT_OK = 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from laion_lake.features.cli import describe_extraction
    from laion_lake.lake import open_lake
    from laion_lake.models.sweep import sweep_layers
    from laion_lake.scoring.table import leaderboard_text

    started = time.perf_counter()
    lake = open_lake(args.lake, args.storage_options)
    result = sweep_layers(
        lake, args.model, args.layers.split(","), args.images, benchmarks=args.benchmark, score=args.in_process,
        progress=not args.no_progress, weights=args.weights, metadata=args.metadata, name=args.name, batch_size=args.batch_size,
        device=args.device, seed=args.seed, threads=args.threads, loaders=args.loaders, overwrite=args.overwrite,
    )
    print(describe_extraction(result.extraction))
    if not args.in_process:
        # the score flow on a Dask cluster, recording every unit in the lake (as `laion-lake batch` does)
        from laion_lake.cli import _print_run, _run_score

        _print_run(_run_score(args, [list(fs) for fs in result.feature_sets], args.benchmark or None), started)
    else:
        print(f"{len(result.rows)} scores in {time.perf_counter() - started:.1f} s\n")
        print(leaderboard_text(result.rows))
    print(f"\nnext: laion-lake commit-layers {args.lake} --model {result.model}")
    return EXIT_OK


def describe_commitment(commitment: Any) -> str:
    """The score-vs-layer profile per region, the committed layer marked with ``*``."""
    lines = [f"{commitment.model}: committed layers (commitment split inside each benchmark's train set, seed {commitment.seed})"]
    for region, layer in commitment.layers.items():
        lines.append(f"  {region}: {layer}")
        for name, value, chosen in commitment.profile(region):
            lines.append(f"    {'*' if chosen else ' '} {name:<32} {value:8.4f}")
    return "\n".join(lines)


def cmd_commit_layers(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake
    from laion_lake.models.commit import commit_layers, committed_leaderboard_row
    from laion_lake.scoring.table import leaderboard_text

    lake = open_lake(args.lake, args.storage_options)
    commitment = commit_layers(lake, args.model, args.layers.split(",") if args.layers else None, args.benchmark, seed=args.seed)
    print(describe_commitment(commitment))
    print(f"stored in {lake.url} (manifest provenance 'layer_commitments')\n")
    rows = committed_leaderboard_row(open_lake(args.lake, args.storage_options), args.model, args.leaderboard_benchmark)
    print("leaderboard row (each benchmark scored on the test data with its region's committed layer):")
    for row in rows:
        row["committed_layer"], row["layer"] = row["layer"], "committed"
    print(leaderboard_text(rows))
    print("layers: " + ", ".join(f"{region}={layer}" for region, layer in commitment.layers.items()))
    return EXIT_OK


def add_commands(subparsers: Any) -> None:
    """Register ``sweep`` and ``commit-layers`` on the main parser's subparsers."""
    from laion_lake.features.cli import add_extract_options

    sweep = subparsers.add_parser(
        "sweep", help="extract many layers of one model (names or patterns) and score every one",
        description="Extract every layer matching --layers (comma-separated names or glob patterns, e.g. 'layer*') in one "
                    "pass over the benchmarks' stimuli, then score them all (--in-process, or the score flow on a cluster).",
    )
    add_lake_argument(sweep)
    add_extract_options(sweep, layers_help="comma-separated layer names or glob patterns (e.g. 'layer?,avgpool')")
    sweep.add_argument("--in-process", action="store_true", help="score here with score_many (no Prefect, no cluster, no records)")
    sweep.add_argument("--force", action="store_true", help="recompute units that already have a record (flow path)")
    sweep.add_argument("--scheduler", help="address of an existing Dask scheduler (flow path; default a local cluster)")
    sweep.add_argument("--workers", type=int, help="workers of the local cluster (flow path)")
    sweep.add_argument("--memory-limit", default="4GiB", help="memory limit per local worker (flow path)")
    sweep.add_argument("--verbose", action="store_true", help="show Prefect's and Dask's INFO logs")
    sweep.set_defaults(run=cmd_sweep)

    commit = subparsers.add_parser(
        "commit-layers", help="pick one layer per region on commitment splits (no test data) and store the map",
        description="Score each of the model's layers on a seeded commitment split nested inside each benchmark's "
                    "training set (80%% fit, 20%% validate), pick the best layer per region, store the region-to-layer "
                    "map in the lake and print the model's leaderboard row from its committed layers.",
    )
    add_lake_argument(commit)
    commit.add_argument("--model", required=True, help="the lake's model name, e.g. torchvision:resnet50@random-s0")
    commit.add_argument("--layers", help="candidate layers, comma-separated (default: every layer of the model in the lake)")
    commit.add_argument("--benchmark", action="append", help="regression benchmarks whose train sets commit (default the headline ones)")
    commit.add_argument("--leaderboard-benchmark", action="append", help="benchmarks of the printed row (default the 24 leaderboard ones)")
    commit.add_argument("--seed", type=int, default=0, help="seed of the commitment split")
    commit.set_defaults(run=cmd_commit_layers)


__all__ = ["add_commands", "describe_commitment"]
