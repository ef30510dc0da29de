"""Feature sets written block by block: same content and checksum as a whole write, bounded buffers, all-or-nothing."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from laion_lake.features.stream import FeatureStreamWriter, write_feature_streams
from laion_lake.lake import open_lake
from laion_lake.lake.zarr_io import content_checksum


def blocks_of(values: np.ndarray, size: int):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def test_streamed_store_equals_a_whole_write(tiny_lake, lake_ids):
    import xarray as xr

    ids = np.sort(lake_ids)[:50]
    values = np.random.default_rng(0).standard_normal((50, 300)).astype(np.float32)
    # 3 rows of 300 float32 per buffer: many chunk-aligned writes, the last band partial
    writer = FeatureStreamWriter("stream", "wide", ids, 300, {"source": "test"}, buffer_bytes=3 * 300 * 4)
    assert writer.rows_per_chunk == 3

    def fill():
        for block in blocks_of(values, 7):  # batches that do not align with the chunks
            writer.append(block)

    write_feature_streams(tiny_lake, [writer], fill)
    tiny_lake.write_features("stream", "whole", xr.DataArray(values, dims=("stimulus_id", "feature"), coords={"stimulus_id": ids}))
    lake = open_lake(tiny_lake.url)
    streamed, whole = lake.manifest["features"]["stream/wide"], lake.manifest["features"]["stream/whole"]
    np.testing.assert_array_equal(lake.features("stream", "wide").values, values)
    np.testing.assert_array_equal(lake.features("stream", "wide")["stimulus_id"].values, ids)
    assert streamed["checksum"] == whole["checksum"] == content_checksum(lake.features("stream", "wide").to_dataset())
    assert streamed["provenance"] == {"source": "test"} and streamed["n_features"] == 300
    chunks = zarr.open_array(lake.storage.zarr_store(streamed["path"]), path="activations", mode="r").chunks
    assert chunks == (3, 300)


def test_a_failure_while_filling_leaves_no_store_and_no_entry(tiny_lake, lake_ids):
    ids = np.sort(lake_ids)[:10]
    writers = [FeatureStreamWriter("broken", layer, ids, 4, {}) for layer in ("a", "b")]

    def fill():
        for writer in writers:
            writer.append(np.ones((5, 4), np.float32))
        raise RuntimeError("the model crashed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        write_feature_streams(tiny_lake, writers, fill)
    lake = open_lake(tiny_lake.url)
    assert not any(key.startswith("broken/") for key in lake.manifest["features"])
    assert not lake.storage.exists(writers[0].relative + "/zarr.json") and not lake.storage.exists(writers[1].relative + "/zarr.json")


def test_non_finite_rows_are_refused_naming_the_stimulus(tiny_lake, lake_ids):
    ids = np.sort(lake_ids)[:4]
    writer = FeatureStreamWriter("nan", "layer", ids, 2, {})
    block = np.ones((4, 2), np.float32)
    block[2, 1] = np.nan
    with pytest.raises(ValueError, match=f"non-finite activations for stimuli '{ids[2]}'"):
        write_feature_streams(tiny_lake, [writer], lambda: writer.append(block))
    assert "nan/layer" not in open_lake(tiny_lake.url).manifest["features"]


def test_too_few_rows_fail_instead_of_writing_a_short_store(tiny_lake, lake_ids):
    ids = np.sort(lake_ids)[:6]
    writer = FeatureStreamWriter("short", "layer", ids, 2, {})
    with pytest.raises(ValueError, match="4 of 6 rows written"):
        write_feature_streams(tiny_lake, [writer], lambda: writer.append(np.ones((4, 2), np.float32)))
