"""``laion-lake``: the one command-line entry point.

Exit codes: 0 success; 1 a failure of the work itself (a work unit failed on a worker: the summary
names each unit as model/layer/subject/pool/split); 2 bad usage or bad input (a missing lake, an
unknown feature set, benchmark or subject, a bad cluster setting, a file that fails validation),
found before anything starts; 130 interrupted; 141 the output's reader went away.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from laion_lake.cli_common import EXIT_BROKEN_PIPE, add_lake_argument, exit_without_finalizing

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = """exit codes:
  0    success
  1    a failure of the work itself: the summary names each failed unit (model/layer/subject/pool/split)
  2    bad usage or bad input (unknown lake, feature set, benchmark, subject, setting), found before anything starts
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (`laion-lake log LAKE | head`)"""


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
    from laion_lake.lake.cli import validate_lines

    lines, problems = validate_lines(open_lake(args.lake, args.storage_options), deep=args.deep)
    print("\n".join(lines))
    return EXIT_OK if problems == 0 else EXIT_USAGE


def leaderboard(rows: Sequence[dict[str, Any]]) -> str:
    from laion_lake.scoring.table import leaderboard_text

    return leaderboard_text(rows)


def _prefect_environment(verbose: bool) -> None:
    """Prefect without a server: an ephemeral API in a local PREFECT_HOME; a quiet terminal unless --verbose.

    Only the terminal is quieted (Prefect's console handler, through its ``PREFECT_LOGGING_<path>``
    override of logging.yml): the flow's INFO logs (unit summary, failed units) still reach the
    Prefect API, so a server's UI shows them.
    """
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _cluster_config(args: argparse.Namespace) -> dict[str, Any]:
    """--scheduler / --workers / --memory-limit as cluster settings (checked by the pre-flight)."""
    if getattr(args, "scheduler", None):
        if args.workers is not None:
            raise ValueError("--workers sizes a local cluster; it cannot go with --scheduler")
        return {"address": args.scheduler}
    config: dict[str, Any] = {"memory_limit": args.memory_limit}
    if args.workers is not None:
        config["workers"] = args.workers
    return config


def _preflight(args: argparse.Namespace, feature_sets: list[str] | None, benchmarks: list[str] | None) -> tuple[Any, Any]:
    """Everything checked here, before Prefect or Dask start: the plan and the cluster settings.

    Credentials in --storage-options move to this process's environment (the local cluster's
    workers inherit it), so that no flow parameter holds them.
    """
    import os

    from laion_lake.dask import plan
    from laion_lake.preflight import check_workers, credentials_to_environment, parse_memory_limit

    if args.workers is not None:
        check_workers(args.workers, "--workers")
    parse_memory_limit(args.memory_limit)
    work = plan(args.lake, feature_sets, benchmarks, args.storage_options)
    if args.in_process:
        return work, None
    args.storage_options = credentials_to_environment(args.storage_options, os.environ)
    from flows.cluster import check_reachable, cluster_settings

    settings = cluster_settings(_cluster_config(args))
    check_reachable(settings)
    return work, settings


def _run_score(args: argparse.Namespace, feature_sets: list[str] | None, benchmarks: list[str] | None) -> dict[str, Any]:
    if args.in_process:
        work, settings = _preflight(args, feature_sets, benchmarks)
    else:
        from flows.server import start as start_server, stop as stop_server

        _prefect_environment(args.verbose)  # before anything imports Prefect: it reads its settings then
        # Prefect's temporary server boots (~7 s) while the pre-flight runs; stopped at once if not needed
        start_server()
        try:
            work, settings = _preflight(args, feature_sets, benchmarks)
        except BaseException:
            stop_server(wait=False)
            raise
    request = work.request
    if args.in_process:
        from laion_lake.lake import open_lake
        from laion_lake.scoring import score_many

        lake = open_lake(args.lake, args.storage_options)
        scores = score_many(lake, request.feature_sets, request.benchmarks, progress=True)
        rows = [{"model": m, "layer": l, "benchmark": b, "value": float(s), "error": s.attrs["error"]} for (m, l, b), s in scores.items()]
        return {"units": None, "computed": None, "skipped": None, "scores": rows}
    from laion_lake.dask import done_units

    done = set() if args.force else done_units(work)
    if len(done) == len(work.units):
        stop_server(wait=False)
        return _aggregate_here(work)
    import distributed  # noqa: F401 - here, not in the cluster's start thread, while Prefect imports in this one
    from flows.cluster import prestart
    from flows.server import serving

    # the local cluster (its workers importing what units need) starts while this process imports Prefect and the flows
    prestart(settings)
    import flows.run
    import flows.score

    flows.run.SHOW_PROGRESS = True
    _quiet_flow_failures()
    with serving():
        return flows.score.score_flow(request.lake_url, request.feature_set_names, list(request.benchmarks), args.storage_options, args.force, settings)


def _aggregate_here(work: Any) -> dict[str, Any]:
    """Every unit is in the lake already: aggregate here, no Prefect run, no cluster (seconds)."""
    from laion_lake.scoring.runner import aggregate_by_key

    rows = [aggregate_by_key(work.request.lake_url, work.storage_options, *aggregate) for aggregate in work.aggregates]
    return {"units": len(work.units), "computed": 0, "skipped": len(work.units), "failed": 0, "scores": rows}


def _quiet_flow_failures() -> None:
    """A failed unit is summarized once (exit 1): drop the engine's traceback of the same error."""
    import logging

    from laion_lake.dask import UnitsFailedError

    def keep(record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UnitsFailedError):
            return False
        return "UnitsFailedError" not in str(record.msg)

    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(keep)


