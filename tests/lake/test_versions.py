"""Snapshots are user-visible: every write is one commit, readers pin one snapshot, tags name them."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from laion_lake.errors import LakeConflictError, LakeError, LakeNotFoundError
from laion_lake.lake import open_lake
from tests.lake import handmade


def _activations(lake, seed: int) -> xr.DataArray:
    ids = lake.stimuli["stimulus_id"].values
    values = np.random.default_rng(seed).standard_normal((len(ids), 4)).astype(np.float32)
    return xr.DataArray(values, dims=("stimulus_id", "feature"), coords={"stimulus_id": ids})


def test_tag_and_snapshot_pin_what_a_reader_sees(lake_location):
    url, options = lake_location
    lake = handmade.write_handmade_lake(url, options)
    lake.tag("v1")
    first = lake.snapshot_id
    old = lake.features("toy", "layer.1").values
    lake.write_features("toy", "layer.1", _activations(lake, 1), overwrite=True)
    lake.write_features("other", "fc", _activations(lake, 2))
    assert lake.snapshot_id != first

    for pinned in (open_lake(url, options, tag="v1"), open_lake(url, options, snapshot=first)):
        assert pinned.snapshot_id == first
        assert pinned.feature_sets == [("toy", "layer.1")]
        np.testing.assert_array_equal(pinned.features("toy", "layer.1").values, old)
        with pytest.raises(LakeError, match="read-only"):
            pinned.write_features("x", "y", _activations(lake, 3))
    head = open_lake(url, options)
    assert head.feature_sets == [("other", "fc"), ("toy", "layer.1")]
    np.testing.assert_array_equal(head.features("toy", "layer.1").values, _activations(lake, 1).values)

    log = head.log()
    assert [e["message"] for e in log[:2]] == ["features other/fc", "features toy/layer.1 (overwrite)"]
    assert next(e for e in log if e["snapshot"] == first)["tags"] == ["v1"]
    with pytest.raises(LakeConflictError, match="tag 'v1' already exists"):
        head.tag("v1")
    with pytest.raises(LakeNotFoundError, match="no tag 'v9'"):
        open_lake(url, options, tag="v9")


def test_plain_xarray_reads_the_lake(tmp_path):
    """The documented recipe (laion_lake.lake.repository): icechunk + xr.open_zarr, no laion_lake."""
    import icechunk

    lake = handmade.write_handmade_lake(str(tmp_path / "lake"))
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(tmp_path / "lake")))
    session = repo.readonly_session("main")
    v1 = xr.open_zarr(session.store, group="subjects/sub-01/regions/V1", consolidated=False)
    assembly = lake.subject("sub-01")
    np.testing.assert_array_equal(v1["betas"].values, assembly["betas"].values[:, assembly["region"].values == "V1"])
    acts = xr.open_zarr(session.store, group="features/toy~layer.1", consolidated=False)
    np.testing.assert_array_equal(acts["activations"].values, lake.features("toy", "layer.1").values)


def test_a_transaction_is_one_commit_or_nothing(tmp_path):
    lake = handmade.write_handmade_lake(str(tmp_path / "lake"))
    before = lake.snapshot_id
    with pytest.raises(RuntimeError, match="stop"):
        with lake.transaction("two feature sets"):
            lake.write_features("a", "x", _activations(lake, 1))
            lake.write_features("b", "x", _activations(lake, 2))
            raise RuntimeError("stop")
    reopened = open_lake(lake.url)
    assert reopened.snapshot_id == before and reopened.feature_sets == [("toy", "layer.1")]
    with lake.transaction("two feature sets"):
        lake.write_features("a", "x", _activations(lake, 1))
        lake.write_features("b", "x", _activations(lake, 2))
    reopened = open_lake(lake.url)
    assert reopened.log()[0]["message"] == "two feature sets"
    assert reopened.feature_sets == [("a", "x"), ("b", "x"), ("toy", "layer.1")]
