"""A handmade miniature lake content, independent of the synthetic generator, for lake I/O tests."""

from __future__ import annotations

import numpy as np
import xarray as xr

SUBJECTS = ("sub-01", "sub-03")
SHARED = [f"shared_12rep_LAION_cluster_{i}_i0.jpg" for i in range(6)] + ["shared_4rep_OOD_gabor_gabor-1-radial.jpg", "shared_4rep_OOD_shape_blob_round-01.png"]


def unique_ids(subject: str) -> list[str]:
    return [f"unique_LAION_initial_cluster_{i}_i0_p{subject[-2:]}.jpg" for i in range(4)]


def stimulus_table() -> xr.Dataset:
    ids = sorted(SHARED + [i for s in SUBJECTS for i in unique_ids(s)])
    n_repeats = np.zeros((len(ids), len(SUBJECTS)), np.int16)
    for j, subject in enumerate(SUBJECTS):
        for i, stimulus in enumerate(ids):
            if stimulus in SHARED or stimulus in unique_ids(subject):
                n_repeats[i, j] = 3 if "12rep" in stimulus else 2
    return xr.Dataset(
        {
            "source": ("stimulus_id", np.array(["OOD" if "OOD" in i else "LAION" for i in ids])),
            "shared": ("stimulus_id", np.array([i.startswith("shared") for i in ids])),
            "ood_category": ("stimulus_id", np.array([i.split("_")[3] if "OOD" in i else "" for i in ids])),
            "owner": ("stimulus_id", np.array(["" if i.startswith("shared") else next(s for s in SUBJECTS if i in unique_ids(s)) for i in ids])),
            "design_repeats": ("stimulus_id", np.array([12 if "12rep" in i else 4 for i in ids], np.int16)),
            "n_repeats": (("stimulus_id", "subject"), n_repeats),
        },
        coords={"stimulus_id": np.array(ids), "subject": np.array(SUBJECTS)},
    )


def assembly(subject: str, regions: dict[str, int] | None = None, seed: int = 0) -> xr.Dataset:
    """Trials of every stimulus the subject saw (3 or 2 repeats), voxels grouped by region."""
    regions = regions or {"V1": 5, "V4": 3, "IT": 7}
    rng = np.random.default_rng(seed)
    table = stimulus_table()
    # a subject outside the table (a write that should fail) borrows the first subject's design
    seen = table["n_repeats"].sel(subject=subject if subject in SUBJECTS else SUBJECTS[0])
    trial_ids = np.concatenate([[s] * int(n) for s, n in zip(table["stimulus_id"].values, seen.values) if n])
    order = rng.permutation(len(trial_ids))
    trial_ids = trial_ids[order]
    repetition = np.zeros(len(trial_ids), np.int16)
    for stimulus in np.unique(trial_ids):
        where = np.flatnonzero(trial_ids == stimulus)
        repetition[where] = np.arange(1, len(where) + 1)
    n_voxels = sum(regions.values())
    region = np.concatenate([[name] * n for name, n in regions.items()])
    nc = rng.uniform(10, 90, n_voxels).astype(np.float32)
    index = np.sort(rng.choice(100_000, n_voxels, replace=False)).astype(np.int64)
    return xr.Dataset(
        {"betas": (("trial", "neuroid"), rng.standard_normal((len(trial_ids), n_voxels)).astype(np.float32))},
        coords={
            "stimulus_id": ("trial", trial_ids),
            "session": ("trial", (np.arange(len(trial_ids)) // 10 + 1).astype(np.int16)),
            "run": ("trial", (np.arange(len(trial_ids)) // 5 % 2 + 1).astype(np.int16)),
            "beta_index": ("trial", (np.arange(len(trial_ids)) % 10).astype(np.int32)),
            "repetition": ("trial", repetition),
            "neuroid_id": ("neuroid", np.array([f"{subject}.{i}" for i in index])),
            "region": ("neuroid", region),
            "roi": ("neuroid", np.array(["hV4" if r == "V4" else "laionventral" if r == "IT" else "V1v" for r in region])),
            "nc_4rep": ("neuroid", (nc * 0.6).astype(np.float32)),
            "nc_12rep": ("neuroid", nc),
            "nc_allrep": ("neuroid", (nc * 0.8).astype(np.float32)),
            "ncsnr": ("neuroid", np.sqrt(nc / 100 / (1 - nc / 100) / 12).astype(np.float32)),
            "voxel_index_in_brain_mask": ("neuroid", index),
            "x": ("neuroid", rng.integers(0, 100, n_voxels).astype(np.int16)),
            "y": ("neuroid", rng.integers(0, 100, n_voxels).astype(np.int16)),
            "z": ("neuroid", rng.integers(0, 100, n_voxels).astype(np.int16)),
        },
        attrs={"subject": subject, "regions": list(regions)},
    )


def split_documents() -> list[dict]:
    """Published-format split documents for the pool 'shared' and each subject."""
    table = stimulus_table()
    ids = table["stimulus_id"].values
    ood = [i for i in ids if "OOD" in i]
    documents = []
    for pool in ("shared",) + SUBJECTS:
        pool_ids = [i for i in ids if i.startswith("shared") and i not in ood] + ([] if pool == "shared" else unique_ids(pool))
        pool_ids = sorted(pool_ids)
        test = pool_ids[::4]
        train = [i for i in pool_ids if i not in test]
        documents.append({"name": "tau", "pool": pool, "n_train": len(train), "n_test": len(test), "variants": [{"variant_id": 0, "train_ids": train, "test_ids": test}], "lake_pool": pool})
        documents.append({"name": "ood", "pool": pool, "n_train": len(pool_ids), "n_test": len(ood), "variants": [{"variant_id": 0, "train_ids": pool_ids, "test_ids": sorted(ood)}], "lake_pool": pool})
    return documents


def write_handmade_lake(url: str, storage_options: dict | None = None):
    from laion_lake.lake import create_lake

    lake = create_lake(url, storage_options)
    lake.write_stimuli(stimulus_table())
    lake.write_splits(split_documents())
    for k, subject in enumerate(SUBJECTS):
        lake.write_subject(subject, assembly(subject, seed=k))
    ids = stimulus_table()["stimulus_id"].values
    features = xr.DataArray(np.random.default_rng(9).standard_normal((len(ids), 6)).astype(np.float32), dims=("stimulus_id", "feature"), coords={"stimulus_id": ids})
    lake.write_features("toy", "layer.1", features)
    return lake
