"""A failing disk (read-only, full) and a failing S3 endpoint (frozen, stopped): one clear error, old state intact.

The disk cases mount a real read-only bind mount and a real 4 MiB tmpfs; they need root (as CI's
container has) and are skipped, saying so, where mounting is not permitted.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import xarray as xr

from laion_lake.errors import LakeStorageError
from laion_lake.lake import open_lake
from tests.faults.conftest import ROOT, lake_state
from tests.faults.endpoint import FaultyEndpoint
from tests.lake import handmade


def _big_features(lake, n_features: int) -> xr.DataArray:
    ids = lake.stimuli["stimulus_id"].values
    values = np.random.default_rng(0).standard_normal((len(ids), n_features)).astype(np.float32)
    return xr.DataArray(values, dims=("stimulus_id", "feature"), coords={"stimulus_id": ids})


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip()}): needs root")


def test_read_only_disk(tmp_path):
    source, target = tmp_path / "lake", tmp_path / "read-only"
    handmade.write_handmade_lake(str(source))
    before = lake_state(str(source), None)
    target.mkdir()
    _mount("--bind", str(source), str(target))
    try:
        _mount("-o", "remount,bind,ro", str(target))
        lake = open_lake(str(target))
        assert lake_state(str(target), None) == before  # reading works
        with pytest.raises(LakeStorageError, match=rf"cannot (write to|commit to) lake {target}: the file system is read-only"):
            lake.write_features("new", "fc", _big_features(lake, 8))
        assert lake_state(str(target), None) == before
    finally:
        subprocess.run(["umount", str(target)], check=False)
    assert lake_state(str(source), None) == before


def _used_bytes(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_full_disk(tmp_path):
    """Five writes that fill the disk: each fails with one line, and each deletes the chunks it wrote.

    Measured: without the clean-up the first failure left 3.5 MB of unreferenced chunks on the
    4 MiB disk and the next five added 113,819 bytes; with it the folder is back at its size before.
    """
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk))
    try:
        url = str(disk / "lake")
        lake = handmade.write_handmade_lake(url)
        lake.storage.repository.clean_after_failure()  # the lock files exist from here on
        before, snapshot, used = lake_state(url, None), lake.snapshot_id, _used_bytes(disk)
        after = []
        for _ in range(5):
            with pytest.raises(LakeStorageError, match=rf"lake {url}: no space left on the device"):
                lake.write_features("big", "fc", _big_features(lake, 80_000))  # 16 x 80k float32 = 5 MB
            after.append(_used_bytes(disk))
        reopened = open_lake(url)
        assert reopened.snapshot_id == snapshot and lake_state(url, None) == before
        # the failed writes' chunks are referenced by no commit: each failure deleted its own
        assert after == [used] * 5, (used, after)
        reopened.write_features("small", "fc", _big_features(reopened, 4))  # there is room again: writes work
        assert ("small", "fc") in open_lake(url).feature_sets
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.fixture
def proxied_lake(s3_endpoint):
    """A lake on moto S3 reached through a proxy that can freeze or stop; also the direct options."""
    import s3fs

    from tests.conftest import s3_options

    host, port = s3_endpoint.removeprefix("http://").split(":")
    proxy = FaultyEndpoint(host, int(port))
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**s3_options(s3_endpoint)).mkdir(bucket)
    url = f"s3://{bucket}/lake"
    through = {**s3_options(proxy.url), "timeout": 5, "max_tries": 2}
    handmade.write_handmade_lake(url, s3_options(s3_endpoint))
    yield url, through, s3_options(s3_endpoint), proxy
    proxy.stop()


@pytest.mark.parametrize("fault", ["frozen", "stopped"])
def test_failing_endpoint(proxied_lake, fault):
    url, through, direct, proxy = proxied_lake
    before = lake_state(url, direct)
    lake = open_lake(url, through)
    proxy.freeze() if fault == "frozen" else proxy.stop()
    started = time.perf_counter()
    with pytest.raises(LakeStorageError, match=rf"lake {url}: the endpoint did not answer within 5 s"):
        lake.write_features("new", "fc", _big_features(lake, 8))
    with pytest.raises(LakeStorageError, match=rf"cannot open lake {url}"):
        open_lake(url, through)
    assert time.perf_counter() - started < 30
    assert lake_state(url, direct) == before


def test_frozen_endpoint_on_the_cli_is_one_line(proxied_lake):
    """Finding 9: `ls` on a frozen endpoint fails within the timeout, one line naming the URL, exit 2."""
    import json

    url, through, _, proxy = proxied_lake
    proxy.freeze()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "laion_lake.cli", "ls", url, "--storage-options", json.dumps(through)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"laion-lake ls: error: cannot open lake {url}: the endpoint did not answer within 5 s (storage option 'timeout' or LAION_LAKE_S3_TIMEOUT sets the limit)"
    ], result.stderr
    assert time.perf_counter() - started < 60


def test_missing_credentials_are_one_line_naming_the_lake(s3_endpoint):
    """No key in the options and none in the environment: exit 2, one line naming the lake URL."""
    import json
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent", AWS_EC2_METADATA_DISABLED="true", PYTHONPATH=str(ROOT))
    url = "s3://no-such-credentials/lake"
    result = subprocess.run(
        [sys.executable, "-m", "laion_lake.cli", "ls", url, "--storage-options", json.dumps({"endpoint_url": s3_endpoint, "timeout": 10})],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"laion-lake ls: error: cannot open lake {url}: no usable credentials"], result.stderr
