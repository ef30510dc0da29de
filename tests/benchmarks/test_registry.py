"""The benchmark registry: headline ids, the factory, identifier round trips, errors, records."""

from __future__ import annotations

import collections
import json
from dataclasses import FrozenInstanceError

import pytest

from laion_lake.benchmarks import (
    OOD_CATEGORIES,
    REGION_COMPONENTS,
    RIDGECV_ALPHAS,
    SPLITS,
    STORED_SPLITS,
    SUBJECTS,
    BenchmarkSpec,
    UnknownBenchmarkError,
    format_identifier,
    is_headline,
    list_benchmarks,
    load_benchmark,
    parse_identifier,
    valid_identifiers,
)
from tests.conftest import SHARED_SPLITS

# SPEC section 3, written out once here (and only here) so the table-driven code is checked
# against the text rather than against itself
SPEC_HEADLINE = {
    *(f"LAION_fMRI.{r}-{s}-ridgecv" for r in ("V1", "V2", "V4", "IT") for s in ("tau", "ood")),
    *(f"LAION_fMRI_persubject.{r}-{s}-ridgecv" for r in ("V1", "V2", "V4", "IT") for s in ("tau", "ood")),
    *(f"LAION_fMRI.{r}-rdm-pearson" for r in ("V1", "V2", "V4", "IT")),
}
# and the four CKA cells Brain-Score added (SPEC 3, 3.4): 24 leaderboard cells
SPEC_CKA = {f"Zerbe2026_fmri.{r}-cka" for r in ("V1", "V2", "V4", "IT")}
RENAMED = {"LAION_fMRI": "Zerbe2026_fmri", "LAION_fMRI_persubject": "Zerbe2026_fmri_persubject"}


def test_leaderboard_ids_are_the_20_headline_ones_and_the_4_cka_cells_once_each():
    ids = list_benchmarks()
    assert len(ids) == 24
    assert len(set(ids)) == 24
    assert set(ids[:20]) == SPEC_HEADLINE
    assert {load_benchmark(i).key for i in SPEC_CKA} == set(ids[20:])
    assert ids[0] == "LAION_fMRI.V1-tau-ridgecv"


def test_every_headline_id_loads_with_default_settings():
    for identifier in list_benchmarks():
        spec = load_benchmark(identifier)
        assert spec.identifier == identifier
        assert spec.key == identifier
        assert spec.overrides == ()
        assert is_headline(spec)
        assert spec.subjects == ("sub-01", "sub-03", "sub-05", "sub-06", "sub-07")
        assert spec.nc_threshold == 30.0 and spec.nc_coord == "nc_12rep"
        assert spec.convention == "brainscore"
        assert spec.version == 1
        assert "Zerbe" in spec.citation and "Hebart" in spec.citation and "Brain-Score" in spec.citation
        assert "VSS" in spec.citation and "@" in spec.bibtex


def test_headline_fields():
    spec = load_benchmark("LAION_fMRI_persubject.IT-ood-ridgecv")
    assert (spec.family, spec.region, spec.split, spec.metric) == ("LAION_fMRI_persubject", "IT", "ood", "ridgecv")
    assert spec.folds == ("ood",) and spec.test_ood_category is None
    assert spec.pool_for("sub-05") == "sub-05"
    assert load_benchmark("LAION_fMRI.IT-ood-ridgecv").pool_for("sub-05") == "shared"
    rdm = load_benchmark("LAION_fMRI.V4-rdm-pearson")
    assert rdm.split is None and rdm.folds == () and rdm.n_folds == 1 and rdm.alphas == () and rdm.kind == "rdm"


def test_alphas_are_the_21_powers_of_ten():
    spec = load_benchmark("LAION_fMRI.V1-tau-ridgecv")
    assert len(spec.alphas) == 21
    assert spec.alphas == RIDGECV_ALPHAS
    assert spec.alphas[0] == pytest.approx(1e-10) and spec.alphas[10] == 1.0 and spec.alphas[-1] == pytest.approx(1e10)
    assert load_benchmark("LAION_fMRI.V1-tau-ridge").alphas == (1.0,)


