"""Reference output for continuous-time SIM: the closed-form solution (no sdmodel involved).

With Y = C + G, W = Y, T = theta*W, YD = W - T and C = alpha1*YD + alpha2*Hh, output solves
Y = (G + alpha2*Hh) / (1 - alpha1*(1 - theta)), and the household column gives
dHh/dt = YD - C = k*(Hh* - Hh) with Hh* = G*(1 - theta)/theta and
k = alpha2*theta / (1 - alpha1*(1 - theta)).  With G=20, theta=0.2, alpha1=0.6, alpha2=0.4:
k = 0.08/0.52 = 2/13 = 0.153846..., Hh* = 80, Y* = G/theta = 100.
Run: python models/sim/make_reference.py   (writes reference.csv beside this file)
"""
from pathlib import Path

import numpy as np

alpha1, alpha2, theta, G = 0.6, 0.4, 0.2, 20.0
k = alpha2 * theta / (1 - alpha1 * (1 - theta))
H_star = G * (1 - theta) / theta
t = np.arange(0, 60.0001, 0.25)
Hh = H_star * (1 - np.exp(-k * t))
Y = (G + alpha2 * Hh) / (1 - alpha1 * (1 - theta))
T = theta * Y
YD = Y - T
C = alpha1 * YD + alpha2 * Hh
cols = {"t": t, "Hh": Hh, "Hs": Hh, "Y": Y, "W": Y, "T": T, "YD": YD, "C": C}
out = Path(__file__).with_name("reference.csv")
with out.open("w") as f:
    f.write(",".join(cols) + "\n")
    for row in zip(*cols.values()):
        f.write(",".join(f"{v:.15g}" for v in row) + "\n")
