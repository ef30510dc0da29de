"""Ingest a miniature release written with nibabel; check the lake against the source files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import zarr

from laion_lake.ingest import IngestError, ingest_release, verify_release
from laion_lake.ingest.cli import add_commands
from laion_lake.lake import open_lake
from laion_lake.lake.subjects import streaming_progress
from laion_lake.lake.zarr_io import is_complete
from laion_lake.published_splits import published_splits_dir
from tests.ingest import release_factory as factory

DESIGNS = {"Noiseceiling12rep": "nc_12rep", "Noiseceiling4rep": "nc_4rep", "NoiseceilingAllrep": "nc_allrep"}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("release") / "src"
    return root, factory.write_release(root)


@pytest.fixture(scope="module")
def ingested(release, tmp_path_factory):
    """Both subjects ingested into a local lake (S3: see the resume test, compared with this one)."""
    root, _ = release
    url = str(tmp_path_factory.mktemp("ingested") / "lake")
    report = ingest_release(root, url)
    return open_lake(url), report


@pytest.fixture
def copy_of_release(release, tmp_path: Path) -> Path:
    return Path(shutil.copytree(release[0], tmp_path / "src"))


def _stored_voxels(ds) -> dict[str, np.ndarray]:
    return {name: np.asarray(ds[name].values) for name in ("region", "roi", "voxel_index_in_brain_mask", "x", "y", "z", "neuroid_id")}


# -- the lake holds what the files say ------------------------------------------------------------------


def test_trials_and_repeats_match_the_tables(ingested, release):
    lake, report = ingested
    root, _ = release
    assert lake.subjects == list(factory.SUBJECTS)
    for subject in factory.SUBJECTS:
        ds = lake.subject(subject)
        rows = factory.read_trials(root, subject)
        assert ds["stimulus_id"].values.tolist() == [r["label"] for r in rows]
        for name in ("session", "run", "beta_index", "repetition"):
            assert ds[name].values.tolist() == [r[name] for r in rows], name
        assert sorted(set(ds["session"].values.tolist())) == list(factory.SESSIONS)  # held-out sessions 31-34 absent
        assert not set(factory.HELD_OUT_SESSIONS) & set(ds["session"].values.tolist())
        assert report.subjects[subject].sessions_written == ["ses-01", "ses-30", "ses-35"]


def test_voxels_regions_and_noise_ceilings(ingested, release):
    lake, _ = ingested
    root, _ = release
    for subject in factory.SUBJECTS:
        ds = lake.subject(subject)
        stored = _stored_voxels(ds)
        expected = factory.expected_voxels(root, subject)
        assert ds.attrs["regions"] == ["V1", "V2", "V3", "V4", "IT"]
        for region, voxels in expected.items():
            here = stored["region"] == region
            index = stored["voxel_index_in_brain_mask"][here]
            assert index.tolist() == sorted(voxels), region  # the region's voxels, sorted by brain index
            assert np.flatnonzero(here).tolist() == list(range(np.flatnonzero(here)[0], np.flatnonzero(here)[-1] + 1))
            for k, i in enumerate(index):
                x, y, z, roi = voxels[int(i)]
                assert (stored["x"][here][k], stored["y"][here][k], stored["z"][here][k], stored["roi"][here][k]) == (x, y, z, roi)
        assert stored["neuroid_id"].tolist() == [f"{subject}.{i}" for i in stored["voxel_index_in_brain_mask"]]
        # overlapping retinotopic masks: the later of V1v, V1d, V2v, V2d, V3v, V3d, hV4 wins
        masks = factory.roi_masks()
        brain = factory.brain_mask(subject)
        roi_at = {(int(x), int(y), int(z)): r for x, y, z, r in zip(stored["x"], stored["y"], stored["z"], stored["roi"])}
        for earlier, later in (("V1d", "V2d"), ("V3v", "hV4"), ("V3d", "hV4")):
            both = np.argwhere(masks[earlier] & masks[later] & brain)
            assert len(both) > 0, (earlier, later)
            assert {roi_at[tuple(map(int, v))] for v in both} == {later}
        # IT is the ventral mask minus every retinotopic ROI: the overlap went to V3/V4, none is IT
        it_xyz = [tuple(v[:3]) for v in expected["IT"].values()]
        retinotopic = np.any([masks[r] for r in factory.RETINOTOPIC], axis=0)
        assert not any(retinotopic[xyz] for xyz in it_xyz)
        assert (masks["laionventral"] & brain & retinotopic).sum() > 0
        assert len(it_xyz) == int((masks["laionventral"] & brain & ~retinotopic).sum())
        xyz = (stored["x"], stored["y"], stored["z"])
        for desc, name in DESIGNS.items():
            nc_map = np.asarray(nib.load(str(factory.nc_path(root, subject, desc))).dataobj)
            np.testing.assert_array_equal(ds[name].values, nc_map[xyz])
        f = ds["nc_12rep"].values.astype(np.float64) / 100
        np.testing.assert_allclose(ds["ncsnr"].values, np.sqrt(f / (1 - f) / 12), rtol=1e-6)


def test_betas_are_z_scored_per_session(ingested, release):
    lake, _ = ingested
    root, special = release
    for subject in factory.SUBJECTS:
        ds = lake.subject(subject)
        stored = _stored_voxels(ds)
        xyz = np.stack([stored["x"], stored["y"], stored["z"]], axis=1)
        betas = ds["betas"].values
        np.testing.assert_allclose(betas, factory.expected_betas(root, subject, xyz), rtol=1e-5, atol=1e-5)
        assert betas.dtype == np.float32 and np.isfinite(betas).all()
        session = ds["session"].values
        column = {tuple(v): k for k, v in enumerate(xyz.tolist())}
        voxels = special[subject]
        first, second, third = factory.SESSIONS
        assert (betas[session == second, column[voxels.all_nan]] == 0).all()  # NaN -> 0, non-finite sd -> 1
        assert (betas[session == third, column[voxels.constant]] == 0).all()  # a constant voxel: sd 0 -> 1
        # the NaN trials are 0, and the others are z-scored over the finite trials alone (mean 0, sd 1)
        partial = betas[session == first, column[voxels.partial_nan]].astype(np.float64)
        volumes = ds["beta_index"].values[session == first]
        nan_rows = np.isin(volumes, voxels.nan_trials)
        assert nan_rows.sum() == 3 and (partial[nan_rows] == 0).all()
        np.testing.assert_allclose([partial[~nan_rows].mean(), partial[~nan_rows].std()], [0, 1], atol=1e-6)
        for s in factory.SESSIONS:  # every other voxel: mean 0, sd 1 within the session
            block = betas[session == s].astype(np.float64)
            ok = block.std(axis=0) > 0
            if s == first:
                ok[column[voxels.partial_nan]] = False
            np.testing.assert_allclose(block[:, ok].mean(axis=0), 0, atol=1e-5)
            np.testing.assert_allclose(block[:, ok].std(axis=0), 1, atol=1e-5)


def test_stimulus_table_splits_and_responses(ingested, release):
    lake, report = ingested
    root, _ = release
    table = lake.stimuli
    for subject in factory.SUBJECTS:
        counts: dict[str, int] = {}
        for row in factory.read_trials(root, subject):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        stored = dict(zip(table["stimulus_id"].values.tolist(), table["n_repeats"].sel(subject=subject).values.tolist()))
        assert {k: v for k, v in stored.items() if v} == counts
        for lost in factory.LOST[subject]:
            assert counts[lost] == (5 if "12rep" in lost else 2)
    assert table.sizes["stimulus_id"] == report.n_stimuli == len(factory.SHARED_12 + factory.SHARED_4) + 5 * len(factory.unique_ids("sub-01"))
    for stimulus_id in factory.SHARED_4:
        category = next((c for c in factory.TINY.ood_categories if stimulus_id.startswith(f"shared_4rep_OOD_{c}_")), "")
        assert table["ood_category"].sel(stimulus_id=stimulus_id).item() == category
    # the release has no splits folder: the published splits shipped with the package, limited to its stimuli
    assert not (root / "splits").exists()
    assert lake.pools == ["shared", *factory.SUBJECTS]
    held = set(table["stimulus_id"].values.tolist())
    for pool in ("shared", "sub-03"):
        document = json.loads((published_splits_dir() / pool / "tau.json").read_text())
        train, test = lake.split(pool, "tau")
        assert train.tolist() == sorted(held & set(document["variants"][0]["train_ids"]))
        assert test.tolist() == sorted(held & set(document["variants"][0]["test_ids"]))
        assert len(train) >= 6 and len(test) >= 3
    _, ood_test = lake.split("shared", "ood")
    assert sorted(ood_test.tolist()) == sorted(i for i in factory.SHARED_4 if "_OOD_" in i)
    assert any("left out (a partial release)" in note for note in report.notes)

    # repeat-averaged responses: the mean of the independently z-scored trials of each stimulus
    ds = lake.subject("sub-01")
    stored = _stored_voxels(ds)
    xyz = np.stack([stored["x"], stored["y"], stored["z"]], axis=1)
    expected_trials = factory.expected_betas(root, "sub-01", xyz)
    responses = lake.responses("sub-01", "V1", nc_threshold=30)
    keep = np.flatnonzero((stored["region"] == "V1") & (ds["nc_12rep"].values > 30))
    assert responses["neuroid_id"].values.tolist() == stored["neuroid_id"][keep].tolist()
    labels = ds["stimulus_id"].values
    for k, stimulus_id in enumerate(responses["stimulus_id"].values):
        np.testing.assert_allclose(responses.values[k], expected_trials[labels == stimulus_id][:, keep].mean(axis=0), atol=1e-5)
        assert responses["n_repeats"].values[k] == (labels == stimulus_id).sum()


def test_rerun_skips_complete_subjects_and_verifies_clean(ingested, release):
    lake, _ = ingested
    report = ingest_release(release[0], lake.url, storage_options=lake.storage_options, verify=True)
    assert {r.status for r in report.subjects.values()} == {"already in the lake"}
    assert report.differences == []
    assert all(r.differences == [] for r in report.subjects.values())


def test_brain_scope_keeps_every_brain_voxel(release, tmp_path):
    root, _ = release
    url = str(tmp_path / "lake")
    ingest_release(root, url, subjects=["sub-01"], scope="brain")
    ds = open_lake(url).subject("sub-01")
    stored = _stored_voxels(ds)
    brain = factory.brain_mask("sub-01")
    assert stored["voxel_index_in_brain_mask"].tolist() != []
    assert sorted(stored["voxel_index_in_brain_mask"].tolist()) == list(range(int(brain.sum())))
    assert ds.attrs["regions"] == ["V1", "V2", "V3", "V4", "IT", "other"]
    expected = factory.expected_voxels(root, "sub-01", scope="brain")
    for region, voxels in expected.items():
        assert stored["voxel_index_in_brain_mask"][stored["region"] == region].tolist() == sorted(voxels), region
    assert set(stored["roi"][stored["region"] == "other"]) == {"other"}
    assert verify_release(root, url) == []


# -- errors name the file; nothing half-written looks complete ------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bad_row_count(root: Path) -> Path:
    path = factory.trials_path(root, "sub-01", 1)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    return path


def _bad_roi_shape(root: Path) -> Path:
    path = factory.roi_path(root, "sub-01", "V2d")
    factory.save(path, np.zeros((10, 10, 7), np.uint8))
    return path


def _missing_noise_ceiling(root: Path) -> Path:
    path = factory.nc_path(root, "sub-01", "Noiseceiling4rep")
    path.unlink()
    return path


def _corrupt_mask(root: Path) -> Path:
    path = factory.brain_mask_path(root, "sub-01")
    path.write_bytes(b"not a nifti file at all" * 10)
    return path


def _truncated_statmap(root: Path) -> Path:
    path = factory.statmap_path(root, "sub-01", factory.SESSIONS[1])
    _truncate(path)
    return path


def _missing_statmap(root: Path) -> Path:
    path = factory.statmap_path(root, "sub-01", factory.SESSIONS[2])
    path.unlink()
    return path


@pytest.mark.parametrize(
    "damage",
    [_truncated_statmap, _bad_row_count, _bad_roi_shape, _missing_noise_ceiling, _corrupt_mask, _missing_statmap],
)
def test_bad_source_file_is_named_and_nothing_looks_complete(damage, copy_of_release, tmp_path):
    path = damage(copy_of_release)
    url = str(tmp_path / "lake")
    with pytest.raises(IngestError, match=re.escape(str(path))):
        ingest_release(copy_of_release, url, subjects=["sub-01"])
    lake = open_lake(url)
    assert "sub-01" not in lake.subjects and "stimuli" not in lake.manifest
    assert not is_complete(lake.storage, "subjects/sub-01")


def test_interrupted_ingest_resumes_and_equals_a_clean_one(copy_of_release, release, ingested, lake_location, monkeypatch):
    """Local and moto S3: fail in the second session, fix, re-run; the first is not read again and
    the result equals the clean ingest (which the tests above check against the source)."""
    url, options = lake_location
    broken = factory.statmap_path(copy_of_release, "sub-01", factory.SESSIONS[1])
    _truncate(broken)
    with pytest.raises(IngestError, match=re.escape(str(broken))):
        ingest_release(copy_of_release, url, storage_options=options, subjects=["sub-01"])
    lake = open_lake(url, options)
    assert "sub-01" not in lake.subjects and not is_complete(lake.storage, "subjects/sub-01")
    assert list(streaming_progress(lake.storage, "sub-01")) == ["ses-01"]  # session 1 was written before the failure

    shutil.copyfile(factory.statmap_path(release[0], "sub-01", factory.SESSIONS[1]), broken)  # fix the file
    import laion_lake.ingest.plan as plan_module

    read: list[str] = []
    original = plan_module.iter_statmap_voxels

    def counting(path, voxels):
        read.append(path.name)
        return original(path, voxels)

    monkeypatch.setattr(plan_module, "iter_statmap_voxels", counting)
    report = ingest_release(copy_of_release, url, storage_options=options, subjects=["sub-01"])
    assert report.subjects["sub-01"].sessions_skipped == ["ses-01"]
    assert report.subjects["sub-01"].sessions_written == ["ses-30", "ses-35"]
    assert read == [factory.statmap_path(copy_of_release, "sub-01", s).name for s in factory.SESSIONS[1:]]  # ses-01 not read again

    resumed, clean = open_lake(url, options), ingested[0]
    assert resumed.subjects == ["sub-01"] and resumed.stimuli.sizes["stimulus_id"] == len(factory.SHARED_12 + factory.SHARED_4) + len(factory.unique_ids("sub-01"))
    assert resumed.manifest["subjects"]["sub-01"]["checksum"] == clean.manifest["subjects"]["sub-01"]["checksum"]
    a, b = resumed.subject("sub-01"), clean.subject("sub-01")
    np.testing.assert_array_equal(a["betas"].values, b["betas"].values)
    for name in a.coords:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_verify_reports_a_tampered_value_and_overwrite_repairs_it(release, tmp_path, capsys):
    root, _ = release
    url = str(tmp_path / "lake")
    ingest_release(root, url, subjects=["sub-01"])
    assert verify_release(root, url) == []
    lake = open_lake(url)
    ds = lake.subject("sub-01")
    v2 = np.flatnonzero(ds["region"].values == "V2")

    def tamper(session):  # a commit that changes one stored value behind the ingest's back
        array = zarr.open_array(session.store, path="subjects/sub-01/regions/V2/betas", mode="r+")
        array[5, 3] = array[5, 3] + np.float32(0.5)

    lake.storage.write("tamper with one beta", tamper)
    differences = verify_release(root, url)
    assert len(differences) == 1
    assert "betas ses-01" in differences[0] and ds["neuroid_id"].values[v2[3]] in differences[0]
    assert ds["stimulus_id"].values[5] in differences[0]

    import argparse

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ingest", str(root), url, "--subjects", "sub-01", "--verify", "--quiet"])
    assert args.run(args) == 1
    assert "1 difference(s)" in capsys.readouterr().out
    args = parser.parse_args(["ingest", str(root), url, "--subjects", "sub-01", "--verify", "--overwrite", "--quiet"])
    assert args.run(args) == 0
    assert "identical to the source" in capsys.readouterr().out
    assert verify_release(root, url) == []


def test_cli_help_lists_the_options():
    import argparse

    parser = argparse.ArgumentParser(prog="laion-lake")
    commands = parser.add_subparsers(dest="command")
    add_commands(commands)
    text = commands.choices["ingest"].format_help()
    for option in ("SRC", "LAKE_URL", "--subjects", "--scope", "--verify", "--overwrite", "--splits", "--storage-options", "--source-storage-options"):
        assert option in text
    assert "docs/release-format.md" in text and "SPEC" not in text
    assert (Path(__file__).resolve().parents[2] / "docs" / "release-format.md").is_file()
    assert "FILE" in commands.choices["import-brainscore"].format_help()


# -- the trials tables as published, and the integer variant ---------------------------------------------


def test_integer_session_labels_ingest_to_the_same_lake(ingested, tmp_path):
    root = tmp_path / "integer"
    factory.write_release(root, session_labels="integer")  # same seed: the same data, sessions written as 1, 30, 35
    assert factory.trials_path(root, "sub-01", 30).read_text().splitlines()[1].startswith("30\t")
    url = str(tmp_path / "lake")
    ingest_release(root, url, subjects=["sub-01"])
    a, b = open_lake(url).subject("sub-01"), ingested[0].subject("sub-01")
    np.testing.assert_array_equal(a["betas"].values, b["betas"].values)
    for name in a.coords:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_a_row_of_another_session_is_named(copy_of_release, tmp_path):
    path = factory.trials_path(copy_of_release, "sub-01", 30)
    lines = path.read_text().splitlines()
    assert lines[1].startswith("ses-30\t")
    lines[4] = lines[4].replace("ses-30", "ses-31", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=re.escape(f"{path}: row 4 (line 5): session 'ses-31' is another session, but the file is in ses-30")):
        ingest_release(copy_of_release, str(tmp_path / "lake"), subjects=["sub-01"])
    lines[4] = lines[4].replace("ses-31", "session 30", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=re.escape(f"{path}: row 4 (line 5): session 'session 30' is not a session label")):
        ingest_release(copy_of_release, str(tmp_path / "lake"), subjects=["sub-01"])


def test_verify_does_not_run_the_code_it_checks(release, tmp_path, monkeypatch):
    """Ingest with the old convention (NaN -> 0 before the mean) and the first-ROI-wins rule put back
    into the ingest code: verify, which recomputes from the NIfTI itself, reports both."""
    import laion_lake.ingest.plan as plan_module
    import laion_lake.ingest.voxels as voxels_module

    root, special = release

    def zero_first(raw, out=None):
        block = np.nan_to_num(np.asarray(raw, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        sd = block.std(axis=0)
        return ((block - block.mean(axis=0)) / np.where(sd == 0, 1.0, sd)).astype(np.float32)

    url = str(tmp_path / "lake")
    with monkeypatch.context() as patch:
        patch.setattr(plan_module, "zscore_session", zero_first)
        ingest_release(root, url, subjects=["sub-01"])
    differences = verify_release(root, url)
    assert len(differences) == 1 and differences[0].startswith("sub-01 betas ses-01: ")
    x, y, z = special["sub-01"].partial_nan
    index = np.flatnonzero(factory.brain_mask("sub-01").ravel()).tolist().index(np.ravel_multi_index((x, y, z), factory.SHAPE))
    assert f"sub-01.{index}" in differences[0]

    first_wins = str(tmp_path / "first")
    original = voxels_module.select_voxels

    def first_roi_wins(brain_mask, roi_masks, scope="rois"):
        later_first = dict(roi_masks)  # give each overlap to the earlier ROI by removing it from the later ones
        claimed = np.zeros(brain_mask.shape, dtype=bool)
        for roi in factory.RETINOTOPIC:
            later_first[roi] = roi_masks[roi] & ~claimed
            claimed |= roi_masks[roi]
        return original(brain_mask, later_first, scope)

    with monkeypatch.context() as patch:
        patch.setattr(plan_module, "select_voxels", first_roi_wins)
        ingest_release(root, first_wins, subjects=["sub-01"])
    differences = verify_release(root, first_wins)
    assert any(d.startswith("sub-01 region V1: ") for d in differences) and any(d.startswith("sub-01 roi: ") for d in differences)


def test_each_subject_keeps_its_brain_mask_grid_for_maps(release, ingested):
    """The subject's attrs hold the brain mask's affine and shape, so per-voxel maps land in its T1w grid."""
    from laion_lake.maps.grid import subject_grid

    root, _ = release
    lake, _ = ingested
    for subject in lake.subjects:
        image = nib.load(factory.brain_mask_path(root, subject))
        assembly = lake.subject(subject)
        np.testing.assert_array_equal(np.asarray(assembly.attrs["brain_mask_affine"]), image.affine)
        assert list(assembly.attrs["brain_mask_shape"]) == list(image.shape)
        grid = subject_grid(assembly.attrs, assembly["x"].values, assembly["y"].values, assembly["z"].values)
        assert grid.shape == tuple(image.shape) and grid.source == "stored in the subject's attrs"
