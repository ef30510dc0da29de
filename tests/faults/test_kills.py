"""SIGKILL of a writer at spread-out moments leaves the lake exactly in the old or the new state.

Each kind of write (synth, synth --overwrite, features add --overwrite, an ingest-style streamed
subject) is first timed once uninterrupted, then killed at 6 seeded moments spread over that
duration. After each kill the head must equal the state before or the state after the write (by
content checksum), and every store must read whole and match its checksum.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from laion_lake.lake import open_lake
from laion_lake.lake.zarr_io import content_checksum
from tests.faults.conftest import assert_reads_right, kill_offsets, lake_state, run_until, writer
from tests.faults.writers import STREAM_FEATURES, activations, streamed_subject
from tests.lake import handmade

KILLS = 6


def _timed(process) -> float:
    """Seconds from READY to DONE of an uninterrupted run: the write itself (not start-up, not exit)."""
    assert process.stdout.readline().strip() == "READY"
    started = time.perf_counter()
    done = process.stdout.readline()
    duration = time.perf_counter() - started
    out, err = process.communicate()
    assert done.strip() == "DONE" and process.returncode == 0, err[-2000:]
    return duration


def _kill_series(make_writer, new_state, url, options, seed) -> Counter:
    """Time one run, then run until KILLS runs were really killed, at moments spread over the write.

    ``make_writer(k)`` starts run k; ``new_state(k, current)`` is the state run k writes (the old
    state is whatever the head holds when it starts). A run that finishes before its kill moment
    (runs vary) does not count: the next one is killed at half that moment.
    """
    outcomes: Counter = Counter()
    expected = new_state(0, lake_state(url, options))
    duration = _timed(make_writer(0))
    assert lake_state(url, options) == expected
    offsets, k = kill_offsets(duration, KILLS, seed), 0
    while offsets and k < 3 * KILLS:
        k += 1
        offset = offsets.pop(0)
        old = lake_state(url, options)
        new = new_state(k, old)
        assert new != old
        how = run_until(make_writer(k), offset)
        state = lake_state(url, options)
        assert state in (old, new), f"run {k} ({how} at {offset:.2f} s of {duration:.2f} s): neither the old nor the new state"
        outcomes[(how, "new" if state == new else "old")] += 1
        if how == "finished":
            offsets.insert(0, offset / 2)
        assert_reads_right(url, options)
    print(f"kill series: {k} runs over {duration:.2f} s -> {dict(outcomes)}")
    assert sum(n for (how, _), n in outcomes.items() if how == "killed") == KILLS
    return outcomes


def _features_state(base: dict, seed: int, ids) -> dict:
    import xarray as xr

    data = activations(ids, seed)
    ds = xr.Dataset({"activations": data.variable}, coords={"stimulus_id": ids})
    return {**base, "features": {**base["features"], "toy/layer.1": content_checksum(ds)}}


@pytest.mark.slow
def test_killed_features_overwrite(lake_location):
    url, options = lake_location
    lake = handmade.write_handmade_lake(url, options)
    ids = lake.stimuli["stimulus_id"].values
    lake.write_features("toy", "layer.1", activations(ids, 0), overwrite=True)
    base = lake_state(url, options)
    # run k overwrites seed k with seed k + 1
    outcomes = _kill_series(
        lambda k: writer("features", url, options, "toy", "layer.1", k + 1, "--overwrite"),
        lambda k, current: _features_state(base, k + 1, ids),
        url, options, seed=11,
    )


@pytest.mark.slow
def test_killed_streamed_feature_writer(lake_location):
    """features/stream.py (extraction's writer): rows appended two at a time, one commit."""
    url, options = lake_location
    lake = handmade.write_handmade_lake(url, options)
    ids = lake.stimuli["stimulus_id"].values
    base = lake_state(url, options)

    def state(seed: int) -> dict:
        import xarray as xr

        data = activations(ids, seed, STREAM_FEATURES)
        ds = xr.Dataset({"activations": data.variable}, coords={"stimulus_id": ids})
        return {**base, "features": {**base["features"], "toy/streamed": content_checksum(ds)}}

    _kill_series(lambda k: writer("featstream", url, options, "toy", "streamed", k + 1, "--overwrite"),
                 lambda k, current: state(k + 1), url, options, seed=15)


@pytest.mark.slow
def test_killed_streamed_subject(lake_location):
    url, options = lake_location
    lake = handmade.write_handmade_lake(url, options)
    base = lake_state(url, options)

    def state(seed: int) -> dict:
        ds = streamed_subject(seed)[3]
        return {**base, "subjects": {**base["subjects"], "sub-01": content_checksum(ds)}}

    outcomes = _kill_series(
        lambda k: writer("stream", url, options, k + 10, "--overwrite"),
        lambda k, current: state(k + 10),
        url, options, seed=12,
    )
    assert open_lake(url, options).subject("sub-01").attrs["seed"] in range(10, 11 + 3 * KILLS)


@pytest.fixture(scope="module")
def synthetic_states():
    """The states of a tiny synthetic lake of seed 0 and of seed 1 (built in memory)."""
    from laion_lake.synthetic import make_lake

    return {seed: lake_state(make_lake(f"memory://states-{seed}", scale="tiny", seed=seed).url, None) for seed in (0, 1)}


@pytest.mark.slow
def test_killed_synth_overwrite(lake_location, synthetic_states):
    url, options = lake_location
    assert run_until(writer("synth", url, options, 0), None) == "finished"
    # each run replaces the seed the lake holds (0 or 1) with the other one
    other = lambda: 1 - lake_state(url, options)["seed"]  # noqa: E731
    outcomes = _kill_series(
        lambda k: writer("synth", url, options, other(), "--overwrite"),
        lambda k, current: synthetic_states[1 - current["seed"]],
        url, options, seed=13,
    )


@pytest.mark.slow
def test_killed_synth_of_a_new_lake(lake_location, synthetic_states):
    base, options = lake_location  # each run writes a new lake beside it: <base>-timed, <base>-1, ...
    empty = {"subjects": {}, "features": {}, "stimuli": None, "splits": None, "seed": None}
    duration = _timed(writer("synth", f"{base}-timed", options, 0))
    outcomes: Counter = Counter()
    offsets, k = kill_offsets(duration, KILLS, seed=14), 0
    while offsets and k < 3 * KILLS:
        k += 1
        offset = offsets.pop(0)
        url = f"{base}-{k}"
        how = run_until(writer("synth", url, options, 0), offset)
        state = lake_state(url, options)
        assert state in (None, empty, synthetic_states[0]), f"kill {k} at {offset:.2f} s: a partial lake"
        outcomes[(how, "new" if state == synthetic_states[0] else "old")] += 1
        if how == "finished":
            offsets.insert(0, offset / 2)
        assert_reads_right(url, options)
    print(f"kill series: {k} runs over {duration:.2f} s -> {dict(outcomes)}")
    assert sum(n for (how, _), n in outcomes.items() if how == "killed") == KILLS
