"""Centred linear kernels, built by streaming feature chunks.

Model features can be very wide (a convolutional layer flattens to ~800k features), far wider than
there are stimuli. The ridge solvers only ever need the (n_train, n_train) train kernel and the
(n_test, n_train) cross kernel, so the features are read one chunk of columns at a time and never
held whole in float64.

Centring is on the train feature means: that is what fitting an intercept means, and it keeps the
test set out of the fit. Features are not scaled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import blas

DEFAULT_FEATURE_CHUNK_SIZE = 2048

_SUPPORTED_COMPUTE_DTYPES = (np.float64, np.float32)


def _feature_chunk_as_float64(X: Any, start: int, stop: int) -> np.ndarray:
    """Columns ``start:stop`` of ``X`` as a new C-contiguous float64 array (works for lazy arrays).

    Always a copy, never a view: the chunk is centred in place, and a float64 input's slice would
    otherwise be the caller's memory.
    """
    source = np.asarray(X[:, start:stop])
    chunk = np.empty(source.shape, dtype=np.float64)
    chunk[...] = source
    return chunk


def _symmetrize_from_upper(K: np.ndarray) -> np.ndarray:
    """Copy the upper triangle (the one ``?syrk`` wrote) onto the lower one, in place."""
    lower = np.tril_indices(K.shape[0], k=-1)
    K[lower] = K.T[lower]
    return K


def compute_centered_linear_kernels(
    X_train: Any,
    X_test: Any | None = None,
    feature_chunk_size: int = DEFAULT_FEATURE_CHUNK_SIZE,
    compute_dtype: type | str = np.float64,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Centred train kernel and train-centred cross kernel, streaming feature chunks.

    With ``mu`` the mean of the train rows of ``X_train`` (per feature), ``Xc = X_train - mu`` and
    ``Xt = X_test - mu``, this returns ``K_train = Xc @ Xc.T`` and ``K_test = Xt @ Xc.T``.

    Parameters
    ----------
    X_train : array of shape (n_train, n_features)
        Train features: a numpy array or anything supporting ``X[:, a:b]`` and ``np.asarray`` on the
        slice (a memory map, a lazy array). Any real dtype.
    X_test : array of shape (n_test, n_features), optional
        Test features, same feature order. ``None`` skips the cross kernel.
    feature_chunk_size : int
        Number of feature columns read, converted to float64 and centred at a time. Peak extra
        memory is about ``8 * (n_train + n_test) * feature_chunk_size`` bytes on top of the
        kernels themselves.
    compute_dtype : {np.float64, np.float32}
        Precision of the kernel GEMMs. Centring is always done in float64 first, so that
        non-negative, large-mean features (ReLU activations) lose nothing to cancellation. The
        float32 GEMM is about twice as fast but adds a relative error of order 1e-7 * ||K|| per
        entry, which matters when the kernel is rank deficient (more samples than features) and
        alpha is small; float64 is the default for that reason. Chunk results are always
        accumulated in float64.

    Returns
    -------
    K_train : array of shape (n_train, n_train), float64
        Symmetric, positive semi-definite up to rounding, with ``K_train @ 1 = 0`` up to rounding.
    K_test : array of shape (n_test, n_train), float64, or None
        A test row holding NaN gives a NaN row (that stimulus's predictions only).

    Raises
    ------
    ValueError
        If ``X_train`` holds NaN or inf (every kernel entry would be NaN), naming a column.
    """
    compute_dtype = np.dtype(compute_dtype).type
    if compute_dtype not in _SUPPORTED_COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be float64 or float32, got {compute_dtype!r}")
    if feature_chunk_size < 1:
        raise ValueError(f"feature_chunk_size must be >= 1, got {feature_chunk_size}")
    n_train, n_features = X_train.shape
    if X_test is not None and X_test.shape[1] != n_features:
        raise ValueError(
            f"X_test has {X_test.shape[1]} features but X_train has {n_features}; "
            "both must list the same features in the same order"
        )
    if n_train < 1:
        raise ValueError("X_train has no rows")
    n_test = 0 if X_test is None else X_test.shape[0]

    # Fortran order so that the BLAS wrappers accumulate in place (no n x n copy per chunk).
    K_train = np.zeros((n_train, n_train), dtype=np.float64, order="F")
    K_test = np.zeros((n_test, n_train), dtype=np.float64, order="F") if X_test is not None else None

    for start in range(0, n_features, feature_chunk_size):
        stop = min(start + feature_chunk_size, n_features)
        train_chunk = _feature_chunk_as_float64(X_train, start, stop)
        # The mean is taken in float64 and subtracted before any product: a float32 GEMM of raw
        # ReLU features (mean ~5, spread ~1) would lose most digits to cancellation afterwards.
        chunk_means = train_chunk.mean(axis=0)
        if not np.all(np.isfinite(chunk_means)):
            bad = start + np.flatnonzero(~np.isfinite(chunk_means))
            raise ValueError(f"X_train holds NaN or inf in {bad.size} feature(s), e.g. column {bad[0]}")
        train_chunk -= chunk_means
        test_chunk = None
        if X_test is not None and n_test > 0:
            test_chunk = _feature_chunk_as_float64(X_test, start, stop)
            test_chunk -= chunk_means

        if compute_dtype is np.float64:
            # train_chunk.T is F-contiguous (chunk x n): trans=1 gives chunk.T.T @ chunk.T = Xc Xc^T
            K_train = blas.dsyrk(1.0, train_chunk.T, beta=1.0, c=K_train, trans=1, overwrite_c=1)
            if test_chunk is not None:
                K_test = blas.dgemm(
                    1.0, test_chunk.T, train_chunk.T, beta=1.0, c=K_test,
                    trans_a=1, trans_b=0, overwrite_c=1,
                )
        else:
            train_chunk32 = train_chunk.astype(np.float32)
            del train_chunk
            K_train += blas.ssyrk(1.0, train_chunk32.T, trans=1)
            if test_chunk is not None:
                test_chunk32 = test_chunk.astype(np.float32)
                del test_chunk
                K_test += blas.sgemm(1.0, test_chunk32.T, train_chunk32.T, trans_a=1, trans_b=0)
        # freed before the next chunk is read: a streamed reader's block and chunks in flight would
        # otherwise sit beside this (n + n_test) x chunk float64 copy at the kernel phase's peak
        train_chunk = test_chunk = train_chunk32 = test_chunk32 = None

    # ?syrk fills the upper triangle only; the float32 branch summed full-but-upper results too.
    _symmetrize_from_upper(K_train)
    return K_train, K_test
