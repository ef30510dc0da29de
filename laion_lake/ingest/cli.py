"""``laion-lake ingest`` and ``laion-lake import-brainscore``: register with :func:`add_commands`.

Exit codes follow laion_lake.cli: 0 success, 1 verification found differences, 2 bad input
(raised errors are reported by the main entry point).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from laion_lake.cli_common import add_lake_argument

EXIT_OK, EXIT_DIFFERENCES = 0, 1


def cmd_ingest(args: argparse.Namespace) -> int:
    from laion_lake.ingest import ingest_release

    started = time.perf_counter()
    report = ingest_release(
        args.src,
        args.lake,
        storage_options=args.storage_options,
        subjects=args.subjects,
        scope=args.scope,
        overwrite=args.overwrite,
        verify=args.verify,
        progress=not args.quiet,
        splits_dir=args.splits,
    )
    print(report.summary())
    print(f"done in {time.perf_counter() - started:.1f} s")
    if args.verify and report.differences:
        print(f"verify: {len(report.differences)} difference(s) between the lake and the source")
        return EXIT_DIFFERENCES
    return EXIT_OK


def cmd_import_brainscore(args: argparse.Namespace) -> int:
    from laion_lake.ingest import import_brainscore_assembly

    report = import_brainscore_assembly(
        args.file,
        args.lake,
        storage_options=args.storage_options,
        overwrite=args.overwrite,
        unknown_region=args.unknown_region,
        splits_dir=args.splits,
    )
    print(report.summary())
    return EXIT_OK


def add_commands(subparsers: Any) -> None:
    """Add ``ingest`` and ``import-brainscore`` to an argparse subparsers object (``set_defaults(run=...)``)."""
    ingest = subparsers.add_parser(
        "ingest",
        help="ingest a LAION-fMRI release folder (SPEC section 5) into a lake, resumably",
        description=(
            "Read derivatives/glmsingle-tedana and derivatives/rois under SRC and write one Zarr store per "
            "subject, streaming one session at a time; each voxel is z-scored within its session. An "
            "interrupted ingest resumes where it stopped (sessions already written are skipped); subjects "
            "already complete are skipped unless --overwrite. Then the stimulus table is rebuilt from the "
            "trials and the published splits are written."
        ),
    )
    ingest.add_argument("src", metavar="SRC", help="release root (the folder that holds derivatives/)")
    ingest.add_argument("lake", metavar="LAKE_URL", help="lake URL: a local path, s3://bucket/prefix, memory://name")
    ingest.add_argument("--subjects", nargs="+", metavar="SUB", help="subjects to ingest, e.g. sub-01 sub-03 (default: all in SRC)")
    ingest.add_argument(
        "--scope", choices=("rois", "brain"), default="rois",
        help="voxels to keep: the visual ROIs V1, V2, V3, V4, IT (default) or the whole brain mask (others as region 'other')",
    )
    ingest.add_argument("--verify", action="store_true", help="re-read the source afterwards and compare every stored value, bit for bit")
    ingest.add_argument("--overwrite", action="store_true", help="rewrite subjects already in the lake, and restart interrupted ones")
    ingest.add_argument("--splits", metavar="DIR", help="published split JSONs (<pool>/<name>.json); default SRC/splits if present")
    add_lake_argument(ingest, positional=False)
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.set_defaults(run=cmd_ingest)

    brainscore = subparsers.add_parser(
        "import-brainscore",
        help="import a NetCDF assembly as Brain-Score packages LAION-fMRI",
        description=(
            "Read a presentation x neuroid DataArray (coords stimulus_id, session, run, beta_index, repetition; "
            "subject_id, region, roi, voxel_index_in_brain_mask, nc_4rep, nc_12rep, nc_allrep) and write one "
            "store per subject; ncsnr is derived from nc_12rep, x/y/z are 0 unless the file has them."
        ),
    )
    brainscore.add_argument("file", metavar="FILE", help="the .nc file (NetCDF3; NetCDF4 needs h5netcdf)")
    brainscore.add_argument("lake", metavar="LAKE_URL", help="lake URL: a local path, s3://bucket/prefix, memory://name")
    brainscore.add_argument("--overwrite", action="store_true", help="replace subjects already in the lake")
    brainscore.add_argument("--unknown-region", choices=("error", "other"), default="error", help="voxels of an unknown region: fail (default) or keep as 'other'")
    brainscore.add_argument("--splits", metavar="DIR", help="published split JSONs to write after the stimulus table")
    add_lake_argument(brainscore, positional=False)
    brainscore.set_defaults(run=cmd_import_brainscore)
