"""Names and shapes of the subject-assembly layout shared by the writers and the reader.

Holds the schema name, the trial coordinates, the ``subjects/`` group and a subject's path in it,
and the schema's chunk sizes: what :mod:`laion_lake.lake.subjects` (in-memory write, reading) and
:mod:`laion_lake.lake.subject_streaming` (block-by-block write) must agree on. The layout itself is
described in :mod:`laion_lake.lake.subjects`, which re-exports these names.
"""

from __future__ import annotations

from storage_schemas import load_schema

SCHEMA = "subject_assembly"
TRIAL_COORDS = ("stimulus_id", "session", "run", "beta_index", "repetition")
SUBJECTS_GROUP = "subjects"


def subject_path(subject: str) -> str:
    """The group of a subject (the schema's pattern ``sub-NN`` keeps it a safe name)."""
    return f"{SUBJECTS_GROUP}/{subject}"


def _chunk_shape(dim: str) -> int:
    return int(load_schema(SCHEMA)["chunks"][dim])
