#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model LP1.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach
to Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007,
chapter 5 ("Long-term bonds, capital gains and liquidity preference"),
model LP1, equations 5.1-5.24 (5.23 rb = rb_bar and 5.24 pbl = pbl_bar are
the exogenous series here); the redundant equation is Hh = Hs.

This script deliberately does NOT use `sdmodel`. It writes the book's
equations literally, period by period, and solves each period's simultaneous
block by Gauss-Seidel iteration (sweeping the equations in the book's order)
until no variable moves by more than 1e-15 relative, then checks every
equation's residual.

Scenario (the experiment of the book's figures 5.2-5.4):
  * the model starts in its exact stationary state for G = 20, rb = 3 %,
    pbl = 20 (computed here in closed form; INIT below is that state written
    with 17 significant digits, the same literals as in model.yaml);
  * from period SHOCK on the bill rate rises to 4 % and the bond price falls
    to 15 (the bond rate rises from 5 % to 6.67 %).

Output: reference.csv next to this script, column `t` then every variable
and stock of models/lp/model.yaml, one row per solved period t = 1..STOP.

Run:  python models/lp/make_reference.py          (writes reference.csv)
      python models/lp/make_reference.py --init   (prints the stationary
                                                    state, for model.yaml)
"""
import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- parameters (G&L 2007 ch. 5; Zezza's EViews LP programs; see README) ----
alpha1 = 0.8      # propensity to consume out of expected regular income
alpha2 = 0.2      # propensity to consume out of past wealth
chi = 0.1         # weight of conviction in the expected bond price
lambda20 = 0.44196
lambda22 = 1.1
lambda23 = 1.0
lambda24 = 0.03
lambda30 = 0.3997
lambda32 = 1.0
lambda33 = 1.1
lambda34 = 0.03
theta = 0.1938    # tax rate
G = 20.0          # government expenditure

START, STOP = 1, 70
SHOCK = 10        # first period with rb = 4 %, pbl = 15
RB0, RB1 = 0.03, 0.04
PBL0, PBL1 = 20.0, 15.0


def rb_of(t):
    """Exogenous bill rate (eq. 5.23 rb = rb_bar)."""
    return RB1 if t >= SHOCK else RB0


def pbl_of(t):
    """Exogenous bond price (eq. 5.24 pbl = pbl_bar)."""
    return PBL1 if t >= SHOCK else PBL0


# output columns: equation variables then stocks (names as in model.yaml)
VARS = ["Y", "YDr", "T", "V", "CG", "C", "Ve", "Hd", "Bd", "BLd",
        "ERrbl", "rbl", "pbl_e", "CGE", "YDEr"]
STOCKS = ["Hh", "Hs", "Bh", "Bs", "Bcb", "BLh", "BLs"]
COLUMNS = VARS + STOCKS

# Stationary state for rb = 3 %, pbl = 20 (values of period 0), 17 significant
# digits; identical literals in model.yaml (stocks: / initial:).
INIT = {
    "V": 95.78397231802232,
    "YDr": 95.78397231802234,
    "Hh": 20.147200737372813,
    "Hs": 20.147200737372813,
    "Bh": 37.8308377067261,
    "Bs": 57.978038444098914,
    "Bcb": 20.147200737372813,
    "BLh": 1.8902966936961705,
    "BLs": 1.8902966936961705,
}


def stationary_state(rb, pbl):
    """Closed-form stationary state of LP1 for constant rb, pbl (see README)."""
    k = (1 - alpha1) / alpha2          # V / YDr  (C = YDr, V = k YDr)
    erbl = 1.0 / pbl                   # pbl_e = pbl => ERrbl = rbl
    s_b = lambda20 + lambda22 * rb - lambda23 * erbl - lambda24 / k
    s_bl = lambda30 - lambda32 * rb + lambda33 * erbl - lambda34 / k
    # YDr = (1-theta)(Y + rb Bh + BLh), Y = YDr + G,
    # Bh = s_b V, BLh = s_bl V / pbl, V = k YDr
    yd = (1 - theta) * G / (1 - (1 - theta) * (1 + k * (rb * s_b + s_bl / pbl)))
    v = k * yd
    bh = s_b * v
    blh = s_bl * v / pbl
    hh = v - bh - pbl * blh
    y = yd + G
    return {"Y": y, "YDr": yd, "T": theta * (y + rb * bh + blh), "V": v,
            "CG": 0.0, "C": yd, "Ve": v, "Hd": hh, "Bd": bh, "BLd": blh,
            "ERrbl": erbl, "rbl": erbl, "pbl_e": pbl, "CGE": 0.0, "YDEr": yd,
            "Hh": hh, "Hs": hh, "Bh": bh, "Bs": bh + hh, "Bcb": hh,
            "BLh": blh, "BLs": blh}


def solve_period(t, lag):
    """Solve period t's simultaneous equations given last period's values."""
    rb_1, pbl_1 = lag["rb"], lag["pbl"]      # rb(-1), pbl(-1)
    rb, pbl = rb_of(t), pbl_of(t)
    x = {k: lag.get(k, 1.0) for k in COLUMNS}  # guess: last period (or 1)
    for it in range(10000):
        old = dict(x)
        x["Y"] = x["C"] + G                                            # 5.1
        x["YDr"] = x["Y"] - x["T"] + rb_1 * lag["Bh"] + lag["BLh"]     # 5.2
        x["T"] = theta * (x["Y"] + rb_1 * lag["Bh"] + lag["BLh"])      # 5.3
        x["V"] = lag["V"] + (x["YDr"] - x["C"]) + x["CG"]              # 5.4
        x["CG"] = (pbl - pbl_1) * lag["BLh"]                           # 5.5
        x["C"] = alpha1 * x["YDEr"] + alpha2 * lag["V"]                # 5.6
        x["Ve"] = lag["V"] + (x["YDEr"] - x["C"]) + x["CG"]            # 5.7
        x["Hh"] = x["V"] - x["Bh"] - pbl * x["BLh"]                    # 5.8
        x["Hd"] = x["Ve"] - x["Bd"] - pbl * x["BLd"]                   # 5.9
        x["Bd"] = x["Ve"] * (lambda20 + lambda22 * rb
                             - lambda23 * x["ERrbl"]
                             - lambda24 * (x["YDEr"] / x["Ve"]))       # 5.10
        x["BLd"] = x["Ve"] * (lambda30 - lambda32 * rb
                              + lambda33 * x["ERrbl"]
                              - lambda34 * (x["YDEr"] / x["Ve"])) / pbl  # 5.11
        x["Bh"] = x["Bd"]                                              # 5.12
        x["BLh"] = x["BLd"]                                            # 5.13
        x["Bs"] = lag["Bs"] + (G + rb_1 * lag["Bs"] + lag["BLs"]) \
            - (x["T"] + rb_1 * lag["Bcb"]) \
            - (x["BLs"] - lag["BLs"]) * pbl                            # 5.14
        x["Hs"] = lag["Hs"] + (x["Bcb"] - lag["Bcb"])                  # 5.15
        x["Bcb"] = x["Bs"] - x["Bh"]                                   # 5.16
        x["BLs"] = x["BLh"]                                            # 5.17
        x["ERrbl"] = x["rbl"] + chi * (x["pbl_e"] - pbl) / pbl         # 5.18
        x["rbl"] = 1.0 / pbl                                           # 5.19
        x["pbl_e"] = pbl                                               # 5.20
        x["CGE"] = chi * (x["pbl_e"] - pbl) * x["BLh"]                 # 5.21
        x["YDEr"] = lag["YDr"]                                         # 5.22
        if all(abs(x[k] - old[k]) <= 1e-15 * max(1.0, abs(x[k])) for k in x):
            break
    else:
        raise RuntimeError(f"Gauss-Seidel did not converge in period {t}")

    res = {
        "5.1": x["Y"] - (x["C"] + G),
        "5.2": x["YDr"] - (x["Y"] - x["T"] + rb_1 * lag["Bh"] + lag["BLh"]),
        "5.3": x["T"] - theta * (x["Y"] + rb_1 * lag["Bh"] + lag["BLh"]),
        "5.4": x["V"] - (lag["V"] + x["YDr"] - x["C"] + x["CG"]),
        "5.5": x["CG"] - (pbl - pbl_1) * lag["BLh"],
        "5.6": x["C"] - (alpha1 * x["YDEr"] + alpha2 * lag["V"]),
        "5.7": x["Ve"] - (lag["V"] + x["YDEr"] - x["C"] + x["CG"]),
        "5.8": x["Hh"] - (x["V"] - x["Bh"] - pbl * x["BLh"]),
        "5.9": x["Hd"] - (x["Ve"] - x["Bd"] - pbl * x["BLd"]),
        "5.10": x["Bd"] / x["Ve"] - (lambda20 + lambda22 * rb
                                     - lambda23 * x["ERrbl"]
                                     - lambda24 * x["YDEr"] / x["Ve"]),
        "5.11": pbl * x["BLd"] / x["Ve"] - (lambda30 - lambda32 * rb
                                            + lambda33 * x["ERrbl"]
                                            - lambda34 * x["YDEr"] / x["Ve"]),
        "5.12": x["Bh"] - x["Bd"],
        "5.13": x["BLh"] - x["BLd"],
        "5.14": (x["Bs"] - lag["Bs"]) - ((G + rb_1 * lag["Bs"] + lag["BLs"])
                                         - (x["T"] + rb_1 * lag["Bcb"])
                                         - (x["BLs"] - lag["BLs"]) * pbl),
        "5.15": (x["Hs"] - lag["Hs"]) - (x["Bcb"] - lag["Bcb"]),
        "5.16": x["Bcb"] - (x["Bs"] - x["Bh"]),
        "5.17": x["BLs"] - x["BLh"],
        "5.18": x["ERrbl"] - (x["rbl"] + chi * (x["pbl_e"] - pbl) / pbl),
        "5.19": x["rbl"] - 1.0 / pbl,
        "5.20": x["pbl_e"] - pbl,
        "5.21": x["CGE"] - chi * (x["pbl_e"] - pbl) * x["BLh"],
        "5.22": x["YDEr"] - lag["YDr"],
        "hidden Hh=Hs": x["Hh"] - x["Hs"],
    }
    scale = max(1.0, max(abs(v) for v in x.values()))
    bad = {k: v for k, v in res.items() if abs(v) > 1e-12 * scale}
    if bad:
        raise RuntimeError(f"period {t}: residuals too large: {bad}")
    x["rb"], x["pbl"] = rb, pbl
    return x


def main():
    ss0 = stationary_state(RB0, PBL0)
    if "--init" in sys.argv:
        for k in ["V", "YDr"] + STOCKS:
            print(f"    {k}: {ss0[k]!r}")
        return
    # INIT must be the closed-form stationary state (to rounding)
    for k, v in INIT.items():
        if abs(v - ss0[k]) > 1e-14 * abs(ss0[k]):
            sys.exit(f"INIT[{k}] = {v!r} is not the stationary state {ss0[k]!r}")
    # compare with the rounded starting values printed in the book / Zezza
    book = {"V": 95.803, "YDr": 95.803, "Hh": 20.125, "Hs": 20.125,
            "Bh": 37.839, "Bs": 57.964, "Bcb": 20.125, "BLh": 1.892,
            "BLs": 1.892}
    for k, b in book.items():
        print(f"  stationary {k:4s} = {ss0[k]:10.5f}   book/Zezza start {b:8.3f}"
              f"   rel.diff {(b - ss0[k]) / ss0[k]:+.1e}")

    lag = dict(INIT)
    lag.update(rb=RB0, pbl=PBL0)   # series values in period 0
    rows = []
    for t in range(START, STOP + 1):
        x = solve_period(t, lag)
        rows.append((t, x))
        lag = x

    by_t = dict(rows)
    # before the shock the model must sit exactly on its stationary state
    for t in range(START, SHOCK):
        worst = max(abs(by_t[t][k] - ss0[k]) / max(1.0, abs(ss0[k]))
                    for k in COLUMNS)
        if worst > 1e-13:
            sys.exit(f"t={t}: not stationary before the shock ({worst:.1e})")
    ss1 = stationary_state(RB1, PBL1)
    worst = max(abs(by_t[STOP][k] - ss1[k]) / max(1.0, abs(ss1[k]))
                for k in COLUMNS)
    print(f"t={STOP}: max rel. distance to the new stationary state "
          f"(rb={RB1}, pbl={PBL1}) = {worst:.2e}")
    for k in ("Y", "YDr", "V", "Bh", "BLh", "Hh"):
        print(f"    {k:4s} t={STOP} {by_t[STOP][k]:.8f}   new stationary "
              f"{ss1[k]:.8f}   old {ss0[k]:.8f}")
    if worst > 1e-4:
        sys.exit("no convergence to the new stationary state")

    out = os.path.join(HERE, "reference.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["t"] + COLUMNS)
        for t, x in rows:
            w.writerow([t] + [repr(float(x[k])) for k in COLUMNS])
    print(f"wrote {out}: {len(rows)} periods")


if __name__ == "__main__":
    main()
