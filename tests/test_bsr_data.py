"""The economy's data for models/bsr (issue 26): the targets files, their sources and the weight-0 targets.

Reads only the repository (calibration/data, calibration/*.yaml, models/bsr), never the shared data folder:
the copies in calibration/data/sources are checked by their SHA-256 (recorded in calibration/data/SOURCES.md).
"""

import dataclasses
import hashlib
import importlib.util

import numpy as np
import pandas as pd
import pytest

from sdmodel.estimate.calibration import Problem, load_config

from .conftest import ROOT

CAL = ROOT / "calibration" / "data"
SOURCES = {
    "japan_sector_financial_balance_fy_boj.csv": "5611460a71b82532ac5d82f5cb85d6891de3765022ecb4232923d08ebb36b2f3",
    "japan_sector_net_lending_household_saving_annual_ameco.csv": "e7188292776c36ec100f4ae18b41a0694a17a47ba10ef5980cc9be252e75e8d5",  # noqa: E501
    "japan_bank_npl_disposal_fsa.csv": "77279abee346288b1955e8ed6fbb42d0b727d762b4e88fee35b33cb6015c3c05",
    "china_government_debt_by_level_annual.csv": "c6c3eb3268500269917d4cf370c03cd285956373a1c035c9f05dfb40c3fb2c76",
    "imf_weo_JPN_CHN_USA.csv": "d52dded65c31a3983b953ae0cfe250c1675f76e94dbfcb04a286b2bef9fc44de",
    "panel_key_annual_JPN.csv": "72087c66b8b7f447ebaed5e50834ee2d0c16b136396ce1e3926d5faec1982c61",
    "panel_key_annual_CHN.csv": "9a3736bcf34e963f47b7b200d880cf21afd3702b457cfecf19204faf45797f52",
}
#: the targets each config adds for the economy (issue 26): output -> (column, shift)
NEW_TARGETS = {
    "japan": {
        "nl_firms": ("fof_private_nfc_fy", 0.75),
        "nl_households": ("fof_households_fy", 0.75),
        "nl_government": ("fof_government_fy", 0.75),
        "nl_rest_of_world": ("fof_rest_of_world_fy", 0.75),
        "nl_financial": ("fof_financial_fy", 0.75),
        "hh_saving_rate": ("hh_saving_rate_net", 0.5),
        "hh_net_lending": ("nl_households_ameco", 0.5),
        "current_account": ("current_account", 0.5),
        "gov_net_lending": ("gov_net_lending", 0.5),
        "output_gap": ("output_gap", 0.5),
        "deflator_inflation": ("deflator_inflation", 0.5),
        "gdp_nominal": ("gdp_nominal_index", 0.5),
        "npl_ratio": ("npl_ratio", 1.0),
        "npl_gdp": ("npl_stock_pct_fy_gdp", 0.25),
        "npl_disposal_gdp": ("npl_disposal_loss_pct_fy_gdp", 0.75),
        "npl_writeoffs_gdp": ("npl_writeoffs_pct_fy_gdp", 0.75),
    },
    "china": {
        "policy_rate": ("policy_rate", 0.5),
        "current_account": ("current_account", 0.5),
        "gov_net_lending": ("gov_net_lending", 0.5),
        "deflator_inflation": ("deflator_inflation", 0.5),
        "gdp_nominal": ("gdp_nominal_index", 0.5),
        "npl_ratio": ("npl_ratio", 1.0),
        "lgfv_debt_gdp": ("imf_lgfv_debt_gdp", 1.0),
    },
}


