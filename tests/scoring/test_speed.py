"""Concurrency, read-once and numerical safety of scoring, on the tiny synthetic lake."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from laion_lake import load_benchmark, score, score_many
from laion_lake.compute.solvers import ConstantInputError, FeatureRangeError
from laion_lake.scoring.cache import process_cache
from laion_lake.synthetic import make_lake

SWEEP = [
    "LAION_fMRI_persubject.V1-tau-ridgecv",
    "LAION_fMRI_persubject.IT-ood-ridgecv",
    "LAION_fMRI.IT-tau-ridgecv",
    "LAION_fMRI.V4-tau-ridge",
    "LAION_fMRI.IT-rdm-pearson",
]


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory):
    lake = make_lake(str(tmp_path_factory.mktemp("tiny") / "lake"), scale="tiny", seed=0)
    features = lake.features("late_model", "fc6")
    values = features.values.astype(np.float64)
    extra = {
        "constant": np.ones_like(values),
        "huge": values * 1e200,
    }
    for layer, data in extra.items():
        lake.write_features("scaled", layer, xr.DataArray(data, dims=features.dims, coords={"stimulus_id": features["stimulus_id"].values}))
    from laion_lake.lake import open_lake

    return open_lake(lake.url)


def _records(scores):
    return {key: (float(s), s.attrs["detail"]) for key, s in scores.items()}


def test_scores_and_voxel_r_are_bit_identical_for_1_2_and_3_workers(tiny_lake):
    """Units run concurrently in process; BLAS pinned per unit: nothing depends on the worker count."""
    feature_sets = [("late_model", "fc6"), ("early_model", "conv2")]
    runs = {}
    for workers in (1, 2, 3):
        process_cache().clear()
        runs[workers] = score_many(tiny_lake, feature_sets, SWEEP, workers=workers)
    assert _records(runs[1]) == _records(runs[2]) == _records(runs[3])
    # the per-voxel r of each cell too (compared through the unit results)
    from laion_lake.scoring.plan import plan_work, specs_by_key
    from laion_lake.scoring.units import run_unit

    plan = plan_work(feature_sets, SWEEP)
    work = next(w for w in plan if w.unit.split_name == "tau" and w.unit.pool != "shared")
    first = run_unit(tiny_lake, work, specs_by_key(SWEEP))
    again = run_unit(tiny_lake, work, specs_by_key(SWEEP))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.voxel_r, b.voxel_r)
        assert a.raw == pytest.approx(float(np.median(a.voxel_r[np.isfinite(a.voxel_r)])), abs=0)
        assert len(a.neuroid) == a.n_voxels and "voxel_r" not in a.to_dict() and "neuroid" not in a.to_dict()


def test_a_model_sweep_reads_each_subject_region_once(tiny_lake, monkeypatch):
    """Five benchmarks over 5 subjects make 18 units; each (subject, region, filter) is read once."""
    import laion_lake.scoring.reads as reads_module

    reads = []
    real = reads_module.read_region_average

    def counting(lake, subject, region, *args, **kwargs):
        reads.append((subject, region))
        return real(lake, subject, region, *args, **kwargs)

    monkeypatch.setattr(reads_module, "read_region_average", counting)
    process_cache().clear()
    score_many(tiny_lake, [("late_model", "fc6")], SWEEP, workers=2)
    assert sorted(reads) == sorted(set(reads))  # no block read twice
    assert {region for _, region in reads} == {"V1", "IT", "V4"}
    assert len(reads) == 5 * 3
    # a second sweep (another model) on the same subjects reads nothing again
    reads.clear()
    score_many(tiny_lake, [("early_model", "conv2")], SWEEP, workers=2)
    assert reads == []


def test_cache_does_not_serve_a_replaced_subject(tiny_lake):
    from laion_lake.scoring.cache import block_key

    before = block_key(tiny_lake, "sub-01", "V1", 30.0, "nc_12rep")
    changed = type("L", (), {"url": tiny_lake.url, "manifest": {"subjects": {"sub-01": {"checksum": "other"}}}})()
    assert block_key(changed, "sub-01", "V1", 30.0, "nc_12rep") != before


def test_constant_feature_set_is_a_named_error(tiny_lake):
    spec = load_benchmark("LAION_fMRI_persubject.V1-tau-ridgecv", subjects=["sub-01"])
    with pytest.raises(ConstantInputError, match=r"scaled/constant on sub-01: .*constant"):
        score(tiny_lake, "scaled", "constant", spec)
    rdm = load_benchmark("LAION_fMRI.IT-rdm-pearson", subjects=["sub-01"])
    with pytest.raises(ConstantInputError, match=r"scaled/constant features .*constant"):
        score(tiny_lake, "scaled", "constant", rdm)


def test_overflowing_features_are_a_named_error_and_rdm_is_scale_invariant(tiny_lake):
    spec = load_benchmark("LAION_fMRI_persubject.IT-tau-ridgecv", subjects=["sub-03"])
    with pytest.raises(FeatureRangeError, match=r"scaled/huge on sub-03: .*overflow"):
        score(tiny_lake, "scaled", "huge", spec)
    rdm = load_benchmark("LAION_fMRI.IT-rdm-pearson", subjects=["sub-03"])
    assert float(score(tiny_lake, "scaled", "huge", rdm)) == pytest.approx(float(score(tiny_lake, "late_model", "fc6", rdm)), abs=1e-12)


def test_a_cell_with_no_voxel_past_the_threshold_is_a_named_error(tiny_lake):
    spec = load_benchmark("LAION_fMRI_persubject.V1-tau-ridgecv", subjects=["sub-05"], nc_threshold=100.0)
    with pytest.raises(ConstantInputError, match=r"late_model/fc6 on sub-05 V1: no voxel passes .*nc_12rep > 100"):
        score(tiny_lake, "late_model", "fc6", spec)


def test_check_memory_states_each_units_bytes_and_refuses_a_small_worker(tiny_lake):
    from laion_lake.scoring.plan import WorkerMemoryError, check_memory, plan_work
    from laion_lake.scoring.runner import plan_keys

    plan = plan_work([("late_model", "fc6")], SWEEP)
    needs = check_memory(plan, 4 * 2**30, tiny_lake)
    assert set(needs) == {work.unit.key for work in plan}
    assert needs == check_memory(plan_keys([("late_model", "fc6")], SWEEP), 4 * 2**30, tiny_lake)
    biggest = max(needs, key=needs.get)
    with pytest.raises(WorkerMemoryError, match=rf"unit {biggest} needs {needs[biggest]} bytes"):
        check_memory(plan, needs[biggest] - 1, tiny_lake)
    with pytest.raises(WorkerMemoryError, match="for 2 units at once"):
        check_memory(plan, needs[biggest], tiny_lake, concurrent_units=2)


def test_direct_zarr_reads_equal_the_lakes_lazy_readers_bit_for_bit(tiny_lake):
    """The unit's reads (Zarr directly, by stored chunks) give exactly lake.responses / lake.features."""
    from laion_lake.errors import UnknownNameError
    from laion_lake.scoring.cache import read_block
    from laion_lake.scoring.reads import feature_array, read_feature_rows, rows_of

    for subject, region, threshold in [("sub-01", "V1", 30.0), ("sub-03", "IT_full", None), ("sub-05", "IT", 10.0)]:
        block = read_block(tiny_lake, subject, region, threshold, "nc_12rep")
        lazy = tiny_lake.responses(subject, region, None, nc_threshold=threshold)
        assert block.values.dtype == np.float32
        np.testing.assert_array_equal(block.values, lazy.values)
        np.testing.assert_array_equal(block.n_repeats, lazy["n_repeats"].values)
        np.testing.assert_array_equal(block.stimulus_id, lazy["stimulus_id"].values)
        np.testing.assert_array_equal(block.neuroid_coords["neuroid_id"], lazy["neuroid_id"].values)
    with pytest.raises(UnknownNameError, match="noise-ceiling coordinate"):
        read_block(tiny_lake, "sub-01", "V1", 30.0, "nc_nope")
    array, ids = feature_array(tiny_lake, "late_model", "fc6")
    wanted = np.random.default_rng(0).permutation(ids)[: len(ids) // 2]  # unsorted, a subset
    np.testing.assert_array_equal(read_feature_rows(array, rows_of(ids, wanted), slice(3, 40)), tiny_lake.features("late_model", "fc6", wanted).values[:, 3:40])
    assert rows_of(ids, np.array(["no-such-stimulus"])) is None


def test_check_memory_states_the_process_figure_for_its_unit_slots(tiny_lake):
    """Base and cache once, one solver per slot: 2 slots need less than twice one, more than one."""
    from laion_lake.compute.solvers import BASE_PROCESS_BYTES
    from laion_lake.scoring.plan import check_memory, plan_work

    plan = plan_work([("late_model", "fc6")], SWEEP)
    one = check_memory(plan, 1 << 40, tiny_lake)
    two = check_memory(plan, 1 << 40, tiny_lake, concurrent_units=2)
    assert one.process_bytes >= max(one.values()) and dict(one) == dict(two)
    assert max(one.values()) < two.process_bytes < 2 * max(one.values()) - BASE_PROCESS_BYTES
    assert two.concurrent_units == 2


def test_units_start_longest_first_by_their_stated_flops(tiny_lake):
    """The schedule's weights come from the shapes: per-subject fits (largest train sets, 4 n p v per
    region) before shared-pool fits, rdm units last; equal weights keep plan order."""
    from laion_lake.compute.solvers import rdm_flops, regression_flops
    from laion_lake.scoring.plan import plan_work
    from laion_lake.scoring.schedule import longest_first, unit_flops

    plan = plan_work([("late_model", "fc6")], SWEEP)
    ordered = longest_first(tiny_lake, plan)
    weights = [unit_flops(tiny_lake, work) for work in ordered]
    assert sorted(ordered, key=lambda w: w.unit.sort_key()) == sorted(plan, key=lambda w: w.unit.sort_key())
    assert weights == sorted(weights, reverse=True)
    assert ordered[-1].unit.kind == "rdm"
    work = next(w for w in plan if w.unit.kind == "regression" and w.unit.pool != "shared" and w.unit.split_name == "tau")
    train, test = tiny_lake.split(work.unit.pool, "tau")
    p = tiny_lake.features("late_model", "fc6").shape[1]
    voxels = [tiny_lake.manifest["subjects"][work.unit.subject]["regions"][r] for r in sorted({c.region for c in work.cells})]
    n, t = len(train), len(test)
    route_primal = p < n
    expected = (6 * n * p * p + sum(6 * n * p * v + 2 * t * p * v + 2 * n * p * p for v in voxels)) if route_primal else (
        2 * (n + t) * n * p + 9 * n**3 + sum(4 * n * n * v + 2 * t * n * v + 2 * n**3 for v in voxels))
    assert unit_flops(tiny_lake, work) == pytest.approx(expected, rel=1e-12) == regression_flops(n, t, p, voxels)
    assert rdm_flops(10, 3, [4, 5]) == 2 * 100 * 12


def test_an_unknown_layer_with_units_concurrent_is_the_lakes_named_error(tiny_lake):
    from laion_lake.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="no_such_layer"):
        score_many(tiny_lake, [("late_model", "no_such_layer")], SWEEP, workers=2)
