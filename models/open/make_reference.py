#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model OPEN.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach
to Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007,
chapter 6 ("Introducing the open economy"), section 6.5, model OPEN: two
countries, North and South, each with a government, a central bank and a
currency, a fixed exchange rate xr (units of the South's currency per unit of
the North's) and gold at a fixed price settling the balance of payments. The
redundant ("hidden") equation: the gold the South gains is what the North loses.

This script deliberately does NOT use `sdmodel`. Unlike models/open/model.yaml,
which leaves Hh_N, Hh_S, Bs_N, Bs_S, or_N and or_S to the transactions matrix,
it writes every equation of the book, including those six (money held as the
rest of wealth, the governments' budget constraints, the central banks' gold
as the change in money less the change in bills, at the price of gold), in the
book's order, each in its own country's currency, and solves each period by
Gauss-Seidel sweeps until no variable moves by more than 1e-14 relative; then it
checks that one more sweep moves nothing by more than 1e-12 relative and the
hidden equation (1e-10).

Writes reference.csv (the baseline: no money, bills or wealth and 10 units of
gold in each central bank at the start, 100 periods) and reference_mu_S_up.csv
(the scenario scenarios/mu_S_up.yaml: mu_S from 0.18781 to 0.20781 from period
60 on, 140 periods).

Run:  python models/open/make_reference.py
"""
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))

P = dict(
    alpha1_N=0.6, alpha1_S=0.7, alpha2_N=0.4, alpha2_S=0.3, lambda0_N=0.635, lambda0_S=0.67,
    lambda1_N=5.0, lambda1_S=6.0, lambda2_N=0.01, lambda2_S=0.07, mu_N=0.18781, mu_S=0.18781,
    G_N=20.0, G_S=20.0, theta_N=0.2, theta_S=0.2, r_bar_N=0.025, r_bar_S=0.025, p_g_N=1.0, xr=1.0,
)
START = dict(
    Hh_N=0.0, Hh_S=0.0, Bh_N=0.0, Bh_S=0.0, Hs_N=0.0, Hs_S=0.0, Bs_N=0.0, Bs_S=0.0, Bcb_N=0.0, Bcb_S=0.0,
    or_N=10.0, or_S=10.0, V_N=0.0, V_S=0.0, r_N=0.025, r_S=0.025,
)
COLUMNS = [
    "Y_N", "Y_S", "IM_N", "IM_S", "X_N", "X_S", "YD_N", "YD_S", "T_N", "T_S", "V_N", "V_S", "C_N", "C_S",
    "Hh_N", "Hh_S", "Bh_N", "Bh_S", "Bs_N", "Bs_S", "Bcb_N", "Bcb_S", "or_N", "or_S", "Hs_N", "Hs_S",
    "p_g_S", "r_N", "r_S",
]


def sweep(x, L, p):
    """One Gauss-Seidel sweep over every equation in the book's order (L: last period)."""
    x["Y_N"] = x["C_N"] + p["G_N"] + x["X_N"] - x["IM_N"]
    x["Y_S"] = x["C_S"] + p["G_S"] + x["X_S"] - x["IM_S"]
    x["IM_N"] = p["mu_N"] * x["Y_N"]
    x["IM_S"] = p["mu_S"] * x["Y_S"]
    x["X_N"] = x["IM_S"] / p["xr"]
    x["X_S"] = x["IM_N"] * p["xr"]
    x["YD_N"] = x["Y_N"] - x["T_N"] + L["r_N"] * L["Bh_N"]
    x["YD_S"] = x["Y_S"] - x["T_S"] + L["r_S"] * L["Bh_S"]
    x["T_N"] = p["theta_N"] * (x["Y_N"] + L["r_N"] * L["Bh_N"])
    x["T_S"] = p["theta_S"] * (x["Y_S"] + L["r_S"] * L["Bh_S"])
    x["V_N"] = L["V_N"] + (x["YD_N"] - x["C_N"])
    x["V_S"] = L["V_S"] + (x["YD_S"] - x["C_S"])
    x["C_N"] = p["alpha1_N"] * x["YD_N"] + p["alpha2_N"] * L["V_N"]
    x["C_S"] = p["alpha1_S"] * x["YD_S"] + p["alpha2_S"] * L["V_S"]
    x["Hh_N"] = x["V_N"] - x["Bh_N"]
    x["Hh_S"] = x["V_S"] - x["Bh_S"]
    # Bh/V = lambda0 + lambda1 r - lambda2 YD/V, multiplied out by V
    x["Bh_N"] = x["V_N"] * (p["lambda0_N"] + p["lambda1_N"] * x["r_N"]) - p["lambda2_N"] * x["YD_N"]
    x["Bh_S"] = x["V_S"] * (p["lambda0_S"] + p["lambda1_S"] * x["r_S"]) - p["lambda2_S"] * x["YD_S"]
    x["Bs_N"] = L["Bs_N"] + (p["G_N"] + L["r_N"] * L["Bs_N"]) - (x["T_N"] + L["r_N"] * L["Bcb_N"])
    x["Bs_S"] = L["Bs_S"] + (p["G_S"] + L["r_S"] * L["Bs_S"]) - (x["T_S"] + L["r_S"] * L["Bcb_S"])
    x["Bcb_N"] = x["Bs_N"] - x["Bh_N"]
    x["Bcb_S"] = x["Bs_S"] - x["Bh_S"]
    x["or_N"] = L["or_N"] + ((x["Hs_N"] - L["Hs_N"]) - (x["Bcb_N"] - L["Bcb_N"])) / p["p_g_N"]
    x["or_S"] = L["or_S"] + ((x["Hs_S"] - L["Hs_S"]) - (x["Bcb_S"] - L["Bcb_S"])) / x["p_g_S"]
    x["Hs_N"] = x["Hh_N"]
    x["Hs_S"] = x["Hh_S"]
    x["p_g_S"] = p["p_g_N"] * p["xr"]
    x["r_N"] = p["r_bar_N"]
    x["r_S"] = p["r_bar_S"]


def period(L, p):
    x = {k: L.get(k, 1.0) for k in COLUMNS}
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
    # the hidden equation: the South's gold gained is the North's lost
    assert abs((x["or_S"] - L["or_S"]) + (x["or_N"] - L["or_N"])) <= 1e-10, (x["or_N"], x["or_S"])
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
