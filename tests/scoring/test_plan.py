"""Work planning: which fits are needed, what each serves, and how results regroup into scores."""

from __future__ import annotations

import random

import pytest

from laion_lake.benchmarks import OOD_CATEGORIES, SUBJECTS, list_benchmarks, load_benchmark
from laion_lake.scoring.plan import (
    Aggregate,
    Cell,
    FeatureSet,
    WorkUnit,
    escape_key_component,
    group_by_aggregate,
    plan_work,
    specs_by_key,
    unescape_key_component,
)

ALEXNET = [("alexnet", "features.2")]


def units_of(plan):
    return [work.unit for work in plan]


def test_headline_plan_for_one_feature_set_has_30_units():
    plan = plan_work(ALEXNET, list_benchmarks())
    units = units_of(plan)
    # counted by hand: shared-pool fits, 5 subjects x {tau, ood} = 10; per-subject fits,
    # 5 x {tau, ood} = 10; rdm, one per subject = 5; cka, one per subject = 5
    assert len(units) == 30
    assert len(set(units)) == 30
    cka = [u for u in units if u.kind == "cka"]
    assert len(cka) == 5 and all(u.pool == "shared" and u.split_name == "cka" for u in cka)
    assert all(WorkUnit.from_key(u.key) == u for u in cka)
    shared_fits = [u for u in units if u.kind == "regression" and u.pool == "shared"]
    own_fits = [u for u in units if u.kind == "regression" and u.pool != "shared"]
    rdm = [u for u in units if u.kind == "rdm"]
    assert len(shared_fits) == 10 and len(own_fits) == 10 and len(rdm) == 5
    assert all(u.pool == u.subject for u in own_fits)
    assert {(u.subject, u.split_name) for u in shared_fits} == {(s, t) for s in SUBJECTS for t in ("tau", "ood")}
    assert all(u.pool == "shared" and u.split_name is None for u in rdm)


def test_headline_plan_cells():
    plan = plan_work(ALEXNET, list_benchmarks())
    by_unit = {work.unit: work.cells for work in plan}
    tau = by_unit[WorkUnit("alexnet", "features.2", "sub-03", "shared", "tau")]
    # one fit serves the four headline regions
    assert [c.region for c in tau] == ["IT", "V1", "V2", "V4"]  # sorted by benchmark key
    assert {c.benchmark_key for c in tau} == {f"LAION_fMRI.{r}-tau-ridgecv" for r in ("V1", "V2", "V4", "IT")}
    assert all(c.metric == "ridgecv" and c.fold == 0 and c.test_restriction is None for c in tau)
    rdm = by_unit[WorkUnit("alexnet", "features.2", "sub-03", "shared", None)]
    assert {c.benchmark_key for c in rdm} == {f"LAION_fMRI.{r}-rdm-pearson" for r in ("V1", "V2", "V4", "IT")}
    # every (benchmark, subject) cell appears once: 16 regression x 5 + 4 rdm x 5 + 4 cka x 5
    assert sum(len(w.cells) for w in plan) == 24 * 5


def test_all_ood_category_benchmarks_share_the_ood_unit():
    ids = [f"LAION_fMRI.IT-ood_{c}-ridgecv" for c in OOD_CATEGORIES] + ["LAION_fMRI.IT-ood-ridgecv"]
    plan = plan_work(ALEXNET, ids)
    assert len(plan) == 5  # one ood fit per subject, whatever the categories
    for work in plan:
        assert work.unit.split_name == "ood" and work.unit.pool == "shared"
        assert len(work.cells) == 10
        assert {c.test_restriction for c in work.cells} == {None, *OOD_CATEGORIES}


def test_cluster_k5_makes_five_fold_units_per_subject():
    spec = load_benchmark("LAION_fMRI_persubject.V1-cluster_k5-ridgecv")
    plan = plan_work(ALEXNET, [spec])
    assert len(plan) == 5 * 5
    for subject in SUBJECTS:
        mine = [w for w in plan if w.unit.subject == subject]
        assert [w.unit.split_name for w in mine] == [f"cluster_k5_{k}" for k in range(5)]
        assert [w.cells[0].fold for w in mine] == [0, 1, 2, 3, 4]
        assert all(w.unit.pool == subject for w in mine)
    # a single fold benchmark reuses fold 3's fit, as its fold 0
    both = plan_work(ALEXNET, [spec, "LAION_fMRI_persubject.V2-cluster_k5_3-ridge"])
    assert len(both) == 25
    fold3 = next(w for w in both if w.unit == WorkUnit("alexnet", "features.2", "sub-01", "sub-01", "cluster_k5_3"))
    assert [(c.benchmark_key, c.fold) for c in fold3.cells] == [
        ("LAION_fMRI_persubject.V1-cluster_k5-ridgecv", 3),
        ("LAION_fMRI_persubject.V2-cluster_k5_3-ridge", 0),
    ]


def test_settings_share_units_but_not_cells():
    specs = [
        load_benchmark("LAION_fMRI.V1-tau-ridgecv"),
        load_benchmark("LAION_fMRI.V1-tau-ridgecv", convention="nsd"),
        load_benchmark("LAION_fMRI.V1-tau-ridge"),
        load_benchmark("LAION_fMRI.V3-tau-ridgecv", subjects=("sub-01",)),
    ]
    plan = plan_work(ALEXNET, specs)
    assert len(plan) == 5
    sub01 = next(w for w in plan if w.unit.subject == "sub-01")
    assert len(sub01.cells) == 4
    assert len({c.benchmark_key for c in sub01.cells}) == 4
    assert all(len(w.cells) == 3 for w in plan if w.unit.subject != "sub-01")
    assert set(specs_by_key(specs)) == {s.key for s in specs}


