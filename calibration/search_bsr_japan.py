#!/usr/bin/env python
"""Where the behavioural parameters of ``models/bsr/scenarios/japan.yaml`` come from.

A differential-evolution search (``scipy.optimize.differential_evolution``, vectorised:
every generation is one ``sdmodel.simulate_batch`` call) over 33 behavioural parameters
of the bsr model in the Japan scenario.  The objective is

    data fit      weighted RMSE against models/bsr/data/history_japan.csv, 1980-2019:
                  household, firm (weight 1) and government (0.5) debt/GDP in points,
                  the land-price index in log points x 100 (0.5), CPI inflation (3),
                  the IMF output gap (2) and real GDP growth (2), in percentage points;
    + penalties   hinge penalties when the run misses a stylised fact of the evidence
                  (DESIGN.md; tests/test_bsr.py): land peak 1989-92, +60% from 1985 and
                  -45% by 2003; firm debt peak 1991-96 and -25 points by 2005 with positive
                  operating profits; the credit response to a 1-point lending-rate cut
                  four times larger in 1984 than in 1996; a larger fiscal multiplier in
                  1996 than in 1984; real GDP falling in 1998 and the 1997 consolidation
                  costing more output than the same one in 2006; an NPL peak in 1995-2002;
                  debt minimisation engaged in 1995-2003 and over by the 2010s; at least
                  six deflation years in 1995-2012.

Each candidate therefore costs seven runs (the scenario and six experiments).  The search
runs in two stages: global over the bounds below, then again in a box of +-25% of each
range around the first stage's best point.  It prints the parameters as YAML for the
scenario file.  This is a one-off search that fixes the stylised-fact economy; the
reproducible calibration with uncertainty and out-of-sample checks is ``sdmodel
calibrate`` (issue 4).

    python calibration/search_bsr_japan.py                 # both stages (about 30 min on 2 cores)
    python calibration/search_bsr_japan.py --maxiter 3     # smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import differential_evolution

import sdmodel

HERE = Path(__file__).resolve().parent
HISTORY = HERE.parent / "models" / "bsr" / "data" / "history_japan.csv"

BOUNDS = dict(
    c_y=(0.55, 0.85), omega=(0.62, 0.78), a_u=(0, 0.3), a_r=(0.2, 4), r_inv0=(0.0, 0.06), dm_inv=(0.8, 1.05),
    div_share=(0.2, 0.9), dm_threshold=(0.7, 1.2), dm_width=(0.03, 0.15), dm_speed=(0.2, 2.5),
    dm_memory=(0, 0.4), coll_K=(0, 0.5), lam_y=(0.01, 0.3), lam_e=(0.2, 1.5), lam_r=(0.5, 5), lam_c=(0, 0.6),
    c_ref=(0.8, 1.8), lam_rest=(0, 1.5), lam_dm=(0, 0.2), r_land0=(0.02, 0.09), nu_L=(0, 1.5),
    kappa=(0.05, 0.5), chi=(0.05, 0.6), theta=(0.15, 0.3), g0=(0.14, 0.22), tr0=(0.04, 0.12), tp1=(0, 1.0),
    nbd0=(-0.02, 0.08), npl_threshold=(0.9, 1.6), eta_h=(0.0, 0.6), gL_max=(0.1, 0.5), tau_Le=(0.3, 3),
    div_cap=(0.05, 1),
)
WEIGHTS = dict(hh_debt_gdp=1, firm_debt_gdp=1, gov_debt_gdp=0.5, land_price=0.5, inflation=3, output_gap=2,
               gdp_growth_real=2)
# (rate_shock, shock_start, g_shock, g_shock_start, cons_start); None = the scenario's consolidation start
EXPERIMENTS = [(0, 1e9, 0, 1e9, None), (0.01, 1984.0, 0, 1e9, None), (0.01, 1996.0, 0, 1e9, None),
               (0, 1e9, 0.01, 1984.0, None), (0, 1e9, 0.01, 1996.0, None), (0, 1e9, 0, 1e9, 1e9),
               (0, 1e9, 0, 1e9, 2006.25)]
EXTRA = ["rate_shock", "shock_start", "g_shock", "g_shock_start", "cons_start"]
YEARS = np.arange(1980, 2020)


def hinge(x):
    return np.maximum(0.0, x)


def outside(x, a, b):
    return hinge(a - x) + hinge(x - b)


class Objective:
    def __init__(self, model):
        self.model = model
        self.cm = sdmodel.compile_model(model)
        self.names = list(BOUNDS)
        h = pd.read_csv(HISTORY).set_index("year")
        self.target = {k: h.loc[YEARS, k].to_numpy(float) for k in WEIGHTS}
        self.t = np.arange(1980.0, 2030.0 + 1e-9, 0.25)
        self.cons_start = model.parameters["cons_start"].value

    def __call__(self, X, detail=False):
        X = np.atleast_2d(X.T if X.ndim == 2 else X[None, :])
        n, t = len(X), self.t
        rows = [np.column_stack([X] + [np.full(n, self.cons_start if v is None else v) for v in e])
                for e in EXPERIMENTS]
        res = sdmodel.simulate_batch(self.cm, np.vstack(rows), self.names + EXTRA, t_eval=t)
        k = len(EXPERIMENTS)
        ok = res.success.reshape(k, n).all(axis=0)
        path = {name: res[name].reshape(k, n, -1) for name in
                set(WEIGHTS) | {"Lf", "Lh", "Yp", "gdp_real", "wf", "op_profit", "npl_ratio"}}

        def at(name, when, j=0):
            """Values at times on the saved grid: (candidates,) for a time, (candidates, times) for an array."""
            i = np.searchsorted(t, when)
            assert np.allclose(t[i], when), "query times must lie on the saved grid"
            return path[name][j][:, i]

        fit = 0.0
        rmse = {}
        for name, w in WEIGHTS.items():
            when = YEARS + (1.0 if name.endswith("_gdp") else 0.5)
            model = at(name, when)
            err = (100 * (np.log(np.maximum(model, 1e-3)) - np.log(self.target[name])) if name == "land_price"
                   else model - self.target[name])
            rmse[name] = np.sqrt(np.nanmean(np.where(np.isnan(self.target[name]), np.nan, err) ** 2, axis=1))
            fit = fit + w * rmse[name]

        def peak(name, a, b):
            v = np.where(((t >= a) & (t <= b))[None, :], path[name][0], -np.inf)
            return t[np.argmax(v, axis=1)], v.max(axis=1)

        land_t, land_max = peak("land_price", 1985, 2004)
        rise = land_max / at("land_price", 1985.5) - 1
        fall = 1 - at("land_price", 2003.5) / land_max
        firm_t, firm_max = peak("firm_debt_gdp", 1985, 2006)
        firm_fall = firm_max - at("firm_debt_gdp", 2006.0)
        npl_t, _ = peak("npl_ratio", 1985, 2015)
        credit = path["Lf"] + path["Lh"]
        i84, i96 = np.searchsorted(t, 1987.0), np.searchsorted(t, 1999.0)
        c84 = credit[1, :, i84] / credit[0, :, i84] - 1
        c96 = credit[2, :, i96] / credit[0, :, i96] - 1
        ratio = np.where(c84 <= 0, 0, np.minimum(np.where(c96 > 1e-9, c84 / np.maximum(c96, 1e-9), 10), 10))
        yr, yp = path["gdp_real"], path["Yp"]

        def multiplier(j, start):
            s3, s1 = (t >= start) & (t < start + 3), (t >= start) & (t < start + 1)
            return (yr[j] - yr[0])[:, s3].sum(axis=1) / (0.01 * yp[j][:, s1]).sum(axis=1)

        def loss(j, start):
            s = (t >= start) & (t < start + 10)
            return ((yr[5] - yr[j]) / yr[5])[:, s].mean(axis=1) * 1000

        m84, m96 = multiplier(3, 1984.0), multiplier(4, 1996.0)
        l97, l06 = loss(0, 1997.25), loss(6, 2006.25)
        g98 = at("gdp_growth_real", 1998.5)
        op_min = path["op_profit"][0][:, (t >= 1991) & (t <= 2006)].min(axis=1)
        deflation = (at("inflation", np.arange(1995, 2013) + 0.5) < 0).sum(axis=1)
        wf_mid = path["wf"][0][:, (t >= 1995) & (t <= 2003)].mean(axis=1)
        wf_late = path["wf"][0][:, (t >= 2010) & (t <= 2019)].mean(axis=1)
        penalty = (10 * outside(firm_t, 1991, 1996) + 2 * hinge(25 - firm_fall) + 50 * hinge(0.6 - rise)
                   + 50 * hinge(0.45 - fall) + 10 * outside(land_t, 1989, 1992) + 10 * hinge(4 - ratio)
                   + 5 * outside(npl_t, 1995, 2002) + 20 * hinge(0.5 - wf_mid) + 20 * hinge(wf_late - 0.3)
                   + 100 * hinge(m84 - m96 + 0.2) + 2 * hinge(l06 - l97 + 2) + 5 * hinge(g98 + 0.5)
                   + 20 * hinge(0.5 - op_min) + 5 * hinge(6 - deflation))
        total = np.where(ok & np.isfinite(fit + penalty), fit + penalty, 1e6)
        if detail:
            return dict(total=float(total[0]), penalty=float(penalty[0]),
                        rmse={k: round(float(v[0]), 2) for k, v in rmse.items()},
                        land=(float(land_t[0]), float(rise[0]), float(fall[0])),
                        firm=(float(firm_t[0]), float(firm_fall[0]), float(op_min[0])),
                        credit_ratio=float(ratio[0]), multipliers=(float(m84[0]), float(m96[0])),
                        losses=(float(l97[0]), float(l06[0])), growth98=float(g98[0]),
                        npl_peak=float(npl_t[0]), deflation_years=int(deflation[0]))
        return total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--maxiter", type=int, default=110, help="generations of each stage (default 110)")
    ap.add_argument("--popsize", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--narrow", type=float, default=0.25, help="half-width of the second stage's box, share of each range")
    args = ap.parse_args(argv)

    model = sdmodel.load_model("bsr", scenario="japan")
    f = Objective(model)
    lo = np.array([BOUNDS[n][0] for n in f.names])
    hi = np.array([BOUNDS[n][1] for n in f.names])
    x = np.clip([model.parameters[n].value for n in f.names], lo, hi)
    t0 = time.time()
    for stage in (0, 1):
        w = (hi - lo) if stage == 0 else args.narrow * (hi - lo)
        a, b = np.maximum(lo, x - w), np.minimum(hi, x + w)
        r = differential_evolution(
            f, list(zip(a, b)), vectorized=True, updating="deferred", popsize=args.popsize, maxiter=args.maxiter,
            seed=args.seed + stage, x0=x, polish=False, tol=1e-6, mutation=(0.5, 1.0), recombination=0.7,
            callback=lambda xk, convergence=None: print(f"{time.time() - t0:7.0f} s  stage {stage + 1}  "
                                                        f"best {f(xk[:, None])[0]:.2f}", file=sys.stderr))
        x = r.x
    print("# objective:", f(x, detail=True))
    for n, v in zip(f.names, x):
        print(f"  {n}: {v:.4g}")


if __name__ == "__main__":
    main()
