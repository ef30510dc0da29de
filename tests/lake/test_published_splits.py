"""Ingest the published split JSONs shipped with the package (laion_lake/published_splits) and check SPEC's sizes."""

from __future__ import annotations

import numpy as np
import pytest

from laion_lake.lake import create_lake
from laion_lake.lake.naming import OOD_CATEGORIES, stimulus_table
from laion_lake.published_splits import N_FILES, POOLS, published_split_documents, published_splits_dir

SUBJECTS = ("sub-01", "sub-03", "sub-05", "sub-06", "sub-07")
# SPEC section 1: OOD images per category
STORED = ["cluster_k5_0", "cluster_k5_1", "cluster_k5_2", "cluster_k5_3", "cluster_k5_4", "ood", "random_0", "random_1", "random_2", "random_3", "random_4", "tau"]
OOD_COUNTS = {"shape": 82, "relations": 72, "unusual": 64, "cropped": 60, "selfmade": 30, "gaudy": 24, "illusion-classic": 21, "gabor": 10, "illusion-natural": 8}



def test_the_package_ships_all_72_files_and_their_license():
    root = published_splits_dir()
    assert sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")) == list(POOLS)
    assert len(sorted(root.glob("*/*.json"))) == N_FILES == 72
    assert "BSD 3-Clause" in (root / "LICENSE").read_text()
    assert {(d["lake_pool"], d["name"]) for d in published_split_documents()} == {(p, n) for p in POOLS for n in STORED}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    documents = published_split_documents()
    ids = {i for d in documents for v in d["variants"] for i in v["train_ids"] + v["test_ids"]}
    lake = create_lake(str(tmp_path_factory.mktemp("splits") / "lake"))
    lake.write_stimuli(stimulus_table(ids, SUBJECTS))
    lake.write_splits(documents)
    return lake


def test_every_pool_has_all_twelve_splits(lake):
    assert lake.pools == ["shared", *SUBJECTS]
    for pool in lake.pools:
        assert [n for n in lake.split_names(pool) if not n.startswith("ood_")] == STORED


def test_shared_pool_sizes(lake):
    sizes = {name: tuple(map(len, lake.split("shared", name))) for name in lake.split_names("shared")}
    assert sizes["tau"] == (897, 224)
    assert sizes["ood"] == (1121, 371)
    assert all(sizes[f"random_{k}"] == (897, 224) for k in range(5))
    assert [sizes[f"cluster_k5_{k}"][1] for k in range(5)] == [274, 248, 246, 225, 128]
    assert all(sum(sizes[f"cluster_k5_{k}"]) == 1121 for k in range(5))
    table = lake.stimuli
    assert int(table["shared"].sum()) == 1492
    assert int((table["design_repeats"].values[table["shared"].values] == 12).sum()) == 881


def test_subject_pool_sizes(lake):
    for subject in SUBJECTS:
        train, test = lake.split(subject, "tau")
        assert (len(train), len(test)) == (4666, 1167)
        train, test = lake.split(subject, "ood")
        assert (len(train), len(test)) == (5833, 371)
        unique = [i for i in train if i.startswith("unique")]
        assert len(unique) == 4712 and len(train) - len(unique) == 1121
        folds = [len(lake.split(subject, f"cluster_k5_{k}")[1]) for k in range(5)]
        assert sum(folds) == 5833
    assert [len(lake.split("sub-01", f"cluster_k5_{k}")[1]) for k in range(5)] == [615, 1293, 1506, 1238, 1181]


def test_ood_categories_from_names(lake):
    for category in OOD_CATEGORIES:
        _, test = lake.split("shared", f"ood_{category}")
        assert len(test) == OOD_COUNTS[category], category
        assert np.all(lake.stimuli["ood_category"].sel(stimulus_id=test).values == category)


def test_unique_images_belong_to_their_subject(lake):
    table = lake.stimuli
    owners = table["owner"].values[~table["shared"].values]
    assert {o: int((owners == o).sum()) for o in SUBJECTS} == {s: 4712 for s in SUBJECTS}
    _, test = lake.split("sub-03", "tau")
    assert set(table["owner"].sel(stimulus_id=test).values.tolist()) <= {"", "sub-03"}


def test_split_id_outside_the_stimulus_table_is_named(tmp_path):
    documents = published_split_documents()
    lake = create_lake(str(tmp_path / "lake"))
    lake.write_stimuli(stimulus_table([i for i in documents[0]["variants"][0]["train_ids"]][:-1] + documents[0]["variants"][0]["test_ids"], SUBJECTS))
    missing = documents[0]["variants"][0]["train_ids"][-1]
    with pytest.raises(ValueError, match=rf"{documents[0]['source']}.*not in the stimulus table: '{missing}'"):
        lake.write_splits(documents[:1])
