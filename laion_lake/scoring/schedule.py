"""The order in which a process starts its units: longest first, by leading-order flops.

Units of one sweep differ in cost by an order of magnitude (a per-subject fit on ~5,800 train
stimuli against a shared-pool fit on ~900, an rdm unit with no fit). Started in plan order, the
cheap ones can take both slots first and leave the two longest to run last, side by side, on the
critical path; started longest first (the classic LPT rule), the cheap ones fill in behind them.
The order changes only when a unit starts, never what it computes: scores stay bit-identical.
Weights come from each unit's shapes (lazy lake metadata, as the memory check reads) through the
flop formulas beside the solvers (:func:`laion_lake.compute.solvers.regression_flops`,
:func:`~laion_lake.compute.solvers.rdm_flops`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from laion_lake.compute.solvers import rdm_flops, regression_flops
from laion_lake.errors import LakeError
from laion_lake.scoring.plan import UnitWork


def unit_flops(lake: Any, work: UnitWork) -> float:
    """Leading-order flops of one planned unit, from the manifest's shapes and the split sizes.

    Voxels are the manifest's per-region counts before any NC filter (an upper bound, and no
    response array opened: a weight for ordering need not be exact, and a start delay would cost
    more than a slightly worse order).
    """
    from laion_lake.scoring.units import rdm_stimuli

    unit = work.unit
    manifest = lake.manifest
    n_features = int(manifest["features"][f"{unit.model}/{unit.layer}"]["n_features"])
    region_voxels = manifest["subjects"][unit.subject]["regions"]
    voxels = [int(region_voxels[region]) for region in sorted({cell.region for cell in work.cells})]
    if unit.kind in ("rdm", "cka"):
        return rdm_flops(len(rdm_stimuli(lake)), n_features, voxels)
    train, test = lake.split(unit.pool, unit.split_name)
    return regression_flops(len(train), len(test), n_features, voxels)


def longest_first(lake: Any, plan: Sequence[UnitWork]) -> list[UnitWork]:
    """``plan`` ordered by descending :func:`unit_flops`; ties keep plan order (the sort is stable)."""
    weights = []
    for work in plan:
        try:
            weights.append(unit_flops(lake, work))
        except (KeyError, LakeError):
            # a feature set, subject or split the lake lacks: started first, so that the unit's own
            # named error (raised by the lake as it runs) comes before any long unit's work
            weights.append(float("inf"))
    order = sorted(range(len(plan)), key=lambda i: -weights[i])
    return [plan[i] for i in order]


__all__ = ["longest_first", "unit_flops"]
