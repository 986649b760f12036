"""Leverage measurement against hand-computed examples (numbers written out below)."""

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import PchipInterpolator

from sdmodel.data import leverage as lev
from sdmodel.core.errors import SpecError

TABLE_PATH = Path(__file__).resolve().parent.parent / "calibration" / "leverage_components.yaml"


def quarters(start, n):
    return pd.period_range(start, periods=n, freq="Q")


def months(start, n):
    return pd.period_range(start, periods=n, freq="M")


# ---------------------------------------------------------------- quarterly

def test_gdp_4q_is_the_sum_of_the_last_four_quarters():
    gdp = pd.Series([100.0, 110, 120, 130, 140, 150], index=quarters("2000Q1", 6))
    g4 = lev.gdp_4q(gdp)
    assert g4.iloc[:3].isna().all()
    # 100+110+120+130 = 460; 110+120+130+140 = 500; 120+130+140+150 = 540
    assert g4.iloc[3:].tolist() == [460.0, 500.0, 540.0]


def test_gdp_4q_sorts_and_reads_a_datetime_index_as_quarters():
    dates = pd.to_datetime(["2000-12-31", "2000-03-31", "2000-06-30", "2000-09-30"])
    g4 = lev.gdp_4q(pd.Series([130.0, 100, 110, 120], index=dates))
    assert isinstance(g4.index, pd.PeriodIndex) and str(g4.index[-1]) == "2000Q4"
    assert g4.iloc[-1] == 460.0


def test_leverage_hand_example():
    gdp = pd.Series([100.0, 110, 120, 130], index=quarters("2000Q1", 4))
    debt = pd.Series([920.0], index=quarters("2000Q4", 1))
    assert lev.leverage(debt, gdp).iloc[0] == 200.0  # 920 / 460 * 100


def test_leverage_by_sector_with_total_and_nan_before_a_full_year():
    gdp = pd.Series([100.0, 110, 120, 130, 140], index=quarters("2000Q1", 5))
    debt = pd.DataFrame({"households": [50.0, 230.0, 250.0], "firms": [80.0, 460.0, 750.0]},
                        index=quarters("2000Q3", 3))
    out = lev.leverage(debt, gdp)
    assert list(out.columns) == ["households", "firms", "total"]
    assert out.loc[pd.Period("2000Q3")].isna().all()  # no four-quarter sum yet
    # 2000Q4: GDP 460 -> 50%, 100%, 150%; 2001Q1: GDP 500 -> 50%, 150%, 200%
    assert out.loc[pd.Period("2000Q4")].tolist() == [50.0, 100.0, 150.0]
    assert out.loc[pd.Period("2001Q1")].tolist() == [50.0, 150.0, 200.0]
    assert "total" not in lev.leverage(debt, gdp, total=False).columns


def test_gap_in_quarters_is_named():
    gdp = pd.Series([100.0, 110, 130, 140, 150], index=pd.PeriodIndex(["2000Q1", "2000Q2", "2000Q4", "2001Q1",
                                                                       "2001Q3"], freq="Q"))
    with pytest.raises(SpecError, match=r"gdp_q: .*2000Q3, 2001Q2 missing inside the sample"):
        lev.gdp_4q(gdp)


def test_bad_gdp_values_are_all_reported():
    gdp = pd.Series([100.0, np.nan, 0.0, 130], index=quarters("2000Q1", 4))
    with pytest.raises(SpecError, match=r"2 problems: GDP is NaN in 2000Q2.*not positive in 2000Q3"):
        lev.gdp_4q(gdp)


def test_debt_quarters_without_gdp_are_named():
    gdp = pd.Series([100.0, 110, 120, 130], index=quarters("2000Q1", 4))
    debt = pd.Series([1.0, 2.0, 3.0], index=quarters("2000Q4", 3))
    with pytest.raises(SpecError, match=r"no GDP for the quarter\(s\) 2001Q1, 2001Q2 of the debt data"):
        lev.leverage(debt, gdp)


