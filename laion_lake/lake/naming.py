"""What a LAION-fMRI stimulus id says about the image: shared or unique, repeats, source, OOD category.

Names follow the release: ``shared_12rep_LAION_cluster_1003_i0.jpg``,
``shared_4rep_OOD_illusion-classic_classic-illusion-3-ponzo.png``,
``unique_THINGS+_aardvark_p01.jpg`` (``pNN`` is the participant code of the one subject who saw it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from storage_schemas.vocabulary import OOD_CATEGORIES, PARTICIPANT_CODES

SOURCES = ("LAION", "THINGS+", "THINGS", "NSD", "OOD")

_SHARED = re.compile(r"^shared_(?P<repeats>\d+)rep_(?P<source>LAION|THINGS\+|THINGS|NSD|OOD)_(?P<rest>.+)$")
_UNIQUE = re.compile(r"^unique_(?P<source>LAION|THINGS\+|THINGS)_(?P<rest>.+)_(?P<participant>p\d{2})\.[A-Za-z]+$")


@dataclass(frozen=True)
class StimulusName:
    """The facts a stimulus id encodes."""

    stimulus_id: str
    shared: bool
    design_repeats: int
    source: str
    ood_category: str  # "" when not OOD
    participant: str  # "" for shared images


def parse_stimulus_id(stimulus_id: str) -> StimulusName:
    """Parse one stimulus id; a clear error names an id that fits no known pattern."""
    match = _SHARED.match(stimulus_id)
    if match:
        category = ""
        if match["source"] == "OOD":
            # categories may contain hyphens (illusion-classic): match the longest known prefix
            category = next((c for c in sorted(OOD_CATEGORIES, key=len, reverse=True) if match["rest"].startswith(c + "_")), "")
            if not category:
                raise ValueError(f"stimulus {stimulus_id!r}: OOD image with an unknown category (known: {', '.join(OOD_CATEGORIES)})")
        return StimulusName(stimulus_id, True, int(match["repeats"]), match["source"], category, "")
    match = _UNIQUE.match(stimulus_id)
    if match:
        return StimulusName(stimulus_id, False, 4, match["source"], "", match["participant"])
    raise ValueError(
        f"stimulus {stimulus_id!r} fits neither shared_<n>rep_<source>_... nor unique_<source>_..._pNN.<ext>"
    )


def stimulus_table(
    stimulus_ids: Iterable[str],
    subjects: Iterable[str],
    n_repeats: Mapping[str, Mapping[str, int]] | None = None,
    participant_codes: Mapping[str, str] = PARTICIPANT_CODES,
) -> xr.Dataset:
    """The stimulus table (stimuli schema) for ``stimulus_ids``.

    Parameters
    ----------
    stimulus_ids : iterable of str
    subjects : iterable of str
        Subjects of the lake (columns of ``n_repeats``).
    n_repeats : mapping subject -> {stimulus_id: count}, optional
        Presentations counted in the data. Without it, the nominal design is assumed (shared images
        seen ``design_repeats`` times by every subject, unique ones by their owner only).
    participant_codes : mapping
        ``pNN`` -> subject, to find the owner of a unique image.
    """
    ids = np.unique(np.asarray(list(stimulus_ids)).astype(str))
    subjects = list(subjects)
    names = [parse_stimulus_id(i) for i in ids]
    owner = np.array(["" if n.shared else participant_codes.get(n.participant, n.participant) for n in names])
    counts = np.zeros((len(ids), len(subjects)), dtype=np.int16)
    for j, subject in enumerate(subjects):
        if n_repeats is not None:
            per_stimulus = n_repeats.get(subject, {})
            counts[:, j] = [per_stimulus.get(i, 0) for i in ids]
        else:
            counts[:, j] = [n.design_repeats if (n.shared or owner[k] == subject) else 0 for k, n in enumerate(names)]
    return xr.Dataset(
        {
            "source": ("stimulus_id", np.array([n.source for n in names])),
            "shared": ("stimulus_id", np.array([n.shared for n in names])),
            "ood_category": ("stimulus_id", np.array([n.ood_category for n in names])),
            "owner": ("stimulus_id", owner),
            "design_repeats": ("stimulus_id", np.array([n.design_repeats for n in names], dtype=np.int16)),
            "n_repeats": (("stimulus_id", "subject"), counts),
        },
        coords={"stimulus_id": ids, "subject": np.array(subjects)},
    )
