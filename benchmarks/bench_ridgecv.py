"""Time laion_lake's kernel ridgecv against scikit-learn's RidgeCV and against the machine's limit.

For each case (n_train, n_features, n_voxels), on the same data in one run:

- ours: ``compute_centered_linear_kernels`` + ``eigendecompose_centered_kernel`` +
  ``solve_kernel_ridge_cv_eigen`` (LOO sweep over 21 alphas, refit, predict), wall clock, with
  peak memory over the inputs;
- the limit: the dense kernels ours cannot avoid, each timed alone on the same shapes: the kernel
  GEMMs (SYRK + cross-kernel GEMM over the feature chunks, chunk preparation untimed), one
  eigendecomposition of the (n-1) x (n-1) kernel block, and the LOO-sweep GEMMs (Q^T Y, the QR of
  B^T, 21 TRMMs, K_test Q and the prediction GEMM);
- scikit-learn: ``RidgeCV(alphas, alpha_per_target=False).fit(X_train, Y).predict(X_test)``. When
  that would take too long, it is timed on two voxel subsets and extrapolated linearly in the
  number of voxels (time = fixed + per_voxel * n_voxels, both fitted from the two runs); the
  output says so.

Memory: ``tracemalloc`` peak (numpy registers its buffers with tracemalloc, LAPACK workspaces
allocated by the scipy wrappers included; OpenBLAS's own thread buffers are not) and the rise of
the process's peak RSS (``VmHWM`` after resetting it through ``/proc/self/clear_refs``), both
relative to the moment the inputs already exist.

Usage::

    python benchmarks/bench_ridgecv.py --quick
    python benchmarks/bench_ridgecv.py > /tmp/bench_ridgecv.txt
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

from laion_lake.compute.kernel import compute_centered_linear_kernels
from laion_lake.compute.ridge import (
    DEFAULT_ALPHAS,
    _dual_weights,
    _gemm,
    eigendecompose_centered_kernel,
    solve_kernel_ridge_cv_eigen,
)

FULL_CASES = [(4666, 50176), (4666, 4096), (897, 50176), (897, 4096)]
FULL_VOXELS = [2000, 6400]
QUICK_CASES = [(600, 3000), (300, 800)]
QUICK_VOXELS = [200, 900]


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------


def make_data(n_train: int, n_test: int, n_features: int, n_voxels: int, seed: int):
    """ReLU-like float32 features of a low-rank latent, float32 voxels of the same latent plus noise."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    n_latent = 64
    latent = rng.standard_normal((n, n_latent), dtype=np.float32)
    X = np.empty((n, n_features), dtype=np.float32)
    for start in range(0, n_features, 8192):  # bounded temporaries
        stop = min(start + 8192, n_features)
        mixing = rng.standard_normal((n_latent, stop - start), dtype=np.float32) / np.float32(8.0)
        block = latent @ mixing
        block += rng.standard_normal(block.shape, dtype=np.float32)
        np.maximum(block, 0, out=block)
        X[:, start:stop] = block
    loadings = rng.standard_normal((n_latent, n_voxels), dtype=np.float32) / np.float32(8.0)
    Y = latent[:n_train] @ loadings
    Y += rng.standard_normal(Y.shape, dtype=np.float32)
    return X[:n_train], X[n_train:], Y


# --------------------------------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------------------------------


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


@dataclass
class MemoryWatch:
    """tracemalloc peak and peak-RSS rise over the block, in bytes."""

    tracemalloc_peak: int = 0
    rss_rise: int | None = None
    _rss_start: int | None = field(default=None, repr=False)

    def __enter__(self) -> MemoryWatch:
        gc.collect()
        self._rss_start = _status_kib("VmRSS") if _reset_peak_rss() else None
        tracemalloc.start()
        tracemalloc.reset_peak()
        self._traced_start = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.tracemalloc_peak = tracemalloc.get_traced_memory()[1] - self._traced_start
        tracemalloc.stop()
        hwm = _status_kib("VmHWM")
        if self._rss_start is not None and hwm is not None:
            self.rss_rise = (hwm - self._rss_start) * 1024


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# ours
# --------------------------------------------------------------------------------------------------


