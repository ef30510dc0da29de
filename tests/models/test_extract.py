"""Models in: a torchvision or timm name to a feature set that scores, deterministic, cached by provenance.

Random weights only (``--weights none`` or a state dict saved here): nothing is downloaded.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

# a mark, not a module-level skip: a run that deselects these tests (-k ...) reports no skip for them
HAVE_TORCH = all(importlib.util.find_spec(name) is not None for name in ("torch", "torchvision"))
pytestmark = pytest.mark.skipif(not HAVE_TORCH, reason="needs the models extra (torch, torchvision): pip install -e '.[models]'")

if HAVE_TORCH:
    import torch

    from laion_lake.cli import main
    from laion_lake.features.images import open_images
    from laion_lake.lake import open_lake
    from laion_lake.models.extract import ProvenanceConflictError, extract_model_features
    from laion_lake.models.zoo import ModelSpecError, load_model, state_dict_sha256
    from tests.models.conftest import SMALL_BENCHMARK
    from tests.models.images_factory import write_image_folder

ALEXNET = "torchvision:alexnet@random-s0"


def reference_alexnet_features5(folder, ids):
    """features.5 of a seed-0 alexnet, preprocessed by hand: Resize(256), CenterCrop(224), ImageNet normalisation."""
    import torchvision
    from PIL import Image
    from torchvision import transforms

    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None).eval()
    transform = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.inference_mode():
        batch = torch.stack([transform(Image.open(folder / i).convert("RGB")) for i in ids])
        return net.features[:6](batch).reshape(len(ids), -1).numpy()


@pytest.mark.slow
def test_alexnet_from_a_folder_matches_a_hand_written_forward_and_scores(tiny_lake, image_folder, capsys):
    code = main(["features", "extract", tiny_lake.url, "--model", "torchvision:alexnet", "--weights", "none", "--layers", "features.5",
                 "--images", str(image_folder), "--benchmark", SMALL_BENCHMARK, "--batch-size", "16", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"written     {ALEXNET}/features.5: 120 stimuli x 32,448 features" in out
    lake = open_lake(tiny_lake.url)
    features = lake.features(ALEXNET, "features.5")
    ids = features["stimulus_id"].values
    assert list(ids) == sorted(ids) and len(ids) == 120
    some = ids[::15]  # 8 of the 120 rows: the reference forward is a second alexnet pass
    np.testing.assert_allclose(features.sel(stimulus_id=some).values, reference_alexnet_features5(image_folder, some), rtol=1e-5, atol=1e-5)

    from laion_lake.scoring import score_many

    score = score_many(lake, [(ALEXNET, "features.5")], [SMALL_BENCHMARK])[(ALEXNET, "features.5", SMALL_BENCHMARK)]
    assert np.isfinite(float(score)) and score.attrs["layer"] == "features.5"


MODEL = "timm:test_resnet"
NAME = "timm:test_resnet@random-s0"


@pytest.fixture(scope="module")
def first_run(tiny_lake, image_folder):
    return extract_model_features(tiny_lake, MODEL, ["layer4", "global_pool"], str(image_folder), benchmarks=[SMALL_BENCHMARK],
                                  batch_size=48, progress=False)


def test_provenance_names_model_weights_versions_preprocessing_layer_and_images(first_run, tiny_lake, image_folder):
    assert [(r.layer, r.status, r.n_stimuli) for r in first_run.layers] == [("layer4", "written", 120), ("global_pool", "written", 120)]
    entry = open_lake(tiny_lake.url).manifest["features"][f"{NAME}/layer4"]
    provenance = entry["provenance"]
    torch.manual_seed(0)
    import timm

    assert provenance["weights"] == {"source": "none", "name": "none", "seed": 0, "sha256": state_dict_sha256(timm.create_model("test_resnet"))}
    assert provenance["model"] == MODEL and provenance["layer"] == "layer4"
    assert provenance["versions"]["torch"] == torch.__version__.split("+")[0] or provenance["versions"]["torch"] == torch.__version__
    assert provenance["versions"]["timm"] == timm.__version__
    prep = provenance["preprocessing"]
    assert (prep["resize"], prep["crop"], prep["image_size"]) == ([256, 256], [224, 224], [224, 224])
    assert prep["mean"] == [0.485, 0.456, 0.406] and prep["interpolation"] == "bilinear"
    with open_images(image_folder) as source:
        assert provenance["stimuli_sha256"] == source.digest(open_lake(tiny_lake.url).features(NAME, "layer4")["stimulus_id"].values)
    assert entry["n_features"] == 4704 and provenance["threads"] == 2 and provenance["device"] == "cpu"
    from laion_lake.features.cli import describe_feature_sets

    assert f"extracted from {MODEL} (weights none, sha256 {provenance['weights_sha256'][:16]}" in describe_feature_sets(open_lake(tiny_lake.url))


def test_same_provenance_is_skipped_even_from_the_h5_and_overwrite_repeats_the_bits(first_run, tiny_lake, release_h5):
    before = open_lake(tiny_lake.url).features(NAME, "layer4").values.copy()
    again = extract_model_features(tiny_lake, MODEL, ["layer4"], str(release_h5), benchmarks=[SMALL_BENCHMARK], progress=False)
    assert [r.status for r in again.layers] == ["skipped"] and again.n_images == 0  # same image bytes, same weights: cached
    redone = extract_model_features(tiny_lake, MODEL, ["layer4"], str(release_h5), benchmarks=[SMALL_BENCHMARK], batch_size=7,
                                    overwrite=True, progress=False)
    assert [r.status for r in redone.layers] == ["overwritten"]
    np.testing.assert_array_equal(open_lake(tiny_lake.url).features(NAME, "layer4").values, before)  # bit-identical, other batch size


def test_other_weights_under_the_same_name_conflict_naming_what_differs(first_run, tiny_lake, image_folder):
    with pytest.raises(ProvenanceConflictError) as caught:
        extract_model_features(tiny_lake, MODEL, ["layer4"], str(image_folder), benchmarks=[SMALL_BENCHMARK], seed=1, name=NAME, progress=False)
    assert "weights_sha256" in str(caught.value) and "--overwrite" in str(caught.value)
    other = extract_model_features(tiny_lake, MODEL, ["global_pool"], str(image_folder), benchmarks=[SMALL_BENCHMARK], seed=1, progress=False)
    assert other.layers[0].model == "timm:test_resnet@random-s1"  # a new feature set, the old one untouched
    assert not np.array_equal(open_lake(tiny_lake.url).features("timm:test_resnet@random-s1", "global_pool").values,
                              open_lake(tiny_lake.url).features(NAME, "global_pool").values)


def test_weights_from_a_state_dict_file_are_identified_by_their_hash(first_run, tiny_lake, image_folder, tmp_path):
    torch.manual_seed(0)
    import timm

    path = tmp_path / "my_run.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), path)
    run = extract_model_features(tiny_lake, MODEL, ["global_pool"], str(image_folder), weights=str(path), benchmarks=[SMALL_BENCHMARK], progress=False)
    name = run.layers[0].model
    assert name.startswith("timm:test_resnet@my_run-")
    weights = run.layers[0].provenance["weights"]
    import hashlib

    assert weights["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # the same tensors as seed 0 (same weights sha256), but a checkpoint is preprocessed as the architecture's
    # pretrained config says (timm's resolved data config), not as random weights are
    assert weights["sha256"] == first_run.layers[0].provenance["weights_sha256"]
    from timm.data import resolve_model_data_config

    config = resolve_model_data_config(timm.create_model("test_resnet"))
    assert run.layers[0].provenance["preprocessing"]["image_size"] == list(config["input_size"][1:])
    assert run.layers[0].provenance["identity_sha256"] != first_run.layers[1].provenance["identity_sha256"]


def test_missing_stimuli_and_bad_names_are_one_line_exit_2(tiny_lake, lake_ids, tmp_path, capsys):
    from laion_lake.features.add import needed_stimuli

    needed = needed_stimuli(tiny_lake, SMALL_BENCHMARK)
    folder = write_image_folder(tmp_path / "images", [i for i in needed if i != needed[3]])
    common = ["features", "extract", tiny_lake.url, "--weights", "none", "--images", str(folder), "--benchmark", SMALL_BENCHMARK, "--no-progress"]
    assert main([*common, "--model", MODEL, "--layers", "layer4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and repr(str(needed[3])) in err and "1 of 120 stimuli" in err
    assert main([*common, "--model", MODEL, "--layers", "layer9"]) == 2
    assert "no layer 'layer9'" in capsys.readouterr().err
    assert main([*common, "--model", "torchvision:alexnt", "--layers", "x"]) == 2
    assert "did you mean alexnet" in capsys.readouterr().err
    with pytest.raises(ModelSpecError, match="LIBRARY:NAME"):
        load_model("alexnet")


def test_list_layers_prints_names_modules_and_widths(capsys):
    assert main(["features", "extract", "unused", "--model", "torchvision:alexnet", "--list-layers"]) == 0
    out = capsys.readouterr().out
    assert "features.5" in out and "MaxPool2d" in out and "32,448" in out and "classifier.6" in out and "1,000" in out


@pytest.mark.slow
def test_sweep_then_commit_layers_give_a_leaderboard_row(tiny_lake, release_h5, capsys):
    """The CLI path a user takes: sweep 3 layers from the release's .h5, commit, read the stored map back."""
    from laion_lake.models.commit import read_layer_commitment

    code = main(["sweep", tiny_lake.url, "--model", "torchvision:alexnet", "--weights", "none", "--layers", "features.[25],classifier.5",
                 "--images", str(release_h5), "--benchmark", SMALL_BENCHMARK, "--in-process", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    for layer in ("features.2", "features.5", "classifier.5"):  # the glob's class picks features.2 and features.5 only
        assert f"{ALEXNET}/{layer}" in out
    assert "3 scores" in out and "features.12" not in out
    code = main(["commit-layers", tiny_lake.url, "--model", ALEXNET, "--layers", "features.2,features.5,classifier.5",
                 "--benchmark", SMALL_BENCHMARK, "--leaderboard-benchmark", SMALL_BENCHMARK])
    assert code == 0
    out = capsys.readouterr().out
    commitment = read_layer_commitment(open_lake(tiny_lake.url), ALEXNET)
    committed = commitment.layers["V1"]
    assert committed == max(commitment.scores["V1"], key=commitment.scores["V1"].get)
    assert f"* {committed}" in out and f"layers: V1={committed}" in out and "LAION_fMRI.V1-tau-ridgecv" in out


def test_a_layer_followed_by_an_in_place_relu_keeps_its_own_output():
    """alexnet's features.0 (a conv) is followed by ReLU(inplace=True): the recorded conv output must keep its negatives."""
    from laion_lake.models.layers import LayerRecorder

    loaded = load_model("torchvision:alexnet", "none", 0)
    batch = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode(), LayerRecorder(loaded.module, ["features.0", "features.1"]) as recorder:
        outputs = recorder.run(batch)
        expected_conv = loaded.module.features[0](batch).reshape(2, -1)
    assert (outputs["features.0"] < 0).any() and not (outputs["features.1"] < 0).any()
    np.testing.assert_array_equal(outputs["features.0"].numpy(), expected_conv.numpy())
    np.testing.assert_array_equal(outputs["features.1"].numpy(), expected_conv.clamp(min=0).numpy())
