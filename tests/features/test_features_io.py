"""Feature files into the lake: every format, id checks, provenance, and batched extraction from images."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import xarray as xr

from laion_lake.features import (
    FeatureFileError,
    IncompleteCoverageError,
    UnknownStimuliError,
    add_features,
    extract_features,
    needed_stimuli,
    read_feature_file,
    source_sha256,
)
from laion_lake.features.cli import add_commands
from laion_lake.lake import create_lake, open_lake
from laion_lake.synthetic import SyntheticDataset

N_ROWS = 40


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Stimulus table and splits of the tiny synthetic dataset; no subjects (not needed here)."""
    data = SyntheticDataset("tiny", seed=0)
    lake = create_lake(str(tmp_path_factory.mktemp("features") / "lake"))
    lake.write_stimuli(data.stimuli)
    lake.write_splits(data.split_documents())
    return open_lake(lake.url)


@pytest.fixture(scope="module")
def ids(lake):
    """Known ids in a deliberately unsorted order: the lake must keep the file's order."""
    known = lake.stimuli["stimulus_id"].values
    return np.random.default_rng(1).permutation(known)[:N_ROWS]


@pytest.fixture(scope="module")
def activations():
    # (n, 2, 3): the readers flatten it to 6 features, C-order
    return np.random.default_rng(2).standard_normal((N_ROWS, 2, 3)).astype(np.float32)


def write_format(fmt: str, folder, ids, values):
    """Write ``values`` keyed by ``ids`` in one format; return (path, ids_path)."""
    flat = values.reshape(len(ids), -1)
    if fmt == "npy+txt":
        np.save(folder / "a.npy", values)
        (folder / "ids.txt").write_text("\n".join(ids) + "\n")
        return folder / "a.npy", folder / "ids.txt"
    if fmt == "npy+json":
        np.save(folder / "a.npy", values)
        (folder / "ids.json").write_text(json.dumps(list(map(str, ids))))
        return folder / "a.npy", folder / "ids.json"
    if fmt == "npz":
        np.savez(folder / "a.npz", activations=values, stimulus_id=ids)
        return folder / "a.npz", None
    if fmt == "npz-features-ids":
        np.savez(folder / "a.npz", features=flat, ids=ids)
        return folder / "a.npz", None
    array = xr.DataArray(values, dims=("stimulus_id", "channel", "position"), coords={"stimulus_id": ids}, name="activations")
    if fmt == "nc-dataarray":
        array.to_netcdf(folder / "a.nc")
        return folder / "a.nc", None
    if fmt == "nc-dataset":
        array.to_dataset().assign(other=("stimulus_id", np.arange(len(ids)))).to_netcdf(folder / "a.nc")
        return folder / "a.nc", None
    if fmt == "zarr":
        # object ids: zarr v3's variable-length strings (fixed-width unicode warns as unstable)
        array.assign_coords(stimulus_id=ids.astype(object)).to_dataset().to_zarr(folder / "a.zarr", zarr_format=3, consolidated=False)
        return folder / "a.zarr", None
    import pandas as pd

    if fmt == "parquet-columns":
        table = pd.DataFrame(flat, columns=[f"f{i}" for i in range(flat.shape[1])])
        table.insert(0, "stimulus_id", ids)
        table.to_parquet(folder / "a.parquet")
        return folder / "a.parquet", None
    if fmt == "parquet-list":
        pd.DataFrame({"stimulus_id": ids, "embedding": list(flat)}).to_parquet(folder / "a.parquet")
        return folder / "a.parquet", None
    raise AssertionError(fmt)