def test_wrong_frequency_and_duplicates_are_errors():
    gdp = pd.Series([100.0, 110, 120, 130], index=quarters("2000Q1", 4))
    with pytest.raises(SpecError, match=r"debt: index must be a quarterly PeriodIndex.*got PeriodIndex of freq M"):
        lev.leverage(pd.Series([1.0], index=months("2000-12", 1)), gdp)
    dup = pd.Series([1.0, 2.0], index=pd.PeriodIndex(["2000Q4", "2000Q4"], freq="Q"))
    with pytest.raises(SpecError, match=r"periods appear more than once: 2000Q4"):
        lev.leverage(dup, gdp)
    with pytest.raises(SpecError, match=r"'total'"):
        lev.leverage(pd.DataFrame({"total": [1.0]}, index=quarters("2000Q4", 1)), gdp)


# ---------------------------------------------------------------- monthly
# GDP 100, 100, 100, 100, 130, 160 in 2000Q1..2001Q2 gives four-quarter sums 400 (2000Q4),
# 430 (2001Q1), 490 (2001Q2), placed at months x = 0 (2000-12), 3 (2001-03), 6 (2001-06).
# PCHIP by hand: secants 10 and 20 per month; interior slope (equal steps) is the harmonic
# mean 2/(1/10 + 1/20) = 40/3; end slopes (scipy's three-point rule) ((2h+h)*10 - h*20)/2h = 5
# and ((2h+h)*20 - h*10)/2h = 25.  Cubic Hermite at t = 1/3 of a step of h = 3 months:
# h00 = 20/27, h10 = 4/27, h01 = 7/27, h11 = -2/27, so
#   2001-01: (20*400 + 4*3*5 + 7*430 - 2*3*40/3) / 27 = 10990/27
#   2001-04: (20*430 + 4*3*40/3 + 7*490 - 2*3*25) / 27 = 12040/27
# and at t = 2/3 (h00 = 7/27, h10 = 2/27, h01 = 20/27, h11 = -4/27):
#   2001-02: (7*400 + 2*3*5 + 20*430 - 4*3*40/3) / 27 = 11270/27
# The not-a-knot spline through three points is the parabola 400 + 5x + (5/3)x^2:
#   2001-01: 1220/3, 2001-04: 1340/3.
GDP6 = pd.Series([100.0, 100, 100, 100, 130, 160], index=quarters("2000Q1", 6))


def test_monthly_gdp_4q_exact_at_quarter_ends():
    m = lev.monthly_gdp_4q(GDP6)
    q = lev.gdp_4q(GDP6)
    assert str(m.index[0]) == "2000-01" and str(m.index[-1]) == "2001-06" and m.index.freqstr == "M"
    for quarter in ("2000Q4", "2001Q1", "2001Q2"):
        assert m[pd.Period(quarter).asfreq("M", "end")] == q[pd.Period(quarter)]  # exactly, no tolerance
    assert m[:"2000-11"].isna().all()  # nothing extrapolated before the first sum
    assert m.loc[pd.Period("2000-12")] == 400.0 and m.loc[pd.Period("2001-06")] == 490.0


def test_monthly_gdp_4q_mid_quarter_pchip_by_hand():
    m = lev.monthly_gdp_4q(GDP6)
    assert m[pd.Period("2001-01")] == pytest.approx(10990 / 27, rel=1e-13)
    assert m[pd.Period("2001-02")] == pytest.approx(11270 / 27, rel=1e-13)
    assert m[pd.Period("2001-04")] == pytest.approx(12040 / 27, rel=1e-13)
    # the same against an independent scipy call on the same knots (x in months from 2000-12)
    assert m[pd.Period("2001-05")] == pytest.approx(PchipInterpolator([0, 3, 6], [400, 430, 490])(5), rel=1e-13)
    assert (np.diff(m.dropna().to_numpy()) > 0).all()  # shape-preserving: rising sums, rising months


def test_monthly_gdp_4q_spline_option_by_hand():
    m = lev.monthly_gdp_4q(GDP6, method="spline")
    assert m[pd.Period("2001-01")] == pytest.approx(1220 / 3, rel=1e-13)
    assert m[pd.Period("2001-04")] == pytest.approx(1340 / 3, rel=1e-13)
    assert m[pd.Period("2001-03")] == 430.0
    with pytest.raises(SpecError, match=r"unknown method 'linear'; expected one of pchip, spline"):
        lev.monthly_gdp_4q(GDP6, method="linear")


