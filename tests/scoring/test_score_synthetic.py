"""End-to-end scores on the synthetic lake: the glue against scikit-learn, and the known ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from laion_lake import list_benchmarks, load_benchmark, score, score_many
from laion_lake.compute.ridge import DEFAULT_ALPHAS
from laion_lake.synthetic import make_lake
from laion_lake.synthetic.features import EXPECTED_RANKING, MODEL_LAYERS


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory):
    return make_lake(str(tmp_path_factory.mktemp("tiny") / "lake"), scale="tiny", seed=0)


@pytest.mark.parametrize(("model", "layer"), [("early_model", "conv2"), ("random_model", "fc")])  # dual, primal route
def test_one_cell_matches_scikit_learn_ridgecv(tiny_lake, model, layer):
    """The per-subject V1 tau cell of sub-01, recomputed from the lake with sklearn RidgeCV."""
    from scipy.stats import pearsonr

    from laion_lake.compute.solvers import choose_route

    spec = load_benchmark("LAION_fMRI_persubject.V1-tau-ridgecv", subjects=["sub-01"])
    result = score(tiny_lake, model, layer, spec)
    train, test = tiny_lake.split("sub-01", "tau")
    X_train = tiny_lake.features(model, layer, train).values.astype(np.float64)
    X_test = tiny_lake.features(model, layer, test).values.astype(np.float64)
    assert choose_route(*X_train.shape) == {"conv2": "dual", "fc": "primal"}[layer]
    Y_train = tiny_lake.responses("sub-01", "V1", train).values.astype(np.float64)
    responses = tiny_lake.responses("sub-01", "V1", test)
    Y_test = responses.values.astype(np.float64)
    model = RidgeCV(alphas=DEFAULT_ALPHAS, alpha_per_target=False).fit(X_train, Y_train)
    predictions = model.predict(X_test)
    r = np.array([pearsonr(predictions[:, v], Y_test[:, v])[0] for v in range(Y_test.shape[1])])
    raw = np.median(r)
    ceiling = np.median(np.sqrt(np.clip(responses["nc_12rep"].values, 0, 100) / 100))
    detail = result.attrs["detail"][0]
    assert detail["alpha"] == model.alpha_
    assert result.attrs["raw"] == pytest.approx(raw, abs=1e-6)
    assert result.attrs["ceiling"] == pytest.approx(ceiling, abs=1e-7)
    assert float(result) == pytest.approx(raw**2 / ceiling, abs=1e-6)
    assert np.isnan(result.attrs["error"]) and "single value" in result.attrs["error_reason"]


def test_rdm_cell_matches_scipy(tiny_lake):
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    spec = load_benchmark("LAION_fMRI.IT-rdm-pearson", subjects=["sub-03"])
    result = score(tiny_lake, "late_model", "fc6", spec)
    table = tiny_lake.stimuli
    ids = np.sort(table["stimulus_id"].values[table["shared"].values & (table["ood_category"].values == "")])
    features = tiny_lake.features("late_model", "fc6", ids).values.astype(np.float64)
    responses = tiny_lake.responses("sub-03", "IT", ids)
    # pdist's 'correlation' distance is 1 - Pearson r, in the upper-triangle order
    raw = spearmanr(pdist(features, "correlation"), pdist(responses.values.astype(np.float64), "correlation")).statistic
    ceiling = np.mean(np.sqrt(responses["nc_12rep"].values / 100))
    # float32 responses: near-equal dissimilarities may rank differently by rounding, hence 1e-6
    assert result.attrs["raw"] == pytest.approx(raw, abs=1e-6)
    assert float(result) == pytest.approx(raw / ceiling, abs=1e-6)


def test_multi_subject_aggregate_and_bootstrap(tiny_lake):
    spec = load_benchmark("LAION_fMRI.V4-tau-ridgecv")
    result = score(tiny_lake, "late_model", "fc6", spec)
    detail = result.attrs["detail"]
    assert [d["subject"] for d in detail] == ["sub-01", "sub-03", "sub-05", "sub-06", "sub-07"]
    ceiled = np.array([d["ceiled"] for d in detail])
    assert float(result) == pytest.approx(ceiled.mean(), abs=1e-12)
    assert result.attrs["raw"] == pytest.approx(np.mean([d["raw"] for d in detail]), abs=1e-12)
    draws = np.random.default_rng(0).integers(0, 5, size=(200, 5))
    assert result.attrs["error"] == pytest.approx(ceiled[draws].mean(axis=1).std(ddof=1), abs=1e-12)
    assert result.attrs["error_over"] == "subjects" and result.attrs["n_bootstrap"] == 200
    assert result.attrs["benchmark"] == "LAION_fMRI.V4-tau-ridgecv" and result.attrs["benchmark_version"] == 1
    assert result.attrs["convention"] == "brainscore"


def test_kfold_benchmark_averages_folds(tiny_lake):
    spec = load_benchmark("LAION_fMRI.V1-cluster_k5-ridge", subjects=["sub-01", "sub-05"])
    result = score(tiny_lake, "early_model", "conv2", spec)
    folds = result.attrs["fold_scores"]
    assert len(folds) == 5 and result.attrs["error_over"] == "folds"
    assert float(result) == pytest.approx(np.mean(folds), abs=1e-12)
    assert {d["alpha"] for d in result.attrs["detail"]} == {1.0}


def test_same_seed_same_scores_bit_for_bit(tiny_lake, tmp_path):
    again = make_lake(str(tmp_path / "again"), scale="tiny", seed=0)
    ids = ["LAION_fMRI_persubject.IT-ood-ridgecv", "LAION_fMRI.V1-rdm-pearson"]
    first = score_many(tiny_lake, [("late_model", "fc6")], ids)
    second = score_many(again, [("late_model", "fc6")], ids)
    for key in first:
        assert float(first[key]) == float(second[key])
        assert first[key].attrs["detail"] == second[key].attrs["detail"]


def test_one_eigendecomposition_per_feature_set_subject_and_train_set(tiny_lake, monkeypatch):
    """All four regions, ridge and ridgecv and the nine ood_<category> cells share one decomposition."""
    import laion_lake.scoring.units as units

    calls = []
    real = units.decompose_train_features
    monkeypatch.setattr(units, "decompose_train_features", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k))
    categories = ["shape", "relations", "unusual", "cropped", "selfmade", "gaudy", "illusion-classic", "gabor", "illusion-natural"]
    ids = [f"LAION_fMRI_persubject.{r}-ood-{m}" for r in ("V1", "V2", "V4", "IT") for m in ("ridge", "ridgecv")]
    ids += [f"LAION_fMRI_persubject.IT-ood_{c}-ridgecv" for c in categories]
    scores = score_many(tiny_lake, [("early_model", "conv2")], [load_benchmark(i, subjects=["sub-01"]) for i in ids])
    assert len(scores) == len(ids) == 17
    assert len(calls) == 1


def test_per_voxel_r_is_stored_with_the_unit_records_and_read_back(tiny_lake):
    """#12 item 3: the records path stores each cell's per-voxel r as arrays next to the unit record;
    lake.voxel_scores gives back exactly what the in-process score carries, with the voxels' coordinates."""
    from laion_lake.lake import open_lake
    from laion_lake.scoring.runner import plan_keys, run_unit_by_key

    benchmark = "LAION_fMRI.V1-tau-ridgecv"
    plan = plan_keys([("early_model", "conv2")], [benchmark])
    for key, benchmark_keys in plan.units:
        assert run_unit_by_key(tiny_lake.url, None, key, benchmark_keys, force=True) == "computed"
    stored = open_lake(tiny_lake.url).voxel_scores("early_model", "conv2", benchmark)
    expected = score(tiny_lake, "early_model", "conv2", benchmark).attrs["voxel_r"]
    assert stored.dims == ("subject", "neuroid") and list(stored["subject"].values) == list(expected["subject"].values)
    np.testing.assert_array_equal(stored.values, expected.values)  # NaN padding in the same places
    np.testing.assert_array_equal(stored["neuroid_id"].values, expected["neuroid_id"].values)
    assert set(np.unique(stored["region"].values)) - {""} == {"V1"}
    for name in ("x", "y", "z", "nc_12rep"):
        np.testing.assert_array_equal(stored[name].values, expected[name].values)
    # the median of each subject's stored r is the cell's raw score in the record
    raw = np.nanmedian(stored.values, axis=1)
    assert np.all(np.abs(raw) > 0.1)
    with pytest.raises(FileNotFoundError, match="no score record"):
        open_lake(tiny_lake.url).voxel_scores("random_model", "fc", benchmark)  # never run through records


