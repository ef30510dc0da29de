"""The real-scale 5-cell subset against the reference's route, both timed in the same run.

Cells (at ``--width`` features, default 1,024, on the full-scale synthetic lake): per-subject
V1-tau, IT-tau and IT-ood ridgecv, shared-pool IT-tau ridgecv, and the IT rdm-pearson cell, for
each subject of ``--subjects`` (default sub-01: five cells).

- ours: ``score_many`` on those benchmarks (process cache cleared first: every read included),
  ``--workers`` units at once, BLAS pinned to 1 thread per unit;
- the reference's route (what Brain-Score's benchmark does per cell, and what
  ``benchmarks/bench_ridgecv.py`` times on arrays): per cell read the features, and the
  trial-level betas repeat-averaged (as the reference does; not the lake's stored means), then scikit-learn ``RidgeCV(alphas,
  alpha_per_target=False)`` fit on the train stimuli and predict the test ones, per-voxel Pearson r,
  median; the rdm cell builds both correlation-distance RDMs with ``np.corrcoef`` and compares their
  upper triangles with ``scipy.stats.spearmanr``. BLAS pinned to 1 thread.

Each side's raw score per cell is printed next to the other's (they must agree to ~1e-6).

    python benchmarks/bench_reference_subset.py                       # sub-01, 1,024 features
    python benchmarks/bench_reference_subset.py --subjects all        # every subject (slow)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CELLS = (
    "LAION_fMRI_persubject.V1-tau-ridgecv",
    "LAION_fMRI_persubject.IT-tau-ridgecv",
    "LAION_fMRI_persubject.IT-ood-ridgecv",
    "LAION_fMRI.IT-tau-ridgecv",
    "LAION_fMRI.IT-rdm-pearson",
)


def pearson_per_column(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))


def trial_averaged(lake, subject: str, spec, ids: np.ndarray) -> np.ndarray:
    """The reference reads trial-level betas and averages repeats (not the lake's stored means): here with
    laion-lake's own fast trial reader, so this side is if anything quicker than Brain-Score's."""
    from laion_lake.scoring.reads import read_region_average

    block = read_region_average(lake, subject, spec.region, spec.nc_threshold, spec.nc_coord, from_trials=True)
    return block["values"][np.searchsorted(block["stimulus_id"], ids)].astype(np.float64)


def reference_cell(lake, model: str, layer: str, spec, subject: str) -> float:
    """One cell by the reference's route: read, then scikit-learn (or numpy/scipy for the RDM)."""
    import scipy.stats
    from sklearn.linear_model import RidgeCV

    if spec.kind == "rdm":
        from laion_lake.scoring.units import rdm_stimuli

        ids = rdm_stimuli(lake)
        X = lake.features(model, layer, ids).values.astype(np.float64)
        Y = trial_averaged(lake, subject, spec, ids)
        upper = np.triu_indices(len(ids), k=1)
        return float(scipy.stats.spearmanr((1 - np.corrcoef(X))[upper], (1 - np.corrcoef(Y))[upper])[0])
    train, test = lake.split(spec.pool_for(subject), spec.folds[0])
    if spec.test_ood_category is not None:
        categories = lake.stimuli["ood_category"].sel(stimulus_id=test).values
        test = test[categories == spec.test_ood_category]
    X_train = lake.features(model, layer, train).values.astype(np.float64)
    X_test = lake.features(model, layer, test).values.astype(np.float64)
    Y_train, Y_test = trial_averaged(lake, subject, spec, train), trial_averaged(lake, subject, spec, test)
    predicted = RidgeCV(alphas=np.asarray(spec.alphas), alpha_per_target=False).fit(X_train, Y_train).predict(X_test)
    r = pearson_per_column(predicted, Y_test)
    return float(np.median(r[np.isfinite(r)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", default=str(HERE / "out" / "lake-full"))
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--subjects", default="sub-01", help="comma-separated, or 'all'")
    parser.add_argument("--workers", type=int, default=1, help="our units at once (the reference runs one cell at a time)")
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    from bench_sweep import ensure_lake, ensure_width
    from laion_lake import score_many
    from laion_lake.benchmarks import load_benchmark
    from laion_lake.lake import open_lake
    from laion_lake.scoring.cache import process_cache

    ensure_lake(args.lake, "full")
    model, layer = ensure_width(args.lake, args.width)
    lake = open_lake(args.lake)
    subjects = lake.subjects if args.subjects == "all" else args.subjects.split(",")
    print(f"lake {args.lake}; {model}/{layer} ({args.width} features); subjects {', '.join(subjects)}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    specs = [load_benchmark(key, subjects=subjects) for key in CELLS]

    process_cache().clear()
    started = time.perf_counter()
    ours = score_many(lake, [(model, layer)], specs, workers=args.workers)
    ours_wall = time.perf_counter() - started

    reference: dict[str, list[float]] = {}
    reference_times: dict[str, float] = {}
    started_all = time.perf_counter()
    with threadpool_limits(1):
        for spec in specs:
            started = time.perf_counter()
            reference[spec.key] = [reference_cell(lake, model, layer, spec, subject) for subject in subjects]
            reference_times[spec.key] = time.perf_counter() - started
    reference_wall = time.perf_counter() - started_all

    print(f"{'cell':60s} {'reference s':>11s} {'ref raw':>9s} {'our raw':>9s} {'|diff|':>8s}")
    for spec in specs:
        score = ours[(model, layer, spec.key)]
        raw = float(np.mean(reference[spec.key]))
        print(f"{spec.key[:60]:60s} {reference_times[spec.key]:11.1f} {raw:9.5f} {score.attrs['raw']:9.5f} {abs(raw - score.attrs['raw']):8.1e}")
    print(f"{len(specs) * len(subjects)} cells: ours {ours_wall:.1f} s ({args.workers} unit(s) at once, reads included) vs the "
          f"reference's route {reference_wall:.1f} s -> ours is {ours_wall / reference_wall:.3f} of the reference ({reference_wall / ours_wall:.1f}x faster)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
