"""Model extraction: throughput (images/s) and peak memory of a wide layer, streamed vs held whole, in one run.

    python benchmarks/bench_extract.py                     # alexnet features.5, then alexnet features.1 (193,600 wide)
    python benchmarks/bench_extract.py --wide-model torchvision:resnet50 --wide-layer conv1   # 802,816 features

Builds a tiny synthetic lake and small JPEGs for its ids (all 897 stimuli the headline benchmarks
read), then, each in its own process so that peak RSS is that run's own:

1. ``features extract`` of ``--model``/``--layer`` (the streamed writer): images per second;
2. the wide layer streamed (``buffer_bytes`` = ``--buffer-mb``) and the same layer the way a user
   would without it: ``laion_lake.features.extract_features`` with a hook wrapper, which holds
   every batch's activations, then ``Lake.write_features`` of the whole array.

It prints each run's peak RSS, the RSS of the same process before extraction (torch and the model
loaded), the layer's size in float32, and the ratios. Needs the ``models`` extra.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def child(args: argparse.Namespace) -> None:
    """One measured run; prints a JSON line."""
    sys.path.insert(0, str(ROOT))
    from laion_lake.lake import open_lake
    from laion_lake.models.extract import extract_model_features
    from laion_lake.models.zoo import load_model

    lake = open_lake(args.lake)
    loaded = load_model(args.model, "none", 0)
    before = current_rss_mb()
    started = time.perf_counter()
    if args.mode == "streamed":
        run = extract_model_features(lake, loaded, [args.layer], args.images, name=args.name, buffer_bytes=args.buffer_mb << 20,
                                     progress=False, overwrite=True)
        n_images, n_features = run.n_images, run.layers[0].n_features
    else:
        import numpy as np
        import torch

        from laion_lake.features import extract_features
        from laion_lake.models.extract import deterministic_torch, needed_ids
        from laion_lake.models.layers import LayerRecorder

        ids, _ = needed_ids(lake, None)
        folder = Path(tempfile.mkdtemp())
        for i in ids:  # extract_features reads a folder: link the needed images only
            (folder / i).symlink_to(Path(args.images) / i)

        def model_fn(images: list) -> dict:
            batch = torch.stack([loaded.transform(image) for image in images])
            return {k: v.numpy() for k, v in recorder.run(batch).items()}

        with deterministic_torch(2), torch.inference_mode(), LayerRecorder(loaded.module, [args.layer]) as recorder:
            activations = extract_features(model_fn, folder, layers=[args.layer], batch_size=32, progress=False)[args.layer]
        lake.write_features(args.name, args.layer, activations, overwrite=True)
        n_images, n_features = activations.sizes["stimulus_id"], activations.sizes["feature"]
        del np
    seconds = time.perf_counter() - started
    print(json.dumps({"mode": args.mode, "seconds": seconds, "images": int(n_images), "features": int(n_features),
                      "rss_before_mb": before, "peak_rss_mb": rss_mb()}))


def measured(lake: str, images: str, model: str, layer: str, mode: str, buffer_mb: int, name: str) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--lake", lake, "--images", images, "--model", model, "--layer", layer,
               "--buffer-mb", str(buffer_mb), "--name", name]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="torchvision:alexnet")
    parser.add_argument("--layer", default="features.5")
    parser.add_argument("--wide-model", default="torchvision:alexnet")
    parser.add_argument("--wide-layer", default="features.1")
    parser.add_argument("--buffer-mb", type=int, default=64)
    parser.add_argument("--workdir", help="where to build the lake and images (default: a temporary folder)")
    parser.add_argument("--child", choices=("streamed", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return

    sys.path.insert(0, str(ROOT))
    from laion_lake.synthetic import make_lake
    from tests.models.images_factory import write_image_folder

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_extract_"))
    lake = make_lake(str(work / "lake"), scale="tiny", seed=0, overwrite=True)
    images = write_image_folder(work / "images", lake.stimuli["stimulus_id"].values.astype(str), size=64)
    print(f"lake {lake.url}: {lake.stimuli.sizes['stimulus_id']} stimuli; 2 cores shared with other work (timings inflated)\n")

    fast = measured(lake.url, str(images), args.model, args.layer, "streamed", args.buffer_mb, "throughput")
    print(f"throughput  {args.model} {args.layer}: {fast['images']} images in {fast['seconds']:.1f} s = "
          f"{fast['images'] / fast['seconds']:.1f} images/s (load, preprocess, forward, write; 2 torch threads)")

    streamed = measured(lake.url, str(images), args.wide_model, args.wide_layer, "streamed", args.buffer_mb, "wide")
    whole = measured(lake.url, str(images), args.wide_model, args.wide_layer, "whole", args.buffer_mb, "wide_whole")
    layer_mb = streamed["images"] * streamed["features"] * 4 / 2**20
    print(f"\nwide layer  {args.wide_model} {args.wide_layer}: {streamed['images']} stimuli x {streamed['features']:,} features "
          f"= {layer_mb:,.0f} MiB float32")
    for run in (streamed, whole):
        extra = run["peak_rss_mb"] - run["rss_before_mb"]
        label = f"streamed (buffer {args.buffer_mb} MiB)" if run["mode"] == "streamed" else "held whole (extract_features + write_features)"
        print(f"  {label:<48} peak RSS {run['peak_rss_mb']:8,.0f} MiB, {extra:8,.0f} MiB above the loaded model "
              f"({extra / layer_mb:.2f}x the layer), {run['images'] / run['seconds']:.1f} images/s")
    print(f"  ratio of extra memory, held whole / streamed: "
          f"{(whole['peak_rss_mb'] - whole['rss_before_mb']) / max(1.0, streamed['peak_rss_mb'] - streamed['rss_before_mb']):.1f}x")


if __name__ == "__main__":
    main()