@dataclass
class OursResult:
    kernel_s: float
    eigh_s: float
    solve_s: float
    alpha: float
    predictions: np.ndarray
    memory: MemoryWatch

    @property
    def total_s(self) -> float:
        return self.kernel_s + self.eigh_s + self.solve_s


def run_ours(X_train, Y, X_test, args):
    """Ours, end to end; also returns the decomposition, reused to time the limit's sweep."""
    with MemoryWatch() as memory:
        (K, K_test), kernel_s = timed(
            compute_centered_linear_kernels, X_train, X_test, feature_chunk_size=args.feature_chunk_size
        )
        decomposition, eigh_s = timed(
            eigendecompose_centered_kernel, K, K_test, driver=args.eigh_driver, overwrite_kernel=True
        )
        del K, K_test
        result, solve_s = timed(solve_kernel_ridge_cv_eigen, decomposition, Y, alphas=DEFAULT_ALPHAS)
    return OursResult(kernel_s, eigh_s, solve_s, result.alpha, result.predictions, memory), decomposition


# --------------------------------------------------------------------------------------------------
# the limit: the unavoidable dense kernels, each timed alone
# --------------------------------------------------------------------------------------------------


def time_kernel_gemms_and_eigh(X_train, X_test, args) -> tuple[float, float, np.ndarray]:
    """Kernel SYRK + cross GEMM over chunks (chunk preparation untimed), then one eigh of the block."""
    n, p = X_train.shape
    K = np.zeros((n, n), order="F")
    K_test = np.zeros((X_test.shape[0], n), order="F")
    gemm_s = 0.0
    for start in range(0, p, args.feature_chunk_size):
        stop = min(start + args.feature_chunk_size, p)
        train = np.asarray(X_train[:, start:stop], dtype=np.float64)
        means = train.mean(axis=0)
        train = train - means
        test = np.asarray(X_test[:, start:stop], dtype=np.float64) - means
        t0 = time.perf_counter()
        K = blas.dsyrk(1.0, train.T, beta=1.0, c=K, trans=1, overwrite_c=1)
        K_test = blas.dgemm(1.0, test.T, train.T, beta=1.0, c=K_test, trans_a=1, overwrite_c=1)
        gemm_s += time.perf_counter() - t0
    block = np.array(K[1:, 1:], order="F")
    del K
    gc.collect()
    t0 = time.perf_counter()
    if args.eigh_driver == "numpy":
        np.linalg.eigh(block)
    else:
        scipy.linalg.eigh(block, driver=args.eigh_driver, overwrite_a=True, check_finite=False)
    eigh_s = time.perf_counter() - t0
    return gemm_s, eigh_s, K_test


def time_sweep_gemms(Q: np.ndarray, eigenvalues: np.ndarray, K_test: np.ndarray, Y: np.ndarray) -> float:
    """The dense operations of the LOO sweep, refit and prediction, each alone, summed.

    Same BLAS (scipy's) as ours: mixing numpy's and scipy's OpenBLAS pools costs spin-wait time.
    """
    n, t = Y.shape
    Yc = np.asarray(Y, dtype=np.float64)
    Yc = Yc - Yc.mean(axis=0)
    total = 0.0
    B, s = timed(_gemm, Q, Yc, trans_a=True)
    total += s
    del Yc
    BT = np.array(B.T, order="F")
    lwork, _ = lapack.dgeqrf_lwork(*BT.shape)
    (qr, _, _, _), s = timed(lapack.dgeqrf, BT, lwork=int(lwork), overwrite_a=1)
    total += s
    r = min(t, n)
    L_triangular = np.array(qr[:r, :r].T, order="F")
    L_dense = np.array(qr[:r, r:].T, order="F") if r < n else None
    del qr, BT
    scaled_Q = np.empty((n, n), order="F")
    for alpha in DEFAULT_ALPHAS:
        np.multiply(Q, _dual_weights(eigenvalues, alpha), out=scaled_Q)
        t0 = time.perf_counter()
        M = blas.dtrmm(1.0, L_triangular, scaled_Q[:, :r], side=1, lower=1, overwrite_b=1)
        if L_dense is not None:
            blas.dgemm(1.0, scaled_Q[:, r:], L_dense, beta=1.0, c=M, overwrite_c=1)
        total += time.perf_counter() - t0
    del scaled_Q, L_triangular, L_dense
    test_in_basis, s = timed(_gemm, K_test, Q)
    total += s
    _, s = timed(_gemm, test_in_basis, B)
    total += s
    return total


