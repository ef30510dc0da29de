"""Voxels are sorted by region and chunked so that reading one region reads only its own chunks."""

from __future__ import annotations

import math

import numpy as np

from laion_lake.lake import create_lake, open_lake
from laion_lake.scoring.reads import read_region_average
from tests.lake import handmade

REGIONS = {"V1": 700, "V4": 300, "IT": 1100}  # V1 spans two 512-wide neuroid chunks


def test_one_region_reads_only_its_chunks(lake_location):
    url, options = lake_location
    lake = create_lake(url, options)
    lake.write_stimuli(handmade.stimulus_table())
    lake.write_subject("sub-01", handmade.assembly("sub-01", regions=REGIONS))
    lake = open_lake(url, options)
    lake.storage.stats.reset()
    responses = lake.responses("sub-01", "V1", nc_threshold=None).compute()
    assert responses.sizes["neuroid"] == REGIONS["V1"]
    # the stored repeat means are read (laion_lake.lake.averages), V1's only, and no trial-level betas
    chunks = [key for key in lake.storage.stats.chunk_keys("subjects/sub-01/") if "/c/" in key]
    means = [key for key in chunks if "/responses/c/" in key]
    expected = math.ceil(responses.sizes["stimulus_id"] / 8192) * math.ceil(REGIONS["V1"] / 512)
    assert not [key for key in chunks if "/betas/c/" in key], chunks
    assert all(key.startswith("subjects/sub-01/averaged/V1/") for key in means), means
    assert len(means) == expected == 2
    # averaged at read time (a store written before the means were stored): V1's betas chunks only
    lake.storage.stats.reset()
    read_region_average(lake, "sub-01", "V1", None, "nc_12rep", from_trials=True)
    betas_chunks = [key for key in lake.storage.stats.chunk_keys("subjects/sub-01/") if "/c/" in key and "/betas/" in key]
    n_trials = lake.subject("sub-01").sizes["trial"]
    assert all(key.startswith("subjects/sub-01/regions/V1/betas/c/") for key in betas_chunks), betas_chunks
    assert len(betas_chunks) == math.ceil(n_trials / 2048) * math.ceil(REGIONS["V1"] / 512) == 2


def test_region_query_reads_a_fraction_of_the_subject(tmp_path):
    lake = create_lake(str(tmp_path / "lake"))
    lake.write_stimuli(handmade.stimulus_table())
    lake.write_subject("sub-01", handmade.assembly("sub-01", regions=REGIONS))
    lake.storage.stats.reset()
    read_region_average(lake, "sub-01", "V4", None, "nc_12rep", from_trials=True)
    one_region = lake.storage.stats.bytes_read
    lake.storage.stats.reset()
    lake.subject("sub-01")["betas"].compute()
    whole = lake.storage.stats.bytes_read
    share = REGIONS["V4"] / sum(REGIONS.values())
    # compressed random float32 is near raw size, so the byte ratio tracks the voxel share
    assert one_region / whole < share + 0.1, (one_region, whole)
    assert np.isfinite(one_region) and one_region > 0


def test_neuroid_coords_read_with_zarr_equal_the_region_dataset(tmp_path):
    """The coordinates read_region_average takes from the small Zarr arrays are those store.region loads
    (names, dtypes, values), for a stored and a derived (concatenated) region, the NC filter applied."""
    from laion_lake.scoring.reads import _neuroid_coords

    lake = create_lake(str(tmp_path / "lake"))
    lake.write_stimuli(handmade.stimulus_table())
    lake.write_subject("sub-01", handmade.assembly("sub-01", regions=REGIONS))
    store = lake._subject_store("sub-01")
    for region in ("V1", "IT_full"):
        ds = store.region(region)
        expected = {str(n): np.asarray(ds[n].values) for n in ds.coords if ds[n].dims == ("neuroid",)}
        coords = _neuroid_coords(store, region)
        assert sorted(coords) == sorted(expected) and "nc_12rep" in coords and "neuroid_id" in coords
        for name, values in expected.items():
            assert coords[name].dtype == values.dtype and np.array_equal(coords[name], values), name
        keep = np.flatnonzero(ds["nc_12rep"].values > 30.0)
        block = read_region_average(lake, "sub-01", region, 30.0, "nc_12rep")
        assert 0 < len(keep) < ds.sizes["neuroid"] and block["values"].shape[1] == len(keep)
        assert np.array_equal(block["neuroid_coords"]["neuroid_id"], ds["neuroid_id"].values[keep])
        assert np.array_equal(block["neuroid_coords"]["neuroid"], ds.isel(neuroid=keep)["neuroid"].values)
