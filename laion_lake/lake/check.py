"""Checks of a lake against itself: stored checksums recomputed, every chunk read (``validate --deep``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from laion_lake.lake.averages import stored_mismatches
from laion_lake.lake.zarr_io import content_checksum


@dataclass(frozen=True)
class Damage:
    """One damaged store: where (group path), which variable (or ""), which chunk (or ""), what."""

    store: str
    variable: str
    chunk: str
    message: str

    def __str__(self) -> str:
        at = "".join(f" [{part}]" for part in (self.variable, self.chunk) if part)
        return f"{self.store}{at}: {self.message}"


def _arrays(group: zarr.Group, prefix: str) -> list[tuple[str, zarr.Array]]:
    found = []
    for name, node in group.members():
        path = f"{prefix}/{name}"
        if isinstance(node, zarr.Group):
            found += _arrays(node, path)
        else:
            found.append((path, node))
    return found


def read_every_chunk(lake: Any, relative: str) -> list[Damage]:
    """Read each chunk of each array under the store ``relative``; name every chunk that fails to read."""
    damage: list[Damage] = []
    group = lake.storage.group(relative)
    if group is None:
        return [Damage(relative, "", "", "listed in the manifest but missing from the snapshot")]
    for path, array in _arrays(group, relative):
        grid = [range(int(np.ceil(s / c))) if s else range(0) for s, c in zip(array.shape, array.chunks)]
        for index in np.ndindex(*[len(r) for r in grid]) if array.ndim else [()]:
            selection = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, array.chunks, array.shape))
            try:
                array[selection]
            except Exception as error:  # any failure to decode a chunk is damage to report
                chunk = "c/" + "/".join(map(str, index))
                damage.append(Damage(relative, path.removeprefix(relative + "/"), chunk, " ".join(str(error).split())[:200]))
    return damage


def verify_store(lake: Any, kind: str, name: str) -> list[Damage]:
    """Read every chunk of one store and recompute its content checksum against its manifest entry.

    ``kind`` is ``"subject"`` or ``"features"``; ``name`` the subject or the manifest key.
    """
    entry = lake.manifest["subjects"][name] if kind == "subject" else lake.manifest["features"][name]
    damage = read_every_chunk(lake, entry["path"])
    if damage:
        return damage
    try:
        ds = lake.subject(name) if kind == "subject" else lake.features(entry["model"], entry["layer"]).to_dataset(name="activations")
        actual = content_checksum(ds.load())
    except Exception as error:
        return [Damage(entry["path"], "", "", f"cannot be read: {' '.join(str(error).split())[:200]}")]
    if actual != entry.get("checksum"):
        return [Damage(entry["path"], "", "", f"content checksum {actual[:12]}... differs from the stored {str(entry.get('checksum'))[:12]}...")]
    if kind == "subject" and lake._subject_store(name).averaged:
        return [Damage(entry["path"], "averaged", "", problem) for problem in _mean_mismatches(lake, name, ds)]
    return []


def _mean_mismatches(lake: Any, subject: str, ds: Any) -> list[str]:
    """The stored repeat means against the (checksummed) betas they were computed from."""
    store = lake._subject_store(subject)
    region = np.asarray(ds["region"].values).astype(str)
    columns = {r: np.flatnonzero(region == r) for r in store.regions}  # contiguous: stored grouped by region
    betas = {r: ds["betas"].values[:, c[0] : c[-1] + 1] for r, c in columns.items() if len(c)}
    return [p.removeprefix(f"{store.where}: ") for p in stored_mismatches(store._store, store.relative, ds["stimulus_id"].values, betas, store.where)]


def check_whole(lake: Any) -> list[str]:
    """What makes a lake not whole: ids of one store unknown to the stimulus table, pools without a subject."""
    problems: list[str] = []
    manifest = lake.manifest
    if "stimuli" not in manifest:
        return ["no stimulus table"] if manifest["subjects"] or manifest["features"] else []
    known = set(lake.stimuli["stimulus_id"].values.tolist())
    for subject in lake.subjects:
        seen = set(lake._subject_store(subject).trials["stimulus_id"].values.tolist())
        unknown = sorted(seen - known)
        if unknown:
            problems.append(f"subject {subject}: {len(unknown)} stimulus id(s) not in the stimulus table (from another build?), e.g. {unknown[0]!r}")
    for model, layer in lake.feature_sets:
        ids = set(lake.features(model, layer)["stimulus_id"].values.tolist())
        unknown = sorted(ids - known)
        if unknown:
            problems.append(f"features {model}/{layer}: {len(unknown)} stimulus id(s) not in the stimulus table (from another build?), e.g. {unknown[0]!r}")
    missing_pools = [p for p in lake.pools if p != "shared" and p not in lake.subjects and lake.subjects]
    if missing_pools:
        problems.append(f"splits name pool(s) of subjects the lake does not hold: {', '.join(missing_pools)}")
    return problems