# --------------------------------------------------------------------------------------------------
# scikit-learn
# --------------------------------------------------------------------------------------------------


def sklearn_flops(n: int, m: int, p: int, t: int) -> float:
    """Rough flop count of RidgeCV(21 alphas).fit + predict, to decide whether to run it whole."""
    a = len(DEFAULT_ALPHAS)
    if n <= p:  # eigen of the Gram matrix; X^T c is formed for every alpha
        return 2 * n * n * p + 9 * n**3 + 2 * n * n * t + a * (2 * n * n * t + 2 * n * p * t) + 2 * m * p * t
    # eigen of the covariance; the p x p inverse is formed for every alpha
    return 2 * n * p * p + 9 * p**3 + a * (2 * p**3 + 2 * n * p * p + 2 * p * p * t + 2 * n * p * t) + 2 * m * p * t


def run_sklearn(X_train, Y, X_test) -> tuple[float, float, np.ndarray, MemoryWatch]:
    from sklearn.linear_model import RidgeCV

    gc.collect()
    with MemoryWatch() as memory:
        start = time.perf_counter()
        model = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=False).fit(X_train, Y)
        predictions = model.predict(X_test)
        seconds = time.perf_counter() - start
    return seconds, float(model.alpha_), predictions, memory


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def _blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info

        return ", ".join(f"{i['internal_api']} {i.get('version')} x{i['num_threads']}" for i in threadpool_info())
    except Exception:  # informational only
        return "unknown"


