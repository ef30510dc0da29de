"""Is model A better than model B on a benchmark, beyond noise? A paired bootstrap of the score difference.

>>> from laion_lake import compare
>>> [c.verdict for c in compare(lake, "ground_truth/latent", "random_model/fc", ["LAION_fMRI.IT-tau-ridgecv"])]
['ground_truth/latent scores higher than random_model/fc on LAION_fMRI.IT-tau-ridgecv (p = 0.000999)']

Both models are fitted here, in this process, with the scoring code's own steps (centred kernel,
one eigendecomposition, ridgecv by leave-one-out) so that per-stimulus predictions exist; the
observed scores are the benchmark's scores. Each bootstrap draw resamples the subjects with
replacement and, within each drawn subject (and fold), the test stimuli with replacement; A and B
are scored on exactly the same draw, so what the two models share (which subjects, which images
are easy) cancels in the difference; the draws are centred on the observed difference before the
interval and p are read off them (:func:`interval_and_p`). Regression, RDM and CKA benchmarks are
supported: an RDM or CKA draw resamples the shared images, rows and columns of the RDMs (Gram
matrices) alike, and drops the pairs of an image with itself; the ceiling of a draw is the
benchmark's ceiling, held fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from laion_lake.benchmarks import BenchmarkSpec, load_benchmark
from laion_lake.compute.cka import UnbiasedGram, cka
from laion_lake.compute.ceiling import rdm_ceiled_score, rdm_ceiling
from laion_lake.compute.correlation import pearson_r_per_column, spearman_r
from laion_lake.compute.kernel import compute_centered_linear_kernels
from laion_lake.compute.ridge import eigendecompose_centered_kernel
from laion_lake.scoring.units import FEATURE_CHUNK_SIZE, _safe_rdm, rdm_stimuli, regression_ceiled

DEFAULT_N_BOOTSTRAP = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Comparison:
    """A minus B on one benchmark.

    Attributes
    ----------
    benchmark : str
        The benchmark key.
    a, b : str
        ``model/layer`` of the two feature sets.
    score_a, score_b : float
        Their ceiled scores (the benchmark's values).
    difference : float
        ``score_a - score_b``.
    low, high : float
        The 95% percentile interval of the bootstrap differences.
    p_value : float
        Two-sided bootstrap p of "no difference" (see :func:`interval_and_p`); at least 1 / (n_bootstrap + 1).
    n_bootstrap, seed : int
    verdict : str
        One line saying which model is better, or that the data cannot tell.
    """

    benchmark: str
    a: str
    b: str
    score_a: float
    score_b: float
    difference: float
    low: float
    high: float
    p_value: float
    n_bootstrap: int
    seed: int
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _RegressionPart:
    """One (subject, fold) of a regression benchmark: both models' test predictions and the responses."""

    subject: str
    fold: int
    predictions: tuple[np.ndarray, np.ndarray]
    responses: np.ndarray
    nc: np.ndarray
    ncsnr: np.ndarray
    test_repeats: np.ndarray

    @property
    def n(self) -> int:
        return int(self.responses.shape[0])

    def scores(self, spec: BenchmarkSpec, rows: np.ndarray) -> tuple[float, float]:
        return tuple(  # type: ignore[return-value]
            regression_ceiled(spec, pearson_r_per_column(p[rows], self.responses[rows]), self.nc, self.ncsnr, self.test_repeats[rows])[2]
            for p in self.predictions
        )


@dataclass(frozen=True)
class _ImagePairsPart:
    """One subject of a shared-image benchmark (RDM or CKA): an n x n matrix per model and the
    subject's own, with the subject's ceiling; the subclass says how a draw of images is scored."""

    subject: str
    fold: int
    models: tuple[np.ndarray, np.ndarray]
    brain: np.ndarray
    ceiling: float

    @property
    def n(self) -> int:
        return int(self.brain.shape[0])


class _CkaPart(_ImagePairsPart):
    """Gram matrices (n x n) of both models and of the subject."""

    def scores(self, spec: BenchmarkSpec, rows: np.ndarray) -> tuple[float, float]:
        # a stimulus drawn twice would pair with itself: those pairs are dropped like the diagonal
        # (their product is a squared norm, not a similarity between two images)
        same = rows[:, None] == rows[None, :]

        def resampled(gram: np.ndarray) -> UnbiasedGram:
            sub = gram[np.ix_(rows, rows)]
            sub[same] = 0.0
            return UnbiasedGram.from_gram(sub, copy=False)

        L = resampled(self.brain)
        return tuple(cka(resampled(K), L) / self.ceiling for K in self.models)  # type: ignore[return-value]


class _RdmPart(_ImagePairsPart):
    """RDMs (n x n) of both models and of the subject."""

    def scores(self, spec: BenchmarkSpec, rows: np.ndarray) -> tuple[float, float]:
        # the drawn stimuli's upper triangle; a stimulus drawn twice would pair with itself (a
        # dissimilarity of 0 by construction, not a comparison of two images): those pairs are dropped
        first, second = np.triu_indices(len(rows), 1)
        i, j = rows[first], rows[second]
        keep = i != j
        i, j = i[keep], j[keep]
        brain = self.brain[i, j]
        return tuple(rdm_ceiled_score(spearman_r(rdm[i, j], brain), self.ceiling) for rdm in self.models)  # type: ignore[return-value]


def _parse_feature_set(lake: Any, text: str | Sequence[str]) -> tuple[str, str]:
    """``"model/layer"`` (or a pair) -> (model, layer), checked against the lake's feature sets."""
    known = [tuple(fs) for fs in lake.feature_sets]
    if not isinstance(text, str):
        pair = tuple(text)
    else:
        pair = next((fs for fs in known if f"{fs[0]}/{fs[1]}" == text), tuple(text.split("/", 1)))
    if len(pair) != 2 or pair not in known:
        listed = ", ".join(f"{m}/{l}" for m, l in known)
        raise ValueError(f"unknown feature set {text!r} in {lake.url}: expected MODEL/LAYER, one of {listed}")
    return pair  # type: ignore[return-value]


def _fit_predictions(lake: Any, feature_set: tuple[str, str], pool: str, split_name: str, ids: np.ndarray, is_train: np.ndarray,
                     Y_train: np.ndarray, spec: BenchmarkSpec, decompositions: dict[tuple[Any, ...], Any]) -> np.ndarray:
    """Test predictions (n_test, n_voxels) of one feature set, fitted as the regression units fit them.

    The kernel's eigendecomposition depends on the feature set and the train set only, so it is
    kept in ``decompositions`` for every subject of the shared pool and every region.
    """
    key = (feature_set, pool, split_name)
    if key not in decompositions:
        X = np.asarray(lake.features(*feature_set, ids).values)
        K_train, K_test = compute_centered_linear_kernels(X[is_train], X[~is_train], feature_chunk_size=FEATURE_CHUNK_SIZE)
        decompositions[key] = eigendecompose_centered_kernel(K_train, K_test, overwrite_kernel=True)
    decomposition = decompositions[key]
    if spec.metric == "ridgecv":
        return decomposition.ridgecv(Y_train, alphas=np.asarray(spec.alphas)).predictions
    return decomposition.ridge(Y_train, alpha=spec.alphas[0])


def _regression_parts(lake: Any, spec: BenchmarkSpec, a: tuple[str, str], b: tuple[str, str],
                      decompositions: dict[tuple[Any, ...], Any]) -> list[list[_RegressionPart]]:
    parts: list[list[_RegressionPart]] = []
    for fold, split_name in enumerate(spec.folds):
        row = []
        for subject in spec.subjects:
            pool = spec.pool_for(subject)
            train_ids, test_ids = lake.split(pool, split_name)
            ids = np.sort(np.concatenate([train_ids, test_ids]))
            is_train = np.zeros(len(ids), bool)
            is_train[np.searchsorted(ids, train_ids)] = True
            responses = lake.responses(subject, spec.region, ids, nc_threshold=spec.nc_threshold, nc_coord=spec.nc_coord)
            Y = np.asarray(responses.values, dtype=np.float64)
            rows = np.ones((~is_train).sum(), bool)
            if spec.test_ood_category is not None:
                rows = lake.stimuli["ood_category"].sel(stimulus_id=ids[~is_train]).values == spec.test_ood_category
            predictions = tuple(_fit_predictions(lake, fs, pool, split_name, ids, is_train, Y[is_train], spec, decompositions)[rows]
                                for fs in (a, b))
            row.append(_RegressionPart(subject, fold, predictions, Y[~is_train][rows], responses[spec.nc_coord].values,
                                       responses["ncsnr"].values, responses["n_repeats"].values[~is_train][rows]))
        parts.append(row)
    return parts


def _cka_parts(lake: Any, spec: BenchmarkSpec, a: tuple[str, str], b: tuple[str, str]) -> list[list[_CkaPart]]:
    from laion_lake.compute.cka import gram_matrix
    from laion_lake.scoring.cka_unit import cka_ceiling

    ids = rdm_stimuli(lake)
    ceiling = cka_ceiling(lake, spec).value
    grams = tuple(gram_matrix(np.asarray(lake.features(*fs, ids).values)) for fs in (a, b))
    row = []
    for subject in spec.subjects:
        Y = lake.responses(subject, spec.region, ids, nc_threshold=spec.nc_threshold, nc_coord=spec.nc_coord).values
        row.append(_CkaPart(subject, 0, grams, gram_matrix(np.asarray(Y)), ceiling))
    return [row]


def _rdm_parts(lake: Any, spec: BenchmarkSpec, a: tuple[str, str], b: tuple[str, str]) -> list[list[_RdmPart]]:
    """Per subject, the RDMs an rdm unit builds (:func:`~laion_lake.scoring.units.run_rdm_unit`), on the shared non-OOD images."""
    ids = rdm_stimuli(lake)
    rdms = tuple(_safe_rdm(np.asarray(lake.features(*fs, ids).values), f"{'/'.join(fs)} features on the rdm stimuli") for fs in (a, b))
    row = []
    for subject in spec.subjects:
        responses = lake.responses(subject, spec.region, ids, nc_threshold=spec.nc_threshold, nc_coord=spec.nc_coord)
        brain = _safe_rdm(np.asarray(responses.values), f"{subject} {spec.region} responses on the rdm stimuli")
        row.append(_RdmPart(subject, 0, rdms, brain, rdm_ceiling(responses[spec.nc_coord].values)))
    return [row]


def paired_bootstrap(spec: BenchmarkSpec, parts: list[list[Any]], n_bootstrap: int, seed: int) -> tuple[tuple[float, float], np.ndarray]:
    """(observed (A, B) scores, bootstrap differences A - B of shape (n_bootstrap,)).

    ``parts[fold][subject]``. A score is the mean over folds of the mean over subjects; a draw
    resamples subjects (the same for every fold) and each drawn (subject, fold)'s test stimuli.
    """
    observed = np.array([[p.scores(spec, np.arange(p.n)) for p in row] for row in parts])  # (fold, subject, model)
    score_a, score_b = (float(v) for v in observed.mean(axis=1).mean(axis=0))
    rng = np.random.default_rng(seed)
    n_subjects = len(parts[0])
    differences = np.empty(n_bootstrap)
    for draw in range(n_bootstrap):
        subjects = rng.integers(0, n_subjects, n_subjects)
        fold_means = []
        for row in parts:
            values = [row[s].scores(spec, rng.integers(0, row[s].n, row[s].n)) for s in subjects]
            fold_means.append(np.mean(values, axis=0))
        mean_a, mean_b = np.mean(fold_means, axis=0)
        differences[draw] = mean_a - mean_b
    return (score_a, score_b), differences


def interval_and_p(observed: float, differences: np.ndarray) -> tuple[float, float, float]:
    """(low, high, two-sided p) of an observed difference from its paired bootstrap draws.

    Resampling test images with replacement shifts some scores as a whole (a median of r over
    duplicated images, a CKA over a resampled Gram matrix), so the draws are first centred on the
    observed difference: the interval is ``observed + the 2.5 and 97.5 percentiles of (d - mean d)``,
    and p tests "no difference" by where the observed value falls among the centred draws,
    ``(1 + #{|d - mean d| >= |observed|}) / (n + 1)``.
    """
    centred = differences - differences.mean()
    tail = (1.0 - CONFIDENCE) / 2
    low, high = (float(observed + v) for v in np.quantile(centred, [tail, 1.0 - tail]))
    extreme = int((np.abs(centred) >= abs(observed)).sum())
    return low, high, min(1.0, (1 + extreme) / (len(differences) + 1))


def _verdict(a: str, b: str, key: str, difference: float, low: float, high: float, p: float) -> str:
    if low > 0:
        return f"{a} scores higher than {b} on {key} (p = {p:.3g})"
    if high < 0:
        return f"{b} scores higher than {a} on {key} (p = {p:.3g})"
    return f"no reliable difference between {a} and {b} on {key}: the 95% interval [{low:+.3f}, {high:+.3f}] includes 0 (p = {p:.3g})"


def compare(
    lake: Any,
    a: str | Sequence[str],
    b: str | Sequence[str],
    benchmarks: Iterable[BenchmarkSpec | str],
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> list[Comparison]:
    """Paired bootstrap comparison of two feature sets on each benchmark.

    Parameters
    ----------
    lake : Lake or str
    a, b : str or (model, layer)
        ``"model/layer"``.
    benchmarks : iterable of BenchmarkSpec or identifier (either family spelling)
        Regression (ridgecv, ridge), RDM or CKA benchmarks.
    n_bootstrap : int
        Draws (>= 2); the smallest p it can report is 1 / (n_bootstrap + 1).
    seed : int
        Seed of the draws: the same inputs and seed give bit-identical results.

    Returns
    -------
    list of Comparison, one per benchmark, in the order given.

    Raises
    ------
    ValueError
        An unknown feature set or benchmark, or fewer than 2 draws.
    """
    from laion_lake.scoring.api import _as_lake

    if n_bootstrap < 2:
        raise ValueError(f"compare needs n_bootstrap >= 2, got {n_bootstrap}")
    lake = _as_lake(lake)
    fa, fb = _parse_feature_set(lake, a), _parse_feature_set(lake, b)
    name_a, name_b = "/".join(fa), "/".join(fb)
    out = []
    decompositions: dict[tuple[Any, ...], Any] = {}
    for benchmark in benchmarks:
        spec = benchmark if isinstance(benchmark, BenchmarkSpec) else load_benchmark(benchmark)
        if spec.kind == "cka":
            parts: list[list[Any]] = _cka_parts(lake, spec, fa, fb)
        elif spec.kind == "rdm":
            parts = _rdm_parts(lake, spec, fa, fb)
        else:
            parts = _regression_parts(lake, spec, fa, fb, decompositions)
        (score_a, score_b), differences = paired_bootstrap(spec, parts, n_bootstrap, seed)
        difference = score_a - score_b
        low, high, p = interval_and_p(difference, differences)
        out.append(Comparison(spec.key, name_a, name_b, score_a, score_b, difference, low, high, p, n_bootstrap, seed,
                              _verdict(name_a, name_b, spec.key, difference, low, high, p)))
    return out


def comparison_table(comparisons: Sequence[Comparison]) -> str:
    """A plain-text table: benchmark, both scores, A - B, 95% interval, p, and each verdict line below it."""
    if not comparisons:
        return "no comparisons"
    first = comparisons[0]
    width = max(len(c.benchmark) for c in comparisons)
    lines = [f"A = {first.a}    B = {first.b}    ({first.n_bootstrap} paired bootstrap draws, seed {first.seed})", "",
             f"{'benchmark':{width}}  {'A':>7}  {'B':>7}  {'A - B':>7}  {'95% interval':>19}  {'p':>7}"]
    for c in comparisons:
        lines.append(f"{c.benchmark:{width}}  {c.score_a:7.3f}  {c.score_b:7.3f}  {c.difference:+7.3f}  "
                     f"[{c.low:+7.3f}, {c.high:+7.3f}]  {c.p_value:7.3g}")
    lines.append("")
    lines += [c.verdict for c in comparisons]
    return "\n".join(lines)


__all__ = ["Comparison", "compare", "comparison_table", "paired_bootstrap"]
