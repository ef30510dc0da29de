"""The CLI's pre-flight: every bad input of ``score``/``batch``/``scores`` is one line and exit 2,
before Prefect is imported or Dask starts (the temporary Prefect server the CLI starts alongside is
stopped); ``--version``; filters that match nothing list what exists."""

from __future__ import annotations

import pytest

from laion_lake.cli import main
from laion_lake.synthetic import make_lake


@pytest.fixture(scope="module")
def lake_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("cli") / "lake")
    make_lake(url, scale="tiny", seed=0)
    return url


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "typo", "--layer", "x"], "unknown feature set 'typo/x'"),
    (["--model", "early_modle", "--layer", "conv2"], "did you mean 'early_model/conv2'"),
    (["--layer", "conv2"], "--layer needs --model"),
    (["--benchmark", "LAION_fMRI.V1-tua-ridgecv"], "did you mean 'tau'"),
    (["--workers", "0"], "--workers must be a whole number >= 1, not 0"),
    (["--workers", "-1"], "--workers must be a whole number >= 1, not -1"),
    (["--memory-limit", "abc"], "memory limit 'abc' is not a size"),
    (["--scheduler", "tcp://127.0.0.1:1"], "no Dask scheduler answers at tcp://127.0.0.1:1"),
    (["--storage-options", '{"key": "k", "secret": "s", "password": "p"}'], "credential(s) ['password']"),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(lake_url: str, args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["score", lake_url, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    from flows import server

    assert server._server is None or server._server.process is None  # the server started alongside is stopped


def test_batch_models_and_scores_filters(lake_url: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["batch", lake_url, "--models", "nope"]) == 2
    assert "unknown feature set 'nope'" in capsys.readouterr().err
    assert main(["scores", lake_url]) == 0  # no records at all: said, not an error
    assert "no scores recorded yet" in capsys.readouterr().out
    assert main(["scores", lake_url, "--model", "nope"]) == 2  # a filter that matches nothing is an error even then
    assert capsys.readouterr().err.strip() == (
        "laion-lake scores: error: no score records match --model nope: the lake holds no score records yet; run `laion-lake score` first"
    )


def test_version_and_storage_options_must_be_an_object(lake_url: str, capsys: pytest.CaptureFixture) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"laion-lake {version('laion-lake')}"
    with pytest.raises(SystemExit) as exit_:
        main(["ls", lake_url, "--storage-options", "[1,2]"])
    assert exit_.value.code == 2 and "must be a JSON object" in capsys.readouterr().err


def test_report_unknown_model_names_what_exists(lake_url: str, tmp_path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", lake_url, "--models", "nope", "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"laion-lake report: error: unknown model 'nope' in {lake_url}; "
                                "valid: 'early_model', 'ground_truth', 'late_model', 'random_model'"]  # fmt: skip
    assert not (tmp_path / "report").exists()
