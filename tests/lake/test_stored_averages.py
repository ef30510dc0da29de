"""Repeat means stored with the betas (issue #10, read once): the same values as averaging every trial
at read time, from both write paths; a store without them is averaged at read time; ``validate --deep``
recomputes them."""

from __future__ import annotations

import numpy as np
import zarr

from laion_lake.lake import create_lake, open_lake
from laion_lake.lake.averages import AVERAGED_ATTR, averaged_path
from laion_lake.lake.check import verify_store
from laion_lake.lake.subjects import subject_path, write_subject_streaming
from laion_lake.scoring.reads import read_region_average
from tests.faults.writers import streamed_subject
from tests.lake import handmade

REGIONS = {"V1": 700, "V4": 300, "IT": 1100}  # V1 and IT span two and three 512-wide chunks


def _lake(tmp_path, name="lake"):
    lake = create_lake(str(tmp_path / name))
    lake.write_stimuli(handmade.stimulus_table())
    return lake


def _commit(lake, change, message):
    session = lake.storage.repository.session_for_writing()
    change(session.store)
    lake.storage.repository.commit(session, message)
    return open_lake(lake.url)


def test_stored_means_equal_averaging_every_trial(tmp_path):
    ds = handmade.assembly("sub-01", regions=REGIONS)
    lake = _lake(tmp_path)
    lake.write_subject("sub-01", ds)
    lake = open_lake(lake.url)
    assert lake._subject_store("sub-01").averaged
    for region, threshold in (("V1", None), ("IT", 30.0), ("V4", 50.0)):
        stored = read_region_average(lake, "sub-01", region, threshold, "nc_12rep")
        averaged_here = read_region_average(lake, "sub-01", region, threshold, "nc_12rep", from_trials=True)
        assert np.array_equal(stored["values"], averaged_here["values"])  # bit for bit
        assert np.array_equal(stored["n_repeats"], averaged_here["n_repeats"])
        lazy = lake.responses("sub-01", region, nc_threshold=threshold)
        assert np.array_equal(lazy.values, stored["values"])
        subset = lazy.stimulus_id.values[1::3]
        assert np.array_equal(lake.responses("sub-01", region, subset, nc_threshold=threshold).values, stored["values"][1::3])
    # against numpy's mean of each stimulus' trials (float64, then float32)
    v1 = ds.isel(neuroid=np.flatnonzero(ds["region"].values == "V1"))
    stored = lake.responses("sub-01", "V1", nc_threshold=None)
    for stimulus in stored.stimulus_id.values[:5]:
        trials = v1["betas"].values[v1["stimulus_id"].values == stimulus]
        np.testing.assert_allclose(stored.sel(stimulus_id=stimulus).values, trials.astype(np.float64).mean(axis=0), rtol=0, atol=1e-6)
        assert int(stored.n_repeats.sel(stimulus_id=stimulus)) == len(trials)


def test_a_streamed_subject_stores_the_same_means(tmp_path):
    trials, neuroids, blocks, ds = streamed_subject(3)
    streamed, whole = _lake(tmp_path, "streamed"), _lake(tmp_path, "whole")
    write_subject_streaming(streamed.storage, "sub-01", trials, neuroids, blocks)
    whole.write_subject("sub-01", ds.assign_attrs(subject="sub-01"))
    for region in ("V1", "V4", "IT"):
        a = open_lake(streamed.url).responses("sub-01", region, nc_threshold=None).values
        b = open_lake(whole.url).responses("sub-01", region, nc_threshold=None).values
        c = read_region_average(open_lake(whole.url), "sub-01", region, None, "nc_12rep", from_trials=True)["values"]
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_a_store_without_means_is_averaged_at_read_time(tmp_path):
    lake = _lake(tmp_path)
    lake.write_subject("sub-01", handmade.assembly("sub-01", regions=REGIONS))
    before = open_lake(lake.url).responses("sub-01", "IT").values
    relative = subject_path("sub-01")

    def drop_means(store):  # a store as written before the means were stored
        group = zarr.open_group(store, path=relative, mode="r+")
        del group["averaged"]
        attrs = dict(group.attrs)
        attrs.pop(AVERAGED_ATTR)
        group.attrs.put(attrs)

    old = _commit(lake, drop_means, "drop the stored means")
    assert not old._subject_store("sub-01").averaged
    assert np.array_equal(old.responses("sub-01", "IT").values, before)
    assert np.array_equal(read_region_average(old, "sub-01", "IT", 30.0, "nc_12rep")["values"], before)
    assert verify_store(old, "subject", "sub-01") == []


def test_validate_deep_recomputes_the_means(tmp_path):
    lake = _lake(tmp_path)
    lake.write_subject("sub-01", handmade.assembly("sub-01", regions=REGIONS))
    assert verify_store(open_lake(lake.url), "subject", "sub-01") == []

    def tamper(store):
        array = zarr.open_array(store, path=f"{averaged_path(subject_path('sub-01'), 'V4')}/responses", mode="r+")
        array[3, 7] = array[3, 7] + np.float32(0.5)

    damage = verify_store(_commit(lake, tamper, "tamper"), "subject", "sub-01")
    assert [str(d) for d in damage] == [
        "subjects/sub-01 [averaged]: averaged responses of V4 differ from the repeat means of its betas in 1 value(s)"
    ]
