"""Centred linear kernels: streamed feature chunks, train-mean centring, float32 inputs."""

from __future__ import annotations

import numpy as np
import pytest

from laion_lake.compute.kernel import compute_centered_linear_kernels


def reference_kernels(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-shot float64 kernels, centred on the train means."""
    X_train = X_train.astype(np.float64)
    means = X_train.mean(axis=0)
    centred = X_train - means
    return centred @ centred.T, (X_test.astype(np.float64) - means) @ centred.T


class ColumnSliceRecorder:
    """A lazy-array stand-in: supports ``X[:, a:b]`` only, and records the widest slice asked for."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.shape = values.shape
        self.widest = 0

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, columns = key
        assert rows == slice(None), "only column slices are expected"
        start, stop, _ = columns.indices(self.shape[1])
        self.widest = max(self.widest, stop - start)
        return self.values[:, columns]


@pytest.mark.parametrize("chunk", [1, 7, 64, 300, 10_000])
def test_streamed_kernel_equals_one_shot(chunk: int) -> None:
    rng = np.random.default_rng(0)
    X_train = rng.standard_normal((40, 300)) * rng.uniform(0.1, 3, 300) + rng.uniform(-2, 2, 300)
    X_test = rng.standard_normal((9, 300)) + 1.0
    K, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=chunk)
    K_ref, K_test_ref = reference_kernels(X_train, X_test)
    np.testing.assert_allclose(K, K_ref, rtol=1e-12, atol=1e-12 * np.abs(K_ref).max())
    np.testing.assert_allclose(K_test, K_test_ref, rtol=1e-12, atol=1e-12 * np.abs(K_test_ref).max())
    assert np.array_equal(K, K.T)


def test_kernel_is_centred_on_train_means_only() -> None:
    rng = np.random.default_rng(1)
    X_train = rng.standard_normal((30, 50)) + 3.0
    X_test = rng.standard_normal((5, 50)) - 7.0  # a test-set shift must survive: no test centring
    K, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=16)
    assert np.abs(K @ np.ones(30)).max() < 1e-10 * np.abs(K).max()
    # rows of the cross kernel of a constant shift c: (x_t - mu) . xc_i; sum over train i is 0
    assert np.abs(K_test.sum(axis=1)).max() < 1e-10 * np.abs(K_test).max()
    _, K_test_ref = reference_kernels(X_train, X_test)
    np.testing.assert_allclose(K_test, K_test_ref, rtol=1e-12)


def test_lazy_input_is_read_one_chunk_at_a_time() -> None:
    rng = np.random.default_rng(2)
    values = rng.standard_normal((20, 257)).astype(np.float32)
    X_train, X_test = ColumnSliceRecorder(values[:15]), ColumnSliceRecorder(values[15:])
    K, K_test = compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=32)
    assert X_train.widest == 32 and X_test.widest == 32
    K_ref, K_test_ref = reference_kernels(values[:15], values[15:])
    np.testing.assert_allclose(K, K_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(K_test, K_test_ref, rtol=1e-10, atol=1e-10)


def test_float32_relu_features_with_large_mean_do_not_cancel() -> None:
    # ReLU-like activations: non-negative, mean ~5, spread ~1. Centring after a float32 product
    # would lose ~3 digits (25 p vs p); centring each chunk in float64 first loses nothing.
    rng = np.random.default_rng(3)
    X = np.maximum(rng.normal(5.0, 1.0, size=(60, 2000)), 0).astype(np.float32)
    K, K_test = compute_centered_linear_kernels(X[:50], X[50:], feature_chunk_size=256)
    K_ref, K_test_ref = reference_kernels(X[:50], X[50:])
    np.testing.assert_allclose(K, K_ref, rtol=1e-11, atol=1e-11 * np.abs(K_ref).max())
    np.testing.assert_allclose(K_test, K_test_ref, rtol=1e-11, atol=1e-11 * np.abs(K_test_ref).max())

    # the opt-in float32 GEMM is still accurate to float32 precision after float64 centring
    K32, K_test32 = compute_centered_linear_kernels(X[:50], X[50:], feature_chunk_size=256, compute_dtype=np.float32)
    assert np.abs(K32 - K_ref).max() < 1e-5 * np.abs(K_ref).max()
    assert np.abs(K_test32 - K_test_ref).max() < 1e-5 * np.abs(K_test_ref).max()


def test_without_test_set_and_bad_inputs() -> None:
    X = np.arange(12.0).reshape(3, 4)
    K, K_test = compute_centered_linear_kernels(X)
    assert K_test is None and K.shape == (3, 3)
    with pytest.raises(ValueError, match="features"):
        compute_centered_linear_kernels(X, np.ones((2, 5)))
    with pytest.raises(ValueError, match="compute_dtype"):
        compute_centered_linear_kernels(X, compute_dtype=np.int32)
    with pytest.raises(ValueError, match="feature_chunk_size"):
        compute_centered_linear_kernels(X, feature_chunk_size=0)


def test_inputs_are_left_untouched() -> None:
    rng = np.random.default_rng(4)
    X_train, X_test = rng.standard_normal((12, 10)) + 2.0, rng.standard_normal((3, 10))
    copies = X_train.copy(), X_test.copy()
    compute_centered_linear_kernels(X_train, X_test, feature_chunk_size=100)  # one chunk: a full view
    np.testing.assert_array_equal(X_train, copies[0])
    np.testing.assert_array_equal(X_test, copies[1])


def test_compute_package_imports_only_numpy_and_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, laion_lake.compute; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'zarr', 'dask', 'xarray', 'fsspec', 'prefect', 'sklearn', 'pandas', 'distributed'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_non_finite_train_features_are_refused() -> None:
    X = np.ones((4, 6))
    X[2, 4] = np.nan
    with pytest.raises(ValueError, match="column 4"):
        compute_centered_linear_kernels(X, feature_chunk_size=3)
