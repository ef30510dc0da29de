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

BENCHMARKS = ["LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI.IT-tau-ridgecv", "LAION_fMRI.V1-rdm-pearson", "Zerbe2026_fmri.IT-cka"]
FULL_HEAT = "background:rgb(37,99,168)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return make_lake(str(tmp_path_factory.mktemp("report") / "lake"), scale="tiny", seed=0)


@pytest.fixture(scope="module")
def scores(lake):
    return score_many(lake, lake.feature_sets, BENCHMARKS, voxels=True)


@pytest.fixture(scope="module")
def report(scores, lake, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    page = write_report(scores, out, title="Tiny leaderboard", lake_url=lake.url, lake=lake)
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
    # brain maps of the best feature set per region (the regression columns' regions), in the subject's grid
    assert {p.name for p in pngs} == {"scores_LAION_fMRI.png", "ceilings.png", "raw_vs_ceiled.png", "voxel_r_vs_ceiling.png",
                                      "map_V1.png", "map_IT.png"}
    assert "per-voxel r of the best feature set, <b>ground_truth/latent</b>" in html
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



def test_report_of_records_reads_the_stored_per_voxel_r(scores, tmp_path, capsys):
    """#12: scores from records carry no per-voxel r; with the lake, the scatter and maps read the arrays
    stored beside the records (equal to the in-process ones), recomputing only where no record exists."""
    from laion_lake.lake import open_lake
    from laion_lake.report.profiles import attach_stored_voxels
    from laion_lake.scoring.runner import plan_keys, run_unit_by_key

    lake = make_lake(str(tmp_path / "lake"), scale="tiny", seed=0)
    for key, benchmark_keys in plan_keys([("ground_truth", "latent")], BENCHMARKS[:2]).units:
        run_unit_by_key(lake.url, None, key, benchmark_keys)
    lake = open_lake(lake.url)
    records = [score_to_record(s) for (model, _, _), s in scores.items() if model in ("ground_truth", "random_model")]
    said: list[str] = []
    rows = attach_stored_voxels(collect_scores(records), lake, say=said.append)
    with_voxels = {(r.model, r.benchmark_key): r.voxel_r for r in rows if r.voxel_r is not None}
    assert set(with_voxels) == {(m, b) for m in ("ground_truth", "random_model") for b in BENCHMARKS[:2]}
    assert len(said) == 2 and all("random_model/fc" in line and "recomputing" in line for line in said)  # no record: recomputed
    for (model, benchmark), voxels in with_voxels.items():
        assert (type(voxels.data).__module__.startswith("dask")) == (model == "ground_truth")  # stored arrays are lazy
        expected = scores[(model, "latent" if model == "ground_truth" else "fc", benchmark)].attrs["voxel_r"]
        assert (voxels.values == expected.values)[~(voxels.isnull().values)].all()
    html = write_report(records, tmp_path / "out", lake=lake).read_text()
    assert (tmp_path / "out" / "voxel_r_vs_ceiling.png").exists() and "Each dot" in html
    assert capsys.readouterr().err.count("recomputing in this process") == 2


def test_one_colour_scale_per_column(report, scores):
    _, _, html = report
    # each column's best cell gets the full colour, whatever the other columns' scales
    assert html.count(FULL_HEAT) == len(BENCHMARKS)
    best_ridge = max(float(s) for (_, _, b), s in scores.items() if b == "LAION_fMRI.IT-tau-ridgecv")
    best_rdm = max(float(s) for (_, _, b), s in scores.items() if b == "LAION_fMRI.V1-rdm-pearson")
    assert best_ridge < best_rdm  # a page-wide scale would have left the ridge column pale
    assert "one scale per column" in html


def test_cka_columns_show_their_ceiling_and_the_ceiling_is_explained(report, scores):
    _, _, html = report
    cka = scores[("ground_truth", "latent", "LAION_fMRI.IT-cka")]
    assert "<h2>CKA ceilings</h2>" in html
    assert f"<b>{format_value(cka.attrs['ceiling'])}</b>" in html
    assert format_error(cka.attrs["ceiling_error"]) in html
    assert html.count("/") and "01/03 " in html  # pair values, sub-01 with sub-03
    assert "A ceiled score above 1</b> does not mean the model is better than the brain" in html
    # both spellings: the benchmark table lists the alias, the explanation names the renaming
    assert "<code>Zerbe2026_fmri.IT-cka</code>" in html and "Zerbe2026_fmri_persubject.* = LAION_fMRI_persubject.*" in html


def test_layer_profile_marks_the_best_layer(scores, tmp_path):
    records = []
    for (model, layer, benchmark), score in scores.items():
        if model != "late_model":
            continue
        for depth, factor in ((1, 0.5), (2, 1.0), (10, 0.8)):  # natural order: layer2 before layer10
            record = score_to_record(score)
            record.update(layer=f"layer{depth}", value=float(score) * factor)
            records.append(record)
    html = write_report(records, tmp_path).read_text()
    assert (tmp_path / "layers_late_model.png").exists()
    assert 'src="layers_late_model.png"' in html
    assert "IT-tau-ridgecv: <b>layer2</b>" in html
    assert "committed layers:" not in html  # nothing committed: nothing claimed
    committed = write_report(records, tmp_path / "committed", committed={"late_model": {"V1": "layer1", "IT": "layer10"}}).read_text()
    assert "committed layers: V1: <b>layer1</b>, IT: <b>layer10</b>" in committed
    from laion_lake.report.profiles import best_layer_rows

    # the bar charts show one bar per model: its best layer
    assert {r.layer for r in best_layer_rows(collect_scores(records))} == {"layer2"}
    assert "--recompute" in html  # records carry no per-voxel r: the page says how to get the scatter


def test_missing_cells_are_marked_and_means_say_what_they_cover(scores, tmp_path):
    partial = [s for (model, _, benchmark), s in scores.items() if model in ("early_model", "late_model")
               and not (model == "late_model" and benchmark == BENCHMARKS[0])]
    html = write_report(partial, tmp_path).read_text()  # a list of DataArrays
    assert html.count('title="not scored">&ndash;</td>') == 1
    assert f'<span class="e">({len(BENCHMARKS) - 1} of {len(BENCHMARKS)})</span>' in html


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
