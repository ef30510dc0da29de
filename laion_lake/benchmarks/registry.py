"""The benchmark registry: one lookup per identifier, the headline set as a table (SPEC section 3).

No benchmark registers itself on import. The headline set is a small table of
families x regions x splits x metrics, expanded on demand; every other valid identifier goes
through the same factory, :func:`load_benchmark`.
"""

from __future__ import annotations

from typing import Any

from laion_lake.benchmarks.identifiers import (
    UnknownBenchmarkError,
    format_identifier,
    parse_identifier,
    unknown,
    with_close_identifiers,
)
from laion_lake.benchmarks.spec import KEY_SETTINGS, OVERRIDABLE, BenchmarkSpec, parse_key_settings
from laion_lake.benchmarks.vocabulary import CKA, FAMILY_ALIASES, RDM_PEARSON, RIDGECV

HEADLINE_REGIONS = ("V1", "V2", "V4", "IT")

# (family, regions, splits, metric): each row expands to the cross product, in SPEC order
HEADLINE_TABLE: tuple[tuple[str, tuple[str, ...], tuple[str | None, ...], str], ...] = (
    ("LAION_fMRI", HEADLINE_REGIONS, ("tau", "ood"), RIDGECV),
    ("LAION_fMRI_persubject", HEADLINE_REGIONS, ("tau", "ood"), RIDGECV),
    ("LAION_fMRI", HEADLINE_REGIONS, (None,), RDM_PEARSON),
    ("LAION_fMRI", HEADLINE_REGIONS, (None,), CKA),
)


def list_benchmarks() -> list[str]:
    """The 24 leaderboard identifiers, once each, in SPEC order (family, then region, then split).

    Canonical spellings (``LAION_fMRI``, ``LAION_fMRI_persubject``); Brain-Score's names
    ``Zerbe2026_fmri`` and ``Zerbe2026_fmri_persubject`` load the very same specs (see
    :func:`alias_table`).

    Non-headline benchmarks (metric ``ridge``, ``ood_<category>``, ``cluster_k5``, ``random_k``,
    V3, IT_full, other settings) are not listed but load through :func:`load_benchmark`;
    :func:`laion_lake.benchmarks.valid_identifiers` lists every identifier it accepts.
    """
    return [
        format_identifier(family, region, split, metric)
        for family, regions, splits, metric in HEADLINE_TABLE
        for region in regions
        for split in splits
    ]


def alias_table() -> list[tuple[str, str]]:
    """(alias, canonical) family spellings, from the one table ``FAMILY_ALIASES``."""
    return list(FAMILY_ALIASES.items())


def aliases_text() -> str:
    """One line for ``--help``, the report and the docs: which spellings mean the same benchmarks."""
    pairs = ", ".join(f"{alias}.* = {canonical}.*" for alias, canonical in alias_table())
    return f"Brain-Score's family names are aliases: {pairs} (same benchmarks, same keys, same records)"


def is_headline(spec: BenchmarkSpec) -> bool:
    """Whether ``spec`` is a headline benchmark with every setting at its default."""
    return not spec.overrides and spec.identifier in list_benchmarks()


def load_benchmark(identifier: str, **overrides: Any) -> BenchmarkSpec:
    """The spec of a benchmark identifier (or of a :attr:`BenchmarkSpec.key`), with settings changed.

    Parameters
    ----------
    identifier : str
        ``{family}.{region}-{split}-{metric}`` (e.g. ``LAION_fMRI.IT-ood_gabor-ridge``), or a key
        with settings (``LAION_fMRI.V1-tau-ridgecv@convention=nsd``).
    **overrides
        Any of ``convention``, ``nc_threshold``, ``nc_coord``, ``subjects``, ``alphas``; they take
        precedence over settings in a key. The identifier stays canonical; the spec's
        :attr:`~BenchmarkSpec.overrides` and :attr:`~BenchmarkSpec.key` record the change.

    Returns
    -------
    BenchmarkSpec

    Raises
    ------
    UnknownBenchmarkError
        An unknown family, region, split, metric, convention, subject, noise-ceiling coordinate
        or setting name; the message lists close matches and the valid values.
    """
    if not isinstance(identifier, str):
        raise TypeError(f"a benchmark identifier is a str, not {type(identifier).__name__}")
    identifier, _, settings = identifier.partition(KEY_SETTINGS)
    family, region, split, metric = parse_identifier(identifier)
    for name in overrides:
        if name not in OVERRIDABLE:
            raise unknown("benchmark setting", name, OVERRIDABLE, where=identifier)
    try:
        # the identifier alone first, so a bad split is reported with close identifiers and a bad
        # setting is not
        spec = BenchmarkSpec(family, region, split, metric)
    except UnknownBenchmarkError as error:
        raise with_close_identifiers(error, identifier) from None
    settings_from_key = parse_key_settings(settings, where=identifier) if settings else {}
    merged = settings_from_key | overrides
    if not merged:
        return spec
    return BenchmarkSpec(family, region, split, metric, **merged)
