"""``laion-lake features add|extract|ls``: bring feature files or a model's activations into a lake, list what it holds.

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
        if provenance and "identity_sha256" in provenance:
            weights = provenance["weights"]
            lines.append(f"    extracted from {provenance['model']} (weights {weights['name']}, sha256 {weights['sha256'][:16]}...), "
                         f"layer {provenance['layer']}, {provenance['stimuli']['n']:,} images from {provenance['stimuli']['source']}; "
                         f"identity {provenance['identity_sha256'][:16]}..., {provenance.get('extracted')}")
        elif provenance:
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


def cmd_features_extract(args: argparse.Namespace) -> int:
    if args.list_layers:
        from laion_lake.models.extract import describe_layers
        from laion_lake.models.zoo import load_model

        loaded = load_model(args.model, args.weights, args.seed)
        rows = describe_layers(loaded)
        print(f"{loaded.name} ({args.weights} weights): {len(rows)} layers; name, module, features per image")
        for layer, kind, width in rows:
            print(f"  {layer:<40} {kind:<24} {width:>12,}")
        return EXIT_OK
    if not args.layers or not args.images:
        raise ValueError("features extract needs --layers and --images (or --list-layers)")
    from laion_lake.lake import open_lake
    from laion_lake.models.extract import extract_model_features

    run = extract_model_features(
        open_lake(args.lake, args.storage_options), args.model, args.layers.split(","), args.images, weights=args.weights,
        metadata=args.metadata, benchmarks=args.benchmark, name=args.name, batch_size=args.batch_size, device=args.device,
        seed=args.seed, threads=args.threads, loaders=args.loaders, overwrite=args.overwrite, progress=not args.no_progress,
    )
    print(describe_extraction(run))
    return EXIT_OK


def describe_extraction(run: Any) -> str:
    """One line per layer (written / skipped, size, identity), then the throughput."""
    lines = []
    for layer in run.layers:
        provenance = layer.provenance
        lines.append(f"{layer.status:<11} {layer.model}/{layer.layer}: {layer.n_stimuli:,} stimuli x {layer.n_features:,} features "
                     f"(identity {provenance['identity_sha256'][:12]}, weights sha256 {provenance['weights_sha256'][:12]})")
    if run.n_skipped_ids:
        lines.append(f"  {run.n_skipped_ids:,} image(s) of the source no benchmark needs were skipped")
    if run.n_images:
        lines.append(f"  {run.n_images:,} images in {run.seconds:.1f} s ({run.images_per_second:.1f} images/s)")
    return "\n".join(lines)


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

    extract = commands.add_parser(
        "extract", help="run a torchvision or timm model on the benchmarks' stimuli and write the layers' activations",
        description="Extract layers of torchvision:NAME or timm:NAME on every stimulus a benchmark reads (from a folder of "
                    "images named by stimulus id, or the release's task-images_stimuli.h5), batched and deterministic, "
                    "streamed into the lake with provenance; a layer already extracted with the same provenance is skipped.",
    )
    add_lake_argument(extract)
    add_extract_options(extract)
    extract.add_argument("--list-layers", action="store_true", help="print the model's layers (name, module, width) and exit")
    extract.set_defaults(run=cmd_features_extract)

    ls = commands.add_parser("ls", help="feature sets in the lake: size, benchmark coverage, provenance")
    add_lake_argument(ls)
    ls.set_defaults(run=cmd_features_ls)


def add_extract_options(parser: argparse.ArgumentParser, layers_help: str = "") -> None:
    """The model, weights, images and run options shared by ``features extract`` and ``sweep``."""
    from laion_lake.models.extract import DEFAULT_BATCH_SIZE, DEFAULT_LOADERS, DEFAULT_THREADS

    parser.add_argument("--model", required=True, help="torchvision:NAME or timm:NAME (e.g. torchvision:alexnet)")
    parser.add_argument("--weights", default="none", help="none (random, seeded; the default), default (the library's pretrained) or a state-dict PATH")
    parser.add_argument("--layers", help=layers_help or "comma-separated module names or glob patterns (e.g. features.5,classifier.*)")
    parser.add_argument("--images", help="folder of images named by stimulus id, or the release's stimuli/task-images_stimuli.h5")
    parser.add_argument("--metadata", help="the .h5's metadata table (default: task-images_metadata.csv beside it)")
    parser.add_argument("--benchmark", action="append", help="extract the stimuli of this benchmark (repeatable; default the 24 leaderboard ones)")
    parser.add_argument("--name", help="the lake's model name (default LIBRARY:NAME@WEIGHTS, e.g. torchvision:alexnet@random-s0)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--device", help="cpu or cuda (default: a GPU when torch sees one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights (--weights none)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help=f"torch threads, fixed for bit-identical output (default {DEFAULT_THREADS})")
    parser.add_argument("--loaders", type=int, default=DEFAULT_LOADERS, help=f"threads preparing the next batch of images (default {DEFAULT_LOADERS})")
    parser.add_argument("--overwrite", action="store_true", help="replace feature sets of the same name whatever their provenance")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


__all__ = ["add_commands", "add_extract_options", "describe_extraction", "describe_feature_sets"]
