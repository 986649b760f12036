#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model DIS.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach
to Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007,
chapter 9 ("A simple model with private bank money, inventories and
disequilibrium"), model DIS, equations 9.1-9.26 in the forms of sfcr's DIS
vignette (joaomacalos/sfcr, articles gl6-dis: Zezza's EViews program); the
redundant ("hidden") equation is Mh = Ms.

This script deliberately does NOT use `sdmodel`. Unlike models/dis/model.yaml,
which leaves Mh to the households' column, it writes every equation, including
9.21 (Mh = Mh(-1) + YD - C), in the book's order, and solves each period by
Gauss-Seidel sweeps until no variable moves by more than 1e-14 relative; then
it checks that one more sweep moves nothing by more than 1e-12 relative and the
hidden equation (1e-10 relative).

Writes reference.csv (the start of model.yaml: a small balanced state near the
stationary one, 100 periods) and reference_markup_up.csv (the scenario
scenarios/markup_up.yaml: phi from 0.25 to 0.3 from period 20 on, 100 periods).

Run:  python models/dis/make_reference.py
"""
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))

P = dict(
    rl_bar=0.025, pr=1.0, W=0.75, add=0.02, alpha0=15.0, alpha1=0.8, alpha2=0.1, beta=0.75, epsilon=0.75,
    gamma=0.25, phi=0.25, sigma_T=0.15,
)
START = dict(
    INV=9.0, Ld=9.0, Ls=9.0, Ms=9.0, Mh=9.0, inv=12.0, s=80.0, s_E=80.0, UC=0.75, mh=9.564134495641344,
    ydhs=80.0, ydhs_E=80.0, rm=0.005, rl=0.025,
)
COLUMNS = [
    "y", "inv_T", "inv_E", "inv", "s_E", "s", "N", "WB", "UC", "INV", "S", "p", "NHUC", "EF", "Ld", "Ls",
    "Ms", "rm", "rl", "EFb", "YD", "Mh", "ydhs", "C", "mh", "c", "ydhs_E",
]


def sweep(x, L, p):
    """One Gauss-Seidel sweep over every equation in the book's order (L: last period)."""
    x["y"] = x["s_E"] + x["inv_E"] - L["inv"]
    x["inv_T"] = p["sigma_T"] * x["s_E"]
    x["inv_E"] = L["inv"] + p["gamma"] * (x["inv_T"] - L["inv"])
    x["inv"] = L["inv"] + (x["y"] - x["s"])
    x["s_E"] = p["beta"] * L["s"] + (1 - p["beta"]) * L["s_E"]
    x["s"] = x["c"]
    x["N"] = x["y"] / p["pr"]
    x["WB"] = x["N"] * p["W"]
    x["UC"] = x["WB"] / x["y"]
    x["INV"] = x["inv"] * x["UC"]
    x["S"] = x["p"] * x["s"]
    x["p"] = (1 + p["phi"]) * x["NHUC"]
    x["NHUC"] = (1 - p["sigma_T"]) * x["UC"] + p["sigma_T"] * (1 + L["rl"]) * L["UC"]
    x["EF"] = x["S"] - x["WB"] + (x["INV"] - L["INV"]) - L["rl"] * L["INV"]
    x["Ld"] = x["INV"]
    x["Ls"] = x["Ld"]
    x["Ms"] = x["Ls"]
    x["rm"] = x["rl"] - p["add"]
    x["rl"] = p["rl_bar"]
    x["EFb"] = L["rl"] * L["Ls"] - L["rm"] * L["Mh"]
    x["YD"] = x["WB"] + x["EF"] + x["EFb"] + L["rm"] * L["Mh"]
    x["Mh"] = L["Mh"] + x["YD"] - x["C"]
    x["ydhs"] = x["c"] + (x["mh"] - L["mh"])
    x["C"] = x["c"] * x["p"]
    x["mh"] = x["Mh"] / x["p"]
    x["c"] = p["alpha0"] + p["alpha1"] * x["ydhs_E"] + p["alpha2"] * L["mh"]
    x["ydhs_E"] = p["epsilon"] * L["ydhs"] + (1 - p["epsilon"]) * L["ydhs_E"]


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
    assert abs(x["Mh"] - x["Ms"]) <= 1e-10 * max(1.0, abs(x["Ms"])), (x["Mh"], x["Ms"])  # the hidden equation
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
    write("reference_markup_up.csv", run(100, ("phi", 20, 0.3)))
