#!/usr/bin/env python3
"""Independent reference simulation of Godley & Lavoie (2007) model GROWTH.

Source: W. Godley and M. Lavoie, *Monetary Economics: An Integrated Approach to
Credit, Money, Income, Production and Wealth*, Palgrave Macmillan 2007, chapter 11,
model GROWTH, equations 11.1-11.108 (boxes 11.1-11.12), in the forms of Gennaro
Zezza's EViews program as listed in sfcr's GROWTH vignette (joaomacalos/sfcr,
vignettes/articles/growth.Rmd), with Zezza's parameters and starting values.

This script deliberately does NOT use `sdmodel`. Unlike models/growth/model.yaml,
which leaves Mh, Lfd, Bs, Bcbd and Bbd to the transactions matrix, it writes
every equation as the book does: deposits as the households' residual (11.67),
firms' loans (11.39), bills issued (11.74), Bcbd = Hs (11.82) and the banks'
bills as their balance-sheet residual (11.92). Each period is solved by
Gauss-Seidel sweeps in the book's order until no variable moves by more than
1e-15 relative (as EViews does); then one more sweep must move nothing by more
than 1e-12 relative, and the hidden equation Bbs = Bbd must hold up to the
gap (0.0377 in the first period, below 1e-9 of wealth) that Zezza's starting values leave (see README.md).

Run:  python models/growth/reference/make_reference.py
"""
import csv
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
STOP = 100

P = dict(
    alpha1=0.75, alpha2=0.064, beta=0.5, betab=0.4, gamma=0.15, gamma0=0.00122, gammar=0.1,
    gammau=0.05, delta=0.10667, deltarep=0.1, eps=0.5, eps2=0.8, epsb=0.25, eta0=0.07416,
    etan=0.6, etar=0.4, theta=0.22844,
    lambda20=0.25, lambda21=2.2, lambda22=6.6, lambda23=2.2, lambda24=2.2, lambda25=0.1,
    lambda30=-0.04341, lambda31=2.2, lambda32=2.2, lambda33=6.6, lambda34=2.2, lambda35=0.1,
    lambda40=0.67132, lambda41=2.2, lambda42=2.2, lambda43=2.2, lambda44=6.6, lambda45=0.1,
    lambdab=0.0153, lambdac=0.05, xim1=0.0008, xim2=0.0007, ro=0.05, sigman=0.1666, sigmat=0.2,
    psid=0.15255, psiu=0.92, omega0=-0.20594, omega1=1.0, omega2=2.0, omega3=0.45621,
    ADDbl=0.02, BANDt=0.01, BANDb=0.01, bot=0.05, top=0.12, GRg=0.03, GRpr=0.03, Nfe=87.181,
    NCAR=0.1, NPLk=0.02, Rbbar=0.035, Rln=0.07, RA=0.0,
)

# Zezza's starting values (sfcr's growth_initial); the values before the first period
START = dict(
    ADDl=0.04592, BLR=0.1091, BUR=0.06324, Ck=7334240, CAR=0.09245, CONS=52603100, ER=1,
    Fb=1744130, Fbt=1744140, Ff=18081100, Fft=18013600, FDb=1325090, FDf=2670970, FUb=419039,
    FUf=15153800, FUft=15066200, G=16755600, Gk=2336160, GL=2775900, GRk=0.03001, INV=16911600,
    Ik=2357910, N=87.181, Nt=87.181, NHUC=5.6735, NL=683593, NLk=95311, NPL=309158, NPLke=0.02,
    NUC=5.6106, omegat=112852, P=7.1723, Pbl=18.182, Pe=17937, PE=5.07185, PI=0.0026, PR=138659,
    PSBR=1894780, Q=0.77443, Rb=0.035, Rbl=0.055, Rk=0.03008, Rl=0.06522, Rm=0.0193, REP=2092310,
    RRl=0.06246, S=86270300, Sk=12028300, Ske=12028300, TX=17024100, U=0.70073, UC=5.6106,
    W=777968, WB=67824000, Y=86607700, Yk=12088400, YDr=56446400, YDkr=7813270, YDkre=7813290,
    YP=73158700, z1a=0, z1b=0, z2a=0, z2b=0, sigmase=0.16667, eta=0.04918, phi=0.26417,
    phit=0.26417,
    Bbd=4389790, Bbs=4389790, Bcbd=4655690, Bcbs=4655690, Bhd=33439320, Bhs=33439320,
    Bs=42484800, BLd=840742, BLs=840742, Ekd=5112.6001, Eks=5112.6001, Hbd=2025540,
    Hbs=2025540, Hhd=2630150, Hhs=2630150, Hs=4655690, IN=11585400, INk=2064890, INke=2405660,
    INkt=2064890, K=127486471, Kk=17774838, Lfd=15962900, Lfs=15962900, Lhd=21606600,
    Lhs=21606600, Ls=37569500, Mh=40510800, Ms=40510800, OFb=3474030, OFbe=3474030,
    OFbt=3638100, V=165438779, Vfma=159334599, Vk=23066350,
)

