"""The stylised facts of Japan's balance-sheet recession: measures, and penalties for calibration.

Issue 26: ``calibration/japan.yaml`` no longer uses :func:`japan_penalty` (no fact penalties in the
objective: the facts must come out of the estimated model); :func:`japan_facts` measures them for the
tests and ``japan_fact_checks`` for ``sdmodel estimate``.  The penalty is kept for experiments.

``sdmodel calibrate japan`` (config ``calibration/japan.yaml``, key ``penalty``) adds
:func:`japan_penalty` to the data fit, so that a better fit to the debt paths cannot be
bought by losing the facts the model exists to explain (DESIGN.md; the tests in
``tests/test_bsr.py`` check each fact and its switch-off).  Each penalty is a hinge: zero
while the fact holds with a small margin, growing linearly as the run misses it.

Every candidate costs eleven runs in one ``simulate_batch`` call: the scenario, six
experiments, and four runs of two switch-offs (:data:`SWITCH_OFFS`):

===========  ==========================================================================
base         the scenario as it is
rate84/96    a 1-point lower lending rate for three years from 1984 / 1996
fisc84/96    one year of extra government spending, 1% of potential output, 1984 / 1996
nocons       no 1997 consolidation (the counterfactual of the output-loss fact)
cons06       the same consolidation started in 2006
recap94      (``RECAP``, the tests only) bank recapitalisation in 1994 instead of 1998
noextrap     no extrapolation of land-price gains (``extrap_on`` = 0): the bubble must go
nocrowd      no crowding out (``tp1`` = 0), alone and with the 1984 and 1996 expansions
(84/96)      (the 1996 multiplier must no longer be the larger)
===========  ==========================================================================

:func:`japan_facts` is the one place the facts are measured: the penalty reads it, and so do
the tests of the facts and their switch-offs (``tests/test_bsr.py``), with the switch settings
as candidates.
"""

from __future__ import annotations

import numpy as np

import sdmodel

#: each experiment's parameter changes; a parameter an experiment does not name keeps the
#: candidate's value (or the scenario's)
EXPERIMENTS = {
    "base": {},
    "rate84": dict(rate_shock=0.01, shock_start=1984.0, shock_len=3),
    "rate96": dict(rate_shock=0.01, shock_start=1996.0, shock_len=3),
    "fisc84": dict(g_shock=0.01, g_shock_start=1984.0, g_shock_len=1),
    "fisc96": dict(g_shock=0.01, g_shock_start=1996.0, g_shock_len=1),
    "nocons": dict(cons_start=1e9),
    "cons06": dict(cons_start=2006.25),
}
#: the early-recapitalisation experiment: measured by the tests, not penalised (an eighth run per
#: candidate would slow the calibration by a seventh)
RECAP = {"recap94": dict(t_recap=1994.0)}
#: the switch-offs the penalty also runs (four more runs per candidate): the land bubble must
#: disappear without extrapolation, and the larger 1996 multiplier without crowding out, as the
#: tests of the switch-offs ask (tests/test_bsr.py); else a better fit could move a fact onto
#: another mechanism
SWITCH_OFFS = {
    "noextrap": dict(extrap_on=0),
    "nocrowd": dict(tp1=0),
    "nocrowd84": dict(tp1=0, g_shock=0.01, g_shock_start=1984.0, g_shock_len=1),
    "nocrowd96": dict(tp1=0, g_shock=0.01, g_shock_start=1996.0, g_shock_len=1),
}
STEP = 0.25  # saved grid of the experiments (years)


def _hinge(x):
    return np.maximum(0.0, x)


def _outside(x, a, b):
    return _hinge(a - x) + _hinge(x - b)


