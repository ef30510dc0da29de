"""CKA work units (``LAION_fMRI.{region}-cka``, alias ``Zerbe2026_fmri.{region}-cka``; SPEC 3.4).

One unit per (feature set, subject): the model's Gram matrix over the shared non-OOD images is
built once (feature chunk by chunk, so a wide layer costs one product and never sits whole in
memory) and compared with each region's brain Gram matrix. Each subject's cell is ceiled by the
pairwise inter-subject CKA ceiling of its region, which depends only on the data: it is computed
once per (region, voxel filter, subjects), stored in the lake under ``scores/ceilings/`` with the
checksums of the inputs it was computed from, and read back by every other unit and aggregate.

Every subject's cell carries the same ceiling, so the aggregate's mean of ceiled scores is exactly
raw / ceiling and its bootstrap error over subjects is exactly the bootstrap error of raw divided
by the ceiling, as SPEC 3.4 defines them.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from laion_lake.benchmarks import BenchmarkSpec
from laion_lake.compute.cka import PairwiseCeiling, UnbiasedGram, accumulate_gram, cka, pairwise_ceiling
from laion_lake.scoring.plan import UnitWork, escape_key_component
from laion_lake.scoring.units import CellResult, rdm_stimuli

# feature columns per Gram product step: bounds the memory of a very wide layer to n x chunk
GRAM_FEATURE_CHUNK = 8192
CEILINGS = "scores/ceilings/cka"

_cache: dict[tuple[str, str, str], PairwiseCeiling] = {}
_cache_lock = threading.Lock()


class CkaCeilingError(ValueError):
    """The inter-subject CKA ceiling is not a finite number > 0: there is no ceiled score."""


def model_gram(lake: Any, model: str, layer: str, ids: np.ndarray) -> UnbiasedGram:
    """The prepared Gram matrix (n x n) of a feature set over ``ids``, summed over feature chunks."""
    data = lake.features(model, layer, ids).data
    gram = np.zeros((len(ids), len(ids)))
    for start in range(0, data.shape[1], GRAM_FEATURE_CHUNK):
        accumulate_gram(gram, np.asarray(data[:, start : start + GRAM_FEATURE_CHUNK]))
    return UnbiasedGram.from_gram(gram, copy=False)


def brain_gram(lake: Any, subject: str, spec: BenchmarkSpec, ids: np.ndarray) -> tuple[UnbiasedGram, int]:
    """(prepared Gram matrix, voxel count) of a subject's repeat-averaged responses in the spec's region."""
    from laion_lake.scoring.cache import responses_for  # read once per process, shared with the other units

    responses = responses_for(lake, subject, spec.region, np.sort(ids), spec.nc_threshold, spec.nc_coord)
    Y = np.asarray(responses.values, dtype=np.float64)
    return UnbiasedGram.from_features(Y), int(Y.shape[1])


def ceiling_record_path(spec: BenchmarkSpec) -> str:
    return f"{CEILINGS}/{escape_key_component(spec.key)}.json"


def _ceiling_inputs(lake: Any, spec: BenchmarkSpec) -> dict[str, Any]:
    """Checksums of what the ceiling reads: a replaced subject or stimulus table invalidates it."""
    manifest = lake.manifest
    return {
        "subjects": {s: manifest["subjects"][s].get("checksum") for s in spec.subjects if s in manifest.get("subjects", {})},
        "stimuli": manifest.get("stimuli"),
    }


def _ceiling_to_record(spec: BenchmarkSpec, ceiling: PairwiseCeiling, inputs: Mapping[str, Any], n_stimuli: int) -> dict[str, Any]:
    return {
        "kind": "cka_ceiling",
        "benchmark_key": spec.key,
        "region": spec.region,
        "inputs": dict(inputs),
        "n_stimuli": n_stimuli,
        "subjects": list(ceiling.subjects),
        "pairs": [{"subjects": list(pair), "cka": value} for pair, value in ceiling.pairs],
        "value": ceiling.value,
        "error": None if not math.isfinite(ceiling.error) else ceiling.error,
        "subject_means": dict(ceiling.subject_means),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _ceiling_from_record(record: Mapping[str, Any]) -> PairwiseCeiling:
    pairs = tuple((tuple(p["subjects"]), float(p["cka"])) for p in record["pairs"])
    error = float("nan") if record.get("error") is None else float(record["error"])
    return PairwiseCeiling(tuple(record["subjects"]), pairs, float(record["value"]), error, dict(record["subject_means"]))


def compute_cka_ceiling(lake: Any, spec: BenchmarkSpec) -> PairwiseCeiling:
    """The pairwise inter-subject CKA ceiling of the spec's region over its subjects, from the data."""
    ids = rdm_stimuli(lake)
    return pairwise_ceiling([(subject, brain_gram(lake, subject, spec, ids)[0]) for subject in spec.subjects])


