"""One tiny synthetic lake for the models tests, with images for its stimulus ids in both published layouts."""

from __future__ import annotations

import pytest

from tests.models.images_factory import write_image_folder, write_release_stimuli

# the smallest headline benchmark of the tiny lake (120 shared stimuli): keeps extraction tests short
SMALL_BENCHMARK = "LAION_fMRI.V1-tau-ridgecv"


@pytest.fixture(scope="session")
def tiny_lake(tmp_path_factory):
    from laion_lake.synthetic import make_lake

    return make_lake(str(tmp_path_factory.mktemp("models") / "lake"), scale="tiny", seed=0)


@pytest.fixture(scope="session")
def lake_ids(tiny_lake):
    return tiny_lake.stimuli["stimulus_id"].values.astype(str)


@pytest.fixture(scope="session")
def image_folder(tiny_lake, lake_ids, tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("images") / "images", lake_ids)


@pytest.fixture(scope="session")
def release_h5(tiny_lake, lake_ids, tmp_path_factory):
    return write_release_stimuli(tmp_path_factory.mktemp("release") / "stimuli", lake_ids)