def japan_facts(cm, X, names, experiments=EXPERIMENTS) -> dict[str, np.ndarray]:
    """The stylised-fact measures of every candidate (rows of ``X``), each an array (B,).

    ``cm`` is the compiled Japan scenario, ``X`` the candidates' values of the
    parameters ``names``, ``experiments`` :data:`EXPERIMENTS`, with :data:`RECAP` added
    for the recapitalisation measures.  Failed runs give NaN measures and ``ok`` False.
    """
    X = np.atleast_2d(np.asarray(X, float))
    n, names = len(X), list(names)
    t = np.arange(cm.model.time.start, cm.model.time.stop + 1e-9, STEP)
    extra = sorted({p for e in experiments.values() for p in e} - set(names))
    base = np.column_stack([X] + [np.full(n, cm.model.parameters[p].value) for p in extra])
    cols = {p: j for j, p in enumerate(names + extra)}
    rows = []
    for changes in experiments.values():
        Xe = base.copy()
        for p, v in changes.items():
            Xe[:, cols[p]] = v
        rows.append(Xe)
    res = sdmodel.simulate_batch(cm, np.vstack(rows), names + extra, saveat=sdmodel.SaveAt(t_eval=t), throw=False)
    k = len(experiments)
    ok = res.success.reshape(k, n).all(axis=0)
    exp = {name: j for j, name in enumerate(experiments)}

    def path(name, e="base"):
        return res[name].reshape(k, n, -1)[exp[e]]

    def at(name, when, e="base"):
        return path(name, e)[:, np.searchsorted(t, np.asarray(when) - 1e-9)]

    def peak(name, a, b, e="base"):
        v = np.where(((t >= a) & (t <= b))[None, :], path(name, e), -np.inf)
        return t[np.argmax(v, axis=1)], v.max(axis=1)

    land_t, land_max = peak("land_price", 1985, 2004)
    firm_t, firm_max = peak("firm_debt_gdp", 1985, 2006)
    npl_t, npl_max = peak("npl_ratio", 1985, 2015)

    def credit(e):
        return path("Lf", e) + path("Lh", e)

    i87, i99 = np.searchsorted(t, 1987.0), np.searchsorted(t, 1999.0)
    c84 = credit("rate84")[:, i87] / credit("base")[:, i87] - 1
    c96 = credit("rate96")[:, i99] / credit("base")[:, i99] - 1
    ratio = np.where(c84 <= 0, 0, np.minimum(np.where(c96 > 1e-9, c84 / np.maximum(c96, 1e-9), 10), 10))
    yr = {e: path("gdp_real", e) for e in experiments}

    def multiplier(e, start, base="base", years=3):
        # output gained over `years` per unit of the impulse (1% of potential output for one year)
        s3, s1 = (t >= start) & (t < start + years), (t >= start) & (t < start + 1)
        return (yr[e] - yr[base])[:, s3].sum(axis=1) / (0.01 * path("Yp", base)[:, s1]).sum(axis=1)

    def loss(e, start):
        s = (t >= start) & (t < start + 10)
        return ((yr["nocons"] - yr[e]) / yr["nocons"])[:, s].mean(axis=1) * 1000

    def contraction_years(e):
        # years 1990-2015 in which new private credit was negative: firm and household loans fell by
        # more than the write-offs (pb_rate; write-offs shrink loans without anyone repaying)
        pb = path("pb_rate", e)
        return sum((pb[:, (t >= y) & (t < y + 1)].mean(axis=1) < 0).astype(int) for y in range(1990, 2016))

    wf = path("wf")
    # the policy rate while firm debt falls: from its peak (1996 at the earliest) to 2006
    falling = (t[None, :] >= np.maximum(firm_t, 1996.0)[:, None]) & (t[None, :] <= 2006.0)
    out = dict(
        land_peak=land_t, land_rise=land_max / at("land_price", 1985.5) - 1,
        land_fall=1 - at("land_price", 2003.5) / land_max,
        firm_peak=firm_t, firm_fall=firm_max - at("firm_debt_gdp", 2006.0),
        rate_while_firms_deleverage=np.where(falling, path("policy_rate"), -np.inf).max(axis=1),
        op_profit_min=path("op_profit")[:, (t >= 1991) & (t <= 2006)].min(axis=1),
        credit_ratio=ratio, multiplier84=multiplier("fisc84", 1984.0), multiplier96=multiplier("fisc96", 1996.0),
        # issue 26: the 10-year cumulative output effect of the one-year impulse, the model's multiplier
        multiplier84_10y=multiplier("fisc84", 1984.0, years=10), multiplier96_10y=multiplier("fisc96", 1996.0, years=10),
        loss97=loss("base", 1997.25), loss06=loss("cons06", 2006.25), growth98=at("gdp_growth_real", 1998.5),
        npl_peak=npl_t, npl_rise=npl_max - path("npl_ratio")[:, (t >= 1985) & (t < 1990)].mean(axis=1),
        deflation_years=(at("inflation", np.arange(1995, 2013) + 0.5) < 0).sum(axis=1),
        wf_1995_2003=wf[:, (t >= 1995) & (t <= 2003)].mean(axis=1),
        wf_2010s=wf[:, (t >= 2010) & (t <= 2019)].mean(axis=1),
        # Koo's central evidence (BoJ flow of funds): firms were net savers in 16 of the 18 fiscal years 1998-2015
        firm_surplus_years=sum((path("nl_firms")[:, (t >= y + 0.25) & (t < y + 1.25)].mean(axis=1) > 0).astype(int)
                               for y in range(1998, 2016)),
    )
    if "noextrap" in experiments:
        ne_max = peak("land_price", 1985, 2004, "noextrap")[1]
        out.update(land_rise_noextrap=ne_max / at("land_price", 1985.5, "noextrap") - 1,
                   land_fall_noextrap=1 - at("land_price", 2003.5, "noextrap") / ne_max)
    if "nocrowd" in experiments:
        out.update(multiplier84_nocrowd=multiplier("nocrowd84", 1984.0, "nocrowd"),
                   multiplier96_nocrowd=multiplier("nocrowd96", 1996.0, "nocrowd"))
    if "recap94" in experiments:
        out.update(contraction_years=contraction_years("base"), contraction_years_recap94=contraction_years("recap94"))
    out = {k: np.where(ok, v, np.nan) for k, v in out.items()}
    out["ok"] = ok
    return out


