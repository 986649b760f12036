"""The balance-sheet-recession model (models/bsr): accounting, scenarios, outputs, mechanisms.

The stylised facts of the Japan and China evidence (issue 3, done-means 2) are tested on
the scenarios as shipped, and each again with the mechanism that carries it switched off
(done-means 3): the fact must then disappear.
"""

import importlib.util

import numpy as np
import pytest

import sdmodel
from sdmodel import check_accounting, compile_model, load_model, simulate

from .conftest import MODELS_DIR

OUTPUTS = ["hh_debt_gdp", "firm_debt_gdp", "gov_debt_gdp", "total_debt_gdp", "gdp_nominal", "gdp_real",
           "gdp_growth_real", "gdp_growth_nominal", "inflation", "output_gap", "policy_rate", "lending_rate", "land_price",
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
    return float(np.interp(year + at, res.t, res[name]))


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


# --------------------------------------------------------------------------- stylised facts (done-means 2, 3)
# The facts are measured where the calibration penalty measures them, models/bsr/facts.py
# (japan_facts): every experiment behind them in one batch (the scenario, 1-point lending-rate cuts
# from 1984 and 1996, one-year fiscal expansions in 1984 and 1996, no consolidation, the 1997
# consolidation moved to 2006, recapitalisation in 1994), with each switch setting below as one
# candidate: each switch-off repeats them all with one mechanism switched off or neutralised.
SWITCHES = {"on": {}, "dm_off": dict(dm_on=0), "extrap_off": dict(extrap_on=0), "kappa_0": dict(kappa=0),
            "npl_flat": dict(npl1=0), "recap_off": dict(recap_on=0), "no_crowding": dict(tp1=0)}


@pytest.fixture(scope="module")
def measures():
    spec = importlib.util.spec_from_file_location("bsr_facts", MODELS_DIR / "bsr" / "facts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def facts(japan, measures):
    names = sorted({k for sw in SWITCHES.values() for k in sw})
    X = np.array([[sw.get(n, japan.parameters[n].value) for n in names] for sw in SWITCHES.values()])
    f = measures.japan_facts(compile_model(japan), X, names, {**measures.EXPERIMENTS, **measures.RECAP})
    assert f["ok"].all(), dict(zip(SWITCHES, f["ok"]))
    return {sw: {k: float(v[i]) for k, v in f.items()} for i, sw in enumerate(SWITCHES)}


def land_bubble(f):
    return 1989 <= f["land_peak"] < 1993 and f["land_rise"] >= 0.5 and f["land_fall"] >= 0.4


def monetary_impotence(f):
    """Private credit three years after the cut rises at least three times more from 1984 than from 1996."""
    return f["credit_ratio"] >= 3


def fiscal_multipliers(f):
    return f["multiplier96"] > f["multiplier84"]


def npl_peak(f):
    """A peak in 1995-2002 at least one point above the ratio of the late 1980s."""
    return 1995 <= f["npl_peak"] < 2003 and f["npl_rise"] >= 1


def consolidation_1997(f):
    return f["growth98"] < 0 and f["loss97"] > f["loss06"]


def shown(f, *keys):
    return ", ".join(f"{k} {f[k]:.3g}" for k in keys)


def test_japan_land_bubble_and_bust(facts):
    assert land_bubble(facts["on"]), shown(facts["on"], "land_peak", "land_rise", "land_fall")


def test_japan_firm_debt_peaks_1991_1996_and_falls_20_points_at_low_rates(facts):
    f = facts["on"]
    assert 1991 <= f["firm_peak"] < 1997 and f["firm_fall"] >= 20, shown(f, "firm_peak", "firm_fall")
    assert f["rate_while_firms_deleverage"] < 1, shown(f, "rate_while_firms_deleverage")
    assert f["op_profit_min"] > 0, shown(f, "op_profit_min")


def test_japan_monetary_impotence(facts):
    assert monetary_impotence(facts["on"]), shown(facts["on"], "credit_ratio")


def test_japan_fiscal_multiplier_larger_in_1996(facts):
    assert fiscal_multipliers(facts["on"]), shown(facts["on"], "multiplier84", "multiplier96")


def test_japan_1997_consolidation(facts):
    assert consolidation_1997(facts["on"]), shown(facts["on"], "growth98", "loss97", "loss06")


def test_japan_deflation_years(facts):
    assert facts["on"]["deflation_years"] >= 5


def test_japan_npl_ratio_peaks_1995_2002(facts):
    assert npl_peak(facts["on"]), shown(facts["on"], "npl_peak", "npl_rise")


def test_japan_early_recapitalisation_shortens_the_credit_contraction(facts):
    f = facts["on"]
    assert f["contraction_years_recap94"] < f["contraction_years"], shown(f, "contraction_years_recap94", "contraction_years")


def test_the_calibration_penalty_holds_the_low_policy_rate(japan, measures):
    """Where the policy rate blends the BoJ's path with the rule on the model's own state (w_path < 1),
    'firm debt falls at a policy rate below 1%' is not given by the data: a candidate whose rate is
    above it is penalised at least by that fact's hinge (the scenario as shipped, w_path estimated, is not)."""
    cm, X = compile_model(japan), np.array([[japan.parameters["w_path"].value], [0.5]])
    f = measures.japan_facts(cm, X, ["w_path"])
    pen = measures.penalty_of_facts(f)
    assert f["rate_while_firms_deleverage"][0] < 0.9 and f["rate_while_firms_deleverage"][1] > 1
    assert pen[1] >= 20 * (f["rate_while_firms_deleverage"][1] - 0.9)


def test_the_calibration_penalty_holds_the_switch_offs(japan, measures, facts):
    """The penalty runs the two switch-offs a better fit could lose (SWITCH_OFFS: no extrapolation, no
    crowding out), measured as the switch-off tests below measure them, and charges a candidate whose
    bubble survives without extrapolation or whose 1996 multiplier stays larger without crowding out."""
    f = measures.japan_facts(compile_model(japan), [[japan.parameters["tp1"].value]], ["tp1"],
                             {**measures.EXPERIMENTS, **measures.SWITCH_OFFS})
    same = dict(land_rise_noextrap=("extrap_off", "land_rise"), land_fall_noextrap=("extrap_off", "land_fall"),
                multiplier84_nocrowd=("no_crowding", "multiplier84"), multiplier96_nocrowd=("no_crowding", "multiplier96"))
    for mine, (switch, theirs) in same.items():
        assert f[mine][0] == pytest.approx(facts[switch][theirs], rel=1e-9), mine
    on = {k: np.array([v]) for k, v in facts["on"].items()}
    on["ok"] = on["ok"].astype(bool)

    def penalty(**switch_offs):
        return measures.penalty_of_facts({**on, **{k: np.array([v]) for k, v in switch_offs.items()}})[0]

    without = penalty()
    assert penalty(land_rise_noextrap=0.3, land_fall_noextrap=0.5, multiplier84_nocrowd=2.0,
                   multiplier96_nocrowd=1.8) == pytest.approx(without)
    assert penalty(land_rise_noextrap=0.67, land_fall_noextrap=0.42, multiplier84_nocrowd=1.98,
                   multiplier96_nocrowd=2.02) == pytest.approx(without + 50 * 0.07 + 100 * 0.14)


# each fact disappears with the mechanism that carries it (done-means 3)
def test_no_extrapolation_no_land_bubble(facts):
    assert not land_bubble(facts["extrap_off"])


def test_no_debt_minimisation_no_monetary_impotence(facts):
    assert not monetary_impotence(facts["dm_off"])


def test_no_crowding_out_no_larger_fiscal_multiplier(facts):
    assert not fiscal_multipliers(facts["no_crowding"])


def test_no_debt_minimisation_no_costly_1997_consolidation(facts):
    assert not consolidation_1997(facts["dm_off"])


def test_no_phillips_curve_no_deflation(facts):
    assert facts["kappa_0"]["deflation_years"] == 0


def test_no_collateral_driven_defaults_no_npl_peak(facts):
    assert not npl_peak(facts["npl_flat"])


def test_no_recapitalisation_policy_no_recapitalisation_effect(facts):
    f = facts["recap_off"]
    assert f["contraction_years_recap94"] == f["contraction_years"]


def test_china_government_debt_rises_after_2019(china_run):
    assert annual(china_run, "gov_debt_gdp", 2023) > annual(china_run, "gov_debt_gdp", 2019) + 5


def test_china_caps_lower_firm_and_property_borrowing(china, china_run):
    no_caps = china.with_series(prop_cap=0, lg_cap=0)
    free = simulate(no_caps)
    capped = china_run.to_frame()
    # borrowing is the debt itself (firm loans plus vehicle loans), not its ratio to a GDP the caps also lower
    debt = lambda res: float(np.interp(2023.5, res.t, res["Lf"] + res["Ll"]))
    assert debt(china_run) < debt(free)
    assert capped.loc[2021:2024, "land_price"].mean() < free.to_frame().loc[2021:2024, "land_price"].mean()


def test_readme_equations_are_the_models():
    """Every ``name: expression`` line in the README's code blocks is the model file's equation, verbatim."""
    import yaml

    here = MODELS_DIR / "bsr"
    equations = yaml.safe_load((here / "model.yaml").read_text())["equations"]
    blocks = (here / "README.md").read_text().split("```")[1::2]
    lines = [ln for b in blocks for ln in b.splitlines() if ":" in ln]
    assert len(lines) > 50
    stale = [ln for ln in lines if f"{ln.split(':')[0].strip()}: {equations.get(ln.split(':')[0].strip())}" != ln]
    assert not stale
