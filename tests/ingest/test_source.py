"""Ingest straight from a bucket (moto's S3 server over HTTP on 127.0.0.1), and what a bad source does."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from laion_lake.cli import main
from laion_lake.ingest import IngestError, ingest_release
from laion_lake.ingest.source import S3_TIMEOUTS, source_options
from laion_lake.lake import open_lake
from tests.conftest import s3_options
from tests.ingest import release_factory as factory

pytestmark = pytest.mark.s3
SUBJECTS = ["sub-01", "sub-03"]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release") / "src"
    factory.write_release(root)
    return root


def public_policy(bucket: str, denied: list[str] = ()) -> dict:
    """A bucket policy like the real release's: anyone may read; some keys are denied to everyone."""
    read = ["s3:GetObject", "s3:HeadObject"]  # moto names HEAD's action s3:HeadObject
    statements = [{"Effect": "Allow", "Principal": "*", "Action": read, "Resource": f"arn:aws:s3:::{bucket}/*"}]
    if denied:
        statements.append({"Effect": "Deny", "Principal": "*", "Action": read, "Resource": [f"arn:aws:s3:::{bucket}/{key}" for key in denied]})
    return {"Version": "2012-10-17", "Statement": statements}


def new_bucket_release(release: Path, endpoint: str, denied: list[str] = ()) -> str:
    """The release uploaded to a fresh moto bucket with a public-read policy: ``s3://bucket/laion-fmri``."""
    import boto3

    bucket = f"release-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/laion-fmri"
    factory.upload_release(release, url, s3_options(endpoint))
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_policy(bucket, [f"laion-fmri/{k}" for k in denied])))
    return url


@pytest.fixture(scope="module")
def bucket_release(release: Path, s3_endpoint: str) -> str:
    return new_bucket_release(release, s3_endpoint)


def _same_lakes(a_url: str, b_url: str, subjects: list[str]) -> None:
    a, b = open_lake(a_url), open_lake(b_url)
    assert a.subjects == b.subjects == subjects
    for subject in subjects:
        x, y = a.subject(subject), b.subject(subject)
        np.testing.assert_array_equal(x["betas"].values, y["betas"].values)
        for name in x.coords:
            np.testing.assert_array_equal(x[name].values, y[name].values)
    assert a.pools == b.pools
    for pool in a.pools:
        for name in a.split_names(pool):
            assert [v.tolist() for v in a.split(pool, name)] == [v.tolist() for v in b.split(pool, name)]
    np.testing.assert_array_equal(a.stimuli["n_repeats"].values, b.stimuli["n_repeats"].values)


def test_cli_ingests_from_the_bucket_anonymously_like_from_a_folder(release, bucket_release, s3_endpoint, tmp_path, capsys):
    local, remote = str(tmp_path / "local"), str(tmp_path / "remote")
    assert main(["ingest", str(release), local, "--subjects", *SUBJECTS, "--quiet"]) == 0
    options = json.dumps({"anon": True, "endpoint_url": s3_endpoint})  # as for the public bucket, plus moto's address
    assert main(["ingest", bucket_release, remote, "--subjects", *SUBJECTS, "--quiet", "--verify", "--source-storage-options", options]) == 0
    out = capsys.readouterr().out
    assert "verify: identical to the source" in out and "split pools: shared, sub-01, sub-03" in out
    _same_lakes(local, remote, SUBJECTS)
    provenance = open_lake(remote).subject("sub-01").attrs["ingest"]
    assert provenance["source"] == bucket_release and provenance["sessions"] == ["ses-01", "ses-30", "ses-35"]


def test_resume_from_the_bucket_keys_on_the_etag(bucket_release, s3_endpoint, tmp_path):
    url = str(tmp_path / "lake")
    options = s3_options(s3_endpoint)
    first = ingest_release(bucket_release, url, subjects=["sub-01"], source_storage_options=options)
    assert first.subjects["sub-01"].sessions_written == ["ses-01", "ses-30", "ses-35"]
    again = ingest_release(bucket_release, url, subjects=["sub-01"], source_storage_options=options, overwrite=False)
    assert again.subjects["sub-01"].status == "already in the lake"


