"""Bit-identical records on a real Dask cluster whatever its size (issue #10 item 4): the same sweep on
LocalClusters of 1, 2 and 3 single-threaded worker processes (1, 2 and 3 units at once), and on one
worker with 3 threads (3 units at once in one process), stores the same unit records and scores, equal
bit for bit to ``score_many`` in this process."""

from __future__ import annotations

import pytest

import laion_lake.dask as lld
from laion_lake import score_many
from laion_lake.lake import open_lake
from laion_lake.scoring.records import unit_records
from laion_lake.synthetic import make_lake

FEATURE_SETS = ["late_model/fc6", "early_model/conv2"]
SWEEP = ["LAION_fMRI_persubject.V1-tau-ridgecv", "LAION_fMRI.IT-tau-ridgecv", "LAION_fMRI.IT-rdm-pearson", "LAION_fMRI.V4-cka"]


def stored(url: str) -> dict[str, list]:
    """Every unit record's results (no creation time), by unit key."""
    return {r["key"]: r["results"] for r in unit_records(open_lake(url))}


@pytest.mark.slow  # four clusters: ~1-2 min on 2 cores
def test_records_are_bit_identical_for_1_2_and_3_workers(tmp_path) -> None:
    from distributed import Client, LocalCluster, wait

    url = str(tmp_path / "lake")
    make_lake(url, scale="tiny", seed=0)
    runs = {}
    for name, (workers, threads) in {"1x1": (1, 1), "2x1": (2, 1), "3x1": (3, 1), "1x3": (1, 3)}.items():
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address="127.0.0.1:0", memory_limit="1.5GiB") as cluster, Client(cluster) as client:
            submitted = lld.submit(client, lld.plan(url, FEATURE_SETS, SWEEP), force=True)
            # a bound, so that a stuck run fails here with the workers' stacks instead of hanging the suite
            done = wait([*submitted.units.values(), *submitted.aggregates.values()], timeout=300)
            assert not done.not_done, client.call_stack()
            report = lld.gather(submitted)
        assert report["computed"] == report["units"] > 0 and report["failed"] == 0
        runs[name] = (stored(url), sorted((r["model"], r["layer"], r["benchmark"], r["value"], r["error"]) for r in report["scores"]))
    first_records, first_scores = runs["1x1"]
    for name, (records, scores) in runs.items():
        assert records == first_records, name  # every float, alpha and voxel count, exactly
        assert scores == first_scores, name
    here = score_many(open_lake(url), [tuple(fs.split("/")) for fs in FEATURE_SETS], SWEEP)
    assert sorted((m, l, b, float(s), s.attrs["error"]) for (m, l, b), s in here.items()) == first_scores
