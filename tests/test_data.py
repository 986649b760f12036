"""sdmodel.data: BIS readers for every download layout, the compact builders, and the shipped calibration data.

Fixtures in tests/data (see its README.md); nothing here reads the shared data folder.
"""

import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from sdmodel import SdmodelError
from sdmodel.data import readers as data

ROOT = Path(__file__).resolve().parent.parent
FIX = Path(__file__).resolve().parent / "data"
CAL = ROOT / "calibration" / "data"
HISTORY = ROOT / "models" / "bsr" / "data"
LAYOUTS = ["WS_TC_sample_csv_col.csv", "WS_TC_sample_csv_flat.csv", "bis_tc_sample_long.csv"]
YEARS_1998 = {"japan": range(1998, 1999), "china": range(1998, 1999)}
OUT_FILES = ("japan_annual.csv", "japan_quarterly.csv", "china_annual.csv", "china_quarterly.csv")


def text_frame(path, index):
    return pd.read_csv(path, dtype=str, keep_default_na=False).set_index(index)


# --------------------------------------------------------------------------- readers
def test_three_layouts_give_the_same_tidy_frame():
    frames = [data.read_bis_total_credit(FIX / name) for name in LAYOUTS]
    for other in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], other)
    tidy = frames[0]
    assert list(tidy.columns) == data.TIDY_COLUMNS
    assert tidy["period"].dtype == pd.PeriodDtype("Q-DEC")
    assert len(tidy) == 14  # 6 series x 3 quarters, less JP government 1997-Q3 and the empty CN household row
    assert set(tidy["country"]) == {"JP", "CN", "US"}
    assert not ((tidy["country"] == "CN") & (tidy["borrowers"] == "H")).any()


@pytest.mark.parametrize("name", LAYOUTS)
def test_country_filter(name):
    jp = data.read_bis_total_credit(FIX / name, countries=["JP"])
    assert set(jp["country"]) == {"JP"} and len(jp) == 8
    assert set(data.read_bis_total_credit(FIX / name, countries="CN")["country"]) == {"CN"}


def test_values_match_known_numbers_and_the_calibration_files():
    tidy = data.read_bis_total_credit(FIX / LAYOUTS[0])
    assert data.bis_series(tidy, "Q:JP:G:A:N:770:A")[pd.Period("1997Q4")] == 81.1  # the 1997 splice anchor
    assert data.bis_series(tidy, "Q:JP:H:A:M:XDC:A")[pd.Period("1998Q1")] == 372222.4  # billions of yen
    column = {spec: col for col, spec in data.QUARTERLY_SERIES.items()}
    checked = 0
    for country, name in (("JP", "japan"), ("CN", "china")):
        cal = pd.read_csv(CAL / f"{name}_quarterly.csv", index_col="period")
        rows = tidy[tidy["country"] == country]
        for r in rows.itertuples():
            spec = ":".join([r.borrowers, r.lenders, r.valuation, r.unit, r.adjust])
            label = f"{r.period.year}-Q{r.period.quarter}"
            if label in cal.index:
                assert cal.loc[label, column[spec]] == r.value, (country, spec, label)
                checked += 1
    assert checked == 11  # JP 8 observations, CN private credit 3


def test_sdmx_api_csv_with_plain_codes_and_a_zipped_bulk_file(tmp_path):
    api = tmp_path / "api.csv"
    api.write_text("STRUCTURE,STRUCTURE_ID,ACTION,FREQ,BORROWERS_CTY,TC_BORROWERS,TC_LENDERS,VALUATION,UNIT_TYPE,"
                   "TC_ADJUST,TIME_PERIOD,OBS_VALUE,UNIT_MULT\n"
                   "dataflow,BIS:WS_TC(2.0),I,Q,JP,H,A,M,770,A,1997-Q4,68.0,0\n"
                   "dataflow,BIS:WS_TC(2.0),I,Q,JP,H,A,M,XDC,A,1997-Q4,376882.1,9\n"
                   "dataflow,BIS:WS_TC(2.0),I,Q,JP,H,A,M,XDC,A,1998-Q1,NaN,9\n")
    tidy = data.read_bis_total_credit(api)
    assert tidy["value"].tolist() == [68.0, 376882.1] and tidy["unit"].tolist() == ["770", "XDC"]
    zipped = tmp_path / "WS_TC_csv_col.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(FIX / LAYOUTS[0], "WS_TC_csv_col.csv")
    pd.testing.assert_frame_equal(data.read_bis_total_credit(zipped), data.read_bis_total_credit(FIX / LAYOUTS[0]))