def text(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def targets(name):
    return pd.read_csv(CAL / f"{name}_targets.csv", index_col="year")


def years_with_values(df, col):
    return df[col].dropna().index.tolist()


# --------------------------------------------------------------------------- files
@pytest.mark.parametrize("fname, sha", sorted(SOURCES.items()))
def test_source_copies_are_the_recorded_files(fname, sha):
    assert hashlib.sha256((CAL / "sources" / fname).read_bytes()).hexdigest() == sha
    assert sha in (CAL / "SOURCES.md").read_text()


@pytest.mark.parametrize("name, first", [("japan", 1980), ("china", 1995)])
def test_targets_file_starts_with_the_annual_file_cell_for_cell(name, first):
    annual, tgt = text(CAL / f"{name}_annual.csv"), text(CAL / f"{name}_targets.csv")
    assert list(tgt.columns[: len(annual.columns)]) == list(annual.columns)
    pd.testing.assert_frame_equal(tgt[annual.columns], annual)
    assert tgt["year"].tolist() == [str(y) for y in range(first, 2024)]
    raw = (CAL / f"{name}_targets.csv").read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")


def test_targets_files_are_what_make_targets_builds():
    spec = importlib.util.spec_from_file_location("make_targets", CAL / "make_targets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in ("japan", "china"):
        assert mod.build_text(name) == (CAL / f"{name}_targets.csv").read_text(), name
    assert mod.main(["--check"]) == 0


def test_japan_flow_of_funds_columns():
    d = targets("japan")
    fof = [
        "fof_private_nfc_fy",
        "fof_nfc_fy",
        "fof_households_fy",
        "fof_households_excl_npish_fy",
        "fof_government_fy",
        "fof_financial_fy",
        "fof_rest_of_world_fy",
        "gdp_nominal_fy_bn",
    ]
    for c in fof:
        assert years_with_values(d, c) == list(range(1994, 2024)), c
    for c in fof[:-1]:
        assert d[c].abs().max() < 15, c  # % of FY GDP
    # the five top-level sectors (households with NPISHs) sum to zero up to the published rounding (3 decimals)
    total = d[["fof_nfc_fy", "fof_households_fy", "fof_government_fy", "fof_financial_fy", "fof_rest_of_world_fy"]]
    assert total.dropna().sum(axis=1).abs().max() < 0.01
    # Koo's evidence as the BoJ measures it: private firms net savers in 16 of FY1998-2015
    assert (d.loc[1998:2015, "fof_private_nfc_fy"] > 0).sum() == 16
    assert d.loc[1998:2015, "fof_private_nfc_fy"].max() == pytest.approx(7.356)
    assert (d["fof_households_fy"].dropna() > 0).all() and (d["fof_government_fy"].dropna() < 0).all()
    assert (d["fof_rest_of_world_fy"].dropna() < 0).all()  # Japan's surplus in every year
    assert d["gdp_nominal_fy_bn"].dropna().between(4.5e5, 7e5).all()  # billion yen


def test_japan_ameco_columns():
    d = targets("japan")
    for c in ("hh_saving_rate_net", "hh_saving_rate_gross", "nl_households_ameco", "nl_total_economy_ameco"):
        assert years_with_values(d, c) == list(range(1980, 2021)), c
    for c in ("nl_corporations_ameco", "nl_government_ameco_residual"):
        assert years_with_values(d, c) == list(range(1994, 2021)), c
    s = d["hh_saving_rate_net"]
    assert s.dropna().between(-2, 20).all()
    assert s[1980] == pytest.approx(17.9863169) and s.loc[2010:2019].max() < 5  # 18% (1980) to 0-3% (2010s)
    assert (d["hh_saving_rate_gross"].dropna() > s.dropna()).all()
    # net lending of the economy = households + corporations + government (the residual's definition)
    parts = d[["nl_households_ameco", "nl_corporations_ameco", "nl_government_ameco_residual"]].sum(axis=1)
    np.testing.assert_allclose(parts.loc[1994:2020], d.loc[1994:2020, "nl_total_economy_ameco"], atol=0.003)


def test_japan_bad_loan_columns():
    d = targets("japan")
    flows = [1995, 1996, 1997, 1998, 1999, 2003, 2004, 2005, 2022, 2023]
    assert years_with_values(d, "npl_disposal_loss_fy_bn") == flows
    assert years_with_values(d, "npl_disposal_loss_pct_fy_gdp") == flows
    assert years_with_values(d, "npl_writeoffs_pct_fy_gdp") == list(range(1995, 2000))
    stocks = [1996, 1997, 1998, 1999, 2000, 2002, 2003, 2004, 2005, 2006, 2013, 2021, 2022, 2023]
    assert years_with_values(d, "npl_stock_end_march_bn") == years_with_values(d, "npl_stock_pct_fy_gdp") == stocks
    assert d.loc[1998, "npl_disposal_loss_fy_bn"] == 13631 and d.loc[2003, "npl_disposal_loss_fy_bn"] == 5400
    assert d["npl_disposal_loss_pct_fy_gdp"].dropna().between(0.05, 3).all()
    assert d["npl_writeoffs_pct_fy_gdp"].dropna().between(0.5, 1.5).all()
    assert d["npl_stock_pct_fy_gdp"].dropna().between(1, 9).all()
    # the stock at the end of March of year y over the GDP of the fiscal year that ends then (FY y - 1)
    assert d.loc[2002, "npl_stock_pct_fy_gdp"] == pytest.approx(
        100 * 43200 / d.loc[2001, "gdp_nominal_fy_bn"], abs=1e-4
    )
    src = d["npl_stock_source"].dropna()
    assert set(src.loc[:2000]) == {"fsa_risk_management_loans"} and set(src.loc[2002:]) == {"fsa_fra_disclosed"}


@pytest.mark.parametrize("name, base, first", [("japan", 1979, 1980), ("china", 1999, 1995)])
def test_deflator_and_nominal_gdp_columns(name, base, first):
    d = targets(name)
    assert years_with_values(d, "gdp_nominal_index") == list(range(first, 2024))
    # the model's units: base-year GDP = 100, so the index grows as the data's nominal GDP does
    g = 100 * d["gdp_nominal_index"].pct_change().dropna()
    np.testing.assert_allclose(g, d.loc[g.index, "gdp_nominal_growth"], atol=0.01)
    infl = d["deflator_inflation"].dropna()
    assert infl.index[0] == (1981 if name == "japan" else first) and infl.index[-1] == 2023
    assert infl.between(-3, 15).all()


def test_china_government_debt_by_level_columns():
    d = targets("china")
    imf = ["imf_central_gov_debt_gdp", "imf_local_gov_explicit_debt_gdp", "imf_lgfv_debt_gdp", "imf_ggf_scf_debt_gdp"]
    for c in imf + ["imf_gov_debt_weo_gdp", "imf_augmented_debt_gdp"]:
        assert years_with_values(d, c) == [2020, 2021, 2022, 2023], c
    np.testing.assert_allclose(d[imf].sum(axis=1).loc[2020:], d.loc[2020:, "imf_augmented_debt_gdp"], atol=0.11)
    assert years_with_values(d, "local_gov_debt_explicit_pct_gdp") == list(range(2014, 2024))
    assert d["local_gov_debt_explicit_pct_gdp"].dropna().between(15, 35).all()
    # MoF explicit local debt over WDI GDP against the IMF's ratio: within a point (GDP vintages differ)
    diff = d.loc[2020:2023, "local_gov_debt_explicit_pct_gdp"] - d.loc[2020:2023, "imf_local_gov_explicit_debt_gdp"]
    assert diff.abs().max() < 1.0


# --------------------------------------------------------------------------- configs and model
@pytest.fixture(scope="module", params=["japan", "china"])
def problem(request):
    """The shipped config bound to its model and data (bsr compiled once per scenario), run at the shipped values."""
    prob = Problem(load_config(request.param))
    x = [prob.model.parameters[n].value for n in prob.names]
    return request.param, prob, x, prob.simulate(x)


# Japan's economy targets fitted since the issue-26 re-specification: weight 1/sd^2 (sd the median of the
# measurement error's prior), with a measurement model; the rest stay reported only (weight 0, no sd)
FITTED_ECONOMY = {"japan": {"nl_firms", "nl_households", "nl_government", "hh_saving_rate", "current_account"},
                  "china": {"gdp_nominal", "lgfv_debt_gdp"}}  # China (bsr_china): the size of the economy, the vehicles


def test_new_targets_are_reported_or_fitted_with_a_measurement_model(problem):
    name, prob, _, _ = problem
    cfg = prob.config
    assert cfg.data.name == f"{name}_targets.csv"
    by = {t.name: t for t in cfg.targets}
    for out, (col, shift) in NEW_TARGETS[name].items():
        t = by[out]
        assert (t.column, t.shift) == (col, shift), out
        if out in FITTED_ECONOMY[name]:
            assert t.sd is not None and t.ar1 is not None, out
            if isinstance(t.sd, float):  # given (Japan: the median of the range its source documents, in a comment)
                sd, ar1 = t.sd, t.ar1
                assert sd > 0 and isinstance(ar1, float) and 0 <= ar1 < 0.95, out
            else:  # estimated: a lognormal prior with its source, whose scale is its median
                assert t.sd.source and t.sd.dist == "lognorm", out
                sd = dict(t.sd.args)["scale"]
            assert t.weight == pytest.approx(1 / sd**2, rel=0.01), out
        else:
            assert (t.weight, t.sd, t.ar1) == (0.0, None, 0.0), out
        assert out in prob.cm.output_names and col in prob.data.columns
        assert t.log == (out == "gdp_nominal")


def test_every_target_resolves_and_the_model_runs(problem):
    name, prob, _, paths = problem
    assert paths["ok"][0]
    for t in prob.config.targets:
        years, y = prob.obs[t.name]
        assert len(years) >= 4, t.name  # data inside the run
        assert np.isfinite(paths[t.name][0]).all() and np.isfinite(prob.errors(paths, t)[0]).all(), t.name


def test_weight_zero_targets_leave_the_fit_unchanged(problem):
    """The loss's residuals are bit-identical with and without the reported targets."""
    _, prob, x, _ = problem
    cfg = prob.config
    fitted_only = dataclasses.replace(cfg, targets=tuple(t for t in cfg.targets if t.fitted))
    other = Problem(fitted_only, model=prob.model)
    np.testing.assert_array_equal(prob.residuals(np.array([x]), cfg.window), other.residuals(np.array([x]), cfg.window))


def test_reporting_outputs_follow_their_definitions(problem):
    name, prob, x, _ = problem
    from sdmodel import simulate

    res = simulate(prob.model)
    df = res.to_frame()
    np.testing.assert_allclose(df["current_account"], -df["nl_rest_of_world"], atol=1e-9)
    np.testing.assert_allclose(df["hh_net_lending"], df["nl_households"], atol=0)
    np.testing.assert_allclose(df["gov_net_lending"], df["nl_government"], atol=0)
    np.testing.assert_allclose(df["nl_financial"], df["nl_banks"] + df["nl_central_bank"], rtol=1e-12)
    np.testing.assert_allclose(df["deflator_inflation"], df["inflation"], atol=0)
    # the sector balances the configs compare with the flow of funds still sum to zero with the financial sector
    nl = df[["nl_households", "nl_firms", "nl_government", "nl_rest_of_world", "nl_financial"]].sum(axis=1)
    assert nl.abs().max() < 1e-8
    assert df["hh_saving_rate"].between(-50, 80).all() and (df["npl_gdp"] > 0).all()
    assert (df["npl_writeoffs_gdp"] >= 0).all()
