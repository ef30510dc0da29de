"""``laion-lake``: the one command-line entry point.

Exit codes: 0 success, 1 a failure of the work itself, 2 bad usage or bad input (a missing lake,
an unknown subject, a file that fails validation).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _storage_options(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"--storage-options must be JSON: {error}") from error


def _add_lake_argument(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    if positional:
        parser.add_argument("lake", help="lake URL: a local path, s3://bucket/prefix, memory://name")
    parser.add_argument(
        "--storage-options",
        type=_storage_options,
        default=None,
        help='fsspec options as JSON, e.g. \'{"endpoint_url": "http://127.0.0.1:9000"}\'',
    )


def cmd_synth(args: argparse.Namespace) -> int:
    from laion_lake.synthetic import make_lake

    started = time.perf_counter()
    lake = make_lake(args.lake, scale=args.scale, seed=args.seed, storage_options=args.storage_options, overwrite=args.overwrite)
    print(f"wrote a {args.scale} synthetic lake (seed {args.seed}) to {lake.url} in {time.perf_counter() - started:.1f} s")
    print(describe_lake(lake))
    return EXIT_OK


def describe_lake(lake: Any) -> str:
    """A human summary of what the lake holds."""
    manifest = lake.manifest
    lines = [f"lake {lake.url}"]
    provenance = manifest.get("provenance", {})
    if provenance:
        lines.append("  provenance: " + ", ".join(f"{k}={v}" for k, v in sorted(provenance.items())))
    if "stimuli" in manifest:
        table = lake.stimuli
        shared = table["shared"].values
        lines.append(
            f"  stimuli: {table.sizes['stimulus_id']:,} ({int(shared.sum()):,} shared, {int((~shared).sum()):,} unique; "
            f"{int((table['ood_category'].values != '').sum())} OOD in {len(set(table['ood_category'].values) - {''})} categories)"
        )
    lines.append(f"  pools: {', '.join(lake.pools) or '-'}")
    if lake.pools:
        lines.append(f"  splits per pool: {', '.join(n for n in lake.split_names(lake.pools[0]) if not n.startswith('ood_'))} (+ ood_<category>)")
    lines.append(f"  subjects: {len(lake.subjects)}")
    for subject, entry in sorted(manifest.get("subjects", {}).items()):
        regions = ", ".join(f"{r} {n:,}" for r, n in entry["regions"].items())
        lines.append(f"    {subject}: {entry['n_trials']:,} trials x {entry['n_neuroids']:,} voxels ({regions})")
    lines.append(f"  feature sets: {len(lake.feature_sets)}")
    for key, entry in sorted(manifest.get("features", {}).items()):
        lines.append(f"    {key}: {entry['n_stimuli']:,} stimuli x {entry['n_features']:,} features")
    return "\n".join(lines)


def cmd_ls(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake

    print(describe_lake(open_lake(args.lake, args.storage_options)))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake

    lake = open_lake(args.lake, args.storage_options)
    problems = 0
    checks: list[tuple[str, Callable[[], Any]]] = [("stimuli", lambda: lake.stimuli)]
    if lake.pools:
        checks.append(("splits", lambda: lake.split_names(lake.pools[0])))
    checks += [(f"subject {s}", lambda s=s: lake.subject(s)) for s in lake.subjects]
    checks += [(f"features {m}/{l}", lambda m=m, l=l: lake.features(m, l)) for m, l in lake.feature_sets]
    for label, check in checks:
        try:
            check()
            print(f"ok      {label}")
        except Exception as error:  # report every store, then fail
            problems += 1
            print(f"INVALID {label}: {error}")
    print(f"{len(checks) - problems} of {len(checks)} stores valid")
    return EXIT_OK if problems == 0 else EXIT_USAGE


def cmd_demo(args: argparse.Namespace) -> int:
    from laion_lake.synthetic import make_lake

    started = time.perf_counter()
    print(f"building a small synthetic lake in {args.lake} ...")
    lake = make_lake(args.lake, scale=args.scale, seed=0, overwrite=True)
    print(f"done in {time.perf_counter() - started:.1f} s\n")
    print(describe_lake(lake))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="laion-lake", description="Score vision models against LAION-fMRI, kept as a Zarr data lake.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    synth = commands.add_parser("synth", help="write a synthetic LAION-fMRI lake with known ground truth")
    _add_lake_argument(synth)
    synth.add_argument("--scale", choices=("tiny", "small", "full"), default="small", help="size (full = the real dataset's counts)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace stores that already exist")
    synth.set_defaults(run=cmd_synth)

    ls = commands.add_parser("ls", help="what the lake holds")
    _add_lake_argument(ls)
    ls.set_defaults(run=cmd_ls)

    validate = commands.add_parser("validate", help="open every store and check it against its schema")
    _add_lake_argument(validate)
    validate.set_defaults(run=cmd_validate)

    demo = commands.add_parser("demo", help="the main job on the embedded default (a local lake)")
    demo.add_argument("--lake", default="./lake", help="where to build the demo lake (default ./lake)")
    demo.add_argument("--scale", choices=("tiny", "small"), default="small")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from laion_lake.errors import LakeError
    from storage_schemas import SchemaError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (LakeError, SchemaError, ValueError, FileNotFoundError) as error:
        print(f"laion-lake {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