ASSETS_H = ["Hhd", "Mh", "Bhd", "OFb"]
HIDDEN_GAP = (sum(START[k] for k in ASSETS_H) + START["Pbl"] * START["BLd"] + START["Pe"] * START["Ekd"]
              - START["Lhd"] - START["V"])

COLUMNS = [
    "Yk", "Ske", "INke", "INkt", "INk", "Kk", "GRk", "U", "RRl", "PI", "Ik", "Sk", "S", "IN", "INV",
    "K", "Y", "omegat", "ER", "z3", "z4", "z5", "W", "PR", "Nt", "N", "WB", "UC", "NUC", "NHUC", "P",
    "phi", "phit", "HCe", "sigmase", "Fft", "FUft", "FDf", "Ff", "FUf", "Lfd", "NPL", "Eks", "Rk",
    "PE", "Q", "YP", "TX", "YDr", "YDhs", "CG", "V", "Vk", "CONS", "Ck", "YDkre", "YDkr", "GL",
    "eta", "NL", "REP", "Lhd", "NLk", "BUR", "Bhd", "BLd", "Pe", "Mh", "Vfma", "Hhd", "Ekd", "G",
    "Gk", "PSBR", "Bs", "GD", "Fcb", "BLs", "Bhs", "Hhs", "Hbs", "Hs", "Bcbd", "Bcbs", "Rb", "Rbl",
    "Pbl", "Ms", "Lfs", "Lhs", "Hbd", "Bbs", "Bbd", "BLR", "Rm", "z1a", "z1b", "z2a", "z2b", "Rl",
    "OFbt", "OFbe", "FUbt", "NPLke", "FDb", "Fbt", "Fb", "ADDl", "FUb", "OFb", "CAR", "Ls",
]