def list_headline() -> list[str]:
    from laion_lake.benchmarks import list_benchmarks

    return list_benchmarks()


def _print_run(report: dict[str, Any], started: float) -> None:
    if report.get("units") is not None:
        failed = f", {report['failed']} failed" if report.get("failed") else ""
        print(f"{report['units']} work units: {report['computed']} computed, {report['skipped']} skipped (already in the lake){failed}")
    print(f"{len(report['scores'])} scores in {time.perf_counter() - started:.1f} s\n")
    print(leaderboard(report["scores"]))


def cmd_score(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.layer and not args.model:
        raise ValueError("--layer needs --model (a layer name alone is ambiguous across models)")
    feature_sets = None
    if args.model:
        feature_sets = [f"{args.model}/{args.layer}" if args.layer else args.model]
    _print_run(_run_score(args, feature_sets, args.benchmark or None), started)
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    _print_run(_run_score(args, args.models or None, args.benchmark or None), started)
    return EXIT_OK


def cmd_scores(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake
    from laion_lake.scoring.records import load_scores

    from laion_lake.benchmarks import canonical_identifier

    lake = open_lake(args.lake, args.storage_options)
    every = load_scores(lake)
    if every.stale:
        print(f"{every.stale} stale score record(s) left out (computed from inputs the lake has since replaced)", file=sys.stderr)
    if not every:
        if _filters(args):  # a filter that matches nothing is an error, records or not
            raise ValueError(f"no score records match {_filters(args)}: the lake holds no score records yet; run `laion-lake score` first")
        print("no scores recorded yet; run `laion-lake score` first")
        return EXIT_OK
    benchmark = canonical_identifier(args.benchmark) if args.benchmark else None  # Zerbe2026_fmri.* finds LAION_fMRI.* records
    scores = load_scores(lake, args.model, args.layer, benchmark)
    if not scores:
        raise ValueError(f"no score records match {_filters(args)}; {_recorded(every)}")
    rows = [
        {"model": s.attrs["model"], "layer": s.attrs["layer"], "benchmark": s.attrs["benchmark_key"], "value": float(s),
         "error": s.attrs["error"], "raw": s.attrs["raw"], "ceiling": s.attrs["ceiling"], "convention": s.attrs["convention"]}
        for s in scores
    ]
    if args.format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    elif args.format == "json":
        print(json.dumps(rows, indent=1))
    else:
        print(leaderboard(rows))
    return EXIT_OK


def _filters(args: argparse.Namespace) -> str:
    return " ".join(f"--{name} {value}" for name in ("model", "layer", "benchmark") if (value := getattr(args, name)) is not None)


def _recorded(scores: Sequence[Any]) -> str:
    """What the lake's records hold, for a filter that matched nothing."""
    from laion_lake.errors import describe_ids

    feature_sets = sorted({f"{s.attrs['model']}/{s.attrs['layer']}" for s in scores})
    benchmarks = sorted({s.attrs["benchmark_key"] for s in scores})
    return f"the records hold feature sets {describe_ids(feature_sets, 12)} and benchmarks {describe_ids(benchmarks, 6)}"


def cmd_demo(args: argparse.Namespace) -> int:
    from laion_lake.synthetic import make_lake

    started = time.perf_counter()
    print(f"1/2 building a {args.scale} synthetic lake in {args.lake} (5 subjects, 4 synthetic models) ...")
    lake = make_lake(args.lake, scale=args.scale, seed=0, overwrite=True)
    print(f"    done in {time.perf_counter() - started:.1f} s\n")
    print(describe_lake(lake))
    print("\n2/2 scoring every model on the 24 leaderboard benchmarks: Prefect flow, local Dask cluster (2 workers) ...")
    args.lake, args.storage_options, args.force = lake.url, None, False
    _print_run(_run_score(args, None, None), started)
    print(DEMO_LEGEND)
    return EXIT_OK


DEMO_LEGEND = """
How to read this: each cell is the ceiled score (brainscore convention: median voxel r, squared, over
the median noise ceiling) averaged over the 5 subjects, ± the bootstrap error over subjects.
The synthetic models are built so that the ranking is known: ground_truth/latent (what the voxels
encode) scores highest everywhere, early_model/conv2 beats late_model/fc6 in V1 and V2, late beats
early in V4 and IT, and random_model/fc scores ~0. `laion-lake scores ./lake` prints it again from
the lake's records; `laion-lake score ./lake --model M --layer L` scores one feature set."""


# sub-command -> the module that registers it (tests/flows/test_cli_lazy.py checks the table against the modules)
COMMAND_MODULES = {
    "features": "laion_lake.features.cli",
    "ingest": "laion_lake.ingest.cli",
    "import-brainscore": "laion_lake.ingest.cli",
    "log": "laion_lake.lake.cli",
    "tag": "laion_lake.lake.cli",
    "gc": "laion_lake.lake.cli",
    "report": "laion_lake.report.cli",
    "compare": "laion_lake.scoring.compare_cli",
    "maps": "laion_lake.maps.cli",
    "sweep": "laion_lake.models.cli",
    "commit-layers": "laion_lake.models.cli",
}
CORE_COMMANDS = ("synth", "ls", "validate", "score", "batch", "scores", "demo")


def _command_modules(command: str | None) -> list[str]:
    """The modules to import for ``command``: none for a core command, its own, or all (help, unknown)."""
    if command in CORE_COMMANDS:
        return []
    if command in COMMAND_MODULES:
        return [COMMAND_MODULES[command]]
    return list(dict.fromkeys(COMMAND_MODULES.values()))


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not an option), or None."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with ``command``, only that sub-command's module is imported (None: all)."""
    description = "Score vision models against LAION-fMRI, kept as a Zarr data lake."
    if command is None:  # the full help (every module is imported for it anyway): name the aliases too
        from laion_lake.benchmarks import aliases_text

        description += f"\n\n{aliases_text()}."
    parser = argparse.ArgumentParser(
        prog="laion-lake", description=description, epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    synth = commands.add_parser("synth", help="write a synthetic LAION-fMRI lake with known ground truth")
    add_lake_argument(synth)
    synth.add_argument("--scale", choices=("tiny", "small", "full"), default="small", help="size (full = the real dataset's counts)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace stores that already exist")
    synth.set_defaults(run=cmd_synth)

    ls = commands.add_parser("ls", help="what the lake holds")
    add_lake_argument(ls)
    ls.set_defaults(run=cmd_ls)

    validate = commands.add_parser("validate", help="open every store and check it against its schema (--deep: read every chunk, recompute checksums)")
    add_lake_argument(validate)
    validate.add_argument("--deep", action="store_true", help="read every chunk and recompute every store's content checksum; name each damaged store, variable and chunk")
    validate.set_defaults(run=cmd_validate)

    def add_run_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--benchmark", action="append", help="benchmark id or key (repeatable); default the 24 leaderboard ids "
                            "(Zerbe2026_fmri.* and Zerbe2026_fmri_persubject.* are aliases of LAION_fMRI.* and LAION_fMRI_persubject.*)")
        parser.add_argument("--force", action="store_true", help="recompute units that already have a record")
        parser.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a local cluster)")
        parser.add_argument("--workers", type=int, help="worker processes of the local cluster, >= 1 (default 2)")
        parser.add_argument("--memory-limit", default="4GiB", help="memory limit per local worker, e.g. 4GiB (default 4GiB)")
        parser.add_argument("--in-process", action="store_true", help="no Prefect, no cluster: score here with a progress bar (no records written)")
        parser.add_argument("--verbose", action="store_true", help="show Prefect's and Dask's INFO logs")

    score = commands.add_parser("score", help="score one feature set (or all) on benchmarks through the score flow", epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_lake_argument(score)
    score.add_argument("--model", help="model name (default: every feature set in the lake; without --layer: every layer of it)")
    score.add_argument("--layer", help="layer name (needs --model)")
    add_run_options(score)
    score.set_defaults(run=cmd_score)

    batch = commands.add_parser("batch", help="score many models on all benchmarks on one cluster, then print a summary", epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_lake_argument(batch)
    batch.add_argument("--models", nargs="*", help="models (every layer) or model/layer names to score (default: every feature set in the lake)")
    add_run_options(batch)
    batch.set_defaults(run=cmd_batch)

    scores = commands.add_parser("scores", help="the score records in the lake, as a table")
    add_lake_argument(scores)
    scores.add_argument("--model")
    scores.add_argument("--layer")
    scores.add_argument("--benchmark", help="identifier or key")
    scores.add_argument("--format", choices=("table", "csv", "json"), default="table")
    scores.set_defaults(run=cmd_scores)

    # each other sub-command's module is imported only when it runs (or for --help): they pull in
    # zarr, xarray, dask, prefect, so importing all of them made every command, --version too, pay ~4 s
    for module in _command_modules(command):
        importlib.import_module(module).add_commands(commands)

    demo = commands.add_parser("demo", help="the main job on the embedded default: build a small lake, score it, print a leaderboard")
    demo.add_argument("--lake", default="./lake", help="where to build the demo lake (default ./lake)")
    demo.add_argument("--scale", choices=("tiny", "small"), default="small")
    add_run_options(demo)
    demo.set_defaults(run=cmd_demo)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("laion-lake")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _one_line(error: BaseException) -> str:
    """An error as the CLI prints it: its message, with API wording turned into the CLI's flags."""
    text = str(error)
    for api, flag in (("overwrite=True", "--overwrite"), ("force=True", "--force")):
        if flag not in text:  # the lake's own messages name both already
            text = text.replace(api, flag)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    # no sub-command and no --help: only --version (or a usage error) can follow, which needs none of them
    lean = command is None and not {"-h", "--help"} & set(argv)
    args = build_parser("synth" if lean else command).parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        # looked up here, not imported at the top: laion_lake.dask costs seconds, and a unit failure can
        # only come from it once a command has imported it
        units_failed = getattr(sys.modules.get("laion_lake.dask"), "UnitsFailedError", None)
        if units_failed is not None and isinstance(error, units_failed):
            print(f"laion-lake {args.command}: {error}", file=sys.stderr)
            return EXIT_FAILURE
        from laion_lake.errors import LakeError
        from storage_schemas import SchemaError

        if isinstance(error, (LakeError, SchemaError, ValueError, FileNotFoundError)):
            print(f"laion-lake {args.command}: error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        raise


def run() -> NoReturn:
    """The console script: :func:`main`, then exit without interpreter finalization (see its reason)."""
    try:
        code = main()
    except SystemExit as stop:  # argparse's --help, --version and usage errors
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or EXIT_OK
        else:
            print(stop.code, file=sys.stderr)
            code = EXIT_FAILURE
    except BrokenPipeError:
        # the reader went away (`laion-lake log LAKE | head`): stop quietly, as git does, with
        # stdout pointed at /dev/null so the final flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    except BaseException:  # what CPython would print and return for an uncaught exception
        traceback.print_exc()
        code = EXIT_FAILURE
    exit_without_finalizing(code)


if __name__ == "__main__":
    run()
