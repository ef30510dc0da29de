"""The flow path's fixed cost against the in-process path, both timed in this one run (issues #10, #11).

On a fresh tiny synthetic lake, through the CLI as a user runs it (each a new process):

1. the typo case, ``score LAKE --model typo --layer x``: flow path vs ``--in-process`` (lines, exit, s);
2. one feature set x one benchmark, nothing in the lake yet: flow path vs ``--in-process``;
3. the same again, every unit already in the lake: flow path (seconds, no Prefect, no cluster);
4. the same with ``--force``: every unit recomputed through the flow (Prefect server + cluster).

Prints the ratios. Times on a shared machine are inflated by its load: compare the ratios.

    .venv/bin/python benchmarks/flow_fixed_cost.py [--benchmark ID]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str]) -> tuple[float, int, int, str]:
    started = time.perf_counter()
    result = subprocess.run([str(BIN / "laion-lake"), *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    output = (result.stdout + result.stderr).strip()
    return seconds, result.returncode, len(output.splitlines()), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="LAION_fMRI.V1-tau-ridgecv")
    parser.add_argument("--model", default="early_model/conv2")
    options = parser.parse_args()
    model, layer = options.model.split("/")
    with tempfile.TemporaryDirectory(prefix="laion-lake-fixed-cost-") as root:
        env = {**os.environ, "PREFECT_HOME": f"{root}/prefect", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        lake = f"{root}/lake"
        run(["synth", lake, "--scale", "tiny"], env)
        one = ["score", lake, "--model", model, "--layer", layer, "--benchmark", options.benchmark]
        cases = [
            ("typo, flow path", ["score", lake, "--model", "typo", "--layer", "x"]),
            ("typo, --in-process", ["score", lake, "--model", "typo", "--layer", "x", "--in-process"]),
            ("1 benchmark, --in-process", [*one, "--in-process"]),
            ("1 benchmark, flow path (computes)", one),
            ("1 benchmark, flow path (all done)", one),
            ("1 benchmark, flow path --force", [*one, "--force"]),
        ]
        results = {}
        print(f"{'case':38s} {'seconds':>8s} {'exit':>5s} {'lines':>6s}  last line")
        for name, args in cases:
            seconds, code, lines, output = run(args, env)
            results[name] = seconds
            print(f"{name:38s} {seconds:8.1f} {code:5d} {lines:6d}  {output.splitlines()[-1][:90] if output else ''}")
        started = time.perf_counter()
        version = subprocess.run([str(BIN / "laion-lake"), "--version"], capture_output=True, text=True).stdout.strip()
        print(f"\n`laion-lake --version`: {version} in {time.perf_counter() - started:.2f} s")
        base = results["1 benchmark, --in-process"]
        flow = results["1 benchmark, flow path --force"]
        print(f"tiny-lake score, both in this run: flow path (--force) {flow:.1f} s, in-process {base:.1f} s, "
              f"ratio {flow / base:.2f}x (target <= 3x); fresh PREFECT_HOME {results['1 benchmark, flow path (computes)'] / base:.2f}x")
        print(f"\nflow path / in-process: computes {results['1 benchmark, flow path (computes)'] / base:.2f}x, "
              f"all done {results['1 benchmark, flow path (all done)'] / base:.2f}x, --force {results['1 benchmark, flow path --force'] / base:.2f}x; "
              f"typo {results['typo, flow path'] / results['typo, --in-process']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
