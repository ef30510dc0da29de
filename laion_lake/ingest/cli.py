"""``laion-lake ingest`` and ``laion-lake import-brainscore``: register with :func:`add_commands`.

Exit codes follow laion_lake.cli: 0 success, 1 verification found differences, 2 bad input
(raised errors are reported by the main entry point).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from laion_lake.cli_common import add_lake_argument, json_options

RELEASE_FORMAT_DOC = "docs/release-format.md"

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
        source_storage_options=args.source_storage_options,
        verify_sample=None if args.verify_voxels == 0 else args.verify_voxels,
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
        help="ingest a LAION-fMRI release (local folder or s3://BUCKET/PREFIX) into a lake, resumably",
        description=(
            "Read derivatives/glmsingle-tedana and derivatives/rois under SRC (the layout is documented in "
            f"{RELEASE_FORMAT_DOC} of the laion-lake repository) and write one store per subject, streaming one "
            "session at a time straight from SRC (a local folder, or a bucket through fsspec: nothing is copied to "
            "local disk first); each voxel is z-scored within its session. An interrupted ingest resumes where it "
            "stopped (sessions already written are skipped); subjects already complete are skipped unless "
            "--overwrite. Then the stimulus table is rebuilt from the trials and the published splits, shipped with "
            "laion-lake, are written."
        ),
        epilog=f"Example: laion-lake ingest s3://BUCKET/PREFIX ./lake --source-storage-options '{{\"anon\": true}}'. Release layout: {RELEASE_FORMAT_DOC}.",
    )
    ingest.add_argument("src", metavar="SRC", help=f"release root (holds derivatives/; see {RELEASE_FORMAT_DOC}): a local folder or s3://BUCKET/PREFIX")
    ingest.add_argument("lake", metavar="LAKE_URL", help="lake URL: a local path, s3://bucket/prefix, memory://name")
    ingest.add_argument("--subjects", nargs="+", metavar="SUB", help="subjects to ingest, e.g. sub-01 sub-03 (default: all in SRC)")
    ingest.add_argument(
        "--scope", choices=("rois", "brain"), default="rois",
        help="voxels to keep: the visual ROIs V1, V2, V3, V4, IT (default) or the whole brain mask (others as region 'other')",
    )
    ingest.add_argument(
        "--verify", action="store_true",
        help="afterwards check the lake against SRC independently of the ingest code: every coordinate, and betas recomputed from the NIfTI for a sample of voxels",
    )
    ingest.add_argument("--verify-voxels", type=int, default=1024, metavar="N", help="voxels per subject whose betas --verify recomputes (default 1024; 0: all)")
    ingest.add_argument("--overwrite", action="store_true", help="rewrite subjects already in the lake, and restart interrupted ones")
    ingest.add_argument("--splits", metavar="DIR", help="split JSONs (<pool>/<name>.json) to write instead of the published ones shipped with laion-lake")
    add_lake_argument(ingest, positional=False)
    ingest.add_argument(
        "--source-storage-options", type=json_options, default=None, metavar="JSON",
        help='fsspec options of SRC as JSON, e.g. \'{"anon": true}\' for the public bucket',
    )
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
    brainscore.add_argument("file", metavar="FILE", help="the .nc file (NetCDF4/HDF5 as Brain-Score publishes it, or NetCDF3)")
    brainscore.add_argument("lake", metavar="LAKE_URL", help="lake URL: a local path, s3://bucket/prefix, memory://name")
    brainscore.add_argument("--overwrite", action="store_true", help="replace subjects already in the lake")
    brainscore.add_argument("--unknown-region", choices=("error", "other"), default="error", help="voxels of an unknown region: fail (default) or keep as 'other'")
    brainscore.add_argument("--splits", metavar="DIR", help="split JSONs to write instead of the published ones shipped with laion-lake")
    add_lake_argument(brainscore, positional=False)
    brainscore.set_defaults(run=cmd_import_brainscore)
