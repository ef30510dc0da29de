"""ridgecv_many takes a generator of target matrices (one held at a time) and returns what a list gives."""

from __future__ import annotations

import numpy as np
import pytest

from laion_lake.compute.solvers import decompose_train_features


@pytest.mark.parametrize("n_features", [12, 90])  # primal (p < n), dual (p >= n)
def test_generator_of_targets_equals_a_list(n_features):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((70, n_features))
    decomposition = decompose_train_features(X[:50], X[50:])
    targets = [rng.standard_normal((50, v)).astype(np.float32) for v in (4, 9)]
    from_list = decomposition.ridgecv_many(targets)
    from_generator = decomposition.ridgecv_many(Y for Y in targets)
    assert len(from_generator) == 2
    for a, b in zip(from_list, from_generator):
        assert a.alpha == b.alpha and np.array_equal(a.predictions, b.predictions) and np.array_equal(a.cv_errors, b.cv_errors)
        assert a.predictions.shape[0] == 20 and np.all(np.isfinite(a.predictions))
