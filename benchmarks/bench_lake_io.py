"""Write and read one synthetic subject on local disk and on a moto S3 server; print the figures.

Prints, per backend: write throughput (MB/s of raw float32 betas), the subject store's size on
storage, read throughput for the whole subject, and the bytes read by a one-region query (V1,
repeats averaged) against the bytes of reading the whole subject, with their ratio. All figures of
one run come from the same data on the same machine.

    python benchmarks/bench_lake_io.py              # full scale (~1 GB of betas per subject)
    python benchmarks/bench_lake_io.py --scale small
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import uuid

import dask

from laion_lake.lake import create_lake, open_lake
from laion_lake.synthetic.dataset import SyntheticDataset

MB = 1024**2


def _store_size(lake, relative: str) -> int:
    fs = lake.storage.fs
    fs.invalidate_cache()
    return sum(fs.du(lake.storage.path(relative), total=False).values())


def measure(url: str, options: dict | None, dataset: SyntheticDataset, subject: str) -> dict[str, float]:
    assembly = dataset.subject(subject)
    raw_bytes = assembly["betas"].nbytes
    lake = create_lake(url, options)
    lake.write_stimuli(dataset.stimuli)
    started = time.perf_counter()
    lake.write_subject(subject, assembly)
    write_s = time.perf_counter() - started

    lake = open_lake(url, options)
    size = _store_size(lake, f"subjects/{subject}.zarr")
    lake.storage.stats.reset()
    started = time.perf_counter()
    lake.subject(subject)["betas"].data.sum().compute()
    read_s = time.perf_counter() - started
    whole_bytes = lake.storage.stats.bytes_read

    lake.storage.stats.reset()
    started = time.perf_counter()
    responses = lake.responses(subject, "V1", nc_threshold=30.0).compute()
    query_s = time.perf_counter() - started
    region_bytes = lake.storage.stats.bytes_read
    return {
        "raw_MB": raw_bytes / MB,
        "write_MBps": raw_bytes / MB / write_s,
        "store_MB": size / MB,
        "read_MBps": raw_bytes / MB / read_s,
        "whole_read_MB": whole_bytes / MB,
        "v1_query_MB": region_bytes / MB,
        "v1_query_s": query_s,
        "v1_shape": responses.shape,
        "ratio": region_bytes / whole_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--subject", default="sub-01")
    parser.add_argument("--skip-s3", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    dask.config.set(scheduler="threads")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request otherwise

    dataset = SyntheticDataset(args.scale, seed=0)
    started = time.perf_counter()
    dataset.subject(args.subject)
    print(f"scale={args.scale} subject={args.subject}: generated in {time.perf_counter() - started:.1f} s")

    results = {}
    local_root = tempfile.mkdtemp(prefix="laion-lake-bench-")
    try:
        results["local"] = measure(os.path.join(local_root, "lake"), None, dataset, args.subject)
    finally:
        shutil.rmtree(local_root, ignore_errors=True)
    if not args.skip_s3:
        import s3fs
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing"}
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            s3fs.S3FileSystem(**options).mkdir(bucket)
            results["moto-s3"] = measure(f"s3://{bucket}/lake", options, dataset, args.subject)
        finally:
            server.stop()

    header = f"{'backend':<9} {'betas MB':>9} {'store MB':>9} {'write MB/s':>11} {'read MB/s':>10} {'whole read MB':>14} {'V1 query MB':>12} {'V1/whole':>9} {'V1 query s':>11}"
    print(header)
    for backend, r in results.items():
        print(
            f"{backend:<9} {r['raw_MB']:>9.1f} {r['store_MB']:>9.1f} {r['write_MBps']:>11.1f} {r['read_MBps']:>10.1f} "
            f"{r['whole_read_MB']:>14.1f} {r['v1_query_MB']:>12.1f} {r['ratio']:>9.3f} {r['v1_query_s']:>11.2f}"
        )
    print(f"V1 query result shape (stimuli x voxels kept): {results['local']['v1_shape']}")


if __name__ == "__main__":
    main()
