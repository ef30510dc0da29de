"""Arguments shared by every ``laion-lake`` sub-command (the lake URL and its fsspec options)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def json_options(text: str | None) -> dict[str, Any] | None:
    """Parse ``--storage-options`` JSON (None when empty)."""
    if not text:
        return None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"--storage-options must be JSON: {error}") from error
    if not isinstance(options, dict):
        raise argparse.ArgumentTypeError(f"--storage-options must be a JSON object like '{{\"endpoint_url\": \"...\"}}', not {text}")
    return options


def add_lake_argument(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    """The positional lake URL and ``--storage-options``."""
    if positional:
        parser.add_argument("lake", help="lake URL: a local path, s3://bucket/prefix, memory://name")
    parser.add_argument(
        "--storage-options",
        type=json_options,
        default=None,
        help='fsspec options of the lake as JSON, e.g. \'{"endpoint_url": "http://127.0.0.1:9000"}\'',
    )
