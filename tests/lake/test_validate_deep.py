"""`validate --deep` reads every chunk and recomputes every checksum, naming each damaged store,
variable and chunk (finding 7: a removed or truncated chunk passed `validate`)."""

from __future__ import annotations

import re

import pytest

from laion_lake.cli import main
from tests.lake import handmade


@pytest.fixture
def lake(tmp_path):
    lake = handmade.write_handmade_lake(str(tmp_path / "lake"))
    return lake


def _chunk_files(lake):
    from pathlib import Path

    return sorted((Path(lake.url) / "chunks").iterdir(), key=lambda p: p.stat().st_size)


def test_a_whole_lake_passes_deep_validation(lake, capsys):
    assert main(["validate", lake.url, "--deep"]) == 0
    out = capsys.readouterr().out
    assert "5 of 5 stores valid (every chunk read, checksums recomputed)" in out


@pytest.mark.parametrize("damage", ["truncated", "removed"])
def test_damaged_chunk_is_named(lake, capsys, damage):
    victim = _chunk_files(lake)[-1]  # the largest chunk file: a betas chunk
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    else:
        victim.unlink()
    assert main(["validate", lake.url]) in (0, 2)  # plain validate opens stores; it need not read every chunk
    capsys.readouterr()
    assert main(["validate", lake.url, "--deep"]) == 2
    out = capsys.readouterr().out
    damaged = [line for line in out.splitlines() if line.startswith("DAMAGED")]
    assert len(damaged) == 1, out
    print(damaged[0])
    assert re.match(r"DAMAGED subject (sub-0[13]): subjects/\1 \[regions/\w+/betas\] \[c/\d+/\d+\]: \S", damaged[0]), damaged
    assert "4 of 5 stores valid" in out


def test_lake_that_is_not_whole_fails_plain_validate(lake, capsys):
    import numpy as np
    import xarray as xr

    foreign = xr.DataArray(np.ones((2, 3), np.float32), dims=("stimulus_id", "feature"), coords={"stimulus_id": ["shared_12rep_LAION_cluster_900_i0.jpg", "shared_12rep_LAION_cluster_901_i0.jpg"]})
    # a feature set built for another stimulus table (written below the API's check, as a mixed build would be)
    from laion_lake.lake.features import write_features

    write_features(lake.storage, "other_build", "fc", foreign)
    assert main(["validate", lake.url]) == 2
    out = capsys.readouterr().out
    assert "NOT WHOLE features other_build/fc: 2 stimulus id(s) not in the stimulus table (from another build?)" in out