def test_a_denied_key_is_one_line_naming_it_and_held_out_sessions_are_not_read(release, s3_endpoint, tmp_path, capsys):
    """Like the real bucket: the held-out sessions 31-34 are listed but denied (never read); any other
    denied key stops the ingest with one line naming it (exit 2), nothing listed in the lake."""
    held_out = factory.statmap_path(release, "sub-01", 31)
    held_out.parent.mkdir(parents=True)
    held_out.write_bytes(factory.statmap_path(release, "sub-01", 1).read_bytes())
    denied = [held_out.relative_to(release).as_posix(), factory.statmap_path(release, "sub-03", factory.SESSIONS[1]).relative_to(release).as_posix()]
    try:
        url = new_bucket_release(release, s3_endpoint, denied=denied)
    finally:
        held_out.unlink()
        held_out.parent.rmdir()
        held_out.parent.parent.rmdir()
    options = json.dumps({"anon": True, "endpoint_url": s3_endpoint})
    lake = str(tmp_path / "lake")
    assert main(["ingest", url, lake, "--subjects", "sub-01", "--quiet", "--source-storage-options", options]) == 0
    out = capsys.readouterr().out
    assert "held-out session(s) ses-31 present in the source: not read" in out
    assert open_lake(lake).subject("sub-01").attrs["ingest"]["sessions"] == ["ses-01", "ses-30", "ses-35"]

    started = time.perf_counter()
    code = main(["ingest", url, lake, "--subjects", "sub-03", "--quiet", "--source-storage-options", options])
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err.strip()
    assert code == 2 and elapsed < 60
    assert err.count("\n") == 0
    assert err.startswith(f"laion-lake ingest: error: {url}/{denied[1]}: access denied"), err
    assert open_lake(lake).subjects == ["sub-01"]  # sub-03 not listed; its first session kept for a resume


def test_an_unreachable_endpoint_fails_fast_naming_the_key(tmp_path, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "anon": True}
    started = time.perf_counter()
    code = main(["ingest", "s3://laion-fmri/release", str(tmp_path / "lake"), "--quiet", "--source-storage-options", json.dumps(options)])
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err.strip()
    assert code == 2 and elapsed < 60, elapsed
    assert err.count("\n") == 0 and "s3://laion-fmri/release/derivatives/glmsingle-tedana: cannot read" in err


def test_an_endpoint_that_never_answers_times_out(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # accept connections, read nothing, answer nothing
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    options = {"endpoint_url": f"http://127.0.0.1:{server.getsockname()[1]}", "anon": True, "config_kwargs": {"read_timeout": 1, "connect_timeout": 1}}
    try:
        started = time.perf_counter()
        with pytest.raises(IngestError, match=r"^s3://laion-fmri/release/derivatives/glmsingle-tedana: cannot read") as caught:
            ingest_release("s3://laion-fmri/release", str(tmp_path / "lake"), source_storage_options=options)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()
    assert elapsed < 30, elapsed
    assert "\n" not in str(caught.value)


def test_source_options_add_timeouts_and_keep_the_callers():
    options = source_options("s3://bucket/release", {"anon": True, "config_kwargs": {"read_timeout": 3}})
    assert options["anon"] is True
    assert options["config_kwargs"]["read_timeout"] == 3
    assert options["config_kwargs"]["connect_timeout"] == S3_TIMEOUTS["connect_timeout"]
    assert options["config_kwargs"]["retries"]["max_attempts"] >= 1
    assert source_options("/data/release", None) == {}


@pytest.mark.slow
def test_ingest_flow_reads_the_bucket_one_task_per_subject(release, bucket_release, s3_endpoint, tmp_path):
    """The Prefect flow on a LocalCluster (one worker process), the subject's task streaming its files from moto
    (the fan-out over subjects is tested with a local release in tests/flows)."""
    from flows.ingest import ingest_flow

    cluster = {"cluster_kwargs": {"n_workers": 1, "threads_per_worker": 1, "memory_limit": "2GiB", "dashboard_address": None}}
    url, subjects = str(tmp_path / "flow"), SUBJECTS[:1]
    report = ingest_flow(bucket_release, url, subjects=subjects, cluster=cluster, source_storage_options={"anon": True, "endpoint_url": s3_endpoint})
    assert sorted(report["subjects"]) == subjects and report["subjects"]["sub-01"]["status"] == "ingested"
    assert report["lake"]["pools"] == ["shared", *subjects]
    reference = str(tmp_path / "reference")
    ingest_release(release, reference, subjects=subjects)
    _same_lakes(url, reference, subjects)
