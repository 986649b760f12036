#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model REG.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach
to Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007,
chapter 6 ("Introducing the open economy"), model REG, equations 6.1-6.26
(two regions, North and South, one government and one central bank); the
redundant ("hidden") equation is Hh = Hs.

This script deliberately does NOT use `sdmodel`. Unlike models/reg/model.yaml,
which leaves Hh_N, Hh_S, Bs and Hs to the transactions matrix, it writes every
equation of the book, including those four (6.15, 6.16, 6.23, 6.24), and
solves each period by Gauss-Seidel sweeps in the book's order until no
variable moves by more than 1e-14 relative; then it checks that one more sweep
moves nothing by more than 1e-12 relative and the hidden equation Hh = Hs.

Writes reference.csv (the baseline: every stock 0 at the start, 100 periods)
and reference_mu_S_up.csv (the scenario scenarios/mu_S_up.yaml: mu_S from
0.18781 to 0.20781 from period 60 on, 140 periods).

Run:  python models/reg/make_reference.py
"""
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))

P = dict(
    alpha1_N=0.6, alpha1_S=0.6, alpha2_N=0.4, alpha2_S=0.4, lambda0_N=0.635, lambda0_S=0.635,
    lambda1_N=5.0, lambda1_S=5.0, lambda2_N=0.01, lambda2_S=0.01, mu_N=0.18781, mu_S=0.18781,
    G_N=20.0, G_S=20.0, theta=0.2, r_bar=0.025,
)
START = dict(Hh_N=0.0, Hh_S=0.0, Bh_N=0.0, Bh_S=0.0, Hs=0.0, Bs=0.0, Bcb=0.0, V_N=0.0, V_S=0.0, r=0.025)
COLUMNS = [
    "Y_N", "Y_S", "IM_N", "IM_S", "X_N", "X_S", "YD_N", "YD_S", "T_N", "T_S", "V_N", "V_S", "C_N", "C_S",
    "Hh_N", "Hh_S", "Bh_N", "Bh_S", "T", "G", "Bh", "Hh", "Bs", "Hs", "Bcb", "r",
]


def sweep(x, L, p):
    """One Gauss-Seidel sweep over every equation in the book's order (L: last period)."""
    x["Y_N"] = x["C_N"] + p["G_N"] + x["X_N"] - x["IM_N"]                          # 6.1
    x["Y_S"] = x["C_S"] + p["G_S"] + x["X_S"] - x["IM_S"]                          # 6.2
    x["IM_N"] = p["mu_N"] * x["Y_N"]                                               # 6.3
    x["IM_S"] = p["mu_S"] * x["Y_S"]                                               # 6.4
    x["X_N"] = x["IM_S"]                                                           # 6.5
    x["X_S"] = x["IM_N"]                                                           # 6.6
    x["YD_N"] = x["Y_N"] - x["T_N"] + L["r"] * L["Bh_N"]                           # 6.7
    x["YD_S"] = x["Y_S"] - x["T_S"] + L["r"] * L["Bh_S"]                           # 6.8
    x["T_N"] = p["theta"] * (x["Y_N"] + L["r"] * L["Bh_N"])                        # 6.9
    x["T_S"] = p["theta"] * (x["Y_S"] + L["r"] * L["Bh_S"])                        # 6.10
    x["V_N"] = L["V_N"] + (x["YD_N"] - x["C_N"])                                   # 6.11
    x["V_S"] = L["V_S"] + (x["YD_S"] - x["C_S"])                                   # 6.12
    x["C_N"] = p["alpha1_N"] * x["YD_N"] + p["alpha2_N"] * L["V_N"]                # 6.13
    x["C_S"] = p["alpha1_S"] * x["YD_S"] + p["alpha2_S"] * L["V_S"]                # 6.14
    x["Hh_N"] = x["V_N"] - x["Bh_N"]                                               # 6.15
    x["Hh_S"] = x["V_S"] - x["Bh_S"]                                               # 6.16
    # 6.17, 6.18 (Bh/V = lambda0 + lambda1 r - lambda2 YD/V), multiplied out by V
    x["Bh_N"] = x["V_N"] * (p["lambda0_N"] + p["lambda1_N"] * x["r"]) - p["lambda2_N"] * x["YD_N"]
    x["Bh_S"] = x["V_S"] * (p["lambda0_S"] + p["lambda1_S"] * x["r"]) - p["lambda2_S"] * x["YD_S"]
    x["T"] = x["T_N"] + x["T_S"]                                                   # 6.19
    x["G"] = p["G_N"] + p["G_S"]                                                   # 6.20
    x["Bh"] = x["Bh_N"] + x["Bh_S"]                                                # 6.21
    x["Hh"] = x["Hh_N"] + x["Hh_S"]                                                # 6.22
    x["Bs"] = L["Bs"] + (x["G"] + L["r"] * L["Bs"]) - (x["T"] + L["r"] * L["Bcb"])  # 6.23
    x["Hs"] = L["Hs"] + x["Bcb"] - L["Bcb"]                                        # 6.24
    x["Bcb"] = x["Bs"] - x["Bh"]                                                   # 6.25
    x["r"] = p["r_bar"]                                                            # 6.26


def period(L, p):
    x = {k: L.get(k, 0.0) for k in COLUMNS}
    for _ in range(10_000):
        before = dict(x)
        sweep(x, L, p)
        if all(abs(x[k] - before[k]) <= 1e-14 * max(1.0, abs(x[k])) for k in x):
            break
    else:
        raise RuntimeError("Gauss-Seidel did not converge")
    check = dict(x)
    sweep(check, L, p)
    worst = max(abs(check[k] - x[k]) / max(1.0, abs(x[k])) for k in x)
    assert worst <= 1e-12, worst
    assert abs(x["Hh"] - x["Hs"]) <= 1e-10 * max(1.0, abs(x["Hs"])), (x["Hh"], x["Hs"])  # the hidden equation
    return x


def run(stop, shock=None):
    """Periods 1..stop from START; ``shock`` = (parameter, from period, value)."""
    L = dict(START)
    rows = []
    for t in range(1, stop + 1):
        p = dict(P)
        if shock is not None and t >= shock[1]:
            p[shock[0]] = shock[2]
        x = period(L, p)
        rows.append([t] + [x[k] for k in COLUMNS])
        L = x
    return rows


def write(name, rows):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t"] + COLUMNS)
        for row in rows:
            w.writerow([row[0]] + [repr(v) for v in row[1:]])


if __name__ == "__main__":
    write("reference.csv", run(100))
    write("reference_mu_S_up.csv", run(140, ("mu_S", 60, 0.20781)))
