"""``laion-lake log`` and ``laion-lake tag``: the lake's commits, and names for the ones to cite."""

from __future__ import annotations

import argparse
import json
from typing import Any

from laion_lake.cli_common import add_lake_argument


def cmd_log(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake

    entries = open_lake(args.lake, args.storage_options).log()[: args.limit or None]
    if args.format == "json":
        print(json.dumps(entries, indent=1))
        return 0
    for entry in entries:
        tags = f" ({', '.join('tag: ' + t for t in entry['tags'])})" if entry["tags"] else ""
        print(f"{entry['snapshot']}  {entry['written_at']}  {entry['message']}{tags}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake

    lake = open_lake(args.lake, args.storage_options, snapshot=args.snapshot)
    snapshot = lake.tag(args.name)
    print(f"tagged {snapshot} of {lake.url} as {args.name!r}; read it with open_lake({lake.url!r}, tag={args.name!r})")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from laion_lake.lake.gc import gc_lake, parse_duration

    older_than = parse_duration(args.older_than) if args.older_than is not None else None
    print(gc_lake(args.lake, args.storage_options, older_than, dry_run=args.dry_run).line())
    return 0


def add_commands(commands: Any) -> None:
    """Register ``log`` and ``tag`` on the ``laion-lake`` sub-command parser."""
    log = commands.add_parser("log", help="the lake's commits (snapshots), newest first, with their tags")
    add_lake_argument(log)
    log.add_argument("--limit", type=int, default=0, help="show at most this many (default all)")
    log.add_argument("--format", choices=("text", "json"), default="text")
    log.set_defaults(run=cmd_log)

    tag = commands.add_parser("tag", help="name a snapshot (default the head of main), e.g. a release version to cite")
    add_lake_argument(tag)
    tag.add_argument("name", help="tag name, e.g. v1.0")
    tag.add_argument("--snapshot", help="snapshot id to tag (default the head of main; see `laion-lake log`)")
    tag.set_defaults(run=cmd_tag)

    gc = commands.add_parser(
        "gc",
        help="delete chunks no commit references (left by failed or killed writes); every snapshot and tag stays",
        description="Delete the chunks and manifests that no branch or tag references. Snapshots are never expired. "
        "On local storage gc waits for writes in flight and then collects everything unreferenced; on S3 it keeps "
        "objects younger than --older-than (default 1d), so writes in flight elsewhere are safe. Unfinished resumable "
        "ingests found on this machine keep their chunks.",
    )
    add_lake_argument(gc)
    gc.add_argument("--older-than", metavar="DURATION", help="keep objects younger than this, e.g. 90s, 2h, 1d (default: 0 local, 1d on S3)")
    gc.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    gc.set_defaults(run=cmd_gc)


def validate_lines(lake: Any, deep: bool) -> tuple[list[str], int]:
    """``validate``'s report lines and the number of problems (plain: open and schema-check every
    store, check the lake is whole; deep: also read every chunk and recompute every checksum)."""
    from laion_lake.lake.check import check_whole, read_every_chunk, verify_store

    lines, problems = [], 0
    checks: list[tuple[str, Any]] = [("stimuli", lambda: lake.stimuli)]
    if lake.pools:
        checks.append(("splits", lambda: lake.split_names(lake.pools[0])))
    checks += [(f"subject {s}", lambda s=s: lake.subject(s)) for s in lake.subjects]
    # feature sets by manifest key (escaped: resnet%2F50/fc and resnet/50%2Ffc stay apart)
    checks += [(f"features {key}", lambda e=e: lake.features(e["model"], e["layer"])) for key, e in sorted(lake.manifest["features"].items())]
    for label, check in checks:
        try:
            check()
        except Exception as error:  # report every store, then fail
            problems += 1
            lines.append(f"INVALID {label}: {' '.join(str(error).split())}")
            continue
        damage = []
        if deep:
            if label.startswith("subject "):
                damage = verify_store(lake, "subject", label.removeprefix("subject "))
            elif label.startswith("features "):
                damage = verify_store(lake, "features", label.removeprefix("features "))
            else:
                damage = read_every_chunk(lake, label)
        if damage:
            problems += 1
            lines += [f"DAMAGED {label}: {d}" for d in damage]
        else:
            lines.append(f"ok      {label}")
    whole = check_whole(lake)
    lines += [f"NOT WHOLE {p}" for p in whole]
    lines.append(f"{len(checks) - problems} of {len(checks)} stores valid{' (every chunk read, checksums recomputed)' if deep else ''}"
                 f"{'; the lake is not whole' if whole else ''} (snapshot {lake.snapshot_id})")
    return lines, problems + len(whole)
