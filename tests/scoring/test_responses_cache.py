"""A unit's rows of a cached region: every row is the cache's own array (read-only), a subset a copy."""

from __future__ import annotations

import numpy as np
import pytest

from laion_lake.lake import create_lake
from laion_lake.scoring.cache import ResponseCache, responses_for
from tests.lake import handmade


def test_every_row_is_a_read_only_view_and_a_subset_a_copy(tmp_path):
    lake = create_lake(str(tmp_path / "lake"))
    lake.write_stimuli(handmade.stimulus_table())
    lake.write_subject("sub-01", handmade.assembly("sub-01", regions={"V1": 40, "IT": 30}))
    cache = ResponseCache(max_bytes=2**30)
    block = cache.get(lake, "sub-01", "V1", None, "nc_12rep")
    every = responses_for(lake, "sub-01", "V1", block.stimulus_id, None, "nc_12rep", cache=cache)
    assert np.shares_memory(every.values, block.values) and not every.values.flags.writeable
    with pytest.raises(ValueError):
        every.values[0, 0] = 1.0  # a unit writing into it would corrupt the cache: refused
    some = responses_for(lake, "sub-01", "V1", block.stimulus_id[1::2], None, "nc_12rep", cache=cache)
    assert not np.shares_memory(some.values, block.values) and some.values.flags.writeable
    assert np.array_equal(some.values, block.values[1::2]) and np.array_equal(some.n_repeats, block.n_repeats[1::2])
    # every row through the lake's own reader: the same values, bit for bit
    expected = lake.responses("sub-01", "V1", block.stimulus_id, nc_threshold=None).values
    assert every.values.shape == expected.shape == (len(block.stimulus_id), 40)
    assert np.array_equal(every.values, expected)
