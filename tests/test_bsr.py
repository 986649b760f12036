"""The balance-sheet-recession model (models/bsr): accounting, scenarios, outputs, mechanisms.

Stylised facts of the Japan and China evidence (issue 3, done-means 2 and 3) that the
current, uncalibrated parameter values do not yet reproduce are marked as strict xfails
with the reason: they fail the suite the moment they start to pass, so this file always
says which facts the model shows.
"""

import numpy as np
import pytest

import sdmodel
from sdmodel import check_accounting, compile_model, load_model, simulate

OUTPUTS = ["hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp", "total_debt_gdp", "gdp_nominal", "gdp_real",
           "gdp_growth_real", "inflation", "output_gap", "policy_rate", "lending_rate", "land_price",
           "npl_ratio", "bank_capital_ratio"]
NL = ["nl_households", "nl_firms", "nl_banks", "nl_government", "nl_central_bank", "nl_rest_of_world"]
NW = ["NWh", "NWf", "NWb", "NWg", "NWcb", "NWrow"]


@pytest.fixture(scope="module")
def japan():
    return load_model("bsr", scenario="japan")


@pytest.fixture(scope="module")
def china():
    return load_model("bsr", scenario="china")


@pytest.fixture(scope="module")
def japan_run(japan):
    return simulate(japan)


@pytest.fixture(scope="module")
def china_run(china):
    return simulate(china)


def annual(res, name, year, at=0.5):
    df = res.to_frame()
    return float(np.interp(year + at, df.index.to_numpy(), df[name].to_numpy()))


# --------------------------------------------------------------------------- accounting (done-means 1)
def test_every_row_and_column_is_proven():
    rep = check_accounting(load_model("bsr"))
    assert rep.ok
    assert {c.status for c in rep.checks} == {"proven"}
    # the banks' column is Godley's redundant equation: nothing left to determine, proven anyway
    assert any(c.kind == "column" and c.name == "banks" and "determines" not in c.note for c in rep.checks)


@pytest.mark.parametrize("scen", ["japan", "china"])
def test_scenario_runs_are_stock_flow_consistent(scen, japan_run, china_run):
    res = {"japan": japan_run, "china": china_run}[scen]
    assert res.success
    assert res.max_residual < 1e-9
    df = res.to_frame()
    # sectoral net lendings sum to zero at every step
    assert np.abs(df[NL].sum(axis=1)).max() < 1e-9 * df[NL].abs().to_numpy().max()
    # net worths sum to the real assets (land and fixed capital)
    real = df["pL"] * load_model("bsr", scenario=scen).parameters["Nbar"].value + df["P"] * df["Kr"]
    np.testing.assert_allclose(df[NW].sum(axis=1), real, rtol=1e-10)


@pytest.mark.parametrize("scen", ["japan", "china"])
def test_every_run_has_the_named_outputs(scen, japan_run, china_run):
    res = {"japan": japan_run, "china": china_run}[scen]
    missing = [n for n in OUTPUTS + NL if n not in res.names]
    assert not missing
    df = res.to_frame()
    start = df.index[0]
    # ratios are in percent: the starting debt ratios are the data's, not fractions
    assert 30 < df.loc[start, "firm_debt_gdp"] < 200 and 1 < df.loc[start, "policy_rate"] < 10


