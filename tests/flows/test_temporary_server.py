"""The CLI's own start of Prefect's temporary server (flows/server.py, issue #10 item 5): started before
Prefect is imported, used by a real flow run as its API, gone after; nothing started for a configured
server; the scoring path's pre-flight modules import neither Prefect nor distributed."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from flows import server


@pytest.fixture
def no_server_configured(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))


def test_a_flow_runs_against_the_started_server_and_the_setting_is_restored(no_server_configured: None) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    @flow(name="laion-lake-temporary-server-probe")
    def probe() -> str:
        from prefect.runtime import flow_run

        return flow_run.id

    server.start()
    process = server._server.process
    try:
        assert process is not None and process.poll() is None
        with server.serving():
            url = PREFECT_API_URL.value()
            assert url == server._server.api_url and server.is_temporary(url)
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                assert response.status == 200
            run_id = probe()
            with get_client(sync_client=True) as client:  # the run is recorded on this server
                assert client.read_flow_run(run_id).state.is_completed()
        assert PREFECT_API_URL.value() is None and "PREFECT_API_URL" not in os.environ
    finally:
        server.stop()
    assert process.poll() is not None and server._server.process is None
    assert not server.is_temporary(url)


def test_nothing_is_started_for_a_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    server.start()
    assert server._server is None or server._server.process is None


def test_the_preflight_imports_neither_prefect_nor_distributed() -> None:
    probe = "import sys, flows.cluster, flows.server, laion_lake.dask; print([m for m in ('prefect', 'distributed') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