FORMATS = ["npy+txt", "npy+json", "npz", "npz-features-ids", "nc-dataarray", "nc-dataset", "zarr", "parquet-columns", "parquet-list"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_into_the_lake(fmt, lake, ids, activations, tmp_path):
    if fmt.startswith("parquet"):
        pytest.importorskip("pyarrow")
    path, ids_path = write_format(fmt, tmp_path, ids, activations)
    read = read_feature_file(path, ids_path)
    assert read.dims == ("stimulus_id", "feature")
    np.testing.assert_array_equal(read["stimulus_id"].values, ids)
    np.testing.assert_array_equal(read.values, activations.reshape(N_ROWS, -1))

    layer = fmt.replace("+", "_")
    result = add_features(lake, "model", layer, path, ids_path=ids_path)
    back = open_lake(lake.url).features("model", layer)
    np.testing.assert_array_equal(back["stimulus_id"].values, ids)  # the file's order, not sorted
    np.testing.assert_array_equal(back.values, activations.reshape(N_ROWS, -1))
    assert result.entry["n_stimuli"] == N_ROWS and result.entry["n_features"] == 6


def test_provenance_is_recorded_in_manifest_and_store(lake, ids, activations, tmp_path):
    import zarr

    path, ids_path = write_format("npy+txt", tmp_path, ids, activations)
    add_features(lake, "prov", "layer", path, ids_path=ids_path)
    entry = open_lake(lake.url).manifest["features"]["prov/layer"]
    provenance = entry["provenance"]
    assert provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert provenance["ids_sha256"] == hashlib.sha256(ids_path.read_bytes()).hexdigest()
    assert provenance["source"] == str(path.resolve())
    assert provenance["format"] == "npy"
    assert provenance["added"][:4].isdigit() and "T" in provenance["added"]
    store_attrs = zarr.open_group(lake.storage.zarr_store(entry["path"]), mode="r").attrs.asdict()
    assert store_attrs["provenance"] == provenance


def test_folder_checksum_is_stable_and_content_sensitive(tmp_path, ids, activations):
    path, _ = write_format("zarr", tmp_path, ids, activations)
    first = source_sha256(path)
    assert first == source_sha256(str(path) + "/")
    chunk = next(p for p in sorted(path.rglob("*")) if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes() + b"x")
    assert source_sha256(path) != first


def test_unknown_ids_are_named_with_benchmark_shortfall(lake, ids, activations, tmp_path):
    bad = np.array([*ids[:-2], "not_a_stimulus.jpg", ids[-2] + ".png"])
    np.savez(tmp_path / "bad.npz", activations=activations, stimulus_id=bad)
    with pytest.raises(UnknownStimuliError) as caught:
        add_features(lake, "bad", "layer", tmp_path / "bad.npz")
    message = str(caught.value)
    assert "2 of 40 stimulus id(s) are not in the lake's stimulus table" in message
    assert "'not_a_stimulus.jpg'" in message and repr(str(ids[-2]) + ".png") in message
    assert "only in its file extension" in message  # the hint for a doubled extension
    tau_needed = len(needed_stimuli(lake, "LAION_fMRI.V1-tau-ridgecv"))
    assert f"LAION_fMRI.V1-tau-ridgecv {tau_needed - len(np.intersect1d(bad, needed_stimuli(lake, 'LAION_fMRI.V1-tau-ridgecv')))}/{tau_needed} missing" in message
    assert set(caught.value.unknown) == {"not_a_stimulus.jpg", str(ids[-2]) + ".png"}
    assert "bad/layer" not in open_lake(lake.url).manifest["features"]


def test_coverage_counts_missing_ids_per_benchmark(lake, tmp_path):
    benchmark = "LAION_fMRI.IT-tau-ridgecv"
    needed = needed_stimuli(lake, benchmark)
    train, test = lake.split("shared", "tau")
    np.testing.assert_array_equal(needed, np.union1d(train, test))
    have = needed[3:]
    np.savez(tmp_path / "partial.npz", activations=np.ones((len(have), 2)), stimulus_id=have)
    result = add_features(lake, "partial", "layer", tmp_path / "partial.npz", benchmarks=[benchmark, "LAION_fMRI.V1-rdm-pearson"])
    coverage = result.coverage[benchmark]
    assert (coverage.n_needed, coverage.n_missing) == (len(needed), 3)
    assert set(coverage.missing) == set(needed[:3])
    with pytest.raises(IncompleteCoverageError, match="3 of"):
        add_features(lake, "partial", "layer2", tmp_path / "partial.npz", require_benchmarks=[benchmark])


def test_npy_without_ids_and_bad_shapes_are_clear_errors(lake, ids, activations, tmp_path):
    np.save(tmp_path / "a.npy", activations)
    with pytest.raises(FeatureFileError, match="pass ids_path"):
        read_feature_file(tmp_path / "a.npy")
    (tmp_path / "short.txt").write_text("\n".join(ids[:-1]))
    with pytest.raises(FeatureFileError, match="40 rows of activations but 39 stimulus ids"):
        read_feature_file(tmp_path / "a.npy", tmp_path / "short.txt")
    (tmp_path / "dup.txt").write_text("\n".join([*ids[:-1], ids[0]]))
    with pytest.raises(FeatureFileError, match="more than once"):
        read_feature_file(tmp_path / "a.npy", tmp_path / "dup.txt")
    with pytest.raises(FeatureFileError, match="format"):
        read_feature_file(tmp_path / "a.bin")


def test_cli_features_add_and_ls(lake, ids, activations, tmp_path, capsys):
    import argparse

    path, ids_path = write_format("npy+txt", tmp_path, ids, activations)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["features", "add", lake.url, "cli", "layer", str(path), "--ids", str(ids_path)])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "wrote features/cli~layer: 40 stimuli x 6 features" in out
    assert hashlib.sha256(path.read_bytes()).hexdigest() in out
    args = parser.parse_args(["features", "ls", lake.url])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "cli/layer: 40 stimuli x 6 features" in out and str(path.resolve()) in out