def test_every_factory_cell_parses_and_formats_back():
    ids = valid_identifiers()
    assert len(ids) == len(set(ids))
    # 2 families x 6 regions x 22 splits x 2 regression metrics + 6 shared-pool rdm + 6 shared-pool cka
    assert len(SPLITS) == 2 + 5 + 5 + 9 + 1
    assert len(ids) == 2 * 6 * 22 * 2 + 6 + 6
    assert SPEC_HEADLINE <= set(ids)
    for identifier in ids:
        parts = parse_identifier(identifier)
        assert format_identifier(*parts) == identifier
        spec = load_benchmark(identifier)
        assert spec.identifier == identifier
        assert (spec.family, spec.region, spec.split, spec.metric) == parts
        assert load_benchmark(spec.key) == spec


@pytest.mark.parametrize("category", OOD_CATEGORIES)
def test_ood_category_runs_the_ood_split_restricted_at_test(category):
    spec = load_benchmark(f"LAION_fMRI.IT-ood_{category}-ridgecv")
    assert spec.split == f"ood_{category}"
    assert spec.folds == ("ood",)
    assert spec.test_ood_category == category


def test_hyphenated_categories_do_not_confuse_the_parser():
    assert parse_identifier("LAION_fMRI_persubject.IT_full-ood_illusion-classic-ridge") == (
        "LAION_fMRI_persubject",
        "IT_full",
        "ood_illusion-classic",
        "ridge",
    )
    assert parse_identifier("LAION_fMRI.V1-ood_illusion-natural-ridgecv")[2:] == ("ood_illusion-natural", "ridgecv")


def test_cluster_k5_runs_five_folds_and_single_folds_load_alone():
    spec = load_benchmark("LAION_fMRI_persubject.V2-cluster_k5-ridgecv")
    assert spec.folds == tuple(f"cluster_k5_{k}" for k in range(5))
    assert spec.n_folds == 5
    assert load_benchmark("LAION_fMRI.V2-cluster_k5_3-ridgecv").folds == ("cluster_k5_3",)
    assert load_benchmark("LAION_fMRI.V2-random_4-ridge").folds == ("random_4",)


def test_region_components():
    assert REGION_COMPONENTS["IT_full"] == ("V4", "IT")
    assert set(REGION_COMPONENTS) == {"V1", "V2", "V3", "V4", "IT", "IT_full"}
    for region, components in REGION_COMPONENTS.items():
        if region != "IT_full":
            assert components == (region,)
    assert load_benchmark("LAION_fMRI.IT_full-tau-ridgecv").components == ("V4", "IT")


def test_vocabulary_matches_the_published_data():
    """Split names and OOD categories agree with the split files shipped with the dataset."""
    if not SHARED_SPLITS.is_dir():
        pytest.skip(f"no published splits at {SHARED_SPLITS}")
    for pool in ("shared", *SUBJECTS):
        assert {p.stem for p in (SHARED_SPLITS / pool).glob("*.json")} == set(STORED_SPLITS)
    ood = json.loads((SHARED_SPLITS / "shared" / "ood.json").read_text())
    # ids read shared_4rep_OOD_<category>_<name>; categories hold hyphens, never underscores
    counts = collections.Counter(i.split("_")[3] for i in ood["variants"][0]["test_ids"])
    assert set(counts) == set(OOD_CATEGORIES)
    assert [counts[c] for c in OOD_CATEGORIES] == [82, 72, 64, 60, 30, 24, 21, 10, 8]


