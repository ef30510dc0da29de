"""Versioned schema documents for every store in the lake, and the one validator that reads them.

A schema is a JSON document beside this file, named ``<schema>.v<version>.json``. A new version is
a new file; old stores keep their version in their attributes and keep validating against it.
"""

from storage_schemas.validate import (
    Problem,
    SchemaError,
    check_dataset,
    check_record,
    latest_version,
    load_schema,
    validate_dataset,
    validate_record,
)

__all__ = [
    "Problem",
    "SchemaError",
    "check_dataset",
    "check_record",
    "latest_version",
    "load_schema",
    "validate_dataset",
    "validate_record",
]
