"""Benchmark identifiers: ``{family}.{region}-{split}-{metric}``, their spellings and their errors.

Parsing and formatting only; what an identifier scores, and how, is :mod:`.spec`.
"""

from __future__ import annotations

from collections.abc import Iterable
from difflib import get_close_matches
from typing import Any

from laion_lake.benchmarks.vocabulary import (
    CLUSTER_PREFIX,
    FAMILY_ALIASES,
    FAMILY_POOLS,
    METRICS,
    OOD_PREFIX,
    REGION_COMPONENTS,
    REGIONS,
    REGRESSION_METRICS,
    SHARED_IMAGE_METRICS,
    SHARED_POOL,
    SPLITS,
)

IDENTIFIER_FORMAT = "{family}.{region}-{split}-{metric}"


class UnknownBenchmarkError(ValueError):
    """An identifier, or a setting of one, names nothing this package defines.

    The message names the offending part and lists the valid values (or the closest ones).
    """


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def unknown(kind: str, name: Any, choices: Iterable[str], where: str = "") -> UnknownBenchmarkError:
    """An :class:`UnknownBenchmarkError` for one bad part, with close matches and every valid value."""
    choices = list(choices)
    place = f" in {where!r}" if where else ""
    close = _did_you_mean(str(name), choices)
    return UnknownBenchmarkError(f"unknown {kind} {name!r}{place}{close} (valid: {', '.join(choices)})")


def split_choices(split: str) -> tuple[str, ...]:
    """The splits worth listing for a bad split name: its own kind when the prefix says which."""
    for prefix in (OOD_PREFIX, f"{CLUSTER_PREFIX}_", "random_"):
        if split.startswith(prefix):
            return tuple(s for s in SPLITS if s.startswith(prefix) or s == prefix.rstrip("_"))
    return SPLITS


def format_identifier(family: str, region: str, split: str | None, metric: str) -> str:
    """``{family}.{region}-{split}-{metric}``, or ``{family}.{region}-{metric}`` without a split (rdm)."""
    middle = f"{region}-{metric}" if split is None else f"{region}-{split}-{metric}"
    return f"{family}.{middle}"


def canonical_family(family: str) -> str:
    """The family a spelling stands for: ``Zerbe2026_fmri`` -> ``LAION_fMRI``; other names unchanged."""
    return FAMILY_ALIASES.get(family, family)


def family_aliases(family: str) -> tuple[str, ...]:
    """Every other spelling of a canonical family (``LAION_fMRI`` -> ``("Zerbe2026_fmri",)``)."""
    return tuple(alias for alias, canonical in FAMILY_ALIASES.items() if canonical == family)


def canonical_identifier(identifier: str) -> str:
    """An identifier or key with its family spelled canonically (``Zerbe2026_fmri.V1-cka`` -> ``LAION_fMRI.V1-cka``);
    nothing else is checked, so a stored key this version no longer defines passes through."""
    family, dot, rest = identifier.partition(".")
    return f"{canonical_family(family)}{dot}{rest}"


def identifier_aliases(identifier: str) -> tuple[str, ...]:
    """The other spellings of a canonical identifier (or key), e.g.
    ``LAION_fMRI.V1-cka`` -> ``("Zerbe2026_fmri.V1-cka",)``."""
    family, dot, rest = identifier.partition(".")
    return tuple(f"{alias}{dot}{rest}" for alias in family_aliases(canonical_family(family)))


def parse_identifier(identifier: str) -> tuple[str, str, str | None, str]:
    """(family, region, split, metric) of an identifier; the split is None for rdm and cka.

    The family comes back canonical: ``Zerbe2026_fmri.V1-tau-ridgecv`` parses as
    ``("LAION_fMRI", "V1", "tau", "ridgecv")``.

    Region names hold no hyphen but OOD categories do (``ood_illusion-classic``), so the region is
    read from the front and the metric from the known suffixes; the split is what lies between.

    Raises
    ------
    UnknownBenchmarkError
        A part is unknown; the message names it and suggests close identifiers.
    """
    if not isinstance(identifier, str):
        raise TypeError(f"a benchmark identifier is a str, not {type(identifier).__name__}")
    family, dot, rest = identifier.partition(".")
    if not dot:
        raise with_close_identifiers(
            UnknownBenchmarkError(f"malformed benchmark identifier {identifier!r}: expected {IDENTIFIER_FORMAT!r}"),
            identifier,
        )
    try:
        family = canonical_family(family)
        if family not in FAMILY_POOLS:
            raise unknown("benchmark family", family, (*FAMILY_POOLS, *FAMILY_ALIASES), where=identifier)
        region, _, rest = rest.partition("-")
        if region not in REGION_COMPONENTS:
            raise unknown("region", region, REGIONS, where=identifier)
        # longest first, so a metric that ends another's name could never shadow it
        for metric in sorted(METRICS, key=len, reverse=True):
            if rest == metric:
                return family, region, None, metric
            if rest.endswith(f"-{metric}"):
                return family, region, rest.removesuffix(f"-{metric}"), metric
        raise unknown("metric", rest.rpartition("-")[2] or rest, METRICS, where=identifier)
    except UnknownBenchmarkError as error:
        raise with_close_identifiers(error, identifier) from None


def valid_identifiers() -> tuple[str, ...]:
    """Every identifier the factory accepts (headline and non-headline), in table order."""
    ids = []
    for family, pool in FAMILY_POOLS.items():
        for region in REGIONS:
            ids += [format_identifier(family, region, split, metric) for split in SPLITS for metric in REGRESSION_METRICS]
            if pool == SHARED_POOL:
                ids += [format_identifier(family, region, None, metric) for metric in SHARED_IMAGE_METRICS]
    return tuple(ids)


def with_close_identifiers(error: UnknownBenchmarkError, identifier: str) -> UnknownBenchmarkError:
    """``error`` with the valid identifiers closest to ``identifier`` appended to its message."""
    close = get_close_matches(identifier, valid_identifiers(), n=3, cutoff=0.6)
    if close:
        return UnknownBenchmarkError(f"{error}; close benchmark identifiers: {', '.join(map(repr, close))}")
    return error
