"""A direct ``score_flow(...)`` (``batch_flow``, ``ingest_flow``) call with credentials is refused before Prefect stores its parameters
(issue #11 item 4): the Prefect database, grepped afterwards, holds the other run but not the secret."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SECRET = "sekr1t-4e1c9b"

SCRIPT = textwrap.dedent(f"""
    from flows.batch import batch_flow
    from flows.ingest import ingest_flow
    from flows.score import score_flow
    from laion_lake.preflight import PreflightError

    for call in (lambda: score_flow("{{lake}}", storage_options={{"key": "AKIA-x", "secret": "{SECRET}"}}),
                 lambda: batch_flow("{{lake}}", None, None, {{"secret": "{SECRET}"}}),
                 lambda: ingest_flow("{{lake}}-src", "{{lake}}", source_storage_options={{"secret": "{SECRET}"}})):
        try:
            call()
        except PreflightError as error:
            print("refused:", str(error)[:60])
        else:
            raise SystemExit("not refused")
    # a run Prefect does create (it fails in its own pre-flight: no lake there), so the database exists
    # (return_state is Flow.__call__'s own keyword: the credential check must let it through)
    state = score_flow("{{lake}}-not-there", return_state=True)
    print("failed:", state.type.value)
""")


@pytest.mark.slow  # ~60 s: Prefect's temporary server starts once
def test_credentials_refused_before_prefect_records_them(tmp_path: Path) -> None:
    home = tmp_path / "prefect"
    env = {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PATH": "/usr/bin:/bin",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90", "PREFECT_LOGGING_LEVEL": "WARNING"}  # fmt: skip
    lake = str(tmp_path / "lake")
    result = subprocess.run([sys.executable, "-c", SCRIPT.replace("{lake}", lake)], env=env, capture_output=True,
                            text=True, timeout=240, cwd=Path(__file__).parents[2])  # fmt: skip
    assert result.stdout.count("refused: storage_options holds credential(s)") == 2, result.stdout + result.stderr
    assert result.stdout.count("refused: source_storage_options holds credential") == 1, result.stdout + result.stderr
    assert "failed: FAILED" in result.stdout, result.stdout + result.stderr
    stored = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())
    if f"{lake}-not-there".encode() not in stored:
        pytest.fail("the Prefect database does not hold the run that was created: the grep below would prove nothing")
    assert SECRET.encode() not in stored and b"AKIA-x" not in stored