def test_per_voxel_nsd_r2_is_stored_lazy_and_equals_the_in_process_values(tiny_lake):
    """#12 item 3: each cell also stores r^2 / (NC/100) (nsd convention) and the NC used; lake.voxel_scores
    reads both quantities lazily, equal to score()'s attrs exactly; under the nsd convention each
    subject's ceiled score is the median of its stored r2_nsd."""
    import dask.array as da

    from laion_lake.compute.ceiling import nsd_normalized_r2
    from laion_lake.lake import open_lake
    from laion_lake.scoring.records import cell_results_for
    from laion_lake.scoring.plan import Aggregate, FeatureSet, group_by_aggregate, plan_work
    from laion_lake.scoring.runner import plan_keys, run_unit_by_key

    benchmark = "LAION_fMRI.V1-tau-ridgecv@convention=nsd"
    plan = plan_keys([("early_model", "conv2")], [benchmark])
    for key, benchmark_keys in plan.units:
        assert run_unit_by_key(tiny_lake.url, None, key, benchmark_keys, force=True) == "computed"
    lake = open_lake(tiny_lake.url)
    in_process = score(tiny_lake, "early_model", "conv2", benchmark)
    for quantity, attr in (("r", "voxel_r"), ("r2_nsd", "voxel_r2_nsd")):
        stored = lake.voxel_scores("early_model", "conv2", benchmark, quantity=quantity)
        assert isinstance(stored.data, da.Array) and isinstance(stored["nc_nsd"].data, da.Array)  # lazy
        expected = in_process.attrs[attr]
        assert stored.name == attr and stored.attrs["quantity"] == quantity
        np.testing.assert_array_equal(stored.values, expected.values)
        np.testing.assert_array_equal(stored["nc_nsd"].values, expected["nc_nsd"].values)
        np.testing.assert_array_equal(stored["neuroid_id"].values, expected["neuroid_id"].values)
    r = lake.voxel_scores("early_model", "conv2", benchmark).values
    r2 = lake.voxel_scores("early_model", "conv2", benchmark, quantity="r2_nsd")
    np.testing.assert_array_equal(r2.values, nsd_normalized_r2(r, r2["nc_nsd"].values))
    assert np.nanmin(r2["nc_nsd"].values) > 0 and np.nanmax(r2["nc_nsd"].values) <= 100
    spec = load_benchmark(benchmark)
    pairs = group_by_aggregate(plan_work([FeatureSet("early_model", "conv2")], [spec]))[Aggregate("early_model", "conv2", spec.key)]
    for cell in cell_results_for(lake, pairs):
        row = r2.sel(subject=cell.subject).values[: int(r2["n_voxels"].sel(subject=cell.subject))]
        finite = np.isfinite(r[list(r2["subject"].values).index(cell.subject)][: len(row)])
        assert cell.convention == "nsd" and cell.ceiled == float(np.median(row[finite]))
    with pytest.raises(ValueError, match="quantity 'r2'"):
        lake.voxel_scores("early_model", "conv2", benchmark, quantity="r2")
    with pytest.raises(ValueError, match="no per-voxel results"):
        lake.voxel_scores("early_model", "conv2", "LAION_fMRI.V1-rdm-pearson")


def test_a_score_names_the_feature_sets_checksum_and_provenance(tiny_lake):
    """#13 item 4: a score (in process and from the records) names the feature set it was computed from."""
    from laion_lake.lake import open_lake
    from laion_lake.scoring.records import load_scores
    from laion_lake.scoring.runner import aggregate_by_key, plan_keys, run_unit_by_key

    benchmark = "LAION_fMRI.V1-tau-ridgecv"
    entry = tiny_lake.feature_entry("early_model", "conv2")
    in_process = score(tiny_lake, "early_model", "conv2", benchmark)
    assert in_process.attrs["feature_set"] == {"checksum": entry["checksum"], "provenance": dict(entry.get("provenance") or {})}
    plan = plan_keys([("early_model", "conv2")], [benchmark])
    for key, benchmark_keys in plan.units:
        run_unit_by_key(tiny_lake.url, None, key, benchmark_keys)
    aggregate_by_key(tiny_lake.url, None, *plan.aggregates[0])
    (stored,) = load_scores(open_lake(tiny_lake.url), model="early_model", layer="conv2", benchmark=benchmark)
    assert stored.attrs["feature_set"] == in_process.attrs["feature_set"]