def japan_penalty(cm, X, names) -> np.ndarray:
    """Hinge penalties (B,) for the stylised facts a candidate misses; ``inf`` where a run fails.

    The margins (e.g. +60% land rise where the test asks +50%) keep the calibrated
    economy a little inside each fact, so that rounding the parameters cannot lose it.
    ``wf_2010s`` (firms' debt-minimisation state in 2010-19) is measured but not penalised:
    Japanese firms stayed net savers through the 2010s (Koo's debt trauma), so no fact
    says they must have stopped minimising debt by then.
    """
    with np.errstate(invalid="ignore", divide="ignore"):   # failed runs: NaN measures, inf penalty below
        return penalty_of_facts(japan_facts(cm, X, names, {**EXPERIMENTS, **SWITCH_OFFS}))


def penalty_of_facts(f) -> np.ndarray:
    """The hinge penalties (B,) of measures already taken by :func:`japan_facts`."""
    p = (10 * _outside(f["firm_peak"], 1991.5, 1996) + 2 * _hinge(25 - f["firm_fall"])
         + 50 * _hinge(0.6 - f["land_rise"]) + 50 * _hinge(0.45 - f["land_fall"])
         + 10 * _outside(f["land_peak"], 1989, 1992) + 10 * _hinge(4 - f["credit_ratio"])
         + 5 * _outside(f["npl_peak"], 1995, 2002) + 5 * _hinge(1.3 - f["npl_rise"]) + 20 * _hinge(0.5 - f["wf_1995_2003"])
         + 100 * _hinge(f["multiplier84"] - f["multiplier96"] + 0.2)
         + 2 * _hinge(f["loss06"] - f["loss97"] + 2) + 5 * _hinge(f["growth98"] + 0.5)
         + 20 * _hinge(0.5 - f["op_profit_min"]) + 5 * _hinge(6 - f["deflation_years"])
         + 20 * _hinge(f["rate_while_firms_deleverage"] - 0.9))
    if "land_rise_noextrap" in f:   # the switch-offs, where they were measured (SWITCH_OFFS)
        p = p + (50 * np.minimum(_hinge(f["land_rise_noextrap"] - 0.45), _hinge(f["land_fall_noextrap"] - 0.35))
                 + 100 * _hinge(f["multiplier96_nocrowd"] - f["multiplier84_nocrowd"] + 0.1))
    return np.where(f["ok"] & np.isfinite(p), p, np.inf)


#: The stylised facts an estimation reports the robustness of (``facts:`` in calibration/japan.yaml):
#: name -> (what it says, the test on the measures of :func:`japan_facts`). The thresholds are those of
#: tests/test_bsr.py; none of them is penalised by ``sdmodel estimate``.
JAPAN_FACTS = {
    "land bubble": ("land prices peak in 1989-92, rise >= 50% from 1985 and fall >= 40% by 2003",
                    lambda f: (f["land_peak"] >= 1989) & (f["land_peak"] < 1993) & (f["land_rise"] >= 0.5)
                    & (f["land_fall"] >= 0.4)),
    "firm debt peaks and falls": ("firm debt/GDP peaks in 1991-96 and falls >= 20 points by 2006",
                                  lambda f: (f["firm_peak"] >= 1991) & (f["firm_peak"] < 1997) & (f["firm_fall"] >= 20)),
    "deleveraging at low rates": ("the policy rate stays below 1% while firm debt falls (to 2006)",
                                  lambda f: f["rate_while_firms_deleverage"] < 1),
    "firms profitable": ("operating profits stay positive in 1991-2006 (firms repay out of cash flow)",
                         lambda f: f["op_profit_min"] > 0),
    "firms net savers": ("firms are net lenders in >= 12 of the fiscal years 1998-2015 (data: 16 of 18)",
                         lambda f: f["firm_surplus_years"] >= 12),
    "monetary impotence": ("a 1-point rate cut raises private credit >= 3 times more from 1984 than from 1996",
                           lambda f: f["credit_ratio"] >= 3),
    "larger multiplier in 1996": ("a one-year fiscal expansion raises output more in 1996 than in 1984",
                                  lambda f: f["multiplier96"] > f["multiplier84"]),
    "costly 1997 consolidation": ("growth in 1998 < 0 and the 1997 consolidation costs more than one in 2006",
                                  lambda f: (f["growth98"] < 0) & (f["loss97"] > f["loss06"])),
    "deflation": ("inflation below zero in >= 5 of the years 1995-2012", lambda f: f["deflation_years"] >= 5),
    "NPL peak": ("the NPL ratio peaks in 1995-2002, >= 1 point above the late 1980s",
                 lambda f: (f["npl_peak"] >= 1995) & (f["npl_peak"] < 2003) & (f["npl_rise"] >= 1)),
    "early recapitalisation helps": ("recapitalising in 1994 shortens the credit contraction",
                                     lambda f: f["contraction_years_recap94"] < f["contraction_years"]),
}