def sweep(x, L):
    """One Gauss-Seidel sweep over every equation in the book's order (L: last period)."""
    p = P
    # box 11.1
    x["Yk"] = x["Ske"] + x["INke"] - L["INk"]
    x["Ske"] = p["beta"] * x["Sk"] + (1 - p["beta"]) * L["Sk"] * (1 + (p["GRpr"] + p["RA"]))
    x["INke"] = L["INk"] + p["gamma"] * (x["INkt"] - L["INk"])
    x["INkt"] = p["sigmat"] * x["Ske"]
    x["INk"] = L["INk"] + x["Yk"] - x["Sk"] - x["NPL"] / x["UC"]
    x["Kk"] = L["Kk"] * (1 + x["GRk"])
    x["GRk"] = p["gamma0"] + p["gammau"] * L["U"] - p["gammar"] * x["RRl"]
    x["U"] = x["Yk"] / L["Kk"]
    x["RRl"] = ((1 + x["Rl"]) / (1 + x["PI"])) - 1
    x["PI"] = (x["P"] - L["P"]) / L["P"]
    x["Ik"] = (x["Kk"] - L["Kk"]) + p["delta"] * L["Kk"]
    # box 11.2
    x["Sk"] = x["Ck"] + x["Gk"] + x["Ik"]
    x["S"] = x["Sk"] * x["P"]
    x["IN"] = x["INk"] * x["UC"]
    x["INV"] = x["Ik"] * x["P"]
    x["K"] = x["Kk"] * x["P"]
    x["Y"] = x["Sk"] * x["P"] + (x["INk"] - L["INk"]) * x["UC"]
    # box 11.3
    x["omegat"] = math.exp(p["omega0"] + p["omega1"] * math.log(x["PR"]) + p["omega2"] * math.log(
        x["ER"] + x["z3"] * (1 - x["ER"]) - x["z4"] * p["BANDt"] + x["z5"] * p["BANDb"]))
    x["ER"] = L["N"] / p["Nfe"]
    x["z3"] = (1.0 if x["ER"] > 1 - p["BANDb"] else 0.0) * (1.0 if x["ER"] <= 1 + p["BANDt"] else 0.0)
    x["z4"] = 1.0 if x["ER"] > 1 + p["BANDt"] else 0.0
    x["z5"] = 1.0 if x["ER"] < 1 - p["BANDb"] else 0.0
    x["W"] = L["W"] + p["omega3"] * (x["omegat"] * L["P"] - L["W"])
    x["PR"] = L["PR"] * (1 + p["GRpr"])
    x["Nt"] = x["Yk"] / x["PR"]
    x["N"] = L["N"] + p["etan"] * (x["Nt"] - L["N"])
    x["WB"] = x["N"] * x["W"]
    x["UC"] = x["WB"] / x["Yk"]
    x["NUC"] = x["W"] / x["PR"]
    x["NHUC"] = (1 - p["sigman"]) * x["NUC"] + p["sigman"] * (1 + p["Rln"]) * L["NUC"]
    # box 11.4
    x["P"] = (1 + x["phi"]) * x["NHUC"]
    x["phi"] = L["phi"] + p["eps2"] * (L["phit"] - L["phi"])
    x["phit"] = (x["FUft"] + x["FDf"] + L["Rl"] * (L["Lfd"] - L["IN"])) / (
        (1 - x["sigmase"]) * x["Ske"] * x["UC"] + (1 + L["Rl"]) * x["sigmase"] * x["Ske"] * L["UC"])
    x["HCe"] = (1 - x["sigmase"]) * x["Ske"] * x["UC"] + (1 + L["Rl"]) * x["sigmase"] * x["Ske"] * L["UC"]
    x["sigmase"] = L["INk"] / x["Ske"]
    x["Fft"] = x["FUft"] + x["FDf"] + L["Rl"] * (L["Lfd"] - L["IN"])
    x["FUft"] = p["psiu"] * L["INV"]
    x["FDf"] = p["psid"] * L["Ff"]
    # box 11.5
    x["Ff"] = x["S"] - x["WB"] + (x["IN"] - L["IN"]) - L["Rl"] * L["IN"]
    x["FUf"] = x["Ff"] - x["FDf"] - L["Rl"] * (L["Lfd"] - L["IN"]) + L["Rl"] * x["NPL"]
    x["Lfd"] = L["Lfd"] + x["INV"] + (x["IN"] - L["IN"]) - x["FUf"] - (x["Eks"] - L["Eks"]) * x["Pe"] - x["NPL"]
    x["NPL"] = p["NPLk"] * L["Lfs"]
    x["Eks"] = L["Eks"] + ((1 - p["psiu"]) * L["INV"]) / x["Pe"]
    x["Rk"] = x["FDf"] / (L["Pe"] * L["Ekd"])
    x["PE"] = x["Pe"] / (x["Ff"] / L["Eks"])
    x["Q"] = (x["Eks"] * x["Pe"] + x["Lfd"]) / (x["K"] + x["IN"])
    # box 11.6
    x["YP"] = x["WB"] + x["FDf"] + x["FDb"] + L["Rm"] * L["Mh"] + L["Rb"] * L["Bhd"] + L["BLs"]
    x["TX"] = p["theta"] * x["YP"]
    x["YDr"] = x["YP"] - x["TX"] - L["Rl"] * L["Lhd"]
    x["YDhs"] = x["YDr"] + x["CG"]
    x["CG"] = (x["Pbl"] - L["Pbl"]) * L["BLd"] + (x["Pe"] - L["Pe"]) * L["Ekd"] + (x["OFb"] - L["OFb"])
    x["V"] = L["V"] + x["YDr"] - x["CONS"] + (x["Pbl"] - L["Pbl"]) * L["BLd"] + (x["Pe"] - L["Pe"]) * L["Ekd"] \
        + (x["OFb"] - L["OFb"])
    x["Vk"] = x["V"] / x["P"]
    x["CONS"] = x["Ck"] * x["P"]
    x["Ck"] = p["alpha1"] * (x["YDkre"] + x["NLk"]) + p["alpha2"] * L["Vk"]
    x["YDkre"] = p["eps"] * x["YDkr"] + (1 - p["eps"]) * (L["YDkr"] * (1 + p["GRpr"]))
    x["YDkr"] = x["YDr"] / x["P"] - ((x["P"] - L["P"]) * L["Vk"]) / x["P"]
    # box 11.7
    x["GL"] = x["eta"] * x["YDr"]
    x["eta"] = p["eta0"] - p["etar"] * x["RRl"]
    x["NL"] = x["GL"] - x["REP"]
    x["REP"] = p["deltarep"] * L["Lhd"]
    x["Lhd"] = L["Lhd"] + x["GL"] - x["REP"]
    x["NLk"] = x["NL"] / x["P"]
    x["BUR"] = (x["REP"] + L["Rl"] * L["Lhd"]) / L["YDr"]
    # box 11.8
    ydv = x["YDr"] / x["V"]
    x["Bhd"] = L["Vfma"] * (p["lambda20"] + p["lambda22"] * L["Rb"] - p["lambda21"] * L["Rm"]
                            - p["lambda24"] * L["Rk"] - p["lambda23"] * L["Rbl"] - p["lambda25"] * ydv)
    x["BLd"] = L["Vfma"] * (p["lambda30"] - p["lambda32"] * L["Rb"] - p["lambda31"] * L["Rm"]
                            - p["lambda34"] * L["Rk"] + p["lambda33"] * L["Rbl"] - p["lambda35"] * ydv) / x["Pbl"]
    x["Pe"] = L["Vfma"] * (p["lambda40"] - p["lambda42"] * L["Rb"] - p["lambda41"] * L["Rm"]
                           + p["lambda44"] * L["Rk"] - p["lambda43"] * L["Rbl"] - p["lambda45"] * ydv) / x["Ekd"]
    x["Mh"] = x["Vfma"] - x["Bhd"] - x["Pe"] * x["Ekd"] - x["Pbl"] * x["BLd"] + x["Lhd"]
    x["Vfma"] = x["V"] - x["Hhd"] - x["OFb"]
    x["Hhd"] = p["lambdac"] * x["CONS"]
    x["Ekd"] = x["Eks"]
    # box 11.9
    x["G"] = x["Gk"] * x["P"]
    x["Gk"] = L["Gk"] * (1 + p["GRg"])
    x["PSBR"] = x["G"] + L["BLs"] + L["Rb"] * (L["Bbs"] + L["Bhs"]) - x["TX"]
    x["Bs"] = L["Bs"] + x["G"] - x["TX"] - (x["BLs"] - L["BLs"]) * x["Pbl"] + L["Rb"] * (L["Bhs"] + L["Bbs"]) \
        + L["BLs"]
    x["GD"] = x["Bbs"] + x["Bhs"] + x["BLs"] * x["Pbl"] + x["Hs"]
    # box 11.10
    x["Fcb"] = L["Rb"] * L["Bcbd"]
    x["BLs"] = x["BLd"]
    x["Bhs"] = x["Bhd"]
    x["Hhs"] = x["Hhd"]
    x["Hbs"] = x["Hbd"]
    x["Hs"] = x["Hbs"] + x["Hhs"]
    x["Bcbd"] = x["Hs"]
    x["Bcbs"] = x["Bcbd"]
    x["Rb"] = p["Rbbar"]
    x["Rbl"] = x["Rb"] + p["ADDbl"]
    x["Pbl"] = 1 / x["Rbl"]
    # box 11.11
    x["Ms"] = x["Mh"]
    x["Lfs"] = x["Lfd"]
    x["Lhs"] = x["Lhd"]
    x["Hbd"] = p["ro"] * x["Ms"]
    x["Bbs"] = L["Bbs"] + (x["Bs"] - L["Bs"]) - (x["Bhs"] - L["Bhs"]) - (x["Bcbs"] - L["Bcbs"])
    x["Bbd"] = x["Ms"] + x["OFb"] - x["Lfs"] - x["Lhs"] - x["Hbd"]
    x["BLR"] = x["Bbd"] / x["Ms"]
    x["Rm"] = L["Rm"] + x["z1a"] * p["xim1"] + x["z1b"] * p["xim2"] - x["z2a"] * p["xim1"] - x["z2b"] * p["xim2"]
    x["z2a"] = 1.0 if L["BLR"] > (p["top"] + 0.05) else 0.0
    x["z2b"] = 1.0 if L["BLR"] > p["top"] else 0.0
    x["z1a"] = 1.0 if L["BLR"] <= p["bot"] else 0.0
    x["z1b"] = 1.0 if L["BLR"] <= (p["bot"] - 0.05) else 0.0
    # box 11.12
    x["Rl"] = x["Rm"] + x["ADDl"]
    x["OFbt"] = p["NCAR"] * (L["Lfs"] + L["Lhs"])
    x["OFbe"] = L["OFb"] + p["betab"] * (x["OFbt"] - L["OFb"])
    x["FUbt"] = x["OFbe"] - L["OFb"] + x["NPLke"] * L["Lfs"]
    x["NPLke"] = p["epsb"] * L["NPLke"] + (1 - p["epsb"]) * p["NPLk"]
    x["FDb"] = x["Fb"] - x["FUb"]
    x["Fbt"] = p["lambdab"] * L["Y"] + (x["OFbe"] - L["OFb"] + x["NPLke"] * L["Lfs"])
    x["Fb"] = L["Rl"] * (L["Lfs"] + L["Lhs"] - x["NPL"]) + L["Rb"] * L["Bbd"] - L["Rm"] * L["Ms"]
    x["ADDl"] = (x["Fbt"] - L["Rb"] * L["Bbd"] + L["Rm"] * (L["Ms"] - (1 - x["NPLke"]) * L["Lfs"] - L["Lhs"])) / (
        (1 - x["NPLke"]) * L["Lfs"] + L["Lhs"])
    x["FUb"] = x["Fb"] - p["lambdab"] * L["Y"]
    x["OFb"] = L["OFb"] + x["FUb"] - x["NPL"]
    x["CAR"] = x["OFb"] / (x["Lfs"] + x["Lhs"])
    x["Ls"] = x["Lfs"] + x["Lhs"]


