"""One model's sweep of the headline benchmarks at widths 128, 1,024, 8,192 and 100,000 features.

For each width, on a synthetic lake in the published layout, in one run:

- the sweep in process (``score_many``, ``--workers`` units at once, BLAS pinned to 1 thread per
  unit), in a fresh subprocess per width: wall time, wall time per unit class (per-subject
  ridgecv units, shared-pool ridgecv units, rdm units; summed over units, so with 2 workers it
  exceeds the wall time), peak RSS of the process (``VmHWM`` after a reset: all its worker threads), the
  bytes it read from the lake (``laion_lake.lake.storage.process_bytes_read``), and the largest
  unit's stated peak (``check_memory``);
- one representative unit (sub-01, per-subject pool, ``tau``: the V1/V2/V4/IT ridgecv cells) run
  alone, cold (caches cleared, reading included) and again warm (responses and narrow feature
  sets cached: compute only), against:
  - the machine's limit: the unit's GEMMs and decomposition (the same BLAS/LAPACK calls on arrays
    of the same shapes, data in memory), timed alone;
  - read-then-scikit-learn per cell (the reference's route): for each of the unit's cells,
    ``lake.features`` read and the region's trial-level betas read and repeat-averaged, then ``RidgeCV(alphas, alpha_per_target=False)``
    fit and predict; only for widths up to ``--sklearn-max-width`` (it holds the whole
    stimuli x features block);
- the unit's cold reads part by part, both response routes in the same run (every trial read and
  repeat-averaged at read time, the route before; the repeat means stored with the betas,
  ``laion_lake.lake.averages``, the route now);
- with ``--flow``, the same sweep through ``flows.score.score_flow`` on a 2-worker LocalCluster;
- the scaling line: 1, 2 and 4 models (same width, other random expansions) on a 2-worker
  LocalCluster through ``laion_lake.dask.score``, against M x one model's summed unit time / 2 cores;
- with ``--heavy``, width 8,192 in the sweep and one streamed 100,000-feature unit (``--wide-unit``).

Usage::

    python benchmarks/bench_sweep.py --scale full --flow          # real counts: 128 and 1,024, in process
                                                                  # and through the flow, and the 1/2/4-model line
    python benchmarks/bench_sweep.py --scale full --flow --heavy  # also 8,192 (the sweep) and 100,000 (one unit)
    python benchmarks/bench_sweep.py --scale tiny --flow          # a smoke run (2 minutes)

The synthetic widths are ``bench_w<width>/relu``: ReLU random expansions of the ground-truth
latent (plus noise), written into the lake on first use.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MB = 1024**2
HERE = Path(__file__).resolve().parent


def reset_peak_rss() -> None:
    """Reset this process's peak RSS (``VmHWM``): ``ru_maxrss`` would report the parent's at fork."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_rss() -> int:
    """This process's peak resident set size since the last reset, in bytes (``VmHWM``)."""
    with open("/proc/self/status") as handle:
        line = next(x for x in handle if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024
DEFAULT_WIDTHS = (128, 1024)
HEAVY_WIDTHS = (8192, 100_000)


# --------------------------------------------------------------------------------------------------
# lake and feature sets
# --------------------------------------------------------------------------------------------------


def ensure_lake(url: str, scale: str) -> None:
    from laion_lake.synthetic import make_lake

    from laion_lake.errors import LakeNotFoundError
    from laion_lake.lake import open_lake

    try:
        if open_lake(url).subjects:
            return
    except (LakeNotFoundError, FileNotFoundError, ValueError):
        pass
    if True:
        print(f"writing the {scale} synthetic lake at {url} ...", flush=True)
        started = time.perf_counter()
        make_lake(url, scale=scale, seed=0)
        print(f"  written in {time.perf_counter() - started:.0f} s", flush=True)


def ensure_width(url: str, width: int, copy: int = 0) -> tuple[str, str]:
    """``bench_w<width>/relu``: relu(latent @ G + b + noise), float32, written once (``copy`` k > 0:
    ``bench_w<width>_m<k>``, another random expansion: another "model" of the same width)."""
    import xarray as xr

    from laion_lake.lake import open_lake

    lake = open_lake(url)
    model, layer = f"bench_w{width}" + (f"_m{copy}" if copy else ""), "relu"
    if (model, layer) in lake.feature_sets:
        return model, layer
    latent = lake.features("ground_truth", "latent")
    ids = latent["stimulus_id"].values
    Z = np.asarray(latent.values, dtype=np.float32)
    rng = np.random.default_rng(width + 1_000_003 * copy)
    X = np.empty((len(ids), width), dtype=np.float32)
    for start in range(0, width, 8192):
        stop = min(start + 8192, width)
        G = rng.standard_normal((Z.shape[1], stop - start), dtype=np.float32) / np.float32(np.sqrt(Z.shape[1]))
        block = Z @ G + rng.standard_normal((1, stop - start), dtype=np.float32) * np.float32(0.3)
        block += rng.standard_normal(block.shape, dtype=np.float32) * np.float32(0.1)
        X[:, start:stop] = np.maximum(block, 0)
    started = time.perf_counter()
    lake.write_features(model, layer, xr.DataArray(X, dims=("stimulus_id", "feature"), coords={"stimulus_id": ids}))
    print(f"  wrote {model}/{layer} ({X.nbytes / MB:.0f} MB float32) in {time.perf_counter() - started:.0f} s", flush=True)
    return model, layer


# --------------------------------------------------------------------------------------------------
# the machine's limit for one unit: its GEMMs and decomposition on arrays of its shapes
# --------------------------------------------------------------------------------------------------


def limit_seconds(n: int, n_test: int, p: int, voxels: list[int], n_alphas: int = 21) -> float:
    """Wall time of the unit's dense kernels alone, single-threaded BLAS, data in memory: the
    decomposition, each region's products, and the partial-fraction sweep's one product per region
    (alphas whose rounding bound sends them to the direct SYRK/TRMM are not counted: the limit
    assumes none)."""
    import scipy.linalg
    from scipy.linalg import blas, lapack

    from laion_lake.compute.solvers import choose_route

    rng = np.random.default_rng(0)
    timings = 0.0

    def timed(function, *args, **kwargs):
        nonlocal timings
        started = time.perf_counter()
        out = function(*args, **kwargs)
        timings += time.perf_counter() - started
        return out

    if choose_route(n, p) == "primal":
        X = rng.standard_normal((n, p))
        Xt = rng.standard_normal((n_test, p))
        U, s, Vt = timed(scipy.linalg.svd, X, full_matrices=False, lapack_driver="gesdd", check_finite=False)
        timed(blas.dgemm, 1.0, Xt, Vt, trans_b=1)
        U = np.asfortranarray(U)
        for v in voxels:
            Y = rng.standard_normal((n, v))
            B = timed(blas.dgemm, 1.0, U, Y, trans_a=1)  # U^T Y
            G = timed(blas.dsyrk, 1.0, B)  # B B^T
            timed(blas.dgemm, 1.0, Y, B, trans_b=1)  # Y B^T
            timed(blas.dgemm, 1.0, U, G)  # U G
            timed(blas.dgemm, 1.0, U, G, trans_b=1)  # U M^T: the partial-fraction sweep, every alpha
            timed(blas.dgemm, 1.0, rng.standard_normal((n_test, U.shape[1])), B)  # predictions
        return timings
    chunk = min(p, 2048)
    K = np.zeros((n, n), order="F")
    Kt = np.zeros((n_test, n), order="F")
    for start in range(0, p, chunk):
        width = min(chunk, p - start)
        A = rng.standard_normal((width, n))  # chunk.T, F-contiguous as the kernel builder has it
        At = rng.standard_normal((width, n_test))
        K = timed(blas.dsyrk, 1.0, A, beta=1.0, c=K, trans=1, overwrite_c=1)
        Kt = timed(blas.dgemm, 1.0, At, A, beta=1.0, c=Kt, trans_a=1, overwrite_c=1)
    K = K + K.T
    w, Q = timed(scipy.linalg.eigh, K[1:, 1:], driver="evd", overwrite_a=True, check_finite=False)
    Q = np.asfortranarray(np.pad(Q, ((1, 0), (1, 0))))
    timed(blas.dgemm, 1.0, Kt, Q)
    for v in voxels:
        Y = rng.standard_normal((n, v))
        B = timed(blas.dgemm, 1.0, Q, Y, trans_a=1)
        G = timed(blas.dsyrk, 1.0, B)  # B B^T
        timed(blas.dgemm, 1.0, Q, G, trans_b=1)  # Q M^T: the partial-fraction sweep, every alpha
        timed(blas.dgemm, 1.0, rng.standard_normal((n_test, n)), B)
    return timings


# --------------------------------------------------------------------------------------------------
# child: one width, in a fresh process
# --------------------------------------------------------------------------------------------------


def unit_class(unit) -> str:
    if unit.kind == "rdm":
        return "rdm"
    return "shared ridgecv" if unit.pool == "shared" else "per-subject ridgecv"



def cold_parts(lake, work, specs) -> dict:
    """The cold path of one unit, part by part, both response routes in this run: every trial read
    and repeat-averaged at read time (``read_region_average(..., from_trials=True)``: the route of a
    lake without stored means, and of the reference) against the repeat means stored with the betas
    (``laion_lake.lake.averages``, the route now); features by Zarr directly on both. Then the unit
    warm (reads cached: decomposition, LOO sweep, scoring)."""
    from threadpoolctl import threadpool_limits

    from laion_lake.scoring.cache import process_cache
    from laion_lake.scoring.reads import feature_array, read_feature_rows, read_region_average, rows_of
    from laion_lake.scoring.units import run_unit

    unit = work.unit
    train, test = lake.split(unit.pool, unit.split_name)
    ids = np.sort(np.concatenate([train, test]))
    groups = sorted({(c.region, specs[c.benchmark_key].nc_threshold, specs[c.benchmark_key].nc_coord) for c in work.cells})
    out: dict = {"regions": [g[0] for g in groups]}

    def route(from_trials: bool):
        def read():
            started = time.perf_counter()
            array, stored = feature_array(lake, unit.model, unit.layer)
            read_feature_rows(array, rows_of(stored, ids))
            features = time.perf_counter() - started
            regions = []
            for region, threshold, coord in groups:
                started = time.perf_counter()
                read_region_average(lake, unit.subject, region, threshold, coord, from_trials=from_trials)
                regions.append(time.perf_counter() - started)
            return features, regions

        return read

    route(False)()  # first touches (imports, the subject's trial table): paid by neither side below
    for name, read in (("trials", route(True)), ("stored", route(False)), ("trials2", route(True)), ("stored2", route(False))):
        out[name] = read()
    with threadpool_limits(1):
        process_cache().clear()
        run_unit(lake, work, specs)
        started = time.perf_counter()
        run_unit(lake, work, specs)
        out["compute"] = time.perf_counter() - started
    return out


def child(url: str, model: str, layer: str, workers: int, sklearn_max_width: int, n_sklearn_cells: int | None = None) -> dict:
    from threadpoolctl import threadpool_limits

    import laion_lake.scoring.api as api
    from laion_lake.benchmarks import list_benchmarks, load_benchmark
    from laion_lake.compute.ridge import DEFAULT_ALPHAS
    from laion_lake.lake import open_lake
    from laion_lake.lake.storage import process_bytes_read
    from laion_lake.scoring.cache import process_cache
    from laion_lake.scoring.plan import check_memory, plan_work, specs_by_key
    from laion_lake.scoring.units import run_unit

    reset_peak_rss()
    lake = open_lake(url)
    benchmarks = list_benchmarks()
    plan = plan_work([(model, layer)], benchmarks)
    stated = check_memory(plan, 1 << 62, lake, concurrent_units=workers)
    per_class: dict[str, list[float]] = {}
    cells: dict[str, int] = {}
    real_run_unit = api.run_unit

    def timed_run_unit(lake_, work, specs):
        started = time.perf_counter()
        out = real_run_unit(lake_, work, specs)
        per_class.setdefault(unit_class(work.unit), []).append(time.perf_counter() - started)
        cells[unit_class(work.unit)] = cells.get(unit_class(work.unit), 0) + len(out)
        return out

    api.run_unit = timed_run_unit
    process_cache().clear()
    read_before = process_bytes_read()
    started = time.perf_counter()
    scores = api.score_many(lake, [(model, layer)], benchmarks, workers=workers)
    sweep_wall = time.perf_counter() - started
    sweep_read = process_bytes_read() - read_before
    sweep_peak = peak_rss()
    api.run_unit = real_run_unit

    # the representative unit alone, cold: sub-01, per-subject pool, tau
    subject = lake.subjects[0]
    work = next(w for w in plan if w.unit.subject == subject and w.unit.pool == subject and w.unit.split_name == "tau")
    specs = specs_by_key(benchmarks)
    process_cache().clear()
    with threadpool_limits(1):
        started = time.perf_counter()
        results = run_unit(lake, work, specs)
        unit_wall = time.perf_counter() - started
        started = time.perf_counter()
        run_unit(lake, work, specs)  # warm: responses and narrow features cached, what is left is compute
        unit_wall_warm = time.perf_counter() - started
    train, test = lake.split(work.unit.pool, "tau")
    voxels = [r.n_voxels for r in results]
    parts = cold_parts(lake, work, specs)
    with threadpool_limits(1):
        limit = limit_seconds(len(train), len(test), lake.features(model, layer).shape[1], voxels)

    sklearn_cells = None
    if lake.features(model, layer).shape[1] <= sklearn_max_width:
        from sklearn.linear_model import RidgeCV

        from laion_lake.scoring.reads import read_region_average

        sklearn_cells = []
        with threadpool_limits(1):
            for result in results[:n_sklearn_cells]:
                spec = load_benchmark(result.benchmark_key)
                started = time.perf_counter()
                X_train = lake.features(model, layer, train).values.astype(np.float64)
                X_test = lake.features(model, layer, test).values.astype(np.float64)
                # the reference reads trial-level betas and averages repeats (here with our own fast
                # trial reader, so the baseline is if anything quicker than Brain-Score's)
                block = read_region_average(lake, subject, result.region, spec.nc_threshold, spec.nc_coord, from_trials=True)
                Y = block["values"][np.searchsorted(block["stimulus_id"], np.concatenate([train, test]))]
                Y_train = Y[: len(train)].astype(np.float64)
                RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=False).fit(X_train, Y_train).predict(X_test)
                sklearn_cells.append(time.perf_counter() - started)
                del X_train, X_test, Y_train, Y
    return {
        "width": int(lake.features(model, layer).shape[1]),
        "units": len(plan),
        "scores": len(scores),
        "workers": workers,
        "sweep_wall": sweep_wall,
        "per_class": {k: [sum(v), len(v), cells[k]] for k, v in per_class.items()},
        "bytes_read": sweep_read,
        "peak_rss": sweep_peak,
        "stated_peak_max": max(stated.values()),
        "unit": work.unit.key,
        "unit_cells": len(results),
        "unit_shape": [len(train), len(test), voxels],
        "unit_wall": unit_wall,
        "unit_wall_warm": unit_wall_warm,
        "limit": limit,
        "sklearn_cells": sklearn_cells,
        "parts": parts,
        "stated_process": stated.process_bytes,
    }


