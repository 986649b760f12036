#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model INSOUT.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach
to Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007,
chapter 10 ("A model with inside and outside money"), model INSOUT: firms
(10.1-10.19), households (10.20-10.50), government (10.51-10.57), central
bank (10.58-10.63), banks (10.64-10.84), inflation (10.85-10.87); the
redundant ("hidden") equation is Hbs = Hbd (10.88). The forms and the
portfolio parameters are those of Zezza's EViews program for the chapter
as corrected in sfcr's INSOUT vignette (joaomacalos/sfcr,
vignettes/articles/insout.Rmd: the adding-up constraints imposed on the
lambdas, rl(-1) in NHUC and FXf, M2h(-1) in YDr, M1s = M1h, M2s = M2h).

This script deliberately does NOT use `sdmodel`. Unlike models/insout/model.yaml,
which leaves M1h, Bs, Hs and Bbd to the transactions matrix, it writes every
equation of the book, including those four (M1h = M1hN*z1, Bs from the
PSBR, Hs = Bcb + As, Bbd = Ad + M1s + M2s - Ls - Hbd), and solves each period
by Gauss-Seidel sweeps in the book's order until no variable moves by more
than 1e-15 relative; then it checks every equation's residual and the hidden
equation.

Scenario: the starting state of model.yaml (a small balanced state, not the
book's stationary state: see README), 60 periods, nothing changed on the way.

Run:  python models/insout/make_reference.py
"""
import csv
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
STOP = 60

P = dict(
    rbl=0.027, pr=1.0, g=25.0, Nfe=133.28, alpha0=0.0, alpha1=0.95, alpha2=0.05, beta=0.5,
    bot=0.02, botpm=0.003, epsilon=0.5, gamma=0.5, lambdac=0.1, phi=0.1, ro1=0.1, ro2=0.1,
    sigma0=0.3612, sigma1=3.0, tau=0.25, zetab=0.9, zetal=0.0002, zetam=0.0002,
    Omega0=-0.32549, Omega1=1.0, Omega2=1.5, Omega3=0.1, top=0.06, toppm=0.005,
    lambda20=0.52245, lambda22=30.0, lambda23=-15.0, lambda24=-15.0, lambda25=-0.06,
    lambda30=0.47311, lambda32=-15.0, lambda33=30.0, lambda34=-15.0, lambda35=-0.06,
    lambda40=0.17515, lambda42=-15.0, lambda43=-15.0, lambda44=30.0, lambda45=-0.06,
)
RB = 0.023   # the bill rate, set by the central bank (constant)

# the values before the first period (model.yaml: stocks and initial)
START = dict(
    INV=10, Ld=10, Ls=10, Hhh=5, Hs=25, Hbd=20, M1h=40, M1s=40, M2h=60, M2s=60, Bhh=20, Bs=115,
    Bcb=25, Bbd=70, BLh=1, BLs=1, As=0, Ad=0,
    V=162.037037037037, GD=152.037037037037, pbl=37.037037037037, p=1, W=1, UC=1, s=100, sE=100,
    inv=10, ydr=90, ydrE=90, v=162.037037037037, rl=0.025, rm=0.02, BLRN=0.05, FXb=0.3,
    lM1s=40, lM2s=60, omegaT=1, ra=0.023, rb=RB,
)

COLUMNS = [
    "y", "N", "WB", "UC", "sE", "invT", "sigmaT", "invE", "p", "NHUC", "s", "S", "inv", "sigmas",
    "INV", "Ld", "FXf", "pi", "YDr", "CG", "YDhs", "FX", "V", "Vnc", "ydr", "ydhs", "v", "c", "ydrE",
    "C", "YDrE", "VE", "Hhd", "VncE", "ERrbl", "M2d", "Bhd", "BLd", "Hhh", "Bhh", "BLh", "M1hN",
    "z1", "z2", "M1h", "M2hN", "M2h", "TX", "G", "PSBR", "Bs", "BLs", "pbl", "GD", "Hs", "Hbs",
    "Bcb", "As", "ra", "FXcb", "Hhs", "M1s", "M2s", "Ls", "Hbd", "BbdN", "BLRN", "Ad", "z3", "Bbd",
    "BLR", "rm", "z4", "z5", "FXb", "rl", "z6", "z7", "lM1s", "lM2s", "BPM", "omegaT", "W", "Y",
]


def sweep(x, L):
    """One Gauss-Seidel sweep over every equation, in the book's order (L: last period)."""
    p = P
    # firms
    x["y"] = x["sE"] + (x["invE"] - L["inv"])
    x["N"] = x["y"] / p["pr"]
    x["WB"] = x["N"] * x["W"]
    x["UC"] = x["WB"] / x["y"]
    x["sE"] = p["beta"] * L["s"] + (1 - p["beta"]) * L["sE"]
    x["invT"] = x["sigmaT"] * x["sE"]
    x["sigmaT"] = p["sigma0"] - p["sigma1"] * x["rl"]
    x["invE"] = L["inv"] + p["gamma"] * (x["invT"] - L["inv"])
    x["p"] = (1 + p["tau"]) * (1 + p["phi"]) * x["NHUC"]
    x["NHUC"] = (1 - x["sigmaT"]) * x["UC"] + x["sigmaT"] * (1 + L["rl"]) * L["UC"]
    x["s"] = x["c"] + p["g"]
    x["S"] = x["s"] * x["p"]
    x["inv"] = L["inv"] + x["y"] - x["s"]
    x["sigmas"] = L["inv"] / x["s"]
    x["INV"] = x["inv"] * x["UC"]
    x["Ld"] = x["INV"]
    x["FXf"] = x["S"] - x["TX"] - x["WB"] + (x["INV"] - L["INV"]) - L["rl"] * L["INV"]
    x["pi"] = x["p"] / L["p"] - 1
    # households
    x["YDr"] = x["FX"] + x["WB"] + L["rm"] * L["M2h"] + L["rb"] * L["Bhh"] + L["BLh"]
    x["CG"] = (x["pbl"] - L["pbl"]) * L["BLh"]
    x["YDhs"] = x["YDr"] + x["CG"]
    x["FX"] = x["FXf"] + x["FXb"]
    x["V"] = L["V"] + x["YDhs"] - x["C"]
    x["Vnc"] = x["V"] - x["Hhh"]
    x["ydr"] = x["YDr"] / x["p"] - x["pi"] * L["V"] / x["p"]
    x["ydhs"] = (x["YDr"] - x["pi"] * L["V"] + x["CG"]) / x["p"]
    x["v"] = x["V"] / x["p"]
    x["c"] = p["alpha0"] + p["alpha1"] * x["ydrE"] + p["alpha2"] * L["v"]
    x["ydrE"] = p["epsilon"] * L["ydr"] + (1 - p["epsilon"]) * L["ydrE"]
    x["C"] = x["p"] * x["c"]
    x["YDrE"] = x["p"] * x["ydrE"] + x["pi"] * L["V"] / x["p"]
    x["VE"] = L["V"] + (x["YDrE"] - x["C"])
    x["Hhd"] = p["lambdac"] * x["C"]
    x["VncE"] = x["VE"] - x["Hhd"]
    x["ERrbl"] = p["rbl"]
    x["M2d"] = x["VncE"] * (p["lambda20"] + p["lambda22"] * x["rm"] + p["lambda23"] * RB
                            + p["lambda24"] * x["ERrbl"] + p["lambda25"] * (x["YDrE"] / x["VncE"]))
    x["Bhd"] = x["VncE"] * (p["lambda30"] + p["lambda32"] * x["rm"] + p["lambda33"] * RB
                            + p["lambda34"] * x["ERrbl"] + p["lambda35"] * (x["YDrE"] / x["VncE"]))
    x["BLd"] = (x["VncE"] / x["pbl"]) * (p["lambda40"] + p["lambda42"] * x["rm"] + p["lambda43"] * RB
                                         + p["lambda44"] * x["ERrbl"] + p["lambda45"] * (x["YDrE"] / x["VncE"]))
    x["Hhh"] = x["Hhd"]
    x["Bhh"] = x["Bhd"]
    x["BLh"] = x["BLd"]
    x["M1hN"] = x["Vnc"] - x["M2d"] - x["Bhd"] - x["pbl"] * x["BLd"]
    x["z1"] = 1.0 if x["M1hN"] > 0 else 0.0
    x["z2"] = 1 - x["z1"]
    x["M1h"] = x["M1hN"] * x["z1"]
    x["M2hN"] = x["M2d"]
    x["M2h"] = x["M2d"] * x["z1"] + (x["Vnc"] - x["Bhh"] - x["pbl"] * x["BLd"]) * x["z2"]
    # government
    x["TX"] = x["S"] * (p["tau"] / (1 + p["tau"]))
    x["G"] = x["p"] * p["g"]
    x["PSBR"] = x["G"] + L["rb"] * L["Bs"] + L["BLs"] - (x["TX"] + x["FXcb"])
    x["Bs"] = L["Bs"] + x["PSBR"] - (x["BLs"] - L["BLs"]) * x["pbl"]
    x["BLs"] = x["BLd"]
    x["pbl"] = 1 / p["rbl"]
    x["GD"] = L["GD"] + x["PSBR"]
    # central bank
    x["Hs"] = x["Bcb"] + x["As"]
    x["Hbs"] = x["Hs"] - x["Hhs"]
    x["Bcb"] = x["Bs"] - x["Bhh"] - x["Bbd"]
    x["As"] = x["Ad"]
    x["ra"] = RB
    x["FXcb"] = L["rb"] * L["Bcb"] + L["ra"] * L["As"]
    # banks
    x["Hhs"] = x["Hhd"]
    x["M1s"] = x["M1h"]
    x["M2s"] = x["M2h"]
    x["Ls"] = x["Ld"]
    x["Hbd"] = p["ro1"] * x["M1s"] + p["ro2"] * x["M2s"]
    x["BbdN"] = x["M1s"] + x["M2s"] - x["Ls"] - x["Hbd"]
    x["BLRN"] = x["BbdN"] / (x["M1s"] + x["M2s"])
    x["Ad"] = (p["bot"] * (x["M1s"] + x["M2s"]) - x["BbdN"]) * x["z3"]
    x["z3"] = 1.0 if x["BLRN"] < p["bot"] else 0.0
    x["Bbd"] = x["Ad"] + x["M1s"] + x["M2s"] - x["Ls"] - x["Hbd"]
    x["BLR"] = x["Bbd"] / (x["M1s"] + x["M2s"])
    x["rm"] = L["rm"] + p["zetam"] * (x["z4"] - x["z5"]) + p["zetab"] * (RB - L["rb"])
    x["z4"] = 1.0 if L["BLRN"] < p["bot"] else 0.0
    x["z5"] = 1.0 if L["BLRN"] > p["top"] else 0.0
    x["FXb"] = L["rl"] * L["Ls"] + L["rb"] * L["Bbd"] - L["rm"] * L["M2s"] - L["ra"] * L["Ad"]
    x["rl"] = L["rl"] + p["zetal"] * (x["z6"] - x["z7"]) + (RB - L["rb"])
    x["z6"] = 1.0 if x["BPM"] < p["botpm"] else 0.0
    x["z7"] = 1.0 if x["BPM"] > p["toppm"] else 0.0
    x["lM1s"] = L["M1s"]
    x["lM2s"] = L["M2s"]
    x["BPM"] = (x["FXb"] + L["FXb"]) / (x["lM1s"] + L["lM1s"] + x["lM2s"] + L["lM2s"])
    # inflation
    x["omegaT"] = math.exp(p["Omega0"] + p["Omega1"] * math.log(p["pr"]) + p["Omega2"] * math.log(x["N"] / p["Nfe"]))
    x["W"] = L["W"] * (1 + p["Omega3"] * (L["omegaT"] - L["W"] / L["p"]))
    x["Y"] = x["p"] * x["s"] + x["UC"] * (x["inv"] - L["inv"])


def solve_period(L):
    x = {k: L.get(k, 1.0) for k in COLUMNS}   # last period's values as the first guess (1 where none)
    for _ in range(1000):
        old = dict(x)
        sweep(x, L)
        if all(abs(x[k] - old[k]) <= 1e-15 * max(1.0, abs(x[k])) for k in x):
            break
    else:
        raise RuntimeError("Gauss-Seidel did not converge")
    again = dict(x)
    sweep(again, L)   # every equation holds: one more sweep changes nothing beyond rounding
    scale = max(1.0, max(abs(v) for v in x.values()))
    bad = {k: again[k] - x[k] for k in x if abs(again[k] - x[k]) > 1e-12 * scale}
    if bad:
        raise RuntimeError(f"residuals too large: {bad}")
    if abs(x["Hbs"] - x["Hbd"]) > 1e-10 * scale:   # the hidden equation 10.88
        raise RuntimeError(f"hidden equation Hbs = Hbd fails by {x['Hbs'] - x['Hbd']}")
    x["rb"] = RB
    return x


def main():
    L = dict(START)
    rows = []
    for t in range(1, STOP + 1):
        x = solve_period(L)
        rows.append((t, x))
        L = x
    out = os.path.join(HERE, "reference.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["t"] + COLUMNS)
        for t, x in rows:
            w.writerow([t] + [repr(float(x[k])) for k in COLUMNS])
    print(f"wrote {out}: {len(rows)} periods; Y at t = {STOP}: {rows[-1][1]['Y']:.10f}")


if __name__ == "__main__":
    main()
