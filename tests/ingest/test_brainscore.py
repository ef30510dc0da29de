"""Import a NetCDF assembly shaped as Brain-Score packages LAION-fMRI (written here with xarray/scipy)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from laion_lake.errors import StoreExistsError
from laion_lake.ingest import IngestError, import_brainscore_assembly
from laion_lake.lake import open_lake

SUBJECTS = {"sub-01": "p01", "sub-05": "p03"}
SHARED = [f"shared_12rep_LAION_cluster_{k}_i0.jpg" for k in range(3)] + ["shared_4rep_OOD_gabor_gabor-1-radial.jpg"]
REGIONS = {"V1": 4, "V2": 3, "V4": 2, "IT": 5}


def subject_part(subject: str, rng: np.random.Generator) -> dict:
    ids = SHARED + [f"unique_LAION_initial_cluster_{k}_i0_{SUBJECTS[subject]}.jpg" for k in range(3)]
    trials = [i for i in ids for _ in range(3 if "12rep" in i else 2)]
    trials = list(rng.permutation(trials))
    n = len(trials)
    session = np.repeat([1, 2], [n // 2, n - n // 2])
    beta_index = np.concatenate([np.arange(n // 2), np.arange(n - n // 2)])
    run = np.where(beta_index < 4, 1, 2)
    repetition = np.zeros(n, int)
    for i in set(trials):
        where = [k for k, t in enumerate(trials) if t == i]
        repetition[where] = np.arange(1, len(where) + 1)
    region = np.concatenate([[r] * k for r, k in REGIONS.items()])
    roi = np.array([{"V1": "V1v", "V2": "V2d", "V4": "hV4", "IT": "laionventral"}[r] for r in region])
    voxel = rng.choice(5000, len(region), replace=False)
    return {
        "stimulus_id": np.array(trials), "session": session, "run": run, "beta_index": beta_index, "repetition": repetition,
        "region": region, "roi": roi, "voxel": voxel,
        "nc": {name: rng.uniform(1, 90, len(region)) for name in ("nc_4rep", "nc_12rep", "nc_allrep")},
        "betas": rng.standard_normal((n, len(region))),
    }


def block_diagonal(parts: dict[str, dict], rng: np.random.Generator, time_bin: bool = True) -> xr.DataArray:
    """Presentations of every subject stacked, NaN where a neuroid is another subject's; neuroids shuffled."""
    subjects = list(parts)
    n_trials = [len(parts[s]["stimulus_id"]) for s in subjects]
    n_voxels = [len(parts[s]["region"]) for s in subjects]
    values = np.full((sum(n_trials), sum(n_voxels)), np.nan)
    for k, s in enumerate(subjects):
        values[sum(n_trials[:k]) : sum(n_trials[: k + 1]), sum(n_voxels[:k]) : sum(n_voxels[: k + 1])] = parts[s]["betas"]
    cat = lambda key: np.concatenate([parts[s][key] for s in subjects])  # noqa: E731
    order = rng.permutation(sum(n_voxels))
    data = xr.DataArray(
        values[:, order],
        dims=("presentation", "neuroid"),
        coords={
            **{key: ("presentation", cat(key)) for key in ("stimulus_id", "session", "run", "beta_index", "repetition")},
            "subject_id": ("neuroid", np.concatenate([[s] * n for s, n in zip(subjects, n_voxels)])[order]),
            "region": ("neuroid", cat("region")[order]),
            "roi": ("neuroid", cat("roi")[order]),
            "voxel_index_in_brain_mask": ("neuroid", cat("voxel")[order]),
            **{name: ("neuroid", np.concatenate([parts[s]["nc"][name] for s in subjects])[order]) for name in ("nc_4rep", "nc_12rep", "nc_allrep")},
        },
        name="data",
    )
    return data.expand_dims(time_bin=1, axis=2) if time_bin else data


@pytest.fixture
def parts() -> dict[str, dict]:
    rng = np.random.default_rng(3)
    return {s: subject_part(s, rng) for s in SUBJECTS}


def write(data: xr.DataArray, path: Path) -> Path:
    data.to_netcdf(path, engine="scipy")
    return path


