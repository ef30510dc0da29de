"""The lake on local disk and on a real S3 endpoint: what is written is what is read, lazily."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from laion_lake.lake import open_lake
from tests.lake import handmade


@pytest.fixture(scope="module")
def lake(module_lake_location):
    url, options = module_lake_location
    handmade.write_handmade_lake(url, options)
    return open_lake(url, options)


def test_manifest_lists_what_was_written(lake):
    assert lake.subjects == ["sub-01", "sub-03"]
    assert lake.pools == ["shared", "sub-01", "sub-03"]
    assert lake.feature_sets == [("toy", "layer.1")]
    assert lake.manifest["subjects"]["sub-01"]["regions"] == {"V1": 5, "V4": 3, "IT": 7}


def test_subject_assembly_round_trips(lake):
    source = handmade.assembly("sub-01", seed=0)
    stored = lake.subject("sub-01")
    assert stored["betas"].chunks is not None  # lazy, dask-backed
    np.testing.assert_array_equal(stored["betas"].values, source["betas"].values)
    for name in ("stimulus_id", "session", "run", "beta_index", "repetition", "neuroid_id", "region", "roi", "nc_12rep", "voxel_index_in_brain_mask", "x"):
        np.testing.assert_array_equal(stored[name].values, source[name].values, err_msg=name)
        assert stored[name].dtype == source[name].dtype, name
    assert stored.attrs["regions"] == ["V1", "V4", "IT"]


def test_responses_average_repeats_and_filter_voxels(lake):
    source = handmade.assembly("sub-01", seed=0)
    responses = lake.responses("sub-01", "IT_full", nc_threshold=30.0)
    keep = np.isin(source["region"].values, ["V4", "IT"]) & (source["nc_12rep"].values > 30.0)
    expected = source.isel(neuroid=np.flatnonzero(keep))["betas"].groupby("stimulus_id").mean()
    assert responses.dims == ("stimulus_id", "neuroid")
    np.testing.assert_array_equal(responses["stimulus_id"].values, expected["stimulus_id"].values)
    np.testing.assert_allclose(responses.values, expected.values, rtol=0, atol=2e-7)
    counts = source["stimulus_id"].to_series().value_counts().sort_index()
    np.testing.assert_array_equal(responses["n_repeats"].values, counts.values)
    # strict threshold: a voxel exactly at the threshold is dropped
    assert (responses["nc_12rep"].values > 30.0).all()


def test_responses_for_chosen_stimuli_and_thresholds(lake):
    table = lake.stimuli
    wanted = table["stimulus_id"].values[table["shared"].values][::-1][:3]
    responses = lake.responses("sub-03", "V1", stimulus_ids=wanted, nc_threshold=None)
    assert list(responses["stimulus_id"].values) == sorted(wanted)
    assert responses.sizes["neuroid"] == 5
    other = lake.responses("sub-03", "V1", nc_threshold=50.0, nc_coord="nc_allrep")
    assert (other["nc_allrep"].values > 50.0).all()


def test_splits_and_ood_category(lake):
    train, test = lake.split("sub-01", "tau")
    assert len(set(train) & set(test)) == 0 and list(train) == sorted(train)
    _, gabor = lake.split("shared", "ood_gabor")
    assert list(gabor) == ["shared_4rep_OOD_gabor_gabor-1-radial.jpg"]
    assert "ood_shape" in lake.split_names("shared")


def test_features_round_trip_in_requested_order(lake):
    ids = lake.stimuli["stimulus_id"].values
    wanted = ids[[4, 0, 2]]
    features = lake.features("toy", "layer.1", wanted)
    expected = np.random.default_rng(9).standard_normal((len(ids), 6)).astype(np.float32)[[4, 0, 2]]
    np.testing.assert_array_equal(features.values, expected)
    assert list(features["stimulus_id"].values) == list(wanted)


def test_lake_pickles_as_its_url(lake):
    import pickle

    again = pickle.loads(pickle.dumps(lake))
    assert again == lake and again.subjects == lake.subjects
