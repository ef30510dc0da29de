"""Concurrent writers on local disk and on moto S3: every write lands, none is lost, same-name writers collide cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from laion_lake.lake import open_lake
from laion_lake.lake.check import verify_store
from tests.faults.conftest import ROOT
from tests.lake import handmade

N_WRITERS = 8


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "laion_lake.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _feature_files(tmp_path, ids: np.ndarray, n: int) -> list:
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    paths = []
    for k in range(n):
        path = tmp_path / f"model{k}.npy"
        np.save(path, np.random.default_rng(k).standard_normal((len(ids), 16)).astype(np.float32))
        paths.append(path)
    return paths


def _options_args(options: dict | None) -> list[str]:
    return ["--storage-options", json.dumps(options)] if options else []


@pytest.mark.slow
def test_eight_concurrent_features_add_all_land(lake_location, tmp_path):
    url, options = lake_location
    lake = handmade.write_handmade_lake(url, options)
    ids = lake.stimuli["stimulus_id"].values
    paths = _feature_files(tmp_path, ids, N_WRITERS)
    processes = [
        _cli("features", "add", url, f"model{k}", "fc", str(path), "--ids", str(tmp_path / "ids.txt"), *_options_args(options))
        for k, path in enumerate(paths)
    ]
    results = [(p.wait(timeout=300), p.communicate()) for p in processes]
    assert [rc for rc, _ in results] == [0] * N_WRITERS, [err[-500:] for _, (_, err) in results]
    head = open_lake(url, options)
    assert sorted(m for m, _ in head.feature_sets) == sorted(["toy"] + [f"model{k}" for k in range(N_WRITERS)])
    for k in range(N_WRITERS):
        np.testing.assert_array_equal(head.features(f"model{k}", "fc").values, np.load(paths[k]))
        assert verify_store(head, "features", f"model{k}/fc") == []
    assert sum(e["message"] == f"features model{k}/fc" for e in head.log() for k in range(N_WRITERS)) == N_WRITERS


def test_two_writers_of_one_name_one_wins_one_is_told(lake_location, tmp_path):
    url, options = lake_location
    lake = handmade.write_handmade_lake(url, options)
    ids = lake.stimuli["stimulus_id"].values
    paths = _feature_files(tmp_path, ids, 2)
    processes = [_cli("features", "add", url, "same", "fc", str(path), "--ids", str(tmp_path / "ids.txt"), *_options_args(options)) for path in paths]
    results = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    assert sorted(rc for rc, _, _ in results) == [0, 2], results
    winner = next(k for k, (rc, _, _) in enumerate(results) if rc == 0)
    loser_err = next(err for rc, _, err in results if rc == 2)
    assert "already exists; pass overwrite=True (--overwrite) to replace it" in loser_err
    assert len(loser_err.strip().splitlines()) == 1, loser_err
    np.testing.assert_array_equal(open_lake(url, options).features("same", "fc").values, np.load(paths[winner]))


SCORE_WRITER = """
import sys
from laion_lake.scoring.runner import run_unit_by_key
import json
print(run_unit_by_key(sys.argv[1], json.loads(sys.argv[2]) or None, sys.argv[3], [sys.argv[4]], force=sys.argv[5] == "force"))
"""


@pytest.fixture(scope="module")
def scored_lake(module_lake_location):
    from laion_lake.synthetic import make_lake

    url, options = module_lake_location
    make_lake(url, scale="tiny", seed=0, storage_options=options)
    return url, options


def _unit_with_four_benchmarks():
    from laion_lake.benchmarks import list_benchmarks
    from laion_lake.scoring.runner import plan_keys

    plan = plan_keys([("early_model", "conv2")], list_benchmarks())
    return next((key, benchmarks[:4]) for key, benchmarks in plan.units if len(benchmarks) >= 4)


def _record_benchmarks(url, options, unit_key) -> set[str]:
    from laion_lake.scoring.plan import WorkUnit
    from laion_lake.scoring.records import read_unit_record

    record = read_unit_record(open_lake(url, options), WorkUnit.from_key(unit_key))
    return {cell["benchmark_key"] for cell in record["results"]}


@pytest.mark.slow
def test_four_concurrent_score_writers_of_one_unit_keep_every_cell(scored_lake):
    url, options = scored_lake
    unit_key, benchmarks = _unit_with_four_benchmarks()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen([sys.executable, "-c", SCORE_WRITER, url, json.dumps(options), unit_key, b, "no"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for b in benchmarks
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    assert [rc for rc, _, _ in results] == [0] * 4, [err[-800:] for _, _, err in results]
    assert _record_benchmarks(url, options, unit_key) == set(benchmarks)


def test_force_on_one_benchmark_keeps_the_others(scored_lake):
    """#11 item 6: `score --force --benchmark X` recomputes X's cells and keeps every other benchmark's."""
    from laion_lake.scoring.runner import run_unit_by_key

    url, options = scored_lake
    unit_key, benchmarks = _unit_with_four_benchmarks()
    assert run_unit_by_key(url, options, unit_key, benchmarks[:2]) in ("computed", "skipped")
    before = _record_benchmarks(url, options, unit_key)
    assert run_unit_by_key(url, options, unit_key, benchmarks[:1], force=True) == "computed"
    assert _record_benchmarks(url, options, unit_key) == before >= set(benchmarks[:2])
    assert run_unit_by_key(url, options, unit_key, benchmarks[:2]) == "skipped"
