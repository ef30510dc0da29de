"""Garbage collection after failed and killed writes: orphaned chunks go, every snapshot and tag stays.

A killed writer leaves its chunks in storage with no commit referencing them (here: a session
that wrote a feature set and was dropped without committing, as a SIGKILL leaves it). ``gc``
deletes exactly those; afterwards every snapshot in the log and every tag reads whole and matches
its checksums, and ``validate --deep`` passes. On local storage an unfinished resumable ingest
keeps its chunks and can still finish; on S3 the default age limit (1 day) keeps everything young.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pytest
import zarr

from laion_lake.lake import open_lake
from laion_lake.lake.cli import validate_lines
from laion_lake.lake.gc import gc_lake, parse_duration
from laion_lake.lake.subjects import streaming_progress, write_subject_streaming
from laion_lake.lake.zarr_io import content_checksum
from tests.faults.conftest import ROOT, lake_state
from tests.faults.writers import activations, streamed_subject
from tests.lake import handmade


def _abandoned_write(lake, model: str, n_features: int, seed: int) -> None:
    """Chunks of a feature set written into a session that never commits (what a kill leaves)."""
    session = lake.storage.repository.session_for_writing()
    values = activations(lake.stimuli["stimulus_id"].values, seed, n_features).values
    array = zarr.create_array(session.store, name=f"features/{model}", shape=values.shape, chunks=(8, 64), dtype="f4")
    array[:] = values
    assert session.has_uncommitted_changes
    del session


def _every_snapshot_reads(url, options, log) -> None:
    from laion_lake.lake.check import verify_store

    for entry in log:
        if entry["message"] == "Repository initialized":
            continue  # Icechunk's empty first snapshot, before the lake was created
        lake = open_lake(url, options, snapshot=entry["snapshot"])
        for subject in lake.subjects:
            assert verify_store(lake, "subject", subject) == [], entry
        for key in lake.manifest["features"]:
            assert verify_store(lake, "features", key) == [], entry


def _gc_cli(url, options, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "laion_lake.cli", "gc", url, *args]
    if options:
        command += ["--storage-options", json.dumps(options)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_gc_deletes_orphaned_chunks_and_keeps_every_snapshot(lake_location):
    url, options = lake_location
    lake = handmade.write_handmade_lake(url, options)
    ids = lake.stimuli["stimulus_id"].values
    lake.write_features("m", "fc", activations(ids, 1, 256))
    lake.tag("v1")
    lake.write_features("m", "fc", activations(ids, 2, 256), overwrite=True)  # v1's chunks: only the tag keeps them
    before, log, tags = lake_state(url, options), lake.log(), lake.storage.repository.tags()
    for k in range(3):
        _abandoned_write(lake, f"orphan{k}", 512, seed=10 + k)

    if options is not None:  # S3: without --older-than every object is younger than the default day
        assert gc_lake(url, options, dry_run=True).chunks == 0
    dry = _gc_cli(url, options, "--dry-run", *(["--older-than", "0s"] if options else []))
    assert dry.returncode == 0, dry.stderr
    print(dry.stdout.strip())
    # 3 writes x 16 rows x 512 columns, in 8 x 64 chunks: 2 x 8 = 16 chunks each
    assert dry.stdout.startswith("would delete 48 chunk(s), "), dry.stdout
    result = gc_lake(url, options, dt.timedelta(0) if options else None)
    print(result.line())
    assert (result.chunks, result.snapshots) == (48, 0)
    assert result.bytes == int(dry.stdout.split(", ")[1].split()[0]) > 48 * 8 * 64 * 4 * 0.5  # random floats barely compress
    assert gc_lake(url, options, dt.timedelta(0)).chunks == 0  # nothing left to collect

    reopened = open_lake(url, options)
    assert lake_state(url, options) == before and reopened.log() == log and reopened.storage.repository.tags() == tags
    _every_snapshot_reads(url, options, log)
    old = open_lake(url, options, tag="v1").features("m", "fc")
    assert content_checksum(old.to_dataset(name="activations")) is not None
    np.testing.assert_array_equal(old.values, activations(ids, 1, 256).values)
    lines, problems = validate_lines(reopened, deep=True)
    assert problems == 0, lines


def test_gc_keeps_an_unfinished_streamed_ingest(tmp_path, monkeypatch):
    """A resumable ingest interrupted between blocks keeps its chunks through gc and then finishes right."""
    monkeypatch.setenv("LAION_LAKE_RESUME_DIR", str(tmp_path / "resume"))
    url = str(tmp_path / "lake")
    lake = handmade.write_handmade_lake(url)
    trials, neuroids, blocks, ds = streamed_subject(seed=3)

    class Interrupted(Exception):
        pass

    def stop_at_block_3():
        raise Interrupted

    interrupted = list(blocks)
    interrupted[3] = type(blocks[3])(blocks[3].key, blocks[3].start, blocks[3].stop, blocks[3].fingerprint, stop_at_block_3)
    with pytest.raises(Interrupted):
        write_subject_streaming(lake.storage, "sub-05", trials, neuroids, interrupted)
    assert len(streaming_progress(lake.storage, "sub-05")) == 3
    _abandoned_write(lake, "orphan", 512, seed=1)

    result = gc_lake(url)
    print(result.line())
    assert result.forks == ["sub-05"] and "kept the chunks of 1 unfinished streamed write(s): sub-05" in result.line()
    done = write_subject_streaming(lake.storage, "sub-05", trials, neuroids, blocks)  # resumes: blocks 0-2 read back
    assert done.skipped == [b.key for b in blocks[:3]]
    assert done.entry["checksum"] == content_checksum(ds)
    assert gc_lake(url).chunks >= 16  # committed: the orphan goes now (and block-edge chunk versions the fork replaced)
    lines, problems = validate_lines(open_lake(url), deep=True)
    assert problems == 0, lines


def test_gc_waits_for_a_local_write_in_flight(tmp_path):
    from laion_lake.lake.gc import collect_garbage

    lake = handmade.write_handmade_lake(str(tmp_path / "lake"))
    repository = lake.storage.repository
    with repository.writing():
        assert collect_garbage(repository, wait=False) is None  # a write holds the lock: nothing collected
    assert collect_garbage(repository, wait=False) is not None


def test_durations():
    assert parse_duration("0") == dt.timedelta(0)
    assert parse_duration("90s") == dt.timedelta(seconds=90)
    assert parse_duration("1d12h") == dt.timedelta(hours=36)
    with pytest.raises(ValueError, match="invalid duration '1 day'"):
        parse_duration("1 day")