def japan_fact_checks(cm, X, names) -> dict[str, np.ndarray]:
    """Whether each candidate (rows of ``X``) keeps each fact of :data:`JAPAN_FACTS` (bool arrays (B,));
    a failed run keeps none."""
    with np.errstate(invalid="ignore", divide="ignore"):
        f = japan_facts(cm, X, names, {**EXPERIMENTS, **RECAP})
        return {name: np.asarray(test(f), bool) & f["ok"] for name, (_, test) in JAPAN_FACTS.items()}


#: China's facts an estimation reports the robustness of (``facts:`` in calibration/china.yaml): name -> (what it
#: says, the test on the measures of :func:`china_measures`). The thresholds are the data's, rounded
#: against the model (calibration/data/SOURCES.md: BIS credit, IMF/NBS growth and CPI).
CHINA_FACTS = {
    "credit boom after 2008": ("firm debt/GDP rises >= 30 points from 2008 to 2016 (data: about +65)",
                               lambda f: f["firm_rise_08_16"] >= 30),
    "deleveraging campaign": ("firm debt/GDP does not rise by more than 2 points from 2016 to 2019 (data: -5)",
                              lambda f: f["firm_change_16_19"] <= 2),
    "government levers up": ("government debt/GDP rises > 5 points from 2019 to 2023 (data: about +25)",
                             lambda f: f["gov_rise_19_23"] > 5),
    "fast nominal growth": ("nominal GDP grows >= 8% a year on average 2006-2023 (data: about 11%)",
                            lambda f: f["nominal_growth"] >= 8),
    "positive inflation": ("inflation averages above 0 over 2006-2023 (data: +2.4% CPI)", lambda f: f["inflation"] > 0),
}


def china_measures(cm, X, names) -> dict[str, np.ndarray]:
    """The measures behind :data:`CHINA_FACTS` for every candidate (rows of ``X``): one run each."""
    X = np.atleast_2d(np.asarray(X, float))
    t = np.arange(cm.model.time.start, cm.model.time.stop + 1e-9, STEP)
    res = sdmodel.simulate_batch(cm, X, list(names), saveat=sdmodel.SaveAt(t_eval=t), throw=False)

    def at(name, year):  # end of year y (the year-end convention of the debt data: t = y + 1)
        return res[name][:, np.searchsorted(t, year - 1e-9)]

    def mean(name, a, b):
        return res[name][:, (t >= a) & (t <= b)].mean(axis=1)

    out = dict(
        firm_rise_08_16=at("firm_debt_gdp", 2017.0) - at("firm_debt_gdp", 2009.0),
        firm_change_16_19=at("firm_debt_gdp", 2020.0) - at("firm_debt_gdp", 2017.0),
        gov_rise_19_23=at("gov_debt_gdp", 2024.0) - at("gov_debt_gdp", 2020.0),
        nominal_growth=mean("gdp_growth_nominal", 2006, 2024),
        inflation=mean("inflation", 2006, 2024),
    )
    ok = res.success
    out = {k: np.where(ok, v, np.nan) for k, v in out.items()}
    out["ok"] = ok
    return out


def china_fact_checks(cm, X, names) -> dict[str, np.ndarray]:
    """Whether each candidate keeps each fact of :data:`CHINA_FACTS` (bool arrays (B,)); a failed run keeps none."""
    with np.errstate(invalid="ignore"):
        f = china_measures(cm, X, names)
        return {name: np.asarray(test(f), bool) & f["ok"] for name, (_, test) in CHINA_FACTS.items()}
