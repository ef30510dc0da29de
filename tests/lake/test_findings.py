"""Regression tests of issue #9's findings 1, 3, 4, 6 and 8 (2, 5, 9: tests/faults; 7: test_validate_deep)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import xarray as xr

from laion_lake.errors import NonFiniteDataError
from laion_lake.features.cli import add_commands
from laion_lake.lake import open_lake
from laion_lake.lake.features import features_path
from storage_schemas.names import RULE, InvalidNameError, escape_component, unescape_component
from tests.lake import handmade


@pytest.fixture
def lake(tmp_path):
    return handmade.write_handmade_lake(str(tmp_path / "lake"))


def _activations(lake, seed: int, n: int = 5) -> xr.DataArray:
    ids = lake.stimuli["stimulus_id"].values
    return xr.DataArray(np.random.default_rng(seed).standard_normal((len(ids), n)).astype(np.float32), dims=("stimulus_id", "feature"), coords={"stimulus_id": ids})


def _features_add(lake, tmp_path, model: str, layer: str, seed: int, *extra: str) -> int:
    data = _activations(lake, seed)
    np.save(tmp_path / "x.npy", data.values)
    (tmp_path / "ids.txt").write_text("\n".join(data["stimulus_id"].values))
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    from laion_lake.cli import main

    return main(["features", "add", lake.url, model, layer, str(tmp_path / "x.npy"), "--ids", str(tmp_path / "ids.txt"), *extra])


def test_finding_1_dot_dot_cannot_escape_features(lake, tmp_path, capsys):
    stimuli_before = lake.stimuli.copy(deep=True)
    assert _features_add(lake, tmp_path, "..", "stimuli", 1, "--overwrite") == 0
    reopened = open_lake(lake.url)
    xr.testing.assert_identical(reopened.stimuli, stimuli_before)  # the lake's own table is untouched
    assert ("..", "stimuli") in reopened.feature_sets and features_path("..", "stimuli") == "features/%2E.~stimuli"
    assert _features_add(lake, tmp_path, ".", "x", 2) == 0
    capsys.readouterr()
    for model in ("", "m" * 300):
        assert _features_add(lake, tmp_path, model, "x", 3) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.endswith(RULE), err
    assert open_lake(lake.url).feature_sets == sorted([("..", "stimuli"), (".", "x"), ("toy", "layer.1")])


@pytest.mark.parametrize("name", ["a", ".", "..", ".hidden", "a/b", "50/fc", "%2F", "~", "ü/é", "名前", "🙂", " x ", "a\nb", "x" * 66])
def test_naming_rule_round_trips_and_is_one_component(name):
    escaped = escape_component(name)
    assert unescape_component(escaped) == name
    assert "/" not in escaped and "~" not in escaped and escaped not in ("", ".", "..") and not escaped.startswith(".")


def test_naming_rule_rejects_what_it_cannot_store():
    for bad in ("", "x" * 201, "\udc80"):
        with pytest.raises(InvalidNameError, match="names must be non-empty"):
            escape_component(bad)
    with pytest.raises(InvalidNameError):
        unescape_component("%2f")  # not canonical: lower-case hex is never produced


def test_finding_4_keys_of_slashed_names_are_distinct(lake):
    lake.write_features("resnet/50", "fc", _activations(lake, 1))
    lake.write_features("resnet", "50/fc", _activations(lake, 2))
    reopened = open_lake(lake.url)
    assert {("resnet/50", "fc"), ("resnet", "50/fc")} <= set(reopened.feature_sets)
    np.testing.assert_array_equal(reopened.features("resnet/50", "fc").values, _activations(lake, 1).values)
    np.testing.assert_array_equal(reopened.features("resnet", "50/fc").values, _activations(lake, 2).values)
    from laion_lake.scoring.plan import WorkUnit

    assert WorkUnit("resnet/50", "fc", "sub-01", "shared", "tau").key != WorkUnit("resnet", "50/fc", "sub-01", "shared", "tau").key


def test_finding_8_non_finite_data_is_refused_at_write(lake):
    data = _activations(lake, 1)
    values = data.values.copy()
    values[3, 2], values[5, 4] = np.nan, np.inf
    ids = data["stimulus_id"].values
    with pytest.raises(NonFiniteDataError, match=rf"feature set nan/fc .*2 non-finite value\(s\).*first '{ids[3]}', '{ids[5]}'; column\(s\) '2', '4'"):
        lake.write_features("nan", "fc", data.copy(data=values))
    assembly = handmade.assembly("sub-05").assign_attrs(subject="sub-05")
    betas = assembly["betas"].values.copy()
    betas[1, 0] = np.nan
    with pytest.raises(NonFiniteDataError, match=rf"subject sub-05 betas .*'{assembly['stimulus_id'].values[1]}'; column\(s\) '{assembly['neuroid_id'].values[0]}'"):
        lake.write_subject("sub-05", assembly.copy(data={"betas": betas}))
    assert open_lake(lake.url).feature_sets == [("toy", "layer.1")]


BENCHMARK = "LAION_fMRI.V1-tau-ridgecv"


def _score(url: str) -> tuple[list[str], float]:
    from laion_lake.scoring.runner import aggregate_by_key, plan_keys, run_unit_by_key

    plan = plan_keys([("early_model", "conv2")], [BENCHMARK])
    outcomes = [run_unit_by_key(url, None, key, list(benchmarks)) for key, benchmarks in plan.units]
    (model, layer, benchmark), = plan.aggregates
    return outcomes, aggregate_by_key(url, None, model, layer, benchmark)["value"]


@pytest.mark.slow
def test_findings_3_and_6_replaced_features_make_records_stale(tmp_path):
    from laion_lake.scoring.records import load_scores
    from laion_lake.synthetic import make_lake

    url = str(tmp_path / "lake")
    lake = make_lake(url, scale="tiny", seed=0)
    outcomes, first = _score(url)
    assert set(outcomes) == {"computed"}
    assert _score(url)[0] == ["skipped"] * len(outcomes)
    scores = load_scores(open_lake(url))
    assert [float(s) for s in scores] == [first] and scores.stale == 0

    random = lake.features("random_model", "fc").load()
    lake.write_features("early_model", "conv2", random.isel(feature=slice(0, 64)), overwrite=True)
    stale = load_scores(open_lake(url))
    assert list(stale) == [] and stale.stale == 1  # the old aggregate is left out, and counted
    outcomes, second = _score(url)
    assert set(outcomes) == {"computed"}  # not skipped on the old records (finding 3)
    assert second != first and abs(second) < abs(first)
    current = load_scores(open_lake(url))
    assert [float(s) for s in current] == [second] and current.stale == 0
