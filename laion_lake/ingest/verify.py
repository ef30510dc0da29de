"""Check a subject in the lake against the release it came from, value by value and bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np

from laion_lake.ingest.catalog import observed_repeats
from laion_lake.ingest.plan import SubjectPlan, load_session_betas
from laion_lake.lake import Lake
from laion_lake.lake.subjects import TRIAL_COORDS, SubjectStore

SHOWN = 3


def _same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: equal strings, or numbers with identical bits (NaN == NaN, 0.0 != -0.0)."""
    if a.dtype.kind in "OUS" or b.dtype.kind in "OUS":
        return a.astype(str) == b.astype(str)
    if a.dtype != b.dtype:
        return np.zeros(a.shape, dtype=bool)
    width = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    return np.ascontiguousarray(a).view(width) == np.ascontiguousarray(b).view(width)


def _compare_coordinate(subject: str, name: str, stored: Any, expected: Any, ids: np.ndarray) -> list[str]:
    stored, expected = np.asarray(stored), np.asarray(expected)
    if stored.shape != expected.shape:
        return [f"{subject} {name}: stored shape {stored.shape}, source {expected.shape}"]
    if stored.dtype != expected.dtype and not (stored.dtype.kind in "OUS" and expected.dtype.kind in "OUS"):
        return [f"{subject} {name}: stored dtype {stored.dtype}, source {expected.dtype}"]
    bad = np.flatnonzero(~_same_bits(stored, expected))
    if not len(bad):
        return []
    shown = ", ".join(f"{ids[i]!s}: stored {stored[i]!r}, source {expected[i]!r}" for i in bad[:SHOWN])
    return [f"{subject} {name}: {len(bad)} value(s) differ ({shown}{' ...' if len(bad) > SHOWN else ''})"]


def verify_subject(lake: Lake, plan: SubjectPlan) -> list[str]:
    """Every difference between the lake's copy of ``plan.subject`` and the release (empty if none).

    Re-reads every session's statmap, recomputes the z-scored betas and compares them with the
    stored ones bit for bit; compares every trial and neuroid coordinate, and the stimulus table's
    repeat counts for this subject.
    """
    subject = plan.subject
    ds = SubjectStore(lake.storage, subject).assembly()
    differences: list[str] = []
    trial_ids = np.array([f"trial {i} ({s})" for i, s in enumerate(np.asarray(ds["stimulus_id"].values).astype(str))])
    if ds.sizes["trial"] != plan.n_trials:
        return [f"{subject}: lake holds {ds.sizes['trial']} trials, the release {plan.n_trials}"]
    if ds.sizes["neuroid"] != plan.neuroids.sizes["neuroid"]:
        return [f"{subject}: lake holds {ds.sizes['neuroid']} neuroids, the release (scope {plan.scope!r}) {plan.neuroids.sizes['neuroid']}"]
    for name in TRIAL_COORDS:
        differences += _compare_coordinate(subject, name, ds[name].values, plan.trials[name].values, trial_ids)
    neuroid_ids = np.asarray(plan.neuroids["neuroid_id"].values).astype(str)
    for name in plan.neuroids.variables:
        differences += _compare_coordinate(subject, str(name), ds[name].values, plan.neuroids[name].values, neuroid_ids)
    stored_neuroids = np.asarray(ds["neuroid_id"].values).astype(str)
    for session in plan.sessions:
        expected = load_session_betas(plan, session)
        stored = np.asarray(ds["betas"][session.start : session.stop].values)
        bad = np.argwhere(~_same_bits(stored, expected))
        if len(bad):
            shown = ", ".join(
                f"trial {session.start + r} ({plan.trials['stimulus_id'].values[session.start + r]}) x {stored_neuroids[c]}: "
                f"stored {stored[r, c]!r}, source {expected[r, c]!r}"
                for r, c in bad[:SHOWN]
            )
            differences.append(f"{subject} betas {session.key}: {len(bad)} value(s) differ ({shown}{' ...' if len(bad) > SHOWN else ''})")
    if "stimuli" in lake.manifest and subject in lake.stimuli["subject"].values:
        table = lake.stimuli["n_repeats"].sel(subject=subject)
        counts = observed_repeats(lake, subject)
        source_ids, source_counts = np.unique(plan.trials["stimulus_id"].values, return_counts=True)
        expected = dict(zip(source_ids.tolist(), source_counts.tolist()))
        if counts != expected:
            differences.append(f"{subject}: stored trials' repeat counts differ from the release's")
        stored_counts = dict(zip(table["stimulus_id"].values.tolist(), table.values.tolist()))
        wrong = sorted(i for i in set(stored_counts) | set(expected) if stored_counts.get(i, 0) != expected.get(i, 0))
        if wrong:
            shown = ", ".join(f"{i}: table {stored_counts.get(i, 0)}, source {expected.get(i, 0)}" for i in wrong[:SHOWN])
            differences.append(f"{subject} stimulus table n_repeats: {len(wrong)} stimulus(es) differ ({shown})")
    return differences