def test_monthly_gdp_4q_needs_two_sums():
    with pytest.raises(SpecError, match=r"needs at least 5 quarters .* got 4"):
        lev.monthly_gdp_4q(GDP6.iloc[:4])


def test_monthly_leverage_hand_example():
    debt = pd.Series([800.0, 10990 / 27 * 2, 860.0], index=pd.to_datetime(["2000-12-31", "2001-01-31",
                                                                            "2001-03-31"]))
    out = lev.monthly_leverage(debt, GDP6)
    assert out.iloc[0] == 200.0 and out.iloc[2] == 200.0  # 800/400, 860/430 at quarter ends
    assert out.iloc[1] == pytest.approx(200.0, rel=1e-13)
    with pytest.raises(SpecError, match=r"no GDP for the month\(s\) 2001-07 of the debt data"):
        lev.monthly_leverage(pd.Series([1.0], index=months("2001-07", 1)), GDP6)


# ---------------------------------------------------------------- components
# Default table, stocks at 2000Q4, GDP 250 a quarter (four-quarter sum 1000):
#   included: 500 + 300 + 50 + 10 + 20 + 5 + 30 + 8 + 2 + 75 = 1000
#   exclusions: financial leasing 12, policy-bank bonds 100, financial external debt 25,
#               loans to non-bank financials 40
#   total economy  = 1000 - 12                 = 988  -> 98.8%
#   financial      = 100 + 25 + 40             = 165  -> 16.5%
#   non-financial  = 1000 - 12 - 100 - 25 - 40 = 823  -> 82.3%
STOCKS = {"loans": 500.0, "bonds_ex_cb_bills": 300.0, "trust_entrusted_loans": 50.0, "margin_finance": 10.0,
          "pledged_share_repos": 20.0, "policy_loans": 5.0, "leasing": 30.0, "micro_loans": 8.0,
          "pawn_credit": 2.0, "external_debt": 75.0, "financial_leasing": 12.0, "policy_bank_bonds": 100.0,
          "financial_external_debt": 25.0, "loans_to_nonbank_financials": 40.0}
GDP_FLAT = pd.Series(250.0, index=quarters("2000Q1", 4))


@pytest.fixture(scope="module")
def table():
    return lev.load_components(TABLE_PATH)


def stocks(**change):
    row = {**STOCKS, **change}
    return pd.DataFrame({k: [v] for k, v in row.items() if v is not None}, index=quarters("2000Q4", 1))


def test_default_table_declares_the_spec_components(table):
    assert set(table.names) == set(STOCKS)
    kinds = {c.name: c.kind for c in table.components}
    assert sorted(n for n, k in kinds.items() if k == "exclusion") == [
        "financial_external_debt", "financial_leasing", "loans_to_nonbank_financials", "policy_bank_bonds"]
    s = table.signs
    assert s.loc["financial_leasing"].tolist() == [-1, 0, -1]     # total, financial, non-financial
    assert s.loc["policy_bank_bonds"].tolist() == [0, 1, -1]      # moved, not removed
    assert s.loc["loans"].tolist() == [1, 0, 1]
    # every row moves debt between sectors or removes it from both: total = financial + non-financial
    assert (s["total_economy"] == s["financial"] + s["non_financial"]).all()


def test_aggregate_leverage_hand_example(table):
    out = lev.aggregate_leverage(stocks(), table, GDP_FLAT)
    assert list(out.columns) == ["total_economy", "financial", "non_financial"]
    assert out.iloc[0].tolist() == pytest.approx([98.8, 16.5, 82.3], rel=1e-14)
    assert lev.aggregate_debt(stocks(), table).iloc[0].tolist() == [988.0, 165.0, 823.0]


