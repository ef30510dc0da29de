"""The ingest's numerical conventions (SPEC section 1) against closed forms and a plain numpy reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from laion_lake.ingest.transform import zscore_session
from laion_lake.ingest.voxels import select_voxels

# one voxel's session: offset 10 plus these betas, two of them NaN, one +inf
RAW = np.array([1.0, 2.0, np.nan, 4.0, 8.0, np.nan, np.inf])
# finite trials 11, 12, 14, 18: mean 13.75, population variance (2.75^2 + 1.75^2 + 0.25^2 + 4.25^2) / 4 = 7.1875
MEAN, SD = 13.75, np.sqrt(7.1875)  # sd = 2.680951...
EXPECTED = np.array([-2.75 / SD, -1.75 / SD, 0.0, 0.25 / SD, 4.25 / SD, 0.0, 0.0])  # -1.025755, -0.652753, 0, 0.093250, 1.585258, 0, 0


def reference(values: np.ndarray) -> np.ndarray:
    """SPEC section 1 in the stated order, plainly: nanmean/nanstd (ddof 0) over finite trials, sd 0/non-finite -> 1, z, then NaN/inf -> 0."""
    values = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the voxel without a finite trial
        mean = np.nanmean(values, axis=0)
        sd = np.nanstd(values, axis=0, ddof=0)
    sd = np.where((sd == 0) | ~np.isfinite(sd), 1.0, sd)
    z = (values - mean) / sd
    return np.where(np.isfinite(z), z, 0.0)


def test_nan_trials_leave_the_other_trials_alone_closed_form():
    session = (10.0 + RAW)[:, None]
    z = zscore_session(session)[:, 0]
    np.testing.assert_allclose(z, EXPECTED, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(z[[0, 1, 3, 4]], [-1.025755, -0.652753, 0.093250, 1.585258], atol=1e-6)
    # the old convention (NaN/inf -> 0 before the mean and sd) gives other numbers: this test can fail
    zeroed = np.nan_to_num(session[:, 0], nan=0.0, posinf=0.0)
    old = (zeroed - zeroed.mean()) / zeroed.std()
    assert np.abs(old[[0, 1, 3, 4]] - EXPECTED[[0, 1, 3, 4]]).max() > 0.2


def test_session_with_nan_trials_and_a_per_session_offset_matches_numpy():
    rng = np.random.default_rng(7)
    n_trials, n_voxels = 40, 300
    base = rng.standard_normal((n_trials, n_voxels)) * rng.uniform(0.5, 3.0, n_voxels)
    missing = rng.random(base.shape) < 0.05  # a few NaN trials everywhere
    stored_by_offset = []
    for offset in (0.0, 25.0, -7.5):  # the same betas shifted per session
        raw = (base + offset).astype(np.float32)
        raw[missing] = np.nan
        raw[:, 0] = np.nan  # a voxel without a finite trial
        raw[:, 1] = np.float32(3.25)  # a constant voxel
        raw[:, 2] = np.nan
        raw[5, 2] = 1.0  # one finite trial: sd 0 -> 1, z 0
        stored = zscore_session(raw)
        expected = reference(raw.astype(np.float64))
        assert stored.dtype == np.float32 and np.isfinite(stored).all()
        np.testing.assert_allclose(stored, expected, rtol=1e-6, atol=1e-6)
        assert (stored[:, :3] == 0).all() and (stored[missing] == 0).all()
        stored_by_offset.append(stored)
    # the offset does not change the z-scores (up to float32 rounding of the shifted betas)
    np.testing.assert_allclose(stored_by_offset[1], stored_by_offset[0], atol=5e-5)
    np.testing.assert_allclose(stored_by_offset[2], stored_by_offset[0], atol=5e-5)


def _masks(shape: tuple[int, int, int], boxes: dict[str, tuple[slice, ...]]) -> dict[str, np.ndarray]:
    names = ("V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4", "laionventral")
    out = {name: np.zeros(shape, dtype=bool) for name in names}
    for name, box in boxes.items():
        out[name][box] = True
    return out


def test_overlapping_retinotopic_rois_the_later_one_wins():
    shape = (6, 4, 1)
    brain = np.ones(shape, dtype=bool)
    brain[5, 3, 0] = False  # an ROI voxel outside the brain is dropped
    masks = _masks(shape, {
        "V1v": np.s_[0:2, :, :],
        "V1d": np.s_[1:3, :, :],  # overlaps V1v on x = 1: V1d
        "V2d": np.s_[2:3, 0:2, :],  # overlaps V1d on x = 2, y < 2: V2d
        "V3d": np.s_[3:4, :, :],
        "hV4": np.s_[3:5, 2:4, :],  # overlaps V3d on x = 3, y >= 2: hV4
        "laionventral": np.s_[4:6, :, :],  # overlaps hV4 on x = 4: hV4; the rest is IT
    })  # fmt: skip
    selection = select_voxels(brain, masks)
    roi = {tuple(int(a[k]) for a in selection.xyz): str(selection.roi[k]) for k in range(len(selection))}
    assert roi[(1, 0, 0)] == roi[(1, 3, 0)] == "V1d"
    assert roi[(2, 0, 0)] == roi[(2, 1, 0)] == "V2d" and roi[(2, 2, 0)] == "V1d"
    assert roi[(3, 2, 0)] == roi[(3, 3, 0)] == "hV4" and roi[(3, 0, 0)] == "V3d"
    assert roi[(4, 2, 0)] == "hV4" and roi[(4, 0, 0)] == "laionventral"
    assert (5, 3, 0) not in roi
    assert any("outside the brain mask" in note for note in selection.notes)
    assert any("kept in the later" in note for note in selection.notes)
    region = dict(zip(map(str, selection.roi), map(str, selection.region)))
    assert region == {"V1v": "V1", "V1d": "V1", "V2d": "V2", "V3d": "V3", "hV4": "V4", "laionventral": "IT"}
    counts = {r: int((selection.region == r).sum()) for r in ("V1", "V2", "V3", "V4", "IT")}
    # V1: x = 0 (V1v) and x = 1 (V1d), 4 each, + x = 2, y >= 2 (V1d); V4: x = 3..4, y >= 2; IT: x = 4..5 minus hV4 and the outside voxel
    assert counts == {"V1": 10, "V2": 2, "V3": 2, "V4": 4, "IT": 5}


@pytest.mark.parametrize("value, expected", [("ses-01", 1), ("ses-35", 35), ("1", 1), ("01", 1), ("30.0", 30), ("ses-x", None), ("s1", None), ("1.5", None)])
def test_session_labels(value, expected):
    from laion_lake.ingest.layout import parse_session_label

    assert parse_session_label(value) == expected