def checked(ceiling: PairwiseCeiling, spec: BenchmarkSpec) -> PairwiseCeiling:
    """``ceiling`` when it is finite and > 0, else :class:`CkaCeilingError` naming the region and pairs."""
    if not (math.isfinite(ceiling.value) and ceiling.value > 0):
        pairs = ", ".join(f"{a}/{b} {v:.3g}" for (a, b), v in ceiling.pairs)
        raise CkaCeilingError(
            f"{spec.key}: the inter-subject CKA ceiling of {spec.region} over {', '.join(ceiling.subjects)} is "
            f"{ceiling.value!r} (pairs: {pairs}), not a finite number > 0; no ceiled score can be given"
        )
    return ceiling


def cka_ceiling(lake: Any, spec: BenchmarkSpec) -> PairwiseCeiling:
    """The region's CKA ceiling: from this process's cache, else the lake's record, else computed and stored.

    Raises
    ------
    CkaCeilingError
        The ceiling is not finite or not > 0.
    """
    inputs = _ceiling_inputs(lake, spec)
    cache_key = (str(lake.url), spec.key, json.dumps(inputs, sort_keys=True, default=str))
    with _cache_lock:
        known = _cache.get(cache_key)
    if known is not None:
        return checked(known, spec)
    path = ceiling_record_path(spec)
    record = lake.storage.read_json(path) if lake.storage.exists(path) else None
    if record is not None and record.get("inputs") == json.loads(json.dumps(inputs, default=str)):
        ceiling = _ceiling_from_record(record)
    else:
        ceiling = compute_cka_ceiling(lake, spec)
        # deterministic content written whole: two units racing here write the same document
        lake.storage.write_json(path, _ceiling_to_record(spec, ceiling, inputs, len(rdm_stimuli(lake))))
    with _cache_lock:
        _cache[cache_key] = ceiling
    return checked(ceiling, spec)


def ceiling_attrs(ceiling: PairwiseCeiling) -> dict[str, Any]:
    """What a CKA Score carries about its ceiling (SPEC 3.4): SEM over pairs, pair values, per-subject means."""
    return {
        "ceiling_error": ceiling.error,
        "ceiling_error_over": "subject pairs (SEM)",
        "ceiling_pairs": [{"subjects": list(pair), "cka": value} for pair, value in ceiling.pairs],
        "ceiling_subject_means": dict(ceiling.subject_means),
    }


def cka_score_attrs(lake: Any, spec: BenchmarkSpec) -> dict[str, Any]:
    """The ceiling attrs of a CKA Score (read from the cache or the lake's ceiling record)."""
    return ceiling_attrs(cka_ceiling(lake, spec))


def run_cka_unit(lake: Any, work: UnitWork, specs: Mapping[str, BenchmarkSpec]) -> list[CellResult]:
    """Score every CKA cell of one (feature set, subject) unit: one model Gram, one brain Gram per region."""
    unit = work.unit
    ids = rdm_stimuli(lake)
    K = model_gram(lake, unit.model, unit.layer, ids)
    results = []
    for cell in work.cells:
        spec = specs[cell.benchmark_key]
        ceiling = cka_ceiling(lake, spec)
        L, n_voxels = brain_gram(lake, unit.subject, spec, ids)
        raw = cka(K, L)
        results.append(
            CellResult(unit.key, cell.benchmark_key, unit.subject, cell.fold, cell.region, cell.metric, None,
                       spec.convention, raw, ceiling.value, raw / ceiling.value, None, 0, len(ids), n_voxels)
        )
    return results


__all__ = ["CkaCeilingError", "brain_gram", "ceiling_attrs", "cka_ceiling", "cka_score_attrs", "compute_cka_ceiling",
           "model_gram", "run_cka_unit"]
