#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model PC.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach
to Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007,
chapter 4 ("Government money with portfolio choice"), model PC, equations
4.1-4.11 (4.6/4.6A and 4.7 are the household portfolio equations); the
redundant ("hidden") equation is Hh = Hs.

This script deliberately does NOT use `sdmodel`. It writes the book's
equations literally, period by period, and solves each period's simultaneous
block by Gauss-Seidel iteration (sweeping the equations in the book's order)
until no variable moves by more than 1e-15 relative, then checks every
equation's residual. The algebraic closed form of the period solution is
computed as a second, independent check.

Scenario (the book's 100-basis-point rise in the bill rate, figs. 4.3-4.4):
  * every stock starts at 0 (period 0 = the period before `start`);
  * G = 20 throughout; the bill rate r is 2.5 % up to period SHOCK-1 and
    3.5 % from period SHOCK on (a rise of 100 basis points);
  * the model has converged to its stationary state (to ~1e-6 relative)
    before the shock.

Output: reference.csv next to this script, column `t` then every variable
and stock of models/pc/model.yaml, one row per solved period t = 1..STOP.

Run:  python models/pc/make_reference.py
"""
import csv
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- parameters (G&L 2007 ch. 4; Zezza's EViews PC program; see README) ----
alpha1 = 0.6      # propensity to consume out of disposable income
alpha2 = 0.4      # propensity to consume out of past wealth
lambda0 = 0.635   # portfolio: autonomous share of bills
lambda1 = 5.0     # portfolio: response of the bills share to r
lambda2 = 0.01    # portfolio: (negative) response of the bills share to YD/V
theta = 0.2       # tax rate
G = 20.0          # government expenditure

START, STOP = 1, 160
SHOCK = 100       # first period with r = 3.5 %
R_LOW, R_HIGH = 0.025, 0.035


def r_of(t):
    """Exogenous bill rate (eq. 4.11: r = r_bar); a step at SHOCK."""
    return R_HIGH if t >= SHOCK else R_LOW


# output columns: equation variables then stocks (names as in model.yaml)
COLUMNS = ["Y", "YD", "T", "V", "C", "Hh", "Hs", "Bh", "Bs", "Bcb"]


def solve_period(t, lag):
    """Solve period t's simultaneous equations given last period's values."""
    r_1 = r_of(t - 1)           # r(-1)
    r = r_of(t)
    x = {k: lag[k] for k in COLUMNS}   # starting guess: last period's values
    for it in range(10000):
        old = dict(x)
        x["Y"] = x["C"] + G                                           # 4.1
        x["T"] = theta * (x["Y"] + r_1 * lag["Bh"])                   # 4.3
        x["YD"] = x["Y"] - x["T"] + r_1 * lag["Bh"]                   # 4.2
        x["C"] = alpha1 * x["YD"] + alpha2 * lag["V"]                 # 4.5
        x["V"] = lag["V"] + (x["YD"] - x["C"])                        # 4.4
        x["Bh"] = x["V"] * (lambda0 + lambda1 * r
                            - lambda2 * (x["YD"] / x["V"]))           # 4.7
        x["Hh"] = x["V"] - x["Bh"]                                    # 4.6
        x["Bs"] = lag["Bs"] + (G + r_1 * lag["Bs"]) \
            - (x["T"] + r_1 * lag["Bcb"])                             # 4.8
        x["Bcb"] = x["Bs"] - x["Bh"]                                  # 4.10
        x["Hs"] = lag["Hs"] + (x["Bcb"] - lag["Bcb"])                 # 4.9
        if all(abs(x[k] - old[k]) <= 1e-15 * max(1.0, abs(x[k])) for k in x):
            break
    else:
        raise RuntimeError(f"Gauss-Seidel did not converge in period {t}")

    # residual check of every equation as written in the book
    res = {
        "4.1": x["Y"] - (x["C"] + G),
        "4.2": x["YD"] - (x["Y"] - x["T"] + r_1 * lag["Bh"]),
        "4.3": x["T"] - theta * (x["Y"] + r_1 * lag["Bh"]),
        "4.4": x["V"] - (lag["V"] + x["YD"] - x["C"]),
        "4.5": x["C"] - (alpha1 * x["YD"] + alpha2 * lag["V"]),
        "4.6": x["Hh"] - (x["V"] - x["Bh"]),
        "4.6A": x["Hh"] / x["V"] - ((1 - lambda0) - lambda1 * r
                                    + lambda2 * x["YD"] / x["V"]),
        "4.7": x["Bh"] / x["V"] - (lambda0 + lambda1 * r
                                   - lambda2 * x["YD"] / x["V"]),
        "4.8": x["Bs"] - lag["Bs"] - ((G + r_1 * lag["Bs"])
                                      - (x["T"] + r_1 * lag["Bcb"])),
        "4.9": (x["Hs"] - lag["Hs"]) - (x["Bcb"] - lag["Bcb"]),
        "4.10": x["Bcb"] - (x["Bs"] - x["Bh"]),
        "hidden Hh=Hs": x["Hh"] - x["Hs"],
    }
    scale = max(1.0, max(abs(v) for v in x.values()))
    bad = {k: v for k, v in res.items() if abs(v) > 1e-12 * scale}
    if bad:
        raise RuntimeError(f"period {t}: residuals too large: {bad}")

    # independent closed-form check of the period solution:
    # YD = (1-theta)(alpha2 V(-1) + G + r(-1) Bh(-1)) / (1 - (1-theta) alpha1)
    yd = (1 - theta) * (alpha2 * lag["V"] + G + r_1 * lag["Bh"]) \
        / (1 - (1 - theta) * alpha1)
    if abs(yd - x["YD"]) > 1e-12 * max(1.0, abs(yd)):
        raise RuntimeError(f"period {t}: closed form YD {yd} != {x['YD']}")
    return x


def stationary_state(r):
    """Analytic stationary state of PC for a constant r (see README)."""
    # Stationary: V const => YD = C = alpha1 YD + alpha2 V => V = (1-alpha1)/alpha2 YD
    # Bh = V (lambda0 + lambda1 r) - lambda2 YD;  YD = (1-theta)(Y + r Bh); Y = YD + G
    k = (1 - alpha1) / alpha2                     # V / YD
    b = k * (lambda0 + lambda1 * r) - lambda2     # Bh / YD
    yd = (1 - theta) * G / (1 - (1 - theta) * (1 + r * b))
    v = k * yd
    bh = b * yd
    y = yd + G
    return {"Y": y, "YD": yd, "V": v, "C": yd, "Bh": bh, "Hh": v - bh,
            "T": theta * (y + r * bh)}


def main():
    lag = {k: 0.0 for k in COLUMNS}   # every stock (and V, YD) is 0 at t = 0
    rows = []
    for t in range(START, STOP + 1):
        x = solve_period(t, lag)
        rows.append((t, x))
        lag = x

    # ---- checks against the analytic stationary states ----
    by_t = dict(rows)
    for t_chk, r in ((SHOCK - 1, R_LOW), (STOP, R_HIGH)):
        ss = stationary_state(r)
        worst = max(abs(by_t[t_chk][k] - ss[k]) / abs(ss[k]) for k in ss)
        print(f"t={t_chk}: r={r}: max rel. distance to the analytic stationary"
              f" state = {worst:.2e}")
        for k in ("Y", "YD", "V", "Bh", "Hh"):
            print(f"    {k:3s} sim {by_t[t_chk][k]:.10f}  analytic {ss[k]:.10f}")
        if worst > 2e-5:
            sys.exit(f"not converged to the stationary state at t={t_chk}")

    out = os.path.join(HERE, "reference.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["t"] + COLUMNS)
        for t, x in rows:
            w.writerow([t] + [repr(float(x[k])) for k in COLUMNS])
    print(f"wrote {out}: {len(rows)} periods")


if __name__ == "__main__":
    main()