def _gb(nbytes: int | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 1e9:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, a smoke run of a minute or so")
    parser.add_argument("--cases", default=None, help="n_train x n_features list, e.g. 4666x50176,897x4096")
    parser.add_argument("--voxels", default=None, help="voxel counts, e.g. 2000,6400")
    parser.add_argument("--feature-chunk-size", type=int, default=2048)
    parser.add_argument("--eigh-driver", default="evd", choices=["evd", "evr", "ev", "numpy"])
    parser.add_argument(
        "--skip-sklearn-above", type=float, default=2.5e12,
        help="estimated sklearn flops above which it is timed on voxel subsets and extrapolated",
    )
    parser.add_argument("--sklearn-subsets", default="32,256", help="the two voxel counts used to extrapolate")
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cases = QUICK_CASES if args.quick else FULL_CASES
    voxel_counts = QUICK_VOXELS if args.quick else FULL_VOXELS
    if args.cases:
        cases = [tuple(int(v) for v in case.split("x")) for case in args.cases.split(",")]
    if args.voxels:
        voxel_counts = [int(v) for v in args.voxels.split(",")]
    subsets = [int(v) for v in args.sklearn_subsets.split(",")]

    print(f"# bench_ridgecv  {time.strftime('%Y-%m-%d %H:%M:%S')}  {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"# BLAS: {_blas_threads()}")
    print(f"# 21 alphas 10^-10..10^10, shared alpha, exact LOO; eigh driver {args.eigh_driver}; "
          f"feature chunk {args.feature_chunk_size}; n_test = n_train / 4; float32 inputs")
    print("# memory: 'tm' = tracemalloc peak, 'rss' = rise of peak RSS (VmHWM), both over the inputs")
    # warm both OpenBLAS thread pools (numpy's and scipy's) so no first call pays their start-up
    warm = np.random.default_rng(0).standard_normal((300, 300))
    scipy.linalg.eigh(warm @ warm.T)
    rows = []
    for n_train, n_features in cases:
        n_test = n_train // 4
        max_voxels = max(voxel_counts)
        t0 = time.perf_counter()
        X_train, X_test, Y_all = make_data(n_train, n_test, n_features, max_voxels, args.seed)
        print(f"\n## n_train {n_train}, n_test {n_test}, n_features {n_features}  (data made in {time.perf_counter() - t0:.0f} s)", flush=True)

        # the limit's kernel GEMMs and eigh do not depend on the voxels: once per case
        kernel_gemm_s, eigh_s, K_test = time_kernel_gemms_and_eigh(X_train, X_test, args)
        print(f"   limit parts: kernel GEMMs {kernel_gemm_s:.2f} s, eigh {eigh_s:.2f} s", flush=True)

        # scikit-learn: whole, or two subsets and a linear fit in the number of voxels
        sklearn_times: dict[int, tuple[float, str]] = {}
        sklearn_alphas: dict[int, tuple[float, np.ndarray]] = {}
        if not args.no_sklearn:
            whole = [t for t in voxel_counts if sklearn_flops(n_train, n_test, n_features, t) <= args.skip_sklearn_above]
            for t in whole:
                seconds, alpha, predictions, _ = run_sklearn(X_train, Y_all[:, :t], X_test)
                sklearn_times[t] = (seconds, "measured")
                sklearn_alphas[t] = (alpha, predictions)
                print(f"   sklearn, {t} voxels: {seconds:.1f} s (measured), alpha {alpha:g}", flush=True)
            if len(whole) < len(voxel_counts):
                measured = {}
                for t in subsets:
                    seconds, _, _, _ = run_sklearn(X_train, Y_all[:, :t], X_test)
                    measured[t] = seconds
                    print(f"   sklearn, subset of {t} voxels: {seconds:.1f} s", flush=True)
                (t1, s1), (t2, s2) = sorted(measured.items())
                per_voxel = max((s2 - s1) / (t2 - t1), 0.0)
                fixed = s1 - per_voxel * t1
                for t in voxel_counts:
                    if t not in sklearn_times:
                        sklearn_times[t] = (fixed + per_voxel * t, f"extrapolated: {fixed:.1f} s + {per_voxel * 1e3:.1f} ms/voxel")

        for t in voxel_counts:
            Y = np.ascontiguousarray(Y_all[:, :t])
            gc.collect()
            ours, decomposition = run_ours(X_train, Y, X_test, args)
            # the sweep's dense kernels alone, on this case's eigenbasis
            sweep_s = time_sweep_gemms(decomposition.eigenvectors, decomposition.eigenvalues, K_test, Y)
            del decomposition
            limit_s = kernel_gemm_s + eigh_s + sweep_s
            line = (f"   ours, {t} voxels: {ours.total_s:.2f} s (kernel {ours.kernel_s:.2f} + eigh {ours.eigh_s:.2f} + "
                    f"LOO/refit/predict {ours.solve_s:.2f}), alpha {ours.alpha:g}; limit {limit_s:.2f} s "
                    f"(sweep GEMMs {sweep_s:.2f}) -> {ours.total_s / limit_s:.2f}x the limit; "
                    f"memory tm {_gb(ours.memory.tracemalloc_peak)} GB, rss {_gb(ours.memory.rss_rise)} GB")
            print(line, flush=True)
            sklearn_s, how = sklearn_times.get(t, (float("nan"), "not run"))
            agreement = ""
            if t in sklearn_alphas:
                alpha, predictions = sklearn_alphas[t]
                relative = np.abs(ours.predictions - predictions).max() / np.abs(predictions).max()
                agreement = f"same alpha: {alpha == ours.alpha}, max rel. prediction difference {relative:.1e}"
                print(f"   vs sklearn: {agreement}", flush=True)
            rows.append((n_train, n_features, t, ours, limit_s, sklearn_s, how, agreement))
            del Y
        del X_train, X_test, Y_all, K_test
        gc.collect()

    print("\n## summary")
    header = (f"{'n_train':>7} {'n_feat':>6} {'voxels':>6} | {'ours s':>7} {'limit s':>7} {'x limit':>7} | "
              f"{'sklearn s':>9} {'speedup':>7} | {'mem tm GB':>9} {'mem rss GB':>10} | sklearn timing")
    print(header)
    print("-" * len(header))
    for n_train, n_features, t, ours, limit_s, sklearn_s, how, _ in rows:
        speedup = sklearn_s / ours.total_s
        print(f"{n_train:>7} {n_features:>6} {t:>6} | {ours.total_s:>7.2f} {limit_s:>7.2f} {ours.total_s / limit_s:>7.2f} | "
              f"{sklearn_s:>9.1f} {speedup:>6.1f}x | {_gb(ours.memory.tracemalloc_peak):>9} {_gb(ours.memory.rss_rise):>10} | {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
