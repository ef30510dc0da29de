"""Ingest wall time and peak memory for the release factory's largest release, from a folder and from S3.

    .venv/bin/python benchmarks/bench_ingest.py [--size large] [--workdir DIR]

Writes the factory's release (tests/ingest/release_factory.py, 5 subjects x 3 sessions of ~1,100
trials, as many as a real session), then, each in a child process whose peak RSS GNU time reports:

1. ``laion-lake ingest SRC LAKE`` from the local folder;
2. ``laion-lake ingest s3://BUCKET/PREFIX LAKE --source-storage-options '{"anon": true, ...}'`` from a
   moto S3 server on 127.0.0.1 (HTTP, public-read bucket policy, as the real bucket);
3. what a user would write instead (as Brain-Score's packaging does): every session's statmap loaded
   whole with nibabel, the ROI voxels kept, all sessions held, then z-scored.

It prints the ratios measured in this one run: peak RSS of each against the release's size and
against one session's betas, and S3's wall time against the folder's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAIVE = r"""
import sys, numpy as np, nibabel as nib
from pathlib import Path
root = Path(sys.argv[1])
for sub in sorted((root / "derivatives/glmsingle-tedana").glob("sub-*")):
    s = sub.name
    masks = [np.asarray(nib.load(str(p)).dataobj) > 0 for p in sorted((root / "derivatives/rois" / s).rglob("*_mask.nii.gz"))]
    brain = np.asarray(nib.load(str(next(sub.glob("*meanR2gt15mask_mask.nii.gz")))).dataobj) > 0
    keep = np.any(masks, axis=0) & brain
    sessions = []
    for statmap in sorted(sub.glob("ses-*/func/*_statmap.nii.gz")):
        data = nib.load(str(statmap)).get_fdata()  # the whole 4D image, float64
        sessions.append(data[keep].T.astype(np.float32))
        del data
    z = [(b - np.nanmean(b, 0)) / np.nanstd(b, 0) for b in sessions]
    betas = np.nan_to_num(np.concatenate(z))
"""


GNU_TIME = Path("/usr/bin/time")


def run_child(command: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """(wall seconds, peak RSS bytes, exit code) of one child process.

    Through GNU time when it is there: a child forked from this (large) process would report this
    process's RSS as its own peak (Linux keeps the high-water mark across fork and exec); GNU time
    is small, so its child's peak is the command's own.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        wrapped = [str(GNU_TIME), "-f", "%M", "-o", report.name, *command] if GNU_TIME.exists() else command
        started = time.perf_counter()
        process = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
        wall = time.perf_counter() - started
        if process.returncode != 0:
            print(process.stderr.decode()[-2000:], file=sys.stderr)
        if GNU_TIME.exists():
            peak = int(report.read().split()[-1]) * 1024
        else:
            import resource

            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # an upper bound
    return wall, peak, process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="large", choices=("tiny", "large"))
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the release and lakes (default: a temp folder)")
    args = parser.parse_args()

    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log

    from tests.ingest import release_factory as factory

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    src = work / "release"
    if not (src / "derivatives").is_dir():
        started = time.perf_counter()
        factory.write_release(src, size=args.size)
        print(f"wrote the {args.size} release in {time.perf_counter() - started:.1f} s: {src}")
    files = [p for p in src.rglob("*") if p.is_file()]
    release_bytes = sum(p.stat().st_size for p in files)
    statmaps = sorted(src.rglob("*_statmap.nii.gz"))
    statmaps = [p for p in statmaps if "SingletrialBetas" in p.name]
    spec = factory.SIZES[args.size]
    import nibabel as nib

    header = nib.load(str(statmaps[0]))
    n_volumes = header.shape[3]
    raw_session_bytes = int(header.dataobj.dtype.itemsize * n_volumes * int(__import__("numpy").prod(header.shape[:3])))
    print(f"release: {len(factory.SUBJECTS)} subjects x {len(spec.sessions)} sessions, grid {spec.shape}, {n_volumes} trials in the first session")
    print(f"  {len(files)} files, {release_bytes / 1e6:.1f} MB on disk; one statmap {statmaps[0].stat().st_size / 1e6:.1f} MB gzipped, {raw_session_bytes / 1e6:.1f} MB as float32")

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "laion_lake.cli", "ingest"]
    results = {}
    local_lake = work / f"lake-local-{uuid.uuid4().hex[:6]}"
    results["folder"] = run_child([*cli, str(src), str(local_lake), "--quiet"], env)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket = f"release-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        started = time.perf_counter()
        factory.upload_release(src, f"s3://{bucket}/laion-fmri", {"endpoint_url": endpoint, "key": "testing", "secret": "testing"})
        read = ["s3:GetObject", "s3:HeadObject"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": read, "Resource": f"arn:aws:s3:::{bucket}/*"}]}
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        print(f"uploaded to moto in {time.perf_counter() - started:.1f} s: s3://{bucket}/laion-fmri")
        options = json.dumps({"anon": True, "endpoint_url": endpoint})
        s3_lake = work / f"lake-s3-{uuid.uuid4().hex[:6]}"
        results["S3 (moto)"] = run_child([*cli, f"s3://{bucket}/laion-fmri", str(s3_lake), "--quiet", "--source-storage-options", options], env)
    finally:
        server.stop()
    results["nibabel, whole files (naive)"] = run_child([sys.executable, "-c", NAIVE, str(src)], env)

    import numpy as np

    from laion_lake.lake import open_lake

    lake = open_lake(str(local_lake))
    n_voxels = lake.subject(lake.subjects[0]).sizes["neuroid"]
    session_betas = n_volumes * n_voxels * 4
    print(f"one session's betas of the ROI voxels: {n_volumes} x {n_voxels} float32 = {session_betas / 1e6:.1f} MB")
    print()
    print(f"{'ingest from':<32}{'wall s':>9}{'peak RSS MB':>13}{'RSS / release':>15}{'exit':>6}")
    for name, (wall, rss, code) in results.items():
        print(f"{name:<32}{wall:>9.1f}{rss / 1e6:>13.1f}{rss / release_bytes:>15.2f}{code:>6}")
    wall_s3, wall_folder = results["S3 (moto)"][0], results["folder"][0]
    print()
    print(f"S3 / folder wall time: {wall_s3 / wall_folder:.2f}")
    print(f"peak RSS, folder / naive: {results['folder'][1] / results['nibabel, whole files (naive)'][1]:.2f}; S3 / naive: {results['S3 (moto)'][1] / results['nibabel, whole files (naive)'][1]:.2f}")
    a, b = open_lake(str(local_lake)), open_lake(str(s3_lake))
    same = all(np.array_equal(a.subject(s)["betas"].values, b.subject(s)["betas"].values) for s in a.subjects)
    print(f"lakes from the folder and from S3 identical: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