def test_unrecognised_header_names_the_file_and_the_expected_columns(tmp_path):
    bad = tmp_path / "WS_TC_csv_col.csv"
    bad.write_text("country,date,credit\nJP,1997-Q4,1.0\n")
    with pytest.raises(data.DataError) as e:
        data.read_bis_total_credit(bad)
    msg = str(e.value)
    assert str(bad) in msg and "country, date, credit" in msg
    for expected in ("TC_BORROWERS", "1990-Q1", "TIME_PERIOD", "OBS_VALUE", "bis_series_key"):
        assert expected in msg
    assert isinstance(e.value, SdmodelError) and isinstance(e.value, ValueError)


def flat_with(tmp_path, value="68.0", mult="9", unit="XDC", extra=""):
    p = tmp_path / "flat.csv"
    p.write_text("FREQ,BORROWERS_CTY,TC_BORROWERS,TC_LENDERS,VALUATION,UNIT_TYPE,TC_ADJUST,TIME_PERIOD,OBS_VALUE,"
                 f"UNIT_MULT\nQ,JP,H,A,M,{unit},A,1997-Q4,{value},{mult}\n{extra}")
    return p


@pytest.mark.parametrize("kwargs, expected", [
    ({"value": "n/a"}, "Q:JP:H:A:M:XDC:A, period 1997-Q4: value 'n/a'; expected a number"),
    ({"mult": "6"}, "series Q:JP:H:A:M:XDC:A: column UNIT_MULT is '6'; expected 9 (billions)"),
    ({"extra": "Q,JP,H,A,M,XDC,A,1997-Q4,1.0,9\n"}, "Q:JP:H:A:M:XDC:A, period 1997-Q4: two observations"),
    ({"extra": "Q,JP,H,A,M,XDC,A,1997Q13,1.0,9\n"}, "Q:JP:H:A:M:XDC:A: period '1997Q13'; expected a quarter like"),
])
def test_bad_content_names_file_series_and_expectation(tmp_path, kwargs, expected):
    p = flat_with(tmp_path, **kwargs)
    with pytest.raises(data.DataError) as e:
        data.read_bis_total_credit(p)
    assert str(p) in str(e.value) and expected in str(e.value)


def test_percent_of_gdp_series_need_no_unit_multiplier_of_9(tmp_path):
    assert data.read_bis_total_credit(flat_with(tmp_path, mult="0", unit="770"))["value"].tolist() == [68.0]


# --------------------------------------------------------------------------- build
@pytest.fixture
def built(tmp_path):
    out = tmp_path / "out"
    report = data.build(FIX / "src", out, years=YEARS_1998)
    return out, report


def test_build_from_fixture_gives_the_calibration_rows(built):
    out, report = built
    assert report.written == OUT_FILES and report.bis_file.name == "WS_TC_csv_col.csv"
    assert report.info["gov_splice_ratio_JPN_1997"] == pytest.approx(81.1 / 104.9709)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUT_FILES)  # no temporary files left
    for name in OUT_FILES:
        index = "period" if "quarterly" in name else "year"
        got, cal = text_frame(out / name, index), text_frame(CAL / name, index)
        assert list(got.columns) == list(cal.columns)
        pd.testing.assert_frame_equal(got, cal.loc[got.index])
    assert list(text_frame(out / "china_quarterly.csv", "period").index) == ["1998-Q1", "1998-Q2", "1998-Q3", "1998-Q4"]


def test_build_check_detects_a_changed_or_missing_file_and_writes_nothing(built):
    out, _ = built
    assert data.build(FIX / "src", out, check=True, years=YEARS_1998).ok
    changed = out / "japan_quarterly.csv"
    changed.write_text(changed.read_text().replace("67.4", "67.5"))
    (out / "china_annual.csv").unlink()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    report = data.build(FIX / "src", out, check=True, years=YEARS_1998)
    assert not report.ok and report.differ == ("japan_quarterly.csv", "china_annual.csv") and report.written == ()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert data.build(FIX / "src", out, years=YEARS_1998).differ == ("japan_quarterly.csv", "china_annual.csv")
    assert data.build(FIX / "src", out, check=True, years=YEARS_1998).ok


def test_build_accepts_the_long_bis_extract_instead_of_the_bulk_file(built, tmp_path):
    out, _ = built
    src = tmp_path / "src_long"
    shutil.copytree(FIX / "src", src)
    tidy = data.read_bis_total_credit(src / "WS_TC_csv_col.csv")
    (src / "WS_TC_csv_col.csv").unlink()
    key = "Q:" + tidy[["country", "borrowers", "lenders", "valuation", "unit", "adjust"]].agg(":".join, axis=1)
    currency = "billions_" + tidy["country"].map({"JP": "JPY", "CN": "CNY"})
    unit = tidy["unit"].map({"770": "percent_of_GDP"}).fillna(currency)
    pd.DataFrame({"period": tidy["period"].map(lambda p: f"{p.year}-Q{p.quarter}"), "bis_series_key": key,
                  "unit": unit, "value": tidy["value"]}).to_csv(src / data.BIS_TC_FILES[-1], index=False)
    report = data.build(src, out, check=True, years=YEARS_1998)
    assert report.ok and report.bis_file.name == data.BIS_TC_FILES[-1]