def test_import_splits_subjects_and_keeps_every_value(parts, tmp_path):
    path = write(block_diagonal(parts, np.random.default_rng(0)), tmp_path / "laion_fmri.nc")
    url = str(tmp_path / "lake")
    report = import_brainscore_assembly(path, url)
    lake = open_lake(url)
    assert lake.subjects == sorted(SUBJECTS)
    for subject, part in parts.items():
        ds = lake.subject(subject)
        assert ds.attrs["regions"] == ["V1", "V2", "V4", "IT"]
        region = ds["region"].values
        voxel = ds["voxel_index_in_brain_mask"].values
        for r in REGIONS:  # grouped by region, sorted by voxel index within
            assert voxel[region == r].tolist() == sorted(part["voxel"][part["region"] == r].tolist())
        assert ds["neuroid_id"].values.tolist() == [f"{subject}.{v}" for v in voxel]
        column = {int(v): k for k, v in enumerate(part["voxel"])}
        source_columns = [column[int(v)] for v in voxel]
        for name in ("nc_4rep", "nc_12rep", "nc_allrep"):
            np.testing.assert_array_equal(ds[name].values, part["nc"][name][source_columns].astype(np.float32))
        f = ds["nc_12rep"].values.astype(np.float64) / 100
        np.testing.assert_allclose(ds["ncsnr"].values, np.sqrt(f / (1 - f) / 12), rtol=1e-6)
        assert (ds["x"].values == 0).all() and any("x, y, z unknown" in n for n in report.subjects[subject].notes)
        # trials sorted by (session, run, beta_index); each value found at its source position
        keys = list(zip(ds["session"].values, ds["run"].values, ds["beta_index"].values))
        assert keys == sorted(keys)
        row = {(s, r, b): k for k, (s, r, b) in enumerate(zip(part["session"], part["run"], part["beta_index"]))}
        source_rows = [row[key] for key in keys]
        np.testing.assert_array_equal(ds["stimulus_id"].values, part["stimulus_id"][source_rows])
        np.testing.assert_array_equal(ds["repetition"].values, part["repetition"][source_rows])
        np.testing.assert_array_equal(ds["betas"].values, part["betas"][np.ix_(source_rows, source_columns)].astype(np.float32))
    counts = lake.stimuli["n_repeats"].sel(stimulus_id=SHARED[0]).values.tolist()
    assert counts == [3, 3]
    assert lake.stimuli["owner"].sel(stimulus_id="unique_LAION_initial_cluster_0_i0_p03.jpg").item() == "sub-05"
    with pytest.raises(StoreExistsError):
        import_brainscore_assembly(path, url)


def test_unknown_region_is_an_error_or_other(parts, tmp_path):
    parts["sub-01"]["region"][0] = "MT"
    path = write(block_diagonal(parts, np.random.default_rng(1), time_bin=False), tmp_path / "mt.nc")
    url = str(tmp_path / "lake")
    with pytest.raises(IngestError, match=re.escape(str(path)) + ".*'MT'"):
        import_brainscore_assembly(path, url)
    assert open_lake(url).subjects == []  # nothing written: every subject is checked first
    import_brainscore_assembly(path, url, unknown_region="other")
    ds = open_lake(url).subject("sub-01")
    assert ds.attrs["regions"][-1] == "other" and (ds["region"].values == "other").sum() == 1


def test_single_subject_with_coordinates_and_nans(parts, tmp_path):
    part = parts["sub-01"]
    part["betas"][2, 1] = np.nan
    data = block_diagonal({"sub-01": part}, np.random.default_rng(2), time_bin=False)
    data = data.assign_coords(subject_id=("neuroid", np.array(["01"] * data.sizes["neuroid"])))  # normalised to sub-01
    xyz = np.arange(3 * data.sizes["neuroid"]).reshape(3, -1)
    data = data.assign_coords(x=("neuroid", xyz[0]), y=("neuroid", xyz[1]), z=("neuroid", xyz[2]))
    path = write(data, tmp_path / "one.nc")
    report = import_brainscore_assembly(path, str(tmp_path / "lake"))
    ds = open_lake(str(tmp_path / "lake")).subject("sub-01")
    assert np.isfinite(ds["betas"].values).all() and any("NaN" in n for n in report.subjects["sub-01"].notes)
    stored = dict(zip(ds["voxel_index_in_brain_mask"].values.tolist(), ds["x"].values.tolist()))
    assert stored == dict(zip(data["voxel_index_in_brain_mask"].values.tolist(), xyz[0].tolist()))


def test_bad_files_are_named(parts, tmp_path):
    data = block_diagonal(parts, np.random.default_rng(0), time_bin=False)
    path = write(data.drop_vars("nc_12rep"), tmp_path / "no_nc.nc")
    with pytest.raises(IngestError, match=re.escape(str(path)) + ".*nc_12rep"):
        import_brainscore_assembly(path, str(tmp_path / "lake"))
    hdf5 = tmp_path / "netcdf4.nc"
    hdf5.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(IngestError, match=re.escape(str(hdf5))):
        import_brainscore_assembly(hdf5, str(tmp_path / "lake"))
    text = tmp_path / "notes.nc"
    text.write_text("not netcdf")
    with pytest.raises(IngestError, match="not a NetCDF file"):
        import_brainscore_assembly(text, str(tmp_path / "lake"))


