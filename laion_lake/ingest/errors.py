"""The error raised on a release or assembly that cannot be ingested."""

from __future__ import annotations

from laion_lake.errors import LakeError


class IngestError(LakeError, ValueError):
    """A release or assembly file that cannot be ingested; the message names the file."""
