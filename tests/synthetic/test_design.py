"""The synthetic design: the real counts at full scale (no betas generated), structure at every scale, splits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from laion_lake.synthetic import SCALES, SUBJECTS, SyntheticDataset
from laion_lake.synthetic import design, voxels
from laion_lake.synthetic.splits import SPLIT_NAMES, n_test_for
from storage_schemas import check_dataset

PUBLISHED_KEYS = {"name", "pool", "splitter", "params", "n_train", "n_test", "variants"}


def _kind(stimulus_id: str) -> str:
    for prefix in ("shared_12rep_LAION", "shared_12rep_THINGS+", "shared_4rep_NSD_special1000", "shared_4rep_OOD",
                   "unique_LAION_initial", "unique_LAION_fillup", "unique_LAION_new", "unique_THINGS+", "unique_THINGS"):  # fmt: skip
        if stimulus_id.startswith(prefix + "_"):
            return prefix
    raise AssertionError(f"unexpected name {stimulus_id!r}")


# -- full scale: the counts of SPEC sections 1-2, design only ----------------------------------
def test_full_scale_image_counts() -> None:
    shared = design.shared_stimuli("full", 0)
    kinds = Counter(map(_kind, shared.stimulus_id))
    assert kinds == {"shared_12rep_LAION": 641, "shared_12rep_THINGS+": 240, "shared_4rep_NSD_special1000": 240, "shared_4rep_OOD": 371}
    assert len(shared) == 1492 and (shared.design_repeats == 12).sum() == 881 and (shared.design_repeats == 4).sum() == 611
    assert Counter(shared.ood_category[shared.ood_category != ""].tolist()) == design.OOD_COUNTS
    assert sum(design.OOD_COUNTS.values()) == 371
    for subject in SUBJECTS:
        unique = design.unique_stimuli("full", 0, subject)
        assert Counter(unique.source.tolist()) == {"LAION": 4246, "THINGS+": 322, "THINGS": 144}
        assert Counter(map(_kind, unique.stimulus_id)) == {
            "unique_LAION_initial": 3166, "unique_LAION_fillup": 725, "unique_LAION_new": 355,
            "unique_THINGS+": 322, "unique_THINGS": 144,
        }  # fmt: skip
        code = design.PARTICIPANT_CODE[subject]
        assert all(i.endswith(f"_{code}.jpg") for i in unique.stimulus_id)
        assert (unique.owner == subject).all() and not unique.shared.any()
        every = design.subject_stimuli("full", 0, subject).stimulus_id
        assert len(every) == 6204 and len(set(every)) == 6204


def test_names_parse_like_the_release() -> None:
    naming = pytest.importorskip("laion_lake.lake.naming")
    stimuli = design.subject_stimuli("full", 0, "sub-06")
    for i, stimulus_id in enumerate(stimuli.stimulus_id):
        parsed = naming.parse_stimulus_id(str(stimulus_id))
        assert parsed.shared == stimuli.shared[i]
        assert parsed.source == stimuli.source[i]
        assert parsed.ood_category == stimuli.ood_category[i]
        assert parsed.design_repeats == stimuli.design_repeats[i]
        assert parsed.participant in ("", "p02")


def test_full_scale_trials() -> None:
    scale = SCALES["full"]
    assert scale.nominal_trials == 31864
    for subject in SUBJECTS:
        trials = design.subject_trials("full", 0, subject)
        assert trials.n_trials == 31864 - scale.lost_repeats == 31856
        sessions, per_session = np.unique(trials.session, return_counts=True)
        assert sessions.tolist() == list(range(1, 31))  # 31-34 held out
        assert 900 < per_session.min() and per_session.max() < 1250 and abs(per_session.mean() - 1062) < 1
        images_per_session = [len(np.unique(trials.image[trials.session == s])) for s in sessions]
        assert 720 < np.mean(images_per_session) < 820  # ~770 images per session
        counts = Counter(trials.n_repeats.tolist())
        assert counts[11] == 4 and counts[3] == 4 and counts[12] == 877 and counts[4] == 611 + 4712 - 4
        assert set(np.unique(trials.run)) == set(range(1, 11))
        _check_trial_bookkeeping(trials)


def _check_trial_bookkeeping(trials: design.TrialTable) -> None:
    bounds = trials.session_bounds()
    assert (np.diff(trials.session) >= 0).all()  # chronological
    for start, stop in zip(bounds[:-1], bounds[1:]):
        assert (trials.beta_index[start:stop] == np.arange(stop - start)).all()
        assert (np.diff(trials.run[start:stop]) >= 0).all()
    # repetition = 1..n in chronological order for each image
    order = np.lexsort((np.arange(trials.n_trials), trials.image))
    image, repetition = trials.image[order], trials.repetition[order]
    starts = np.r_[0, np.flatnonzero(np.diff(image)) + 1]
    expected = np.arange(len(image)) - np.repeat(starts, np.diff(np.r_[starts, len(image)])) + 1
    assert (repetition == expected).all()
    assert trials.session.dtype == np.int16 and trials.run.dtype == np.int16
    assert trials.beta_index.dtype == np.int32 and trials.repetition.dtype == np.int16


def test_full_scale_voxels() -> None:
    mask = voxels.brain_mask_coordinates()
    assert 95_000 < len(mask) < 105_000
    for subject in SUBJECTS:
        layout = voxels.voxel_layout("full", 0, subject)
        counts = layout.counts()
        for region, nominal in SCALES["full"].voxels.items():
            assert abs(counts[region] - nominal) < 0.2 * nominal
        assert 5_800 < counts["V1"] + counts["V2"] + counts["V4"] + counts["IT"] < 7_000
        assert len(np.unique(layout.voxel_index)) == len(layout)
        assert (mask[layout.voxel_index] == np.stack([layout.x, layout.y, layout.z], axis=1)).all()
        assert layout.x.dtype == np.int16 and layout.voxel_index.dtype == np.int64
        starts = [np.flatnonzero(layout.region == r)[0] for r in voxels.REGIONS]
        assert starts == sorted(starts)  # V1, V2, V3, V4, IT
        for region in voxels.REGIONS:
            rows = layout.region == region
            assert (np.diff(layout.voxel_index[rows]) > 0).all()
            assert set(layout.roi[rows]) == set(voxels.ROI_LABELS[region])
        # occipital pole first: V1 lies behind IT
        assert layout.y[layout.region == "V1"].mean() < layout.y[layout.region == "IT"].mean()


# -- every scale keeps every structure -------------------------------------------------------------
@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_smaller_scales_keep_every_structure(scale: str) -> None:
    shared = design.shared_stimuli(scale, 0)
    categories = Counter(shared.ood_category[shared.ood_category != ""].tolist())
    assert set(categories) == set(design.OOD_CATEGORIES) and min(categories.values()) >= 3
    assert {12, 4} <= set(shared.design_repeats.tolist())
    assert set(shared.source.tolist()) == {"LAION", "THINGS+", "NSD", "OOD"}
    for subject in SUBJECTS:
        trials = design.subject_trials(scale, 0, subject)
        repeats = set(trials.n_repeats.tolist())
        assert {12, 11, 4, 3} <= repeats  # lost repeats at both designs
        assert len(np.unique(trials.session)) == SCALES[scale].n_sessions > 1
        assert len(np.unique(trials.run)) > 1
        assert set(design.unique_stimuli(scale, 0, subject).source.tolist()) == {"LAION", "THINGS+", "THINGS"}
        assert all(n >= 20 for n in voxels.voxel_layout(scale, 0, subject).counts().values())
        _check_trial_bookkeeping(trials)
    if scale == "tiny":
        assert 100 <= SCALES[scale].n_shared_non_ood <= 140 and SCALES[scale].n_ood >= 27
        assert 130 <= SCALES[scale].n_unique <= 170


@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_stimulus_table(scale: str) -> None:
    data = SyntheticDataset(scale, 0)
    stimuli = data.stimuli
    check_dataset(stimuli, "stimuli")
    ids = stimuli["stimulus_id"].values
    assert (ids[:-1] < ids[1:]).all()
    n_repeats = stimuli["n_repeats"].values
    shared = stimuli["shared"].values
    assert (n_repeats[shared] > 0).all()
    design_repeats = stimuli["design_repeats"].values[:, None]
    shown = n_repeats > 0
    assert ((n_repeats >= design_repeats - 1) | ~shown).all() and (n_repeats <= design_repeats).all()
    for j, subject in enumerate(data.subjects):
        mine = stimuli["owner"].values == subject
        assert (shown[:, j] == (shared | mine)).all()
        # the table's counts are the trial table's counts
        trial_ids, counts = np.unique(data.trials(subject).stimulus_id, return_counts=True)
        assert (n_repeats[np.searchsorted(ids, trial_ids), j] == counts).all()
        assert n_repeats[:, j].sum() == data.trials(subject).n_trials


# -- splits ----------------------------------------------------------------------------------------
def _check_documents(data: SyntheticDataset) -> None:
    documents = data.split_documents()
    stimuli = data.stimuli
    ids = set(stimuli["stimulus_id"].values.tolist())
    ood = set(stimuli["stimulus_id"].values[stimuli["ood_category"].values != ""].tolist())
    shared_non_ood = set(stimuli["stimulus_id"].values[stimuli["shared"].values].tolist()) - ood
    by_pool: dict[str, dict[str, dict]] = {}
    for document in documents:
        assert PUBLISHED_KEYS <= set(document) and document["lake_pool"] in ("shared",) + data.subjects
        by_pool.setdefault(document["lake_pool"], {})[document["name"]] = document
        (variant,) = document["variants"]
        assert variant["variant_id"] == 0
        train, test = variant["train_ids"], variant["test_ids"]
        assert train == sorted(train) and test == sorted(test)
        assert not set(train) & set(test) and len(set(train)) == len(train)
        assert (document["n_train"], document["n_test"]) == (len(train), len(test))
        assert set(train) | set(test) <= ids
    assert set(by_pool) == {"shared", *data.subjects}
    for pool, splits in by_pool.items():
        assert set(splits) == set(SPLIT_NAMES)
        members = shared_non_ood if pool == "shared" else shared_non_ood | set(stimuli["stimulus_id"].values[stimuli["owner"].values == pool].tolist())
        n = len(members)
        for name in ("tau",) + tuple(f"random_{k}" for k in range(5)):
            variant = splits[name]["variants"][0]
            assert set(variant["train_ids"]) | set(variant["test_ids"]) == members
            assert len(variant["test_ids"]) == n_test_for(n) == round(0.2 * n)
        assert set(splits["ood"]["variants"][0]["train_ids"]) == members
        assert set(splits["ood"]["variants"][0]["test_ids"]) == ood
        folds = [set(splits[f"cluster_k5_{k}"]["variants"][0]["test_ids"]) for k in range(5)]
        assert set().union(*folds) == members and sum(map(len, folds)) == n and all(folds)
        assert splits["random_0"]["variants"][0]["test_ids"] != splits["random_1"]["variants"][0]["test_ids"]


@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_split_documents(scale: str) -> None:
    _check_documents(SyntheticDataset(scale, 0))


def test_tau_holds_out_no_near_duplicate() -> None:
    data = SyntheticDataset("small", 0)
    documents = {(d["lake_pool"], d["name"]): d for d in data.split_documents()}
    ids, codes = data.latents()
    for pool in ("shared", "sub-05"):
        document = documents[(pool, "tau")]
        tau = document["params"]["tau"]
        train = codes.high[np.searchsorted(ids, document["variants"][0]["train_ids"])]
        test = codes.high[np.searchsorted(ids, document["variants"][0]["test_ids"])]
        nearest_train = np.sqrt(((test[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
        assert nearest_train.min() >= tau * (1 - 1e-5)


def test_full_scale_split_sizes() -> None:
    documents = SyntheticDataset("full", 0).split_documents()
    sizes = {(d["lake_pool"], d["name"]): (d["n_train"], d["n_test"]) for d in documents}
    assert sizes[("shared", "tau")] == sizes[("shared", "random_3")] == (897, 224)
    assert sizes[("shared", "ood")] == (1121, 371)
    assert sum(sizes[("shared", f"cluster_k5_{k}")][1] for k in range(5)) == 1121
    for subject in SUBJECTS:
        assert sizes[(subject, "tau")] == sizes[(subject, "random_0")] == (4666, 1167)
        assert sizes[(subject, "ood")] == (5833, 371)
        folds = [sizes[(subject, f"cluster_k5_{k}")][1] for k in range(5)]
        assert sum(folds) == 5833 and min(folds) > 100


def test_splits_go_through_the_lake_path() -> None:
    tables = pytest.importorskip("laion_lake.lake.tables")
    data = SyntheticDataset("tiny", 0)
    splits = tables.splits_dataset_from_documents(data.split_documents(), data.stimuli["stimulus_id"].values)
    check_dataset(splits, "splits")
    assert splits.sizes["split"] == 6 * 12
