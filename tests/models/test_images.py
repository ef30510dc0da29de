"""Stimuli as published: a folder named by stimulus id, the release's .h5 with its row-aligned metadata table."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from laion_lake.features.images import ImageSourceError, open_images, select_stimuli
from tests.models.images_factory import image_bytes, write_image_folder, write_release_stimuli

IDS = np.array(["shared_a.jpg", "shared_b.jpg", "sub-01_c.jpg", "sub-01_d.jpg", "sub-03_e.jpg"])


@pytest.mark.parametrize("layout", ["folder", "h5-vlen", "h5-opaque"])
def test_every_layout_serves_each_id_its_own_image(layout, tmp_path):
    if layout == "folder":
        source = open_images(write_image_folder(tmp_path / "images", IDS))
    else:
        source = open_images(write_release_stimuli(tmp_path / "stimuli", IDS, opaque=layout == "h5-opaque"))
    with source:
        np.testing.assert_array_equal(source.ids, np.sort(IDS))
        for stimulus_id in IDS:
            expected = image_bytes(stimulus_id)
            data = source.read_bytes(stimulus_id)
            # opaque rows are zero-padded to one width; the JPEG itself is their prefix
            assert data[: len(expected)] == expected and not data[len(expected):].strip(b"\0")
            image = source.load(stimulus_id)
            assert image.mode == "RGB" and image.size == (24, 24)
        first = np.asarray(source.load(IDS[0]), dtype=float)
        assert np.abs(first - np.asarray(source.load(IDS[1]), dtype=float)).mean() > 5  # different ids, different images


def test_h5_rows_follow_the_metadata_table_not_the_sorted_order(tmp_path):
    h5_path = write_release_stimuli(tmp_path / "stimuli", IDS)
    rows = (tmp_path / "stimuli" / "task-images_metadata.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] != sorted(IDS)  # the fixture shuffles, so alignment is really tested
    with open_images(h5_path) as source:
        digest = source.digest(IDS)
    expected = hashlib.sha256("".join(f"{i} {hashlib.sha256(image_bytes(i)).hexdigest()}\n" for i in IDS).encode()).hexdigest()
    assert digest == expected


def test_needed_ids_the_source_lacks_are_named_and_unneeded_ones_skipped(tmp_path):
    folder = write_image_folder(tmp_path / "images", IDS[:4])
    with open_images(folder) as source:
        ids, skipped = select_stimuli(source, IDS[:3], "LAION_fMRI.V1-tau-ridgecv")
        np.testing.assert_array_equal(ids, np.sort(IDS[:3]))
        assert skipped == 1
        with pytest.raises(ImageSourceError) as caught:
            select_stimuli(source, IDS, "LAION_fMRI.V1-tau-ridgecv")
    message = str(caught.value)
    assert "\n" not in message and "1 of 5 stimuli" in message and "'sub-03_e.jpg'" in message and "V1-tau" in message


def test_folder_files_serve_ids_written_without_suffix(tmp_path):
    folder = write_image_folder(tmp_path / "images", IDS[:2])
    with open_images(folder, wanted=["shared_a", "shared_b"]) as source:
        assert sorted(source.ids) == ["shared_a", "shared_b"]
        assert source.read_bytes("shared_a") == image_bytes("shared_a.jpg")


def test_bad_release_files_get_one_line_naming_the_file(tmp_path):
    h5_path = write_release_stimuli(tmp_path / "stimuli", IDS)
    metadata = tmp_path / "stimuli" / "task-images_metadata.csv"
    metadata.write_text("\n".join(metadata.read_text().splitlines()[:-1]) + "\n")  # one row short
    with pytest.raises(ImageSourceError, match="5 images but .* lists 4 rows"):
        open_images(h5_path)
    metadata.unlink()
    with pytest.raises(ImageSourceError, match="no metadata table"):
        open_images(h5_path)
    with pytest.raises(ImageSourceError, match="--images takes a folder"):
        open_images(tmp_path / "images.zip")
