"""``laion-lake maps LAKE --model M --layer L --benchmark ID --out DIR [--diff M2/L2]``: per-voxel r brain maps."""

from __future__ import annotations

import argparse
from typing import Any

from laion_lake.cli_common import add_lake_argument

EXIT_OK = 0


def cmd_maps(args: argparse.Namespace) -> int:
    from laion_lake.lake import open_lake
    from laion_lake.maps.write import write_maps

    lake = open_lake(args.lake, args.storage_options)
    maps = write_maps(lake, args.model, args.layer, args.benchmark, args.out, diff=args.diff, png=not args.no_png)
    what = "r difference" if args.diff else "r"
    for m in maps:
        print(f"{m.nifti}  shape {m.shape}  {m.n_voxels} voxels  median {what} {m.median:+.3f}  max {m.maximum:+.3f}"
              + (f"  + {m.png.name}" if m.png else ""))
    print(f"grid: {maps[0].grid_source}" if maps else "no maps written")
    return EXIT_OK


def add_commands(subparsers: Any) -> None:
    """Register ``maps`` on the main parser's subparsers."""
    from laion_lake.benchmarks import aliases_text

    parser = subparsers.add_parser(
        "maps",
        help="brain maps of per-voxel r: one NIfTI per subject in its own grid, plus PNG views (needs the maps extra)",
        description="Writes each subject's per-voxel Pearson r of a feature set on a regression benchmark as a NIfTI volume "
                    "(NaN where no voxel was scored), read from the arrays stored with the score records (`laion-lake score`); "
                    "without a current record it scores in this process and says so. " + aliases_text() + ".",
    )
    add_lake_argument(parser)
    parser.add_argument("--model", required=True)
    parser.add_argument("--layer", required=True)
    parser.add_argument("--benchmark", required=True, metavar="ID", help="a regression benchmark id or key")
    parser.add_argument("--out", required=True, help="folder for the .nii.gz and .png files")
    parser.add_argument("--diff", metavar="MODEL/LAYER", help="map r of --model/--layer minus r of this feature set")
    parser.add_argument("--no-png", action="store_true", help="NIfTI files only")
    parser.set_defaults(run=cmd_maps)


__all__ = ["add_commands", "cmd_maps"]
