"""Helpers of the fault tests: writer processes (killed at chosen moments) and the lake's state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def writer(action: str, url: str, options: dict | None, *args: Any) -> subprocess.Popen:
    """Start ``tests.faults.writers`` in a fresh interpreter (never a fork of this one)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.writers", action, url, json.dumps(options), *map(str, args)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_until(process: subprocess.Popen, seconds: float | None) -> str:
    """Wait for READY, then let the write run ``seconds`` and SIGKILL it (None: to the end).

    Returns ``"killed"`` or ``"finished"`` (a write that ended before the kill).
    """
    line = process.stdout.readline()
    assert line.strip() == "READY", (line, process.stderr.read() if process.poll() is not None else "")
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
        process.stderr.close()
        return "killed"
    out, err = process.communicate()
    assert process.returncode == 0 and "DONE" in out, err[-2000:]
    return "finished"


def lake_state(url: str, options: dict | None) -> dict | None:
    """What the lake holds, by content checksum (None: no lake)."""
    from laion_lake.errors import LakeNotFoundError
    from laion_lake.lake import open_lake

    try:
        lake = open_lake(url, options)
    except LakeNotFoundError:
        return None
    manifest = lake.manifest
    return {
        "subjects": {s: e["checksum"] for s, e in manifest["subjects"].items()},
        "features": {k: e["checksum"] for k, e in manifest["features"].items()},
        "stimuli": manifest.get("stimuli"),
        "splits": manifest.get("splits"),
        "seed": manifest["provenance"].get("seed"),
    }


def assert_reads_right(url: str, options: dict | None) -> None:
    """Every store of the head reads whole and matches its stored checksum (the next read is right)."""
    from laion_lake.errors import LakeNotFoundError
    from laion_lake.lake import open_lake
    from laion_lake.lake.check import verify_store

    try:
        lake = open_lake(url, options)
    except LakeNotFoundError:
        return
    for subject in lake.subjects:
        assert verify_store(lake, "subject", subject) == []
    for key in lake.manifest["features"]:
        assert verify_store(lake, "features", key) == []


def kill_offsets(duration: float, n: int, seed: int) -> list[float]:
    """``n`` kill moments spread over ``duration``: one in each n-th of it, at a seeded random place."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [duration * (k + rng.uniform(0.05, 0.95)) / n for k in range(n)]