def flow_sweep(url: str, model: str, layer: str) -> dict:
    """The same sweep through the score flow on a 2-worker LocalCluster (cluster start excluded)."""
    import logging
    import tempfile

    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-sweep-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # a fresh PREFECT_HOME migrates its SQLite database on the first start: allow it the time
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from distributed import Client, LocalCluster

    from flows.score import score_flow
    from laion_lake.benchmarks import list_benchmarks

    def reads() -> int:
        from laion_lake.lake.storage import process_bytes_read

        return process_bytes_read()

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="4GiB", dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING)
    try:
        with Client(cluster) as client:
            client.run(reset_peak_rss)
            started = time.perf_counter()
            score_flow(url, [f"{model}/{layer}"], list_benchmarks(), force=True, cluster={"address": cluster.scheduler_address})
            wall = time.perf_counter() - started
            return {"wall": wall, "peaks": sorted(client.run(peak_rss).values()), "bytes_read": sum(client.run(reads).values())}
    finally:
        cluster.close()


def scaling(url: str, width: int, counts: tuple[int, ...] = (1, 2, 4)) -> list[dict]:
    """M models' sweeps (M in ``counts``) on one 2-worker LocalCluster (1 thread each), through
    ``laion_lake.dask.score`` (records written, ``force``): wall time against M x the summed unit
    time of one model / 2 cores; each run on a fresh cluster (cold worker caches)."""
    import logging

    from distributed import Client, LocalCluster

    import laion_lake.dask as lake_dask
    from laion_lake.benchmarks import list_benchmarks

    models = [ensure_width(url, width, copy) for copy in range(max(counts))]
    rows = []
    for m in counts:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="4GiB", dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING)
        try:
            with Client(cluster) as client:
                client.run(reset_peak_rss)
                started = time.perf_counter()
                out = lake_dask.score(url, [f"{a}/{b}" for a, b in models[:m]], list_benchmarks(), force=True, client=client)
                wall = time.perf_counter() - started
                rows.append({"models": m, "wall": wall, "units": out["units"], "peaks": sorted(client.run(peak_rss).values())})
        finally:
            cluster.close()
    return rows


