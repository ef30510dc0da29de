"""The leaderboard report, rendered from the scores of a tiny synthetic lake."""

from __future__ import annotations

import argparse
import re
import struct

import pytest

from laion_lake.report import collect_scores, format_error, format_value, write_report
from laion_lake.report.cli import add_commands
from laion_lake.scoring import score_many
from laion_lake.scoring.records import score_to_record
from laion_lake.synthetic import make_lake

BENCHMARKS = ["LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI.IT-tau-ridgecv", "LAION_fMRI.V1-rdm-pearson"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return make_lake(str(tmp_path_factory.mktemp("report") / "lake"), scale="tiny", seed=0)


@pytest.fixture(scope="module")
def scores(lake):
    return score_many(lake, lake.feature_sets, BENCHMARKS)


@pytest.fixture(scope="module")
def report(scores, lake, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    page = write_report(scores, out, title="Tiny leaderboard", lake_url=lake.url)
    return out, page, page.read_text(encoding="utf-8")


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_page_names_every_model_benchmark_and_ceiled_value(report, scores, lake):
    _, page, html = report
    assert page.name == "index.html"
    for (model, layer, benchmark), score in scores.items():
        assert f"{model}/{layer}" in html
        assert benchmark in html  # full key in the benchmark table and tooltips
        # the cell text: ceiled value, then its error, exactly as the table formats them
        assert f">{format_value(float(score))}<span class=\"e\">{format_error(score.attrs['error'])}</span>" in html
    assert "Tiny leaderboard" in html
    assert lake.url in html


def test_page_explains_convention_version_and_date(report):
    _, _, html = report
    assert "brainscore" in html and "ceiled = raw&sup2; / ceiling" in html and "ceiled = raw / ceiling" in html
    assert "version 1" in html
    assert re.search(r"report generated</td><td>\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", html)
    assert "bootstrap" in html


def test_figures_exist_are_valid_pngs_and_are_linked(report):
    out, _, html = report
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} == {"scores_LAION_fMRI.png", "ceilings.png", "raw_vs_ceiled.png"}
    for path in pngs:
        width, height = png_size(path)
        assert 500 <= width <= 3000 and 250 <= height <= 3000, (path.name, width, height)
        assert path.stat().st_size > 10_000
        assert f'src="{path.name}"' in html
    assert (out / "scores.csv").read_text().count("\n") == 1 + 4 * len(BENCHMARKS)


def test_report_from_score_records_matches_report_from_scores(scores, tmp_path):
    rows = collect_scores(scores)
    from_records = collect_scores([score_to_record(s) for s in scores.values()])
    assert [(r.feature_set, r.benchmark_key, r.value, r.error, r.raw, r.ceiling) for r in rows] == [
        (r.feature_set, r.benchmark_key, r.value, r.error, r.raw, r.ceiling) for r in from_records
    ]
    assert all(len(r.subjects) == 5 for r in from_records)



def test_missing_cells_are_marked_and_means_say_what_they_cover(scores, tmp_path):
    partial = [s for (model, _, benchmark), s in scores.items() if model in ("early_model", "late_model")
               and not (model == "late_model" and benchmark == BENCHMARKS[0])]
    html = write_report(partial, tmp_path).read_text()  # a list of DataArrays
    assert html.count('title="not scored">&ndash;</td>') == 1
    assert '<span class="e">(2 of 3)</span>' in html


def test_duplicate_and_empty_scores_are_refused(scores, tmp_path):
    one = next(iter(scores.values()))
    with pytest.raises(ValueError, match="two scores"):
        write_report([one, one], tmp_path)
    with pytest.raises(ValueError, match="no scores"):
        write_report([], tmp_path)


def test_cli_report_scores_the_lake_and_writes_the_page(lake, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["report", lake.url, "--out", str(tmp_path / "r"), "--benchmark", BENCHMARKS[2],
                              "--models", "ground_truth", "--quiet"])
    assert args.run(args) == 0
    assert "wrote" in capsys.readouterr().out
    html = (tmp_path / "r" / "index.html").read_text()
    assert "ground_truth/latent" in html and "early_model" not in html
    assert "computed for this report" in html
