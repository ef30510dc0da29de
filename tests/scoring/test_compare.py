"""Paired bootstrap comparison on the synthetic lake: decisive where the ground truth says so, null against itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from laion_lake import compare, score
from laion_lake.cli import main
from laion_lake.synthetic import make_lake

N = 200  # draws: the smallest p is 1 / 201


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory):
    return make_lake(str(tmp_path_factory.mktemp("tiny-compare") / "lake"), scale="tiny", seed=0)


def test_ground_truth_against_random_is_decisive(tiny_lake):
    three = "@subjects=sub-01+sub-03+sub-07"  # lean: three subjects (three CKA ceiling pairs)
    benchmarks = [f"LAION_fMRI.IT-tau-ridgecv{three}", f"Zerbe2026_fmri_persubject.V1-tau-ridgecv{three}", f"Zerbe2026_fmri.V2-cka{three}"]
    results = compare(tiny_lake, "ground_truth/latent", "random_model/fc", benchmarks, n_bootstrap=N, seed=0)
    assert [c.benchmark for c in results] == [f"LAION_fMRI.IT-tau-ridgecv{three}", f"LAION_fMRI_persubject.V1-tau-ridgecv{three}",
                                              f"LAION_fMRI.V2-cka{three}"]
    for c in results:
        # the observed scores are the benchmark's scores
        assert c.score_a == pytest.approx(float(score(tiny_lake, "ground_truth", "latent", c.benchmark)), rel=1e-9)
        assert c.score_b == pytest.approx(float(score(tiny_lake, "random_model", "fc", c.benchmark)), rel=1e-9, abs=1e-12)
        assert c.difference == pytest.approx(c.score_a - c.score_b)
        assert 0 < c.low < c.difference < c.high
        assert c.p_value == pytest.approx(1 / (N + 1))
        assert c.verdict.startswith("ground_truth/latent scores higher than random_model/fc")


def test_a_model_against_itself_differs_by_zero(tiny_lake):
    (c,) = compare(tiny_lake, "late_model/fc6", "late_model/fc6", ["LAION_fMRI.V4-ood-ridgecv@subjects=sub-03+sub-05"], n_bootstrap=N)
    assert c.difference == 0.0 and c.low == 0.0 and c.high == 0.0
    assert c.p_value == 1.0
    assert c.verdict.startswith("no reliable difference")


def test_rdm_cells_ground_truth_against_random_and_a_model_against_itself(tiny_lake):
    """#12: compare takes RDM cells: the observed values are the benchmark's, GT vs random is decisive, A vs A is 0."""
    benchmark = "Zerbe2026_fmri.IT-rdm-pearson@subjects=sub-01+sub-03+sub-07"
    (c,) = compare(tiny_lake, "ground_truth/latent", "random_model/fc", [benchmark], n_bootstrap=N, seed=0)
    assert c.benchmark == "LAION_fMRI.IT-rdm-pearson@subjects=sub-01+sub-03+sub-07"
    assert c.score_a == pytest.approx(float(score(tiny_lake, "ground_truth", "latent", c.benchmark)), rel=1e-9)
    assert c.score_b == pytest.approx(float(score(tiny_lake, "random_model", "fc", c.benchmark)), rel=1e-9, abs=1e-12)
    assert 0 < c.low < c.difference < c.high and c.p_value == pytest.approx(1 / (N + 1))
    assert c.verdict.startswith("ground_truth/latent scores higher than random_model/fc")
    (same,) = compare(tiny_lake, "early_model/conv2", "early_model/conv2", ["LAION_fMRI.V1-rdm-pearson@subjects=sub-03+sub-05"], n_bootstrap=N)
    assert (same.difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert same.verdict.startswith("no reliable difference")


def test_rdm_draw_drops_the_pairs_of_an_image_with_itself():
    """A drawn image twice: its self-pair (dissimilarity 0) is left out; the rest is Spearman of the drawn pairs."""
    from scipy.stats import spearmanr

    from laion_lake.scoring.compare import _RdmPart

    rng = np.random.default_rng(1)
    def rdm(n: int) -> np.ndarray:
        m = rng.uniform(0.2, 1.8, (n, n))
        m = (m + m.T) / 2
        np.fill_diagonal(m, 0.0)
        return m
    a, b, brain = rdm(9), rdm(9), rdm(9)
    part = _RdmPart("sub-01", 0, (a, b), brain, 0.5)
    rows = np.array([0, 3, 3, 5, 8, 8, 8, 1])
    pairs = [(i, j) for x, i in enumerate(rows) for j in rows[x + 1:] if i != j]
    expected = [spearmanr([m[i, j] for i, j in pairs], [brain[i, j] for i, j in pairs])[0] / 0.5 for m in (a, b)]
    np.testing.assert_allclose(part.scores(None, rows), expected, rtol=1e-12)
    iu = np.triu_indices(9, 1)
    assert part.scores(None, np.arange(9))[0] == pytest.approx(spearmanr(a[iu], brain[iu])[0] / 0.5, rel=1e-12)


def test_seeded_and_the_same_draws_for_both_models(tiny_lake):
    args = (tiny_lake, "early_model/conv2", "late_model/fc6", ["LAION_fMRI.V1-tau-ridgecv@subjects=sub-01+sub-05"])
    first, again, other = compare(*args, n_bootstrap=50, seed=3), compare(*args, n_bootstrap=50, seed=3), compare(*args, n_bootstrap=50, seed=4)
    assert first == again
    assert (first[0].low, first[0].high) != (other[0].low, other[0].high)
    # swapping A and B mirrors the result exactly: the draws are shared
    (swapped,) = compare(tiny_lake, "late_model/fc6", "early_model/conv2", args[3], n_bootstrap=50, seed=3)
    assert swapped.difference == pytest.approx(-first[0].difference)
    assert (swapped.low, swapped.high) == pytest.approx((-first[0].high, -first[0].low))


def test_cli_prints_the_table_and_bad_input_exits_2(tiny_lake, capsys):
    code = main(["compare", tiny_lake.url, "--a", "ground_truth/latent", "--b", "random_model/fc", "--benchmark",
                 "LAION_fMRI.IT-tau-ridgecv@subjects=sub-01+sub-06", "--n-bootstrap", "50", "--format", "json"])
    assert code == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["benchmark"] == "LAION_fMRI.IT-tau-ridgecv@subjects=sub-01+sub-06" and row["low"] > 0 and np.isclose(row["p_value"], 1 / 51)
    assert main(["compare", tiny_lake.url, "--a", "alexnet/fc7", "--b", "random_model/fc", "--benchmark", "LAION_fMRI.IT-tau-ridgecv"]) == 2
    assert "unknown feature set 'alexnet/fc7'" in capsys.readouterr().err
    assert main(["compare", tiny_lake.url, "--a", "ground_truth/latent", "--b", "random_model/fc", "--benchmark", "LAION_fMRI.IT-rdm-spearman"]) == 2
    assert "IT-rdm-spearman" in capsys.readouterr().err


def test_interval_and_p_from_the_centred_draws():
    from laion_lake.scoring.compare import interval_and_p

    rng = np.random.default_rng(0)
    draws = 0.3 + rng.normal(0, 0.1, 4000)  # biased draws around an observed 0.05: centring removes the shift
    low, high, p = interval_and_p(0.05, draws)
    assert low == pytest.approx(0.05 - 1.96 * 0.1, abs=0.01) and high == pytest.approx(0.05 + 1.96 * 0.1, abs=0.01)
    assert p == pytest.approx(2 * (1 - 0.6915), abs=0.03)  # P(|N(0, 0.1)| >= 0.05)