def test_several_feature_sets_multiply_units():
    feature_sets = [("alexnet", "conv1"), FeatureSet("alexnet", "conv2"), ("resnet50", "layer4")]
    plan = plan_work(feature_sets + [("alexnet", "conv1")], list_benchmarks())
    assert len(plan) == 3 * 30


def test_plan_is_deterministic_and_deduplicated():
    ids = list_benchmarks() + ["LAION_fMRI.V1-cluster_k5-ridgecv", "LAION_fMRI.IT-ood_gabor-ridge"]
    feature_sets = [("resnet50", "layer4.0"), ("alexnet", "conv1"), ("alexnet", "conv1")]
    first = plan_work(feature_sets, ids)
    shuffled_ids, shuffled_fs = ids[:], feature_sets[:]
    random.Random(0).shuffle(shuffled_ids)
    random.Random(1).shuffle(shuffled_fs)
    assert plan_work(shuffled_fs, shuffled_ids + ids[:3]) == first
    keys = [w.unit.key for w in first]
    assert keys == sorted(keys, key=lambda k: WorkUnit.from_key(k).sort_key())
    assert hash(first) == hash(plan_work(feature_sets, ids))


def test_group_by_aggregate_inverts_the_plan():
    ids = list_benchmarks() + ["LAION_fMRI.V2-cluster_k5-ridgecv"]
    plan = plan_work([("alexnet", "conv1"), ("vgg", "fc7")], ids)
    groups = group_by_aggregate(plan)
    assert len(groups) == 2 * 25
    cells_in_plan = sum(len(w.cells) for w in plan)
    assert sum(len(pairs) for pairs in groups.values()) == cells_in_plan
    headline = groups[Aggregate("alexnet", "conv1", "LAION_fMRI_persubject.IT-ood-ridgecv")]
    assert [u.subject for u, _ in headline] == list(SUBJECTS)
    assert all(u.pool == u.subject and u.split_name == "ood" and c.region == "IT" for u, c in headline)
    folds = groups[Aggregate("vgg", "fc7", "LAION_fMRI.V2-cluster_k5-ridgecv")]
    assert len(folds) == 25
    assert [(c.fold, u.subject) for u, c in folds] == [(k, s) for k in range(5) for s in SUBJECTS]
    assert all(u.split_name == f"cluster_k5_{c.fold}" for u, c in folds)
    assert list(groups) == sorted(groups, key=lambda a: (a.model, a.layer, a.benchmark_key))


def test_unit_and_cell_are_hashable_values():
    a = WorkUnit("m", "l", "sub-01", "shared", "tau")
    assert a == WorkUnit("m", "l", "sub-01", "shared", "tau") and len({a, WorkUnit("m", "l", "sub-01", "shared", "tau")}) == 1
    assert a != WorkUnit("m", "l", "sub-01", "sub-01", "tau")
    cell = Cell("LAION_fMRI.V1-tau-ridgecv", "V1", "ridgecv", None, 0)
    assert {cell: 1}[Cell("LAION_fMRI.V1-tau-ridgecv", "V1", "ridgecv", None, 0)] == 1


@pytest.mark.parametrize(
    ("model", "layer", "split", "key"),
    [
        ("alexnet", "conv1", "tau", "alexnet/conv1/sub-01/shared/tau"),
        ("resnet50", "layer4.0.conv1", "ood", "resnet50/layer4.0.conv1/sub-01/shared/ood"),
        ("timm/vit_base", "blocks.11", "cluster_k5_3", "timm%2Fvit_base/blocks.11/sub-01/shared/cluster_k5_3"),
        ("..", ".hidden", None, "%2E./%2Ehidden/sub-01/shared/rdm"),
        ("m odel%", "ß", "tau", "m%20odel%25/%C3%9F/sub-01/shared/tau"),
    ],
)
def test_unit_key_is_a_safe_path_and_round_trips(model, layer, split, key):
    unit = WorkUnit(model, layer, "sub-01", "shared", split)
    assert unit.key == key
    assert WorkUnit.from_key(unit.key) == unit
    parts = unit.key.split("/")
    assert len(parts) == 5
    assert not any(p in ("", ".", "..") or p.startswith(".") for p in parts)


def test_escape_rejects_empty_names_and_inverts():
    with pytest.raises(ValueError):
        escape_key_component("")
    for name in ["a/b", "a.b", "..", "%2F", "x y", "layer[0]"]:
        assert unescape_key_component(escape_key_component(name)) == name
    with pytest.raises(ValueError):
        plan_work([("alexnet", "")], list_benchmarks())
    with pytest.raises(ValueError):
        WorkUnit.from_key("alexnet/conv1/sub-01/shared")


def test_aggregate_key():
    assert Aggregate("a/b", "c", "LAION_fMRI.V1-tau-ridgecv@convention=nsd").key == (
        "a%2Fb/c/LAION_fMRI.V1-tau-ridgecv@convention=nsd"
    )


def test_planning_and_the_registry_import_no_io_stack():
    """Planning is pure: importing it must not pull in zarr, dask, prefect, xarray or fsspec."""
    import subprocess
    import sys

    code = (
        "import sys, laion_lake.scoring.plan, laion_lake.benchmarks; "
        "print(sorted(m for m in ('zarr', 'dask', 'prefect', 'xarray', 'fsspec') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
