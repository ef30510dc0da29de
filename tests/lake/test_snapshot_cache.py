"""The manifest and the stimulus and split tables are kept per process across snapshots that did not
change them (laion_lake/lake/snapshot_cache.py, issue #10 item 5): a score record's commit keeps them,
a change of the provenance, of the stimuli or of a subject is seen by the next reader, and a
transaction reads its own writes. Local disk and moto S3."""

from __future__ import annotations

import pytest

from laion_lake.lake import open_lake
from laion_lake.lake import snapshot_cache
from laion_lake.lake.storage import writable_group
from laion_lake.synthetic import make_lake


@pytest.fixture(scope="module")
def lake_url(module_lake_location: tuple[str, dict | None]) -> tuple[str, dict | None]:
    url, options = module_lake_location
    make_lake(url, scale="tiny", seed=0, storage_options=options)
    return url, options


def _commit_under_results(lake, name: str) -> None:
    lake.storage.write(f"probe {name}", lambda session: writable_group(session, "results/units").create_group(name))


def test_kept_across_a_results_commit_and_dropped_when_the_tables_change(lake_url: tuple[str, dict | None]) -> None:
    url, options = lake_url
    snapshot_cache.clear()
    first = open_lake(url, options)
    manifest, stimuli, splits, before = first.manifest, first.stimuli, first._splits, first.snapshot_id
    _commit_under_results(first, "probe-a")
    second = open_lake(url, options)
    assert second.snapshot_id != before
    assert second.manifest == manifest and second.stimuli.identical(stimuli) and second._splits.identical(splits)
    assert snapshot_cache._entries[(second.storage.url, "stimuli")][0] == second.snapshot_id  # carried forward
    assert second.stimuli["source"].values is stimuli["source"].values  # the very arrays: no second read

    second.set_provenance({"probe": "changed"})  # the root group's attributes: the manifest is read again
    third = open_lake(url, options)
    assert third.manifest["provenance"]["probe"] == "changed" and "probe" not in manifest["provenance"]
    assert third.stimuli["source"].values is stimuli["source"].values  # the stimulus table did not change

    changed = third.stimuli.copy(deep=True)
    other = "NSD" if changed["source"].values[0] != "NSD" else "LAION"
    changed["source"].values[0] = other
    third.write_stimuli(changed, overwrite=True)
    fourth = open_lake(url, options)
    assert fourth.stimuli["source"].values[0] == other != stimuli["source"].values[0]
    third.write_stimuli(stimuli, overwrite=True)  # the module's lake as it was
    assert open_lake(url, options).stimuli["source"].values[0] == stimuli["source"].values[0]


def test_a_transaction_reads_its_own_writes_and_a_tag_reads_its_snapshot(lake_url: tuple[str, dict | None]) -> None:
    url, options = lake_url
    lake = open_lake(url, options)
    lake.stimuli  # noqa: B018 - kept for the head
    with lake.transaction("probe transaction"):
        lake.set_provenance({"probe": "in-transaction"})
        assert lake.manifest["provenance"]["probe"] == "in-transaction"
    assert open_lake(url, options).manifest["provenance"]["probe"] == "in-transaction"
    old = lake.storage.repository.repo.ancestry(branch="main")
    older = [s.id for s in old][3]
    pinned = open_lake(url, options, snapshot=older)  # not a descendant of the kept snapshot: read again
    assert pinned.snapshot_id == older and pinned.stimuli.sizes == lake.stimuli.sizes