def published_assembly(part: dict, subject: str) -> xr.DataArray:
    """One subject's assembly as Brain-Score's packaging builds it (build_assembly.py, repackage_for_s3.py):
    one ``data`` variable, range index coordinates, BIDS session labels, repetition from 0, int32 voxel index."""
    n, v = part["betas"].shape
    order = np.lexsort((part["beta_index"], part["session"]))
    labels = part["stimulus_id"][order]
    repetition = np.zeros(n, np.int64)
    for i in set(labels.tolist()):
        repetition[labels == i] = np.arange((labels == i).sum())  # groupby("label").cumcount()
    betas = part["betas"][order].astype(np.float32)
    betas[3, 1] = np.nan
    return xr.DataArray(
        betas,
        dims=("presentation", "neuroid"),
        coords={
            "presentation": np.arange(n),
            "stimulus_id": ("presentation", labels.astype(object)),
            "session": ("presentation", np.array([f"ses-{s:02d}" for s in part["session"][order]], dtype=object)),
            "run": ("presentation", part["run"][order]),
            "beta_index": ("presentation", part["beta_index"][order]),
            "repetition": ("presentation", repetition),
            "neuroid": np.arange(v),
            "subject_id": ("neuroid", np.full(v, subject, dtype=object)),
            "region": ("neuroid", part["region"].astype(object)),
            "roi": ("neuroid", part["roi"].astype(object)),
            "voxel_index_in_brain_mask": ("neuroid", part["voxel"].astype(np.int32)),
            **{name: ("neuroid", part["nc"][name].astype(np.float32)) for name in ("nc_4rep", "nc_12rep", "nc_allrep")},
        },
        name="data",
    )


@pytest.mark.parametrize("index", ["range", "brainio"])
def test_netcdf4_assembly_as_brainscore_publishes_it(parts, tmp_path, index):
    data = published_assembly(parts["sub-05"], "sub-05")
    if index == "brainio":  # brainio writes MultiIndex dims reset: level coordinates, no index variable
        data = data.drop_vars(["presentation", "neuroid"])
        data = data.set_index(presentation=["stimulus_id", "session", "run", "beta_index", "repetition"], neuroid=["subject_id", "region", "roi", "voxel_index_in_brain_mask", "nc_4rep", "nc_12rep", "nc_allrep"])
        data = data.reset_index(["presentation", "neuroid"])
    path = tmp_path / "persubject_sub-05_brainscore.nc"
    data.to_netcdf(path, engine="h5netcdf")
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # NetCDF4 = HDF5
    report = import_brainscore_assembly(path, str(tmp_path / "lake"))
    ds = open_lake(str(tmp_path / "lake")).subject("sub-05")
    notes = report.subjects["sub-05"].notes
    assert "repetition renumbered from 1 in trial order (the file's counts from 0)" in notes
    assert any("1 NaN beta(s) set to 0" in n for n in notes)
    keys = list(zip(ds["session"].values.tolist(), ds["run"].values.tolist(), ds["beta_index"].values.tolist()))
    source = list(zip([int(s[4:]) for s in data["session"].values], data["run"].values.tolist(), data["beta_index"].values.tolist()))
    assert keys == sorted(source) and ds["session"].dtype == np.int16
    rows = [source.index(key) for key in keys]
    columns = [data["voxel_index_in_brain_mask"].values.tolist().index(v) for v in ds["voxel_index_in_brain_mask"].values.tolist()]
    np.testing.assert_array_equal(ds["stimulus_id"].values, data["stimulus_id"].values[rows].astype(str))
    np.testing.assert_array_equal(ds["repetition"].values, data["repetition"].values[rows] + 1)
    np.testing.assert_array_equal(ds["betas"].values, np.nan_to_num(data.values[np.ix_(rows, columns)], nan=0.0))
    np.testing.assert_array_equal(ds["nc_12rep"].values, data["nc_12rep"].values[columns])


def test_a_session_label_that_is_no_session_is_named(parts, tmp_path):
    data = published_assembly(parts["sub-01"], "sub-01")
    data = data.assign_coords(session=("presentation", np.where(np.arange(data.sizes["presentation"]) == 4, "session-two", data["session"].values)))
    path = tmp_path / "bad_session.nc"
    data.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(IngestError, match=re.escape(str(path)) + r": sub-01 presentation 4: session 'session-two' is not a session label"):
        import_brainscore_assembly(path, str(tmp_path / "lake"))
