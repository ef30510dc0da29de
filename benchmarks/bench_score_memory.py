"""Score one model on the 24 leaderboard benchmarks with the ``score`` flow on a 2-worker Dask cluster;
print the wall time, each worker's peak memory and the bytes each worker read from the lake.

The lake is the synthetic one at full scale (real counts: 5 subjects x ~1 GB of betas), written
first if it is absent (a few minutes). Every unit is recomputed (``force=True``), so a second run
measures the same work.

    python benchmarks/bench_score_memory.py                          # full scale, late_model/fc6
    python benchmarks/bench_score_memory.py --scale small            # a quick run
    python benchmarks/bench_score_memory.py --lake /data/lake-full   # reuse a lake

Peak memory is the worker process's peak resident set size (``getrusage`` ``ru_maxrss``: exact, no
sampling), next to its resident size when idle before the run. Bytes read are counted by the
lake's stores in each worker process (:func:`laion_lake.lake.storage.process_bytes_read`).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import time
from pathlib import Path

MB = 1024**2
HERE = Path(__file__).resolve().parent


def _worker_peak_rss() -> int:
    """Peak resident set size of this process, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker_rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _worker_bytes_read() -> int:
    from laion_lake.lake.storage import process_bytes_read

    return process_bytes_read()


def _expected_sizes(lake, model: str, layer: str) -> dict[str, float]:
    """MB of one unit's largest inputs, for reading the peaks: what a task should hold at most."""
    subject = lake.subjects[0]
    train, _ = lake.split(subject, "tau")
    n_features = lake.features(model, layer).shape[1]
    assembly = lake.subject(subject)
    n_trials, n_voxels = assembly["betas"].shape
    headline_voxels = sum(lake.responses(subject, region, nc_threshold=None).shape[1] for region in ("V1", "V2", "V4", "IT"))
    return {
        "n_train": len(train),
        "features_train_f64_MB": len(train) * n_features * 8 / MB,
        "kernel_f64_MB": len(train) ** 2 * 8 / MB,
        "responses_train_headline_f64_MB": len(train) * headline_voxels * 8 / MB,
        "whole_subject_betas_f32_MB": n_trials * n_voxels * 4 / MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--lake", help="lake path (default benchmarks/out/lake-<scale>; written if absent)")
    parser.add_argument("--model", default="late_model/fc6", help="feature set as model/layer")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="8GiB", help="per worker")
    args = parser.parse_args()

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from distributed import Client, LocalCluster

    from flows.cluster import quiet_logs, worker_environment
    from flows.score import score_flow
    from laion_lake.benchmarks import list_benchmarks
    from laion_lake.lake import open_lake
    from laion_lake.synthetic import make_lake

    quiet_logs()
    url = args.lake or str(HERE / "out" / f"lake-{args.scale}")
    if not (Path(url) / "lake.json").exists():
        print(f"writing the {args.scale} synthetic lake at {url} ...", flush=True)
        started = time.perf_counter()
        make_lake(url, scale=args.scale, seed=0)
        print(f"  written in {time.perf_counter() - started:.0f} s", flush=True)
    lake = open_lake(url)
    model, layer = args.model.split("/")
    benchmarks = list_benchmarks()
    expected = _expected_sizes(lake, model, layer)
    subject_store = sum(f.stat().st_size for f in (Path(url) / "subjects" / f"{lake.subjects[0]}.zarr").rglob("*") if f.is_file())

    cluster = LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, memory_limit=args.memory_limit,
        dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING, env=worker_environment(),
    )  # fmt: skip
    try:
        with Client(cluster) as client:
            idle_rss = client.run(_worker_rss)
            started = time.perf_counter()
            report = score_flow(url, [[model, layer]], benchmarks, force=True, cluster={"address": cluster.scheduler_address})
            wall = time.perf_counter() - started
            peaks = client.run(_worker_peak_rss)
            reads = client.run(_worker_bytes_read)
    finally:
        cluster.close()

    print(f"lake {url} ({args.scale}): {len(lake.subjects)} subjects; {lake.subjects[0]} store {subject_store / MB:.0f} MB on disk")
    print(f"feature set {model}/{layer} x {len(benchmarks)} headline benchmarks: {report['units']} units ({report['computed']} computed), {len(report['scores'])} scores")
    print(f"workers: {args.workers} x 1 thread, memory limit {args.memory_limit}")
    print(f"wall time (flow, cluster already up): {wall:.1f} s")
    for i, address in enumerate(sorted(peaks)):
        print(f"  worker {i}: idle RSS {idle_rss[address] / MB:7.0f} MB   peak RSS {peaks[address] / MB:7.0f} MB   read from lake {reads[address] / MB:8.1f} MB")
    total_read = sum(reads.values())
    print(f"bytes read from the lake, all workers: {total_read / MB:.1f} MB ({total_read} bytes)")
    print("one unit's inputs for reference (sub-01, tau): n_train={n_train}; train features f64 {features_train_f64_MB:.0f} MB; "
          "kernel f64 {kernel_f64_MB:.0f} MB; train responses of V1+V2+V4+IT f64 {responses_train_headline_f64_MB:.0f} MB; "
          "whole subject betas f32 {whole_subject_betas_f32_MB:.0f} MB".format(**expected))


if __name__ == "__main__":
    main()