def wide_unit_child(url: str, width: int, split: str, write_only: bool = False) -> dict:
    """One sub-01 per-subject unit on a ``width``-feature layer, streamed; peak RSS of this process."""
    import xarray as xr

    from laion_lake.benchmarks import list_benchmarks
    from laion_lake.lake import open_lake
    from laion_lake.lake.storage import process_bytes_read
    from laion_lake.scoring.plan import check_memory, plan_work, specs_by_key
    from laion_lake.scoring.runner import fixed_blas_threads
    from laion_lake.scoring.units import run_unit

    lake = open_lake(url)
    subject = lake.subjects[0]
    model, layer = f"bench_wide{width}_{subject}", "relu"
    if (model, layer) not in lake.feature_sets:
        # only this subject's stimuli (a whole-lake 100k layer at full scale would be ~10 GB), written
        # by blocks of stimuli through a lazy array so this process never holds the whole block either
        import dask.array as da

        train, test = lake.split(subject, "tau")
        ood_train, ood_test = lake.split(subject, "ood")
        ids = np.unique(np.concatenate([train, test, ood_train, ood_test]))

        def block(block_id=None):
            rows = slice(block_id[0] * 1024, min((block_id[0] + 1) * 1024, len(ids)))
            rng = np.random.default_rng(block_id[0])
            return np.maximum(rng.standard_normal((rows.stop - rows.start, width), dtype=np.float32), 0)

        data = da.map_blocks(block, chunks=((1024,) * (len(ids) // 1024) + ((len(ids) % 1024,) if len(ids) % 1024 else ()), (width,)), dtype=np.float32)
        started = time.perf_counter()
        lake.write_features(model, layer, xr.DataArray(data, dims=("stimulus_id", "feature"), coords={"stimulus_id": ids}))
        print(f"  wrote {model}/{layer} ({len(ids)} x {width}) in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        lake = open_lake(url)
    if write_only:
        return {}
    benchmarks = [b for b in list_benchmarks() if b.startswith("LAION_fMRI_persubject.")]
    from laion_lake.benchmarks import load_benchmark

    specs = [load_benchmark(b, subjects=[subject]) for b in benchmarks]
    work = next(w for w in plan_work([(model, layer)], specs) if w.unit.split_name == split)
    stated = check_memory([work], 1 << 62, lake)[work.unit.key]
    reset_peak_rss()
    rss_before = peak_rss()
    read_before = process_bytes_read()
    started = time.perf_counter()
    with fixed_blas_threads():
        results = run_unit(lake, work, specs_by_key(specs))
    return {
        "unit": work.unit.key, "cells": len(results), "wall": time.perf_counter() - started,
        "peak_rss": peak_rss(), "rss_before": rss_before,
        "stated": stated, "bytes_read": process_bytes_read() - read_before, "n_train": results[0].n_train,
    }


# --------------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="small", choices=("tiny", "small", "full"))
    parser.add_argument("--lake", help="lake path (default benchmarks/out/lake-<scale>; written if absent)")
    parser.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)))
    parser.add_argument("--workers", type=int, default=2, help="units at once in process")
    parser.add_argument("--sklearn-max-width", type=int, default=8192)
    parser.add_argument("--sklearn-cells", type=int, help="time scikit-learn on the unit's first N cells only (default all)")
    parser.add_argument("--flow", action="store_true", help="also run each sweep through the score flow on a LocalCluster")
    parser.add_argument("--heavy", action="store_true", help="also widths 8,192 (the sweep) and 100,000 (one streamed unit, --wide-unit)")
    parser.add_argument("--scaling", default="1,2,4", help="models per run of the 2-worker cluster scaling line ('' to skip)")
    parser.add_argument("--scaling-width", type=int, default=128)
    parser.add_argument("--wide-unit", type=int, metavar="WIDTH", help="instead: one sub-01 per-subject unit at WIDTH features (streamed), peak RSS")
    parser.add_argument("--split", default="ood", help="split of the --wide-unit unit (ood: the largest train set)")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "LAYER"), help=argparse.SUPPRESS)
    parser.add_argument("--wide-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = args.lake or str(HERE / "out" / f"lake-{args.scale}")
    if args.child:
        print("RESULT " + json.dumps(child(url, *args.child, args.workers, args.sklearn_max_width, args.sklearn_cells)), flush=True)
        return
    if args.wide_child:
        print("RESULT " + json.dumps(wide_unit_child(url, args.wide_unit, args.split, args.write_only)), flush=True)
        return
    if args.wide_unit:
        ensure_lake(url, args.scale)
        command = [sys.executable, __file__, "--lake", url, "--wide-unit", str(args.wide_unit), "--split", args.split, "--wide-child"]
        written = subprocess.run([*command, "--write-only"], capture_output=True, text=True, check=False)  # a process of its own
        print(written.stderr[-3000:], end="")
        output = subprocess.run(command, capture_output=True, text=True, check=False)
        print(output.stderr[-3000:], end="")
        line = next((x for x in output.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line:
            row = json.loads(line.removeprefix("RESULT "))
            print(f"wide unit {row['unit']} (n_train {row['n_train']}, {row['cells']} cells), streamed: wall {row['wall']:.1f} s; "
                  f"peak RSS {row['peak_rss'] / MB:.0f} MB (before the unit {row['rss_before'] / MB:.0f} MB); "
                  f"stated {row['stated'] / MB:.0f} MB; bytes read {row['bytes_read'] / MB:.0f} MB")
        return

    ensure_lake(url, args.scale)
    started_all = time.perf_counter()
    widths = [int(w) for w in args.widths.split(",")] + (list(HEAVY_WIDTHS[:1]) if args.heavy else [])
    feature_sets = {w: ensure_width(url, w) for w in widths}
    print(f"lake {url} ({args.scale}); machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    rows, flows = [], {}
    for width in widths:
        command = [sys.executable, __file__, "--lake", url, "--workers", str(args.workers),
                   "--sklearn-max-width", str(args.sklearn_max_width), "--child", *feature_sets[width]]  # fmt: skip
        if args.sklearn_cells:
            command += ["--sklearn-cells", str(args.sklearn_cells)]
        output = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next((x for x in output.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"width {width}: child failed\n{output.stderr[-3000:]}", flush=True)
            continue
        row = json.loads(line.removeprefix("RESULT "))
        rows.append(row)
        print_row(row)
        if args.flow:
            flows[width] = flow_sweep(url, *feature_sets[width])
            f = flows[width]
            print(f"  flow (2 workers x 1 thread, LocalCluster up): wall {f['wall']:.1f} s; peak RSS per worker "
                  f"{', '.join(f'{p / MB:.0f}' for p in f['peaks'])} MB; bytes read {f['bytes_read'] / MB:.1f} MB", flush=True)
    if args.scaling:
        counts = tuple(int(m) for m in args.scaling.split(","))
        per_model = next((sum(t for t, _, _ in r["per_class"].values()) for r in rows if r["width"] == args.scaling_width), None)
        print(f"\nscaling, width {args.scaling_width}: models {counts} on a 2-worker LocalCluster (1 thread each), records written", flush=True)
        for r in scaling(url, args.scaling_width, counts):
            predicted = f"; M x unit time / 2 cores = {r['models'] * per_model / 2:.1f} s -> {r['wall'] / (r['models'] * per_model / 2):.2f}x" if per_model else ""
            print(f"  {r['models']} model(s), {r['units']} units: wall {r['wall']:.1f} s{predicted}; peak RSS per worker "
                  f"{', '.join(f'{p / MB:.0f}' for p in r['peaks'])} MB", flush=True)
    if args.heavy:
        command = [sys.executable, __file__, "--lake", url, "--wide-unit", str(HEAVY_WIDTHS[1]), "--split", args.split]
        print(f"\nwidth {HEAVY_WIDTHS[1]} (one streamed unit):", flush=True)
        subprocess.run(command, check=False)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end; whole run {time.perf_counter() - started_all:.0f} s")


def print_row(row: dict) -> None:
    classes = "; ".join(
        f"{name}: {total:.1f} s over {count} units ({total / cells:.2f} s/cell)" for name, (total, count, cells) in sorted(row["per_class"].items())
    )
    n, t, voxels = row["unit_shape"]
    print(f"\nwidth {row['width']}: {row['units']} units, {row['scores']} scores, {row['workers']} in-process workers")
    print(f"  sweep wall {row['sweep_wall']:.1f} s | {classes}")
    print(f"  peak RSS (process, all workers) {row['peak_rss'] / MB:.0f} MB; largest unit stated {row['stated_peak_max'] / MB:.0f} MB;"
          f" bytes read {row['bytes_read'] / MB:.1f} MB")
    print(f"  unit {row['unit']} alone (n_train {n}, n_test {t}, voxels {voxels}): {row['unit_wall']:.2f} s;"
          f" limit (GEMMs + decomposition alone) {row['limit']:.2f} s -> {row['unit_wall'] / row['limit']:.2f}x the limit;"
          f" warm (reads cached) {row['unit_wall_warm']:.2f} s -> {row['unit_wall_warm'] / row['limit']:.2f}x")
    parts = row["parts"]
    for before, after in (("trials", "stored"), ("trials2", "stored2")):
        (fb, rb), (fa, ra) = parts[before], parts[after]
        print(f"  cold reads (averaged from trials -> stored means): features {fb:.2f} -> {fa:.2f} s; responses "
              + ", ".join(f"{r} {x:.2f} -> {y:.2f}" for r, x, y in zip(parts["regions"], rb, ra))
              + f" s; reads total {fb + sum(rb):.2f} -> {fa + sum(ra):.2f} s ({(fb + sum(rb)) / (fa + sum(ra)):.2f}x)")
    print(f"  warm unit (decomposition + LOO sweep + scoring) {parts['compute']:.2f} s")
    print(f"  stated process peak ({row['workers']} unit slots): {row['stated_process'] / MB:.0f} MB"
          f" = {row['stated_process'] / row['workers'] / MB:.0f} MB per slot; measured {row['peak_rss'] / MB:.0f} MB"
          f" = {row['peak_rss'] / row['workers'] / MB:.0f} MB per slot")
    if row["sklearn_cells"]:
        ours = row["unit_wall"] / row["unit_cells"]
        theirs = float(np.mean(row["sklearn_cells"]))
        print(f"  read-then-sklearn RidgeCV per cell {theirs:.2f} s vs ours {ours:.2f} s per cell -> {theirs / ours:.1f}x faster"
              f" (cells: {', '.join(f'{s:.2f}' for s in row['sklearn_cells'])} s)")
    else:
        print("  read-then-sklearn RidgeCV: skipped (width above --sklearn-max-width)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
