"""Layer commitment on the synthetic lake's ground truth: early layers for V1/V2, late for V4/IT, no test data read."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from laion_lake.lake import open_lake
from laion_lake.models.commit import (
    NoCommitmentError,
    commit_layers,
    commitment_split,
    committed_leaderboard_row,
    read_layer_commitment,
)

V1_TAU, IT_TAU = "LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI.IT-tau-ridgecv"
# the shared family's tau benchmarks: one train set, every region, 5 subjects (the full headline set takes 4x longer)
SHARED_TAU = [f"LAION_fMRI.{region}-tau-ridgecv" for region in ("V1", "V2", "V4", "IT")]


@pytest.fixture(scope="module")
def mixed_model(tiny_lake):
    """One 'model' whose layers are the synthetic lake's early, late and random feature sets."""
    for layer, (model, source) in {"early": ("early_model", "conv2"), "late": ("late_model", "fc6"), "random": ("random_model", "fc")}.items():
        tiny_lake.write_features("mixed", layer, tiny_lake.features(model, source).load())
    return "mixed"


@pytest.fixture(scope="module")
def commitment(tiny_lake, mixed_model):
    return commit_layers(tiny_lake, mixed_model, benchmarks=SHARED_TAU, seed=0)


def test_commitment_follows_the_ground_truth_and_is_stored(tiny_lake, mixed_model, commitment):
    # the synthetic lake is built so: early features explain V1/V2, late ones V4/IT, random ones nothing
    assert commitment.layers == {"V1": "early", "V2": "early", "V4": "late", "IT": "late"}
    for region, scores in commitment.scores.items():
        assert set(scores) == {"early", "late", "random"} and scores["random"] < min(scores["early"], scores["late"])
    stored = read_layer_commitment(open_lake(tiny_lake.url), mixed_model)
    assert stored.layers == commitment.layers and stored.scores == commitment.scores and stored.seed == 0
    assert [chosen for _, _, chosen in stored.profile("IT")] == [False, True, False]  # early, late, random
    assert stored.benchmarks["V1"] == [V1_TAU] and stored.benchmarks["IT"] == [IT_TAU]
    # the report marks these layers on the model's profile
    from laion_lake.report.profiles import committed_layers

    assert committed_layers(open_lake(tiny_lake.url), mixed_model) == commitment.layers
    assert committed_layers(open_lake(tiny_lake.url), "nobody") == {}


def test_leaderboard_row_uses_each_regions_committed_layer(tiny_lake, mixed_model, commitment):
    from laion_lake.scoring import score_many

    rows = committed_leaderboard_row(open_lake(tiny_lake.url), mixed_model, [V1_TAU, IT_TAU])
    assert [(r["benchmark"], r["layer"]) for r in rows] == [(V1_TAU, "early"), (IT_TAU, "late")]
    direct = score_many(tiny_lake, [(mixed_model, "early"), (mixed_model, "late")], [V1_TAU, IT_TAU])
    assert rows[0]["value"] == float(direct[(mixed_model, "early", V1_TAU)])
    assert rows[1]["value"] == float(direct[(mixed_model, "late", IT_TAU)])


def test_commitment_never_reads_test_stimuli(tiny_lake):
    """Two layers equal on every train id of the split and different on its test ids commit with equal scores."""
    base = tiny_lake.features("early_model", "conv2").load()
    _, test_ids = tiny_lake.split("shared", "tau")
    noisy = base.copy(data=base.values.copy())
    rows = np.isin(noisy["stimulus_id"].values, test_ids)
    noisy.values[rows] = np.random.default_rng(5).standard_normal((rows.sum(), noisy.sizes["feature"])).astype(noisy.dtype)
    tiny_lake.write_features("probe", "clean", base)
    tiny_lake.write_features("probe", "test-rows-noise", xr.DataArray(noisy.values, dims=base.dims, coords=base.coords))
    commitment = commit_layers(tiny_lake, "probe", benchmarks=[V1_TAU], store=False)
    assert commitment.scores["V1"]["clean"] == commitment.scores["V1"]["test-rows-noise"]
    from laion_lake.scoring import score_many

    scores = score_many(tiny_lake, [("probe", "clean"), ("probe", "test-rows-noise")], [V1_TAU])
    assert float(scores[("probe", "clean", V1_TAU)]) != float(scores[("probe", "test-rows-noise", V1_TAU)])  # the test rows matter there


def test_commitment_split_is_seeded_disjoint_and_inside_the_train_set():
    train = np.array([f"s{i:03d}.jpg" for i in range(50)])
    fit, validate = commitment_split(train, "shared", "tau", seed=3)
    again = commitment_split(train, "shared", "tau", seed=3)
    assert np.array_equal(fit, again[0]) and np.array_equal(validate, again[1])
    assert len(fit) == 40 and len(validate) == 10 and not np.intersect1d(fit, validate).size
    assert set(fit) | set(validate) == set(train)
    assert not np.array_equal(commitment_split(train, "shared", "tau", seed=4)[1], validate)


def test_no_commitment_is_a_named_error(tiny_lake):
    with pytest.raises(NoCommitmentError, match="no committed layers for model 'nobody'"):
        read_layer_commitment(tiny_lake, "nobody")
    with pytest.raises(NoCommitmentError, match="no feature sets of model 'nobody'"):
        commit_layers(tiny_lake, "nobody")
