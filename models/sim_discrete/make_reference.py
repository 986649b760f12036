"""Reference output for discrete-time SIM: the book's equations solved in closed form per period.

Godley & Lavoie (2007), chapter 3: with H(-1) given, output solves
Y = (G + alpha2*H(-1)) / (1 - alpha1*(1 - theta))   (3.10 with 3.5-3.7 substituted), then
T = theta*Y, YD = Y - T, C = alpha1*YD + alpha2*H(-1), H = H(-1) + YD - C  (3.9).
Period 1 from H(-1) = 0: Y = 20/0.52 = 38.4615, H = 12.3077 (the book's Table 3.4, first
period with government spending); steady state Y* = G/theta = 100, H* = 80.
Run: python models/sim_discrete/make_reference.py   (writes reference.csv beside this file)
"""
from pathlib import Path

alpha1, alpha2, theta, G = 0.6, 0.4, 0.2, 20.0
H = 0.0
rows = []
for t in range(1, 101):
    Y = (G + alpha2 * H) / (1 - alpha1 * (1 - theta))
    T = theta * Y
    YD = Y - T
    C = alpha1 * YD + alpha2 * H
    H = H + YD - C
    rows.append((t, H, H, Y, Y, T, YD, C))
out = Path(__file__).with_name("reference.csv")
with out.open("w") as f:
    f.write("t,Hh,Hs,Y,W,T,YD,C\n")
    for r in rows:
        f.write(",".join(f"{v:.15g}" for v in r) + "\n")
