"""Errors a user of the lake can meet. Every message names the store, subject, coordinate or ids at fault."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from difflib import get_close_matches

from storage_schemas.names import InvalidNameError  # noqa: F401  (re-exported: a name breaking the naming rule)

# how many offending ids a message lists before "... and N more"
SHOWN_IDS = 5


def describe_ids(ids: Sequence[str] | Iterable[str], shown: int = SHOWN_IDS) -> str:
    """``'a', 'b', 'c' ... and 12 more`` for error messages."""
    ids = list(ids)
    text = ", ".join(repr(str(i)) for i in ids[:shown])
    return text + (f" ... and {len(ids) - shown} more" if len(ids) > shown else "")


def suggest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` text naming the closest valid choices, or listing them all when few."""
    choices = sorted(set(choices))
    close = get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return f"; did you mean {describe_ids(close)}? (valid: {describe_ids(choices, shown=12)})"
    return f"; valid: {describe_ids(choices, shown=12)}"


class LakeError(Exception):
    """Base class of the lake's errors."""


class LakeNotFoundError(LakeError, FileNotFoundError):
    """The URL holds no lake (no lake.json)."""


class UnknownNameError(LakeError, ValueError):
    """A subject, region, split, pool, model or layer the lake does not hold."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], where: str = "") -> None:
        place = f" in {where}" if where else ""
        super().__init__(f"unknown {kind} {name!r}{place}{suggest(name, choices)}")
        self.kind = kind
        self.name = name


class MissingStimuliError(LakeError, KeyError):
    """Stimulus ids a request needs are not in the store asked of."""

    def __init__(self, where: str, missing: Sequence[str], needed_by: str = "") -> None:
        why = f" (needed by {needed_by})" if needed_by else ""
        self.message = f"{where} lacks {len(missing)} stimulus id(s){why}: {describe_ids(missing)}"
        super().__init__(self.message)
        self.missing = list(missing)

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.message


class IncompleteStoreError(LakeError):
    """A store exists but was never completed (an interrupted write); the lake does not use it."""


class StoreExistsError(LakeError, FileExistsError):
    """A write would replace a complete store; pass ``overwrite=True`` to replace it."""


class LakeConflictError(LakeError):
    """A write met other writers of the same data too often, or a tag already exists."""


class LakeStorageError(LakeError):
    """The lake's storage refused or failed an operation (credentials, endpoint, disk); nothing was committed."""


class NonFiniteDataError(LakeError, ValueError):
    """Activations or betas hold NaN or infinity; the message names the store, first ids and columns."""
