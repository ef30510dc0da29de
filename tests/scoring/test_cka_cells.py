"""CKA cells on the synthetic lake (SPEC 3.4): one cell recomputed by the formula, the stored ceiling, ranking."""

from __future__ import annotations

import numpy as np
import pytest

from laion_lake import load_benchmark, score, score_many
from laion_lake.compute.bootstrap import bootstrap_mean_error
from laion_lake.compute.cka import PairwiseCeiling
from laion_lake.scoring.cka_unit import CkaCeilingError, ceiling_record_path, checked
from laion_lake.scoring.units import rdm_stimuli
from laion_lake.synthetic import make_lake
from tests.compute.test_cka import cka_by_the_formula

SUBJECTS = ("sub-01", "sub-03", "sub-05", "sub-06", "sub-07")


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory):
    return make_lake(str(tmp_path_factory.mktemp("tiny-cka") / "lake"), scale="tiny", seed=0)


@pytest.fixture(scope="module")
def it_scores(tiny_lake):
    models = [("ground_truth", "latent"), ("late_model", "fc6"), ("random_model", "fc")]
    return score_many(tiny_lake, models, ["Zerbe2026_fmri.IT-cka"])


def _responses(lake, subject, ids):
    return lake.responses(subject, "IT", ids).values.astype(np.float64)


def test_cells_and_ceiling_match_the_formula_evaluated_directly(tiny_lake, it_scores):
    result = it_scores[("late_model", "fc6", "LAION_fMRI.IT-cka")]
    ids = rdm_stimuli(tiny_lake)
    X = tiny_lake.features("late_model", "fc6", ids).values.astype(np.float64)
    brains = {s: _responses(tiny_lake, s, ids) for s in SUBJECTS}
    per_subject = {s: cka_by_the_formula(X, brains[s]) for s in SUBJECTS}
    pairs = {(a, b): cka_by_the_formula(brains[a], brains[b]) for i, a in enumerate(SUBJECTS) for b in SUBJECTS[i + 1 :]}
    ceiling = np.mean(list(pairs.values()))
    raw = np.mean(list(per_subject.values()))

    assert result.attrs["benchmark_key"] == "LAION_fMRI.IT-cka"
    assert {d["subject"]: d["raw"] for d in result.attrs["detail"]} == pytest.approx(per_subject, rel=1e-9)
    assert result.attrs["raw"] == pytest.approx(raw, rel=1e-9)
    assert result.attrs["ceiling"] == pytest.approx(ceiling, rel=1e-9)
    assert float(result) == pytest.approx(raw / ceiling, rel=1e-9)
    # error: the bootstrap error of raw over subjects, divided by the ceiling
    boot = bootstrap_mean_error(np.array([per_subject[s] for s in SUBJECTS]), n_draws=200, seed=0)
    assert result.attrs["error"] == pytest.approx(boot.error / ceiling, rel=1e-7)
    # the ceiling's pair values, SEM over pairs and each subject's mean are in the score
    stored = {tuple(p["subjects"]): p["cka"] for p in result.attrs["ceiling_pairs"]}
    assert stored == pytest.approx(pairs, rel=1e-9)
    assert len(stored) == 10
    values = np.array(list(pairs.values()))
    assert result.attrs["ceiling_error"] == pytest.approx(values.std(ddof=1) / np.sqrt(10), rel=1e-7)
    means = result.attrs["ceiling_subject_means"]
    assert means["sub-05"] == pytest.approx(np.mean([v for p, v in pairs.items() if "sub-05" in p]), rel=1e-9)


def test_ceiling_is_stored_once_and_read_back(tiny_lake, it_scores):
    spec = load_benchmark("LAION_fMRI.IT-cka")
    record = tiny_lake.storage.read_json(ceiling_record_path(spec))
    assert record["kind"] == "cka_ceiling" and record["region"] == "IT" and len(record["pairs"]) == 10
    assert record["value"] == pytest.approx(it_scores[("ground_truth", "latent", spec.key)].attrs["ceiling"], rel=1e-12)
    assert set(record["inputs"]["subjects"]) == set(SUBJECTS)
    # a second score, by the other spelling, reads the same ceiling and gives the same numbers
    again = score(tiny_lake, "random_model", "fc", "LAION_fMRI.IT-cka")
    assert float(again) == float(it_scores[("random_model", "fc", spec.key)])


def test_ground_truth_scores_clearly_above_random(it_scores):
    key = "LAION_fMRI.IT-cka"
    truth, late, chance = (float(it_scores[(m, l, key)]) for m, l in (("ground_truth", "latent"), ("late_model", "fc6"), ("random_model", "fc")))
    assert truth > 0.5 and late > 0.5
    assert abs(chance) < 0.1
    assert truth - chance > 10 * it_scores[("ground_truth", "latent", key)].attrs["error"]


def test_a_ceiling_that_is_not_finite_and_positive_is_an_error():
    spec = load_benchmark("LAION_fMRI.V4-cka")
    for value in (0.0, -0.02, float("nan")):
        bad = PairwiseCeiling(("sub-01", "sub-03"), ((("sub-01", "sub-03"), value),), value, float("nan"), {})
        with pytest.raises(CkaCeilingError, match=r"LAION_fMRI.V4-cka: the inter-subject CKA ceiling of V4 .* not a finite number > 0"):
            checked(bad, spec)


def test_one_subject_has_no_ceiling(tiny_lake):
    with pytest.raises(ValueError, match="at least 2 subjects"):
        score(tiny_lake, "ground_truth", "latent", load_benchmark("LAION_fMRI.V1-cka", subjects=["sub-01"]))


def test_records_path_gives_the_in_process_score_with_its_ceiling(tiny_lake, it_scores):
    """Units and aggregate through the key-addressed runner (what the flow's tasks call), then read back."""
    from laion_lake.scoring.records import load_scores
    from laion_lake.scoring.runner import aggregate_by_key, plan_keys, run_unit_by_key

    plan = plan_keys([("ground_truth", "latent")], ["Zerbe2026_fmri.IT-cka"])
    assert [key.rsplit("/", 2)[-2:] for key, _ in plan.units] == [["shared", "cka"]] * 5
    for key, benchmark_keys in plan.units:
        assert run_unit_by_key(tiny_lake.url, None, key, benchmark_keys) == "computed"
    (aggregate,) = plan.aggregates
    aggregate_by_key(tiny_lake.url, None, *aggregate)
    (stored,) = load_scores(tiny_lake, model="ground_truth", benchmark="LAION_fMRI.IT-cka")
    expected = it_scores[("ground_truth", "latent", "LAION_fMRI.IT-cka")]
    assert float(stored) == float(expected)
    assert stored.attrs["error"] == expected.attrs["error"]
    assert stored.attrs["ceiling_pairs"] == expected.attrs["ceiling_pairs"]
    assert stored.attrs["ceiling_subject_means"] == expected.attrs["ceiling_subject_means"]
