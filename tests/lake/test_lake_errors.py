"""Bad input gets a clear error naming what is at fault; a failed write leaves the last commit as it was."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from laion_lake.errors import IncompleteStoreError, LakeNotFoundError, MissingStimuliError, StoreExistsError, UnknownNameError
from laion_lake.lake import create_lake, open_lake
from laion_lake.lake.subjects import SubjectStore
from storage_schemas import SchemaError
from tests.lake import handmade


@pytest.fixture
def lake(lake_location):
    """A fresh lake, for tests that damage or replace what it holds."""
    url, options = lake_location
    return handmade.write_handmade_lake(url, options)


@pytest.fixture(scope="module")
def shared_lake(module_lake_location):
    """One lake for the tests whose failed writes must leave it as it was (cheaper on S3)."""
    url, options = module_lake_location
    return handmade.write_handmade_lake(url, options)


def test_missing_coordinate_is_named(shared_lake):
    bad = handmade.assembly("sub-05").drop_vars("nc_12rep")
    with pytest.raises(SchemaError, match=r"subjects/sub-05 \[nc_12rep\]: missing coordinate"):
        shared_lake.write_subject("sub-05", bad.assign_attrs(subject="sub-05"))
    assert "sub-05" not in open_lake(shared_lake.url, shared_lake.storage_options).subjects


def test_wrong_dtype_and_nan_noise_ceiling_are_all_reported(shared_lake):
    bad = handmade.assembly("sub-05")
    bad = bad.assign_coords(session=bad["session"].astype(np.float64))
    nc = bad["nc_4rep"].values.copy()
    nc[[2, 7]] = np.nan
    bad = bad.assign_coords(nc_4rep=("neuroid", nc), subject=None).drop_vars("subject").assign_attrs(subject="sub-05")
    with pytest.raises(SchemaError) as raised:
        shared_lake.write_subject("sub-05", bad)
    message = str(raised.value)
    assert "[session]: dtype float64, expected int16" in message
    ids = bad["neuroid_id"].values
    assert f"[nc_4rep]: 2 non-finite value(s) at neuroid '{ids[2]}', '{ids[7]}'" in message


def test_duplicate_stimulus_ids_are_named(tmp_path):
    table = handmade.stimulus_table()
    ids = table["stimulus_id"].values.copy()
    ids[1] = ids[0]
    lake = create_lake(str(tmp_path / "lake"))
    with pytest.raises(SchemaError, match=r"\[stimulus_id\]: duplicate value\(s\): '" + ids[0].replace(".", r"\.")):
        lake.write_stimuli(table.assign_coords(stimulus_id=ids))


def test_unknown_subject_region_split_and_feature_set(shared_lake):
    with pytest.raises(UnknownNameError, match=r"unknown subject 'sub-1'.*did you mean 'sub-01'"):
        shared_lake.subject("sub-1")
    with pytest.raises(UnknownNameError, match=r"unknown region 'V5'.*valid: 'IT', 'IT_full', 'V1', 'V4'"):
        shared_lake.responses("sub-01", "V5")
    with pytest.raises(UnknownNameError, match=r"unknown split 'ood_gabr'.*did you mean 'ood_gabor'"):
        shared_lake.split("shared", "ood_gabr")
    with pytest.raises(UnknownNameError, match=r"unknown pool 'sub-02'"):
        shared_lake.split("sub-02", "tau")
    with pytest.raises(UnknownNameError, match=r"unknown feature set 'toy/layer.2'.*'toy/layer\.1'"):
        shared_lake.features("toy", "layer.2")
    with pytest.raises(UnknownNameError, match=r"unknown noise-ceiling coordinate 'nc_13rep'"):
        shared_lake.responses("sub-01", "V1", nc_coord="nc_13rep")


def test_features_missing_stimuli_name_them(shared_lake):
    ids = shared_lake.stimuli["stimulus_id"].values
    partial = xr.DataArray(np.ones((3, 2), np.float32), dims=("stimulus_id", "feature"), coords={"stimulus_id": ids[:3]})
    shared_lake.write_features("partial", "fc", partial)
    with pytest.raises(MissingStimuliError, match=rf"lacks 2 stimulus id\(s\).*'{ids[3]}', '{ids[4]}'"):
        shared_lake.features("partial", "fc", ids[:5])
    with pytest.raises(MissingStimuliError, match=r"never|lacks 1 stimulus id.*'unique_LAION_initial_cluster_0_i0_p03\.jpg'"):
        shared_lake.responses("sub-01", "V1", stimulus_ids=["unique_LAION_initial_cluster_0_i0_p03.jpg"])
    unknown = partial.assign_coords(stimulus_id=["not_an_image.jpg", *ids[1:3]])
    with pytest.raises(ValueError, match=r"not in the lake's stimulus table: 'not_an_image\.jpg'"):
        shared_lake.write_features("partial", "fc2", unknown)


def _failing_copy(assembly: xr.Dataset) -> xr.Dataset:
    """The same assembly whose betas raise while being written (after the first region)."""

    def explode(block: np.ndarray, block_info=None) -> np.ndarray:
        if block_info[None]["chunk-location"][1] > 0:
            raise OSError("disk on fire")
        return block

    betas = da.from_array(assembly["betas"].values, chunks=(-1, 4)).map_blocks(explode, dtype=np.float32)
    return assembly.copy(data={"betas": betas})


def test_failed_write_leaves_nothing_that_looks_complete(shared_lake):
    with pytest.raises(OSError, match="disk on fire"):
        shared_lake.write_subject("sub-05", _failing_copy(handmade.assembly("sub-05").assign_attrs(subject="sub-05")))
    reopened = open_lake(shared_lake.url, shared_lake.storage_options)
    assert "sub-05" not in reopened.subjects
    with pytest.raises(UnknownNameError):
        reopened.subject("sub-05")
    assert not reopened.storage.exists("subjects/sub-05")
    assert reopened.snapshot_id == shared_lake.snapshot_id  # nothing was committed


def test_failed_overwrite_keeps_the_old_store(lake):
    before = lake.subject("sub-01")["betas"].values
    with pytest.raises(StoreExistsError, match="overwrite=True"):
        lake.write_subject("sub-01", handmade.assembly("sub-01", seed=5))
    with pytest.raises(OSError, match="disk on fire"):
        lake.write_subject("sub-01", _failing_copy(handmade.assembly("sub-01", seed=5)), overwrite=True)
    np.testing.assert_array_equal(open_lake(lake.url, lake.storage_options).subject("sub-01")["betas"].values, before)
    lake.write_subject("sub-01", handmade.assembly("sub-01", seed=5), overwrite=True)
    after = open_lake(lake.url, lake.storage_options).subject("sub-01")["betas"].values
    np.testing.assert_array_equal(after, handmade.assembly("sub-01", seed=5)["betas"].values)
    assert [entry["message"] for entry in lake.log()][:2] == ["subject sub-01 (overwrite)", "features toy/layer.1"]


def test_group_without_entry_is_not_a_store(lake):
    import zarr

    def unmark(session):
        zarr.open_group(session.store, path="subjects/sub-03", mode="r+").attrs["laion_lake_complete"] = False

    lake.storage.write("unmark", unmark)
    assert "sub-03" not in open_lake(lake.url, lake.storage_options).subjects
    with pytest.raises(IncompleteStoreError, match=r"subjects/sub-03 is not a complete store"):
        SubjectStore(lake.storage, "sub-03")


def test_no_lake_at_url(tmp_path):
    with pytest.raises(LakeNotFoundError, match="no lake at"):
        open_lake(str(tmp_path / "nothing"))