# ---- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "must_mention"),
    [
        ("LAION_fMRI.V1-random_7-ridgecv", ["'random_7'", "random_4", "LAION_fMRI.V1-random_4-ridgecv"]),
        ("LAION_fMRI.V1-cluster_k5_9-ridgecv", ["'cluster_k5_9'", "cluster_k5_4"]),
        ("LAION_fMRI.V1-ood_nonsense-ridgecv", ["'ood_nonsense'", *(f"ood_{c}" for c in OOD_CATEGORIES)]),
        ("LAION_fMRI.V1-tau-ridgcv", ["metric", "did you mean 'ridgecv'", "'LAION_fMRI.V1-tau-ridgecv'"]),
        ("LAION_fMRl.V1-tau-ridgecv", ["family", "did you mean 'LAION_fMRI'"]),
        ("LAION_fMRI.V5-tau-ridgecv", ["region", "'V5'", "IT_full", "LAION_fMRI.V4-tau-ridgecv"]),
        ("LAION_fMRI.V1-rdm-pearsn", ["metric", "LAION_fMRI.V1-rdm-pearson"]),
        ("LAION_fMRI_persubject.V1-rdm-pearson", ["shared pool only", "'LAION_fMRI.V1-rdm-pearson'"]),
        ("LAION_fMRI.V1-tau-rdm-pearson", ["takes no split"]),
        ("LAION_fMRI.V1-ridgecv", ["needs a split", "tau"]),
        ("LAION_fMRI_V1-tau-ridgecv", ["malformed", "{family}.{region}-{split}-{metric}"]),
    ],
)
def test_unknown_identifiers_name_the_bad_part_and_close_matches(identifier, must_mention):
    with pytest.raises(UnknownBenchmarkError) as info:
        load_benchmark(identifier)
    assert isinstance(info.value, ValueError)
    for text in must_mention:
        assert text in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "must_mention"),
    [
        ({"subjects": ("sub-01", "sub-02")}, ["subject", "'sub-02'", "sub-07"]),
        ({"convention": "nds"}, ["convention", "did you mean 'nsd'"]),
        ({"nc_coord": "nc_12"}, ["'nc_12'", "did you mean 'nc_12rep'"]),
        ({"nc_thresold": 20}, ["setting", "did you mean 'nc_threshold'"]),
    ],
)
def test_unknown_settings_name_the_bad_value(overrides, must_mention):
    with pytest.raises(UnknownBenchmarkError) as info:
        load_benchmark("LAION_fMRI.V1-tau-ridgecv", **overrides)
    for text in must_mention:
        assert text in str(info.value)
    # a bad setting is not a bad identifier: no identifier suggestions
    assert "close benchmark identifiers" not in str(info.value)


@pytest.mark.parametrize(
    ("identifier", "overrides"),
    [
        ("LAION_fMRI.V1-tau-ridge", {"alphas": (0.1, 10.0)}),
        ("LAION_fMRI.V1-tau-ridgecv", {"alphas": (0.0, 1.0)}),
        ("LAION_fMRI.V1-rdm-pearson", {"alphas": (1.0,)}),
        ("LAION_fMRI.V1-tau-ridgecv", {"subjects": ()}),
        ("LAION_fMRI.V1-tau-ridgecv", {"nc_threshold": "30"}),
        ("LAION_fMRI.V1-tau-ridgecv", {"nc_threshold": float("nan")}),
    ],
)
def test_invalid_setting_values_raise(identifier, overrides):
    with pytest.raises(ValueError):
        load_benchmark(identifier, **overrides)


def test_pool_for_a_subject_outside_the_benchmark_raises():
    spec = load_benchmark("LAION_fMRI.V1-tau-ridgecv", subjects=("sub-01",))
    with pytest.raises(UnknownBenchmarkError, match="sub-03"):
        spec.pool_for("sub-03")


# ---- overrides, identity, records ---------------------------------------------------------------


def test_overrides_keep_the_identifier_and_change_the_key():
    base = load_benchmark("LAION_fMRI.V1-tau-ridgecv")
    nsd = load_benchmark("LAION_fMRI.V1-tau-ridgecv", convention="nsd")
    fewer = load_benchmark("LAION_fMRI.V1-tau-ridgecv", subjects=("sub-03", "sub-01"))
    assert nsd.identifier == fewer.identifier == base.identifier
    assert len({base, nsd, fewer}) == 3
    assert len({base.key, nsd.key, fewer.key}) == 3
    assert nsd.overrides == (("convention", "nsd"),)
    assert nsd.key == "LAION_fMRI.V1-tau-ridgecv@convention=nsd"
    # subject order does not make another benchmark
    assert fewer == load_benchmark(base.identifier, subjects=["sub-01", "sub-03"])
    assert fewer.subjects == ("sub-01", "sub-03")
    assert load_benchmark(base.identifier, subjects="sub-05").subjects == ("sub-05",)
    # setting a default explicitly is no override
    assert load_benchmark(base.identifier, nc_threshold=30, convention="brainscore") == base
    assert not is_headline(nsd)


def test_equal_specs_are_equal_and_hash_alike():
    a = load_benchmark("LAION_fMRI.IT_full-ood_gabor-ridge", nc_threshold=10, nc_coord="nc_allrep")
    b = load_benchmark("LAION_fMRI.IT_full-ood_gabor-ridge", nc_coord="nc_allrep", nc_threshold=10.0)
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    with pytest.raises(FrozenInstanceError):
        a.region = "V1"  # type: ignore[misc]


