"""Writers the fault tests run in their own processes (and kill): ``python -m tests.faults.writers ACTION URL OPTIONS ...``.

Each prints ``READY`` once imported and set up, then does one write, then prints ``DONE``, so the
tests can time kills from the moment the write starts.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import xarray as xr


# columns of the streamed feature writer's layer (rows are flushed two at a time)
STREAM_FEATURES = 4096


def activations(ids: np.ndarray, seed: int, n_features: int = 48) -> xr.DataArray:
    values = np.random.default_rng(seed).standard_normal((len(ids), n_features)).astype(np.float32)
    return xr.DataArray(values, dims=("stimulus_id", "feature"), coords={"stimulus_id": ids})


def streamed_subject(seed: int, n_blocks: int = 6):
    """(trials, neuroids, blocks) of a handmade subject sub-05 written in ``n_blocks`` blocks."""
    from laion_lake.lake.subjects import TRIAL_COORDS, TrialBlock
    from tests.lake import handmade

    ds = handmade.assembly("sub-01", regions={"V1": 40, "V4": 30, "IT": 50}, seed=seed)
    trials = xr.Dataset({n: ds[n].variable for n in TRIAL_COORDS})
    neuroids = xr.Dataset({n: ds[n].variable for n in ds.coords if ds[n].dims == ("neuroid",)})
    betas = ds["betas"].values
    edges = np.linspace(0, ds.sizes["trial"], n_blocks + 1).astype(int)
    blocks = [
        TrialBlock(f"ses-{k + 1:02d}", int(a), int(b), f"{seed}-{k}", (lambda a=a, b=b: betas[a:b].copy()))
        for k, (a, b) in enumerate(zip(edges[:-1], edges[1:]))
    ]
    return trials, neuroids, blocks, ds


def main(argv: list[str]) -> int:
    action, url, options = argv[0], argv[1], json.loads(argv[2]) or None
    rest = argv[3:]
    from laion_lake.lake import open_lake

    if action == "synth":
        from laion_lake.synthetic import make_lake

        print("READY", flush=True)
        make_lake(url, scale="tiny", seed=int(rest[0]), storage_options=options, overwrite="--overwrite" in rest)
    elif action == "features":
        model, layer, seed = rest[0], rest[1], int(rest[2])
        lake = open_lake(url, options)
        data = activations(lake.stimuli["stimulus_id"].values, seed)
        print("READY", flush=True)
        lake.write_features(model, layer, data, overwrite="--overwrite" in rest)
    elif action == "featstream":  # features/stream.py: rows appended block by block, one commit
        from laion_lake.features.stream import FeatureStreamWriter, write_feature_streams

        model, layer, seed = rest[0], rest[1], int(rest[2])
        lake = open_lake(url, options)
        ids = lake.stimuli["stimulus_id"].values
        values = activations(ids, seed, STREAM_FEATURES).values
        stream = FeatureStreamWriter(model, layer, ids, STREAM_FEATURES, {"seed": seed}, buffer_bytes=2 * 4 * STREAM_FEATURES)

        def fill() -> None:
            for start in range(0, len(ids), 2):
                stream.append(values[start : start + 2])

        print("READY", flush=True)
        write_feature_streams(lake, [stream], fill, overwrite="--overwrite" in rest)
    elif action == "stream":
        from laion_lake.lake.subjects import write_subject_streaming

        lake = open_lake(url, options)
        trials, neuroids, blocks, ds = streamed_subject(int(rest[0]))
        print("READY", flush=True)
        write_subject_streaming(lake.storage, "sub-01", trials, neuroids, blocks, attrs={"seed": int(rest[0])}, overwrite="--overwrite" in rest)
    else:
        raise SystemExit(f"unknown action {action!r}")
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    from laion_lake.cli_common import exit_without_finalizing

    # as the CLI ends: Icechunk's Rust threads can abort a finalizing interpreter (exit -6 after DONE)
    exit_without_finalizing(main(sys.argv[1:]))