def test_missing_inputs_are_all_named_at_once(tmp_path):
    with pytest.raises(data.MissingInputError) as e:
        data.build(tmp_path, tmp_path / "out")
    assert len(e.value.missing) == 1 + len(data.INPUT_FILES)
    for name in [*data.BIS_TC_FILES, *(f for f, _ in data.INPUT_FILES.values())]:
        assert name in str(e.value)
    assert isinstance(e.value, SdmodelError) and isinstance(e.value, FileNotFoundError)
    assert not (tmp_path / "out").exists()


def test_missing_column_in_a_shared_file_is_named(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(FIX / "src", src)
    weo = src / "imf_weo_JPN_CHN_USA.csv"
    weo.write_text(weo.read_text().replace("variable", "indicator", 1))
    with pytest.raises(data.DataError, match="imf_weo_JPN_CHN_USA.csv: missing column.s. variable; expected year, "
                                             "country, variable, value"):
        data.build(src, tmp_path / "out", years=YEARS_1998)


def test_build_rejects_bad_years(tmp_path):
    with pytest.raises(data.DataError, match="consecutive range"):
        data.build(FIX / "src", tmp_path, years={"japan": [1998, 2000]})
    with pytest.raises(data.DataError, match="consecutive range"):
        data.build(FIX / "src", tmp_path, years={"korea": range(1998, 1999)})


# --------------------------------------------------------------------------- shipped calibration data
@pytest.mark.parametrize("name, first, last", [("japan", 1980, 2023), ("china", 1995, 2023)])
def test_calibration_annual_equals_the_bsr_history(name, first, last):
    cal = text_frame(CAL / f"{name}_annual.csv", "year")
    hist = text_frame(HISTORY / f"history_{name}.csv", "year")
    assert list(cal.index) == [str(y) for y in range(first, last + 1)]
    assert list(cal.columns) == list(hist.columns) == data.ANNUAL_COLUMNS[1:]
    pd.testing.assert_frame_equal(cal, hist.loc[cal.index])


@pytest.mark.parametrize("name, first", [("japan", "1980-Q1"), ("china", "1995-Q4")])
def test_calibration_quarterly_span_and_year_end_convention(name, first):
    q = pd.read_csv(CAL / f"{name}_quarterly.csv")
    a = pd.read_csv(CAL / f"{name}_annual.csv", index_col="year")
    assert list(q.columns) == ["period", "year", "quarter", *data.QUARTERLY_SERIES]
    assert q["period"].iloc[0] == first and q["period"].iloc[-1] == "2023-Q4"
    assert q["period"].tolist() == [f"{y}-Q{k}" for y, k in zip(q["year"], q["quarter"])]
    q4 = q[q["quarter"] == 4].set_index("year")
    for annual_col, quarterly_col in (("hh_debt_gdp", "hh_debt_gdp"), ("firm_debt_gdp", "firm_debt_gdp"),
                                      ("gov_debt_gdp_bis", "gov_debt_gdp_bis")):
        pd.testing.assert_series_equal(a[annual_col], q4[quarterly_col].reindex(a.index), check_names=False)


def test_malformed_key_in_the_long_extract_is_named(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text("period,bis_series_key,value\n1997-Q4,Q:JP:H,68.0\n")
    with pytest.raises(data.DataError, match=r"long.csv: column bis_series_key: 'Q:JP:H' is not a BIS key; expected"):
        data.read_bis_total_credit(p)


def test_cli_data_build_then_check(tmp_path, capsys):
    from sdmodel import cli
    src = Path(__file__).resolve().parent / "data" / "src"
    assert cli.main(["data", "build", str(src), "--out", str(tmp_path)]) == 0
    assert "japan_annual.csv: written" in capsys.readouterr().out
    assert cli.main(["data", "build", str(src), "--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "china_quarterly.csv").write_text("changed\n")
    assert cli.main(["data", "build", str(src), "--out", str(tmp_path), "--check"]) == 1
    assert "china_quarterly.csv: DIFFERS" in capsys.readouterr().out
    assert cli.main(["data", "build", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 1
    assert "sdmodel: error:" in capsys.readouterr().err