SETTINGS = [
    {},
    {"convention": "nsd"},
    {"nc_threshold": 12.5, "nc_coord": "nc_4rep"},
    {"nc_threshold": None},
    {"subjects": ("sub-07",)},
    {"alphas": (0.001, 1.0, 1000.0)},
]


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize(
    "identifier",
    [
        "LAION_fMRI.V1-tau-ridgecv",
        "LAION_fMRI_persubject.IT_full-ood_illusion-classic-ridgecv",
        "LAION_fMRI.V3-cluster_k5-ridgecv",
        "LAION_fMRI_persubject.V4-random_2-ridgecv",
    ],
)
def test_key_and_dict_round_trips(identifier, settings):
    spec = load_benchmark(identifier, **settings)
    assert load_benchmark(spec.key) == spec
    record = json.loads(json.dumps(spec.to_dict()))
    assert BenchmarkSpec.from_dict(record) == spec
    assert record["identifier"] == identifier and record["key"] == spec.key
    assert record["folds"] == list(spec.folds)
    # the key is one path component
    assert "/" not in spec.key and " " not in spec.key


def test_ridge_and_rdm_dicts_round_trip():
    for spec in (
        load_benchmark("LAION_fMRI.V2-ood_shape-ridge", alphas=(10.0,)),
        load_benchmark("LAION_fMRI.IT_full-rdm-pearson", subjects=("sub-01", "sub-06")),
    ):
        assert BenchmarkSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
        assert load_benchmark(spec.key) == spec


def test_from_dict_rejects_a_record_that_contradicts_itself():
    record = load_benchmark("LAION_fMRI.V1-tau-ridgecv").to_dict()
    with pytest.raises(ValueError, match="identifier"):
        BenchmarkSpec.from_dict(record | {"identifier": "LAION_fMRI.V2-tau-ridgecv"})
    with pytest.raises(ValueError, match="unexpected"):
        BenchmarkSpec.from_dict(record | {"colour": "blue"})


def test_version_is_recorded():
    spec = BenchmarkSpec.from_dict(load_benchmark("LAION_fMRI.V1-tau-ridgecv").to_dict() | {"version": 2})
    assert spec.version == 2 and spec.to_dict()["version"] == 2
    with pytest.raises(ValueError):
        BenchmarkSpec("LAION_fMRI", "V1", "tau", "ridgecv", version=0)


@pytest.mark.parametrize("identifier", sorted(SPEC_HEADLINE) + ["LAION_fMRI.IT-cka"])
def test_brainscore_family_names_resolve_to_the_same_benchmark(identifier):
    family, rest = identifier.split(".", 1)
    alias = f"{RENAMED[family]}.{rest}"
    spec, same = load_benchmark(identifier), load_benchmark(alias)
    assert same == spec and same.key == spec.key == identifier
    assert hash(same) == hash(spec)
    assert spec.aliases == (alias,)
    # settings in a key travel with the alias too
    assert load_benchmark(f"{alias}@convention=nsd").key == f"{identifier}@convention=nsd"


def test_alias_spellings_are_listed_once_and_bad_ones_suggest_them():
    from laion_lake.benchmarks import FAMILY_ALIASES, aliases_text

    assert dict(FAMILY_ALIASES) == {v: k for k, v in RENAMED.items()}
    assert all(load_benchmark(i).key == i for i in list_benchmarks())  # canonical spellings only
    assert "Zerbe2026_fmri.* = LAION_fMRI.*" in aliases_text()
    with pytest.raises(UnknownBenchmarkError, match="did you mean 'Zerbe2026_fmri'"):
        load_benchmark("Zerbe2026_fMRI.V1-cka")
    with pytest.raises(UnknownBenchmarkError, match="shared pool only"):
        load_benchmark("Zerbe2026_fmri_persubject.V1-cka")


def test_cka_cells_take_no_split_and_no_alphas():
    spec = load_benchmark("Zerbe2026_fmri.V4-cka")
    assert spec.kind == "cka" and spec.split is None and spec.folds == () and spec.alphas == ()
    with pytest.raises(UnknownBenchmarkError, match="takes no split"):
        load_benchmark("Zerbe2026_fmri.V4-tau-cka")
    with pytest.raises(ValueError, match="takes no alphas"):
        load_benchmark("LAION_fMRI.V4-cka", alphas=(1.0,))
    assert BenchmarkSpec.from_dict(spec.to_dict()) == spec
