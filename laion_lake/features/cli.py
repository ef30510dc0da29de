"""``laion-lake features add|ls``: bring feature files into a lake, and list what it holds.

Wired into the main parser with ``add_commands(subparsers)``; each command returns an exit code.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from laion_lake.cli_common import add_lake_argument, json_options

EXIT_OK = 0


def cmd_features_add(args: argparse.Namespace) -> int:
    from laion_lake.features.add import add_features
    from laion_lake.lake import open_lake

    lake = open_lake(args.lake, args.storage_options)
    result = add_features(
        lake, args.model, args.layer, args.file, ids_path=args.ids, overwrite=args.overwrite, format=args.format,
        variable=args.variable, id_name=args.id_name, storage_options=args.source_storage_options,
        require_benchmarks=args.require or (),
    )
    entry, provenance = result.entry, result.provenance
    print(f"wrote {entry['path']}: {entry['n_stimuli']:,} stimuli x {entry['n_features']:,} features")
    print(f"  source {provenance['source']} ({provenance['format']}), sha256 {provenance['sha256']}")
    uncovered = result.uncovered()
    print(f"  covers {len(result.coverage) - len(uncovered)} of {len(result.coverage)} headline benchmarks fully")
    if uncovered:
        print("  these benchmarks cannot score it until the missing ids are added:")
        for coverage in uncovered:
            print(f"    {coverage.summary()}")
        print(f"    e.g. {uncovered[0].describe()}")
    return EXIT_OK


def describe_feature_sets(lake: Any) -> str:
    """One block per feature set: size, headline-benchmark coverage, and where it came from."""
    from laion_lake.features.add import benchmark_coverage, summarize_shortfall

    entries = lake.manifest.get("features", {})
    if not entries:
        return f"lake {lake.url} holds no feature sets; add one with `laion-lake features add`"
    lines = [f"lake {lake.url}: {len(entries)} feature set(s)"]
    for key, entry in sorted(entries.items()):
        ids = lake.features(entry["model"], entry["layer"])["stimulus_id"].values
        coverage = benchmark_coverage(lake, ids)
        covered = sum(c.complete for c in coverage.values())
        lines.append(f"  {key}: {entry['n_stimuli']:,} stimuli x {entry['n_features']:,} features; "
                     f"covers {covered} of {len(coverage)} headline benchmarks")
        provenance = entry.get("provenance")
        if provenance:
            lines.append(f"    from {provenance.get('source')} ({provenance.get('format')}, sha256 {str(provenance.get('sha256'))[:16]}...), "
                         f"added {provenance.get('added')}")
        else:
            lines.append("    provenance: none recorded (not added with `laion-lake features add`)")
        shortfall = summarize_shortfall(coverage)
        if shortfall:
            lines.append(f"    {shortfall}")
    return "\n".join(lines)


def cmd_features_ls(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake

    print(describe_feature_sets(open_lake(args.lake, args.storage_options)))
    return EXIT_OK


def add_commands(subparsers: Any) -> None:
    """Register ``features add`` and ``features ls`` on the main parser's subparsers."""
    features = subparsers.add_parser("features", help="bring model activations into the lake; list the feature sets")
    commands = features.add_subparsers(dest="features_command", metavar="SUBCOMMAND")
    commands.required = True

    add = commands.add_parser(
        "add", help="add a feature file (.npy + ids, .npz, .nc, .zarr, .parquet) as features/<model>/<layer>",
        description="Read a feature file, check its stimulus ids against the lake's stimulus table, and write it with "
                    "its provenance (source path, sha256 of the file, date, format).",
    )
    add_lake_argument(add)
    add.add_argument("model")
    add.add_argument("layer")
    add.add_argument("file", help=".npy, .npz, .nc, .zarr or .parquet (local path or fsspec URL)")
    add.add_argument("--ids", help="stimulus ids, one per line or a .json list (required with .npy)")
    add.add_argument("--overwrite", action="store_true", help="replace a feature set of the same name")
    add.add_argument("--format", choices=("npy", "npz", "nc", "zarr", "parquet"), help="override the format the suffix implies")
    add.add_argument("--variable", help="array / data variable / list column holding the activations")
    add.add_argument("--id-name", help="array or column holding the stimulus ids (.npz, .parquet)")
    add.add_argument("--require", action="append", metavar="BENCHMARK",
                     help="fail unless the file covers every id this benchmark needs (repeatable)")
    add.add_argument("--source-storage-options", type=json_options, default=None, help="fsspec options for reading FILE and --ids, as JSON")
    add.set_defaults(run=cmd_features_add)

    ls = commands.add_parser("ls", help="feature sets in the lake: size, benchmark coverage, provenance")
    add_lake_argument(ls)
    ls.set_defaults(run=cmd_features_ls)


__all__ = ["add_commands", "describe_feature_sets"]