def largest_move(a, b):
    return max(abs(a[k] - b[k]) / max(1.0, abs(b[k])) for k in COLUMNS)


def solve_period(L):
    x = dict(L)
    for n in range(1, 5001):
        before = dict(x)
        sweep(x, L)
        if largest_move(x, before) <= 1e-15:
            break
    else:
        raise RuntimeError("Gauss-Seidel did not converge")
    check = dict(x)
    sweep(check, L)
    assert largest_move(check, x) <= 1e-12, "an equation does not hold"
    # the hidden equation Bbs = Bbd holds up to the households' imbalance at the starting values
    # (their assets exceed V by 0.0377: deposits, the residual 11.67, absorb it in the first period,
    # and with them the banks' bills 11.92); it then grows with the interest on it, staying below
    # 1e-9 of households. wealth
    assert abs(x["Bbs"] - x["Bbd"]) <= 1e-9 * abs(x["V"]), ("hidden equation Bbs = Bbd", x["Bbs"], x["Bbd"])
    return x, n


def main():
    L = dict(START)
    for k in COLUMNS:  # every variable has a value before the first period (the guess for it)
        L.setdefault(k, 0.0)
    L["z3"], L["z4"], L["z5"] = 1.0, 0.0, 0.0
    rows, sweeps = [], 0
    for t in range(1, STOP + 1):
        x, n = solve_period(L)
        sweeps = max(sweeps, n)
        rows.append([t] + [x[k] for k in COLUMNS])
        L = x
    with open(os.path.join(HERE, "reference.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t"] + COLUMNS)
        for r in rows:
            w.writerow([r[0]] + [repr(float(v)) for v in r[1:]])
    print(f"wrote reference.csv: t = 1..{STOP}, {len(COLUMNS)} variables; at most {sweeps} sweeps a period")


if __name__ == "__main__":
    main()
