"""A synthetic LAION-fMRI dataset with known ground truth, and a lake built from it.

>>> from laion_lake.synthetic import SyntheticDataset, make_lake
>>> data = SyntheticDataset("tiny", seed=0)      # in memory: .stimuli, .subject(s), .features(), ...
>>> lake = make_lake("./lake", scale="small")     # the same, written through the lake API

Modules: :mod:`~laion_lake.synthetic.design` (scales, names, trials, voxels),
:mod:`~laion_lake.synthetic.generative` (latents, region transforms, betas, noise ceilings),
:mod:`~laion_lake.synthetic.features` (model feature sets and their expected ranking),
:mod:`~laion_lake.synthetic.splits` (the published splits), :mod:`~laion_lake.synthetic.dataset`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from laion_lake.synthetic.dataset import GroundTruth, SyntheticDataset
from laion_lake.synthetic.design import SCALES, SUBJECTS, Scale
from laion_lake.synthetic.features import EXPECTED_RANKING, MODEL_LAYERS

if TYPE_CHECKING:
    from laion_lake.lake import Lake


def make_lake(
    url: str,
    scale: str = "tiny",
    seed: int = 0,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Lake:
    """Generate the synthetic dataset and write it as a lake at ``url``; return the lake, re-opened.

    Writes the stimulus table, the splits (through the same path as the published split JSONs),
    every subject (generated and written one at a time, so one subject's betas are in memory at
    once) and the four synthetic feature sets, then records the provenance.

    Parameters
    ----------
    url : str
        Local path, ``s3://bucket/prefix``, ``memory://name``, ...
    scale : {"tiny", "small", "full"}
    seed : int
    storage_options : dict, optional
        fsspec options for ``url``.
    overwrite : bool
        Replace stores that already exist (otherwise writing over one is an error).
    """
    from laion_lake.lake import create_lake, open_lake

    data = SyntheticDataset(scale, seed)
    lake = create_lake(url, storage_options)
    # one commit: a killed or failed synth leaves the lake exactly as it was
    with lake.transaction(f"synthetic lake ({scale}, seed {seed}){' (overwrite)' if overwrite else ''}"):
        lake.write_stimuli(data.stimuli, overwrite=overwrite)
        lake.write_splits(data.split_documents(), overwrite=overwrite)
        for subject in data.subjects:
            lake.write_subject(subject, data.subject(subject), overwrite=overwrite)
        for model, layer in MODEL_LAYERS.items():
            lake.write_features(model, layer, data.feature_set(model), overwrite=overwrite)
        lake.set_provenance(data.provenance)
    return open_lake(url, storage_options)


__all__ = ["EXPECTED_RANKING", "GroundTruth", "MODEL_LAYERS", "SCALES", "SUBJECTS", "Scale", "SyntheticDataset", "make_lake"]
