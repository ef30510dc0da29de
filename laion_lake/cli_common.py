"""What every ``laion-lake`` sub-command shares: the lake URL and its fsspec options, and how the process ends."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import threading
from typing import Any, NoReturn

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


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


def exit_without_finalizing(code: int) -> NoReturn:
    """End the process with ``code`` once output is flushed and exit hooks ran, skipping finalization.

    Icechunk's Rust threads can still ask for the GIL while CPython finalizes; CPython then ends
    such a thread with ``pthread_exit``, whose forced unwind Rust (1.84+) turns into ``FATAL:
    exception not rethrown`` and SIGABRT: a command whose commit had landed exited -6 (rust-lang
    issue 135929). The work is done by then, so everything finalization would do that matters is
    done here by hand, in CPython's own order: join non-daemon threads (and the hooks
    ``concurrent.futures`` registers for that), run ``atexit`` (logging, Prefect, Dask), flush.
    """
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx calls first
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BrokenPipeError:  # the reader left before the last buffered lines: as a shell reports it
                code = code or EXIT_BROKEN_PIPE
            except (OSError, ValueError):  # a closed stream: nothing left to say
                pass
        os._exit(code)
