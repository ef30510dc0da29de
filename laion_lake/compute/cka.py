"""Unbiased linear CKA on n x n Gram matrices (SPEC 3.4): pure numpy, no I/O.

The unbiased HSIC estimator (Song et al. 2012) of two representations X (n x d_x), Y (n x d_y)
of the same n >= 4 stimuli, with no prior centring::

    K = X X^T, L = Y Y^T, diagonals set to 0
    HSIC = [sum_ij K_ij L_ij + (1^T K 1)(1^T L 1) / ((n-1)(n-2)) - 2/(n-2) sum_i (K1)_i (L1)_i] / (n(n-3))
    CKA  = HSIC(K, L) / (sqrt(HSIC(K, K) HSIC(L, L)) + 1e-12), and 0 when HSIC(K, K) HSIC(L, L) <= 0

Everything after the Gram products is O(n^2), so a representation's width costs one product
(:func:`gram_matrix`, or :func:`accumulate_gram` chunk by chunk for layers too wide to hold).
:class:`UnbiasedGram` keeps the zero-diagonal Gram with its row sums, so comparing one model with
five subjects (or ten subject pairs) reuses each Gram's sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

# added to the CKA denominator (SPEC 3.4), as the reference does
CKA_EPSILON = 1e-12
MIN_STIMULI = 4


def gram_matrix(X: np.ndarray) -> np.ndarray:
    """``X @ X.T`` in float64.

    Parameters
    ----------
    X : array of shape (n_stimuli, n_features)

    Returns
    -------
    array of shape (n_stimuli, n_stimuli)
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"a representation is 2-D (stimuli x features), got shape {X.shape}")
    return X @ X.T


def accumulate_gram(gram: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Add ``block @ block.T`` (one chunk of feature columns, shape (n, d_chunk)) to ``gram`` in place."""
    block = np.asarray(block, dtype=np.float64)
    gram += block @ block.T
    return gram


@dataclass(frozen=True)
class UnbiasedGram:
    """A Gram matrix prepared for the unbiased HSIC: diagonal zeroed, row sums and total kept.

    Attributes
    ----------
    matrix : array of shape (n, n)
        ``K`` with its diagonal set to 0.
    row_sums : array of shape (n,)
        ``K 1``.
    total : float
        ``1^T K 1``.
    """

    matrix: np.ndarray
    row_sums: np.ndarray
    total: float

    @classmethod
    def from_gram(cls, gram: np.ndarray, copy: bool = True) -> UnbiasedGram:
        """Prepare ``gram`` (n x n, symmetric); ``copy=False`` zeroes its diagonal in place."""
        K = np.array(gram, dtype=np.float64, copy=copy) if copy else np.asarray(gram, dtype=np.float64)
        if K.ndim != 2 or K.shape[0] != K.shape[1]:
            raise ValueError(f"a Gram matrix is square, got shape {K.shape}")
        if K.shape[0] < MIN_STIMULI:
            raise ValueError(f"the unbiased HSIC needs n >= {MIN_STIMULI} stimuli, got {K.shape[0]}")
        np.fill_diagonal(K, 0.0)
        row_sums = K.sum(axis=1)
        return cls(K, row_sums, float(row_sums.sum()))

    @classmethod
    def from_features(cls, X: np.ndarray) -> UnbiasedGram:
        """From a representation (n x d): one Gram product."""
        return cls.from_gram(gram_matrix(X), copy=False)

    @property
    def n(self) -> int:
        return int(self.matrix.shape[0])


def unbiased_hsic(K: UnbiasedGram, L: UnbiasedGram) -> float:
    """The unbiased linear HSIC of two prepared Gram matrices of the same n stimuli (formula above)."""
    n = K.n
    if L.n != n:
        raise ValueError(f"Gram matrices of different stimulus counts: {n} and {L.n}")
    trace_term = float(np.einsum("ij,ij->", K.matrix, L.matrix))
    total_term = K.total * L.total / ((n - 1) * (n - 2))
    row_term = 2.0 / (n - 2) * float(K.row_sums @ L.row_sums)
    return (trace_term + total_term - row_term) / (n * (n - 3))


def cka_from_hsic(hsic_xy: float, hsic_xx: float, hsic_yy: float) -> float:
    """CKA from the three HSICs: 0 when ``hsic_xx * hsic_yy <= 0`` (SPEC 3.4)."""
    product = hsic_xx * hsic_yy
    if not product > 0:
        return 0.0
    return float(hsic_xy / (np.sqrt(product) + CKA_EPSILON))


def cka(K: UnbiasedGram, L: UnbiasedGram) -> float:
    """Unbiased linear CKA of two prepared Gram matrices."""
    return cka_from_hsic(unbiased_hsic(K, L), unbiased_hsic(K, K), unbiased_hsic(L, L))


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Unbiased linear CKA of two representations (n x d_x, n x d_y) of the same stimuli, same order."""
    X, Y = np.asarray(X), np.asarray(Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"representations of different stimulus counts: {X.shape[0]} and {Y.shape[0]}")
    return cka(UnbiasedGram.from_features(X), UnbiasedGram.from_features(Y))


@dataclass(frozen=True)
class PairwiseCeiling:
    """The inter-subject CKA ceiling: mean over the subject pairs i < j of CKA(subject_i, subject_j).

    Attributes
    ----------
    subjects : tuple of str
    pairs : tuple of ((str, str), float)
        Each pair and its CKA, in ``combinations(subjects, 2)`` order.
    value : float
        Mean over pairs.
    error : float
        SEM over pairs (std ddof 1 / sqrt(pairs)); NaN for a single pair.
    subject_means : dict of str -> float
        Each subject's mean over the pairs it is in.
    """

    subjects: tuple[str, ...]
    pairs: tuple[tuple[tuple[str, str], float], ...]
    value: float
    error: float
    subject_means: dict[str, float]


def pairwise_ceiling(grams: Sequence[tuple[str, UnbiasedGram]]) -> PairwiseCeiling:
    """The pairwise inter-subject CKA ceiling of subjects' prepared Gram matrices (same stimuli, same order).

    Voxels never correspond across subjects, so subjects are compared pair by pair, never through
    a mean brain.

    Raises
    ------
    ValueError
        Fewer than two subjects (no pair).
    """
    if len(grams) < 2:
        raise ValueError(f"the inter-subject CKA ceiling needs at least 2 subjects, got {len(grams)}")
    names = tuple(name for name, _ in grams)
    self_hsic = {name: unbiased_hsic(K, K) for name, K in grams}
    by_name = dict(grams)
    pairs = tuple(
        ((a, b), cka_from_hsic(unbiased_hsic(by_name[a], by_name[b]), self_hsic[a], self_hsic[b]))
        for a, b in combinations(names, 2)
    )
    values = np.array([v for _, v in pairs])
    error = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
    subject_means = {s: float(np.mean([v for pair, v in pairs if s in pair])) for s in names}
    return PairwiseCeiling(names, pairs, float(values.mean()), error, subject_means)


__all__ = [
    "CKA_EPSILON",
    "PairwiseCeiling",
    "UnbiasedGram",
    "accumulate_gram",
    "cka",
    "cka_from_hsic",
    "gram_matrix",
    "linear_cka",
    "pairwise_ceiling",
    "unbiased_hsic",
]
