"""Shared fixtures: lake URLs on local disk and on a real S3 endpoint (moto's server on 127.0.0.1)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from laion_lake.published_splits import published_splits_dir

# Prefect and AWS settings for every test process: a private Prefect home, no analytics, no real AWS
_PREFECT_HOME = tempfile.mkdtemp(prefix="laion-lake-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# the published split JSONs, shipped with the package (never read from outside the repository)
PUBLISHED_SPLITS = published_splits_dir()
SHARED_SPLITS = PUBLISHED_SPLITS  # the name older tests import


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a random free port), for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_options(endpoint: str) -> dict:
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        # a fresh filesystem per lake: no listing cache shared between tests
        "skip_instance_cache": True,
    }


def new_s3_lake_url(endpoint: str) -> tuple[str, dict]:
    """A fresh bucket on the moto server: (``s3://bucket/lake``, storage_options)."""
    import s3fs

    options = s3_options(endpoint)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(**options).mkdir(bucket)
    return f"s3://{bucket}/lake", options


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> tuple[str, dict]:
    return new_s3_lake_url(s3_endpoint)


@pytest.fixture(params=["local", "s3"])
def lake_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict | None]:
    """(url, storage_options) of an empty lake location, on local disk and on moto S3."""
    if request.param == "local":
        return str(tmp_path / "lake"), None
    return request.getfixturevalue("s3_bucket")


@pytest.fixture(scope="module", params=["local", "s3"])
def module_lake_location(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict | None]:
    """Like ``lake_location`` but shared by a module's tests (for read-only tests of a written lake)."""
    if request.param == "local":
        return str(tmp_path_factory.mktemp("lake") / "lake"), None
    return new_s3_lake_url(request.getfixturevalue("s3_endpoint"))


_EXIT_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End pytest with its exit status without interpreter finalization, as the console script does.

    Icechunk's Rust threads can abort a finalizing interpreter (SIGABRT; see
    ``laion_lake.cli_common.exit_without_finalizing``): a green run would then fail CI. The summary
    is printed by now; exit hooks (Prefect stopping its temporary API server, logging) still run.
    """
    import logging

    # Prefect's server logs a line at exit to a stream pytest has closed by then: no traceback for it
    logging.raiseExceptions = False
    if _EXIT_STATUS in config.stash:
        from laion_lake.cli_common import exit_without_finalizing

        exit_without_finalizing(config.stash[_EXIT_STATUS])


@pytest.fixture(autouse=True)
def _dask_scheduler_setting_restored() -> Iterator[None]:
    """Every test leaves Dask's process-wide scheduler setting as it found it.

    A Dask client left as the default (or closed out of order from another thread) keeps
    ``scheduler: dask.distributed`` set, and every later lazy read in this process then fails with
    "no Client active": this names the test that leaked it.
    """
    import dask

    before = dask.config.get("scheduler", None)
    yield
    after = dask.config.get("scheduler", None)
    assert after == before, f"the test left Dask's scheduler set to {after!r} (was {before!r})"
