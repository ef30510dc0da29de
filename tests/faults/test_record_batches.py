"""Unit records committed in batches (scoring.records.batched_records): fewer commits, still resumable.

A batch of ``every`` records is one commit; a run killed with a batch queued loses that batch only
(committed batches stay, and the next run skips them); a batched record still merges with the
cells other benchmarks recorded for the same unit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from laion_lake.lake import open_lake
from laion_lake.scoring.plan import WorkUnit
from laion_lake.scoring.records import batched_records, read_unit_record
from laion_lake.scoring.runner import run_unit_by_key
from tests.faults.conftest import ROOT

BATCH_RUNNER = """
import sys, time
from laion_lake.lake import open_lake
from laion_lake.scoring.records import batched_records
from laion_lake.scoring.runner import run_unit_by_key
url, units = sys.argv[1], sys.argv[2:]
with batched_records(open_lake(url), every=2, seconds=1e6):
    for k, unit in enumerate(units, start=1):
        key, benchmark = unit.split("|")
        print(k, run_unit_by_key(url, None, key, [benchmark]), flush=True)
        if k == 3:
            time.sleep(600)  # killed here: units 1-2 committed, unit 3 queued
"""


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory):
    from laion_lake.synthetic import make_lake

    url = str(tmp_path_factory.mktemp("batches") / "lake")
    make_lake(url, scale="tiny", seed=0)
    return url


def _units(n: int, model: str = "early_model", layer: str = "conv2") -> list[tuple[str, str]]:
    """``n`` (unit key, benchmark key) of a feature set, one benchmark each."""
    from laion_lake.benchmarks import list_benchmarks
    from laion_lake.scoring.runner import plan_keys

    plan = plan_keys([(model, layer)], list_benchmarks())
    return [(key, benchmarks[0]) for key, benchmarks in plan.units[:n]]


def _recorded(url: str, units) -> list[bool]:
    lake = open_lake(url)
    return [read_unit_record(lake, WorkUnit.from_key(key)) is not None for key, _ in units]


def test_records_are_committed_in_batches(tiny_lake):
    units = _units(5)
    seen = []
    with batched_records(open_lake(tiny_lake), every=2, seconds=1e6) as batch:
        for key, benchmark in units:
            assert run_unit_by_key(tiny_lake, None, key, [benchmark]) == "computed"
            seen.append(sum(_recorded(tiny_lake, units)))
    assert seen == [0, 2, 2, 4, 4]  # a batch of 2 commits when full; the 5th at the end of the block
    assert _recorded(tiny_lake, units) == [True] * 5
    record_commits = [e["message"] for e in open_lake(tiny_lake).log() if "unit record" in e["message"]]
    assert batch.commits == 3 and len(record_commits) == 3, record_commits  # (a ceiling cache commits on its own)


def test_a_batched_record_keeps_other_benchmarks_cells(tiny_lake):
    from laion_lake.benchmarks import list_benchmarks
    from laion_lake.scoring.runner import plan_keys

    key, benchmarks = next((k, b) for k, b in plan_keys([("late_model", "fc6")], list_benchmarks()).units if len(b) >= 2)
    assert run_unit_by_key(tiny_lake, None, key, [benchmarks[0]]) == "computed"  # committed alone
    with batched_records(open_lake(tiny_lake), every=10):
        assert run_unit_by_key(tiny_lake, None, key, [benchmarks[1]], force=True) == "computed"
    record = read_unit_record(open_lake(tiny_lake), WorkUnit.from_key(key))
    assert {c["benchmark_key"] for c in record["results"]} == {benchmarks[0], benchmarks[1]}


def test_a_killed_batched_run_loses_only_its_last_batch(tiny_lake):
    units = _units(5, "random_model", "fc")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", BATCH_RUNNER, tiny_lake, *(f"{k}|{b}" for k, b in units)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [process.stdout.readline().strip() for _ in range(3)]
    assert lines == ["1 computed", "2 computed", "3 computed"], (lines, process.stderr.read() if process.poll() is not None else "")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert _recorded(tiny_lake, units) == [True, True, False, False, False]  # the committed batch stays
    with batched_records(open_lake(tiny_lake), every=2):
        outcomes = [run_unit_by_key(tiny_lake, None, key, [benchmark]) for key, benchmark in units]
    assert outcomes == ["skipped", "skipped", "computed", "computed", "computed"]
    assert _recorded(tiny_lake, units) == [True] * 5
