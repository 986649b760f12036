#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model BMW.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach
to Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007,
chapter 7 ("A simple model with private bank money"), model BMW, equations
7.1-7.21; the redundant ("hidden") equation is Mh = Ms.

This script deliberately does NOT use `sdmodel`. It writes the book's
equations literally (7.13 as printed, WBs = W * Ns), period by period, and
solves each period's simultaneous block by Gauss-Seidel sweeps in the book's
order until no variable moves by more than 1e-15 relative, then checks the
residual of every equation (1e-12 relative), the hidden equation (1e-10
relative: Mh and Ms accumulate their rounding separately) and a closed form
of the period's income.

Two runs, both from an economy where every stock is 0 (period 0):
  * reference.csv: the baseline, t = 1..100 (parameters of the book's
    appendix 7.1 as in sfcr's BMW vignette and the `godley` R package);
  * reference_alpha0_up.csv: t = 1..200, autonomous consumption alpha0 rises
    from 20 to 30 from period SHOCK = 100 on, when the economy is within
    about 1e-4 of its stationary state (sfcr's first BMW experiment,
    `sfcr_shock(alpha0 ~ 30, start = 5)`, run from its baseline).

Run:  python models/bmw/make_reference.py
"""
import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- parameters (G&L 2007, appendix 7.1; see README) ----
PARAMS = dict(rl_bar=0.025, alpha0=20.0, alpha1=0.75, alpha2=0.10, delta=0.10,
              gamma=0.15, kappa=1.0, pr=1.0)
SHOCK, ALPHA0_UP = 100, 30.0

# output columns: equation variables then stocks (names as in model.yaml)
COLUMNS = ["Cs", "Is", "Ns", "Ls", "Y", "WBd", "AF", "Ld", "YD", "Mh", "Ms",
           "rm", "WBs", "Nd", "W", "Cd", "K", "DA", "KT", "Id", "rl"]


def solve_period(lag, p):
    """One period's values given last period's (``lag``) and the parameters ``p``."""
    x = {k: lag[k] for k in COLUMNS}
    x["Cd"] = max(lag["Cd"], p["alpha0"])   # a guess that keeps Y, so Nd, above 0 (W = WBd/Nd)
    for _ in range(100000):
        old = dict(x)
        x["Cs"] = x["Cd"]                                          # 7.1
        x["Is"] = x["Id"]                                          # 7.2
        x["Ns"] = x["Nd"]                                          # 7.3
        x["Ls"] = lag["Ls"] + x["Ld"] - lag["Ld"]                  # 7.4
        x["Y"] = x["Cs"] + x["Is"]                                 # 7.5
        x["WBd"] = x["Y"] - lag["rl"] * lag["Ld"] - x["AF"]        # 7.6
        x["AF"] = p["delta"] * lag["K"]                            # 7.7
        x["Ld"] = lag["Ld"] + x["Id"] - x["AF"]                    # 7.8
        x["YD"] = x["WBs"] + lag["rm"] * lag["Mh"]                 # 7.9
        x["Mh"] = lag["Mh"] + x["YD"] - x["Cd"]                    # 7.10
        x["Ms"] = lag["Ms"] + x["Ls"] - lag["Ls"]                  # 7.11
        x["rm"] = x["rl"]                                          # 7.12
        x["WBs"] = x["W"] * x["Ns"]                                # 7.13
        x["Nd"] = x["Y"] / p["pr"]                                 # 7.14
        x["W"] = x["WBd"] / x["Nd"]                                # 7.15
        x["Cd"] = p["alpha0"] + p["alpha1"] * x["YD"] + p["alpha2"] * lag["Mh"]   # 7.16
        x["K"] = lag["K"] + x["Id"] - x["DA"]                      # 7.17
        x["DA"] = p["delta"] * lag["K"]                            # 7.18
        x["KT"] = p["kappa"] * lag["Y"]                            # 7.19
        x["Id"] = p["gamma"] * (x["KT"] - lag["K"]) + x["DA"]      # 7.20
        x["rl"] = p["rl_bar"]                                      # 7.21
        if all(abs(x[k] - old[k]) <= 1e-15 * max(1.0, abs(x[k])) for k in x):
            break
    else:
        raise RuntimeError("Gauss-Seidel did not converge")
    res = {
        "7.1": x["Cs"] - x["Cd"], "7.2": x["Is"] - x["Id"], "7.3": x["Ns"] - x["Nd"],
        "7.4": x["Ls"] - (lag["Ls"] + x["Ld"] - lag["Ld"]),
        "7.5": x["Y"] - (x["Cs"] + x["Is"]),
        "7.6": x["WBd"] - (x["Y"] - lag["rl"] * lag["Ld"] - x["AF"]),
        "7.7": x["AF"] - p["delta"] * lag["K"],
        "7.8": x["Ld"] - (lag["Ld"] + x["Id"] - x["AF"]),
        "7.9": x["YD"] - (x["WBs"] + lag["rm"] * lag["Mh"]),
        "7.10": x["Mh"] - (lag["Mh"] + x["YD"] - x["Cd"]),
        "7.11": x["Ms"] - (lag["Ms"] + x["Ls"] - lag["Ls"]),
        "7.12": x["rm"] - x["rl"], "7.13": x["WBs"] - x["W"] * x["Ns"],
        "7.14": x["Nd"] - x["Y"] / p["pr"], "7.15": x["W"] - x["WBd"] / x["Nd"],
        "7.16": x["Cd"] - (p["alpha0"] + p["alpha1"] * x["YD"] + p["alpha2"] * lag["Mh"]),
        "7.17": x["K"] - (lag["K"] + x["Id"] - x["DA"]),
        "7.18": x["DA"] - p["delta"] * lag["K"], "7.19": x["KT"] - p["kappa"] * lag["Y"],
        "7.20": x["Id"] - (p["gamma"] * (x["KT"] - lag["K"]) + x["DA"]),
        "7.21": x["rl"] - p["rl_bar"],
    }
    scale = max(1.0, max(abs(v) for v in x.values()))
    bad = {k: v for k, v in res.items() if abs(v) > 1e-12 * scale}
    # the hidden equation is not solved but follows from the others; it holds up to the rounding
    # that Mh and Ms accumulate separately over the periods
    if abs(x["Mh"] - x["Ms"]) > 1e-10 * scale:
        bad["hidden Mh=Ms"] = x["Mh"] - x["Ms"]
    if bad:
        raise RuntimeError(f"residuals too large: {bad}")
    # closed form: Y = Cd + Id, Cd = alpha0 + alpha1 (Y - rl(-1) Ld(-1) - AF + rm(-1) Mh(-1)) + alpha2 Mh(-1)
    idd = p["gamma"] * (p["kappa"] * lag["Y"] - lag["K"]) + p["delta"] * lag["K"]
    y = (p["alpha0"] + p["alpha1"] * (-lag["rl"] * lag["Ld"] - p["delta"] * lag["K"]
                                      + lag["rm"] * lag["Mh"]) + p["alpha2"] * lag["Mh"] + idd) \
        / (1 - p["alpha1"])
    if abs(y - x["Y"]) > 1e-12 * max(1.0, abs(y)):
        raise RuntimeError(f"closed form Y {y} != {x['Y']}")
    return x


def run(stop, shock=None):
    lag = {k: 0.0 for k in COLUMNS}   # every stock and flow is 0 in period 0 ...
    lag["rl"] = lag["rm"] = PARAMS["rl_bar"]   # ... and the rates are the book's (model.yaml initial:)
    rows = []
    for t in range(1, stop + 1):
        p = dict(PARAMS)
        if shock is not None and t >= shock:
            p["alpha0"] = ALPHA0_UP
        x = solve_period(lag, p)
        rows.append((t, x))
        lag = x
    return rows


def write(rows, name):
    out = os.path.join(HERE, name)
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["t"] + COLUMNS)
        for t, x in rows:
            w.writerow([t] + [repr(float(x[k])) for k in COLUMNS])
    print(f"wrote {out}: {len(rows)} periods")


def main():
    base = run(100)
    write(base, "reference.csv")
    up = run(200, SHOCK)
    before = dict(up)[SHOCK - 1]
    after = dict(up)[200]
    drift = abs(before["Y"] - dict(up)[SHOCK - 2]["Y"]) / before["Y"]
    print(f"t={SHOCK - 1}: Y = {before['Y']:.10f} (moved {drift:.1e} relative in its last period), "
          f"t=200: Y = {after['Y']:.10f}")
    if drift > 1e-4:
        sys.exit("the baseline has not settled before the shock")
    # the stationary state: K = kappa Y = Ld = Mh, Id = delta K, YD = Cd = Y (1 - delta kappa), so
    # Y ((1 - delta kappa)(1 - alpha1) - alpha2 kappa) = alpha0: Y* = 160 (alpha0 = 20), 240 (alpha0 = 30)
    for x, a0 in ((before, PARAMS["alpha0"]), (after, ALPHA0_UP)):
        k = PARAMS["kappa"]
        ystar = a0 / ((1 - PARAMS["delta"] * k) * (1 - PARAMS["alpha1"]) - PARAMS["alpha2"] * k)
        if abs(x["Y"] - ystar) > 1e-6 * ystar:
            sys.exit(f"Y = {x['Y']} is not the stationary state {ystar}")
    write(up, "reference_alpha0_up.csv")


if __name__ == "__main__":
    main()
