"""The 12 published splits of every pool, made from the synthetic latent codes.

Documents follow the published JSON format (``name``, ``pool``, ``splitter``, ``params``,
``n_train``, ``n_test``, ``variants: [{variant_id: 0, train_ids, test_ids}]``, ids sorted), plus
``lake_pool`` (``shared`` or the subject), which :meth:`laion_lake.lake.Lake.write_splits` needs.

Pools: ``shared`` = the shared non-OOD images; ``sub-XX`` = those plus the subject's unique images.
The OOD images are only ever test images (split ``ood``).

- ``random_k``: a uniform random 20 % test set (``n_test = round(0.2 * N)``), own stream per k.
- ``tau``: a near-duplicate-free holdout. Images closer than ``tau`` in the semantic latent
  (``z_high``) are joined into groups (connected components of the graph "distance < tau", tau =
  the 25th percentile of nearest-neighbour distances in the pool); whole groups are drawn in
  random order into the test set until it holds ``round(0.2 * N)`` images (a group that would
  overshoot is skipped). So no test image has a train image within tau, while the test set stays
  a random sample of groups, i.e. distribution-matched (the published tau split matches test and
  train by MMD for the same reason).
- ``cluster_k5_k``: k-means (k = 5, k-means++ init, seeded) on ``z_high`` of the pool's non-OOD
  images; fold k holds out cluster k (sizes follow the latent clusters, not the published ones).
- ``ood``: train = the whole non-OOD pool, test = every OOD image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from laion_lake.lake.tables import SPLIT_NAMES
from laion_lake.synthetic.design import stream
TEST_FRACTION = 0.2
TAU_PERCENTILE = 25.0
N_CLUSTERS = 5


def n_test_for(n_pool: int) -> int:
    """Test-set size of the tau and random splits."""
    return int(round(TEST_FRACTION * n_pool))


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, n_iter: int = 100) -> np.ndarray:
    """Labels (n,) of Lloyd's k-means with k-means++ initialisation."""
    n = len(points)
    centres = [points[rng.integers(n)]]
    closest = np.square(points - centres[0]).sum(axis=1)
    for _ in range(1, k):
        centres.append(points[rng.choice(n, p=closest / closest.sum())])
        closest = np.minimum(closest, np.square(points - centres[-1]).sum(axis=1))
    centres = np.array(centres)
    labels = np.full(n, -1)
    for _ in range(n_iter):
        distance = np.square(points[:, None, :] - centres[None, :, :]).sum(axis=2)
        new = distance.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = points[labels == j]
            if len(members):  # an emptied cluster keeps its centre
                centres[j] = members.mean(axis=0)
    return labels


def _nearest_and_close_pairs(points: np.ndarray, tau: float | None, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour distance of each point, and the pairs (i < j) closer than ``tau``."""
    points = np.asarray(points, dtype=np.float32)
    sq = np.square(points).sum(axis=1)
    nearest = np.empty(len(points))
    pairs = []
    for start in range(0, len(points), block):
        rows = slice(start, min(start + block, len(points)))
        d2 = points[rows] @ points.T
        d2 *= -2.0
        d2 += sq[rows, None]
        d2 += sq[None, :]
        d2[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = np.inf
        nearest[rows] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        if tau is not None:
            i, j = np.nonzero(d2 < tau**2)
            i = i + start
            pairs.append(np.stack([i[i < j], j[i < j]], axis=1))
    return nearest, (np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64))


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label of each of n nodes (union-find over ``pairs``)."""
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([root(i) for i in range(n)])


def tau_test_mask(points: np.ndarray, n_test: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Test membership (bool, n) of the tau split over ``points``, and the tau used."""
    nearest, _ = _nearest_and_close_pairs(points, None)
    tau = float(np.percentile(nearest, TAU_PERCENTILE))
    _, pairs = _nearest_and_close_pairs(points, tau)
    labels = _components(len(points), pairs)
    groups = np.unique(labels)
    test = np.zeros(len(points), bool)
    remaining = n_test
    for group in rng.permutation(groups):
        members = np.flatnonzero(labels == group)
        if len(members) <= remaining:
            test[members] = True
            remaining -= len(members)
            if remaining == 0:
                break
    if remaining:  # only big groups left: cannot happen with the pools here, but never return a wrong size
        rest = rng.permutation(np.flatnonzero(~test))[:remaining]
        test[rest] = True
    return test, tau


def _document(name: str, lake_pool: str, pool_label: str, splitter: str, params: dict[str, Any], train: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    train_ids, test_ids = sorted(map(str, train)), sorted(map(str, test))
    return {
        "name": name,
        "pool": pool_label,
        "splitter": splitter,
        "params": params,
        "n_train": len(train_ids),
        "n_test": len(test_ids),
        "variants": [{"variant_id": 0, "train_ids": train_ids, "test_ids": test_ids}],
        "lake_pool": lake_pool,
    }


def pool_split_documents(
    pool: str,
    pool_ids: np.ndarray,
    semantic_latent: np.ndarray,
    ood_ids: np.ndarray,
    ood_categories: list[str],
    seed: int,
) -> list[dict[str, Any]]:
    """The 12 split documents of one pool.

    Parameters
    ----------
    pool : str
        ``"shared"`` or a subject id.
    pool_ids : array of str (n,)
        The pool's non-OOD images.
    semantic_latent : array (n, d)
        ``z_high`` of ``pool_ids``, row for row.
    ood_ids : array of str
        The OOD images (the ``ood`` test set).
    ood_categories : list of str
        Recorded in the ``ood`` document's params, as published.
    seed : int
        The dataset seed; each split draws from its own stream.
    """
    order = np.argsort(pool_ids)
    ids, points = np.asarray(pool_ids)[order].astype(str), np.asarray(semantic_latent, dtype=np.float64)[order]
    n = len(ids)
    n_test = n_test_for(n)
    if pool == "shared":
        label = f"LAION non-OOD shared ({n} images)"
        ood_label = label
    else:
        label = f"{pool} full pool (unique + LAION non-OOD shared)"
        ood_label = f"{pool} full pool ({n} images)"
    documents = []
    test, tau = tau_test_mask(points, n_test, stream(seed, "splits", pool, "tau"))
    params = {"method": "nn_group_holdout", "space": "latent_high", "tau": tau, "percentile": TAU_PERCENTILE}
    documents.append(_document("tau", pool, label, "min_nn_stochastic", params, ids[~test], ids[test]))
    params = {"method": "ood_dataset_holdout", "ood_types": sorted(ood_categories)}
    documents.append(_document("ood", pool, ood_label, "ood_holdout", params, ids, np.asarray(ood_ids)))
    for k in range(5):
        test = np.zeros(n, bool)
        test[stream(seed, "splits", pool, f"random_{k}").permutation(n)[:n_test]] = True
        params = {"method": "uniform_random", "seed": k}
        documents.append(_document(f"random_{k}", pool, label, "min_nn_stochastic", params, ids[~test], ids[test]))
    clusters = kmeans(points, N_CLUSTERS, stream(seed, "splits", pool, "kmeans"))
    for k in range(N_CLUSTERS):
        params = {"method": "kmeans_latent_k5_holdout", "held_out_cluster": k}
        documents.append(_document(f"cluster_k5_{k}", pool, label, "min_nn_stochastic", params, ids[clusters != k], ids[clusters == k]))
    return documents
