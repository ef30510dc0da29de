"""``synth_flow`` and ``ingest_flow`` in this process (ephemeral Prefect API; the ingest subjects on a
LocalCluster of 2 worker processes): the lakes they write equal the library's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.ingest import ingest_flow
from flows.synth import synth_flow
from laion_lake.lake import open_lake
from laion_lake.synthetic import MODEL_LAYERS, SUBJECTS

CLUSTER = {"cluster_kwargs": {"n_workers": 2, "threads_per_worker": 1, "memory_limit": "2GiB", "dashboard_address": "127.0.0.1:0"}}


def test_synth_flow_writes_the_synthetic_lake(tmp_path: Path) -> None:
    summary = synth_flow(str(tmp_path / "lake"), scale="tiny", seed=0)
    lake = open_lake(str(tmp_path / "lake"))
    assert summary["subjects"] == lake.subjects == sorted(SUBJECTS)
    assert summary["feature_sets"] == [list(fs) for fs in lake.feature_sets] == sorted([m, l] for m, l in MODEL_LAYERS.items())


def test_ingest_flow_fans_out_subjects_and_equals_ingest_release(tmp_path: Path) -> None:
    pytest.importorskip("nibabel")
    from laion_lake.ingest import ingest_release
    from tests.ingest import release_factory as factory

    src = tmp_path / "src"
    factory.write_release(src)
    url = str(tmp_path / "lake")
    report = ingest_flow(str(src), url, verify=True, cluster=CLUSTER)
    assert sorted(report["subjects"]) == list(factory.SUBJECTS)
    assert {r["status"] for r in report["subjects"].values()} == {"ingested"}
    assert report["differences"] == {s: [] for s in factory.SUBJECTS}
    assert report["lake"]["subjects"] == list(factory.SUBJECTS) and report["lake"]["pools"] == ["shared", *factory.SUBJECTS]

    reference_url = str(tmp_path / "reference")
    ingest_release(src, reference_url)
    lake, reference = open_lake(url), open_lake(reference_url)
    assert lake.subjects == reference.subjects and lake.pools == reference.pools
    assert lake.stimuli.equals(reference.stimuli)
    for subject in factory.SUBJECTS:
        got, want = lake.subject(subject), reference.subject(subject)
        np.testing.assert_array_equal(got["betas"].values, want["betas"].values)
        assert got["neuroid_id"].values.tolist() == want["neuroid_id"].values.tolist()
        assert lake.split(subject, "tau")[0].tolist() == reference.split(subject, "tau")[0].tolist()

    again = ingest_flow(str(src), url, subjects=["sub-03"], cluster=CLUSTER)
    assert again["subjects"]["sub-03"]["status"] == "already in the lake"


def test_ingest_flow_checks_subjects_before_any_cluster(tmp_path: Path) -> None:
    """A subject the release lacks is one line naming the release folder, before any task or cluster:
    nothing is written (the lake is created by the first subject task)."""
    from laion_lake.ingest import IngestError
    from tests.ingest import release_factory as factory

    src = tmp_path / "src"
    factory.write_release(src)
    with pytest.raises(IngestError, match=r"glmsingle-tedana: no folder for subject\(s\) \['sub-99'\] \(release has sub-"):
        ingest_flow(str(src), str(tmp_path / "lake"), subjects=["sub-99"], cluster=CLUSTER)
    with pytest.raises(Exception, match=r"cluster\.workers: Input should be greater than or equal to 1"):  # Prefect checks the typed parameter
        ingest_flow(str(src), str(tmp_path / "lake"), cluster={"workers": 0})
    assert not (tmp_path / "lake").exists()
