"""#11 item 7: the lake as a data product for notebook users: variable attributes, indexes on the
ids, a tidy score table, an HTML repr and ``py.typed``."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from laion_lake.lake import open_lake
from laion_lake.lake.check import verify_store
from laion_lake.lake.zarr_io import content_checksum
from storage_schemas.variables import VARIABLE_ATTRS

BENCHMARKS = ("LAION_fMRI.V1-tau-ridgecv", "LAION_fMRI_persubject.IT-tau-ridgecv")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from laion_lake.synthetic import make_lake

    return make_lake(str(tmp_path_factory.mktemp("notebook") / "lake"), scale="tiny", seed=0)


# -- 1. variable attributes ----------------------------------------------------------------------
def _assert_described(obj):
    variables = obj.variables if hasattr(obj, "data_vars") else {**{n: c.variable for n, c in obj.coords.items()}, obj.name: obj.variable}
    for name, variable in variables.items():
        assert variable.attrs.get("long_name") and variable.attrs.get("description"), name
        if variable.dtype.kind in "fi" and name not in ("session", "run", "beta_index", "repetition"):
            assert "units" in variable.attrs, name


def test_every_variable_a_user_reads_carries_units_long_name_description(lake):
    ds = lake.subject("sub-01")
    _assert_described(ds)
    _assert_described(lake.stimuli)
    _assert_described(lake.features("early_model", "conv2"))
    responses = lake.responses("sub-01", "V1")
    _assert_described(responses)
    assert ds["betas"].attrs["units"] == "1" and "z-scored per session" in ds["betas"].attrs["long_name"]
    assert "z-scored per session" in responses.attrs["long_name"] and responses.attrs["region"] == "V1"  # own attrs kept
    assert {ds[n].attrs["units"] for n in ("nc_4rep", "nc_12rep", "nc_allrep")} == {"percent"}
    assert all("voxel index" in ds[n].attrs["long_name"] for n in ("x", "y", "z"))


def test_attributes_are_stored_at_write_and_stay_out_of_the_checksum(lake):
    region = lake.storage.group("subjects/sub-01/regions/V1")
    assert region["betas"].attrs["long_name"] == VARIABLE_ATTRS["betas"]["long_name"]
    assert region["nc_12rep"].attrs["units"] == "percent"
    assert lake.storage.group("subjects/sub-01/trials")["session"].attrs["long_name"] == "scan session"
    entry = lake.manifest["subjects"]["sub-01"]
    bare = lake.subject("sub-01").load()
    for variable in bare.variables.values():
        variable.attrs.clear()
    assert content_checksum(bare) == entry["checksum"]  # values only: attributes never change it
    assert verify_store(lake, "subject", "sub-01") == [] and all(verify_store(lake, "features", key) == [] for key in lake.manifest["features"])


def test_a_lake_written_without_attributes_shows_them_on_read(tmp_path):
    from tests.lake import handmade

    old = handmade.write_handmade_lake(str(tmp_path / "lake"))
    subject = old.subjects[0]

    def strip(session):  # what a lake written before the attributes holds
        group = zarr.open_group(session.store, path=f"subjects/{subject}", mode="r+")
        for path in ("trials", *(f"regions/{r}" for r in group.attrs["regions"])):
            for _, array in group[path].arrays():
                array.attrs.put({k: v for k, v in array.attrs.asdict().items() if k not in ("units", "long_name", "description")})

    old.storage.write("strip attributes", strip)
    reopened = open_lake(old.url)
    assert "long_name" not in reopened.storage.group(f"subjects/{subject}/trials")["session"].attrs
    ds = reopened.subject(subject)
    assert ds["betas"].attrs["long_name"] == VARIABLE_ATTRS["betas"]["long_name"]
    assert ds["nc_12rep"].attrs["units"] == "percent"
    assert verify_store(reopened, "subject", subject) == []


# -- 2. indexes on the ids -----------------------------------------------------------------------
def test_sel_by_stimulus_id_and_neuroid_id(lake):
    ds = lake.subject("sub-03")
    ids = ds["stimulus_id"].values
    stimulus = str(ids[7])
    picked = ds.sel(stimulus_id=stimulus)
    rows = np.flatnonzero(ids == stimulus)
    assert picked.sizes["trial"] == len(rows) == int(lake.stimuli["n_repeats"].sel(stimulus_id=stimulus, subject="sub-03"))
    np.testing.assert_array_equal(picked["betas"].values, ds["betas"].values[rows])
    voxel = str(ds["neuroid_id"].values[11])
    one = ds.sel(neuroid_id=voxel)
    assert one["betas"].dims == ("trial",) and int(one["x"]) == int(ds["x"].values[11])
    np.testing.assert_array_equal(one["betas"].values, ds["betas"].values[:, 11])

    responses = lake.responses("sub-03", "V1", nc_threshold=None)
    v1 = str(responses["neuroid_id"].values[3])
    mean = float(responses.sel(stimulus_id=stimulus, neuroid_id=v1))
    column = int(np.flatnonzero(ds["neuroid_id"].values == v1)[0])
    assert mean == pytest.approx(float(ds["betas"].values[rows, column].astype(np.float64).mean()), rel=1e-6)
    with pytest.raises(KeyError):
        responses.sel(neuroid_id="sub-03.not-a-voxel")


# -- 3. the tidy score table ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def scored(lake):
    from laion_lake.scoring.runner import aggregate_by_key, plan_keys, run_unit_by_key

    plan = plan_keys([("early_model", "conv2")], list(BENCHMARKS))
    for key, benchmark_keys in plan.units:
        run_unit_by_key(lake.url, None, key, list(benchmark_keys))
    for aggregate in plan.aggregates:
        aggregate_by_key(lake.url, None, *aggregate)
    return open_lake(lake.url)


def test_scores_table_holds_what_score_returns(scored):
    from laion_lake.scoring import score

    table = scored.scores()
    assert list(table.columns[:12]) == ["model", "layer", "benchmark", "family", "region", "split", "metric", "convention", "value", "error", "raw", "ceiling"]
    assert list(table["benchmark"]) == list(BENCHMARKS) and not table["stale"].any()
    assert list(table["family"]) == ["LAION_fMRI", "LAION_fMRI_persubject"] and list(table["region"]) == ["V1", "IT"]
    assert set(table["split"]) == {"tau"} and set(table["metric"]) == {"ridgecv"}
    for row in table.itertuples():
        expected = score(scored, row.model, row.layer, row.benchmark, voxels=False)
        assert row.value == pytest.approx(float(expected), abs=1e-12)
        for name in ("error", "raw", "ceiling"):
            assert getattr(row, name) == pytest.approx(expected.attrs[name], abs=1e-12)
        assert row.n_subjects == 5 and row.n_folds == 1
    assert len(scored.scores(benchmark=BENCHMARKS[1])) == 1 and scored.scores(model="late_model").empty
    assert list(scored.scores(benchmark="Zerbe2026_fmri.V1-tau-ridgecv")["benchmark"]) == [BENCHMARKS[0]]  # an alias finds it


def test_per_subject_long_form(scored):
    table = scored.scores()
    long = scored.scores(per_subject=True)
    assert len(long) == 10 and list(long["subject"].unique()) == ["sub-01", "sub-03", "sub-05", "sub-06", "sub-07"]
    for benchmark, cells in long.groupby("benchmark"):
        row = table.set_index("benchmark").loc[benchmark]
        # one fold: the score is the mean over subjects of their ceiled cells, raw likewise
        assert cells["value"].mean() == pytest.approx(row["value"], abs=1e-12)
        assert cells["raw"].mean() == pytest.approx(row["raw"], abs=1e-12)
        assert (cells["n_voxels"] > 0).all() and (cells["n_test"] > 0).all()


def test_stale_scores_are_left_out_unless_asked(scored, tmp_path):
    import shutil

    shutil.copytree(scored.url, tmp_path / "copy")  # a local lake is a directory: replace features in a copy
    lake = open_lake(str(tmp_path / "copy"))
    assert len(lake.scores()) == 2
    features = lake.features("early_model", "conv2").load()
    lake.write_features("early_model", "conv2", features[:, ::-1].copy(), overwrite=True)  # new content, new checksum
    assert lake.scores().empty
    stale = lake.scores(stale=True)
    assert list(stale["benchmark"]) == list(BENCHMARKS) and stale["stale"].all()
    assert list(stale["value"]) == list(scored.scores()["value"])  # the records' own values
    assert len(lake.scores(per_subject=True, stale=True)) == 10


# -- 4. repr -------------------------------------------------------------------------------------
def test_html_and_plain_repr(scored):
    from html.parser import HTMLParser

    summary = scored.summary()
    assert summary["records"] == {"units": 10, "aggregates": 2} and summary["n_stimuli"] == scored.stimuli.sizes["stimulus_id"]
    regions = summary["subjects"]["sub-01"]["regions"]
    assert regions["IT_full"] == regions["V4"] + regions["IT"] == int((scored.subject("sub-01")["region"].values != "V1").sum() - regions["V2"] - regions["V3"])
    html = scored._repr_html_()
    assert all(s in html for s in scored.subjects) and "early_model/conv2" in html and scored.snapshot_id in html and "branch main" in html

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells, self.open = [], 0

        def handle_starttag(self, tag, attrs):
            self.open += tag in ("td", "th")

        def handle_data(self, data):
            if self.open:
                self.cells.append(data)

        def handle_endtag(self, tag):
            self.open -= tag in ("td", "th")

    parser = Cells()
    parser.feed(html)
    assert parser.open == 0 and str(regions["V1"]) in parser.cells
    assert repr(scored).startswith(f"Lake({scored.url!r} @ main {scored.snapshot_id[:8]}: 5 subjects, ")


def test_html_escapes_names():
    from laion_lake.lake.html import lake_html

    summary = {"url": "<script>x</script>", "snapshot": "S" * 20, "branch": "main", "tag": None, "n_stimuli": 0, "pools": [],
               "subjects": {}, "feature_sets": {"<b>m</b>/l": {"n_stimuli": 1, "n_features": 2}}, "records": {"units": 0, "aggregates": 0}}
    html = lake_html(summary)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;m&lt;/b&gt;/l" in html