def test_aggregate_leverage_monthly(table):
    m = pd.DataFrame({k: [v, v] for k, v in STOCKS.items()}, index=months("2001-02", 2))
    out = lev.aggregate_leverage(m, table, GDP6, monthly=True)
    # total debt 988 over 11270/27 (2001-02) and 430 (2001-03)
    assert out["total_economy"].tolist() == pytest.approx([988 / (11270 / 27) * 100, 988 / 430 * 100], rel=1e-13)


def test_unknown_and_missing_components_are_all_listed(table):
    bad = stocks(pawn_credit=None, micro_loans=None).assign(gold_loans=1.0, repo_loans=2.0)
    with pytest.raises(SpecError, match=r"2 problems: unknown component column\(s\) gold_loans, repo_loans.*"
                                        r"table component\(s\) micro_loans, pawn_credit missing from the data"):
        lev.aggregate_debt(bad, table)


def test_missing_components_as_zero_only_when_asked(table):
    with pytest.raises(SpecError, match=r"pawn_credit missing from the data"):
        lev.aggregate_debt(stocks(pawn_credit=None), table)
    out = lev.aggregate_debt(stocks(pawn_credit=None), table, missing="zero")
    assert out.iloc[0].tolist() == [986.0, 165.0, 821.0]  # 988 - 2 and 823 - 2


def test_implausible_stocks_are_errors(table):
    with pytest.raises(SpecError, match=r"exclusion 'financial_leasing' exceeds 'leasing'.* in 2000Q4"):
        lev.aggregate_debt(stocks(financial_leasing=31.0), table)
    with pytest.raises(SpecError, match=r"component 'margin_finance' is negative in 2000Q4"):
        lev.aggregate_debt(stocks(margin_finance=-1.0), table)


def test_nan_component_propagates_only_where_it_counts(table):
    out = lev.aggregate_debt(stocks(margin_finance=np.nan), table)
    assert np.isnan(out["total_economy"].iloc[0]) and np.isnan(out["non_financial"].iloc[0])
    assert out["financial"].iloc[0] == 165.0


def test_malformed_table_reports_every_problem():
    data = {"components": {
        "loans": {"kind": "included", "description": "loans", "add_to": ["total_economy", "households"]},
        "bonds": {"kind": "included", "description": "bonds", "add_to": ["non_financial"], "part_of": "loans"},
        "x": {"kind": "exclusion", "description": "x", "part_of": "nothing", "subtract_from": ["financial"]},
        "y": {"kind": "exclude", "description": "", "add_to": ["financial"], "colour": "red"},
    }}
    with pytest.raises(SpecError) as e:
        lev.components_from_dict(data, source="t.yaml")
    text = str(e.value)
    assert len(e.value.problems) == 6 and text.startswith("t.yaml: 6 problems")
    for needle in ("'loans': add_to must be a list of total_economy, financial, non_financial, got ['total_economy', "
                   "'households']", "'bonds': an included component needs add_to and no subtract_from or part_of",
                   "'x': part_of must name the included component", "'y': unknown key(s) ['colour']",
                   "'y': expected a one-line 'description'", "'y': kind must be 'included' or 'exclusion'"):
        assert needle in text


def test_exclusion_cannot_be_subtracted_where_its_series_is_not_added(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("components:\n"
                 "  loans: {kind: included, description: l, add_to: [total_economy, non_financial]}\n"
                 "  f: {kind: exclusion, description: f, part_of: loans, subtract_from: [financial]}\n")
    with pytest.raises(SpecError, match=r"t.yaml: component 'f': subtracted from \['financial'\] where its part_of"):
        lev.load_components(p)


def test_table_with_an_empty_aggregate_is_an_error():
    data = {"components": {"loans": {"kind": "included", "description": "l", "add_to": ["total_economy"]}}}
    with pytest.raises(SpecError, match=r"aggregate 'financial': no component.*aggregate 'non_financial'"):
        lev.components_from_dict(data)


def test_module_imports_only_allowed_libraries():
    tree = ast.parse(Path(lev.__file__).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            found.add(mod if mod.startswith("sdmodel.") else ("." if node.level else "") + mod.split(".")[0])
    assert found <= {"__future__", "dataclasses", "numpy", "pandas", "scipy", "yaml", "sdmodel.core.errors",
                     "sdmodel.core.inputs"}, found
