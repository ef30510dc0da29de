"""Model features from outside the lake: read feature files, add them with provenance, extract them from images.

>>> from laion_lake.features import add_features, extract_features, read_feature_file
>>> activations = read_feature_file("alexnet_fc6.npz")            # DataArray (stimulus_id, feature)
>>> add_features(lake, "alexnet", "fc6", "alexnet_fc6.npz")       # checked, with source sha256 and date
>>> layers = extract_features(model_fn, "images/", batch_size=64) # {layer: DataArray}, ids = file names

Modules: :mod:`~laion_lake.features.readers` (file formats), :mod:`~laion_lake.features.add`
(id checks, coverage, provenance), :mod:`~laion_lake.features.extract` (batched extraction),
:mod:`~laion_lake.features.images` (stimuli as published: a folder or the release's ``.h5``),
:mod:`~laion_lake.features.stream` (feature sets written block by block),
:mod:`~laion_lake.features.cli` (``laion-lake features add|extract|ls``; ``extract`` runs a
torchvision or timm model through :mod:`laion_lake.models`).
"""

from laion_lake.features.add import (
    AddedFeatures,
    Coverage,
    IncompleteCoverageError,
    UnknownStimuliError,
    add_features,
    benchmark_coverage,
    needed_stimuli,
    source_sha256,
)
from laion_lake.features.extract import extract_features, list_images
from laion_lake.features.images import ImageSourceError, open_images
from laion_lake.features.readers import FORMATS, FeatureFileError, read_feature_file, read_ids_file

__all__ = [
    "AddedFeatures",
    "Coverage",
    "FORMATS",
    "FeatureFileError",
    "ImageSourceError",
    "IncompleteCoverageError",
    "UnknownStimuliError",
    "add_features",
    "benchmark_coverage",
    "extract_features",
    "list_images",
    "needed_stimuli",
    "open_images",
    "read_feature_file",
    "read_ids_file",
    "source_sha256",
]
