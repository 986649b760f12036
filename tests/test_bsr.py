"""The balance-sheet-recession model (models/bsr): accounting, scenarios, outputs, mechanisms.

The stylised facts of the Japan and China evidence (issue 3, done-means 2) are tested on
the scenarios as shipped, and each again with the mechanism that carries it switched off
(done-means 3): the fact must then disappear.
"""

import numpy as np
import pytest

import sdmodel
from sdmodel import check_accounting, compile_model, load_model, simulate

from .conftest import MODELS_DIR

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
# Every experiment behind the Japan facts, run in one batch: the scenario, a 1-point lending-rate
# cut for three years from 1984 and from 1996, a one-year fiscal expansion of 1% of potential
# output in 1984 and in 1996, no consolidation, the 1997 consolidation moved to 2006, and bank
# recapitalisation early (1994) instead of 1998.  Each switch-off repeats them all with one
# mechanism switched off or neutralised.
EXPERIMENTS = {
    "base": {},
    "rate84": dict(rate_shock=0.01, shock_start=1984.0, shock_len=3),
    "rate96": dict(rate_shock=0.01, shock_start=1996.0, shock_len=3),
    "fisc84": dict(g_shock=0.01, g_shock_start=1984.0, g_shock_len=1),
    "fisc96": dict(g_shock=0.01, g_shock_start=1996.0, g_shock_len=1),
    "nocons": dict(cons_start=1e9),
    "cons06": dict(cons_start=2006.25),
    "recap94": dict(t_recap=1994.0),
}
SWITCHES = {"on": {}, "dm_off": dict(dm_on=0), "extrap_off": dict(extrap_on=0), "kappa_0": dict(kappa=0),
            "npl_flat": dict(npl1=0), "recap_off": dict(recap_on=0), "no_crowding": dict(tp1=0)}


class Facts:
    """The stylised-fact measures of one switch setting, from the batch."""

    def __init__(self, batch, rows):
        self.b, self.rows, self.t = batch, rows, batch.t

    def path(self, exp, name):
        return self.b[name][self.rows[exp]]

    def at(self, exp, name, when):
        return float(np.interp(when, self.t, self.path(exp, name)))

    def peak(self, name, a, b, exp="base"):
        sel = (self.t >= a) & (self.t <= b)
        v = np.where(sel, self.path(exp, name), -np.inf)
        return float(self.t[np.argmax(v)]), float(v.max())

    def credit_response(self, exp, start):
        """Private credit (firm + household loans) three years after the cut, relative to the scenario."""
        credit = lambda e: self.path(e, "Lf") + self.path(e, "Lh")
        i = int(np.searchsorted(self.t, start + 3.0))
        return credit(exp)[i] / credit("base")[i] - 1

    def multiplier(self, exp, start):
        """Extra real GDP over three years per unit of extra real government purchases (one year)."""
        s3, s1 = (self.t >= start) & (self.t < start + 3), (self.t >= start) & (self.t < start + 1)
        dy = (self.path(exp, "gdp_real") - self.path("base", "gdp_real"))[s3].sum()
        return dy / (0.01 * self.path(exp, "Yp")[s1]).sum()

    def output_loss(self, exp, start):
        """Real GDP lost against no consolidation, summed over the ten years from the start (% of a year's GDP)."""
        s = (self.t >= start) & (self.t < start + 10)
        ref = self.path("nocons", "gdp_real")
        return float(((ref - self.path(exp, "gdp_real")) / ref)[s].mean() * 10 * 100)

    def contraction_years(self, exp):
        """Years 1990-2015 in which new private credit was negative: firm and household loans fell by
        more than the write-offs (``pb_rate``; write-offs shrink loans without anyone repaying)."""
        pb = self.path(exp, "pb_rate")
        return sum(float(pb[(self.t >= y) & (self.t < y + 1)].mean()) < 0 for y in range(1990, 2016))


@pytest.fixture(scope="module")
def facts(japan):
    runs = [(sw, ex, {**SWITCHES[sw], **EXPERIMENTS[ex]}) for sw in SWITCHES for ex in EXPERIMENTS]
    names = sorted({k for _, _, p in runs for k in p})
    X = np.array([[p.get(n, japan.parameters[n].value) for n in names] for _, _, p in runs])
    batch = sdmodel.simulate_batch(compile_model(japan), X, names,
                                   t_eval=np.arange(japan.time.start, japan.time.stop + 1e-9, japan.time.dt))
    assert batch.success.all(), [m for m in batch.messages if m != "completed"]
    rows = {sw: {} for sw in SWITCHES}
    for i, (sw, ex, _) in enumerate(runs):
        rows[sw][ex] = i
    return {sw: Facts(batch, rows[sw]) for sw in SWITCHES}


