"""Getting the real dataset into a lake: a LAION-fMRI release folder, or a Brain-Score NetCDF assembly.

- :func:`ingest_release` / :func:`ingest_subject`: the release layout of docs/release-format.md,
  from a local folder or a bucket, streamed session by session, resumable, optionally verified
  against the source by code independent of the ingest's (:func:`verify_release` checks a lake
  against a release at any time).
- :func:`finalize_ingest`: list subjects, rebuild the stimulus table, write published splits
  (what a flow calls once after fanning :func:`ingest_subject` out).
- :func:`import_brainscore_assembly`: a NetCDF assembly as Brain-Score packages the dataset.
"""

from laion_lake.ingest.brainscore import import_brainscore_assembly
from laion_lake.ingest.catalog import finalize_ingest
from laion_lake.ingest.layout import IngestError, ReleaseLayout
from laion_lake.ingest.release import IngestReport, SubjectReport, ingest_release, ingest_subject, release_subjects, verify_release

__all__ = [
    "IngestError",
    "IngestReport",
    "ReleaseLayout",
    "SubjectReport",
    "finalize_ingest",
    "import_brainscore_assembly",
    "ingest_release",
    "ingest_subject",
    "release_subjects",
    "verify_release",
]

