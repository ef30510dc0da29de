"""The one vocabulary table agrees with the schemas and with what the dataset publishes."""

import json
from pathlib import Path

import storage_schemas
from laion_lake.benchmarks import vocabulary as benchmark_vocabulary
from laion_lake.ingest import voxels
from storage_schemas import vocabulary


def test_schema_regions_are_the_vocabulary_regions():
    schema = json.loads((Path(storage_schemas.__file__).parent / "subject_assembly.v1.json").read_text())
    allowed = next(v["allowed"] for k, v in _variables(schema) if k == "region")
    assert allowed == [*vocabulary.STORED_REGIONS, vocabulary.OTHER_REGION]


def test_vocabulary_as_published():
    # SPEC 1-2: five subjects, 371 OOD images in nine categories, V1..IT from eight ROI labels
    assert vocabulary.SUBJECTS == ("sub-01", "sub-03", "sub-05", "sub-06", "sub-07")
    assert sum(vocabulary.OOD_COUNTS.values()) == 371 and len(vocabulary.OOD_CATEGORIES) == 9
    assert vocabulary.REGION_OF_ROI["V1d"] == "V1" and vocabulary.REGION_OF_ROI["laionventral"] == "IT"
    assert set(vocabulary.RETINOTOPIC_ROIS) | {vocabulary.VENTRAL_ROI} == set(vocabulary.REGION_OF_ROI)
    assert sorted(vocabulary.PARTICIPANT_CODES.values()) == list(vocabulary.SUBJECTS)


def test_every_layer_reads_the_one_table():
    assert benchmark_vocabulary.REGIONS == vocabulary.REGIONS == ("V1", "V2", "V3", "V4", "IT", "IT_full")
    assert benchmark_vocabulary.REGION_COMPONENTS["IT_full"] == ("V4", "IT")
    assert voxels.REGION_ORDER == ("V1", "V2", "V3", "V4", "IT", "other")


def _variables(schema):
    for section in ("coords", "data_vars", "variables"):
        yield from schema.get(section, {}).items()
