"""Brain maps: NIfTI files nibabel reads back with the subject's grid, r where the ground truth put signal."""

from __future__ import annotations

import numpy as np
import pytest

nibabel = pytest.importorskip("nibabel")

from laion_lake import score  # noqa: E402
from laion_lake.cli import main  # noqa: E402
from laion_lake.maps.grid import VOXEL_SIZE_MM, subject_grid  # noqa: E402
from laion_lake.maps.write import write_maps  # noqa: E402
from laion_lake.synthetic import make_lake  # noqa: E402

# two subjects keep the tests lean; the CLI test below writes all five
BENCHMARK = "Zerbe2026_fmri.V1-tau-ridgecv@subjects=sub-01+sub-06"


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory):
    return make_lake(str(tmp_path_factory.mktemp("tiny-maps") / "lake"), scale="tiny", seed=0)


@pytest.fixture(scope="module")
def truth_maps(tiny_lake, tmp_path_factory):
    return write_maps(tiny_lake, "ground_truth", "latent", BENCHMARK, tmp_path_factory.mktemp("maps"), png=False)


def test_one_nifti_per_subject_in_its_grid_with_the_scored_r(tiny_lake, truth_maps):
    voxels = score(tiny_lake, "ground_truth", "latent", BENCHMARK).attrs["voxel_r"]
    assert [m.subject for m in truth_maps] == ["sub-01", "sub-06"]
    for m in truth_maps:
        image = nibabel.load(str(m.nifti))
        assembly = tiny_lake.subject(m.subject)
        x, y, z = (assembly[c].values.astype(int) for c in "xyz")
        assert image.shape == (x.max() + 1, y.max() + 1, z.max() + 1) == m.shape
        np.testing.assert_allclose(image.affine[:3, :3], np.diag([VOXEL_SIZE_MM] * 3))
        np.testing.assert_allclose(image.affine, m.affine)
        data = np.asarray(image.dataobj)
        row = voxels.sel(subject=m.subject)
        n = int(row["n_voxels"])
        at_voxels = data[row["x"].values[:n].astype(int), row["y"].values[:n].astype(int), row["z"].values[:n].astype(int)]
        np.testing.assert_allclose(at_voxels, row.values[:n], rtol=1e-6)
        assert np.isfinite(data).sum() == n  # NaN wherever no voxel was scored
        # the ground truth encodes what V1 voxels carry: high r across the region
        assert np.median(at_voxels) > 0.5


def test_random_features_map_near_zero_and_diff_is_a_minus_b(tiny_lake, truth_maps, tmp_path):
    random_maps = write_maps(tiny_lake, "random_model", "fc", BENCHMARK, tmp_path / "random", png=False)
    diff_maps = write_maps(tiny_lake, "ground_truth", "latent", BENCHMARK, tmp_path / "diff", diff="random_model/fc", png=False)
    for truth, chance, diff in zip(truth_maps, random_maps, diff_maps):
        a, b, d = (np.asarray(nibabel.load(str(m.nifti)).dataobj) for m in (truth, chance, diff))
        assert abs(np.nanmedian(b)) < 0.2
        np.testing.assert_allclose(d, a - b, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert "minus_random_model_fc" in diff.nifti.name


def test_maps_read_the_stored_per_voxel_r_and_recompute_only_without_a_record(tmp_path):
    """#12: with score records, maps read the arrays stored beside them (nothing recomputed, nothing said);
    without one, they recompute in process and say so in one line."""
    from laion_lake.lake import open_lake
    from laion_lake.maps.write import voxel_r
    from laion_lake.scoring.runner import plan_keys, run_unit_by_key

    lake = make_lake(str(tmp_path / "lake"), scale="tiny", seed=0)
    said: list[str] = []
    recomputed = voxel_r(lake, "ground_truth", "latent", BENCHMARK, say=said.append)
    assert len(said) == 1 and "recomputing in this process" in said[0] and "ground_truth/latent" in said[0]
    for key, benchmark_keys in plan_keys([("ground_truth", "latent")], [BENCHMARK]).units:
        run_unit_by_key(lake.url, None, key, benchmark_keys)
    lake = open_lake(lake.url)  # a lake reads the snapshot it was opened on
    said.clear()
    stored = voxel_r(lake, "ground_truth", "latent", BENCHMARK, say=said.append)
    assert said == []
    assert type(stored.data).__module__.startswith("dask")  # the lake's lazy arrays, not a fresh score
    np.testing.assert_array_equal(stored.values, recomputed.values)
    maps = write_maps(lake, "ground_truth", "latent", BENCHMARK, tmp_path / "maps", png=False)
    assert [m.subject for m in maps] == ["sub-01", "sub-06"] and min(m.median for m in maps) > 0.5


def test_a_stored_grid_is_used_and_checked():
    affine = [[-1.8, 0, 0, 90], [0, 1.8, 0, -126], [0, 0, 1.8, -72], [0, 0, 0, 1]]
    grid = subject_grid({"brain_mask_affine": affine, "brain_mask_shape": [100, 120, 90]}, np.array([3]), np.array([4]), np.array([5]))
    assert grid.shape == (100, 120, 90) and grid.source.startswith("stored")
    np.testing.assert_allclose(grid.affine, affine)
    with pytest.raises(ValueError, match="outside the grid"):
        subject_grid({"affine": affine, "shape": [2, 2, 2]}, np.array([3]), np.array([0]), np.array([0]), where="sub-01")


def test_cli_writes_pngs_and_rejects_non_regression_benchmarks(tiny_lake, tmp_path, capsys):
    pytest.importorskip("nilearn")
    out = tmp_path / "cli"
    assert main(["maps", tiny_lake.url, "--model", "late_model", "--layer", "fc6", "--benchmark", "LAION_fMRI.IT-tau-ridgecv", "--out", str(out)]) == 0
    assert len(list(out.glob("*.nii.gz"))) == 5
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 5 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "median r" in capsys.readouterr().out
    assert main(["maps", tiny_lake.url, "--model", "late_model", "--layer", "fc6", "--benchmark", "LAION_fMRI.IT-cka", "--out", str(out)]) == 2
    assert "only regression benchmarks" in capsys.readouterr().err


def test_score_carries_per_voxel_r_with_the_voxel_coordinates(tiny_lake):
    import json

    from laion_lake.scoring.records import score_to_record

    result = score(tiny_lake, "ground_truth", "latent", BENCHMARK)
    voxels = result.attrs["voxel_r"]
    assert voxels.dims == ("subject", "neuroid") and list(voxels["subject"].values) == ["sub-01", "sub-06"]
    assert {"neuroid_id", "x", "y", "z", "roi", "region", "nc_4rep", "nc_12rep", "nc_allrep"} <= set(voxels.coords)
    for detail in result.attrs["detail"]:
        row = voxels.sel(subject=detail["subject"])
        n = int(row["n_voxels"])
        assert n == detail["n_voxels"]
        assert np.median(row.values[:n]) == pytest.approx(detail["raw"], rel=1e-12)  # raw = median voxel r
        assert np.isnan(row.values[n:]).all()
        responses = tiny_lake.responses(detail["subject"], "V1")
        assert list(row["neuroid_id"].values[:n]) == list(responses["neuroid_id"].values)
        assert (row["nc_12rep"].values[:n] > 30).all() and set(row["region"].values[:n]) == {"V1"}
    json.dumps(score_to_record(result))  # the record stays JSON: per-voxel r is in memory only