def land_bubble(f):
    t_peak, peak = f.peak("land_price", 1985, 2004)
    rise = peak / f.at("base", "land_price", 1985.5) - 1
    fall = 1 - f.at("base", "land_price", 2003.5) / peak
    return 1989 <= t_peak < 1993 and rise >= 0.5 and fall >= 0.4, (t_peak, rise, fall)


def monetary_impotence(f):
    r84, r96 = f.credit_response("rate84", 1984.0), f.credit_response("rate96", 1996.0)
    return r84 > 0 and r84 >= 3 * r96, (r84, r96)


def fiscal_multipliers(f):
    m84, m96 = f.multiplier("fisc84", 1984.0), f.multiplier("fisc96", 1996.0)
    return m96 > m84, (m84, m96)


def npl_peak(f):
    """A peak in 1995-2002 at least one point above the ratio of the late 1980s."""
    t_peak, peak = f.peak("npl_ratio", 1985, 2015)
    before = f.path("base", "npl_ratio")[(f.t >= 1985) & (f.t < 1990)].mean()
    return 1995 <= t_peak < 2003 and peak - before >= 1, (t_peak, peak - before)


def consolidation_1997(f):
    growth98 = f.at("base", "gdp_growth_real", 1998.5)
    loss97, loss06 = f.output_loss("base", 1997.25), f.output_loss("cons06", 2006.25)
    return growth98 < 0 and loss97 > loss06, (growth98, loss97, loss06)


def test_japan_land_bubble_and_bust(facts):
    ok, (t_peak, rise, fall) = land_bubble(facts["on"])
    assert ok, f"peak {t_peak:.2f}, rise from 1985 {rise:.0%}, fall from the peak by 2003 {fall:.0%}"


def test_japan_firm_debt_peaks_1991_1996_and_falls_20_points_at_low_rates(facts):
    f = facts["on"]
    t_peak, peak = f.peak("firm_debt_gdp", 1985, 2006)
    assert 1991 <= t_peak < 1997
    assert peak - f.at("base", "firm_debt_gdp", 2006.0) >= 20
    fall = (f.t >= max(t_peak, 1996.0)) & (f.t <= 2006.0)
    assert (f.path("base", "policy_rate")[fall] < 1).all()
    assert (f.path("base", "op_profit")[(f.t >= 1991) & (f.t <= 2006)] > 0).all()


def test_japan_monetary_impotence(facts):
    ok, (r84, r96) = monetary_impotence(facts["on"])
    assert ok, f"credit response to a 1-point cut: 1984 {r84:.2%}, 1996 {r96:.2%}"


def test_japan_fiscal_multiplier_larger_in_1996(facts):
    ok, (m84, m96) = fiscal_multipliers(facts["on"])
    assert ok, f"multiplier 1984 {m84:.2f}, 1996 {m96:.2f}"


def test_japan_1997_consolidation(facts):
    ok, (growth98, loss97, loss06) = consolidation_1997(facts["on"])
    assert ok, f"real growth 1998 {growth98:.2f}%, output loss 1997-2006 {loss97:.1f}, 2006-2015 {loss06:.1f}"


def test_japan_deflation_years(facts):
    years = [y for y in range(1995, 2013) if facts["on"].at("base", "inflation", y + 0.5) < 0]
    assert len(years) >= 5


def test_japan_npl_ratio_peaks_1995_2002(facts):
    ok, (t_peak, rise) = npl_peak(facts["on"])
    assert ok, f"peak {t_peak:.2f}, {rise:.2f} points above 1985-89"


def test_japan_early_recapitalisation_shortens_the_credit_contraction(facts):
    f = facts["on"]
    assert f.contraction_years("recap94") < f.contraction_years("base")


# each fact disappears with the mechanism that carries it (done-means 3)
def test_no_extrapolation_no_land_bubble(facts):
    assert not land_bubble(facts["extrap_off"])[0]


def test_no_debt_minimisation_no_monetary_impotence(facts):
    assert not monetary_impotence(facts["dm_off"])[0]


def test_no_crowding_out_no_larger_fiscal_multiplier(facts):
    assert not fiscal_multipliers(facts["no_crowding"])[0]


def test_no_debt_minimisation_no_costly_1997_consolidation(facts):
    assert not consolidation_1997(facts["dm_off"])[0]


def test_no_phillips_curve_no_deflation(facts):
    assert all(facts["kappa_0"].at("base", "inflation", y + 0.5) >= 0 for y in range(1995, 2013))


def test_no_collateral_driven_defaults_no_npl_peak(facts):
    assert not npl_peak(facts["npl_flat"])[0]


def test_no_recapitalisation_policy_no_recapitalisation_effect(facts):
    f = facts["recap_off"]
    assert f.contraction_years("recap94") == f.contraction_years("base")


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
