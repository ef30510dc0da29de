"""Cost of the lake's commits: ms per features add and per unit record, local disk and moto S3.

Every write to the lake is one Icechunk commit (laion_lake.lake.repository). This script times, in
one run, on a tiny handmade lake:

- ``features add``: one small feature set written and committed (the API call the CLI makes);
- a unit record committed alone (one commit per unit, resumable), 100 times, against the JSON
  document the previous lake wrote per unit (a local atomic rename / one S3 PUT: "today");
- the same 100 records in one transaction (one commit for the batch);
- the same 100 records through :class:`laion_lake.lake.batch.BatchedWrites` with the defaults
  ``scoring.records.batched_records`` uses (a commit every 25 records or 5 s: resumable, a kill
  loses at most the last batch).

It prints ms per operation and the ratio commit / JSON, i.e. the overhead of records on a
100-unit score run. Run: ``.venv/bin/python benchmarks/bench_lake_commits.py``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import uuid

import numpy as np
import xarray as xr

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

N_FEATURES, N_UNITS = 10, 100


def record(k: int) -> dict:
    """A unit record of the size a headline run writes (20 benchmarks x 2 folds of cells)."""
    cells = [
        {"benchmark_key": f"LAION_fMRI.V{r}-tau-ridgecv", "region": f"V{r}", "metric": "ridgecv", "test_restriction": "", "fold": f,
         "subject": "sub-01", "raw": 0.1 + k * 1e-3, "ceiling": 0.5, "ceiled": 0.2, "alpha": 10.0, "n_voxels": 512}
        for r in range(1, 21) for f in range(2)
    ]
    return {"key": f"m/l/sub-01/shared/split{k}", "kind": "unit", "inputs": {"features": "a" * 64, "subject": "b" * 64}, "results": cells}


def timed(fn, n: int) -> float:
    started = time.perf_counter()
    for k in range(n):
        fn(k)
    return (time.perf_counter() - started) / n * 1000


def measure(url: str, options: dict | None, json_write) -> dict[str, float]:
    import zarr

    from laion_lake.scoring.records import RECORD_ATTR, UNITS
    from tests.lake import handmade

    lake = handmade.write_handmade_lake(url, options)
    ids = lake.stimuli["stimulus_id"].values
    data = xr.DataArray(np.random.default_rng(0).standard_normal((len(ids), 64)).astype(np.float32), dims=("stimulus_id", "feature"), coords={"stimulus_id": ids})
    features_ms = timed(lambda k: lake.write_features(f"model{k}", "fc", data), N_FEATURES)

    def commit_record(k: int) -> None:
        lake.storage.write(f"unit {k}", lambda s: zarr.open_group(s.store, path=f"{UNITS}/u{k}", mode="a").attrs.__setitem__(RECORD_ATTR, record(k)))

    record_ms = timed(commit_record, N_UNITS)
    json_ms = timed(lambda k: json_write(k, record(k)), N_UNITS)
    started = time.perf_counter()
    with lake.transaction("100 records"):
        for k in range(N_UNITS):
            lake.storage.write("", lambda s, k=k: zarr.open_group(s.store, path=f"{UNITS}/b{k}", mode="a").attrs.__setitem__(RECORD_ATTR, record(k)))
    batch_ms = (time.perf_counter() - started) / N_UNITS * 1000

    from laion_lake.lake.batch import BatchedWrites

    batches = BatchedWrites(lake.storage)
    started = time.perf_counter()
    for k in range(N_UNITS):
        batches.add(f"unit {k}", lambda s, k=k: zarr.open_group(s.store, path=f"{UNITS}/w{k}", mode="a").attrs.__setitem__(RECORD_ATTR, record(k)))
    batches.flush()
    batched_ms = (time.perf_counter() - started) / N_UNITS * 1000
    return {"features add": features_ms, "unit record (1 commit each)": record_ms, "unit record (100 in 1 commit)": batch_ms,
            f"unit record (batches of {batches.every})": batched_ms, "JSON record (today)": json_ms}


def main() -> None:
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log would bury the table
    folder = tempfile.mkdtemp(prefix="bench-commits-")

    def local_json(k: int, doc: dict) -> None:
        target = os.path.join(folder, "json", f"u{k}.json")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = f"{target}.tmp"
        with open(temporary, "w") as handle:
            json.dump(doc, handle)
        os.replace(temporary, target)

    results = {"local": measure(os.path.join(folder, "lake"), None, local_json)}

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing"}
    fs = s3fs.S3FileSystem(**options)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    results["moto S3"] = measure(f"s3://{bucket}/lake", options, lambda k, doc: fs.pipe_file(f"{bucket}/json/u{k}.json", json.dumps(doc).encode()))
    server.stop()

    print(f"lake commit cost (ms per operation; {N_FEATURES} features adds, {N_UNITS} unit records; one run, machine shared with other jobs)")
    print(f"{'':32s}{'local':>10s}{'moto S3':>10s}")
    for name in results["local"]:
        print(f"{name:32s}{results['local'][name]:10.1f}{results['moto S3'][name]:10.1f}")
    from laion_lake.lake.batch import DEFAULT_EVERY

    batched = f"unit record (batches of {DEFAULT_EVERY})"
    for where, row in results.items():
        one = row["unit record (1 commit each)"]
        print(f"{where}: records of a {N_UNITS}-unit run cost {one * N_UNITS / 1000:.1f} s committed one per unit "
              f"({one / row['JSON record (today)']:.1f}x today's JSON), {row['unit record (100 in 1 commit)'] * N_UNITS / 1000:.2f} s in one commit, "
              f"{row[batched] * N_UNITS / 1000:.2f} s in batches of {DEFAULT_EVERY} ({row[batched] / row['JSON record (today)']:.1f}x the JSON)")


if __name__ == "__main__":
    main()