def test_scenario_overrides_only_declared_names(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  no_such_parameter: 1\nseries:\n  rate_path: {data: {0: 0.01}}\nfoo: 1\n")
    with pytest.raises(sdmodel.SpecError) as err:
        load_model("bsr", scenario=bad)
    msg = str(err.value)
    assert "no_such_parameter" in msg and "foo" in msg and "bad.yaml" in msg and "line 2" in msg


def test_unknown_scenario_names_the_choices():
    with pytest.raises(sdmodel.SpecError, match="scenarios: china, japan"):
        load_model("bsr", scenario="atlantis")


def test_history_is_attached_for_the_figure(japan):
    h = japan.history["firm_debt_gdp"]
    assert h(1991.0) == pytest.approx(139.3)   # BIS Q4 1990, plotted at the end of 1990
    assert set(japan.history) >= {"hh_debt_gdp", "gov_debt_gdp", "total_debt_gdp", "land_price"}


# --------------------------------------------------------------------------- mechanisms can be switched off
@pytest.mark.parametrize("switch", ["dm_on", "extrap_on", "recap_on"])
def test_each_mechanism_switch_changes_the_japan_run(japan, japan_run, switch):
    off = simulate(japan.with_params({switch: 0}))
    assert off.success
    a, b = japan_run.to_frame(), off.to_frame()
    assert np.abs(a["firm_debt_gdp"] - b["firm_debt_gdp"]).max() > 1e-3 or \
        np.abs(a["bank_capital_ratio"] - b["bank_capital_ratio"]).max() > 1e-3


def test_consolidation_start_moves_results_continuously(japan):
    """Policy timing is a parameter: outcomes move smoothly with it (no step-size noise in Sobol indices)."""
    cm = compile_model(japan)
    starts = np.linspace(1997.0, 1997.5, 6)
    X = np.column_stack([starts])
    batch = sdmodel.simulate_batch(cm, X, ["cons_start"])
    v = batch.values[:, -1, list(batch.names).index("gov_debt_gdp")]
    d = np.diff(v)
    assert np.all(np.isfinite(v)) and np.all(np.abs(d) > 0)
    assert np.max(np.abs(np.diff(d))) < 0.5 * np.max(np.abs(d))   # no jumps between neighbouring starts


# --------------------------------------------------------------------------- stylised facts (done-means 2)
def test_japan_land_bubble_rises_from_1985(japan_run):
    rise = annual(japan_run, "land_price", 1990) / annual(japan_run, "land_price", 1985) - 1
    assert rise >= 0.5


@pytest.mark.xfail(strict=True, reason="uncalibrated: the model's land bust (-35% by 1992) rebounds after 1994 "
                   "instead of falling 40% from the peak by 2003; calibration is issue 4")
def test_japan_land_bust_by_2003(japan_run):
    df = japan_run.to_frame().loc[1985:2004]
    peak_t = df["land_price"].idxmax()
    assert 1989 <= peak_t <= 1992.99
    assert annual(japan_run, "land_price", 2003) <= 0.6 * df["land_price"].max()


@pytest.mark.xfail(strict=True, reason="uncalibrated: the firms' debt-minimisation switch never engages (debt / "
                   "collateral stays below dm_threshold), so firm debt/GDP peaks in 1990, not 1991-96")
def test_japan_firm_debt_peaks_1991_1996_and_falls_20_points(japan_run):
    df = japan_run.to_frame().loc[1985:2006]
    peak_t = df["firm_debt_gdp"].idxmax()
    assert 1991 <= peak_t <= 1996.99
    assert df["firm_debt_gdp"].max() - annual(japan_run, "firm_debt_gdp", 2005) >= 20
    assert (df.loc[1995:2005, "op_profit"] > 0).all()


def test_japan_deflation_years(japan_run):
    years = [y for y in range(1995, 2013) if annual(japan_run, "inflation", y) < 0]
    assert len(years) >= 5


def test_china_government_debt_rises_after_2019(china_run):
    assert annual(china_run, "gov_debt_gdp", 2023) > annual(china_run, "gov_debt_gdp", 2019) + 5


def test_china_caps_lower_firm_and_property_borrowing(china, china_run):
    no_caps = china.with_series(prop_cap=0, lg_cap=0)
    free = simulate(no_caps)
    capped = china_run.to_frame()
    assert annual(china_run, "firm_debt_gdp", 2023) < float(np.interp(2023.5, free.t, free["firm_debt_gdp"]))
    assert capped.loc[2021:2024, "land_price"].mean() < free.to_frame().loc[2021:2024, "land_price"].mean()