# -- extraction from images ------------------------------------------------------------------------

COLOURS = {"b_blue.png": (0, 0, 255), "a_red.png": (255, 0, 0), "c_grey.png": (90, 90, 90), "d_mix.png": (10, 200, 30), "e_dark.png": (5, 6, 7)}


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    Image = pytest.importorskip("PIL.Image")

    folder = tmp_path_factory.mktemp("images")
    for name, colour in COLOURS.items():
        pixels = np.zeros((6, 8, 3), np.uint8) + np.array(colour, np.uint8)
        pixels[0, 0] = 255  # one white pixel: the mean is not just the colour
        Image.fromarray(pixels).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def mean_colour_model(images):
    """A fake model: per image, the mean of each channel, and the 2x2 channel-mean map of the top-left corner."""
    arrays = np.stack([np.asarray(image, dtype=np.float64) for image in images])
    return {"mean_rgb": arrays.mean(axis=(1, 2)), "corner": arrays[:, :2, :2, :].mean(axis=3)}


def expected_mean(colour):
    pixels = np.zeros((6, 8, 3)) + np.array(colour, float)
    pixels[0, 0] = 255
    return pixels.mean(axis=(0, 1))


def test_extract_features_runs_a_model_over_image_batches(image_dir):
    calls = []

    def model(images):
        calls.append(len(images))
        return mean_colour_model(images)

    layers = extract_features(model, image_dir, batch_size=2, progress=False)
    assert calls == [2, 2, 1]
    names = sorted(COLOURS)
    assert set(layers) == {"mean_rgb", "corner"}
    mean = layers["mean_rgb"]
    assert mean.dims == ("stimulus_id", "feature") and mean.dtype == np.float32
    np.testing.assert_array_equal(mean["stimulus_id"].values, names)
    np.testing.assert_allclose(mean.values, [expected_mean(COLOURS[n]) for n in names], rtol=1e-6)
    assert layers["corner"].shape == (5, 4)  # 2x2 flattened per image
    only = extract_features(model, image_dir, layers=["corner"], batch_size=10, progress=False)
    assert list(only) == ["corner"]


def test_extract_features_with_custom_loader_and_into_the_lake(image_dir, lake):
    from PIL import Image  # image_dir skipped the test already when Pillow is missing

    def loader(path):
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    layers = extract_features(lambda images: np.stack(images).mean(axis=(1, 2)), image_dir, image_loader=loader, progress=False)
    assert list(layers) == ["output"]
    with pytest.raises(KeyError, match="no layer"):
        extract_features(mean_colour_model, image_dir, layers=["fc7"], progress=False)
    # the extracted ids are file names; a lake whose table lacks them says which
    with pytest.raises(ValueError, match="not in the lake's stimulus table"):
        lake.write_features("pixels", "mean", layers["output"])
